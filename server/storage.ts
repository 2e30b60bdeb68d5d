/**
 * `Storage`: what the request handlers ask of wherever files are kept. The
 * local-disk implementation is `LocalStorage` (local_storage.ts); an S3
 * backend is to implement the same interface, so it speaks only of users,
 * remote names, bytes and facts (no file descriptors, paths or folder
 * identities). Each method's doc says how an object store honours it, with
 * the user's files under the key prefix `<user>/`.
 *
 * Every method takes a user and a remote name that the implementation checks
 * itself (shared/names.ts), and refuses with a `DfosError` anything it will
 * not do. Nothing outside the user's own space is ever reachable. Names form
 * a tree: a name is a file or a folder, never both (`CONFLICT`); an object
 * store, which has no folders, keeps that by looking (a HeadObject of each
 * folder on the way, a ListObjectsV2 of `name/` with MaxKeys 1).
 *
 * @module
 */

import type { ListEntry } from "../shared/messages.ts";
import { excerpt } from "../shared/names.ts";
import { DfosError, Status } from "../shared/status.ts";
import type { Bytes } from "../shared/pooled_bytes.ts";

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
  /** Folders removed with the file because it left them empty (0 for a store without folders). */
  folders: number;
}

/** What {@linkcode Storage.rename} did. */
export interface Moved {
  /** The old name. */
  from: string;
  /** The new name. */
  to: string;
  /** Files now under the new name: 1 for a file, those in the folder (at any depth) for a folder. */
  files: number;
  /** Folders made on the way to the new name (0 for a store without folders). */
  foldersCreated: number;
  /** Folders removed because the move left them empty (0 for a store without folders). */
  foldersRemoved: number;
}

/** Options for {@linkcode Storage.rename}. */
export interface RenameOptions {
  /**
   * Called once, before anything changes, with the number of folders the
   * rename is to make on the way to the new name; throwing refuses it (a
   * quota's check, as {@linkcode CommitOptions.admit}).
   */
  admit?: (foldersCreated: number) => void;
  /**
   * The longest name, in UTF-8 bytes, the move may make: the new name of a
   * file, or of every file of a folder. A move that would make a longer one
   * is refused (`BAD_NAME`) before anything moves. The storage's own limit
   * ({@linkcode Storage.maxNameBytes}) holds in any case.
   */
  maxNameBytes?: number;
  /**
   * Moves `from` only if it is a file of this version (as
   * {@linkcode ReadHandle.info} gives it); otherwise `CONFLICT` "changed on
   * the server since it was read" (a folder too) and nothing moves. A `from`
   * that is gone is `NOT_FOUND`, as without the condition. The look and the
   * move are one change, as for {@linkcode CommitOptions.ifVersion}: S3
   * copies with `x-amz-copy-source-if-match` on the ETag checked and deletes
   * with `If-Match`, under the name's commit lease.
   */
  ifVersion?: string;
}

/** Options for {@linkcode Storage.remove}. */
export interface RemoveOptions {
  /**
   * Removes the file only if it is still of this version (as
   * {@linkcode ReadHandle.info} gives it); otherwise `CONFLICT` "changed on
   * the server since it was read" and nothing is removed. A file that is
   * gone is `NOT_FOUND`, as without the condition. The look and the removal
   * are one change, as for {@linkcode CommitOptions.ifVersion}: S3 deletes
   * with `If-Match` on the ETag checked, under the name's commit lease.
   */
  ifVersion?: string;
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
 * import { strictEqual } from "node:assert/strict";
 * strictEqual(footprint(0, 4096), 4096);
 * strictEqual(footprint(4097, 4096), 8192);
 * ```
 */
export function footprint(size: number, blockSize: number): number {
  return Math.max(1, Math.ceil(size / blockSize)) * blockSize;
}

/**
 * The refusal of a change whose condition on the version does not hold
 * ({@linkcode CommitOptions.ifVersion}, {@linkcode RemoveOptions.ifVersion},
 * {@linkcode RenameOptions.ifVersion}): `CONFLICT`, in the same words
 * whatever the backend.
 *
 * @param action What could not be done: `store`, `remove`, `move`.
 * @param name The remote name.
 * @returns The error to throw.
 *
 * @example Usage
 * ```ts
 * import { changedOnServer } from "./storage.ts";
 * import { strictEqual } from "node:assert/strict";
 * strictEqual(changedOnServer("store", "a").message, 'Cannot store "a": changed on the server since it was read');
 * ```
 */
export function changedOnServer(action: string, name: string): DfosError {
  return new DfosError(Status.CONFLICT, `Cannot ${action} "${excerpt(name)}": changed on the server since it was read`);
}

/**
 * A file's facts with its version: a string that changes whenever its content
 * may have (LocalStorage: size, mtime and inode; S3: the ETag). The chunk
 * requests name a version so that a file replaced meanwhile is noticed.
 */
export interface VersionedInfo extends FileInfo {
  /** The version of the content these facts describe. */
  version: string;
}

/**
 * A file opened for reading: a consistent snapshot, even if the name is
 * replaced meanwhile. S3: the HeadObject's ETag (or VersionId), and GetObject
 * with `If-Match` on it (a Range for `limit`, or for `readRange`).
 */
export interface ReadHandle {
  /** The file's facts when it was opened, with the version read. */
  readonly info: VersionedInfo;
  /**
   * The file's bytes, at most `limit` of them, in large chunks, plain or
   * `PooledBytes` that the consumer releases (shared/pooled_bytes.ts).
   */
  read(limit?: number): AsyncIterable<Bytes>;
  /**
   * The `length` bytes from `offset`, as `read` gives them. Refuses
   * (`BAD_REQUEST`) a range past the end of the file.
   */
  readRange(offset: number, length: number): AsyncIterable<Bytes>;
  /** Releases the file. Safe to call twice. */
  close(): void;
}

/**
 * An upload in progress: invisible to every reader and lister until
 * committed. S3: a multipart upload (CreateMultipartUpload, UploadPart in
 * parts of 5 MiB and more, CompleteMultipartUpload; AbortMultipartUpload),
 * or one PutObject for a small body.
 */
export interface Upload {
  /**
   * Appends bytes. The write may go on in the background (errors surface at
   * a later call or at commit). Takes the chunk's hold when it is
   * `PooledBytes` (shared/pooled_bytes.ts): the implementation releases it
   * once done with the bytes, whether the write succeeds or not.
   *
   * @param chunk The next bytes of the body.
   */
  write(chunk: Bytes): Promise<void>;
  /**
   * Makes the upload the file's content, replacing any previous version at
   * once. Checks again what `beginUpload` checked (a folder may have taken
   * the name meanwhile). S3: CompleteMultipartUpload (or the PutObject).
   *
   * @param options A last check (a quota's) and a condition on the version replaced, made just before the replacement.
   */
  commit(options?: CommitOptions): Promise<FileInfo>;
  /** Drops the upload; the previous version, if any, stays. Safe after commit and twice. */
  abort(): Promise<void>;
  /** Bytes written so far (those of a resumed upload included). */
  readonly written: number;
  /**
   * Keeps the upload for a later try instead of dropping it: its bytes so far
   * stay in the user's space, with `state` (the caller's record of them, at
   * most 16 MiB), until {@linkcode Storage.resumeUpload} takes it up again or
   * {@linkcode Storage.dropKept} drops it. Only an upload begun with `keep`
   * can be kept. S3: the multipart upload stays open (its parts listed by
   * ListParts), and `state` is an object beside it.
   *
   * @param state What the caller needs to continue (the chunk entries written so far).
   */
  keep(state: Uint8Array): Promise<void>;
}

/** Options for {@linkcode Storage.beginUpload}. */
export interface BeginOptions {
  /**
   * Makes the upload one that can be kept ({@linkcode Upload.keep}): the key
   * (the new content's root) under which it is kept with its name. Beginning
   * a keepable upload of a name drops any kept upload of that name.
   */
  keep?: string;
}

/** An upload kept for a later try ({@linkcode Upload.keep}). */
export interface KeptUpload {
  /** The name it is to be stored under. */
  name: string;
  /** The key it was begun with. */
  key: string;
  /** Bytes kept. */
  size: number;
  /** The state kept with it. */
  state: Uint8Array;
  /** When it was last written or kept, milliseconds since the Unix epoch. */
  updated: number;
}

/** A stored chunk list ({@linkcode Storage.readChunkList}). */
export interface StoredChunkList {
  /** The file's name. */
  name: string;
  /** The version of the file it was computed from. */
  version: string;
  /** The chunk entries (shared/chunk_list.ts). */
  entries: Uint8Array;
}

/** A user's change counter ({@linkcode Storage.changes}). */
export interface ChangeCounter {
  /** The run of counting the counter belongs to; a new one when it was lost or may have missed a change. */
  epoch: string;
  /** Changes made to the user's files in this epoch. */
  counter: number;
}

/** Options for {@linkcode Upload.commit}. */
export interface CommitOptions {
  /** The file's modification time, milliseconds since the Unix epoch (default: now). S3: object metadata. */
  mtime?: number;
  /**
   * Called once, just before the upload replaces the file, with what the
   * commit changes besides the new file: the version it replaces, and the
   * folders it creates on the way. Throwing refuses the commit: the upload is
   * dropped, the folders it created are removed and the previous version
   * stays. No other change of the user's files by this storage comes between
   * the call and the replacement, so a quota checked here holds: LocalStorage
   * runs one change of a user's files at a time; an S3 backend would do the
   * same per user in its process, take `replaced` from a HeadObject and
   * complete with `If-Match` on its ETag (`If-None-Match: *` when there was
   * none), so that a change by another process fails the commit instead.
   *
   * With a {@linkcode Storage.ledger} (S3) it may return a promise, which
   * the commit awaits before the replacement: the quota's last check in the
   * shared ledger, giving the hold the commit settles
   * ({@linkcode CommitAdmission}). LocalStorage has no ledger: its quota's
   * `admit` is synchronous, and is called so.
   */
  admit?: (change: CommitChange) => void | Promise<CommitAdmission | void>;
  /**
   * Commits only if the file of that name is still of this version (as
   * {@linkcode ReadHandle.info} gives it), or, when null, only if there is
   * no file of that name; otherwise `CONFLICT` "changed on the server since
   * it was read", the upload is dropped and the previous version stays.
   * Absent: no condition. The look and the replacement are one step: no
   * other change of the name comes between them, by this storage or another
   * sharing the store. LocalStorage: compared (device, inode, size, mtime)
   * under the user's change, just before the rename. S3: compared with the
   * ETag of the commit's HeadObject, then the write is conditional on it
   * (PutObject with `If-Match`, `If-None-Match: *` for null), and every
   * conditional change of the name is made under its commit lease, since
   * the engine ignores conditions on CompleteMultipartUpload; a plain commit
   * through another server (no condition, no lease) may still land between
   * a large file's look and its completion (docs/SECURITY.md).
   */
  ifVersion?: string | null;
}

/** What a quota's asynchronous `admit` gives the commit ({@linkcode CommitOptions.admit}). */
export interface CommitAdmission {
  /**
   * The ledger hold the commit settles: it is dropped in the same
   * conditional write that counts the new file in the user's usage
   * ({@linkcode UsageLedger}).
   */
  hold: string;
}

/** The outcome of {@linkcode UsageLedger.hold}. */
export type HoldResult =
  /** Held: what the hold now is, and until when (ms since the epoch) it counts without being held again. */
  | { granted: Usage; expires: number }
  /** Refused by `limit`: what was free for this hold (its own share included). */
  | { refused: "bytes" | "entries"; free: Usage };

/**
 * Each user's usage and the holds of uploads in progress, kept where every
 * server sharing a store sees them (S3: in the user's change-counter object,
 * `<user>/.dfos-changes`, changed only by conditional writes: `If-Match` on
 * the ETag read, read again and retried when another server won the race).
 * The quota (server/quota.ts) uses it instead of its in-memory sums when the
 * storage has one, so that two servers cannot together let a user past the
 * quota. Usage is kept by the storage itself in the write that counts each
 * change (a commit adds the new file less the one it replaced and drops the
 * commit's hold, a removal takes the file off, a rename changes nothing on
 * a store without folders); holds are the quota's. A hold expires
 * {@linkcode UsageLedger.holdMs} after it was last held, so that one a
 * killed server left stops counting by itself: each write drops the expired
 * ones, and the sums never count them.
 */
export interface UsageLedger {
  /** How long a hold counts after it was last held, in ms: its holder holds it again before half of it is gone. */
  readonly holdMs: number;
  /**
   * Makes the hold `id` at least `min` and as near `want` as the limits
   * allow (creating it, growing or shrinking it, and renewing its expiry),
   * or refuses when the user's usage, every other live hold and `min` do
   * not fit in `limits` (0: no limit). The usage is counted first if it
   * never was (`Storage.usage`, written only if no change came meanwhile).
   */
  hold(user: string, id: string, min: Usage, want: Usage, limits: Usage): Promise<HoldResult>;
  /**
   * Drops the hold `id` (nothing when it is gone), once `after` has settled
   * (a hold in flight). Never throws: a hold that cannot be dropped expires.
   */
  release(user: string, id: string, after?: Promise<unknown>): void;
  /** The user's usage as kept (null when never counted), and what the live holds take. */
  usage(user: string): Promise<{ used: Usage | null; reserved: Usage }>;
}

/** What a commit changes besides storing the new file. */
export interface CommitChange {
  /** The size of the regular file it replaces, or null when there is none. */
  replaced: number | null;
  /** Folders it creates on the way to the name (0 for a store without folders). */
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
  /** Makes the user's space ready; called at each login. S3: nothing to make (a prefix needs no folder). */
  prepareUser(user: string): Promise<void>;
  /**
   * Starts an upload to `name`. Refuses, before any byte is taken, a bad name
   * (`BAD_NAME`) and a name the upload could not be stored under as things
   * are: a folder's, or one whose way runs through a file (`CONFLICT`), so
   * the client is told at once and the body is dropped unread.
   */
  beginUpload(user: string, name: string, options?: BeginOptions): Promise<Upload>;
  /**
   * Takes up the upload kept under `name` and `key` again: the returned
   * upload has its bytes so far (`written`), and goes on after them. Null when
   * there is none (never kept, dropped, expired). S3: the multipart upload's
   * id from the kept state, and ListParts.
   */
  resumeUpload(user: string, name: string, key: string): Promise<{ upload: Upload; state: Uint8Array } | null>;
  /** The user's kept uploads. S3: ListMultipartUploads under `<user>/`, and their state objects. */
  keptUploads(user: string): Promise<KeptUpload[]>;
  /** Drops a kept upload; nothing when there is none. S3: AbortMultipartUpload. */
  dropKept(user: string, name: string, key: string): Promise<void>;
  /**
   * Drops every user's kept uploads last written before `before` (ms since
   * the epoch); returns how many. The server calls it from time to time
   * (`--partial-ttl`).
   */
  sweepKept(before: number): Promise<number>;
  /**
   * The stored chunk list of `name`, or null when none is stored. It may be
   * stale: its `version` says which content it describes. LocalStorage: a
   * record in the user's log `.dfos-chunks/lists`. S3: the object
   * `<user>/.dfos-chunks/<hash of name>`.
   */
  readChunkList(user: string, name: string): Promise<StoredChunkList | null>;
  /** Stores the chunk list of `name`'s content of `version`, replacing any. It is metadata: not in the quota. */
  writeChunkList(user: string, list: StoredChunkList): Promise<void>;
  /** Every chunk list stored for the user, stale ones included. S3: ListObjectsV2 of `<user>/.dfos-chunks/`. */
  chunkLists(user: string): AsyncIterable<StoredChunkList>;
  /**
   * The user's change counter: every upload committed, file removed and
   * rename done by this storage adds one, after the change. It survives
   * restarts; its epoch changes when it may have missed a change (it was
   * lost, or the storage was not closed cleanly). S3: an object per user
   * written with `If-Match` on its ETag (with the journal, the usage and the
   * quota's holds: {@linkcode UsageLedger}).
   */
  changes(user: string): Promise<ChangeCounter>;
  /**
   * The names under `prefix` ("" for all) changed since the counter `since`
   * (each once: a file stored, removed or moved away; whether it exists now
   * is for the caller to look), or null when the storage cannot say (another
   * epoch, changes older than it remembers, a folder moved into or out of
   * the prefix). Null is always a correct answer: the caller lists instead.
   * S3: the journal in the user's change record (`.dfos-changes`, written
   * with the counter), by the same rules; every server answers the same.
   */
  changedNames(user: string, since: ChangeCounter, prefix: string): Promise<string[] | null>;
  /**
   * Resolves once the user's change counter ({@linkcode Storage.changes}) is
   * no longer `since` (another count, or another epoch), or when `signal`
   * aborts: it resolves then too, and never rejects for that. It may resolve
   * late, never early: the caller reads the counter afterwards. It holds no
   * timer of its own (the caller's signal bounds the wait) and nothing of
   * the wait once resolved. The `watch` request waits on it
   * (server/watch.ts), bounded by its `wait`.
   *
   * LocalStorage: woken in process by the change that moves the counter
   * (server/change_waiters.ts); no polling, since only this server changes
   * the disk. S3: a change through this server wakes at once; one through
   * another server sharing the bucket is seen by looking at the user's
   * change record (HeadObject of `<user>/.dfos-changes`, and a GetObject
   * when its ETag moved) every few hundred milliseconds, by one poller per
   * user shared by all its waiters, and only while one waits
   * (server/s3/s3_change_watch.ts).
   */
  waitForChange(user: string, since: ChangeCounter, signal: AbortSignal): Promise<void>;
  /** Opens `name` for reading. S3: HeadObject, then GetObject on that version (see {@linkcode ReadHandle}). */
  openRead(user: string, name: string): Promise<ReadHandle>;
  /**
   * Deletes `name`, and the folders it leaves empty; returns what it was.
   * With `ifVersion`, refuses a file of another version (`CONFLICT`).
   * S3: HeadObject (the facts returned), then DeleteObject (with `If-Match`
   * on its ETag when conditional, which RGW 16 ignores: see
   * {@linkcode RemoveOptions.ifVersion}).
   */
  remove(user: string, name: string, options?: RemoveOptions): Promise<Removed>;
  /**
   * Renames the file or folder `from` to `to`, within the user's space: a
   * folder's files all move with it, at any depth. Refuses a bad name
   * (`BAD_NAME`), a `from` that does not exist (`NOT_FOUND`), a `to` that
   * exists, file or folder (`CONFLICT`: nothing is replaced), a folder moved
   * into itself (`CONFLICT`), and a link on either way (`FORBIDDEN`). Sizes
   * and contents do not change; folders are made on the way to `to` and
   * those `from` leaves empty are removed, as for an upload and a delete.
   *
   * Atomicity is the backend's, and each says what it promises:
   * LocalStorage renames with one `rename(2)`, so a file or a whole folder
   * moves at once (a reader sees the old name or the new, never both or
   * neither), one change of the user's files at a time. An object store has no
   * rename: S3 does CopyObject then DeleteObject per object (a file is visible
   * under both names for a moment, never under neither), and a folder's
   * objects move one by one, so a reader may see some under each name; a
   * failure part-way leaves them split, and the call reports it
   * (`INTERNAL`) so that it can be run again to finish (the copies are
   * idempotent). Callers must not rely on more than this weaker promise.
   */
  rename(user: string, from: string, to: string, options?: RenameOptions): Promise<Moved>;
  /**
   * Lists the user's files, one page at a time. A full listing should cost
   * about one walk of the user's files whatever its page count: a page starts
   * after `after`, which an implementation can resume from (S3's
   * ListObjectsV2 takes it as `StartAfter`; LocalStorage keeps the walk that
   * made the previous page, and resumes it when the next request starts after
   * any entry of that page). A folder or file that goes while a listing is
   * under way is left out, never an error. S3: ListObjectsV2 with Prefix
   * `<user>/<prefix>`, StartAfter and MaxKeys.
   */
  list(user: string, options: ListOptions): Promise<ListPage>;
  /**
   * Returns the regular file `name`, or null when there is none (nothing of
   * that name, or a folder, a link or a special file). Refuses a bad name, and
   * a path through a link, as the other methods do. S3: HeadObject.
   */
  stat(user: string, name: string): Promise<FileInfo | null>;
  /**
   * The block size the quota counts in (`footprint`): 4096 for the local
   * disk; 1 for a store that bills by the byte (S3).
   */
  readonly blockSize: number;
  /**
   * The longest name, in UTF-8 bytes, the storage can keep, when it is less
   * than the protocol's 1,024 (`MAX_NAME_BYTES`): the server's longest name
   * is the lesser of this and `--max-name`, so that a name too long is
   * refused alike whatever the backend. Local disk: absent. S3: 1,024 less
   * the key prefix and the longest user name's `<user>/`.
   */
  readonly maxNameBytes?: number;
  /**
   * Returns what the user's regular files and folders take in all (uploads
   * in progress and the storage's own folders are not counted). Counting may
   * walk every file: the quota (server/quota.ts) asks once per user and keeps
   * the sums up to date itself. S3: the sizes and count of a ListObjectsV2 of
   * `<user>/`, page by page.
   */
  usage(user: string): Promise<Usage>;
  /**
   * Aborts every upload still in progress (at shutdown), but kept ones, and
   * marks the storage closed cleanly (the change counters' epochs hold). S3:
   * AbortMultipartUpload for each.
   */
  abortUploads(): Promise<void>;
  /**
   * What the storage is, for the metrics' `backend` label: `local`, `s3`
   * (server/metered_storage.ts). Absent: `local`.
   */
  readonly backend?: string;
  /**
   * Where the quota's sums live when several servers share the store
   * ({@linkcode UsageLedger}). LocalStorage has none: one server per disk,
   * its quota counts in memory. S3: the users' change-counter objects.
   */
  readonly ledger?: UsageLedger;
  /**
   * Given, once, where to report what only the backend sees: a conditional
   * write lost to another writer, a multipart upload begun and ended
   * ({@linkcode StorageEvents}). The server calls it when it starts; a
   * backend without either (the local disk) need not implement it.
   */
  observe?(events: StorageEvents): void;
}

/**
 * What a backend reports of its own doings for the metrics
 * (server/metered_storage.ts gives it to {@linkcode Storage.observe}). Each
 * call is a plain count: cheap, never throws, safe to call at any time.
 */
export interface StorageEvents {
  /** A conditional write (`If-Match`, `If-None-Match: *`) was refused because another writer changed the object first. */
  conflict(): void;
  /** A multipart upload is open on this server: created here (CreateMultipartUpload), or a kept one taken up. */
  multipartOpened(): void;
  /** A multipart upload open on this server was completed, aborted, or kept (then open on none until taken up). */
  multipartClosed(): void;
}
