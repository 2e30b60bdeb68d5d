/**
 * `dfos put LOCAL [REMOTE]`: uploads a file, or standard input with `-`.
 *
 * @module
 */

import { type Command, UsageError } from "../shared/cli.ts";
import { fileChunks } from "../shared/file_chunks.ts";
import { CLIENT_OPTIONS, CLIENT_OPTIONS_USAGE, VERIFY_OPTION, VERIFY_USAGE, withClient } from "./options.ts";
import { Progress } from "./progress.ts";
import { baseName, remoteName } from "./remote_name.ts";

/** The `put` subcommand. */
export const command: Command = {
  usage: `Usage: dfos put LOCAL [REMOTE] [options]

Uploads LOCAL to the server as REMOTE (default: LOCAL's base name). LOCAL "-"
reads standard input, and then REMOTE is required. REMOTE may contain folders
("notes/today.txt"). The upload replaces any previous version at once, and
only once it has arrived whole.

${VERIFY_USAGE}
${CLIENT_OPTIONS_USAGE}`,
  options: { ...CLIENT_OPTIONS, ...VERIFY_OPTION },
  async run({ values, positionals }) {
    if (positionals.length < 1 || positionals.length > 2) {
      throw new UsageError("put takes LOCAL and an optional REMOTE");
    }
    const [local, remote] = positionals;
    if (local === "-" && remote === undefined) throw new UsageError("put - needs a REMOTE name");
    const name = remoteName(remote ?? baseName(local));
    let source: Deno.FsFile | typeof Deno.stdin = Deno.stdin;
    let size: number | null = null;
    if (local !== "-") {
      const file = await Deno.open(local, { read: true }).catch((error) => {
        throw new Error(`Cannot read "${local}": ${(error as Error).message}`);
      });
      const info = await file.stat();
      if (!info.isFile) {
        file.close();
        throw new UsageError(`Cannot upload "${local}": it is not a file`);
      }
      source = file;
      size = info.size;
    }
    try {
      await withClient({ values, positionals }, async (client) => {
        const progress = new Progress(name, size);
        try {
          // A file is read in turn, synchronously; standard input, which may wait on a pipe, ahead.
          const chunks = fileChunks(source, { limit: size ?? Infinity, readAhead: source === Deno.stdin });
          await client.put(name, chunks, {
            size,
            digest: values.verify ? "sha256" : "crc32",
            onProgress: (bytes) => progress.update(bytes),
          });
        } finally {
          progress.done();
        }
      });
    } finally {
      if (source !== Deno.stdin) source.close();
    }
  },
};
