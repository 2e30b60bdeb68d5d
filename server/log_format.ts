/**
 * `formatLogRecord()`: how a record becomes one line of the log. Every
 * value goes through the one escaping function (`printableText`,
 * shared/names.ts) and is cut to {@linkcode MAX_VALUE_CHARS}; the whole line
 * is escaped once more if anything raw is left (text that a call site built
 * itself) and cut to {@linkcode MAX_RECORD_CHARS}. So no record ever holds a
 * raw newline, carriage return, ESC or other C0/C1 control, bidi override or
 * lone surrogate, and none is longer than the cap, whatever a call site
 * passes. Call sites still cut a peer's text to a short `excerpt()`; these
 * caps are the floor under them.
 *
 * @example Usage
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatLogRecord } from "./log_format.ts";
 * const line = formatLogRecord({
 *   category: ["dfos", "server"],
 *   level: "info",
 *   message: ["Login of ", "x\nLogin of alice from 203.0.113.9", ""],
 *   rawMessage: "Login of {}",
 *   timestamp: 0,
 *   properties: {},
 * });
 * assert.ok(line.endsWith("Login of x\\x0aLogin of alice from 203.0.113.9\n"));
 * ```
 *
 * @module
 */

import { getTextFormatter, type LogRecord } from "@logtape/logtape";
import { printableText } from "../shared/names.ts";

/** The longest value in a record, in UTF-16 code units once escaped (a note of what was cut included). */
export const MAX_VALUE_CHARS = 4000;

/** The longest line of the log, in UTF-16 code units (the note of what was cut included, the newline not). */
export const MAX_RECORD_CHARS = 8000;

/**
 * Renders a value of a record: strings as they are, anything else (an error
 * with its stack, a number) with `Deno.inspect`; then escaped, on one line,
 * and cut to {@linkcode MAX_VALUE_CHARS}. Rendering a rendered value changes
 * nothing.
 *
 * @param value Any value.
 * @returns Its text.
 */
export function renderLogValue(value: unknown): string {
  const text = typeof value === "string" ? value : Deno.inspect(value);
  return cutText(printableText(text), MAX_VALUE_CHARS);
}

/**
 * Cuts `text` to `maxChars`, a note of how much was cut included, never
 * between the two halves of a character.
 *
 * @param text Any text.
 * @param maxChars The longest result.
 * @returns `text`, or its start followed by `... (N more characters)`.
 */
export function cutText(text: string, maxChars: number): string {
  if (text.length <= maxChars) return text;
  // The note's length depends on the count, which depends on the cut: size it for the longest count.
  const room = maxChars - `... (${text.length} more characters)`.length;
  let end = Math.max(0, room);
  const last = text.charCodeAt(end - 1);
  if (last >= 0xd800 && last <= 0xdbff) end--;
  return `${text.slice(0, end)}... (${text.length - end} more characters)`;
}

const layout = getTextFormatter({ timestamp: "date-time-timezone", value: renderLogValue, sanitize: false });

/**
 * Formats a record as one line: `2026-12-01 10:00:00.000 +00:00 [INF] dfos·server: message`.
 *
 * @param record The record.
 * @returns The line, with its newline.
 */
export function formatLogRecord(record: LogRecord): string {
  let line = layout(record);
  if (line.endsWith("\n")) line = line.slice(0, -1);
  return `${cutText(printableText(line), MAX_RECORD_CHARS)}\n`;
}
