/**
 * Where a download goes: `saveToFile()` writes it under a temporary name
 * beside the target and renames it into place only once its length and
 * digest are checked; `writeToStdout()` streams it.
 *
 * @module
 */

import { dirname, join } from "node:path";
import { TempFile } from "../shared/temp_file.ts";
import type { Download } from "./connection.ts";

/**
 * Creates the temporary file for a download to `path`, beside it (so the final
 * rename stays on one file system). Call before asking the server, so that an
 * unwritable destination fails first.
 *
 * @param path The local file to be written.
 * @returns The temporary file.
 */
export async function prepareLocalFile(path: string): Promise<TempFile> {
  try {
    // One download at a time: each piece is written in place (less CPU than the write-behind thread, and
    // nothing else waits on this process).
    return await TempFile.create(join(dirname(path), `.${crypto.randomUUID()}.dfos-part`), {
      mode: 0o644,
      writeBehind: false,
    });
  } catch (error) {
    throw new Error(`Cannot write "${path}": ${(error as Error).message.replace(/:.*$/s, "")}`, { cause: error });
  }
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
 */
export async function writeToStdout(download: Download): Promise<void> {
  const writer = Deno.stdout.writable.getWriter();
  try {
    for await (const chunk of download.body.chunks()) await writer.write(chunk);
  } finally {
    writer.releaseLock();
  }
}
