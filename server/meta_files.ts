/**
 * The small files LocalStorage keeps about a user's files, in its own folders
 * inside the user's folder (`.dfos-chunks`, `.dfos-kept`): a record of a few
 * strings and a binary tail, named by a hash so that no user name ever
 * becomes a path, read only when it is a regular file in the folder checked,
 * and written whole or not at all (a temporary file renamed over it).
 *
 * @module
 */

import { createHash } from "node:crypto";
import { join } from "node:path";
import { type Confinement, type Folder, lstatOrNull } from "./confinement.ts";

/** A record: its strings, then its binary tail. */
export interface MetaRecord {
  /** The strings, in order. */
  fields: string[];
  /** The rest of the file. */
  tail: Uint8Array;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });
/** The record's format, first in each file. */
const MAGIC = "dfos-meta-1";

/**
 * The hex SHA-256 of a string: a file name for what a user named.
 *
 * @param text The string.
 * @returns 64 hex digits.
 */
export function hashName(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

/**
 * Encodes a record: each string as a 4-byte big-endian length and its UTF-8
 * bytes (the format's name first), then the tail.
 *
 * @param record The record.
 * @returns Its bytes.
 */
export function encodeRecord(record: MetaRecord): Uint8Array {
  const strings = [MAGIC, ...record.fields].map((field) => encoder.encode(field));
  const size = strings.reduce((sum, bytes) => sum + 4 + bytes.length, 0) + record.tail.length;
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  let at = 0;
  for (const bytes of strings) {
    view.setUint32(at, bytes.length);
    out.set(bytes, at + 4);
    at += 4 + bytes.length;
  }
  out.set(record.tail, at);
  return out;
}

/**
 * Decodes a record of `count` strings; null when the bytes are not one.
 *
 * @param bytes The file's bytes.
 * @param count How many strings it holds (besides the format's name).
 * @returns The record, or null.
 */
export function decodeRecord(bytes: Uint8Array, count: number): MetaRecord | null {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  const fields: string[] = [];
  let at = 0;
  try {
    for (let i = 0; i <= count; i++) {
      if (at + 4 > bytes.length) return null;
      const length = view.getUint32(at);
      if (at + 4 + length > bytes.length) return null;
      fields.push(decoder.decode(bytes.subarray(at + 4, at + 4 + length)));
      at += 4 + length;
    }
  } catch {
    return null; // not UTF-8
  }
  if (fields.shift() !== MAGIC) return null;
  return { fields, tail: bytes.slice(at) };
}

/**
 * Reads a file of one of the storage's own folders: null when it is missing
 * or not a regular file, or the folders changed while it was read.
 *
 * @param door The storage root's door.
 * @param folders The user's folder and the storage's folder in it.
 * @param file The file's name in the last folder.
 * @returns Its bytes, or null.
 */
export function readMetaFile(door: Confinement, folders: Folder[], file: string): Uint8Array | null {
  const path = join(folders.at(-1)!.path, file);
  const before = lstatOrNull(path);
  if (before === null || !before.isFile) return null;
  let bytes: Uint8Array;
  try {
    using opened = Deno.openSync(path, { read: true });
    const info = opened.statSync();
    if (!info.isFile || info.ino !== before.ino || info.dev !== before.dev) return null;
    bytes = new Uint8Array(info.size);
    let at = 0;
    while (at < bytes.length) {
      const n = opened.readSync(bytes.subarray(at));
      if (n === null) return null;
      at += n;
    }
  } catch {
    return null;
  }
  door.recheck(folders, file);
  return bytes;
}

/**
 * Writes a file of one of the storage's own folders whole: a temporary file
 * beside it, renamed over it once the folders are checked again.
 *
 * @param door The storage root's door.
 * @param folders The user's folder and the storage's folder in it.
 * @param file The file's name in the last folder.
 * @param bytes Its bytes.
 */
export function writeMetaFile(door: Confinement, folders: Folder[], file: string, bytes: Uint8Array): void {
  const temp = tempBeside(folders, file);
  Deno.writeFileSync(temp, bytes, { createNew: true, mode: 0o600 });
  placeMetaFile(door, folders, file, temp);
}

/**
 * {@linkcode writeMetaFile} with the file written on Deno's blocking-I/O
 * thread: creating a file costs 0.1-1 ms on a busy ext4, which the event loop
 * need not wait for when nobody waits for the file.
 *
 * @param door The storage root's door.
 * @param folders The user's folder and the storage's folder in it.
 * @param file The file's name in the last folder.
 * @param bytes Its bytes.
 */
export async function writeMetaFileAsync(
  door: Confinement,
  folders: Folder[],
  file: string,
  bytes: Uint8Array,
): Promise<void> {
  const temp = tempBeside(folders, file);
  await Deno.writeFile(temp, bytes, { createNew: true, mode: 0o600 });
  placeMetaFile(door, folders, file, temp);
}

/** A new temporary name beside `file` in the last folder. */
function tempBeside(folders: Folder[], file: string): string {
  return join(folders.at(-1)!.path, `${file}.${crypto.randomUUID()}.tmp`);
}

/** Renames a written temporary file over `file` once the folders are checked again; on failure it goes. */
function placeMetaFile(door: Confinement, folders: Folder[], file: string, temp: string): void {
  try {
    door.recheck(folders, file);
    Deno.renameSync(temp, join(folders.at(-1)!.path, file));
  } catch (error) {
    removeQuietly(temp);
    throw error;
  }
}

/**
 * Removes a path; nothing when it is gone.
 *
 * @param path The path.
 */
export function removeQuietly(path: string): void {
  try {
    Deno.removeSync(path);
  } catch {
    // gone already
  }
}
