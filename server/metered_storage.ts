/**
 * `MeteredStorage`: any `Storage` (server/storage.ts), each of its calls
 * timed and counted in the server's metrics (`ServerMetrics`,
 * server/server_metrics.ts): `dfos_storage_operation_duration_seconds` and
 * `dfos_storage_operation_failures_total`, by backend and operation. The
 * server wraps whatever storage it is given, so a new backend is metered
 * without a line of its own. The calls of an `Upload` (`upload_write`,
 * `upload_commit`, `upload_abort`, `upload_keep`) and the reads of a
 * `ReadHandle` are timed too; an iteration (`read`, `read_range`,
 * `chunk_lists`) counts once, when it ends, with the time spent waiting on
 * the storage (not on whoever consumes it). `waitForChange` is not timed
 * (it lasts as long as nothing changes): the waits under way are the gauge
 * `dfos_watches_held`. A call that throws a
 * `DfosError` was refused, not failed (`NOT_FOUND`, `CONFLICT`...): it is
 * timed, not counted as a failure.
 *
 * The hooks of a backend. The backend label is the storage's `backend`
 * (`local` when absent). What only the backend sees it reports through
 * `Storage.observe(events)`, which the wrapper calls once with a
 * `StorageEvents`:
 *
 * - `events.conflict()` when a conditional write (`If-Match`,
 *   `If-None-Match: *`) is refused because another writer changed the
 *   object first: `dfos_storage_conflicts_total`;
 * - `events.multipartOpened()` after CreateMultipartUpload (or when a kept
 *   multipart upload is taken up) and `events.multipartClosed()` after its
 *   Complete or Abort (or when it is kept): the multipart uploads open on
 *   this server, `dfos_storage_multipart_uploads_open`.
 *
 * An S3 backend implements `backend = "s3"` and `observe()` keeping the
 * events, and calls them where those things happen; `LocalStorage` has
 * neither conflicts nor multipart uploads, and implements neither (its
 * series stay 0).
 *
 * @example Usage
 * ```ts ignore
 * // ignored: it needs a storage folder
 * const storage = new MeteredStorage(await LocalStorage.open(root), metrics);
 * ```
 *
 * @module
 */

import type { Bytes } from "../shared/pooled_bytes.ts";
import { DfosError } from "../shared/status.ts";
import type { ServerMetrics, StorageOperation } from "./server_metrics.ts";
import type {
  BeginOptions,
  ChangeCounter,
  CommitOptions,
  FileInfo,
  KeptUpload,
  ListOptions,
  ListPage,
  Moved,
  ReadHandle,
  Removed,
  RemoveOptions,
  RenameOptions,
  Storage,
  StoredChunkList,
  Upload,
  Usage,
  UsageLedger,
} from "./storage.ts";

/** A storage whose every call is timed and counted in a server's metrics. */
export class MeteredStorage implements Storage {
  readonly #inner: Storage;
  readonly #metrics: ServerMetrics;

  /**
   * Names the backend in the metrics and gives it its events.
   *
   * @param inner The storage to meter.
   * @param metrics Where to count.
   */
  constructor(inner: Storage, metrics: ServerMetrics) {
    this.#inner = inner;
    this.#metrics = metrics;
    metrics.storageBackend(inner.backend ?? "local");
    inner.observe?.({
      conflict: () => metrics.storageConflict(),
      multipartOpened: () => metrics.multipartUploads(1),
      multipartClosed: () => metrics.multipartUploads(-1),
    });
  }

  /** The wrapped storage's backend. */
  get backend(): string {
    return this.#inner.backend ?? "local";
  }

  /** As the wrapped storage's. */
  get blockSize(): number {
    return this.#inner.blockSize;
  }

  /** As the wrapped storage's. */
  get maxNameBytes(): number | undefined {
    return this.#inner.maxNameBytes;
  }

  /** The wrapped storage's ledger (its writes are the backend's own, not timed). */
  get ledger(): UsageLedger | undefined {
    return this.#inner.ledger;
  }

  prepareUser(user: string): Promise<void> {
    return timed(this.#metrics, "prepare_user", () => this.#inner.prepareUser(user));
  }

  async beginUpload(user: string, name: string, options?: BeginOptions): Promise<Upload> {
    const upload = await timed(this.#metrics, "begin_upload", () => this.#inner.beginUpload(user, name, options));
    return new MeteredUpload(upload, this.#metrics);
  }

  async resumeUpload(user: string, name: string, key: string): Promise<{ upload: Upload; state: Uint8Array } | null> {
    const resumed = await timed(this.#metrics, "resume_upload", () => this.#inner.resumeUpload(user, name, key));
    return resumed === null ? null : { upload: new MeteredUpload(resumed.upload, this.#metrics), state: resumed.state };
  }

  keptUploads(user: string): Promise<KeptUpload[]> {
    return timed(this.#metrics, "kept_uploads", () => this.#inner.keptUploads(user));
  }

  dropKept(user: string, name: string, key: string): Promise<void> {
    return timed(this.#metrics, "drop_kept", () => this.#inner.dropKept(user, name, key));
  }

  sweepKept(before: number): Promise<number> {
    return timed(this.#metrics, "sweep_kept", () => this.#inner.sweepKept(before));
  }

  readChunkList(user: string, name: string): Promise<StoredChunkList | null> {
    return timed(this.#metrics, "read_chunk_list", () => this.#inner.readChunkList(user, name));
  }

  writeChunkList(user: string, list: StoredChunkList): Promise<void> {
    return timed(this.#metrics, "write_chunk_list", () => this.#inner.writeChunkList(user, list));
  }

  chunkLists(user: string): AsyncIterable<StoredChunkList> {
    return timedIteration(this.#metrics, "chunk_lists", () => this.#inner.chunkLists(user));
  }

  changes(user: string): Promise<ChangeCounter> {
    return timed(this.#metrics, "changes", () => this.#inner.changes(user));
  }

  changedNames(user: string, since: ChangeCounter, prefix: string): Promise<string[] | null> {
    return timed(this.#metrics, "changed_names", () => this.#inner.changedNames(user, since, prefix));
  }

  /** Not timed (its time is the client's wait): counted while it waits, in `dfos_watches_held`. */
  async waitForChange(user: string, since: ChangeCounter, signal: AbortSignal): Promise<void> {
    this.#metrics.watchesHeld(1);
    try {
      await this.#inner.waitForChange(user, since, signal);
    } finally {
      this.#metrics.watchesHeld(-1);
    }
  }

  async openRead(user: string, name: string): Promise<ReadHandle> {
    const handle = await timed(this.#metrics, "open_read", () => this.#inner.openRead(user, name));
    return new MeteredReadHandle(handle, this.#metrics);
  }

  remove(user: string, name: string, options?: RemoveOptions): Promise<Removed> {
    return timed(this.#metrics, "remove", () => this.#inner.remove(user, name, options));
  }

  rename(user: string, from: string, to: string, options?: RenameOptions): Promise<Moved> {
    return timed(this.#metrics, "rename", () => this.#inner.rename(user, from, to, options));
  }

  list(user: string, options: ListOptions): Promise<ListPage> {
    return timed(this.#metrics, "list", () => this.#inner.list(user, options));
  }

  stat(user: string, name: string): Promise<FileInfo | null> {
    return timed(this.#metrics, "stat", () => this.#inner.stat(user, name));
  }

  usage(user: string): Promise<Usage> {
    return timed(this.#metrics, "usage", () => this.#inner.usage(user));
  }

  abortUploads(): Promise<void> {
    return timed(this.#metrics, "abort_uploads", () => this.#inner.abortUploads());
  }
}

/** An upload whose calls are timed. */
class MeteredUpload implements Upload {
  readonly #inner: Upload;
  readonly #metrics: ServerMetrics;

  constructor(inner: Upload, metrics: ServerMetrics) {
    this.#inner = inner;
    this.#metrics = metrics;
  }

  get written(): number {
    return this.#inner.written;
  }

  write(chunk: Bytes): Promise<void> {
    return timed(this.#metrics, "upload_write", () => this.#inner.write(chunk));
  }

  commit(options?: CommitOptions): Promise<FileInfo> {
    return timed(this.#metrics, "upload_commit", () => this.#inner.commit(options));
  }

  abort(): Promise<void> {
    return timed(this.#metrics, "upload_abort", () => this.#inner.abort());
  }

  keep(state: Uint8Array): Promise<void> {
    return timed(this.#metrics, "upload_keep", () => this.#inner.keep(state));
  }
}

/** A read handle whose reads are timed. */
class MeteredReadHandle implements ReadHandle {
  readonly #inner: ReadHandle;
  readonly #metrics: ServerMetrics;

  constructor(inner: ReadHandle, metrics: ServerMetrics) {
    this.#inner = inner;
    this.#metrics = metrics;
  }

  get info() {
    return this.#inner.info;
  }

  read(limit?: number): AsyncIterable<Bytes> {
    return timedIteration(this.#metrics, "read", () => this.#inner.read(limit));
  }

  readRange(offset: number, length: number): AsyncIterable<Bytes> {
    return timedIteration(this.#metrics, "read_range", () => this.#inner.readRange(offset, length));
  }

  close(): void {
    this.#inner.close();
  }
}

/** True for an error of the storage's own: anything but a refusal (`DfosError`). */
function isFailure(error: unknown): boolean {
  return !(error instanceof DfosError);
}

/** Runs one storage call and counts it, with its time and whether it failed. */
async function timed<T>(metrics: ServerMetrics, operation: StorageOperation, call: () => Promise<T>): Promise<T> {
  const started = performance.now();
  try {
    const result = await call();
    metrics.storageCall(operation, (performance.now() - started) / 1000, false);
    return result;
  } catch (error) {
    metrics.storageCall(operation, (performance.now() - started) / 1000, isFailure(error));
    throw error;
  }
}

/**
 * An iteration of the storage's, counted once when it ends (its last item,
 * an error, or the consumer stopping), with the time spent waiting for its
 * items. Its items, and stopping it, pass through untouched.
 */
function timedIteration<T>(
  metrics: ServerMetrics,
  operation: StorageOperation,
  open: () => AsyncIterable<T>,
): AsyncIterable<T> {
  return {
    [Symbol.asyncIterator](): AsyncIterator<T> {
      let spent = 0;
      let counted = false;
      const count = (failed: boolean) => {
        if (counted) return;
        counted = true;
        metrics.storageCall(operation, spent / 1000, failed);
      };
      let started = performance.now();
      let inner: AsyncIterator<T>;
      try {
        inner = open()[Symbol.asyncIterator]();
      } catch (error) {
        spent += performance.now() - started;
        count(isFailure(error));
        throw error;
      }
      spent += performance.now() - started;
      return {
        async next(): Promise<IteratorResult<T>> {
          started = performance.now();
          try {
            const result = await inner.next();
            spent += performance.now() - started;
            if (result.done) count(false);
            return result;
          } catch (error) {
            spent += performance.now() - started;
            count(isFailure(error));
            throw error;
          }
        },
        async return(value?: unknown): Promise<IteratorResult<T>> {
          count(false);
          return await inner.return?.(value) ?? { done: true, value: undefined };
        },
      };
    },
  };
}
