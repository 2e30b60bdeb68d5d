/**
 * `dfos ls [PREFIX] [--json]`: the user's files, sorted by name, with size
 * and modification time.
 *
 * @module
 */

import { type Command, UsageError } from "../shared/cli.ts";
import type { ListEntry } from "../shared/messages.ts";
import { printableName } from "../shared/names.ts";
import { CLIENT_OPTIONS, CLIENT_OPTIONS_USAGE, withClient } from "./options.ts";

/** The `ls` subcommand. */
export const command: Command = {
  usage: `Usage: dfos ls [PREFIX] [--json] [options]

Lists your files whose names start with PREFIX (all by default), sorted by
name: size in bytes, modification time (UTC), name. Names are printed with
control characters escaped.

      --json               one JSON array of {name, size, mtime} (mtime in ISO 8601)
${CLIENT_OPTIONS_USAGE}`,
  options: { ...CLIENT_OPTIONS, json: { type: "boolean" } },
  async run({ values, positionals }) {
    if (positionals.length > 1) throw new UsageError("ls takes at most one PREFIX");
    const prefix = positionals[0] ?? "";
    const entries = await withClient({ values, positionals }, async (client) => {
      const entries: ListEntry[] = [];
      for await (const entry of client.list(prefix)) entries.push(entry);
      return entries;
    });
    const out = values.json ? formatJson(entries) : formatTable(entries);
    const writer = Deno.stdout.writable.getWriter();
    await writer.write(new TextEncoder().encode(out));
    writer.releaseLock();
  },
};

function formatJson(entries: ListEntry[]): string {
  const rows = entries.map((entry) => ({ ...entry, mtime: new Date(entry.mtime).toISOString() }));
  return JSON.stringify(rows, null, 2) + "\n";
}

function formatTable(entries: ListEntry[]): string {
  const width = Math.max(1, ...entries.map((entry) => String(entry.size).length));
  return entries.map((entry) => {
    const time = new Date(entry.mtime).toISOString().slice(0, 16).replace("T", " ");
    return `${String(entry.size).padStart(width)}  ${time}  ${printableName(entry.name)}\n`;
  }).join("");
}
