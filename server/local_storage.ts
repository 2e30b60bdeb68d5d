/**
 * `LocalStorage`: users' files on the local disk, `ROOT/<user>/<name>`.
 *
 * This is the only module that touches user files, and every operation goes
 * through one door: the name is checked by shared/names.ts, then each folder
 * on the way is `lstat`ed, and a symbolic link anywhere on the path is refused
 * (Deno's `--allow-read`/`--allow-write` do not stop a link that points
 * outside, so this check is the wall). A file opened for reading is `fstat`ed
 * and must be the very file that was `lstat`ed, so a link swapped in between
 * is caught too.
 *
 * Metadata calls (`lstat`, `mkdir`, `open`, `rename`, `remove`) are synchronous:
 * each takes microseconds on a local file system, where an async call costs
 * 40-60 µs of scheduling and a small operation makes about ten of them
 * (docs/PERFORMANCE.md). File bodies are read and written asynchronously.
 *
 * Uploads go to `ROOT/<user>/.dfos-partial/<random>.part`, on the same file
 * system as their target, and are renamed over the target only when complete
 * (`commit`), or removed (`abort`). Names starting with `.dfos-` are reserved,
 * so no user name can reach that folder, and it is emptied at start-up.
 *
 * @module
 */

import { join } from "node:path";
import { fileChunks } from "../shared/file_chunks.ts";
import type { ListEntry } from "../shared/messages.ts";
import { nameProblem, RESERVED_PREFIX, userProblem } from "../shared/names.ts";
import { DfosError, Status } from "../shared/status.ts";
import { TempFile } from "../shared/temp_file.ts";
import type { FileInfo, ListOptions, ListPage, ReadHandle, Storage, Upload } from "./storage.ts";

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
  readonly #fsync: boolean;
  readonly #uploads = new Set<LocalUpload>();

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
    this.#userDir(user);
  }

  async beginUpload(user: string, name: string): Promise<Upload> {
    checkName(name);
    const dir = this.#userDir(user);
    const partialDir = join(dir, PARTIAL_DIR);
    Deno.mkdirSync(partialDir, { recursive: true, mode: 0o700 });
    requireDirectory(partialDir, PARTIAL_DIR);
    const temp = await TempFile.create(join(partialDir, `${crypto.randomUUID()}.part`));
    const upload = new LocalUpload({
      temp,
      name,
      commitTo: (path) => this.#commitPath(dir, name, path),
      fsync: this.#fsync,
      done: (self) => this.#uploads.delete(self),
    });
    this.#uploads.add(upload);
    return upload;
  }

  openRead(user: string, name: string): Promise<ReadHandle> {
    return Promise.resolve().then(() => this.#openRead(user, name));
  }

  #openRead(user: string, name: string): ReadHandle {
    checkName(name);
    const path = this.#existingPath(user, name);
    const before = lstatFile(path, name);
    const file = Deno.openSync(path, { read: true });
    try {
      const after = file.statSync();
      if (after.ino !== before.ino || after.dev !== before.dev || !after.isFile) {
        throw new DfosError(Status.FORBIDDEN, `Cannot read "${name}": it changed while being opened`);
      }
      return new LocalReadHandle(file, { name, size: after.size, mtime: after.mtime?.getTime() ?? 0 });
    } catch (error) {
      file.close();
      throw error;
    }
  }

  remove(user: string, name: string): Promise<FileInfo> {
    return Promise.resolve().then(() => this.#remove(user, name));
  }

  #remove(user: string, name: string): FileInfo {
    checkName(name);
    const path = this.#existingPath(user, name);
    const info = lstatFile(path, name);
    Deno.removeSync(path);
    // Folders exist only to hold files: drop the ones this left empty.
    const dir = this.#userDir(user);
    const segments = name.split("/");
    for (let depth = segments.length - 1; depth > 0; depth--) {
      try {
        Deno.removeSync(join(dir, ...segments.slice(0, depth)));
      } catch {
        break; // not empty, or already gone
      }
    }
    return { name, size: info.size, mtime: info.mtime?.getTime() ?? 0 };
  }

  async list(user: string, options: ListOptions): Promise<ListPage> {
    const entries: ListEntry[] = [];
    const walk = async (dir: string, prefix: string): Promise<boolean> => {
      const children: { key: string; name: string; isDirectory: boolean }[] = [];
      for await (const entry of Deno.readDir(dir)) {
        if (entry.isSymlink || entry.name.startsWith(RESERVED_PREFIX)) continue;
        if (!entry.isFile && !entry.isDirectory) continue;
        const name = prefix + entry.name;
        children.push({ key: entry.isDirectory ? name + "/" : name, name, isDirectory: entry.isDirectory });
      }
      children.sort((a, b) => a.key < b.key ? -1 : a.key > b.key ? 1 : 0);
      for (const child of children) {
        if (child.isDirectory) {
          if (!subtreeMayMatch(child.key, options)) continue;
          if (await walk(join(dir, child.name.slice(prefix.length)), child.key)) return true;
          continue;
        }
        if (!child.name.startsWith(options.prefix) || child.name <= options.after) continue;
        let info: Deno.FileInfo;
        try {
          info = Deno.lstatSync(join(dir, child.name.slice(prefix.length)));
        } catch {
          continue; // deleted while listing
        }
        if (!info.isFile) continue;
        if (entries.length === options.limit) return true;
        entries.push({ name: child.name, size: info.size, mtime: info.mtime?.getTime() ?? 0 });
      }
      return false;
    };
    const more = await walk(this.#userDir(user), "");
    return { entries, next: more && entries.length > 0 ? entries[entries.length - 1].name : null };
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
  #userDir(user: string): string {
    const path = this.#userPath(user);
    checkFolder(Deno.lstatSync(path), user, user);
    return path;
  }

  /** The path of an existing `name`: every folder on the way must be a real folder. */
  #existingPath(user: string, name: string): string {
    const segments = name.split("/");
    let path = this.#userDir(user);
    for (let i = 0; i < segments.length - 1; i++) {
      path = join(path, segments[i]);
      checkFolder(lstatExisting(path, name), name, segments.slice(0, i + 1).join("/"));
    }
    return join(path, segments[segments.length - 1]);
  }

  /** Creates the folders on the way to `name` and moves `tempPath` there. */
  #commitPath(userDir: string, name: string, tempPath: string): string {
    const segments = name.split("/");
    let path = userDir;
    for (let i = 0; i < segments.length - 1; i++) {
      path = join(path, segments[i]);
      try {
        Deno.mkdirSync(path, { mode: 0o750 });
      } catch (error) {
        if (!(error instanceof Deno.errors.AlreadyExists)) throw error;
      }
      checkFolder(Deno.lstatSync(path), name, segments.slice(0, i + 1).join("/"));
    }
    const target = join(path, segments[segments.length - 1]);
    try {
      if (Deno.lstatSync(target).isDirectory) {
        throw new DfosError(Status.CONFLICT, `Cannot store "${name}": it is a folder`);
      }
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
    Deno.renameSync(tempPath, target);
    return target;
  }
}

/** The options a {@linkcode LocalUpload} is made with. */
interface LocalUploadParts {
  temp: TempFile;
  name: string;
  commitTo: (tempPath: string) => string;
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

  async commit(): Promise<FileInfo> {
    const { temp, name, fsync } = this.#parts;
    if (this.#settled) throw new DfosError(Status.ABORTED, `Upload of "${name}" was aborted`);
    try {
      // What this upload stored, taken before the rename: another upload to the same name may replace it at once.
      const info = await temp.stat();
      await temp.close(fsync);
      const target = this.#parts.commitTo(temp.path);
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
    await this.#parts.temp.remove();
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
  if (problem) throw new DfosError(Status.BAD_NAME, `Cannot use name "${name}": ${problem}`);
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

function requireDirectory(path: string, label: string): void {
  const info = Deno.lstatSync(path);
  if (!info.isDirectory || info.isSymlink) {
    throw new Error(`Storage folder "${label}" at ${path} is not a real folder`);
  }
}

async function syncFolder(target: string): Promise<void> {
  const dir = await Deno.open(join(target, ".."), { read: true });
  try {
    await dir.sync();
  } finally {
    dir.close();
  }
}

/** True when some name under the folder `key` (ending in "/") can be on the requested page. */
function subtreeMayMatch(key: string, options: ListOptions): boolean {
  const { prefix, after } = options;
  if (!key.startsWith(prefix) && !prefix.startsWith(key)) return false;
  // Every name below the folder starts with `key`; if `after` is beyond all of them, skip it.
  return after === "" || after.startsWith(key) || key > after;
}
