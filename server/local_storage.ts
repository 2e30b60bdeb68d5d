/**
 * `LocalStorage`: users' files on the local disk, `ROOT/<user>/<name>`.
 *
 * This is the only module that touches user files, and every path it uses
 * comes through one door, `Confinement` (confinement.ts): names checked,
 * every folder on the way `lstat`ed and refused if a link, folder identities
 * kept and looked at again where a swap would matter, hard-linked files
 * neither read nor listed, and one change at a time per user. Uploads are
 * `LocalUpload`s (local_upload.ts), which commit themselves; listings are
 * sorted walks kept between pages (`Listings`, listing.ts).
 *
 * Metadata calls (`lstat`, `mkdir`, `open`, `rename`, `unlink`) are
 * synchronous: each takes microseconds on a local file system, where an async
 * call costs 40-60 µs of scheduling and a small operation makes about ten of
 * them (docs/PERFORMANCE.md). Two are not, where a file is large: the file
 * system's work of allocating or freeing its data grows with its size, so a
 * commit's rename then runs off the event loop, and `remove` moves the file
 * aside into `.dfos-partial` (a rename of a name, cheap) and frees it off the
 * event loop. File bodies are read and written asynchronously.
 *
 * A rename (`mv`) is one `rename(2)` of the file or the whole folder, after
 * both ways are walked and the target is found free, inside the user's one
 * change at a time; it makes the folders on the new way and prunes those it
 * empties, as an upload and a delete do.
 *
 * A condition on a file's version (a commit's, a removal's or a rename's
 * `ifVersion`) is compared with the `lstat` of the name inside that same
 * change, just before the `rename(2)` or `unlink(2)`: no change by this
 * storage comes between (one server per disk; a process writing to the
 * folder behind the server's back is not stopped).
 *
 * `.dfos-partial` is emptied at start-up. `usage` counts as `du` would in
 * blocks of {@linkcode BLOCK_BYTES}.
 *
 * @module
 */

import { join } from "node:path";
import { fileChunks } from "../shared/file_chunks.ts";
import { isReserved, utf8Length } from "../shared/names.ts";
import type { PooledBytes } from "../shared/pooled_bytes.ts";
import { DfosError, Status } from "../shared/status.ts";
import {
  checkMovedNames,
  checkName,
  checkNewName,
  Confinement,
  type FileId,
  type Folder,
  LARGE_FILE_BYTES,
  lstatFile,
  lstatOrNull,
  PARTIAL_DIR,
  removeFolders,
  removeOwnFile,
} from "./confinement.ts";
import { ChangeCounters } from "./change_counters.ts";
import { ChangeWaiters } from "./change_waiters.ts";
import { LocalKeptUploads } from "./kept_uploads.ts";
import { Listings } from "./listing.ts";
import { LocalChunkLists } from "./local_chunk_lists.ts";
import { LocalUpload, versionOf } from "./local_upload.ts";
import {
  type BeginOptions,
  type ChangeCounter,
  changedOnServer,
  footprint,
  type KeptUpload,
  type ListOptions,
  type ListPage,
  type Moved,
  type ReadHandle,
  type Removed,
  type RemoveOptions,
  type RenameOptions,
  type Storage,
  type StoredChunkList,
  type Upload,
  type Usage,
  type VersionedInfo,
} from "./storage.ts";

export { PARTIAL_DIR };

/**
 * The block the quota counts in: the allocation unit of most local file
 * systems (ext4, XFS, btrfs, APFS and NTFS by default). Not the root's
 * `blksize`, which is a preferred I/O size (NFS gives 1 MiB there).
 */
export const BLOCK_BYTES = 4096;

/** Options for {@linkcode LocalStorage.open}. */
export interface LocalStorageOptions {
  /**
   * Flush each upload's data and its folder to the disk before replying
   * (survives power loss; costs a disk round trip per upload).
   *
   * @default {false}
   */
  fsync?: boolean;
}

/** Users' files under one root folder on the local disk. */
export class LocalStorage implements Storage {
  /** The root, as a real path with no symbolic links in it. */
  readonly root: string;
  /** The quota counts files in blocks of 4 KiB, and a folder as one (`footprint`). */
  readonly blockSize = BLOCK_BYTES;
  readonly #door: Confinement;
  readonly #fsync: boolean;
  readonly #uploads = new Set<LocalUpload>();
  readonly #listings = new Listings();
  readonly #chunkLists: LocalChunkLists;
  readonly #kept: LocalKeptUploads;
  readonly #counters: ChangeCounters;
  /** The `watch` requests waiting on a user's counter, woken by the bump that moves it. */
  readonly #waiters = new ChangeWaiters();
  /** Chunk lists being written. */
  readonly #writing = new Set<Promise<void>>();

  private constructor(root: string, options: LocalStorageOptions) {
    this.root = root;
    this.#door = new Confinement(root);
    this.#fsync = options.fsync ?? false;
    this.#chunkLists = new LocalChunkLists(this.#door);
    this.#kept = new LocalKeptUploads(this.#door);
    this.#counters = new ChangeCounters((user, counter) => this.#waiters.changed(user, counter));
  }

  /**
   * Opens (and creates) the root folder and removes what a previous run left
   * in `.dfos-partial`.
   *
   * @param root The root folder.
   * @param options Durability.
   * @returns The storage.
   */
  static async open(root: string, options: LocalStorageOptions = {}): Promise<LocalStorage> {
    await Deno.mkdir(root, { recursive: true, mode: 0o750 });
    const storage = new LocalStorage(await Deno.realPath(root), options);
    for await (const entry of Deno.readDir(storage.root)) {
      if (!entry.isDirectory) continue;
      await Deno.remove(join(storage.root, entry.name, PARTIAL_DIR), { recursive: true })
        .catch((error) => {
          if (!(error instanceof Deno.errors.NotFound)) throw error;
        });
    }
    return storage;
  }

  async prepareUser(user: string): Promise<void> {
    await Deno.mkdir(this.#door.userPath(user), { recursive: true, mode: 0o750 });
    this.#door.home(user);
  }

  async beginUpload(user: string, name: string, options: BeginOptions = {}): Promise<Upload> {
    const upload = await LocalUpload.begin(this.#door, this.#uploadOptions(user, name, options.keep));
    // A new keepable upload of the name replaces what was kept of it.
    if (options.keep !== undefined) await this.#door.change(user, () => this.#kept.drop(user, name));
    return this.#track(upload);
  }

  async resumeUpload(user: string, name: string, key: string): Promise<{ upload: Upload; state: Uint8Array } | null> {
    checkName(name);
    const taken = await this.#door.change(user, () => this.#kept.take(user, name, key));
    if (taken === null) return null;
    const upload = await LocalUpload.resume(this.#door, this.#uploadOptions(user, name, key), taken.path);
    return { upload: this.#track(upload), state: taken.state };
  }

  #uploadOptions(user: string, name: string, key: string | undefined) {
    return {
      user,
      name,
      fsync: this.#fsync,
      keep: key === undefined ? undefined : { kept: this.#kept, key },
      onCommit: () => this.#counters.bump(user, this.#door.userPath(user), [{ name }]),
    };
  }

  #track(upload: LocalUpload): LocalUpload {
    this.#uploads.add(upload);
    upload.settled.then(() => this.#uploads.delete(upload));
    return upload;
  }

  keptUploads(user: string): Promise<KeptUpload[]> {
    return Promise.resolve().then(() => this.#kept.list(user));
  }

  async dropKept(user: string, name: string, key: string): Promise<void> {
    checkName(name);
    await this.#door.change(user, () => this.#kept.drop(user, name, key));
  }

  sweepKept(before: number): Promise<number> {
    return Promise.resolve().then(() => this.#kept.sweep(before));
  }

  readChunkList(user: string, name: string): Promise<StoredChunkList | null> {
    return Promise.resolve().then(() => {
      checkName(name);
      return this.#chunkLists.read(user, name);
    });
  }

  writeChunkList(user: string, list: StoredChunkList): Promise<void> {
    const written = Promise.resolve().then(() => {
      checkName(list.name);
      return this.#chunkLists.write(user, list);
    });
    // A caller may not wait for it (it is metadata); the close does.
    const settled = written.then(() => {}, () => {}).finally(() => this.#writing.delete(settled));
    this.#writing.add(settled);
    return written;
  }

  async *chunkLists(user: string): AsyncIterable<StoredChunkList> {
    yield* this.#chunkLists.all(user);
  }

  changes(user: string): Promise<ChangeCounter> {
    return Promise.resolve().then(() => this.#counters.get(user, this.#door.home(user).path));
  }

  changedNames(user: string, since: ChangeCounter, prefix: string): Promise<string[] | null> {
    return Promise.resolve().then(() => this.#counters.changedNames(user, this.#door.home(user).path, since, prefix));
  }

  /** Woken in process by the bump that moves the counter: only this server changes the disk. */
  waitForChange(user: string, since: ChangeCounter, signal: AbortSignal): Promise<void> {
    return this.#waiters.wait(user, since, signal, () => this.changes(user));
  }

  openRead(user: string, name: string): Promise<ReadHandle> {
    return Promise.resolve().then(() => {
      checkName(name);
      const { file, info } = this.#door.openFile(user, name);
      return new LocalReadHandle(file, name, info);
    });
  }

  async remove(user: string, name: string, options: RemoveOptions = {}): Promise<Removed> {
    checkName(name);
    const { removed, aside } = await this.#door.change(user, () => {
      const unlinked = this.#unlink(user, name, options.ifVersion);
      this.#counters.bump(user, this.#door.userPath(user), [{ name }]);
      this.#chunkLists.remove(user, name);
      return unlinked;
    });
    // Freed off the event loop, once the user's other changes may go on.
    if (aside !== null) await removeOwnFile(aside.path, aside.id);
    return removed;
  }

  /**
   * Unlinks `name`, if of the version `ifVersion` when given (a large file
   * is moved aside into `.dfos-partial`, to be freed by the caller) and the
   * folders it leaves empty.
   */
  #unlink(
    user: string,
    name: string,
    ifVersion: string | undefined,
  ): { removed: Removed; aside: { path: string; id: FileId } | null } {
    const { path, folders } = this.#door.existing(user, name);
    // A hard-linked file may be removed: unlinking this name leaves the other name's data alone.
    const info = lstatFile(path, name);
    if (ifVersion !== undefined && versionOf(info) !== ifVersion) throw changedOnServer("remove", name);
    let aside = null;
    if (info.size >= LARGE_FILE_BYTES && (info.nlink ?? 1) === 1) {
      const partial = this.#door.partial(folders[0]);
      aside = { path: join(partial.path, `${crypto.randomUUID()}.gone`), id: info };
      Deno.renameSync(path, aside.path);
    } else {
      Deno.removeSync(path);
    }
    // Folders exist only to hold files: drop the ones this left empty, each still the folder walked above.
    const pruned = this.#pruneEmpty(folders, name);
    return { removed: { name, size: info.size, mtime: info.mtime?.getTime() ?? 0, folders: pruned }, aside };
  }

  async rename(user: string, from: string, to: string, options: RenameOptions = {}): Promise<Moved> {
    checkName(from);
    checkName(to);
    if (to === from || to.startsWith(from + "/")) {
      throw new DfosError(Status.CONFLICT, `Cannot move "${from}" to "${to}": it would go into itself`);
    }
    return await this.#door.change(user, () => this.#rename(user, from, to, options));
  }

  /** One `rename(2)`, after every check: both ways walked, the target free, the folders on both ways the ones walked. */
  #rename(user: string, from: string, to: string, options: RenameOptions): Moved {
    const source = this.#door.existing(user, from);
    const info = lstatOrNull(source.path);
    if (info === null) throw new DfosError(Status.NOT_FOUND, `Cannot find "${from}": no such file or folder`);
    if (info.isSymlink) {
      throw new DfosError(Status.FORBIDDEN, `Cannot move "${from}": it is a symbolic link, which dfos does not follow`);
    }
    if (!info.isFile && !info.isDirectory) {
      throw new DfosError(Status.FORBIDDEN, `Cannot move "${from}": it is not a regular file or a folder`);
    }
    if (options.ifVersion !== undefined && (!info.isFile || versionOf(info) !== options.ifVersion)) {
      throw changedOnServer("move", from);
    }
    const home = source.folders[0];
    checkNewName(home, to); // nothing there, no file or link on the way
    const { files, longest } = info.isDirectory ? folderFiles(source.path) : { files: 1, longest: "" };
    checkMovedNames(from, to, longest, options.maxNameBytes);
    options.admit?.(missingFolders(home.path, to));
    const target = this.#door.makeWay(home, to);
    try {
      if (lstatOrNull(target.path) !== null) {
        throw new DfosError(Status.CONFLICT, `Cannot move "${from}" to "${to}": "${to}" exists`);
      }
      this.#door.recheck(source.folders, from);
      this.#door.recheck([home, ...target.folders], to);
      Deno.renameSync(source.path, target.path);
    } catch (error) {
      removeFolders(target.created);
      throw error;
    }
    this.#counters.bump(user, home.path, [{ name: from, folder: !info.isFile }, { name: to, folder: !info.isFile }]);
    if (info.isFile) {
      try {
        this.#chunkLists.move(user, from, to);
      } catch {
        // metadata: a list left under the old name is stale, and computed again when asked
      }
    }
    const foldersRemoved = this.#pruneEmpty(source.folders, from);
    return { from, to, files, foldersCreated: target.created.length, foldersRemoved };
  }

  /** Removes the folders on a way, deepest first, that are empty now, each still the folder walked; returns how many. */
  #pruneEmpty(folders: Folder[], name: string): number {
    let pruned = 0;
    for (let depth = folders.length - 1; depth > 0; depth--) {
      try {
        this.#door.recheck(folders.slice(0, depth + 1), name);
        Deno.removeSync(folders[depth].path);
        pruned++;
      } catch {
        break; // not empty, already gone, or replaced
      }
    }
    return pruned;
  }

  async list(user: string, options: ListOptions): Promise<ListPage> {
    return await this.#listings.page(user, this.#door.home(user).path, options);
  }

  stat(user: string, name: string): Promise<VersionedInfo | null> {
    return Promise.resolve().then(() => this.#stat(user, name));
  }

  #stat(user: string, name: string): VersionedInfo | null {
    checkName(name);
    let path: string;
    try {
      path = this.#door.existing(user, name).path;
    } catch (error) {
      if (error instanceof DfosError && error.code === Status.NOT_FOUND) return null;
      throw error;
    }
    const info = lstatOrNull(path);
    return info?.isFile ? { name, size: info.size, mtime: info.mtime?.getTime() ?? 0, version: versionOf(info) } : null;
  }

  async usage(user: string): Promise<Usage> {
    const usage = { bytes: 0, entries: 0 };
    await countUsage(this.#door.home(user).path, usage);
    return usage;
  }

  async abortUploads(): Promise<void> {
    await Promise.all([...this.#uploads].map((upload) => upload.abort()));
    await Promise.all(this.#writing);
    this.#counters.close();
  }
}

/** A file opened for reading: the bytes of the version opened, whatever happens to its name. */
class LocalReadHandle implements ReadHandle {
  readonly info: VersionedInfo;
  readonly #file: Deno.FsFile;
  #open = true;

  constructor(file: Deno.FsFile, name: string, info: Deno.FileInfo) {
    this.#file = file;
    this.info = { name, size: info.size, mtime: info.mtime?.getTime() ?? 0, version: versionOf(info) };
  }

  async *readRange(offset: number, length: number): AsyncIterable<PooledBytes> {
    const { name, size } = this.info;
    if (
      !Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 ||
      offset + length > size
    ) {
      throw new DfosError(Status.BAD_REQUEST, `Cannot read ${length} bytes at ${offset} of "${name}": it has ${size}`);
    }
    this.#file.seekSync(offset, Deno.SeekMode.Start);
    yield* fileChunks(this.#file, { limit: length });
  }

  async *read(limit = Infinity): AsyncIterable<PooledBytes> {
    // Up to the size seen at open: a file that shrinks shows as a short body.
    this.#file.seekSync(0, Deno.SeekMode.Start);
    yield* fileChunks(this.#file, { limit: Math.min(limit, this.info.size) });
  }

  close(): void {
    if (!this.#open) return;
    this.#open = false;
    this.#file.close();
  }
}

/**
 * What a folder move takes along, in one walk of `dir` (links not followed,
 * `.dfos-*` left out): how many regular files at any depth, and `/REST` of
 * the one with the longest path below it ("" for an empty folder).
 */
function folderFiles(dir: string): { files: number; longest: string } {
  let files = 0;
  let longest = "";
  for (const entry of Deno.readDirSync(dir)) {
    if (entry.isSymlink || isReserved(entry.name)) continue;
    let below = `/${entry.name}`;
    if (entry.isDirectory) {
      const inner = folderFiles(join(dir, entry.name));
      files += inner.files;
      below += inner.longest;
    } else if (entry.isFile) files++;
    if (utf8Length(below) > utf8Length(longest)) longest = below;
  }
  return { files, longest };
}

/** The folders on the way to `name` under `home` that do not exist yet. */
function missingFolders(home: string, name: string): number {
  const segments = name.split("/").slice(0, -1);
  let path = home;
  for (let i = 0; i < segments.length; i++) {
    path = join(path, segments[i]);
    if (lstatOrNull(path) === null) return segments.length - i;
  }
  return 0;
}

/**
 * Adds to `usage` what the quota counts under `dir`: every regular file
 * (hard-linked or not) and folder, but no link and nothing in `.dfos-*`.
 */
async function countUsage(dir: string, usage: Usage): Promise<void> {
  const children: string[] = [];
  try {
    for await (const entry of Deno.readDir(dir)) {
      if (!entry.isSymlink && !isReserved(entry.name)) children.push(entry.name);
    }
  } catch (error) {
    if (error instanceof Deno.errors.NotFound || error instanceof Deno.errors.NotADirectory) return;
    throw error;
  }
  for (const child of children) {
    const path = join(dir, child);
    const info = lstatOrNull(path);
    if (info?.isDirectory) {
      usage.bytes += BLOCK_BYTES;
      usage.entries++;
      await countUsage(path, usage);
    } else if (info?.isFile) {
      usage.bytes += footprint(info.size, BLOCK_BYTES);
      usage.entries++;
    }
  }
}
