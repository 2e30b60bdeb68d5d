/**
 * `LocalStorage`: users' files on the local disk, `ROOT/<user>/<name>`.
 *
 * This is the only module that touches user files, and every operation goes
 * through one door: the name is checked by shared/names.ts, then each folder
 * on the way is `lstat`ed, and a symbolic link anywhere on the path is refused
 * (Deno's `--allow-read`/`--allow-write` do not stop a link that points
 * outside, so this check is the wall). Each folder's identity (device and
 * inode) is kept, and looked at again where a swap would matter: after a file
 * is opened for reading, before each folder an `rm` prunes, and just before an
 * upload is renamed into place. A file opened for reading is `fstat`ed and must
 * be the very file that was `lstat`ed, so a link swapped in between is caught
 * too.
 *
 * Hard links: a file with more than one link may have its other name anywhere
 * on the same file system (a planted `ln /etc/shadow`), so it is neither read
 * nor listed. Replacing (upload) or removing such a name is allowed: `rename`
 * and `unlink` act on the name inside the user's folder, never on the data the
 * other name reaches. dfos itself never makes a hard link.
 *
 * Deno has no `openat`/`O_NOFOLLOW`, so every check is by path: a folder
 * swapped for a link in the microseconds between the last check and the
 * system call that uses it is not caught (docs/SECURITY.md says what remains).
 *
 * Metadata calls (`lstat`, `mkdir`, `open`, `rename`, `remove`) are synchronous:
 * each takes microseconds on a local file system, where an async call costs
 * 40-60 µs of scheduling and a small operation makes about ten of them
 * (docs/PERFORMANCE.md). File bodies are read and written asynchronously.
 *
 * Uploads go to `ROOT/<user>/.dfos-partial/<random>.part`, on the same file
 * system as their target, and are renamed over the target only when complete
 * (`commit`), or removed (`abort`). Names starting with `.dfos-` are reserved,
 * so no user name can reach that folder, and it is emptied at start-up. A body
 * takes a while to arrive, so `commit` first checks that the user's folder and
 * `.dfos-partial` are still the very folders the upload began in and that the
 * temporary path still names the upload's own file, and `abort` removes that
 * path only if it does: a link swapped in meanwhile would otherwise have the
 * rename move a file outside, or in from outside, or the removal delete one.
 * The quota's last check (`CommitOptions.admit`) is made in the same
 * synchronous step as the rename, with the size of the file it replaces and
 * the number of folders the commit created; a refused commit removes them.
 * `usage` counts as `du` would in blocks of {@linkcode BLOCK_BYTES}.
 *
 * A listing is one sorted walk, suspended between pages: each folder is read
 * once, when the walk reaches it, and each file `lstat`ed when its page is
 * made, so a listing of many pages costs about one walk. The walks kept for
 * their next page are bounded in number, in the names they hold and in time
 * (`SuspendedListings`); a page whose walk is not kept walks afresh from its
 * `after`, skipping the folders before it. A file added to a folder the walk
 * has read is not in that listing; one removed before its page, or a folder
 * removed before the walk reaches it, is left out.
 *
 * @module
 */

import { join } from "node:path";
import { fileChunks } from "../shared/file_chunks.ts";
import type { ListEntry } from "../shared/messages.ts";
import { excerpt, isReserved, nameProblem, RESERVED_PREFIX, userProblem } from "../shared/names.ts";
import { DfosError, Status } from "../shared/status.ts";
import { TempFile } from "../shared/temp_file.ts";
import {
  type CommitChange,
  type CommitOptions,
  type FileInfo,
  footprint,
  type ListOptions,
  type ListPage,
  type ReadHandle,
  type Removed,
  type Storage,
  type Upload,
  type Usage,
} from "./storage.ts";

/**
 * The block the quota counts in: the allocation unit of most local file
 * systems (ext4, XFS, btrfs, APFS and NTFS by default). Not the root's
 * `blksize`, which is a preferred I/O size (NFS gives 1 MiB there).
 */
export const BLOCK_BYTES = 4096;

/** The folder, inside each user's folder, that holds uploads in progress. */
export const PARTIAL_DIR = `${RESERVED_PREFIX}partial`;

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
  readonly #fsync: boolean;
  readonly #uploads = new Set<LocalUpload>();
  readonly #listings = new SuspendedListings();

  private constructor(root: string, options: LocalStorageOptions) {
    this.root = root;
    this.#fsync = options.fsync ?? false;
  }

  /**
   * Opens (and creates) the root folder and removes uploads left behind by a
   * previous run.
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
    await Deno.mkdir(this.#userPath(user), { recursive: true, mode: 0o750 });
    this.#userFolder(user);
  }

  async beginUpload(user: string, name: string): Promise<Upload> {
    checkName(name);
    const home = this.#userFolder(user);
    const partialPath = join(home.path, PARTIAL_DIR);
    try {
      Deno.mkdirSync(partialPath, { mode: 0o700 });
    } catch (error) {
      if (!(error instanceof Deno.errors.AlreadyExists)) throw error;
    }
    const partial = folderAt(partialPath, Deno.lstatSync(partialPath), name, PARTIAL_DIR);
    const temp = await TempFile.create(join(partialPath, `${crypto.randomUUID()}.part`));
    const tempId: FileId = await temp.stat();
    const upload = new LocalUpload({
      temp,
      tempId,
      name,
      commitTo: (path, tempId, admit) => this.#commitPath([home, partial], name, { tempPath: path, tempId, admit }),
      fsync: this.#fsync,
      done: (self) => this.#uploads.delete(self),
    });
    try {
      // Made where it was meant to be: neither folder was swapped for a link just before the create.
      checkPlace([home, partial], temp.path, tempId, name);
    } catch (error) {
      await upload.abort();
      throw error;
    }
    this.#uploads.add(upload);
    return upload;
  }

  openRead(user: string, name: string): Promise<ReadHandle> {
    return Promise.resolve().then(() => this.#openRead(user, name));
  }

  #openRead(user: string, name: string): ReadHandle {
    checkName(name);
    const { path, folders } = this.#existingPath(user, name);
    const before = lstatFile(path, name);
    const file = Deno.openSync(path, { read: true });
    try {
      const after = file.statSync();
      if (!sameFile(after, before) || !after.isFile) {
        throw new DfosError(Status.FORBIDDEN, `Cannot read "${name}": it changed while being opened`);
      }
      if ((after.nlink ?? 1) > 1) {
        throw new DfosError(
          Status.FORBIDDEN,
          `Cannot read "${name}": it has ${after.nlink} hard links, and dfos reads only files with one`,
        );
      }
      // A folder on the way swapped for a link after the walk above (and not swapped back) shows here.
      recheckFolders(folders, name);
      return new LocalReadHandle(file, { name, size: after.size, mtime: after.mtime?.getTime() ?? 0 });
    } catch (error) {
      file.close();
      throw error;
    }
  }

  remove(user: string, name: string): Promise<Removed> {
    return Promise.resolve().then(() => this.#remove(user, name));
  }

  #remove(user: string, name: string): Removed {
    checkName(name);
    const { path, folders } = this.#existingPath(user, name);
    // A hard-linked file may be removed: unlinking this name leaves the other name's data alone.
    const info = lstatFile(path, name);
    Deno.removeSync(path);
    // Folders exist only to hold files: drop the ones this left empty, each still the folder walked above.
    let pruned = 0;
    for (let depth = folders.length - 1; depth > 0; depth--) {
      try {
        recheckFolders(folders.slice(0, depth + 1), name);
        Deno.removeSync(folders[depth].path);
        pruned++;
      } catch {
        break; // not empty, already gone, or replaced
      }
    }
    return { name, size: info.size, mtime: info.mtime?.getTime() ?? 0, folders: pruned };
  }

  async list(user: string, options: ListOptions): Promise<ListPage> {
    const home = this.#userFolder(user).path;
    // A first page always walks afresh; a later one resumes the walk that made the page before, if it is kept.
    let walk = options.after === "" ? null : this.#listings.take(user, options);
    if (walk === null) {
      const tally: WalkTally = { held: 0 };
      walk = new ListingWalk(user, options.prefix, sortedEntries(home, "", options, tally), tally);
    }
    const page = await walk.page(options.after, options.limit);
    // Kept even after its last page: the handler may send fewer entries than the page has, to fit a frame.
    if (page.entries.length > 0) this.#listings.keep(walk);
    return page;
  }

  stat(user: string, name: string): Promise<FileInfo | null> {
    return Promise.resolve().then(() => this.#stat(user, name));
  }

  #stat(user: string, name: string): FileInfo | null {
    checkName(name);
    let path: string;
    try {
      path = this.#existingPath(user, name).path;
    } catch (error) {
      if (error instanceof DfosError && error.code === Status.NOT_FOUND) return null;
      throw error;
    }
    let info: Deno.FileInfo;
    try {
      info = Deno.lstatSync(path);
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return null;
      throw error;
    }
    return info.isFile ? { name, size: info.size, mtime: info.mtime?.getTime() ?? 0 } : null;
  }

  async usage(user: string): Promise<Usage> {
    // What the quota counts: every regular file (hard-linked or not) and folder, outside .dfos-partial.
    const usage = { bytes: 0, entries: 0 };
    const walk = async (dir: string): Promise<void> => {
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
          await walk(path);
        } else if (info?.isFile) {
          usage.bytes += footprint(info.size, BLOCK_BYTES);
          usage.entries++;
        }
      }
    };
    await walk(this.#userFolder(user).path);
    return usage;
  }

  async abortUploads(): Promise<void> {
    await Promise.all([...this.#uploads].map((upload) => upload.abort()));
  }

  #userPath(user: string): string {
    const problem = userProblem(user);
    if (problem) throw new DfosError(Status.BAD_NAME, `Cannot use user "${user}": ${problem}`);
    return join(this.root, user);
  }

  /** The user's folder, checked to be a real folder (not a link) on every use. */
  #userFolder(user: string): Folder {
    const path = this.#userPath(user);
    return folderAt(path, Deno.lstatSync(path), user, user);
  }

  /** The path of an existing `name`, and the folders on the way (the user's first): each must be a real folder. */
  #existingPath(user: string, name: string): { path: string; folders: Folder[] } {
    const segments = name.split("/");
    const folders = [this.#userFolder(user)];
    let path = folders[0].path;
    for (let i = 0; i < segments.length - 1; i++) {
      path = join(path, segments[i]);
      folders.push(folderAt(path, lstatExisting(path, name), name, segments.slice(0, i + 1).join("/")));
    }
    return { path: join(path, segments[segments.length - 1]), folders };
  }

  /**
   * Creates the folders on the way to `name` and moves the upload there. The
   * user's folder and .dfos-partial (`place`) must still be the very folders
   * the upload began in, and the temporary file still the upload's own: a
   * link swapped in for either while the body was arriving would make the
   * rename move the wrong file, or move it outside. `admit` is called with
   * the size of the file replaced just before the rename, in the same
   * synchronous step.
   */
  #commitPath(place: Folder[], name: string, commit: CommitStep): string {
    const { tempPath, tempId } = commit;
    const [home] = place;
    const chain = [...place];
    checkPlace(chain, tempPath, tempId, name);
    const segments = name.split("/");
    let path = home.path;
    // Folders this commit creates: removed again, deepest first, if it does not go through.
    const created: string[] = [];
    try {
      for (let i = 0; i < segments.length - 1; i++) {
        path = join(path, segments[i]);
        try {
          Deno.mkdirSync(path, { mode: 0o750 });
          created.push(path);
        } catch (error) {
          if (!(error instanceof Deno.errors.AlreadyExists)) throw error;
        }
        chain.push(folderAt(path, Deno.lstatSync(path), name, segments.slice(0, i + 1).join("/")));
      }
      const target = join(path, segments[segments.length - 1]);
      let replaced: number | null = null;
      try {
        const existing = Deno.lstatSync(target);
        if (existing.isDirectory) {
          throw new DfosError(Status.CONFLICT, `Cannot store "${name}": it is a folder`);
        }
        if (existing.isFile) replaced = existing.size;
      } catch (error) {
        if (!(error instanceof Deno.errors.NotFound)) throw error;
      }
      // The last look, just before the rename: every folder on both paths is still the one checked.
      checkPlace(chain, tempPath, tempId, name);
      commit.admit?.({ replaced, folders: created.length });
      Deno.renameSync(tempPath, target);
      return target;
    } catch (error) {
      for (const folder of created.reverse()) {
        try {
          Deno.removeSync(folder);
        } catch {
          break; // not empty: something else went in meanwhile
        }
      }
      throw error;
    }
  }
}

/** A file's identity: its device and inode. */
interface FileId {
  dev: number;
  ino: number | null;
}

/** A folder as it was when checked, so that a later look can tell whether it is still the same one. */
interface Folder extends FileId {
  /** Its path. */
  path: string;
  /** How messages name it: the user, `.dfos-partial`, or the part of the remote name up to it. */
  label: string;
}

/** What an upload's commit moves, and the check made just before it does. */
interface CommitStep {
  tempPath: string;
  /** The temporary file's identity, taken when it was created. */
  tempId: FileId;
  admit?: (change: CommitChange) => void;
}

/** The options a {@linkcode LocalUpload} is made with. */
interface LocalUploadParts {
  temp: TempFile;
  /** The temporary file's identity, taken when it was created. */
  tempId: FileId;
  name: string;
  commitTo: (tempPath: string, tempId: FileId, admit?: (change: CommitChange) => void) => string;
  fsync: boolean;
  done: (upload: LocalUpload) => void;
}

class LocalUpload implements Upload {
  readonly #parts: LocalUploadParts;
  #settled = false;

  constructor(parts: LocalUploadParts) {
    this.#parts = parts;
  }

  async write(chunk: Uint8Array): Promise<void> {
    if (this.#settled) throw new DfosError(Status.ABORTED, `Upload of "${this.#parts.name}" was aborted`);
    await this.#parts.temp.write(chunk);
  }

  async commit(options: CommitOptions = {}): Promise<FileInfo> {
    const { temp, name, fsync } = this.#parts;
    if (this.#settled) throw new DfosError(Status.ABORTED, `Upload of "${name}" was aborted`);
    try {
      // What this upload stored, taken before the rename: another upload to the same name may replace it at once.
      const info = await temp.stat();
      await temp.close(fsync);
      const target = this.#parts.commitTo(temp.path, this.#parts.tempId, options.admit);
      this.#settle();
      if (fsync) await syncFolder(target);
      return { name, size: info.size, mtime: info.mtime?.getTime() ?? 0 };
    } catch (error) {
      await this.abort();
      throw error;
    }
  }

  async abort(): Promise<void> {
    if (this.#settled) return;
    this.#settle();
    const { temp, tempId } = this.#parts;
    try {
      await temp.close();
    } catch {
      // a write failed: the file goes all the same
    }
    // Removed by path only if the path still names this upload's own file: with .dfos-partial
    // swapped for a link, it could name a file outside.
    try {
      const info = Deno.lstatSync(temp.path);
      if (info.isFile && sameFile(info, tempId)) Deno.removeSync(temp.path);
    } catch {
      // already gone
    }
  }

  #settle(): void {
    this.#settled = true;
    this.#parts.done(this);
  }
}

class LocalReadHandle implements ReadHandle {
  readonly info: FileInfo;
  readonly #file: Deno.FsFile;
  #open = true;

  constructor(file: Deno.FsFile, info: FileInfo) {
    this.#file = file;
    this.info = info;
  }

  read(limit = Infinity): AsyncIterable<Uint8Array> {
    // Up to the size seen at open: a file that shrinks shows as a short body.
    return fileChunks(this.#file, Math.min(limit, this.info.size));
  }

  close(): void {
    if (!this.#open) return;
    this.#open = false;
    this.#file.close();
  }
}

function checkName(name: string): void {
  const problem = nameProblem(name);
  if (problem) throw new DfosError(Status.BAD_NAME, `Cannot use name "${excerpt(name)}": ${problem}`);
}

function sameFile(a: FileId, b: FileId): boolean {
  return a.dev === b.dev && a.ino === b.ino;
}

/** Checks a folder on the way to `name` (a real folder, not a link or a file) and keeps its identity. */
function folderAt(path: string, info: Deno.FileInfo, name: string, label: string): Folder {
  checkFolder(info, name, label);
  return { path, label, dev: info.dev, ino: info.ino };
}

/** Refuses unless each folder is still the very folder that was checked (not a link, not another folder). */
function recheckFolders(folders: Folder[], name: string): void {
  for (const folder of folders) {
    let info: Deno.FileInfo | null = null;
    try {
      info = Deno.lstatSync(folder.path);
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
    if (info === null || info.isSymlink || !info.isDirectory || !sameFile(info, folder)) {
      throw new DfosError(
        Status.FORBIDDEN,
        `Cannot use "${name}": folder "${folder.label}" was moved or replaced while in use`,
      );
    }
  }
}

/** Refuses unless the folders are unchanged and `tempPath` still names the upload's own temporary file. */
function checkPlace(folders: Folder[], tempPath: string, tempId: FileId, name: string): void {
  recheckFolders(folders, name);
  let info: Deno.FileInfo | null = null;
  try {
    info = Deno.lstatSync(tempPath);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  if (info === null || !info.isFile || !sameFile(info, tempId)) {
    throw new DfosError(Status.FORBIDDEN, `Cannot store "${name}": the upload was moved or replaced while under way`);
  }
}

function checkFolder(info: Deno.FileInfo, name: string, folder: string): void {
  if (info.isSymlink) {
    throw new DfosError(
      Status.FORBIDDEN,
      `Cannot use "${name}": "${folder}" is a symbolic link, which dfos does not follow`,
    );
  }
  if (!info.isDirectory) {
    throw new DfosError(Status.CONFLICT, `Cannot use "${name}": "${folder}" is a file, not a folder`);
  }
}

/** `lstat`s a path on the way to `name`; a missing one means `name` does not exist. */
function lstatExisting(path: string, name: string): Deno.FileInfo {
  try {
    return Deno.lstatSync(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new DfosError(Status.NOT_FOUND, `Cannot find "${name}": no such file`);
    }
    throw error;
  }
}

/** `lstat`s the file `name` itself: it must be a regular file, not a link, folder or device. */
function lstatFile(path: string, name: string): Deno.FileInfo {
  const info = lstatExisting(path, name);
  if (info.isSymlink) {
    throw new DfosError(Status.FORBIDDEN, `Cannot use "${name}": it is a symbolic link, which dfos does not follow`);
  }
  if (info.isDirectory) throw new DfosError(Status.CONFLICT, `Cannot use "${name}": it is a folder`);
  if (!info.isFile) throw new DfosError(Status.FORBIDDEN, `Cannot use "${name}": it is not a regular file`);
  return info;
}

async function syncFolder(target: string): Promise<void> {
  const dir = await Deno.open(join(target, ".."), { read: true });
  try {
    await dir.sync();
  } finally {
    dir.close();
  }
}

/** Listings kept between pages, at most this many at once (the least recently used goes first). */
const MAX_KEPT_LISTINGS = 64;

/** Names at most held by the listings kept, together: a walk holds the names of the folders it is in. */
const MAX_KEPT_NAMES = 1_000_000;

/** A listing not resumed for this long is dropped; its next page walks afresh to where it was. */
const LISTING_IDLE_MS = 60_000;

/** What a listing's walk holds and costs. */
interface WalkTally {
  /** Names held by the walk: those of every folder it is in, read but not yet walked past. */
  held: number;
}

/**
 * Every listed file under `dir` whose name is on the requested pages, in
 * name order (JavaScript string order of the whole name, a folder's names
 * sorting as if each ended in "/"). Each folder is read once, when the walk
 * reaches it, and each file is `lstat`ed just before it is yielded. A folder
 * that is gone (or no longer a folder) when the walk reaches it is skipped,
 * and so is a file that is gone by its turn: a listing racing an `rm` that
 * prunes folders lists what is still there and never fails.
 */
async function* sortedEntries(
  dir: string,
  prefix: string,
  options: { prefix: string; after: string },
  tally: WalkTally,
): AsyncGenerator<ListEntry> {
  // Each child as its name, a folder's with "/" after it: sorting these sorts the whole names.
  const children: string[] = [];
  try {
    for await (const entry of Deno.readDir(dir)) {
      if (entry.isSymlink || isReserved(entry.name)) continue;
      if (entry.isDirectory) children.push(entry.name + "/");
      else if (entry.isFile) children.push(entry.name);
    }
  } catch (error) {
    if (error instanceof Deno.errors.NotFound || error instanceof Deno.errors.NotADirectory) return;
    throw error;
  }
  children.sort((a, b) => a < b ? -1 : a > b ? 1 : 0);
  tally.held += children.length;
  try {
    for (const child of children) {
      const key = prefix + child;
      if (child.endsWith("/")) {
        if (!subtreeMayMatch(key, options)) continue;
        // Looked at again just before it is read: a folder swapped for a link meanwhile is skipped.
        const path = join(dir, child.slice(0, -1));
        const info = lstatOrNull(path);
        if (info === null || info.isSymlink || !info.isDirectory) continue;
        yield* sortedEntries(path, key, options, tally);
        continue;
      }
      if (!key.startsWith(options.prefix) || key <= options.after) continue;
      const info = lstatOrNull(join(dir, child));
      // A hard-linked file is not served (its other name may be outside), so it is not listed either.
      if (info === null || !info.isFile || (info.nlink ?? 1) > 1) continue;
      yield { name: key, size: info.size, mtime: info.mtime?.getTime() ?? 0 };
    }
  } finally {
    tally.held -= children.length;
  }
}

/** `lstat`s a path; null when it is gone. */
function lstatOrNull(path: string): Deno.FileInfo | null {
  try {
    return Deno.lstatSync(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound || error instanceof Deno.errors.NotADirectory) return null;
    throw error;
  }
}

/**
 * One listing, from its first page to its last: a sorted walk suspended
 * between pages. It keeps the entries of the page it made last (and one
 * more, to know whether there is a next page), because the request handler
 * may send fewer than asked to fit a frame: the next request may start
 * after any of them.
 */
class ListingWalk {
  readonly user: string;
  readonly prefix: string;
  readonly tally: WalkTally;
  /** When it last made a page (`performance.now()`). */
  usedAt = 0;
  readonly #entries: AsyncGenerator<ListEntry>;
  /** Entries made and not yet known to be delivered, in order. */
  #ready: ListEntry[] = [];
  #done = false;

  constructor(user: string, prefix: string, entries: AsyncGenerator<ListEntry>, tally: WalkTally) {
    this.user = user;
    this.prefix = prefix;
    this.#entries = entries;
    this.tally = tally;
  }

  /** True when a request for the page after `after` continues this listing. */
  resumes(after: string): boolean {
    return this.#ready.some((entry) => entry.name === after);
  }

  /** The page of at most `limit` entries after `after`: the ones kept from the last page first. */
  async page(after: string, limit: number): Promise<ListPage> {
    const delivered = this.#ready.findIndex((entry) => entry.name > after);
    this.#ready = delivered === -1 ? [] : this.#ready.slice(delivered);
    while (!this.#done && this.#ready.length <= limit) {
      const next = await this.#entries.next();
      if (next.done) this.#done = true;
      else this.#ready.push(next.value);
    }
    this.usedAt = performance.now();
    const entries = this.#ready.slice(0, limit);
    const more = this.#ready.length > limit;
    return { entries, next: more && entries.length > 0 ? entries[entries.length - 1].name : null };
  }

  /** Ends the walk (its folders' names are let go). */
  drop(): void {
    this.#entries.return(undefined).catch(() => {});
  }
}

/**
 * The listings kept between their pages, bounded in number, in the names
 * they hold and in time. A listing is taken out while it makes a page, so two
 * requests never share one; a request that finds none walks afresh from its
 * `after` (skipping the folders before it), which is what every page cost
 * before listings were kept.
 */
class SuspendedListings {
  readonly #kept: ListingWalk[] = [];

  /** Takes out the listing that `options` continues, or returns null. */
  take(user: string, options: ListOptions): ListingWalk | null {
    this.#expire();
    const index = this.#kept.findIndex((walk) =>
      walk.user === user && walk.prefix === options.prefix && walk.resumes(options.after)
    );
    return index === -1 ? null : this.#kept.splice(index, 1)[0];
  }

  /** Keeps a listing for its next page; drops the oldest beyond the bounds. */
  keep(walk: ListingWalk): void {
    this.#kept.push(walk);
    this.#expire();
    let names = this.#kept.reduce((sum, kept) => sum + kept.tally.held, 0);
    while (this.#kept.length > MAX_KEPT_LISTINGS || (names > MAX_KEPT_NAMES && this.#kept.length > 0)) {
      const oldest = this.#kept.shift()!;
      names -= oldest.tally.held;
      oldest.drop();
    }
  }

  #expire(): void {
    const now = performance.now();
    while (this.#kept.length > 0 && now - this.#kept[0].usedAt > LISTING_IDLE_MS) this.#kept.shift()!.drop();
  }
}

/** True when some name under the folder `key` (ending in "/") can be on the requested page. */
function subtreeMayMatch(key: string, options: { prefix: string; after: string }): boolean {
  const { prefix, after } = options;
  if (!key.startsWith(prefix) && !prefix.startsWith(key)) return false;
  // Every name below the folder starts with `key`; if `after` is beyond all of them, skip it.
  return after === "" || after.startsWith(key) || key > after;
}
