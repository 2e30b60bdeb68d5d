/**
 * `dfos mv OLD NEW`: renames a remote file or folder (usage in
 * client/command_table.ts).
 *
 * @module
 */

import { type ParsedArgs, UsageError } from "../shared/cli.ts";
import type { CommandContext } from "./command_table.ts";
import { baseName, remoteName } from "./remote_name.ts";

/** Runs `mv` once. */
export async function run({ positionals }: ParsedArgs, { client }: CommandContext): Promise<void> {
  if (positionals.length !== 2) throw new UsageError("mv takes OLD and NEW");
  const from = remoteName(positionals[0].replace(/\/+$/, ""));
  const target = positionals[1];
  const to = remoteName(target.endsWith("/") ? `${target.replace(/\/+$/, "")}/${baseName(from)}` : target);
  await (await client()).move(from, to);
}
