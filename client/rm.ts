/**
 * `dfos rm REMOTE...` and `dfos rm -r FOLDER...`: deletes files, all over
 * one connection (usage in client/command_table.ts). A folder's files are
 * found by listing it and deleted one by one; on a terminal the command asks
 * first, elsewhere it needs `--force`.
 *
 * @module
 */

import { type ParsedArgs, UsageError } from "../shared/cli.ts";
import { printableName } from "../shared/names.ts";
import { DfosError, Status } from "../shared/status.ts";
import type { CommandContext } from "./command_table.ts";
import { remoteName } from "./remote_name.ts";
import { runEach } from "./run_each.ts";

/** Runs `rm` once. */
export async function run({ values, positionals }: ParsedArgs, { client, io }: CommandContext): Promise<void> {
  if (positionals.length === 0) throw new UsageError("rm takes at least one REMOTE name");
  if (!values.recursive) {
    const names = positionals.map(remoteName);
    const connection = await client();
    await runEach("rm", names, io, async (name) => {
      await connection.remove(name);
    }, { label: (name) => name, failed: "files could not be deleted", reportOne: true });
    return;
  }
  const folders = positionals.map((folder) => remoteName(folder.replace(/\/+$/, "")));
  if (!values.force && !io.interactive) {
    throw new UsageError("rm -r deletes without asking only with --force when standard input is not a terminal");
  }
  const connection = await client();
  const names: string[] = [];
  for (const folder of folders) {
    const found: string[] = [];
    for await (const entry of connection.list(folder)) {
      if (entry.name === folder || entry.name.startsWith(folder + "/")) found.push(entry.name);
    }
    if (found.length === 0) {
      throw new DfosError(Status.NOT_FOUND, `Cannot find "${printableName(folder)}": no such file or folder`);
    }
    names.push(...found);
  }
  if (!values.force) {
    const what = folders.map((folder) => `"${printableName(folder)}"`).join(", ");
    const yes = await io.confirm(`Delete ${names.length} file${names.length === 1 ? "" : "s"} under ${what}? [y/N] `);
    if (!yes) {
      io.warn("dfos rm: nothing deleted");
      return;
    }
  }
  await runEach("rm", names, io, async (name) => {
    await connection.remove(name);
  }, { label: (name) => name, failed: "files could not be deleted", reportOne: true });
}
