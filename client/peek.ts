/**
 * `dfos peek REMOTE [--bytes N]`: the first bytes of a file, raw, on standard
 * output (usage in client/command_table.ts).
 *
 * @module
 */

import { byteSizeFlag, type ParsedArgs, UsageError } from "../shared/cli.ts";
import { type CommandContext, DEFAULT_PEEK_BYTES } from "./command_table.ts";
import { writeToStdout } from "./download.ts";
import { remoteName } from "./remote_name.ts";

export { DEFAULT_PEEK_BYTES };

/** Runs `peek` once. */
export async function run({ values, positionals }: ParsedArgs, { client, io }: CommandContext): Promise<void> {
  if (positionals.length !== 1) throw new UsageError("peek takes one REMOTE name");
  const name = remoteName(positionals[0]);
  const limit = byteSizeFlag(values.bytes, "bytes", DEFAULT_PEEK_BYTES);
  await writeToStdout(await (await client()).get(name, { limit }), io);
}
