/**
 * `ServerStats`: the server's running totals; `processFigures()`, the
 * process's and the system's CPU and memory use; and `TotalsReport`, which
 * turns both into the totals line of the performance log. Nothing here is
 * called per chunk: the session counts once per operation. Every failure is
 * counted under its label and the class of what happened
 * ({@linkcode failureClass}); a transfer cut short is counted as aborted,
 * with the bytes it moved (which the bytes in and out include).
 *
 * @module
 */

import process from "node:process";
import { transferMemory, type TransferMemorySnapshot } from "../shared/transfer_memory.ts";
import { OPERATION_KINDS, type OperationKind } from "./handlers.ts";

export type { OperationKind };

/** A copy of the totals at one moment. */
export interface StatsSnapshot {
  /** Connections accepted since start. */
  connections: number;
  /** Connections open now. */
  activeConnections: number;
  /** The most connections open at once. */
  peakConnections: number;
  /** Successful operations by kind. */
  operations: Record<OperationKind, number>;
  /** Body bytes received (uploads). */
  bytesIn: number;
  /** Body bytes sent (downloads and previews). */
  bytesOut: number;
  /** Transfers cut short (the client hung up, sent ABORT, stalled; a shutdown) by kind (`put`, `get`, `peek`). */
  aborted: Record<string, number>;
  /** Body bytes the aborted transfers received before they ended (counted in `bytesIn` too). */
  abortedBytesIn: number;
  /** Body bytes the aborted transfers sent before they ended (counted in `bytesOut` too). */
  abortedBytesOut: number;
  /** Failures by label: a status name (`NOT_FOUND`, `AUTH_FAILED`, ...) or another (`CLIENT_GONE`, `STALL_TIMEOUT`, ...). */
  failures: Record<string, number>;
  /** Failures by what happened ({@linkcode failureClass}). */
  failureClasses: Partial<Record<FailureClass, number>>;
}

/**
 * What happened, for a failure: the client went away (hung up or reset the
 * connection), it gave up a transfer with ABORT, a timeout ran out, the
 * client broke the protocol, the storage failed, a request was refused (a
 * missing file, a wrong password, a cap), the server shut down, or a bug.
 */
export type FailureClass =
  | "client gone"
  | "client abort"
  | "timed out"
  | "protocol error"
  | "storage error"
  | "refused"
  | "shutdown"
  | "internal error";

/** Every class, in the order the totals line names them. */
export const FAILURE_CLASSES: readonly FailureClass[] = [
  "client gone",
  "client abort",
  "timed out",
  "protocol error",
  "storage error",
  "refused",
  "shutdown",
  "internal error",
];

/** The labels that are not refusals; any other label (a status name such as `NOT_FOUND`, `BUSY`) is "refused". */
const CLASS_OF_LABEL: Readonly<Record<string, FailureClass>> = {
  CLIENT_GONE: "client gone",
  ABORTED: "client abort",
  HANDSHAKE_TIMEOUT: "timed out",
  IDLE_TIMEOUT: "timed out",
  STALL_TIMEOUT: "timed out",
  BAD_REQUEST: "protocol error",
  BAD_FRAME: "protocol error",
  UNSUPPORTED: "protocol error",
  VERSION: "protocol error",
  INTEGRITY: "protocol error",
  TLS_HANDSHAKE: "protocol error",
  TLS_CLIENT: "protocol error",
  PLAINTEXT_CLIENT: "protocol error",
  STORAGE: "storage error",
  SHUTDOWN: "shutdown",
  INTERNAL: "internal error",
};

/**
 * The class of a failure's label.
 *
 * @param label A status name or another label (`CLIENT_GONE`, `STALL_TIMEOUT`, `STORAGE`, ...).
 * @returns What happened.
 */
export function failureClass(label: string): FailureClass {
  return CLASS_OF_LABEL[label] ?? "refused";
}

/** Counts connections, operations, bytes and failures. */
export class ServerStats {
  #connections = 0;
  #active = 0;
  #peak = 0;
  #operations = Object.fromEntries(OPERATION_KINDS.map((kind) => [kind, 0])) as Record<OperationKind, number>;
  #bytesIn = 0;
  #bytesOut = 0;
  #aborted: Record<string, number> = {};
  #abortedBytesIn = 0;
  #abortedBytesOut = 0;
  #failures: Record<string, number> = {};
  #failureClasses: Partial<Record<FailureClass, number>> = {};

  /** Counts a connection accepted. */
  connectionOpened(): void {
    this.#connections++;
    this.#active++;
    this.#peak = Math.max(this.#peak, this.#active);
  }

  /** Counts a connection closed. */
  connectionClosed(): void {
    this.#active--;
  }

  /**
   * Counts a successful operation.
   *
   * @param kind What it was: one of a handler row's `kinds` (server/handlers.ts).
   * @param bytesIn Body bytes received.
   * @param bytesOut Body bytes sent.
   */
  operation(kind: string, bytesIn: number, bytesOut: number): void {
    const operations: Record<string, number> = this.#operations;
    operations[kind] = (operations[kind] ?? 0) + 1;
    this.#bytesIn += bytesIn;
    this.#bytesOut += bytesOut;
  }

  /**
   * Counts a transfer cut short, and the bytes it moved.
   *
   * @param kind What it was: `put`, `get`, `peek`.
   * @param bytesIn Body bytes received before it ended.
   * @param bytesOut Body bytes sent before it ended.
   */
  abortedTransfer(kind: string, bytesIn: number, bytesOut: number): void {
    this.#aborted[kind] = (this.#aborted[kind] ?? 0) + 1;
    this.#abortedBytesIn += bytesIn;
    this.#abortedBytesOut += bytesOut;
    this.#bytesIn += bytesIn;
    this.#bytesOut += bytesOut;
  }

  /**
   * Counts a failure, under its label and its class ({@linkcode failureClass}).
   *
   * @param label A status name or another short label.
   */
  failure(label: string): void {
    this.#failures[label] = (this.#failures[label] ?? 0) + 1;
    const kind = failureClass(label);
    this.#failureClasses[kind] = (this.#failureClasses[kind] ?? 0) + 1;
  }

  /** Returns a copy of the totals. */
  snapshot(): StatsSnapshot {
    return {
      connections: this.#connections,
      activeConnections: this.#active,
      peakConnections: this.#peak,
      operations: { ...this.#operations },
      bytesIn: this.#bytesIn,
      bytesOut: this.#bytesOut,
      aborted: { ...this.#aborted },
      abortedBytesIn: this.#abortedBytesIn,
      abortedBytesOut: this.#abortedBytesOut,
      failures: { ...this.#failures },
      failureClasses: { ...this.#failureClasses },
    };
  }
}

/** CPU and memory figures of this process and the system. */
export interface ProcessFigures {
  /** User CPU seconds used by the process. */
  cpuUserSeconds: number;
  /** System CPU seconds used by the process. */
  cpuSystemSeconds: number;
  /** Resident set size, bytes. */
  rss: number;
  /** Bytes this thread's V8 heap uses (a worker's own, not the process's). */
  heapUsed: number;
  /** Bytes outside that heap held by its objects (ArrayBuffers: body blocks), this thread's. */
  external: number;
  /** The system's memory in use (total minus available), bytes, or null without `--allow-sys`. */
  systemMemoryUsed: number | null;
  /** The system's total memory, bytes, or null without `--allow-sys`. */
  systemMemoryTotal: number | null;
}

/** Reads the process's CPU time and memory, and the system's memory. */
export function processFigures(): ProcessFigures {
  const cpu = process.cpuUsage();
  let systemMemoryUsed: number | null = null;
  let systemMemoryTotal: number | null = null;
  try {
    const memory = Deno.systemMemoryInfo();
    systemMemoryTotal = memory.total;
    systemMemoryUsed = memory.total - memory.available;
  } catch {
    // no --allow-sys: leave the system's figures out
  }
  const memory = Deno.memoryUsage();
  return {
    cpuUserSeconds: cpu.user / 1e6,
    cpuSystemSeconds: cpu.system / 1e6,
    rss: memory.rss,
    heapUsed: memory.heapUsed,
    external: memory.external,
    systemMemoryUsed,
    systemMemoryTotal,
  };
}

/** Options for {@linkcode TotalsReport}. */
export interface TotalsReportOptions {
  /**
   * Reads the process's and the system's figures.
   *
   * @default {processFigures}
   */
  figures?: () => ProcessFigures;
  /**
   * The clock, in milliseconds.
   *
   * @default {performance.now}
   */
  now?: () => number;
  /**
   * Says what the log lost (`LogCounters.describe()`, server/log_counters.ts):
   * its text, when not empty, ends the line.
   *
   * @default {() => ""}
   */
  logLosses?: () => string;
  /**
   * Reads the state of the memory bodies share: transfers, piece size,
   * bytes queued for the disk, free pool blocks.
   *
   * @default {() => transferMemory.snapshot()}
   */
  transferMemory?: () => TransferMemorySnapshot;
}

/**
 * The totals line of the performance log, written every interval and at
 * shutdown: connections (total, active, peak), operations by kind, transfers
 * aborted by kind with their bytes, bytes in and out (all that moved, aborted
 * transfers' too), failures by class and label, the process's CPU time and the share of one core
 * it used since the line before, its RSS, the system's memory in use, the
 * transfer memory (shared/transfer_memory.ts: bodies moving, piece size,
 * bytes queued for the disk, free pool blocks) and this thread's V8 heap and
 * external memory.
 *
 * @example Usage
 * ```ts
 * import assert from "node:assert/strict";
 * import { ServerStats, TotalsReport } from "./stats.ts";
 * const report = new TotalsReport(new ServerStats());
 * assert.ok(report.line().startsWith("0 connections (0 active, peak 0)"));
 * ```
 */
export class TotalsReport {
  readonly #stats: ServerStats;
  readonly #figures: () => ProcessFigures;
  readonly #now: () => number;
  readonly #logLosses: () => string;
  readonly #transferMemory: () => TransferMemorySnapshot;
  #lastAt: number;
  #lastCpuSeconds: number;

  /**
   * Starts the first interval now.
   *
   * @param stats The server's totals.
   * @param options Where the figures and the time come from.
   */
  constructor(stats: ServerStats, options: TotalsReportOptions = {}) {
    this.#stats = stats;
    this.#figures = options.figures ?? processFigures;
    this.#now = options.now ?? (() => performance.now());
    this.#logLosses = options.logLosses ?? (() => "");
    this.#transferMemory = options.transferMemory ?? (() => transferMemory.snapshot());
    const figures = this.#figures();
    this.#lastAt = this.#now();
    this.#lastCpuSeconds = figures.cpuUserSeconds + figures.cpuSystemSeconds;
  }

  /**
   * Returns the totals line for this moment and starts the next interval.
   *
   * @returns One line, without a trailing newline.
   */
  line(): string {
    const totals = this.#stats.snapshot();
    const figures = this.#figures();
    const now = this.#now();
    const cpuSeconds = figures.cpuUserSeconds + figures.cpuSystemSeconds;
    const wallSeconds = (now - this.#lastAt) / 1000;
    const share = wallSeconds > 0 ? (cpuSeconds - this.#lastCpuSeconds) / wallSeconds * 100 : 0;
    this.#lastAt = now;
    this.#lastCpuSeconds = cpuSeconds;
    const operations = Object.entries(totals.operations).map(([kind, count]) => `${kind} ${count}`).join(", ");
    const failures = describeFailures(totals);
    const aborted = Object.entries(totals.aborted).map(([kind, count]) => `${kind} ${count}`).join(", ");
    const abortedBytes = `${totals.abortedBytesIn} bytes in, ${totals.abortedBytesOut} bytes out`;
    const memory = figures.systemMemoryUsed === null || figures.systemMemoryTotal === null
      ? "unknown (no --allow-sys)"
      : `${mebibytes(figures.systemMemoryUsed, 0)} of ${mebibytes(figures.systemMemoryTotal, 0)} MiB used`;
    const bodies = this.#transferMemory();
    const losses = this.#logLosses();
    return `${totals.connections} connections (${totals.activeConnections} active, peak ${totals.peakConnections}); ` +
      `operations ${operations}; aborted ${aborted === "" ? "none" : `${aborted} (${abortedBytes})`}; ` +
      `${totals.bytesIn} bytes in, ${totals.bytesOut} bytes out; failures ${failures || "none"}; CPU ${
        figures.cpuUserSeconds.toFixed(2)
      } s user, ` +
      `${figures.cpuSystemSeconds.toFixed(2)} s system, ${share.toFixed(1)}% of one core over the last ` +
      `${wallSeconds.toFixed(1)} s; RSS ${mebibytes(figures.rss, 1)} MiB; system memory ${memory}; ` +
      `transfer memory: ${bodies.transfers} bodies moving, pieces of ${bodies.pieceBytes / 1024} KiB, ` +
      `${mebibytes(bodies.queuedBytes, 1)} MiB queued for the disk, ${mebibytes(bodies.freeBytes, 1)} MiB free in ` +
      `the pool; V8 heap ${mebibytes(figures.heapUsed, 1)} MiB, external ${mebibytes(figures.external, 1)} MiB` +
      (losses === "" ? "" : `; ${losses}`);
  }
}

/** The failures of the totals line: each class with its count, then its labels: `client gone 2 (CLIENT_GONE 2)`. */
function describeFailures(totals: StatsSnapshot): string {
  const labels = Object.entries(totals.failures).sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0);
  return FAILURE_CLASSES.filter((kind) => (totals.failureClasses[kind] ?? 0) > 0).map((kind) => {
    const own = labels.filter(([label]) => failureClass(label) === kind).map(([label, count]) => `${label} ${count}`);
    return `${kind} ${totals.failureClasses[kind]} (${own.join(", ")})`;
  }).join(", ");
}

function mebibytes(bytes: number, digits: number): string {
  return (bytes / 2 ** 20).toFixed(digits);
}
