/**
 * `dfos ls [PREFIX] [--json]`: the user's files, sorted by name, with size
 * and modification time in UTC (usage in client/command_table.ts). An empty
 * listing prints nothing on a pipe and "No files" on a terminal.
 *
 * @module
 */

import { type ParsedArgs, UsageError } from "../shared/cli.ts";
import type { ListEntry } from "../shared/messages.ts";
import { printableName } from "../shared/names.ts";
import type { CommandContext } from "./command_table.ts";

/** Runs `ls` once. */
export async function run({ values, positionals }: ParsedArgs, { client, io }: CommandContext): Promise<void> {
  if (positionals.length > 1) throw new UsageError("ls takes at most one PREFIX");
  const prefix = positionals[0] ?? "";
  const entries: ListEntry[] = [];
  for await (const entry of (await client()).list(prefix)) entries.push(entry);
  if (values.json) return await io.write(formatJson(entries));
  // An empty table is nothing on a pipe (as ls prints nothing), and said in words to a person.
  if (entries.length === 0 && Deno.stdout.isTerminal()) {
    return await io.write(prefix === "" ? "No files\n" : `No files under "${printableName(prefix)}"\n`);
  }
  await io.write(formatTable(entries));
}

/**
 * What `JSON.stringify` leaves raw but a terminal must not get raw (it escapes
 * C0 itself): DEL, C1, and the bidi and line-breaking format characters, as
 * `printableName` escapes them in the table.
 */
const JSON_UNPRINTABLE = /[\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

function formatJson(entries: ListEntry[]): string {
  const rows = entries.map((entry) => ({ ...entry, mtime: new Date(entry.mtime).toISOString() }));
  // Still valid JSON with the same values: these characters occur only inside strings, and "\uXXXX" is their escape.
  return JSON.stringify(rows, null, 2).replace(JSON_UNPRINTABLE, (char) => {
    return `\\u${char.charCodeAt(0).toString(16).padStart(4, "0")}`;
  }) + "\n";
}

function formatTable(entries: ListEntry[]): string {
  const width = Math.max(1, ...entries.map((entry) => String(entry.size).length));
  return entries.map((entry) => {
    const time = utcMinute(entry.mtime);
    return `${String(entry.size).padStart(width)}  ${time}  ${printableName(entry.name)}\n`;
  }).join("");
}

/** A time to the minute in UTC, marked so: `2026-12-04 19:06 UTC` (as `stat` shows it, to the millisecond). */
function utcMinute(ms: number): string {
  return new Date(ms).toISOString().slice(0, 16).replace("T", " ") + " UTC";
}
