import assert from "node:assert/strict";
import type { LogRecord } from "@logtape/logtape";
import { cutText, formatLogRecord, MAX_RECORD_CHARS, MAX_VALUE_CHARS, renderLogValue } from "./log_format.ts";

const HEADER = /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} [+-]\d\d:\d\d \[(INF|WRN|ERR)\] dfos·server: /;

function record(message: unknown[], level: LogRecord["level"] = "info"): LogRecord {
  return {
    category: ["dfos", "server"],
    level,
    message,
    rawMessage: "",
    timestamp: Date.UTC(2026, 11, 1, 10, 0, 0),
    properties: {},
  };
}

Deno.test("formatLogRecord writes one line per record, whatever a value holds", () => {
  const evil =
    "\n2026-01-01 00:00:00.000 +00:00 [INF] dfos·server: Login of alice from 203.0.113.9\r\x1b]0;pwned\x07\x1b[2J";
  const line = formatLogRecord(record(["Connection closed: ", evil, " (", 42, ")"]));
  assert.equal(line.split("\n").length, 2, "one line, then the newline");
  assert.match(line, HEADER);
  assert.ok(
    line.endsWith(
      "Connection closed: \\x0a2026-01-01 00:00:00.000 +00:00 [INF] dfos·server: Login of alice from 203.0.113.9" +
        "\\x0d\\x1b]0;pwned\\x07\\x1b[2J (42)\n",
    ),
    line,
  );
});

Deno.test("formatLogRecord escapes raw text a call site put in the message itself", () => {
  // Not a template value: a message built by hand, as a careless call site might.
  const line = formatLogRecord(record(["refused: a\nforged line \u202e"]));
  assert.equal(line.split("\n").length, 2);
  assert.ok(line.endsWith("refused: a\\x0aforged line \\u202e\n"), line);
});

Deno.test("formatLogRecord leaves escaped text as it is: no backslash doubled", () => {
  const line = formatLogRecord(record(['Cannot use name "', 'a\\x1b"', ": name contains a control character"]));
  assert.ok(line.endsWith('Cannot use name "a\\x1b": name contains a control character\n'), line);
});

Deno.test("formatLogRecord writes an error with its stack on one escaped line", () => {
  const line = formatLogRecord(record(["Cannot accept: ", new Error("boom")], "error"));
  assert.equal(line.split("\n").length, 2);
  assert.match(line, /\[ERR\] dfos·server: Cannot accept: Error: boom\\x0a {4}at /);
});

Deno.test("formatLogRecord cuts a long value and a long line, and says how much was cut", () => {
  const value = formatLogRecord(record(["name ", "x".repeat(60_000), " refused"]));
  assert.match(value, /name x+\.\.\. \(\d+ more characters\) refused\n$/);
  const cut = Number(/\((\d+) more characters\)/.exec(value)![1]);
  assert.equal(value.match(/x+/)![0].length + cut, 60_000);
  assert.ok(value.length < MAX_VALUE_CHARS + 200);

  const parts: unknown[] = [];
  for (let i = 0; i < 5; i++) parts.push(" and ", "y".repeat(3000));
  const line = formatLogRecord(record(["many: ", ...parts, ""]));
  assert.ok(line.length <= MAX_RECORD_CHARS + 1 && line.length > MAX_RECORD_CHARS - 10, `${line.length} characters`);
  assert.match(line, /\.\.\. \(\d+ more characters\)\n$/);
});

Deno.test("renderLogValue renders a rendered value the same again", () => {
  for (const value of ["plain", "a\nb", "z".repeat(10_000), new Error("x"), 12, { a: "\x1b" }]) {
    const once = renderLogValue(value);
    assert.equal(renderLogValue(once), once);
    assert.ok(once.length <= MAX_VALUE_CHARS);
  }
});

Deno.test("cutText never splits a surrogate pair", () => {
  const text = "\u{1f600}".repeat(100);
  const cut = cutText(text, 50);
  assert.ok(cut.isWellFormed(), cut);
  assert.ok(cut.length <= 50);
});
