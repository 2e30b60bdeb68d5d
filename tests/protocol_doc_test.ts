/**
 * docs/PROTOCOL.md must match the code: its message table against
 * MESSAGE_CODES and MESSAGE_FIELDS, row for row, and its status table against
 * Status.
 */

import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { MESSAGE_CODES, MESSAGE_FIELDS } from "../shared/messages.ts";
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

Deno.test("PROTOCOL.md lists every message with its code and fields as shared/messages.ts does", () => {
  const rows = tableRows("code");
  const documented = new Map(rows.map(([code, message, , fields]) => [message, { code: Number(code), fields }]));
  assert.deepEqual([...documented.keys()].sort(), Object.keys(MESSAGE_CODES).sort());
  for (const [type, code] of Object.entries(MESSAGE_CODES)) {
    const row = documented.get(type)!;
    assert.equal(row.code, code, `code of ${type}`);
    const fields = type === "data" ? "raw bytes" : Object.entries(MESSAGE_FIELDS[type as keyof typeof MESSAGE_FIELDS])
      .map(([field, kind]) => `${field}: ${kind}`).join(", ");
    assert.equal(row.fields, fields, `fields of ${type}`);
  }
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
