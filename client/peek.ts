/**
 * `dfos peek REMOTE [--bytes N]`: the first bytes of a file, raw, on standard
 * output.
 *
 * @module
 */

import { type Command, integerFlag, UsageError } from "../shared/cli.ts";
import { CLIENT_OPTIONS, CLIENT_OPTIONS_USAGE, withClient } from "./options.ts";
import { writeToStdout } from "./download.ts";
import { remoteName } from "./remote_name.ts";

/** Bytes shown when `--bytes` is not given, as in the original project. */
export const DEFAULT_PEEK_BYTES = 1024;

/** The `peek` subcommand. */
export const command: Command = {
  usage: `Usage: dfos peek REMOTE [--bytes N] [options]

Writes the first ${DEFAULT_PEEK_BYTES} bytes of REMOTE (or N with --bytes) to standard output, raw.

  -n, --bytes N            how many bytes (default ${DEFAULT_PEEK_BYTES})
${CLIENT_OPTIONS_USAGE}`,
  options: { ...CLIENT_OPTIONS, bytes: { type: "string", short: "n" } },
  async run({ values, positionals }) {
    if (positionals.length !== 1) throw new UsageError("peek takes one REMOTE name");
    const name = remoteName(positionals[0]);
    const limit = integerFlag(values.bytes, "bytes", DEFAULT_PEEK_BYTES);
    await withClient({ values, positionals }, async (client) => {
      await writeToStdout(await client.get(name, { limit }));
    });
  },
};
