/**
 * `dfos get`: downloads files, a remote folder with `-r`, or one file to
 * standard output with `-`, all over one connection (usage in
 * client/command_table.ts). On a terminal it asks before it replaces a local
 * file, once per file, unless `--force`; elsewhere it replaces.
 *
 * @module
 */

import { isAbsolute, join } from "node:path";
import { type ParsedArgs, UsageError } from "../shared/cli.ts";
import { nameProblem, printableName } from "../shared/names.ts";
import { DfosError, Status } from "../shared/status.ts";
import { partialPath } from "./partial_path.ts";
import {
  CHUNKED_FROM_BYTES,
  type CommandContext,
  type CommandIo,
  RESUME_FROM_BYTES,
  wantsResume,
} from "./command_table.ts";
import type { DfosClient } from "./connection.ts";
import { openLocalTarget } from "./download.ts";
import { Progress } from "./progress.ts";
import { baseName, remoteName } from "./remote_name.ts";
import { runEach } from "./run_each.ts";

/** One download: the remote name and the local path ("-" for standard output). */
interface Download {
  name: string;
  local: string;
}

/** Runs `get` once. */
export async function run({ values, positionals }: ParsedArgs, { client, io, signal }: CommandContext): Promise<void> {
  const digest = values.verify ? "sha256" : "crc32";
  let downloads: Download[];
  let connection: DfosClient;
  if (values.recursive) {
    if (positionals.length < 1 || positionals.length > 2) {
      throw new UsageError("get -r takes FOLDER and an optional LOCAL_FOLDER");
    }
    const folder = remoteName(positionals[0].replace(/\/+$/, ""));
    const into = join(positionals[1] ?? ".", baseName(folder));
    connection = await client();
    downloads = await folderDownloads(connection, folder, into);
    if (downloads.length === 0) throw new DfosError(Status.NOT_FOUND, `Cannot find "${folder}": no files under it`);
    downloads = await approved(downloads, io, values.force === true);
  } else {
    // Asked before connecting: the questions come before the password's.
    downloads = await approved(await plan(positionals), io, values.force === true);
    if (downloads.length === 0) return;
    connection = await client();
  }
  await runEach("get", downloads, io, async ({ name, local }) => {
    if (await resumable(connection, values, name, local)) {
      const progress = new Progress(name, null);
      try {
        // Loaded when needed: the chunk machinery costs a command's start some 15 ms (node:crypto).
        const { downloadFile } = await import("./chunk_download.ts");
        await downloadFile(connection, name, local, {
          signal,
          digest,
          onProgress: (bytes) => progress.update(bytes),
        });
      } finally {
        progress.done();
      }
      return;
    }
    const target = await openLocalTarget(local, io);
    try {
      const progress = new Progress(name, null);
      try {
        const download = await connection.get(name, { digest, onProgress: (bytes) => progress.update(bytes) });
        progress.total = download.file.size;
        await target.save(download);
      } finally {
        progress.done();
      }
    } finally {
      await target.close();
    }
  }, { label: (download) => download.name, failed: "files could not be downloaded" });
}

/**
 * Whether a download goes resumably (`downloadFile`): to a regular file (or
 * none yet), with `--resume`; without `--no-resume`, when an interrupted
 * try's partial is there, for a new file from 64 MiB (one GET into the
 * partial), and for a replaced one from 4 GiB (by chunks; sizes asked with
 * STAT).
 */
async function resumable(
  client: DfosClient,
  values: Record<string, unknown>,
  name: string,
  local: string,
): Promise<boolean> {
  if (local === "-" || values["no-resume"]) return false;
  const info = await Deno.stat(local).catch(() => null);
  if (info !== null && !info.isFile) return false;
  if (values.resume) return true;
  if (!client.chunks) return false;
  if (await Deno.lstat(partialPath(local)).then((found) => found.isFile, () => false)) return true;
  const size = await client.stat(name).then((found) => found.size, () => null);
  return wantsResume(values, size, info === null ? RESUME_FROM_BYTES : CHUNKED_FROM_BYTES);
}

/**
 * The downloads to make: on a terminal (and without `--force`), a download
 * that would replace an existing local file is made only if the person says
 * yes to "Replace ./x? [y/N]", asked once per such file; the others are
 * dropped with a line on standard error. Without a terminal every file is
 * replaced, as the usage says.
 */
async function approved(downloads: Download[], io: CommandIo, force: boolean): Promise<Download[]> {
  if (force || !io.interactive) return downloads;
  const kept: Download[] = [];
  for (const download of downloads) {
    if (download.local === "-" || !(await isRegularFile(download.local))) {
      kept.push(download);
    } else if (await io.confirm(`Replace ${shownPath(download.local)}? [y/N] `)) {
      kept.push(download);
    } else {
      io.warn(`dfos get: Kept ${shownPath(download.local)}: not replaced`);
    }
  }
  return kept;
}

/** A local path as the question shows it: "./x" for a relative one, escaped. */
function shownPath(path: string): string {
  return printableName(isAbsolute(path) || path.startsWith(".") ? path : `./${path}`);
}

/** Reads the arguments: REMOTE [LOCAL], or REMOTE... LOCAL_FOLDER. */
async function plan(positionals: string[]): Promise<Download[]> {
  if (positionals.length === 0) throw new UsageError("get takes REMOTE and an optional LOCAL");
  if (positionals.length <= 2) {
    const name = remoteName(positionals[0]);
    return [{ name, local: await localTarget(positionals[1] ?? baseName(name), baseName(name)) }];
  }
  const folder = positionals[positionals.length - 1];
  if (!(await isDirectory(folder))) {
    throw new UsageError(`get of several files needs an existing local folder last, not "${folder}"`);
  }
  const downloads: Download[] = [];
  const seen = new Set<string>();
  for (const remote of positionals.slice(0, -1)) {
    const name = remoteName(remote);
    const local = join(folder, baseName(name));
    if (seen.has(local)) throw new UsageError(`Cannot save two files as "${local}"`);
    seen.add(local);
    downloads.push({ name, local });
  }
  return downloads;
}

/**
 * Every file under the remote `folder`, saved under `into` by its path below
 * the folder; the folders on the way are made as needed. A name the server
 * lists that is not under the folder, or breaks the naming rules, is refused:
 * only checked names become local paths.
 */
async function folderDownloads(client: DfosClient, folder: string, into: string): Promise<Download[]> {
  const downloads: Download[] = [];
  for await (const entry of client.list(folder + "/")) {
    const problem = nameProblem(entry.name);
    if (problem || !entry.name.startsWith(folder + "/")) {
      throw new Error(`Cannot save "${printableName(entry.name)}": the server listed a name not under "${folder}"`);
    }
    const local = join(into, ...entry.name.slice(folder.length + 1).split("/"));
    downloads.push({ name: entry.name, local });
  }
  const folders = new Set(downloads.map(({ local }) => join(local, "..")));
  for (const dir of folders) await Deno.mkdir(dir, { recursive: true });
  return downloads;
}

/** The local path to write: a folder gets the base name inside it. */
async function localTarget(local: string, base: string): Promise<string> {
  if (local === "-") return local;
  return (await isDirectory(local)) ? join(local, base) : local;
}

async function isRegularFile(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isFile;
  } catch {
    return false;
  }
}

async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isDirectory;
  } catch {
    return false;
  }
}
