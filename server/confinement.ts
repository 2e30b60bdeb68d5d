/**
 * `Confinement`: the one door between the storage and the local disk. Every
 * path `LocalStorage` touches is found through it, checked by it, and every
 * change of a user's files passes through it one at a time.
 *
 * What it holds to:
 * - A remote name is checked by shared/names.ts first; `.dfos-*` segments are
 *   reserved in any case (a case-insensitive file system would take
 *   `.DFOS-partial` for the uploads' folder), and never listed or counted.
 * - Each folder on the way, the user's own first, is `lstat`ed: a symbolic
 *   link anywhere on a path is refused (Deno's `--allow-read`/`--allow-write`
 *   do not stop a link that points outside, so this check is the wall), and
 *   a file where a folder is needed is `CONFLICT`.
 * - Folder identity: each folder's device and inode are kept (`Folder`) and
 *   compared again where a swap would matter ({@linkcode Confinement.recheck}).
 * - Link counts: a file with more than one link may have its other name
 *   anywhere on the file system (a planted `ln /etc/shadow`), so it is neither
 *   read nor listed; it may be replaced or removed (both act on the name in
 *   the user's folder, never on the data the other name reaches).
 * - One change at a time per user ({@linkcode Confinement.change}): a commit's
 *   last checks and its rename, and a removal, do not interleave with another
 *   change of the same user's files, even where the call that frees or
 *   allocates a large file's data runs off the event loop.
 *
 * Deno has no `openat`/`O_NOFOLLOW`, so every check is by path: a folder
 * swapped for a link between the last check and the system call that uses it
 * is not caught (docs/SECURITY.md says what remains).
 *
 * @module
 */

import { join } from "node:path";
import { excerpt, nameProblem, RESERVED_PREFIX, userProblem, utf8Length } from "../shared/names.ts";
import { DfosError, Status } from "../shared/status.ts";

/** The folder, inside each user's folder, that holds uploads in progress and files being freed. */
export const PARTIAL_DIR = `${RESERVED_PREFIX}partial`;

/**
 * A file at least this large is renamed over, or freed, off the event loop:
 * allocating or freeing its data is work of the file system's proportional
 * to its size (docs/PERFORMANCE.md).
 */
export const LARGE_FILE_BYTES = 1024 * 1024;

/** A file's identity: its device and inode. */
export interface FileId {
  /** The device. */
  dev: number;
  /** The inode. */
  ino: number | null;
}

/** A folder as it was when checked, so that a later look can tell whether it is still the same one. */
export interface Folder extends FileId {
  /** Its path. */
  path: string;
  /** How messages name it: the user, `.dfos-partial`, or the part of the remote name up to it. */
  label: string;
}

/** Where an existing name is: its path, and the folders on the way (the user's first), each checked. */
export interface Way {
  /** The name's path. */
  path: string;
  /** The folders on the way, the user's own first. */
  folders: Folder[];
}

/** The storage root's door: the users' folders, the ways to names in them, and their changes. */
export class Confinement {
  /** The root, as a real path with no symbolic links in it. */
  readonly root: string;
  /** Per user, the change under way, settled (never rejected) when it is done. */
  readonly #changing = new Map<string, Promise<void>>();

  /** @param root The root folder, a real path. */
  constructor(root: string) {
    this.root = root;
  }

  /**
   * The path of the user's folder, which may not exist yet.
   *
   * @param user The user; refused (`BAD_NAME`) unless a valid user name.
   */
  userPath(user: string): string {
    const problem = userProblem(user);
    if (problem) throw new DfosError(Status.BAD_NAME, `Cannot use user "${user}": ${problem}`);
    return join(this.root, user);
  }

  /** The user's folder, checked to be a real folder (not a link). */
  home(user: string): Folder {
    const path = this.userPath(user);
    return folderAt(path, Deno.lstatSync(path), user, user);
  }

  /** The user's `.dfos-partial`, made if missing, checked to be a real folder. */
  partial(home: Folder): Folder {
    return this.meta(home, PARTIAL_DIR);
  }

  /**
   * One of the storage's own folders in the user's folder (`.dfos-partial`,
   * `.dfos-chunks`, `.dfos-kept`), made if missing, checked to be a real folder.
   *
   * @param home The user's folder.
   * @param dir The folder's name, a reserved one.
   */
  meta(home: Folder, dir: string): Folder {
    const path = join(home.path, dir);
    // Looked at first: it is there nearly always, and a refused mkdir costs an exception (tens of microseconds).
    const found = lstatOrNull(path);
    if (found !== null) return folderAt(path, found, dir, dir);
    try {
      Deno.mkdirSync(path, { mode: 0o700 });
    } catch (error) {
      if (!(error instanceof Deno.errors.AlreadyExists)) throw error;
    }
    return folderAt(path, Deno.lstatSync(path), dir, dir);
  }

  /**
   * The way to the existing `name`: each folder on it must exist and be a
   * real folder (`NOT_FOUND` when one is missing).
   *
   * @param user The user.
   * @param name A remote name, checked already ({@linkcode checkName}).
   */
  existing(user: string, name: string): Way {
    const segments = name.split("/");
    const folders = [this.home(user)];
    let path = folders[0].path;
    for (let i = 0; i < segments.length - 1; i++) {
      path = join(path, segments[i]);
      folders.push(folderAt(path, lstatExisting(path, name), name, segments.slice(0, i + 1).join("/")));
    }
    return { path: join(path, segments[segments.length - 1]), folders };
  }

  /**
   * Refuses, before an upload takes a byte, a name it could not be stored
   * under as things are: a folder on the way that is a file (`CONFLICT`) or
   * a link (`FORBIDDEN`), or a name that is a folder (`CONFLICT`). Folders
   * still missing are fine: the commit makes them (and checks all again).
   *
   * @param home The user's folder.
   * @param name A remote name, checked already.
   */
  checkPlace(home: Folder, name: string): void {
    walkToName(home, name, (info) => {
      if (info.isDirectory) throw new DfosError(Status.CONFLICT, `Cannot store "${name}": it is a folder`);
    });
  }

  /**
   * Makes the folders on the way to `name` that are missing, each then
   * checked as a real folder. On failure, the folders it made are removed
   * again before it throws.
   *
   * @param home The user's folder.
   * @param name A remote name, checked already.
   * @returns The name's path, the folders on the way (after `home`), and those it made, in order.
   */
  makeWay(home: Folder, name: string): Way & { created: string[] } {
    const segments = name.split("/");
    const folders: Folder[] = [];
    const created: string[] = [];
    let path = home.path;
    try {
      for (let i = 0; i < segments.length - 1; i++) {
        path = join(path, segments[i]);
        // Looked at first: the folder is there nearly always, and a refused mkdir costs an exception.
        let info = lstatOrNull(path);
        if (info === null) {
          try {
            Deno.mkdirSync(path, { mode: 0o750 });
            created.push(path);
          } catch (error) {
            if (!(error instanceof Deno.errors.AlreadyExists)) throw error;
          }
          info = Deno.lstatSync(path);
        }
        folders.push(folderAt(path, info, name, segments.slice(0, i + 1).join("/")));
      }
    } catch (error) {
      removeFolders(created);
      throw error;
    }
    return { path: join(path, segments[segments.length - 1]), folders, created };
  }

  /**
   * Refuses unless each folder is still the very folder that was checked
   * (not a link, not another folder).
   *
   * @param folders The folders, as checked before.
   * @param name The remote name the check is for (for the message).
   */
  recheck(folders: Folder[], name: string): void {
    for (const folder of folders) {
      const info = lstatOrNull(folder.path);
      if (info === null || info.isSymlink || !info.isDirectory || !sameFile(info, folder)) {
        throw new DfosError(
          Status.FORBIDDEN,
          `Cannot use "${name}": folder "${folder.label}" was moved or replaced while in use`,
        );
      }
    }
  }

  /**
   * Opens the regular file `name` for reading: its `fstat` must match the
   * `lstat` of its name (no link swapped in between), it must have one link,
   * and the folders on the way must still be the ones walked.
   *
   * @param user The user.
   * @param name A remote name, checked already.
   * @returns The open file and its facts.
   */
  openFile(user: string, name: string): { file: Deno.FsFile; info: Deno.FileInfo } {
    const { path, folders } = this.existing(user, name);
    const before = lstatFile(path, name);
    const file = Deno.openSync(path, { read: true });
    try {
      const info = file.statSync();
      if (!sameFile(info, before) || !info.isFile) {
        throw new DfosError(Status.FORBIDDEN, `Cannot read "${name}": it changed while being opened`);
      }
      if ((info.nlink ?? 1) > 1) {
        throw new DfosError(
          Status.FORBIDDEN,
          `Cannot read "${name}": it has ${info.nlink} hard links, and dfos reads only files with one`,
        );
      }
      // A folder on the way swapped for a link after the walk above (and not swapped back) shows here.
      this.recheck(folders, name);
      return { file, info };
    } catch (error) {
      file.close();
      throw error;
    }
  }

  /**
   * Runs `step`, a change of the user's files, once no other change of that
   * user's is under way. A step that is synchronous (returns no promise) and
   * finds no other under way runs at once, within the call. The change is
   * under way from before the step runs, so one that the step itself starts
   * (a commit's `admit` calling back into the storage) waits for it to end.
   *
   * @param user The user whose files change.
   * @param step The change.
   * @returns What the step returns.
   */
  async change<T>(user: string, step: () => T | Promise<T>): Promise<T> {
    while (this.#changing.has(user)) await this.#changing.get(user);
    const { promise: done, resolve } = Promise.withResolvers<void>();
    this.#changing.set(user, done);
    try {
      const result = step();
      return result instanceof Promise ? await result : result;
    } finally {
      this.#changing.delete(user);
      resolve();
    }
  }
}

/**
 * Refuses a bad remote name (`BAD_NAME`), before anything touches the disk.
 *
 * @param name The remote name.
 */
export function checkName(name: string): void {
  const problem = nameProblem(name);
  if (problem) throw new DfosError(Status.BAD_NAME, `Cannot use name "${excerpt(name)}": ${problem}`);
}

/**
 * Refuses a move whose new names would be longer than `limit` UTF-8 bytes
 * (`BAD_NAME`), before anything moves: the file's new name `to`, or, for a
 * folder, `to` followed by the longest path below it.
 *
 * @param from The name moved.
 * @param to Its new name.
 * @param longestBelow For a folder, `/REST` of its file with the longest path below it; "" for a file.
 * @param limit The longest name allowed, if any.
 */
export function checkMovedNames(from: string, to: string, longestBelow: string, limit: number | undefined): void {
  if (limit === undefined || utf8Length(to + longestBelow) <= limit) return;
  if (longestBelow === "") {
    throw new DfosError(Status.BAD_NAME, `Cannot use name "${excerpt(to)}": name is longer than ${limit} bytes`);
  }
  throw new DfosError(
    Status.BAD_NAME,
    `Cannot move "${excerpt(from)}" to "${excerpt(to)}": its file "${
      excerpt(to + longestBelow)
    }" would have a name longer than ${limit} bytes`,
  );
}

/**
 * Refuses a name a rename may not take: one that exists (`CONFLICT`:
 * nothing is replaced), or whose way runs through a file (`CONFLICT`) or a
 * link (`FORBIDDEN`). Folders still missing on the way are fine.
 *
 * @param home The user's folder.
 * @param name A remote name, checked already ({@linkcode checkName}).
 */
export function checkNewName(home: Folder, name: string): void {
  walkToName(home, name, () => {
    throw new DfosError(Status.CONFLICT, `Cannot move to "${name}": it exists`);
  });
}

/**
 * Walks `name` under `home` as things are, stopping at the first segment
 * that does not exist: each folder on the way must be a real folder
 * (`checkFolder`), and what is there at the name itself goes to `atName`.
 */
function walkToName(home: Folder, name: string, atName: (info: Deno.FileInfo) => void): void {
  const segments = name.split("/");
  let path = home.path;
  for (let i = 0; i < segments.length; i++) {
    path = join(path, segments[i]);
    const info = lstatOrNull(path);
    if (info === null) return;
    if (i === segments.length - 1) atName(info);
    else checkFolder(info, name, segments.slice(0, i + 1).join("/"));
  }
}

/** True when `a` and `b` are the same file (device and inode). */
export function sameFile(a: FileId, b: FileId): boolean {
  return a.dev === b.dev && a.ino === b.ino;
}

/** Checks a folder on the way to `name` (a real folder, not a link or a file) and keeps its identity. */
export function folderAt(path: string, info: Deno.FileInfo, name: string, label: string): Folder {
  checkFolder(info, name, label);
  return { path, label, dev: info.dev, ino: info.ino };
}

/** `lstat`s a path; null when it is gone (or a folder on the way is not one). */
export function lstatOrNull(path: string): Deno.FileInfo | null {
  try {
    return Deno.lstatSync(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound || error instanceof Deno.errors.NotADirectory) return null;
    throw error;
  }
}

/**
 * `lstat`s the file `name` itself: it must exist (`NOT_FOUND`) and be a
 * regular file, not a link (`FORBIDDEN`), a folder (`CONFLICT`) or a device.
 */
export function lstatFile(path: string, name: string): Deno.FileInfo {
  const info = lstatExisting(path, name);
  if (info.isSymlink) {
    throw new DfosError(Status.FORBIDDEN, `Cannot use "${name}": it is a symbolic link, which dfos does not follow`);
  }
  if (info.isDirectory) throw new DfosError(Status.CONFLICT, `Cannot use "${name}": it is a folder`);
  if (!info.isFile) throw new DfosError(Status.FORBIDDEN, `Cannot use "${name}": it is not a regular file`);
  return info;
}

/**
 * Removes the file at `path` only if it is still the file `id` (a link or
 * another file put in its place stays); a large one off the event loop.
 * Meant for the storage's own files in `.dfos-partial`, whose random names a
 * swapped folder cannot make name anything else's. Never throws.
 *
 * @param path The file's path.
 * @param id The file's identity.
 */
export async function removeOwnFile(path: string, id: FileId): Promise<void> {
  try {
    const info = Deno.lstatSync(path);
    if (!info.isFile || !sameFile(info, id)) return;
    if (info.size >= LARGE_FILE_BYTES) await Deno.remove(path);
    else Deno.removeSync(path);
  } catch {
    // already gone
  }
}

/** Removes folders, deepest (last) first, stopping at the first that is not empty. */
export function removeFolders(paths: string[]): void {
  for (const path of [...paths].reverse()) {
    try {
      Deno.removeSync(path);
    } catch {
      break; // not empty: something else went in meanwhile
    }
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
