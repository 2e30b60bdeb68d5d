/**
 * `ObjectStore`: the few object operations dfos's S3 backend is built on,
 * in S3's own terms (keys, ETags, conditional writes, multipart uploads), so
 * that the storage (s3_storage.ts) reads as what it does with objects and the
 * client underneath (HTTP, signing, XML) can be chosen by measurement and
 * swapped without touching it.
 *
 * Keys are full object keys within the one bucket (the `PREFIX/` of
 * `--storage s3://BUCKET/PREFIX` already applied by the implementation).
 * ETags are passed and returned as S3 gives them in headers, quotes
 * included; an implementation that must send them otherwise to an engine
 * (Ceph RGW matches a PUT's `If-Match` only unquoted) does so itself.
 *
 * Every failure is an {@linkcode ObjectStoreError} whose `kind` says what the
 * caller may do about it.
 *
 * @module
 */

/** What went wrong with an object operation. */
export type ObjectErrorKind =
  /** No such key, upload or part (404, NoSuchKey, NoSuchUpload). */
  | "not-found"
  /** A condition did not hold (412; Ceph answers some lost `If-Match` races with 500 too: those are this kind). */
  | "precondition"
  /** Another request changed the key at the same time (409 ConditionalRequestConflict, OperationAborted). */
  | "conflict"
  /** The engine cannot be reached, timed out, or answered 5xx other than a lost condition (503 SlowDown...). */
  | "unavailable"
  /** Refused as asked (400, 403, EntityTooSmall, a part list that does not match...). */
  | "refused";

/** A failed object operation. */
export class ObjectStoreError extends Error {
  /** What went wrong. */
  readonly kind: ObjectErrorKind;
  /** The HTTP status, or 0 when there was no answer. */
  readonly status: number;
  /** S3's error code (`NoSuchKey`, `PreconditionFailed`...), or "" when none. */
  readonly code: string;

  /**
   * @param kind What went wrong.
   * @param message Says which operation on which key, and why.
   * @param details The HTTP status and S3's code, and the cause.
   */
  constructor(
    kind: ObjectErrorKind,
    message: string,
    details: { status?: number; code?: string; cause?: unknown } = {},
  ) {
    super(message, { cause: details.cause });
    this.name = "ObjectStoreError";
    this.kind = kind;
    this.status = details.status ?? 0;
    this.code = details.code ?? "";
  }
}

/** An object's facts, from HeadObject, GetObject or a listing. */
export interface ObjectHead {
  /** The key. */
  key: string;
  /** Size in bytes. */
  size: number;
  /** The ETag, quoted as S3 gives it. */
  etag: string;
  /** Last-Modified, milliseconds since the Unix epoch (S3 keeps whole seconds). */
  lastModified: number;
  /** The `x-amz-meta-*` headers, names lower-case without the prefix (empty from a listing). */
  metadata: Record<string, string>;
}

/** Conditions on a write or a read. */
export interface Conditions {
  /** Only if the object's ETag is this one (S3 `If-Match`). */
  ifMatch?: string;
  /** `"*"`: only if no object has the key (S3 `If-None-Match: *`). */
  ifNoneMatch?: "*";
}

/** Options of {@linkcode ObjectStore.put}. */
export interface PutOptions extends Conditions {
  /** `x-amz-meta-*` to store with the object (names lower-case, without the prefix; ASCII values). */
  metadata?: Record<string, string>;
}

/** Options of {@linkcode ObjectStore.copy}. */
export interface CopyOptions extends PutOptions {
  /**
   * Only if the source's ETag is this one (S3 `x-amz-copy-source-if-match`;
   * Ceph RGW 16 reads it as `x-amz-copy-if-match`): what is copied is that
   * version. A failed condition is `precondition`.
   */
  ifSourceMatch?: string;
}

/** Options of {@linkcode ObjectStore.delete}. */
export interface DeleteOptions {
  /**
   * Only if the object's ETag is this one (S3 `If-Match`). Engines that do
   * not honour it (Ceph RGW 16) delete whatever is there: a caller that must
   * not delete another version looks first and orders its changes itself.
   */
  ifMatch?: string;
}

/** Options of {@linkcode ObjectStore.get}. */
export interface GetOptions {
  /** Only the bytes from `offset`, `length` of them (S3 `Range`). */
  range?: { offset: number; length: number };
  /** Only if the object is still this version (S3 `If-Match`): a snapshot of what was opened. */
  ifMatch?: string;
  /** Stops the read (the body's stream is cancelled). */
  signal?: AbortSignal;
}

/** One page of a listing. */
export interface ObjectPage {
  /** The objects, sorted by key (S3's UTF-8 binary order). */
  objects: ObjectHead[];
  /** With a delimiter: the common prefixes (each ending in the delimiter). */
  prefixes: string[];
  /** Pass as `startAfter` for the next page, or null on the last page. */
  next: string | null;
}

/** Options of {@linkcode ObjectStore.list}. */
export interface ListObjectsOptions {
  /** Only keys that sort after this one (S3 `StartAfter`). */
  startAfter?: string;
  /** At most this many (S3 `MaxKeys`, at most 1000). */
  maxKeys?: number;
  /** Groups keys by this (S3 `Delimiter`, "/"). */
  delimiter?: string;
}

/** A part of a multipart upload. */
export interface PartInfo {
  /** 1 to 10,000. */
  partNumber: number;
  /** Its ETag, quoted. */
  etag: string;
  /** Its size in bytes. */
  size: number;
  /** When it was written, milliseconds since the Unix epoch (ListParts; 0 when not known). */
  lastModified?: number;
}

/** A multipart upload in progress, from {@linkcode ObjectStore.listMultipartUploads}. */
export interface MultipartInfo {
  /** The key it will complete to. */
  key: string;
  /** Its id. */
  uploadId: string;
  /** When it was created, milliseconds since the Unix epoch. */
  initiated: number;
}

/** The object operations of one bucket (and key prefix). */
export interface ObjectStore {
  /** A name for messages and metrics labels: `s3://BUCKET/PREFIX`. */
  readonly label: string;
  /** HeadObject: the facts, or null when there is no such key. */
  head(key: string): Promise<ObjectHead | null>;
  /**
   * GetObject: the facts and the bytes (in large chunks), or null when there
   * is no such key. A failed `ifMatch` is `precondition`.
   */
  get(key: string, options?: GetOptions): Promise<{ head: ObjectHead; body: ReadableStream<Uint8Array> } | null>;
  /** PutObject of a body in memory; returns the new ETag. A failed condition is `precondition`. */
  put(key: string, body: Uint8Array, options?: PutOptions): Promise<string>;
  /**
   * DeleteObject; nothing when there is none. S3 cannot make it conditional
   * everywhere (`ifMatch`: see {@linkcode DeleteOptions}): callers check
   * first. A failed condition, where honoured, is `precondition`.
   */
  delete(key: string, options?: DeleteOptions): Promise<void>;
  /**
   * CopyObject within the bucket (metadata copied unless given); returns the
   * new ETag. A failed condition (on the source, `ifSourceMatch`; on the
   * target where the engine honours it) is `precondition`.
   */
  copy(from: string, to: string, options?: CopyOptions): Promise<string>;
  /** ListObjectsV2 under `prefix`, one page. */
  list(prefix: string, options?: ListObjectsOptions): Promise<ObjectPage>;
  /** CreateMultipartUpload; returns the upload id. */
  createMultipart(key: string, options?: { metadata?: Record<string, string> }): Promise<string>;
  /** UploadPart (5 MiB to 5 GiB but the last; at most 10,000); returns the part's ETag. */
  uploadPart(key: string, uploadId: string, partNumber: number, body: Uint8Array): Promise<string>;
  /**
   * CompleteMultipartUpload of these parts in order; returns the object's
   * facts (from a HeadObject where the engine's answer lacks them: Ceph
   * returns an empty ETag). Conditions as far as the engine honours them
   * (an implementation documents which).
   */
  completeMultipart(key: string, uploadId: string, parts: PartInfo[], options?: Conditions): Promise<ObjectHead>;
  /** AbortMultipartUpload; nothing when it is gone already. */
  abortMultipart(key: string, uploadId: string): Promise<void>;
  /** ListParts: the parts uploaded so far, in order. `not-found` when the upload is gone. */
  listParts(key: string, uploadId: string): Promise<PartInfo[]>;
  /** ListMultipartUploads under `prefix` (all pages). */
  listMultipartUploads(prefix: string): Promise<MultipartInfo[]>;
}
