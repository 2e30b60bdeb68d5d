/**
 * docs/PROTOCOL.md must match the code: its message table against
 * MESSAGE_CODES, MESSAGE_FIELDS and REPLIES, row for row, its status table
 * against Status, and the limits it states against the constants.
 */

import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import {
  MAX_CONTROL_LENGTH,
  MAX_WATCH_MS,
  MESSAGE_CODES,
  MESSAGE_FIELDS,
  type MessageType,
  OPTIONAL_FIELDS,
  REPLIES,
} from "../shared/messages.ts";
import { Status } from "../shared/status.ts";

const doc = await Deno.readTextFile(fileURLToPath(new URL("../docs/PROTOCOL.md", import.meta.url)));

/** The rows of the Markdown table whose header starts with `firstColumn`. */
function tableRows(firstColumn: string): string[][] {
  const lines = doc.split("\n");
  const start = lines.findIndex((line) => line.startsWith(`| ${firstColumn} |`));
  assert.ok(start >= 0, `no table starting with "${firstColumn}" in PROTOCOL.md`);
  const rows: string[][] = [];
  for (const line of lines.slice(start + 2)) {
    if (!line.startsWith("|")) break;
    rows.push(line.split("|").slice(1, -1).map((cell) => cell.trim()));
  }
  return rows;
}

Deno.test("PROTOCOL.md lists every message with its code and fields (optional ones in brackets) as shared/messages.ts does", () => {
  const rows = tableRows("code");
  const documented = new Map(rows.map(([code, message, , fields]) => [message, { code: Number(code), fields }]));
  assert.deepEqual([...documented.keys()].sort(), Object.keys(MESSAGE_CODES).sort());
  for (const [type, code] of Object.entries(MESSAGE_CODES)) {
    const row = documented.get(type)!;
    assert.equal(row.code, code, `code of ${type}`);
    const key = type as keyof typeof MESSAGE_FIELDS;
    const fields = type === "data" ? "raw bytes" : [
      ...Object.entries(MESSAGE_FIELDS[key]).map(([field, kind]) => `${field}: ${kind}`),
      ...Object.entries(OPTIONAL_FIELDS[key] ?? {}).map(([field, kind]) => `[${field}: ${kind}]`),
    ].join(", ");
    assert.equal(row.fields, fields, `fields of ${type}`);
  }
});

/**
 * Reads an "answered by" cell: the messages it names (but ERROR), and the
 * status codes in parentheses after "error", or "any" for a bare "error".
 */
function answeredBy(cell: string): { replies: string[]; errors: string[] | "any" | null } {
  const types = new Set<string>(Object.keys(MESSAGE_CODES));
  const words: string[] = cell.match(/[a-z]+(?:-[a-z]+)*/g) ?? [];
  const replies = words.filter((word) => types.has(word) && word !== "error");
  const codes = /\berror \(([A-Z_, ]+)\)/.exec(cell);
  const errors = codes !== null
    ? codes[1].split(",").map((code) => code.trim())
    : words.includes("error")
    ? "any"
    : null;
  return { replies, errors };
}

Deno.test("PROTOCOL.md's answered-by column names the replies REPLIES in shared/messages.ts allows", () => {
  const rows = tableRows("code");
  for (const [, message, , , cell] of rows) {
    const documented = answeredBy(cell);
    const code = Object.hasOwn(REPLIES, message) ? REPLIES[message as keyof typeof REPLIES] : undefined;
    if (code === undefined) {
      assert.deepEqual(documented, { replies: [], errors: null }, `${message} is answered by nothing`);
      continue;
    }
    assert.deepEqual(documented.replies, [...code.replies], `replies to ${message}`);
    assert.deepEqual(
      documented.errors === "any" ? "any" : documented.errors?.toSorted(),
      code.errors === "any" ? "any" : code.errors.toSorted(),
      `errors answering ${message}`,
    );
  }
  const requests = rows.filter(([, , from]) => from === "client").map(([, message]) => message as MessageType);
  assert.deepEqual(requests.toSorted(), Object.keys(REPLIES).toSorted(), "the requests are the client's messages");
});

Deno.test("PROTOCOL.md states the control payload limit as MAX_CONTROL_LENGTH less the type byte", () => {
  const payload = (MAX_CONTROL_LENGTH - 1).toLocaleString("en-US");
  assert.match(doc, new RegExp(`Control payloads are at most\\s+${payload}\\s+bytes`));
  assert.match(doc, new RegExp(`control payload over\\s+${payload}\\s+bytes`));
});

Deno.test("PROTOCOL.md states the longest watch as MAX_WATCH_MS", () => {
  const ms = MAX_WATCH_MS.toLocaleString("en-US");
  assert.match(
    doc,
    new RegExp(`\\*\\*Watch\\.\\*\\*[^]*?cut,\\s+never\\s+refused,\\s+to\\s+at\\s+most\\s+${ms}\\s+ms`),
  );
});

Deno.test("PROTOCOL.md lists every status code as shared/status.ts does", () => {
  const statusStart = doc.indexOf("## Status codes");
  const statusRows = doc.slice(statusStart).split("\n").filter((line) => /^\|\s*\d+\s*\|/.test(line))
    .map((line) => line.split("|").slice(1, 3).map((cell) => cell.trim()));
  assert.deepEqual(
    statusRows.map(([code, name]) => [Number(code), name]),
    Object.entries(Status).map(([name, code]) => [code, name]),
  );
});
