/**
 * `S3Upload`: one upload to the bucket, invisible to every reader until its
 * commit.
 *
 * The body is copied into part buffers as it comes (each piece's hold is
 * released at once). A full part goes to a multipart upload, made at the
 * first full part, to the file's own key; at most `parallel` parts are sent
 * at once, and `write` waits for one to finish beyond that, so the memory an
 * upload takes is `parallel + 1` parts whatever the file's size. Parts are
 * {@linkcode PART_BYTES} for the first 1,000, and double every 1,000 after
 * that ({@linkcode partBytes}), so that S3's 10,000 parts reach its 5 TiB
 * object: a file's size need not be known in advance.
 *
 * The commit, one change of the user's files at a time in this process
 * (`UserChanges`), looks again at the name (still not a folder, no file on
 * the way), takes what it replaces from a HeadObject (refused `CONFLICT`
 * when its ETag is not the `ifVersion` asked, or when there is a file and
 * `ifVersion` is null), asks the quota (`admit`: with the store's ledger, a
 * hold checked in the bucket, awaited) and then stores the file:
 * - a body smaller than one part (no multipart upload made) is one PutObject
 *   with `If-Match` on the replaced file's ETag (`If-None-Match: *` when
 *   there was none): a change by another server since the look fails it
 *   (`CONFLICT`) instead of being overwritten;
 * - a larger one is completed (CompleteMultipartUpload) under the name's
 *   commit lease (commit_leases.ts), since the engine does not honour
 *   conditions on a completion.
 * A commit with `ifVersion` takes the lease whatever its size, so that it
 * never lands inside another conditional change's look and write.
 * The modification time is the object's `x-amz-meta-mtime` (a completed
 * upload's is set by copying it onto itself, which RGW does without copying
 * its data), else its Last-Modified. The change is then counted
 * (`onCommit`): the counter, the journal and the usage move, and the
 * quota's hold is dropped, in one conditional write. An abort aborts the
 * multipart upload.
 * RGW's completion answers no ETag, so the facts are read back: when what
 * is read is not a multipart object of the parts' size, a small file's
 * PutObject (which needs no lease) replaced it at once, and the commit
 * answers its own facts (its size, the multipart ETag of its parts) instead.
 *
 * The multipart upload is reported open on this server (`events`) from its
 * creation, or from the take-up of a kept one, until it is completed,
 * aborted (or its abort failed: then it is the stale cleanup's), or kept:
 * a kept upload is open on no server until one takes it up, so that no
 * server's count goes below 0 or stays up for an upload another finished.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import { type Bytes, bytesOf, release } from "../../shared/pooled_bytes.ts";
import { DfosError, Status } from "../../shared/status.ts";
import {
  changedOnServer,
  type CommitAdmission,
  type CommitOptions,
  type Upload,
  type VersionedInfo,
} from "../storage.ts";
import type { CommitLeases, Lease } from "./commit_leases.ts";
import type { ObjectHead, ObjectStore, PartInfo } from "./object_store.ts";
import { isLostCondition, storeFailure, storeStep } from "./s3_errors.ts";
import type { S3Events } from "./s3_events.ts";
import { type KeptRecord, type S3KeptUploads } from "./s3_kept_uploads.ts";
import { MAX_KEPT_STATE_BYTES } from "../kept_uploads.ts";
import type { UserChanges } from "./user_changes.ts";

/** The size of the first 1,000 parts of a multipart upload. */
export const PART_BYTES = 8 * 1024 * 1024;

/** Parts sent at once by one upload, by default. */
export const PARALLEL_PARTS = 3;

/** S3's largest part. */
const MAX_PART_BYTES = 5 * 1024 * 1024 * 1024;

/** S3's most parts. */
const MAX_PARTS = 10_000;

/**
 * The size of part `number` (from 1): `base` for the first 1,000, doubled
 * for each 1,000 after, at most 5 GiB.
 *
 * @param number The part's number.
 * @param base The first parts' size.
 * @returns Its size in bytes.
 *
 * @example Usage
 * ```ts
 * import { partBytes } from "./s3_upload.ts";
 * import { strictEqual } from "node:assert/strict";
 * strictEqual(partBytes(1000, 8), 8);
 * strictEqual(partBytes(1001, 8), 16);
 * ```
 */
export function partBytes(number: number, base: number): number {
  return Math.min(base * 2 ** Math.floor((number - 1) / 1000), MAX_PART_BYTES);
}

/** The metadata that holds a file's modification time (milliseconds, decimal). */
export const MTIME_META = "mtime";

/** What an upload needs of its storage. */
export interface S3UploadContext {
  store: ObjectStore;
  user: string;
  name: string;
  /** The file's object key. */
  key: string;
  kept: S3KeptUploads;
  leases: CommitLeases;
  changes: UserChanges;
  /** The first parts' size. */
  partBytes: number;
  /** Parts sent at once. */
  parallel: number;
  /** The key it can be kept under, if it can. */
  keep?: string;
  /** Where the multipart upload's opening and closing are reported. */
  events: S3Events;
  /** Refuses a name the file cannot be stored under as things are. */
  checkPlace(): Promise<void>;
  /**
   * Called after the commit, within the user's change: the change counted
   * (counter, journal, usage less what it replaced), and the quota's hold
   * the commit settles, if any.
   */
  onCommit(info: VersionedInfo, replaced: ObjectHead | null, admission: CommitAdmission | null): Promise<void>;
}

/** Where a resumed upload goes on from. */
export interface ResumeFrom {
  uploadId: string;
  parts: PartInfo[];
  pending: Uint8Array;
}

/** An upload in progress to the bucket. */
export class S3Upload implements Upload {
  /** Resolves once the upload is committed, kept or aborted. */
  readonly settled: Promise<void>;
  readonly #context: S3UploadContext;
  #resolveSettled: () => void = () => {};
  #done = false;
  /** Continues a kept upload: its record is to go at the commit. */
  #resumed: boolean;
  #uploadId: string;
  /** Whether the multipart upload is reported open. */
  #open = false;
  readonly #parts: PartInfo[];
  /** The number of the next part to send. */
  #nextPart: number;
  /** The part being filled, and how much of it is. */
  #part: Uint8Array | null = null;
  #filled = 0;
  #written: number;
  readonly #sending = new Set<Promise<void>>();
  #failure: unknown = null;

  /**
   * @param context The storage's side.
   * @param from A kept upload's parts and pending bytes, when it continues one.
   */
  constructor(context: S3UploadContext, from?: ResumeFrom) {
    this.#context = context;
    this.#resumed = from !== undefined;
    this.#uploadId = from?.uploadId ?? "";
    this.#parts = from?.parts ?? [];
    this.#nextPart = this.#parts.reduce((most, part) => Math.max(most, part.partNumber), 0) + 1;
    this.#written = this.#parts.reduce((sum, part) => sum + part.size, 0);
    this.settled = new Promise((resolve) => this.#resolveSettled = resolve);
    if (from !== undefined && from.pending.length > 0) this.#copyIn(from.pending);
    if (this.#uploadId !== "") this.#opened();
  }

  /** The multipart upload's id, or "" while there is none. */
  get uploadId(): string {
    return this.#uploadId;
  }

  /** Bytes written so far (a resumed upload's kept ones included). */
  get written(): number {
    return this.#written;
  }

  async write(chunk: Bytes): Promise<void> {
    if (this.#done) {
      release(chunk);
      this.#throwIfDone();
    }
    if (this.#failure !== null) {
      release(chunk);
      throw this.#mapped(this.#failure);
    }
    let bytes = bytesOf(chunk);
    try {
      while (bytes.length > 0) {
        const taken = this.#copyIn(bytes);
        bytes = bytes.subarray(taken);
        if (this.#filled === this.#part!.length) await this.#send();
      }
    } finally {
      release(chunk);
    }
  }

  /** Copies what fits of `bytes` into the part being filled; returns how many. */
  #copyIn(bytes: Uint8Array): number {
    if (this.#part === null) {
      this.#part = new Uint8Array(partBytes(this.#nextPart, this.#context.partBytes));
      this.#filled = 0;
    }
    const taken = Math.min(bytes.length, this.#part.length - this.#filled);
    this.#part.set(bytes.subarray(0, taken), this.#filled);
    this.#filled += taken;
    this.#written += taken;
    return taken;
  }

  /** Sends the full part (making the multipart upload first), once fewer than `parallel` are on their way. */
  async #send(): Promise<void> {
    const { store, key, name, parallel } = this.#context;
    const body = this.#part!;
    this.#part = null;
    this.#filled = 0;
    while (this.#sending.size >= parallel) await Promise.race(this.#sending);
    if (this.#failure !== null) throw this.#mapped(this.#failure);
    if (this.#uploadId === "") {
      this.#uploadId = await storeStep(`store "${name}"`, store.label, () => store.createMultipart(key));
      this.#opened();
      if (this.#done) {
        // Aborted while it was being created: the abort may have missed it.
        await this.#abortMultipart();
        this.#throwIfDone();
      }
    }
    const number = this.#nextPart++;
    if (number > MAX_PARTS) throw new DfosError(Status.TOO_LARGE, `Cannot store "${name}": it is too large for S3`);
    const uploadId = this.#uploadId;
    const sending: Promise<void> = store.uploadPart(key, uploadId, number, body).then(
      (etag) => void this.#parts.push({ partNumber: number, etag, size: body.length }),
      (error) => void (this.#failure ??= error),
    ).finally(() => this.#sending.delete(sending));
    this.#sending.add(sending);
  }

  /** Waits for the parts on their way; throws the first failure. */
  async #drain(): Promise<void> {
    while (this.#sending.size > 0) await Promise.all(this.#sending);
    if (this.#failure !== null) throw this.#mapped(this.#failure);
  }

  async commit(options: CommitOptions = {}): Promise<VersionedInfo> {
    this.#throwIfDone();
    const { user, name, changes } = this.#context;
    try {
      const mtime = options.mtime === undefined ? undefined : checkMtime(name, options.mtime);
      await this.#drain();
      const info = await changes.run(user, () => this.#store(mtime, options));
      this.#finish();
      return info;
    } catch (error) {
      await this.abort();
      throw this.#mapped(error);
    }
  }

  /**
   * The commit's one change: the look (and the condition on what it saw),
   * `admit`, the write, the change counted. A multipart completion, and any
   * commit with a condition, is made under the name's lease.
   */
  async #store(mtime: number | undefined, options: CommitOptions): Promise<VersionedInfo> {
    this.#throwIfDone();
    const { store, key, name, leases, user } = this.#context;
    const multipart = this.#uploadId !== "";
    const { ifVersion, admit } = options;
    const lease: Lease | null = multipart || ifVersion !== undefined ? await leases.take(user, name) : null;
    try {
      await this.#context.checkPlace();
      const replaced = await store.head(key);
      if (ifVersion !== undefined && (ifVersion === null ? replaced !== null : replaced?.etag !== ifVersion)) {
        throw changedOnServer("store", name);
      }
      // The quota's last check; with a shared ledger, awaited (its hold is settled by the count below).
      const admission = await admit?.({ replaced: replaced?.size ?? null, folders: 0 }) ?? null;
      const info = multipart
        ? await this.#complete(replaced, mtime)
        : await this.#put(replaced, mtime ?? Date.now()).catch((error) => {
          // Another server's plain commit came after the look: on a condition, that is this commit's refusal.
          throw ifVersion !== undefined && isLostCondition(error) ? changedOnServer("store", name) : error;
        });
      if (this.#resumed) await this.#context.kept.forget(user, name, this.#context.keep!);
      await this.#context.onCommit(info, replaced, admission);
      return info;
    } finally {
      await lease?.release();
    }
  }

  /** A body of less than a part: one conditional PutObject. */
  async #put(replaced: ObjectHead | null, mtime: number): Promise<VersionedInfo> {
    const { store, key, name } = this.#context;
    const body = this.#part?.subarray(0, this.#filled) ?? new Uint8Array(0);
    const conditions = replaced === null ? { ifNoneMatch: "*" as const } : { ifMatch: replaced.etag };
    const etag = await store.put(key, body, { ...conditions, metadata: { [MTIME_META]: String(mtime) } });
    this.#part = null;
    return { name, size: body.length, mtime, version: etag };
  }

  /** A multipart upload: its last part, then the completion (and the mtime set by a copy onto itself). */
  async #complete(_replaced: ObjectHead | null, mtime: number | undefined): Promise<VersionedInfo> {
    const { store, key, name } = this.#context;
    if (this.#filled > 0 || this.#parts.length === 0) {
      const body = this.#part?.subarray(0, this.#filled) ?? new Uint8Array(0);
      const number = this.#nextPart++;
      const etag = await store.uploadPart(key, this.#uploadId, number, body);
      this.#parts.push({ partNumber: number, etag, size: body.length });
      this.#part = null;
      this.#filled = 0;
    }
    const parts = [...this.#parts].sort((a, b) => a.partNumber - b.partNumber);
    let head = await store.completeMultipart(key, this.#uploadId, parts);
    this.#closed();
    const size = parts.reduce((sum, part) => sum + part.size, 0);
    if (!isMultipartEtag(head.etag) || head.size !== size) {
      // The facts read back after the completion (RGW answers no ETag) are of a small file's PutObject that replaced
      // it at once (under this lease nothing else can): the commit stands, and its facts are its own.
      return { name, size, mtime: mtime ?? Date.now(), version: multipartEtag(parts) };
    }
    if (mtime !== undefined) {
      const etag = await store.copy(key, key, { metadata: { [MTIME_META]: String(mtime) } });
      head = { ...head, etag };
    }
    return { name, size: head.size, mtime: mtime ?? head.lastModified, version: head.etag };
  }

  async keep(state: Uint8Array): Promise<void> {
    this.#throwIfDone();
    const { user, name, kept, keep } = this.#context;
    try {
      if (keep === undefined) {
        throw new DfosError(Status.BAD_REQUEST, `Cannot keep the upload of "${name}": it was not begun to be kept`);
      }
      if (state.length > MAX_KEPT_STATE_BYTES) {
        throw new DfosError(Status.TOO_LARGE, `Cannot keep the upload of "${name}": its state is too large`);
      }
      await this.#drain();
      const record: KeptRecord = {
        name,
        key: keep,
        uploadId: this.#uploadId,
        size: this.#written,
        taken: false,
        updated: Date.now(),
        pending: this.#part?.slice(0, this.#filled) ?? new Uint8Array(0),
        state,
      };
      await kept.keep(user, record);
      this.#closed(); // open on no server until one takes it up
      this.#part = null;
      this.#finish();
    } catch (error) {
      await this.abort();
      throw this.#mapped(error);
    }
  }

  async abort(): Promise<void> {
    if (this.#done) return;
    this.#finish();
    this.#part = null;
    const { user, name, kept, keep } = this.#context;
    await Promise.allSettled(this.#sending);
    await this.#abortMultipart();
    try {
      if (this.#resumed) await kept.forget(user, name, keep!);
    } catch {
      // left for the sweep of kept ones
    }
  }

  /** Aborts the multipart upload, if there is one still open here; never throws. */
  async #abortMultipart(): Promise<void> {
    if (this.#uploadId === "" || !this.#open) return;
    const { store, key } = this.#context;
    try {
      await store.abortMultipart(key, this.#uploadId);
    } catch {
      // left for the cleanup of stale multipart uploads
    } finally {
      this.#closed();
    }
  }

  #opened(): void {
    if (this.#open) return;
    this.#open = true;
    this.#context.events.multipartOpened();
  }

  #closed(): void {
    if (!this.#open) return;
    this.#open = false;
    this.#context.events.multipartClosed();
  }

  /** A failure as the client sees it. */
  #mapped(error: unknown): unknown {
    return storeFailure(error, `store "${this.#context.name}"`, this.#context.store.label);
  }

  #throwIfDone(): void {
    if (this.#done) throw new DfosError(Status.ABORTED, `Upload of "${this.#context.name}" was aborted`);
  }

  #finish(): void {
    this.#done = true;
    this.#resolveSettled();
  }
}

/** Whether an ETag is a completed multipart upload's (`"<hex>-<parts>"`), not a PutObject's. */
function isMultipartEtag(etag: string): boolean {
  return /-\d+"?$/.test(etag);
}

/** The ETag S3 gives the object completed from `parts`: the MD5 of their MD5s, and their number. */
function multipartEtag(parts: PartInfo[]): string {
  const hash = createHash("md5");
  for (const part of parts) hash.update(Buffer.from(part.etag.replace(/^W\//, "").replaceAll('"', ""), "hex"));
  return `"${hash.digest("hex")}-${parts.length}"`;
}

/** A modification time a file can have: whole milliseconds within the range of a `Date`. */
function checkMtime(name: string, mtime: number): number {
  if (!Number.isSafeInteger(mtime) || Math.abs(mtime) > 8.64e15) {
    throw new DfosError(Status.BAD_REQUEST, `Cannot store "${name}": ${mtime} is not a modification time`);
  }
  return mtime;
}
