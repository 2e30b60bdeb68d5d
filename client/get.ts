/**
 * `dfos get REMOTE [LOCAL]`: downloads a file, or writes it to standard
 * output with `-`.
 *
 * @module
 */

import { join } from "node:path";
import { type Command, UsageError } from "../shared/cli.ts";
import { CLIENT_OPTIONS, CLIENT_OPTIONS_USAGE, VERIFY_OPTION, VERIFY_USAGE, withClient } from "./options.ts";
import { prepareLocalFile, saveToFile, writeToStdout } from "./download.ts";
import { Progress } from "./progress.ts";
import { baseName, remoteName } from "./remote_name.ts";

/** The `get` subcommand. */
export const command: Command = {
  usage: `Usage: dfos get REMOTE [LOCAL] [options]

Downloads REMOTE to LOCAL (default: REMOTE's base name in the current folder;
a folder puts it inside; "-" writes to standard output). The local file is
replaced only once the download has arrived whole and its digest matches.

${VERIFY_USAGE}
${CLIENT_OPTIONS_USAGE}`,
  options: { ...CLIENT_OPTIONS, ...VERIFY_OPTION },
  async run({ values, positionals }) {
    if (positionals.length < 1 || positionals.length > 2) {
      throw new UsageError("get takes REMOTE and an optional LOCAL");
    }
    const name = remoteName(positionals[0]);
    const local = await localTarget(positionals[1] ?? baseName(name), baseName(name));
    const temp = local === "-" ? null : await prepareLocalFile(local);
    try {
      await withClient({ values, positionals }, async (client) => {
        const progress = new Progress(name, null);
        const download = await client.get(name, {
          digest: values.verify ? "sha256" : "crc32",
          onProgress: (bytes) => progress.update(bytes),
        });
        progress.total = download.file.size;
        try {
          if (temp === null) await writeToStdout(download);
          else await saveToFile(download, temp, local);
        } finally {
          progress.done();
        }
      });
    } finally {
      await temp?.remove();
    }
  },
};

/** The local path to write: a folder gets the base name inside it. */
async function localTarget(local: string, base: string): Promise<string> {
  if (local === "-") return local;
  try {
    if ((await Deno.stat(local)).isDirectory) return join(local, base);
  } catch {
    // does not exist yet: it is the file's path
  }
  return local;
}
