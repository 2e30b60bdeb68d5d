/**
 * `LocalChunkLists`: each file's stored chunk list on the local disk, all of
 * a user's in one append-only log, `ROOT/<user>/.dfos-chunks/lists`: a
 * record per list written (the name, the version it describes, the chunk
 * entries), a record with an empty version when one is removed. The last
 * record of a name is its list. A list is metadata beside the file: not in
 * the quota, never listed, and kept in step with the file where
 * LocalStorage can (moved with a file's rename, removed with the file); one
 * left stale (a folder renamed, a file changed by other means) shows by its
 * version and is computed again.
 *
 * One log rather than a file per list: creating a file and renaming it into
 * place cost the server a fifth of its time per file in a first push of many
 * small files (docs/PERFORMANCE.md); an append costs an open, a write and a
 * close. Each record carries its length and a CRC-32, so a record cut short
 * by a crash ends the log there (the log is cut back to its last whole
 * record when read). When more than half of a log is dead records, it is
 * written again with only the live ones, to a temporary file renamed over
 * it.
 *
 * What is known of a log (where each name's last record is) is kept in
 * memory per user, and trusted only while the log is still the same file of
 * the size this process left it; the folders are checked at every access,
 * as for every other path (confinement.ts).
 *
 * @module
 */

import { join } from "node:path";
import { crc32 } from "../shared/crc32.ts";
import { RESERVED_PREFIX } from "../shared/names.ts";
import { type Confinement, type Folder, lstatOrNull, sameFile } from "./confinement.ts";
import { decodeRecord, encodeRecord, removeQuietly, writeMetaFile } from "./meta_files.ts";
import type { StoredChunkList } from "./storage.ts";

/** The folder, inside each user's folder, of the stored chunk lists. */
export const CHUNKS_DIR = `${RESERVED_PREFIX}chunks`;

/** The log's file name in {@linkcode CHUNKS_DIR}. */
export const LOG_FILE = "lists";

/** A record's header: its body's length and the body's CRC-32, both 4 bytes big-endian. */
const HEADER_BYTES = 8;

/** A log is written again once its dead records take more than half of it, and it is at least this large. */
const COMPACT_FROM_BYTES = 1024 * 1024;

/** The lists of an earlier layout (a file per list, named by the hash of the name): removed when seen. */
const OLD_LIST_FILE = /^[0-9a-f]{64}$/;

/** Where a name's last record lies in the log. */
interface Place {
  offset: number;
  length: number;
}

/** What this process knows of one user's log. */
interface LogState {
  /** The log file's device and inode, and its size as this process left it. */
  dev: number;
  ino: number | null;
  size: number;
  /** Each name's last record, removed names left out. */
  places: Map<string, Place>;
  /** Bytes of the live records (headers included). */
  live: number;
}

/** The users' stored chunk lists. */
export class LocalChunkLists {
  readonly #door: Confinement;
  /** Per user, what is known of the log. */
  readonly #logs = new Map<string, LogState>();

  /** @param door The storage root's door. */
  constructor(door: Confinement) {
    this.#door = door;
  }

  /**
   * The stored list of `name`, or null.
   *
   * @param user The user.
   * @param name The file's name (checked by the caller).
   */
  read(user: string, name: string): StoredChunkList | null {
    const folders = this.#existing(user);
    if (folders === null) return null;
    const log = this.#load(user, folders);
    const place = log?.places.get(name);
    if (log === undefined || place === undefined) return null;
    const bytes = readAt(logPath(folders), log, place);
    this.#door.recheck(folders, name);
    const list = bytes === null ? null : decodeList(bytes);
    return list?.name === name ? list : null;
  }

  /**
   * Stores a list, replacing any of that name.
   *
   * @param user The user.
   * @param list The list (its name checked by the caller).
   */
  write(user: string, list: StoredChunkList): Promise<void> {
    return Promise.resolve().then(() => this.#append(user, [list]));
  }

  /**
   * Every list stored for the user.
   *
   * @param user The user.
   */
  *all(user: string): Generator<StoredChunkList> {
    const folders = this.#existing(user);
    if (folders === null) return;
    const log = this.#load(user, folders);
    if (log === undefined) return;
    const bytes = readWhole(logPath(folders), log);
    this.#door.recheck(folders, LOG_FILE);
    if (bytes === null) return;
    for (const record of records(bytes)) {
      const list = decodeList(record.body);
      if (list !== null && log.places.get(list.name)?.offset === record.offset) yield list;
    }
  }

  /**
   * Moves the list of a renamed file to its new name (its content, and so
   * its version, is the same); nothing when there is none. Never throws: a
   * list left under the old name is stale, and computed again when asked.
   *
   * @param user The user.
   * @param from The old name.
   * @param to The new name.
   */
  move(user: string, from: string, to: string): void {
    try {
      const list = this.read(user, from);
      if (list !== null) this.#append(user, [{ ...list, name: to }, removal(from)]);
    } catch {
      // metadata: see above
    }
  }

  /**
   * Removes the list of `name`; nothing when there is none. Never throws: a
   * list left behind describes a version no file has, and is never used.
   *
   * @param user The user.
   * @param name The file's name.
   */
  remove(user: string, name: string): void {
    try {
      const folders = this.#existing(user);
      if (folders === null || !this.#load(user, folders)?.places.has(name)) return;
      this.#append(user, [removal(name)]);
    } catch {
      // metadata: see above
    }
  }

  /** Appends records to the user's log (made if missing), then writes it again if it is mostly dead. */
  #append(user: string, lists: StoredChunkList[]): void {
    const folders = this.#folders(user);
    const path = logPath(folders);
    const log = this.#load(user, folders) ?? this.#create(user, path);
    const encoded = lists.map(encodeList);
    const out = new Uint8Array(encoded.reduce((sum, bytes) => sum + bytes.length, 0));
    let at = 0;
    for (const bytes of encoded) {
      out.set(bytes, at);
      at += bytes.length;
    }
    {
      using file = openOwn(path, log, { append: true });
      if (file === null) {
        this.#logs.delete(user);
        throw new Error(`The chunk list log of user "${user}" changed while in use`);
      }
      this.#door.recheck(folders, LOG_FILE);
      writeAllSync(file, out);
    }
    let offset = log.size;
    lists.forEach((list, i) => {
      const length = encoded[i].length;
      place(log, list, { offset, length });
      offset += length;
    });
    log.size = offset;
    if (log.size >= COMPACT_FROM_BYTES && log.live * 2 < log.size) this.#compact(user, folders, log);
  }

  /** Writes the log again with only its live records. */
  #compact(user: string, folders: Folder[], log: LogState): void {
    const bytes = readWhole(logPath(folders), log);
    if (bytes === null) return;
    const kept: Uint8Array[] = [];
    const places = new Map<string, Place>();
    let size = 0;
    for (const record of records(bytes)) {
      const list = decodeList(record.body);
      if (list === null || log.places.get(list.name)?.offset !== record.offset) continue;
      const whole = bytes.subarray(record.offset, record.offset + record.length);
      kept.push(whole);
      places.set(list.name, { offset: size, length: whole.length });
      size += whole.length;
    }
    const out = new Uint8Array(size);
    let at = 0;
    for (const whole of kept) {
      out.set(whole, at);
      at += whole.length;
    }
    writeMetaFile(this.#door, folders, LOG_FILE, out);
    const info = lstatOrNull(logPath(folders));
    if (info === null || !info.isFile || info.size !== size) {
      this.#logs.delete(user);
      return;
    }
    this.#logs.set(user, { dev: info.dev, ino: info.ino, size, places, live: size });
  }

  /**
   * What is known of the user's log, read again when it is not the file of
   * the size this process left (or nothing was known); undefined when there
   * is no log.
   */
  #load(user: string, folders: Folder[]): LogState | undefined {
    const path = logPath(folders);
    const info = lstatOrNull(path);
    const known = this.#logs.get(user);
    if (info === null || !info.isFile) {
      this.#logs.delete(user);
      return undefined;
    }
    if (known !== undefined && sameFile(info, known) && info.size === known.size) return known;
    const log: LogState = { dev: info.dev, ino: info.ino, size: 0, places: new Map(), live: 0 };
    const bytes = readWhole(path, { ...log, size: info.size });
    this.#door.recheck(folders, LOG_FILE);
    if (bytes === null) {
      this.#logs.delete(user);
      return undefined;
    }
    for (const record of records(bytes)) {
      const list = decodeList(record.body);
      if (list !== null) place(log, list, record);
      log.size = record.offset + record.length;
    }
    if (log.size < bytes.length) cutBack(path, log);
    removeOldLists(folders.at(-1)!.path);
    this.#logs.set(user, log);
    return log;
  }

  /** Creates an empty log for the user. */
  #create(user: string, path: string): LogState {
    Deno.writeFileSync(path, new Uint8Array(0), { createNew: true, mode: 0o600 });
    const info = Deno.lstatSync(path);
    const log: LogState = { dev: info.dev, ino: info.ino, size: 0, places: new Map(), live: 0 };
    this.#logs.set(user, log);
    return log;
  }

  /** The user's folder and `.dfos-chunks`, checked, or null when there is none yet (nothing stored). */
  #existing(user: string): Folder[] | null {
    const home = this.#door.home(user);
    if (lstatOrNull(join(home.path, CHUNKS_DIR)) === null) return null;
    return [home, this.#door.meta(home, CHUNKS_DIR)];
  }

  #folders(user: string): Folder[] {
    const home = this.#door.home(user);
    return [home, this.#door.meta(home, CHUNKS_DIR)];
  }
}

/** The record that removes `name`'s list. */
function removal(name: string): StoredChunkList {
  return { name, version: "", entries: new Uint8Array(0) };
}

/** Takes a record into what is known: the name's last place, or its removal. */
function place(log: LogState, list: StoredChunkList, at: Place): void {
  const before = log.places.get(list.name);
  if (before !== undefined) log.live -= before.length;
  if (list.version === "") {
    log.places.delete(list.name);
  } else {
    log.places.set(list.name, { offset: at.offset, length: at.length });
    log.live += at.length;
  }
}

function logPath(folders: Folder[]): string {
  return join(folders.at(-1)!.path, LOG_FILE);
}

/** A list as a whole record: header, then the record of meta_files.ts. */
function encodeList(list: StoredChunkList): Uint8Array {
  const body = encodeRecord({ fields: [list.name, list.version], tail: list.entries });
  const out = new Uint8Array(HEADER_BYTES + body.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, body.length);
  view.setUint32(4, crc32(body));
  out.set(body, HEADER_BYTES);
  return out;
}

/** A record's body as a list; null when it is not one. */
function decodeList(body: Uint8Array): StoredChunkList | null {
  const record = decodeRecord(body, 2);
  if (record === null) return null;
  const [name, version] = record.fields;
  return { name, version, entries: record.tail };
}

/** The whole records of a log's bytes, in order, up to the first one cut short or damaged. */
function* records(bytes: Uint8Array): Generator<{ offset: number; length: number; body: Uint8Array }> {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  let at = 0;
  while (at + HEADER_BYTES <= bytes.length) {
    const length = view.getUint32(at);
    const end = at + HEADER_BYTES + length;
    if (end > bytes.length) return;
    const body = bytes.subarray(at + HEADER_BYTES, end);
    if (crc32(body) !== view.getUint32(at + 4)) return;
    yield { offset: at, length: HEADER_BYTES + length, body };
    at = end;
  }
}

/**
 * Opens the log only if it is the file known (a regular file, the same
 * inode and size): null otherwise.
 */
function openOwn(path: string, log: LogState, options: Deno.OpenOptions): Deno.FsFile | null {
  const before = lstatOrNull(path);
  if (before === null || !before.isFile || !sameFile(before, log) || before.size !== log.size) return null;
  const file = Deno.openSync(path, options);
  const info = file.statSync();
  if (!info.isFile || !sameFile(info, log) || info.size !== log.size) {
    file.close();
    return null;
  }
  return file;
}

/** The `length` bytes at `offset` of the log; null when it is not the file known or is shorter. */
function readAt(path: string, log: LogState, at: Place): Uint8Array | null {
  try {
    using file = openOwn(path, log, { read: true });
    if (file === null) return null;
    file.seekSync(at.offset + HEADER_BYTES, Deno.SeekMode.Start);
    const body = new Uint8Array(at.length - HEADER_BYTES);
    return readFull(file, body) ? body : null;
  } catch {
    return null;
  }
}

/** The whole log; null when it is not the file known. */
function readWhole(path: string, log: LogState): Uint8Array | null {
  try {
    using file = openOwn(path, log, { read: true });
    if (file === null) return null;
    const bytes = new Uint8Array(log.size);
    return readFull(file, bytes) ? bytes : null;
  } catch {
    return null;
  }
}

function readFull(file: Deno.FsFile, into: Uint8Array): boolean {
  let at = 0;
  while (at < into.length) {
    const n = file.readSync(into.subarray(at));
    if (n === null) return false;
    at += n;
  }
  return true;
}

function writeAllSync(file: Deno.FsFile, bytes: Uint8Array): void {
  let at = 0;
  while (at < bytes.length) at += file.writeSync(bytes.subarray(at));
}

/** Cuts a log back to its last whole record (what follows was cut short by a crash). */
function cutBack(path: string, log: LogState): void {
  try {
    using file = Deno.openSync(path, { write: true });
    const info = file.statSync();
    if (info.isFile && sameFile(info, log)) file.truncateSync(log.size);
  } catch {
    // left as it is: the next read stops at the same place
  }
}

/** Removes the lists of the earlier layout (a file per list), which nothing reads any more. */
function removeOldLists(dir: string): void {
  try {
    for (const entry of Deno.readDirSync(dir)) {
      if (entry.isFile && OLD_LIST_FILE.test(entry.name)) removeQuietly(join(dir, entry.name));
    }
  } catch {
    // metadata
  }
}
