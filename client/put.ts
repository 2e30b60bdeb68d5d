/**
 * `dfos put`: uploads files, or standard input with `-`, all over one
 * connection (usage in client/command_table.ts). The arguments are read by
 * one rule: the last ends in "/" (a remote folder), or there are at most two
 * and the second, a remote name, is not also a local path.
 *
 * @module
 */

import { type ParsedArgs, UsageError } from "../shared/cli.ts";
import { fileChunks } from "../shared/file_chunks.ts";
import { type CommandContext, wantsResume } from "./command_table.ts";
import { Progress } from "./progress.ts";
import { baseName, remoteName } from "./remote_name.ts";
import { runEach } from "./run_each.ts";

/** One upload: a local file (or `-`), the remote name, and the size seen before connecting. */
interface Upload {
  local: string;
  name: string;
  size: number | null;
}

/** Runs `put` once. */
export async function run({ values, positionals }: ParsedArgs, { client, io, signal }: CommandContext): Promise<void> {
  const uploads = await plan(positionals, values.as as string | undefined);
  const connection = await client();
  await runEach("put", uploads, io, async ({ local, name, size }) => {
    if (local !== "-" && wantsResume(values, size)) {
      const progress = new Progress(name, size);
      try {
        const mtime = (await Deno.stat(local)).mtime?.getTime() ?? Date.now();
        // Loaded when needed: the chunk machinery costs a command's start some 15 ms (node:crypto).
        const { uploadFile } = await import("./chunk_upload.ts");
        await uploadFile(connection, { path: local, size: size ?? 0, mtime }, name, {
          signal,
          onProgress: (bytes) => progress.update(bytes),
          replaces: true, // if the server has the name, changed chunks go as deltas (else one round trip says not)
        });
      } finally {
        progress.done();
      }
      return;
    }
    let source: Deno.FsFile | typeof Deno.stdin = Deno.stdin;
    if (local !== "-") {
      source = await Deno.open(local, { read: true }).catch((error) => {
        throw new Error(`Cannot read "${local}": ${(error as Error).message}`);
      });
    }
    try {
      const progress = new Progress(name, size);
      try {
        // A file is read in turn, synchronously; standard input, which may wait on a pipe, ahead.
        const chunks = fileChunks(source, { limit: size ?? Infinity, readAhead: source === Deno.stdin });
        await connection.put(name, chunks, {
          size,
          signal,
          digest: values.verify ? "sha256" : "crc32",
          onProgress: (bytes) => progress.update(bytes),
        });
      } finally {
        progress.done();
      }
    } finally {
      if (source !== Deno.stdin) source.close();
    }
  }, { label: (upload) => upload.local, failed: "files could not be uploaded" });
}

/** Reads the arguments by the rule above, checks every name and local file, and returns the uploads. */
async function plan(positionals: string[], as: string | undefined): Promise<Upload[]> {
  if (positionals.length === 0) throw new UsageError("put takes LOCAL, or LOCAL... REMOTE_FOLDER/");
  const last = positionals[positionals.length - 1];
  let pairs: [string, string][];
  if (as !== undefined) {
    if (positionals.length !== 1) throw new UsageError("put --as NAME takes one LOCAL");
    pairs = [[last, as]];
  } else if (positionals.length >= 2 && last.endsWith("/")) {
    const folder = last.replace(/\/+$/, "");
    if (folder !== "") remoteName(folder);
    const locals = positionals.slice(0, -1);
    if (locals.includes("-")) throw new UsageError("put - takes a REMOTE name, not a folder");
    pairs = locals.map((local) => [local, folder === "" ? baseName(local) : `${folder}/${baseName(local)}`]);
  } else if (positionals.length === 1) {
    if (last === "-") throw new UsageError("put - needs a REMOTE name");
    pairs = [[last, baseName(last)]];
  } else if (positionals.length === 2) {
    const [local, remote] = positionals;
    await refuseLocalRemote(local, remote);
    pairs = [[local, remote]];
  } else {
    throw new UsageError(
      `put of several files needs a remote folder last, ending in "/" ("docs/", or "/" for the top), not "${last}"`,
    );
  }
  const seen = new Set<string>();
  const uploads: Upload[] = [];
  for (const [local, remote] of pairs) {
    const name = remoteName(remote);
    if (seen.has(name)) throw new UsageError(`Cannot upload two files as "${name}"`);
    seen.add(name);
    uploads.push({ local, name, size: local === "-" ? null : await localFileSize(local) });
  }
  return uploads;
}

/**
 * Refuses a two-argument put whose REMOTE is also a local path: `put *.pdf`
 * matching two files must not upload one under the other's name. The shell
 * calls it with REMOTE as typed, before reading it against its remote folder.
 *
 * @param local The LOCAL argument.
 * @param remote The REMOTE argument, as typed.
 * @throws {UsageError} when REMOTE is a local path too.
 */
export async function refuseLocalRemote(local: string, remote: string): Promise<void> {
  if (!await localPathExists(remote)) return;
  throw new UsageError(
    `Cannot tell whether "${remote}" is a remote name or a second file to upload: it is a local path too. ` +
      `To upload several files, end with a remote folder ("docs/", or "/" for the top); ` +
      `to store the file under that name, use "dfos put ${local} --as ${remote}"`,
  );
}

/** The size of a local file to upload; refuses what is not a readable regular file. */
async function localFileSize(local: string): Promise<number> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(local);
  } catch (error) {
    throw new Error(`Cannot read "${local}": ${(error as Error).message}`);
  }
  if (!info.isFile) throw new UsageError(`Cannot upload "${local}": it is not a file`);
  return info.size;
}

async function localPathExists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch {
    return false;
  }
}
