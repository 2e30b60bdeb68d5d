/**
 * `LocalChunkLists`: each file's stored chunk list on the local disk, at
 * `ROOT/<user>/.dfos-chunks/<sha256 of the name>`, a record of the name and
 * the version it describes with the chunk entries as its tail (meta_files.ts).
 * A list is metadata beside the file: not in the quota, never listed, and
 * kept in step with the file where LocalStorage can (moved with a file's
 * rename, removed with the file); one left stale (a folder renamed, a file
 * changed by other means) shows by its version and is computed again.
 *
 * @module
 */

import { join } from "node:path";
import { RESERVED_PREFIX } from "../shared/names.ts";
import { type Confinement, type Folder, lstatOrNull } from "./confinement.ts";
import {
  decodeRecord,
  encodeRecord,
  hashName,
  readMetaFile,
  removeQuietly,
  writeMetaFile,
  writeMetaFileAsync,
} from "./meta_files.ts";
import type { StoredChunkList } from "./storage.ts";

/** The folder, inside each user's folder, of the stored chunk lists. */
export const CHUNKS_DIR = `${RESERVED_PREFIX}chunks`;

/** A stored chunk list's file name: 64 hex digits. */
const LIST_FILE = /^[0-9a-f]{64}$/;

/** The users' stored chunk lists. */
export class LocalChunkLists {
  readonly #door: Confinement;

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
    const list = this.#decode(readMetaFile(this.#door, folders, hashName(name)));
    return list?.name === name ? list : null;
  }

  /**
   * Stores a list, replacing any of that name.
   *
   * @param user The user.
   * @param list The list (its name checked by the caller).
   */
  async write(user: string, list: StoredChunkList): Promise<void> {
    const bytes = encodeRecord({ fields: [list.name, list.version], tail: list.entries });
    await writeMetaFileAsync(this.#door, this.#folders(user), hashName(list.name), bytes);
  }

  /**
   * Every list stored for the user.
   *
   * @param user The user.
   */
  *all(user: string): Generator<StoredChunkList> {
    const folders = this.#existing(user);
    if (folders === null) return;
    const files = [...Deno.readDirSync(folders[1].path)].filter((entry) => entry.isFile && LIST_FILE.test(entry.name));
    for (const file of files) {
      const list = this.#decode(readMetaFile(this.#door, folders, file.name));
      if (list !== null && hashName(list.name) === file.name) yield list;
    }
  }

  /**
   * Moves the list of a renamed file to its new name (its content, and so
   * its version, is the same); nothing when there is none.
   *
   * @param user The user.
   * @param from The old name.
   * @param to The new name.
   */
  move(user: string, from: string, to: string): void {
    const list = this.read(user, from);
    if (list === null) return;
    const bytes = encodeRecord({ fields: [to, list.version], tail: list.entries });
    writeMetaFile(this.#door, this.#folders(user), hashName(to), bytes);
    this.remove(user, from);
  }

  /**
   * Removes the list of `name`; nothing when there is none.
   *
   * @param user The user.
   * @param name The file's name.
   */
  remove(user: string, name: string): void {
    const folders = this.#existing(user);
    if (folders !== null) removeQuietly(join(folders[1].path, hashName(name)));
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

  #decode(bytes: Uint8Array | null): StoredChunkList | null {
    const record = bytes === null ? null : decodeRecord(bytes, 2);
    if (record === null) return null;
    const [name, version] = record.fields;
    return { name, version, entries: record.tail };
  }
}
