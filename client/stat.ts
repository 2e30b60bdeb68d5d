/**
 * `dfos stat REMOTE... [--sha256]`: a file's size, modification time and,
 * on request, its SHA-256 as the server computes it (usage in
 * client/command_table.ts).
 *
 * @module
 */

import { type ParsedArgs, UsageError } from "../shared/cli.ts";
import { printableName } from "../shared/names.ts";
import type { CommandContext } from "./command_table.ts";
import { remoteName } from "./remote_name.ts";
import { runEach } from "./run_each.ts";

/** Runs `stat` once. */
export async function run({ values, positionals }: ParsedArgs, { client, io }: CommandContext): Promise<void> {
  if (positionals.length === 0) throw new UsageError("stat takes at least one REMOTE name");
  const names = positionals.map(remoteName);
  const connection = await client();
  await runEach("stat", names, io, async (name) => {
    const info = await connection.stat(name, { digest: values.sha256 ? "sha256" : null });
    const time = new Date(info.mtime).toISOString().replace("T", " ").replace("Z", " UTC");
    await io.write(
      `name:   ${printableName(info.name)}\nsize:   ${info.size}\nmtime:  ${time}\n` +
        (info.digest === null ? "" : `sha256: ${info.digest}\n`),
    );
  }, { label: (name) => name, failed: "files could not be shown" });
}
