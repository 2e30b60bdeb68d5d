/**
 * Where a download goes (`openLocalTarget()`): standard output; a special
 * file (/dev/null, a FIFO, a device), written as the body arrives; or a
 * regular file, written under a temporary name beside it and renamed into
 * place only once its length and digest are checked, the temporary removed
 * on failure and on interrupt. `writeToStdout()` streams a body out.
 *
 * @module
 */

import { dirname, join } from "node:path";
import { TempFile } from "../shared/temp_file.ts";
import type { CommandIo } from "./command_table.ts";
import type { Download } from "./connection.ts";

/** A place a download is saved: opened before the request, closed in any case. */
export interface LocalTarget {
  /** Reads the download's body into the target. */
  save(download: Download): Promise<void>;
  /** Closes it; a temporary file not moved into place is removed. */
  close(): Promise<void>;
}

/** Paths that name this process's standard output (written like "-"). */
const STDOUT_PATHS = ["/dev/stdout", "/dev/fd/1", "/proc/self/fd/1"];

/**
 * Opens the place to save a download to `path`: "-" or /dev/stdout is
 * standard output; an existing path that is not a regular file or a folder
 * is written directly; anything else goes through a temporary file beside
 * it, which `io.atInterrupt` removes if the command is interrupted.
 *
 * @param path The local path, or "-".
 * @param io Where to register the interrupt cleanup, and standard output.
 * @returns The target.
 */
export async function openLocalTarget(path: string, io: CommandIo): Promise<LocalTarget> {
  if (path === "-" || STDOUT_PATHS.includes(path)) {
    return { save: (download) => writeToStdout(download, io), close: () => Promise.resolve() };
  }
  const info = await Deno.stat(path).catch(() => null);
  if (info !== null && !info.isFile && !info.isDirectory) return await openSpecialFile(path);
  // The cleanup is in place before the file exists: a signal between the two would otherwise leave it behind.
  const tempPath = temporaryPath(path);
  const forget = io.atInterrupt(() => {
    try {
      Deno.removeSync(tempPath);
    } catch {
      // not made yet, or already gone
    }
  });
  let temp: TempFile;
  try {
    temp = await prepareLocalFile(path, tempPath);
  } catch (error) {
    forget();
    throw error;
  }
  return {
    save: (download) => saveToFile(download, temp, path),
    close: async () => {
      await temp.remove();
      forget();
    },
  };
}

/** A FIFO, a device or a socket: opened for writing (not created, not truncated), written as the body arrives. */
async function openSpecialFile(path: string): Promise<LocalTarget> {
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path, { write: true });
  } catch (error) {
    throw new Error(`Cannot write "${path}": ${(error as Error).message.replace(/:.*$/s, "")}`, { cause: error });
  }
  let open = true;
  return {
    async save(download) {
      const writer = file.writable.getWriter();
      try {
        for await (const chunk of download.body.chunks()) await writer.write(chunk);
        await writer.close();
        open = false;
      } finally {
        writer.releaseLock();
      }
    },
    close() {
      if (open) {
        open = false;
        try {
          file.close();
        } catch {
          // closed with its stream
        }
      }
      return Promise.resolve();
    },
  };
}

/**
 * Creates the temporary file for a download to `path`, beside it (so the final
 * rename stays on one file system). Call before asking the server, so that an
 * unwritable destination fails first.
 *
 * @param path The local file to be written.
 * @param tempPath The temporary file's path (default: a new hidden name beside `path`).
 * @returns The temporary file.
 */
export async function prepareLocalFile(path: string, tempPath = temporaryPath(path)): Promise<TempFile> {
  try {
    // One download at a time: each piece is written in place (less CPU than the write-behind thread, and
    // nothing else waits on this process).
    return await TempFile.create(tempPath, {
      mode: 0o644,
      writeBehind: false,
    });
  } catch (error) {
    throw new Error(`Cannot write "${path}": ${(error as Error).message.replace(/:.*$/s, "")}`, { cause: error });
  }
}

/** A new hidden name beside `path` for its download's temporary file. */
function temporaryPath(path: string): string {
  return join(dirname(path), `.${crypto.randomUUID()}.dfos-part`);
}

/**
 * Saves a download to `path` atomically through `temp` (from
 * {@linkcode prepareLocalFile}): on any failure the previous file at `path`,
 * if any, is untouched and the temporary file is removed.
 *
 * @param download The download, before its body is read.
 * @param temp The temporary file beside `path`.
 * @param path The local file.
 */
export async function saveToFile(download: Download, temp: TempFile, path: string): Promise<void> {
  try {
    // Each piece goes to the file with its hold: its receive block is reused once written.
    for await (const piece of download.body.pieces()) await temp.write(piece);
    await temp.moveTo(path);
  } catch (error) {
    await temp.remove();
    throw error;
  }
}

/**
 * Writes a download to standard output as it arrives. A body that turns out
 * corrupt at the end has been written already; the error still fails the
 * command.
 *
 * @param download The download, before its body is read.
 * @param io Standard output.
 */
export async function writeToStdout(download: Download, io: CommandIo): Promise<void> {
  for await (const chunk of download.body.chunks()) await io.write(chunk);
}
