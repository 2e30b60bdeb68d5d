/**
 * `ConflictReportingStore`: an `ObjectStore` (object_store.ts) that passes
 * every operation to another and reports each conditional write the engine
 * refused because another writer changed the object first: a PutObject,
 * CopyObject or CompleteMultipartUpload with `If-Match` or
 * `If-None-Match: *`, a CopyObject with a condition on its source, or a
 * DeleteObject with `If-Match`, that failed as a lost condition
 * (`precondition`, which includes Ceph's 500 answers to some lost `If-Match`
 * races, or `conflict`, 409). `S3Storage` puts it under every module, so
 * that each conditional write they make (the change counters, the commit
 * leases, kept uploads taken up, a small file's commit, a change on a
 * condition) is counted whatever its caller does with the failure: tries
 * again, waits, refuses or gives up. A read's failed
 * `If-Match` (a file replaced while being read) is no write, and not
 * reported.
 *
 * @example Usage
 * ```ts ignore
 * // ignored: it needs an S3 engine
 * const store = new ConflictReportingStore(new S3ObjectStore(options, credentials), () => conflicts++);
 * ```
 *
 * @module
 */

import type {
  Conditions,
  CopyOptions,
  DeleteOptions,
  GetOptions,
  ListObjectsOptions,
  MultipartInfo,
  ObjectHead,
  ObjectPage,
  ObjectStore,
  PartInfo,
  PutOptions,
} from "./object_store.ts";
import { isLostCondition } from "./s3_errors.ts";

/** A bucket whose refused conditional writes are reported. */
export class ConflictReportingStore implements ObjectStore {
  readonly label: string;
  readonly #inner: ObjectStore;
  readonly #onConflict: () => void;

  /**
   * @param inner The bucket.
   * @param onConflict Told of each conditional write lost to another writer (must not throw).
   */
  constructor(inner: ObjectStore, onConflict: () => void) {
    this.label = inner.label;
    this.#inner = inner;
    this.#onConflict = onConflict;
  }

  head(key: string): Promise<ObjectHead | null> {
    return this.#inner.head(key);
  }

  get(key: string, options?: GetOptions): Promise<{ head: ObjectHead; body: ReadableStream<Uint8Array> } | null> {
    return this.#inner.get(key, options);
  }

  put(key: string, body: Uint8Array, options?: PutOptions): Promise<string> {
    return this.#watched(options, () => this.#inner.put(key, body, options));
  }

  delete(key: string, options?: DeleteOptions): Promise<void> {
    return this.#watched(options, () => this.#inner.delete(key, options));
  }

  copy(from: string, to: string, options?: CopyOptions): Promise<string> {
    const conditions = options?.ifSourceMatch !== undefined ? { ifMatch: options.ifSourceMatch } : options;
    return this.#watched(conditions, () => this.#inner.copy(from, to, options));
  }

  list(prefix: string, options?: ListObjectsOptions): Promise<ObjectPage> {
    return this.#inner.list(prefix, options);
  }

  createMultipart(key: string, options?: { metadata?: Record<string, string> }): Promise<string> {
    return this.#inner.createMultipart(key, options);
  }

  uploadPart(key: string, uploadId: string, partNumber: number, body: Uint8Array): Promise<string> {
    return this.#inner.uploadPart(key, uploadId, partNumber, body);
  }

  completeMultipart(key: string, uploadId: string, parts: PartInfo[], options?: Conditions): Promise<ObjectHead> {
    return this.#watched(options, () => this.#inner.completeMultipart(key, uploadId, parts, options));
  }

  abortMultipart(key: string, uploadId: string): Promise<void> {
    return this.#inner.abortMultipart(key, uploadId);
  }

  listParts(key: string, uploadId: string): Promise<PartInfo[]> {
    return this.#inner.listParts(key, uploadId);
  }

  listMultipartUploads(prefix: string): Promise<MultipartInfo[]> {
    return this.#inner.listMultipartUploads(prefix);
  }

  /** Runs a write; when it was conditional and lost its condition, reports it (and throws its failure as it was). */
  async #watched<T>(conditions: Conditions | undefined, write: () => Promise<T>): Promise<T> {
    if (conditions?.ifMatch === undefined && conditions?.ifNoneMatch === undefined) return await write();
    try {
      return await write();
    } catch (error) {
      if (isLostCondition(error)) this.#onConflict();
      throw error;
    }
  }
}
