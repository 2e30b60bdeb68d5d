/**
 * `LogWriter`: a log sink that never blocks the thread that logs and never
 * queues without limit. Lines are written asynchronously (`console.log` on a
 * pipe that is read slowly, as over SSH, would stop the whole thread) from a
 * byte queue of bounded size; a record that does not fit is dropped and
 * counted, and once the queue has room again a line says how many were:
 * "12 log records dropped (console slow)". A record from a connection (one
 * with an `address` property) may fill only part of the queue, so that the
 * server's own lines (the shutdown and its totals) still find room.
 *
 * @example Usage
 * ```ts
 * import assert from "node:assert/strict";
 * import { LogWriter } from "./log_writer.ts";
 * const console = new LogWriter(Deno.stdout, { cause: "console slow" });
 * // configure({ sinks: { console: console.sink }, ... })
 * await console.close();
 * assert.equal(console.queuedBytes, 0);
 * ```
 *
 * @module
 */

import { concatBytes } from "../shared/concat_bytes.ts";
import type { LogRecord, Sink } from "@logtape/logtape";
import type { DropCause, LogCounters } from "./log_counters.ts";
import { formatLogRecord } from "./log_format.ts";

/** Where a {@linkcode LogWriter} writes: `Deno.stdout`, a `Deno.FsFile`. */
export interface ByteWriter {
  /** Writes some of `bytes`; resolves to how many. */
  write(bytes: Uint8Array): Promise<number>;
}

/** Options for {@linkcode LogWriter}. */
export interface LogWriterOptions {
  /** Why a record is dropped here, for the counters and the note. */
  cause: DropCause;
  /**
   * The most bytes waiting to be written.
   *
   * @default {DEFAULT_MAX_QUEUED_BYTES}
   */
  maxQueuedBytes?: number;
  /** Counters to count drops in (shared with the totals line), if any. */
  counters?: LogCounters;
  /**
   * Turns a record into its line.
   *
   * @default {formatLogRecord}
   */
  format?: (record: LogRecord) => string;
  /**
   * Milliseconds `close()` waits for the queue to be written before it gives up on the rest.
   *
   * @default {DEFAULT_CLOSE_TIMEOUT_MS}
   */
  closeTimeoutMs?: number;
}

/** The default bound on bytes waiting: 1 MiB. */
export const DEFAULT_MAX_QUEUED_BYTES = 1024 * 1024;

/** The default wait of `close()`: 2 s. */
export const DEFAULT_CLOSE_TIMEOUT_MS = 2000;

/** The share of the queue a record from a connection may fill; the rest is kept for the server's own lines. */
const CONNECTION_SHARE = 0.75;

const encoder = new TextEncoder();

/** A sink writing one line per record, asynchronously, through a bounded byte queue. */
export class LogWriter implements AsyncDisposable {
  /** The sink to configure LogTape with; disposing it closes the writer. */
  readonly sink: Sink & AsyncDisposable;
  readonly #writer: ByteWriter;
  readonly #cause: DropCause;
  readonly #maxBytes: number;
  readonly #counters: LogCounters | undefined;
  readonly #format: (record: LogRecord) => string;
  readonly #closeTimeoutMs: number;
  #queue: Uint8Array[] = [];
  /** Bytes queued or being written. */
  #queuedBytes = 0;
  /** Records queued or being written. */
  #queuedRecords = 0;
  /** Records dropped since the last note said so. */
  #unreported = 0;
  /** The loop that writes the queue, while it runs. */
  #pumping: Promise<void> | null = null;
  #closed = false;
  #broken = false;

  /**
   * @param writer Where the lines go.
   * @param options Why records are dropped, the bound, the counters.
   */
  constructor(writer: ByteWriter, options: LogWriterOptions) {
    this.#writer = writer;
    this.#cause = options.cause;
    this.#maxBytes = options.maxQueuedBytes ?? DEFAULT_MAX_QUEUED_BYTES;
    this.#counters = options.counters;
    this.#format = options.format ?? formatLogRecord;
    this.#closeTimeoutMs = options.closeTimeoutMs ?? DEFAULT_CLOSE_TIMEOUT_MS;
    const sink = (record: LogRecord) => this.write(record);
    this.sink = Object.assign(sink, { [Symbol.asyncDispose]: () => this.close() });
  }

  /** Bytes queued or being written. */
  get queuedBytes(): number {
    return this.#queuedBytes;
  }

  /** Records dropped by this writer since the last note said so. */
  get unreported(): number {
    return this.#unreported;
  }

  /**
   * Queues a record's line, or drops it (and counts it) when the queue is
   * full, the writer closed, or its output broken. Never blocks.
   *
   * @param record The record.
   * @returns True when the line was queued.
   */
  write(record: LogRecord): boolean {
    const fromConnection = record.properties.address !== undefined;
    const limit = fromConnection ? this.#maxBytes * CONNECTION_SHARE : this.#maxBytes;
    if (this.#closed || this.#broken) return this.#drop();
    const bytes = encoder.encode(this.#format(record));
    if (this.#queuedBytes + bytes.length > limit) return this.#drop();
    this.#enqueue(bytes);
    return true;
  }

  /**
   * Stops taking records and waits until what is queued has been written,
   * or `closeTimeoutMs` has passed; what is left then is given up (the
   * process is about to end). A last note says how many records were dropped.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#note();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const deadline = new Promise<void>((resolve) => timer = setTimeout(resolve, this.#closeTimeoutMs));
    await Promise.race([this.#pumping ?? Promise.resolve(), deadline]);
    clearTimeout(timer);
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #drop(): false {
    this.#unreported++;
    this.#counters?.drop(this.#cause);
    return false;
  }

  #enqueue(bytes: Uint8Array): void {
    this.#queue.push(bytes);
    this.#queuedBytes += bytes.length;
    this.#queuedRecords++;
    this.#pumping ??= this.#pump();
  }

  /** Says how many records were dropped, if any, when the queue has room for it. */
  #note(): void {
    if (this.#unreported === 0 || this.#broken) return;
    const line = encoder.encode(this.#format({
      category: ["dfos", "log"],
      level: "warning",
      message: [`${this.#unreported} log records dropped (${this.#cause})`],
      rawMessage: `${this.#unreported} log records dropped (${this.#cause})`,
      timestamp: Date.now(),
      properties: {},
    }));
    if (this.#queuedBytes + line.length > this.#maxBytes) return;
    this.#unreported = 0;
    this.#enqueue(line);
  }

  async #pump(): Promise<void> {
    try {
      while (this.#queue.length > 0) {
        const chunks = this.#queue;
        this.#queue = [];
        const bytes = chunks.length === 1 ? chunks[0] : concatBytes(chunks);
        try {
          for (let written = 0; written < bytes.length;) {
            written += await this.#writer.write(bytes.subarray(written));
          }
        } catch {
          // The reader went away (a closed pipe, a full disk): nothing more can be written here.
          this.#broken = true;
          for (let lost = this.#queuedRecords; lost > 0; lost--) this.#drop();
          this.#queue = [];
          this.#queuedBytes = 0;
          this.#queuedRecords = 0;
          return;
        }
        this.#queuedBytes -= bytes.length;
        this.#queuedRecords -= chunks.length;
        // Room again: say what was lost, before what comes next.
        if (this.#unreported > 0 && this.#queuedBytes <= this.#maxBytes / 2) this.#note();
      }
    } finally {
      // At once when the queue is empty: a record queued after this starts a new loop.
      this.#pumping = null;
    }
  }
}
