/**
 * `Storage`: what the request handlers ask of wherever files are kept. The
 * local-disk implementation is `LocalStorage` (local_storage.ts); a shared S3
 * store is meant to implement the same interface.
 *
 * Every method takes a user and a remote name that the implementation checks
 * itself (shared/names.ts), and refuses with a `DfosError` anything it will
 * not do. Nothing outside the user's own space is ever reachable.
 *
 * @module
 */

import type { ListEntry } from "../shared/messages.ts";

/** Facts about one stored file. */
export interface FileInfo {
  /** The remote name. */
  name: string;
  /** Size in bytes. */
  size: number;
  /** Modification time, milliseconds since the Unix epoch. */
  mtime: number;
}

/** What {@linkcode Storage.remove} removed: the file, and the folders it left empty. */
export interface Removed extends FileInfo {
  /** Folders removed with the file because it left them empty. */
  folders: number;
}

/** What a user's files take, as {@linkcode Storage.usage} counts them. */
export interface Usage {
  /**
   * Bytes on disk, as `du` counts them on a file system of
   * {@linkcode Storage.blockSize} blocks: each file its size rounded up to
   * whole blocks, at least one (see {@linkcode footprint}), each folder one
   * block.
   */
  bytes: number;
  /** Files and folders. */
  entries: number;
}

/**
 * The bytes a file of `size` takes on disk as the quota counts it: its size
 * rounded up to whole blocks, and at least one block even when empty (its
 * inode and entry take room too). A folder takes one block.
 *
 * @param size The file's size in bytes.
 * @param blockSize The storage's block size ({@linkcode Storage.blockSize}).
 * @returns The bytes counted.
 *
 * @example Usage
 * ```ts
 * import { footprint } from "./storage.ts";
 * console.assert(footprint(0, 4096) === 4096);
 * console.assert(footprint(4097, 4096) === 8192);
 * ```
 */
export function footprint(size: number, blockSize: number): number {
  return Math.max(1, Math.ceil(size / blockSize)) * blockSize;
}

/** A file opened for reading: a consistent snapshot, even if the name is replaced meanwhile. */
export interface ReadHandle {
  /** The file's facts when it was opened. */
  readonly info: FileInfo;
  /**
   * The file's bytes, at most `limit` of them, in large chunks that are never
   * reused after they are yielded.
   */
  read(limit?: number): AsyncIterable<Uint8Array>;
  /** Releases the file. Safe to call twice. */
  close(): void;
}

/** An upload in progress: invisible to every reader and lister until committed. */
export interface Upload {
  /**
   * Appends bytes. The write may go on in the background (errors surface at
   * a later call or at commit). The chunk is valid only until the returned
   * promise resolves (its receive block is then reused): an implementation
   * that keeps it longer must hold it with `retainBlock` from
   * shared/block_pool.ts and release the hold once done, as `TempFile` does.
   *
   * @param chunk The next bytes of the body.
   */
  write(chunk: Uint8Array): Promise<void>;
  /**
   * Makes the upload the file's content, replacing any previous version at once.
   *
   * @param options A last check (a quota's) made just before the replacement.
   */
  commit(options?: CommitOptions): Promise<FileInfo>;
  /** Drops the upload; the previous version, if any, stays. Safe after commit and twice. */
  abort(): Promise<void>;
}

/** Options for {@linkcode Upload.commit}. */
export interface CommitOptions {
  /**
   * Called once, just before the upload replaces the file, with what the
   * commit changes besides the new file: the version it replaces, and the
   * folders it creates on the way. Throwing refuses the commit: the upload is
   * dropped, the folders it created are removed and the previous version
   * stays. No other change of the user's files by this storage comes between
   * the call and the replacement (LocalStorage runs both in one synchronous
   * step), so a quota checked here holds.
   */
  admit?: (change: CommitChange) => void;
}

/** What a commit changes besides storing the new file. */
export interface CommitChange {
  /** The size of the regular file it replaces, or null when there is none. */
  replaced: number | null;
  /** Folders it creates on the way to the name. */
  folders: number;
}

/** Options for {@linkcode Storage.list}. */
export interface ListOptions {
  /** Only names starting with this. */
  prefix: string;
  /** Only names sorting after this one (the previous page's last name), or "" for the start. */
  after: string;
  /** At most this many entries. */
  limit: number;
}

/** One page of a listing. */
export interface ListPage {
  /** Entries sorted by name (JavaScript string order). */
  entries: ListEntry[];
  /** The name to pass as `after` for the next page, or null on the last page. */
  next: string | null;
}

/** Where the files of every user are kept. */
export interface Storage {
  /** Makes the user's space ready; called at each login. */
  prepareUser(user: string): Promise<void>;
  /** Starts an upload to `name`; refuses a bad name before any byte is taken. */
  beginUpload(user: string, name: string): Promise<Upload>;
  /** Opens `name` for reading. */
  openRead(user: string, name: string): Promise<ReadHandle>;
  /** Deletes `name`, and the folders it leaves empty; returns what it was. */
  remove(user: string, name: string): Promise<Removed>;
  /**
   * Lists the user's files, one page at a time. A full listing should cost
   * about one walk of the user's files whatever its page count: a page starts
   * after `after`, which an implementation can resume from (S3's
   * ListObjectsV2 takes it as `StartAfter`; LocalStorage keeps the walk that
   * made the previous page, and resumes it when the next request starts after
   * any entry of that page). A folder or file that goes while a listing is
   * under way is left out, never an error.
   */
  list(user: string, options: ListOptions): Promise<ListPage>;
  /**
   * Returns the regular file `name`, or null when there is none (nothing of
   * that name, or a folder, a link or a special file). Refuses a bad name, and
   * a path through a link, as the other methods do.
   */
  stat(user: string, name: string): Promise<FileInfo | null>;
  /**
   * The block size the quota counts in (`footprint`): 4096 for the local
   * disk; 1 for a store that bills by the byte.
   */
  readonly blockSize: number;
  /**
   * Returns what the user's regular files and folders take in all (uploads
   * in progress and the storage's own folders are not counted). Counting may
   * walk every file: the quota (server/quota.ts) asks once per user and keeps
   * the sums up to date itself.
   */
  usage(user: string): Promise<Usage>;
  /** Aborts every upload still in progress (at shutdown). */
  abortUploads(): Promise<void>;
}
