/**
 * `dfos rm REMOTE...`: deletes files, all over one connection.
 *
 * @module
 */

import { type Command, CommandFailure, exitCodeFor, UsageError } from "../shared/cli.ts";
import { DfosError } from "../shared/status.ts";
import { printableName } from "../shared/names.ts";
import { CLIENT_OPTIONS, CLIENT_OPTIONS_USAGE, withClient } from "./options.ts";
import { remoteName } from "./remote_name.ts";

/** The `rm` subcommand. */
export const command: Command = {
  usage: `Usage: dfos rm REMOTE... [options]

Deletes each REMOTE file. Every name is tried; the command fails (with the
exit code of the first failure) if any could not be deleted.

${CLIENT_OPTIONS_USAGE}`,
  options: CLIENT_OPTIONS,
  async run({ values, positionals }) {
    if (positionals.length === 0) throw new UsageError("rm takes at least one REMOTE name");
    const names = positionals.map(remoteName);
    const failures = await withClient({ values, positionals }, async (client) => {
      const failures: unknown[] = [];
      for (const name of names) {
        try {
          await client.remove(name);
        } catch (error) {
          if (!(error instanceof DfosError)) throw error; // the connection failed: stop
          console.error(`dfos rm: ${printableName(name)}: ${(error as Error).message}`);
          failures.push(error);
        }
      }
      return failures;
    });
    if (failures.length > 0) {
      throw new CommandFailure(
        `${failures.length} of ${names.length} files could not be deleted`,
        exitCodeFor(failures[0]),
      );
    }
  },
};
