/**
 * `LocalUpload`: one upload to the local disk, from its temporary file to the
 * rename that makes it the file's content.
 *
 * The body goes to `ROOT/<user>/.dfos-partial/<random>.part`, created with
 * `O_EXCL` on the same file system as its target, and is renamed over the
 * target only when complete ({@linkcode LocalUpload.commit}), or removed
 * ({@linkcode LocalUpload.abort}). A name it cannot be stored under as things
 * are (a folder's, or one whose way runs through a file or a link) is refused
 * when the upload begins, before the body is read.
 *
 * A body takes a while to arrive, and anything may change meanwhile, so the
 * commit checks everything again: that the user's folder and `.dfos-partial`
 * are still the very folders the upload began in and the temporary path still
 * names the upload's own file (before making any folder, and again just
 * before the rename), and that the name is not a folder by now. An abort
 * removes the temporary path only if it still names the upload's file. A link
 * swapped in meanwhile would otherwise have the rename move a file outside,
 * or in from outside, or the removal delete one.
 *
 * The commit's last checks (the version it replaces among them, against
 * `CommitOptions.ifVersion`), the quota's `admit` and the rename are one
 * change of the user's files (`Confinement.change`): no other change of that
 * user's comes between them. The rename is synchronous, right after the last
 * check, unless the upload or the file it replaces is large: then the file
 * system's work (allocating the one's data, freeing the other's) would hold
 * the event loop, and the rename runs off it.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { join } from "node:path";
import { type Bytes, release } from "../shared/pooled_bytes.ts";
import { DfosError, Status } from "../shared/status.ts";
import { TempFile } from "../shared/temp_file.ts";
import {
  checkName,
  type Confinement,
  type FileId,
  type Folder,
  LARGE_FILE_BYTES,
  lstatOrNull,
  removeFolders,
  removeOwnFile,
  sameFile,
} from "./confinement.ts";
import { LocalKeptUploads, MAX_KEPT_STATE_BYTES } from "./kept_uploads.ts";
import { changedOnServer, type CommitOptions, type Upload, type VersionedInfo } from "./storage.ts";

/** Options for {@linkcode LocalUpload.begin}. */
export interface LocalUploadOptions {
  /**
   * Flush the data and its folder to the disk before the commit returns.
   *
   * @default {false}
   */
  fsync?: boolean;
  /** Where the upload is kept, if it can be ({@linkcode Upload.keep}), and under which key. */
  keep?: { kept: LocalKeptUploads; key: string };
  /** Called after the commit's rename, within the user's change (the change counter). */
  onCommit?: () => void;
}

/** Where an upload began: the folders it must find unchanged, and its temporary file. */
interface Start {
  user: string;
  name: string;
  home: Folder;
  partial: Folder;
  temp: TempFile;
  /** The temporary file's identity, taken when it was created. */
  tempId: FileId;
  fsync: boolean;
  keep?: { kept: LocalKeptUploads; key: string };
  onCommit?: () => void;
}

/** An upload in progress to the local disk. */
export class LocalUpload implements Upload {
  /** Resolves once the upload is committed or aborted. */
  readonly settled: Promise<void>;
  readonly #door: Confinement;
  readonly #start: Start;
  #done = false;
  #resolveSettled: () => void = () => {};
  #written: number;

  private constructor(door: Confinement, start: Start, written: number) {
    this.#door = door;
    this.#start = start;
    this.#written = written;
    this.settled = new Promise((resolve) => this.#resolveSettled = resolve);
  }

  /**
   * Begins an upload to `name`: refuses a bad name (`BAD_NAME`) and a name
   * it cannot be stored under as things are (`CONFLICT`, `FORBIDDEN`), then
   * creates its temporary file.
   *
   * @param door The storage root's door.
   * @param target The user, the remote name and the options.
   * @returns The upload.
   */
  static async begin(
    door: Confinement,
    target: { user: string; name: string } & LocalUploadOptions,
  ): Promise<LocalUpload> {
    const { user, name } = target;
    checkName(name);
    const home = door.home(user);
    door.checkPlace(home, name);
    const partial = door.partial(home);
    const temp = await TempFile.create(join(partial.path, `${crypto.randomUUID()}.part`));
    return await LocalUpload.#started(door, target, { home, partial, temp });
  }

  /**
   * Continues an upload from a kept one's bytes (moved into `.dfos-partial`
   * by `LocalKeptUploads.take`): written so far is their size.
   *
   * @param door The storage root's door.
   * @param target The user, the remote name and the options.
   * @param path The bytes' path in the user's `.dfos-partial`.
   * @returns The upload.
   */
  static async resume(
    door: Confinement,
    target: { user: string; name: string } & LocalUploadOptions,
    path: string,
  ): Promise<LocalUpload> {
    checkName(target.name);
    const home = door.home(target.user);
    const partial = door.partial(home);
    const temp = await TempFile.reopen(path);
    return await LocalUpload.#started(door, target, { home, partial, temp });
  }

  /** Makes the upload of a temporary file just created or reopened, checked to be where it was meant to be. */
  static async #started(
    door: Confinement,
    target: { user: string; name: string } & LocalUploadOptions,
    where: { home: Folder; partial: Folder; temp: TempFile },
  ): Promise<LocalUpload> {
    const { user, name } = target;
    const tempId = await where.temp.stat();
    const upload = new LocalUpload(door, {
      user,
      name,
      ...where,
      tempId,
      fsync: target.fsync ?? false,
      keep: target.keep,
      onCommit: target.onCommit,
    }, tempId.size);
    try {
      // Made where it was meant to be: neither folder was swapped for a link just before the create.
      upload.#checkOwn([where.home, where.partial]);
    } catch (error) {
      await upload.abort();
      throw error;
    }
    return upload;
  }

  /** Bytes written so far (a resumed upload's kept ones included). */
  get written(): number {
    return this.#written;
  }

  async write(chunk: Bytes): Promise<void> {
    if (this.#done) release(chunk);
    this.#throwIfDone();
    this.#written += chunk.length;
    await this.#start.temp.write(chunk);
  }

  async commit(options: CommitOptions = {}): Promise<VersionedInfo> {
    this.#throwIfDone();
    const { user, name, temp, fsync } = this.#start;
    try {
      if (options.mtime !== undefined) await temp.setMtime(checkMtime(name, options.mtime));
      // What this upload stored, taken before the rename: another upload to the same name may replace it at once.
      const info = await temp.stat();
      await temp.close(fsync);
      const target = await this.#door.change(user, () => this.#moveIntoPlace(info.size, options));
      this.#finish();
      if (fsync) await syncFolder(target);
      return { name, size: info.size, mtime: info.mtime?.getTime() ?? 0, version: versionOf(info) };
    } catch (error) {
      await this.abort();
      throw error;
    }
  }

  async keep(state: Uint8Array): Promise<void> {
    this.#throwIfDone();
    const { user, name, home, partial, temp, keep } = this.#start;
    try {
      if (keep === undefined) {
        throw new DfosError(Status.BAD_REQUEST, `Cannot keep the upload of "${name}": it was not begun to be kept`);
      }
      if (state.length > MAX_KEPT_STATE_BYTES) {
        throw new DfosError(Status.TOO_LARGE, `Cannot keep the upload of "${name}": its state is too large`);
      }
      await temp.close();
      await this.#door.change(user, () => {
        this.#throwIfDone();
        this.#checkOwn([home, partial]);
        keep.kept.keep(home, partial, temp.path, { name, key: keep.key, state });
      });
      this.#finish();
    } catch (error) {
      await this.abort();
      throw error;
    }
  }

  async abort(): Promise<void> {
    if (this.#done) return;
    this.#finish();
    const { temp, tempId } = this.#start;
    try {
      await temp.close();
    } catch {
      // a write failed: the file goes all the same
    }
    // By path, only if the path still names this upload's own file: with .dfos-partial swapped for a link,
    // it could name a file outside.
    await removeOwnFile(temp.path, tempId);
  }

  /**
   * The commit's one change of the user's files: makes the folders on the
   * way, checks everything once more (the version replaced against
   * `ifVersion` too), asks `admit`, and renames the upload over the name.
   * Returns the target's path; on failure, the folders it made are removed
   * again.
   */
  #moveIntoPlace(size: number, options: CommitOptions): string | Promise<string> {
    this.#throwIfDone(); // aborted while waiting for another change of the user's
    const { name, home, partial, temp } = this.#start;
    this.#door.recheck([home], name); // the folders are made in the user's folder: it must still be the one checked
    const way = this.#door.makeWay(home, name);
    try {
      const existing = lstatOrNull(way.path);
      if (existing?.isDirectory) throw new DfosError(Status.CONFLICT, `Cannot store "${name}": it is a folder`);
      checkVersion(name, existing, options.ifVersion);
      const replaced = existing?.isFile ? existing.size : null;
      // The last look, just before the rename: every folder on both paths is still the one checked.
      this.#checkOwn([home, partial, ...way.folders]);
      options.admit?.({ replaced, folders: way.created.length }); // synchronous: LocalStorage has no ledger
      const onCommit = this.#start.onCommit ?? (() => {});
      if (size < LARGE_FILE_BYTES && (replaced ?? 0) < LARGE_FILE_BYTES) {
        Deno.renameSync(temp.path, way.path);
        onCommit();
        return way.path;
      }
      return Deno.rename(temp.path, way.path).then(() => (onCommit(), way.path), (error) => {
        removeFolders(way.created);
        throw error;
      });
    } catch (error) {
      removeFolders(way.created);
      throw error;
    }
  }

  /** Refuses unless the folders are unchanged and the temporary path still names the upload's own file. */
  #checkOwn(folders: Folder[]): void {
    const { name, temp, tempId } = this.#start;
    this.#door.recheck(folders, name);
    const info = lstatOrNull(temp.path);
    if (info === null || !info.isFile || !sameFile(info, tempId)) {
      throw new DfosError(Status.FORBIDDEN, `Cannot store "${name}": the upload was moved or replaced while under way`);
    }
  }

  #throwIfDone(): void {
    if (this.#done) throw new DfosError(Status.ABORTED, `Upload of "${this.#start.name}" was aborted`);
  }

  #finish(): void {
    this.#done = true;
    this.#resolveSettled();
  }
}

/**
 * A file's version (`VersionedInfo.version`): a hash of its device, inode,
 * size and modification time. A commit is a rename of a new inode, and a
 * change in place by other means changes the size or the mtime.
 *
 * @param info The file's `stat`.
 * @returns 16 hex digits.
 */
export function versionOf(info: Deno.FileInfo): string {
  const facts = `${info.dev}:${info.ino}:${info.size}:${info.mtime?.getTime() ?? 0}`;
  return createHash("sha256").update(facts).digest("hex").slice(0, 16);
}

/**
 * Refuses a commit whose condition does not hold (`CONFLICT`): `ifVersion`
 * a version, and what the name holds now is not a file of that version;
 * null, and the name holds anything at all.
 */
function checkVersion(name: string, existing: Deno.FileInfo | null, ifVersion: string | null | undefined): void {
  if (ifVersion === undefined) return;
  const holds = ifVersion === null
    ? existing === null
    : existing !== null && existing.isFile && versionOf(existing) === ifVersion;
  if (!holds) throw changedOnServer("store", name);
}

/** A modification time a file can have: whole milliseconds within the range of a `Date`. */
function checkMtime(name: string, mtime: number): number {
  if (!Number.isSafeInteger(mtime) || Math.abs(mtime) > 8.64e15) {
    throw new DfosError(Status.BAD_REQUEST, `Cannot store "${name}": ${mtime} is not a modification time`);
  }
  return mtime;
}

async function syncFolder(target: string): Promise<void> {
  const dir = await Deno.open(join(target, ".."), { read: true });
  try {
    await dir.sync();
  } finally {
    dir.close();
  }
}
