/**
 * `LocalKeptUploads`: uploads kept for a later try (`Upload.keep`), on the
 * local disk in `ROOT/<user>/.dfos-kept/`: the bytes so far as `<id>.part`
 * and the caller's state as `<id>.state` (a record of the name and key, with
 * the state as its tail; meta_files.ts), where `<id>` is made of hashes of the
 * name and key. The part is moved there from `.dfos-partial` by one rename,
 * and moved back under a new name when the upload is taken up again, so a
 * kept upload is continued by one try at a time and is never emptied by the
 * start-up's clearing of `.dfos-partial`. Kept uploads go only when taken up
 * and finished, dropped, or older than `--partial-ttl` (`sweep`).
 *
 * @module
 */

import { join } from "node:path";
import { RESERVED_PREFIX } from "../shared/names.ts";
import { type Confinement, type Folder, lstatOrNull } from "./confinement.ts";
import { decodeRecord, encodeRecord, hashName, readMetaFile, removeQuietly, writeMetaFile } from "./meta_files.ts";
import type { KeptUpload } from "./storage.ts";

/** The folder, inside each user's folder, of the kept uploads. */
export const KEPT_DIR = `${RESERVED_PREFIX}kept`;

/** The largest state kept with an upload. */
export const MAX_KEPT_STATE_BYTES = 16 * 1024 * 1024;

const PART = ".part";
const STATE = ".state";
/** A kept upload's file: its id (a name's hash, a key's shortened hash) and kind. */
const KEPT_FILE = /^([0-9a-f]{64}\.[0-9a-f]{32})\.(part|state)$/;

/** The users' kept uploads. */
export class LocalKeptUploads {
  readonly #door: Confinement;
  /** Users known to have no `.dfos-kept` (only this storage makes one): most never do, and a failed look costs. */
  readonly #none = new Set<string>();

  /** @param door The storage root's door. */
  constructor(door: Confinement) {
    this.#door = door;
  }

  /**
   * Keeps an upload: its closed temporary file moves into `.dfos-kept`, and
   * its state is written beside it.
   *
   * @param home The user's folder, as the upload found it.
   * @param partial The `.dfos-partial` the temporary file is in.
   * @param temp The temporary file's path.
   * @param upload The name, key and state.
   */
  keep(home: Folder, partial: Folder, temp: string, upload: { name: string; key: string; state: Uint8Array }): void {
    const kept = this.#door.meta(home, KEPT_DIR);
    this.#none.delete(home.label);
    const id = keptId(upload.name, upload.key);
    this.#door.recheck([home, partial, kept], upload.name);
    Deno.renameSync(temp, join(kept.path, id + PART));
    const record = encodeRecord({ fields: [upload.name, upload.key], tail: upload.state });
    writeMetaFile(this.#door, [home, kept], id + STATE, record);
  }

  /**
   * Takes a kept upload out to continue it: its bytes move back into
   * `.dfos-partial` under a new name, and its state file goes. Null when
   * there is none.
   *
   * @param user The user.
   * @param name The name it is to be stored under.
   * @param key The key it was begun with.
   * @returns The bytes' new path and the state, or null.
   */
  take(user: string, name: string, key: string): { path: string; state: Uint8Array } | null {
    const folders = this.#existing(user);
    if (folders === null) return null;
    const [home, kept] = folders;
    const id = keptId(name, key);
    const record = decodeState(readMetaFile(this.#door, folders, id + STATE));
    const part = join(kept.path, id + PART);
    if (record === null || record.name !== name || record.key !== key || !lstatOrNull(part)?.isFile) return null;
    const partial = this.#door.partial(home);
    const path = join(partial.path, `${crypto.randomUUID()}.part`);
    this.#door.recheck([home, kept, partial], name);
    Deno.renameSync(part, path);
    removeQuietly(join(kept.path, id + STATE));
    return { path, state: record.state };
  }

  /**
   * The user's kept uploads.
   *
   * @param user The user.
   */
  list(user: string): KeptUpload[] {
    const folders = this.#existing(user);
    const list: KeptUpload[] = [];
    if (folders === null) return list;
    for (const [id, files] of this.#byId(folders[1].path)) {
      if (!files.has("state") || !files.has("part")) continue;
      const record = decodeState(readMetaFile(this.#door, folders, id + STATE));
      const part = lstatOrNull(join(folders[1].path, id + PART));
      if (record === null || !part?.isFile || keptId(record.name, record.key) !== id) continue;
      const updated = Math.max(part.mtime?.getTime() ?? 0, files.get("state")!);
      list.push({ name: record.name, key: record.key, size: part.size, state: record.state, updated });
    }
    return list;
  }

  /**
   * Drops the kept upload of `name` and `key`, or with no key every kept
   * upload of `name`; nothing when there is none.
   *
   * @param user The user.
   * @param name The name.
   * @param key The key, or undefined for all.
   */
  drop(user: string, name: string, key?: string): void {
    const folders = this.#existing(user);
    if (folders === null) return;
    const dir = folders[1].path;
    const ids = key === undefined
      ? [...this.#byId(dir).keys()].filter((id) => id.startsWith(hashName(name) + "."))
      : [keptId(name, key)];
    for (const id of ids) {
      removeQuietly(join(dir, id + PART));
      removeQuietly(join(dir, id + STATE));
    }
  }

  /**
   * Drops every user's kept uploads (and pieces of one, as a crash may
   * leave) last written before `before`.
   *
   * @param before Milliseconds since the Unix epoch.
   * @returns How many were dropped.
   */
  sweep(before: number): number {
    let dropped = 0;
    for (const entry of Deno.readDirSync(this.#door.root)) {
      if (!entry.isDirectory || entry.name.startsWith(".")) continue;
      let dir: string;
      try {
        const home = this.#door.home(entry.name);
        const path = join(home.path, KEPT_DIR);
        if (!lstatOrNull(path)?.isDirectory) continue;
        dir = this.#door.meta(home, KEPT_DIR).path;
      } catch {
        continue; // not a user's folder (a bad name, a link)
      }
      for (const [id, files] of this.#byId(dir)) {
        if (Math.max(...files.values()) >= before) continue;
        removeQuietly(join(dir, id + PART));
        removeQuietly(join(dir, id + STATE));
        dropped++;
      }
    }
    return dropped;
  }

  /** The kept uploads' files in `dir` by id: which of `part` and `state` there are, with their mtimes. */
  #byId(dir: string): Map<string, Map<string, number>> {
    const ids = new Map<string, Map<string, number>>();
    for (const entry of Deno.readDirSync(dir)) {
      const match = entry.isFile ? KEPT_FILE.exec(entry.name) : null;
      const info = match === null ? null : lstatOrNull(join(dir, entry.name));
      if (match === null || info === null) continue;
      const files = ids.get(match[1]) ?? new Map<string, number>();
      files.set(match[2], info.mtime?.getTime() ?? 0);
      ids.set(match[1], files);
    }
    return ids;
  }

  /** The user's folder and `.dfos-kept`, checked, or null when there is none yet (nothing kept). */
  #existing(user: string): Folder[] | null {
    const home = this.#door.home(user);
    if (this.#none.has(user)) return null;
    if (lstatOrNull(join(home.path, KEPT_DIR)) === null) {
      this.#none.add(user);
      return null;
    }
    return [home, this.#door.meta(home, KEPT_DIR)];
  }
}

/** A kept upload's id: the name's hash and the key's, shortened. */
function keptId(name: string, key: string): string {
  return `${hashName(name)}.${hashName(key).slice(0, 32)}`;
}

function decodeState(bytes: Uint8Array | null): { name: string; key: string; state: Uint8Array } | null {
  const record = bytes === null ? null : decodeRecord(bytes, 2);
  if (record === null) return null;
  return { name: record.fields[0], key: record.fields[1], state: record.tail };
}
