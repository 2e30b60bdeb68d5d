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
 * Saves a download to `path` atomically: on any failure the previous file at
 * `path`, if any, is untouched and no temporary file is left.
 *
 * @param download The download, before its body is read.
 * @param path The local file.
 */
export async function saveToFile(download: Download, path: string): Promise<void> {
  const temp = await TempFile.create(join(dirname(path), `.${crypto.randomUUID()}.dfos-part`), 0o644);
  try {
    for await (const chunk of download.body.chunks()) await temp.write(chunk);
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
