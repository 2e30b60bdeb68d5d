/**
 * `S3Storage`: users' files in an S3 bucket (`Storage`, server/storage.ts),
 * on any `ObjectStore` (object_store.ts), so that several dfos servers can
 * serve the same files. Each user's file `name` is the plain object
 * `<prefix><user>/<name>` (s3_keys.ts); everything a server must agree on
 * with the others lives in the bucket and changes by conditional writes,
 * never in one server's memory:
 *
 * - uploads: `S3Upload` (s3_upload.ts), a multipart upload completed only
 *   at the commit (a small body: one conditional PutObject), under a commit
 *   lease per name (commit_leases.ts) since the engine ignores conditions on
 *   a completion;
 * - changes on a condition (`ifVersion`: a commit, a removal, a rename): the
 *   version is the ETag of the change's own HeadObject, compared under the
 *   name's lease (a rename's: both names'), and the write is conditional on
 *   it where the engine honours that (PutObject's `If-Match` or
 *   `If-None-Match: *`, CopyObject's source condition; DeleteObject's
 *   `If-Match` is sent, and ignored by RGW 16);
 * - kept uploads (`S3KeptUploads`): the open multipart upload and a state
 *   object, taken up by one server at a time, through any server;
 * - the change records (`S3ChangeCounters`), one object per user changed
 *   with `If-Match`: the change counter, the journal of the last changes
 *   that answers `changedNames`, and the quota's usage and upload holds
 *   (`S3UsageLedger`, the storage's `ledger`); the chunk lists
 *   (`S3ChunkLists`), one object per name;
 * - names as a tree (`S3Names`), listings and usage (`S3Listing`);
 * - waits on a user's counter (`S3ChangeWatch`, for `watch`): this server's
 *   changes wake them at once, other servers' are seen by polling the
 *   change record while one waits.
 *
 * What stays per server: the order of one user's changes within the
 * process (`UserChanges`), the listing's cache of modification times and
 * the login throttle.
 *
 * Multipart uploads a killed server left are aborted at `open` and every
 * `cleanupIntervalMs` (stale_uploads.ts).
 *
 * For the metrics it is `backend` `s3`, and reports through `observe`
 * (s3_events.ts) each conditional write lost to another writer (every
 * module's store is a `ConflictReportingStore`) and the multipart uploads
 * open on this server (`S3Upload`).
 *
 * @module
 */

import { excerpt, MAX_NAME_BYTES, MAX_USER_BYTES, utf8Length } from "../../shared/names.ts";
import { DfosError, Status } from "../../shared/status.ts";
import { checkMovedNames, checkName } from "../confinement.ts";
import {
  type BeginOptions,
  type ChangeCounter,
  changedOnServer,
  type FileInfo,
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
  type StorageEvents,
  type StoredChunkList,
  type Upload,
  type Usage,
  type VersionedInfo,
} from "../storage.ts";
import { CommitLeases, type Lease } from "./commit_leases.ts";
import { ConflictReportingStore } from "./conflict_reporting_store.ts";
import { type ObjectHead, type ObjectStore, ObjectStoreError, type PartInfo } from "./object_store.ts";
import { namesSince } from "../change_journal.ts";
import { S3ChangeCounters } from "./s3_change_counters.ts";
import { S3ChangeWatch } from "./s3_change_watch.ts";
import { HOLD_MS, S3UsageLedger } from "./s3_usage_ledger.ts";
import { S3ChunkLists } from "./s3_chunk_lists.ts";
import { S3Events } from "./s3_events.ts";
import { isLostCondition, storeFailure, storeStep } from "./s3_errors.ts";
import { S3KeptUploads } from "./s3_kept_uploads.ts";
import { fileKey, isMetadataKey, userPrefix } from "./s3_keys.ts";
import { mtimeOf, S3Listing } from "./s3_listing.ts";
import { S3Names } from "./s3_names.ts";
import { S3ReadHandle } from "./s3_read_handle.ts";
import { PARALLEL_PARTS, PART_BYTES, S3Upload, type S3UploadContext } from "./s3_upload.ts";
import { abortStaleUploads, STALE_UPLOAD_MS } from "./stale_uploads.ts";
import { UserChanges } from "./user_changes.ts";

/** Options of {@linkcode S3Storage.open}. */
export interface S3StorageOptions {
  /**
   * The size of a multipart upload's first 1,000 parts (5 MiB at least).
   *
   * @default {PART_BYTES}
   */
  partBytes?: number;
  /**
   * Parts one upload sends at once.
   *
   * @default {PARALLEL_PARTS}
   */
  parallelParts?: number;
  /**
   * A multipart upload initiated longer ago than this, and not kept, is
   * taken for one a dead server left, and aborted.
   *
   * @default {STALE_UPLOAD_MS}
   */
  staleUploadMs?: number;
  /**
   * How often the stale multipart uploads are looked for; 0: only at `open`.
   *
   * @default {0}
   */
  cleanupIntervalMs?: number;
  /**
   * How long a quota hold of an upload counts after it was last held: one a
   * killed server left stops counting then (s3_usage_ledger.ts).
   *
   * @default {HOLD_MS}
   */
  holdMs?: number;
  /** Told of a cleanup's failure (the store unreachable): the server logs it. */
  onCleanupError?: (error: unknown) => void;
}

/** S3's longest key, in UTF-8 bytes. */
const MAX_KEY_BYTES = 1024;

/** S3's smallest part (but the last). */
const MIN_PART_BYTES = 5 * 1024 * 1024;

/** Users' files in one bucket (and key prefix). */
export class S3Storage implements Storage {
  /** The store bills by the byte: the quota counts sizes as they are. */
  readonly blockSize = 1;
  /** For the metrics' `backend` label. */
  readonly backend = "s3";
  /** The bucket (each refused conditional write through it reported). */
  readonly store: ObjectStore;
  readonly #events: S3Events;
  readonly #options: Required<Omit<S3StorageOptions, "onCleanupError">> & Pick<S3StorageOptions, "onCleanupError">;
  readonly #names: S3Names;
  readonly #listing: S3Listing;
  readonly #chunkLists: S3ChunkLists;
  readonly #kept: S3KeptUploads;
  readonly #counters: S3ChangeCounters;
  /** The `watch` requests waiting on a user's counter, and the pollers of the users they wait on. */
  readonly #watch: S3ChangeWatch;
  /** The quota's usage and holds, in the users' change records. */
  readonly ledger: S3UsageLedger;
  readonly #leases: CommitLeases;
  readonly #changes = new UserChanges();
  readonly #uploads = new Set<S3Upload>();
  readonly #writing = new Set<Promise<void>>();
  /**
   * The longest name this store keeps, in UTF-8 bytes: an S3 key has at most
   * 1,024, of which the key prefix and the longest user name take their part.
   */
  readonly maxNameBytes: number;
  #cleanupTimer: ReturnType<typeof setInterval> | null = null;
  #cleaning: Promise<void> = Promise.resolve();

  private constructor(store: ObjectStore, events: S3Events, options: S3StorageOptions) {
    this.store = store;
    this.#events = events;
    const partBytes = options.partBytes ?? PART_BYTES;
    if (!Number.isSafeInteger(partBytes) || partBytes < MIN_PART_BYTES) {
      throw new RangeError(`partBytes must be at least ${MIN_PART_BYTES}, not ${partBytes}`);
    }
    this.#options = {
      partBytes,
      parallelParts: Math.max(1, options.parallelParts ?? PARALLEL_PARTS),
      staleUploadMs: options.staleUploadMs ?? STALE_UPLOAD_MS,
      cleanupIntervalMs: options.cleanupIntervalMs ?? 0,
      holdMs: options.holdMs ?? HOLD_MS,
      onCleanupError: options.onCleanupError,
    };
    this.maxNameBytes = Math.min(MAX_NAME_BYTES, MAX_KEY_BYTES - keyPrefixBytes(store) - MAX_USER_BYTES - 1);
    this.#names = new S3Names(store);
    this.#listing = new S3Listing(store);
    this.#chunkLists = new S3ChunkLists(store);
    this.#kept = new S3KeptUploads(store, this.#options.staleUploadMs);
    this.#counters = new S3ChangeCounters(store, (user, counter) => this.#watch.changed(user, counter));
    this.#watch = new S3ChangeWatch(store, this.#counters);
    this.ledger = new S3UsageLedger(this.#counters, (user) => this.#listing.usage(user), this.#options.holdMs);
    this.#leases = new CommitLeases(store);
  }

  /**
   * Opens the storage on a bucket: aborts the multipart uploads a dead
   * server left (a store that cannot be reached fails the open), and starts
   * looking for them every `cleanupIntervalMs`.
   *
   * @param store The bucket.
   * @param options Part sizes, and the cleanup's bound and interval.
   * @returns The storage.
   */
  static async open(store: ObjectStore, options: S3StorageOptions = {}): Promise<S3Storage> {
    const events = new S3Events();
    const storage = new S3Storage(new ConflictReportingStore(store, () => events.conflict()), events, options);
    await storage.abortStale();
    const every = storage.#options.cleanupIntervalMs;
    if (every > 0) {
      storage.#cleanupTimer = setInterval(() => {
        storage.#cleaning = storage.#cleaning.then(() => storage.abortStale()).then(
          () => {},
          (error) => storage.#options.onCleanupError?.(error),
        );
      }, every);
    }
    return storage;
  }

  /**
   * Aborts the multipart uploads a dead server left: initiated longer ago
   * than `staleUploadMs`, not kept, not this storage's (stale_uploads.ts).
   *
   * @returns How many were aborted.
   */
  async abortStale(): Promise<number> {
    const own = new Set([...this.#uploads].map((upload) => upload.uploadId).filter((id) => id !== ""));
    return await abortStaleUploads(this.store, this.#kept, { olderThanMs: this.#options.staleUploadMs, own });
  }

  /** Refuses a bad name (`BAD_NAME`), and one too long for this store's keys. */
  #checkName(name: string): void {
    checkName(name);
    if (new TextEncoder().encode(name).length > this.maxNameBytes) {
      throw new DfosError(
        Status.BAD_NAME,
        `Cannot use name "${excerpt(name)}": name is longer than ${this.maxNameBytes} bytes (S3 keys are 1024 at most)`,
      );
    }
  }

  /**
   * Reports from now on to `events`: each conditional write lost to another
   * writer, each multipart upload opened on this server and closed
   * (completed, aborted, or kept for a later try: then it is open on the
   * server that takes it up).
   */
  observe(events: StorageEvents): void {
    this.#events.observe(events);
  }

  prepareUser(user: string): Promise<void> {
    return Promise.resolve().then(() => void userPrefix(user));
  }

  async beginUpload(user: string, name: string, options: BeginOptions = {}): Promise<Upload> {
    this.#checkName(name);
    userPrefix(user);
    await this.#names.checkPlace(user, name);
    // A new keepable upload of the name replaces what was kept of it.
    if (options.keep !== undefined) await this.#kept.drop(user, name);
    return this.#track(new S3Upload(this.#uploadContext(user, name, options.keep)));
  }

  async resumeUpload(user: string, name: string, key: string): Promise<{ upload: Upload; state: Uint8Array } | null> {
    this.#checkName(name);
    const record = await this.#kept.take(user, name, key);
    if (record === null) return null;
    let parts: PartInfo[] = [];
    if (record.uploadId !== "") {
      try {
        parts = await this.store.listParts(fileKey(user, name), record.uploadId);
      } catch (error) {
        if (error instanceof ObjectStoreError && error.kind === "not-found") {
          // Its multipart upload is gone (aborted by a sweep): nothing to resume.
          await this.#kept.forget(user, name, key).catch(() => {});
          return null;
        }
        // Not lost for a failure of the store: kept again for a later try, if the store lets us.
        await this.#kept.keep(user, { ...record, taken: false }).catch(() => {});
        throw storeFailure(error, `resume the upload of "${name}"`, this.store.label);
      }
    }
    const upload = new S3Upload(this.#uploadContext(user, name, key), {
      uploadId: record.uploadId,
      parts,
      pending: record.pending,
    });
    return { upload: this.#track(upload), state: record.state };
  }

  #uploadContext(user: string, name: string, keep: string | undefined): S3UploadContext {
    return {
      store: this.store,
      user,
      name,
      key: fileKey(user, name),
      kept: this.#kept,
      leases: this.#leases,
      changes: this.#changes,
      partBytes: this.#options.partBytes,
      parallel: this.#options.parallelParts,
      keep,
      events: this.#events,
      checkPlace: () => this.#names.checkPlace(user, name),
      onCommit: (info, replaced, admission) =>
        this.#counters.bump(user, {
          touched: [{ name }],
          usage: {
            bytes: footprint(info.size, this.blockSize) -
              (replaced === null ? 0 : footprint(replaced.size, this.blockSize)),
            entries: replaced === null ? 1 : 0,
          },
          settles: admission?.hold,
        }),
    };
  }

  #track(upload: S3Upload): S3Upload {
    this.#uploads.add(upload);
    upload.settled.then(() => this.#uploads.delete(upload));
    return upload;
  }

  keptUploads(user: string): Promise<KeptUpload[]> {
    return Promise.resolve().then(() => this.#kept.list(user));
  }

  async dropKept(user: string, name: string, key: string): Promise<void> {
    this.#checkName(name);
    await this.#kept.drop(user, name, key);
  }

  sweepKept(before: number): Promise<number> {
    return this.#kept.sweep(before);
  }

  async readChunkList(user: string, name: string): Promise<StoredChunkList | null> {
    this.#checkName(name);
    return await this.#chunkLists.read(user, name);
  }

  writeChunkList(user: string, list: StoredChunkList): Promise<void> {
    const written = Promise.resolve().then(() => {
      this.#checkName(list.name);
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
    return Promise.resolve().then(() => this.#counters.get(user));
  }

  /** From the journal in the user's change record (../change_journal.ts): the local disk's rules. */
  async changedNames(user: string, since: ChangeCounter, prefix: string): Promise<string[] | null> {
    userPrefix(user);
    const record = await this.#counters.read(user);
    return namesSince(record.journal, record, since, prefix);
  }

  /** This server's changes wake at once; another server's are seen by polling the change record (s3_change_watch.ts). */
  waitForChange(user: string, since: ChangeCounter, signal: AbortSignal): Promise<void> {
    return Promise.resolve().then(() => {
      userPrefix(user);
      return this.#watch.wait(user, since, signal);
    });
  }

  async openRead(user: string, name: string): Promise<ReadHandle> {
    this.#checkName(name);
    const head = await this.#names.head(user, name, `read "${name}"`);
    if (head === null) return await this.#names.missing(user, name);
    return new S3ReadHandle(this.store, head.key, facts(name, head));
  }

  async remove(user: string, name: string, options: RemoveOptions = {}): Promise<Removed> {
    this.#checkName(name);
    const names = options.ifVersion === undefined ? [] : [name];
    return await this.#changes.run(
      user,
      () => this.#leased(user, names, "remove", () => this.#remove(user, name, options)),
    );
  }

  /** HeadObject, then DeleteObject (on a condition, of the version checked where the engine honours it). */
  async #remove(user: string, name: string, { ifVersion }: RemoveOptions): Promise<Removed> {
    const head = await this.#names.head(user, name, `remove "${name}"`);
    if (head === null) return await this.#names.missing(user, name);
    if (ifVersion !== undefined && head.etag !== ifVersion) throw changedOnServer("remove", name);
    const refusal = ifVersion === undefined ? null : changedOnServer("remove", name);
    const conditions = ifVersion === undefined ? {} : { ifMatch: head.etag };
    await changeStep(`remove "${name}"`, this.store.label, refusal, () => this.store.delete(head.key, conditions));
    await this.#counters.bump(user, {
      touched: [{ name }],
      usage: { bytes: -footprint(head.size, this.blockSize), entries: -1 },
    });
    await this.#chunkLists.remove(user, name).catch(() => {}); // metadata: a stale one shows by its version
    return { name, size: head.size, mtime: mtimeOf(head), folders: 0 };
  }

  /**
   * Runs `change` holding the commit leases of `names` (taken in name
   * order, so that two changes taking the same ones never wait for each
   * other), and releases them after.
   */
  async #leased<T>(user: string, names: string[], action: string, change: () => Promise<T>): Promise<T> {
    const leases: Lease[] = [];
    try {
      for (const name of [...new Set(names)].sort()) leases.push(await this.#leases.take(user, name, action));
      return await change();
    } finally {
      await Promise.all(leases.map((lease) => lease.release()));
    }
  }

  async rename(user: string, from: string, to: string, options: RenameOptions = {}): Promise<Moved> {
    this.#checkName(from);
    this.#checkName(to);
    if (to === from || to.startsWith(from + "/")) {
      throw new DfosError(Status.CONFLICT, `Cannot move "${from}" to "${to}": it would go into itself`);
    }
    // A rename on a condition holds both names' leases: no conditional change of either comes between its look and
    // its copy or delete.
    const names = options.ifVersion === undefined ? [] : [from, to];
    return await this.#changes.run(
      user,
      () => this.#leased(user, names, "move", () => this.#rename(user, from, to, options)),
    );
  }

  /**
   * Copies each object, then deletes the old one: a file is visible under
   * both names for a moment, never under neither; a folder's files move one
   * by one (storage.ts says what a caller may rely on).
   */
  async #rename(user: string, from: string, to: string, options: RenameOptions): Promise<Moved> {
    const action = `move "${from}" to "${to}"`;
    const file = await this.#names.head(user, from, action);
    const sources: ObjectHead[] = file !== null ? [file] : await this.#below(user, from, action);
    if (sources.length === 0) {
      await this.#names.checkWay(user, from, `use "${from}"`);
      throw new DfosError(Status.NOT_FOUND, `Cannot find "${from}": no such file or folder`);
    }
    const { ifVersion } = options;
    if (ifVersion !== undefined && file?.etag !== ifVersion) throw changedOnServer("move", from);
    const [target, targetFolder] = await Promise.all([
      this.#names.head(user, to, action),
      this.#names.isFolder(user, to, action),
      this.#names.checkWay(user, to, `move to "${to}"`),
    ]);
    if (target !== null || targetFolder) {
      throw new DfosError(Status.CONFLICT, `Cannot move "${from}" to "${to}": "${to}" exists`);
    }
    const prefix = userPrefix(user);
    // Every new name checked before the first copy: a key too long must not leave a folder half moved.
    const longestBelow = file !== null ? "" : sources.map((source) => source.key.slice(prefix.length + from.length))
      .reduce((longest, rest) => utf8Length(rest) > utf8Length(longest) ? rest : longest, "");
    checkMovedNames(from, to, longestBelow, Math.min(this.maxNameBytes, options.maxNameBytes ?? this.maxNameBytes));
    options.admit?.(0);
    // On a condition, the copy is of the version checked, and so is the removal where the engine honours it; a
    // removal refused so takes its copy back (what refused it is a newer version of `from`).
    const refusal = ifVersion === undefined ? null : changedOnServer("move", from);
    const copyOptions = ifVersion === undefined ? {} : { ifSourceMatch: ifVersion };
    const deleteOptions = ifVersion === undefined ? {} : { ifMatch: ifVersion };
    const { label } = this.store;
    for (const source of sources) {
      const name = source.key.slice(prefix.length);
      const moved = file !== null ? to : to + name.slice(from.length);
      const copy = () => this.store.copy(source.key, fileKey(user, moved), copyOptions);
      const copied = await changeStep(action, label, refusal, copy);
      try {
        await changeStep(action, label, refusal, () => this.store.delete(source.key, deleteOptions));
      } catch (error) {
        if (error === refusal) await this.store.delete(fileKey(user, moved), { ifMatch: copied }).catch(() => {});
        throw error;
      }
      await this.#chunkLists.move(user, name, moved).catch(() => {}); // metadata: computed again when missing
    }
    const folder = file === null;
    await this.#counters.bump(user, { touched: [{ name: from, folder }, { name: to, folder }] });
    return { from, to, files: sources.length, foldersCreated: 0, foldersRemoved: 0 };
  }

  /** Every file below the folder `name`. */
  async #below(user: string, name: string, action: string): Promise<ObjectHead[]> {
    const prefix = fileKey(user, name) + "/";
    const found: ObjectHead[] = [];
    let startAfter: string | undefined;
    do {
      const page = await storeStep(action, this.store.label, () => this.store.list(prefix, { startAfter }));
      for (const object of page.objects) {
        if (!object.key.endsWith("/") && !isMetadataKey(userPrefix(user), object.key)) found.push(object);
      }
      startAfter = page.next ?? undefined;
    } while (startAfter !== undefined);
    return found;
  }

  list(user: string, options: ListOptions): Promise<ListPage> {
    return this.#listing.page(user, options);
  }

  async stat(user: string, name: string): Promise<VersionedInfo | null> {
    this.#checkName(name);
    const head = await this.#names.head(user, name, `stat "${name}"`);
    if (head !== null) return facts(name, head);
    await this.#names.checkWay(user, name, `use "${name}"`);
    return null;
  }

  usage(user: string): Promise<Usage> {
    return this.#listing.usage(user);
  }

  async abortUploads(): Promise<void> {
    if (this.#cleanupTimer !== null) clearInterval(this.#cleanupTimer);
    this.#cleanupTimer = null;
    await this.#cleaning;
    await Promise.all([...this.#uploads].map((upload) => upload.abort()));
    await Promise.all(this.#writing);
    await this.ledger.settled();
    await this.#watch.close();
  }
}

/**
 * Runs `step`, an object operation of a change, and throws its failure as
 * {@linkcode storeStep} does, but for a lost condition of a change made on a
 * condition (`refusal` not null): that is the change's refusal.
 */
async function changeStep<T>(
  action: string,
  store: string,
  refusal: DfosError | null,
  step: () => Promise<T>,
): Promise<T> {
  try {
    return await step();
  } catch (error) {
    if (refusal !== null && isLostCondition(error)) throw refusal;
    throw storeFailure(error, action, store);
  }
}

/** The bytes the store's key prefix adds to each key (its label is `s3://BUCKET/PREFIX`). */
function keyPrefixBytes(store: ObjectStore): number {
  const path = store.label.replace(/^s3:\/\/[^/]*\/?/, "");
  return path === "" ? 0 : new TextEncoder().encode(path).length + 1;
}

/** A file's facts from its HeadObject. */
function facts(name: string, head: ObjectHead): VersionedInfo & FileInfo {
  return { name, size: head.size, mtime: mtimeOf(head), version: head.etag };
}
