/**
 * `LogCounters`: what the log could not take, counted in shared memory so
 * that the main thread (which writes the log) and the server's worker (which
 * logs, and writes the totals line) see the same figures: the records in
 * flight from the worker to the main thread, the records dropped because a
 * queue was full, and those suppressed by the per-address limit.
 *
 * @example Usage
 * ```ts
 * import assert from "node:assert/strict";
 * import { LogCounters } from "./log_counters.ts";
 * const counters = new LogCounters();
 * counters.drop("console slow");
 * const inWorker = new LogCounters(counters.buffer); // the same figures, in another thread
 * assert.equal(inWorker.describe(), "log records dropped 1 (console slow 1)");
 * ```
 *
 * @module
 */

/** Why a record was dropped. */
export type DropCause = "queue full" | "console slow" | "file slow";

/** Every cause, in the order the totals line names them. */
export const DROP_CAUSES: readonly DropCause[] = ["queue full", "console slow", "file slow"];

const IN_FLIGHT = 0;
const SUPPRESSED = 1;
const FIRST_DROP = 2;
const SLOTS = FIRST_DROP + DROP_CAUSES.length;

/** Counters of the log, in a `SharedArrayBuffer` that several threads may view at once. */
export class LogCounters {
  /** The memory the counters live in: pass it to another thread and build a `LogCounters` on it there. */
  readonly buffer: SharedArrayBuffer;
  readonly #words: Int32Array;

  /**
   * @param buffer Counters made by another thread, to share; fresh ones (all 0) when omitted.
   */
  constructor(buffer: SharedArrayBuffer = new SharedArrayBuffer(SLOTS * Int32Array.BYTES_PER_ELEMENT)) {
    if (buffer.byteLength < SLOTS * Int32Array.BYTES_PER_ELEMENT) {
      throw new RangeError(`Cannot use a buffer of ${buffer.byteLength} bytes for log counters: it needs ${SLOTS * 4}`);
    }
    this.buffer = buffer;
    this.#words = new Int32Array(buffer, 0, SLOTS);
  }

  /**
   * Counts one more record in flight, unless `limit` are already.
   *
   * @param limit The most records in flight at once.
   * @returns True when the record may be sent (it is counted); false when it must be dropped.
   */
  reserve(limit: number): boolean {
    if (Atomics.add(this.#words, IN_FLIGHT, 1) < limit) return true;
    Atomics.sub(this.#words, IN_FLIGHT, 1);
    return false;
  }

  /** Counts one record in flight less: it has been taken (written, queued or dropped by a sink). */
  settle(): void {
    Atomics.sub(this.#words, IN_FLIGHT, 1);
  }

  /** Records sent and not yet taken. */
  get inFlight(): number {
    return Atomics.load(this.#words, IN_FLIGHT);
  }

  /**
   * Counts a record dropped.
   *
   * @param cause Why.
   */
  drop(cause: DropCause): void {
    Atomics.add(this.#words, FIRST_DROP + DROP_CAUSES.indexOf(cause), 1);
  }

  /**
   * Records dropped so far.
   *
   * @param cause Only those dropped for this reason; all when omitted.
   * @returns The count.
   */
  dropped(cause?: DropCause): number {
    if (cause !== undefined) return Atomics.load(this.#words, FIRST_DROP + DROP_CAUSES.indexOf(cause));
    return DROP_CAUSES.reduce((sum, each) => sum + this.dropped(each), 0);
  }

  /**
   * Counts records suppressed by the per-address limit.
   *
   * @param count How many.
   */
  suppress(count: number): void {
    Atomics.add(this.#words, SUPPRESSED, count);
  }

  /** Records suppressed by the per-address limit so far. */
  get suppressed(): number {
    return Atomics.load(this.#words, SUPPRESSED);
  }

  /**
   * Says what the log lost, for the totals line.
   *
   * @returns `log records dropped 7 (console slow 7); 40 suppressed by the per-address limit`, or "" when nothing was.
   */
  describe(): string {
    const parts: string[] = [];
    const dropped = this.dropped();
    if (dropped > 0) {
      const causes = DROP_CAUSES.filter((cause) => this.dropped(cause) > 0)
        .map((cause) => `${cause} ${this.dropped(cause)}`);
      parts.push(`log records dropped ${dropped} (${causes.join(", ")})`);
    }
    if (this.suppressed > 0) parts.push(`${this.suppressed} suppressed by the per-address limit`);
    return parts.join("; ");
  }
}
