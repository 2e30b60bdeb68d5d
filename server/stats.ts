/**
 * `ServerStats`: the server's running totals, and `processFigures()`, the
 * process's and the system's CPU and memory use, for the performance log.
 *
 * @module
 */

import process from "node:process";

/** Operations that move a body or change a file. */
export type OperationKind = "put" | "get" | "peek" | "rm" | "ls";

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
  /** Failures by status name (`NOT_FOUND`, `AUTH_FAILED`, ...). */
  failures: Record<string, number>;
}

/** Counts connections, operations, bytes and failures. */
export class ServerStats {
  #connections = 0;
  #active = 0;
  #peak = 0;
  #operations: Record<OperationKind, number> = { put: 0, get: 0, peek: 0, rm: 0, ls: 0 };
  #bytesIn = 0;
  #bytesOut = 0;
  #failures: Record<string, number> = {};

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
   * @param kind What it was.
   * @param bytesIn Body bytes received.
   * @param bytesOut Body bytes sent.
   */
  operation(kind: OperationKind, bytesIn: number, bytesOut: number): void {
    this.#operations[kind]++;
    this.#bytesIn += bytesIn;
    this.#bytesOut += bytesOut;
  }

  /**
   * Counts a failure.
   *
   * @param kind A status name or another short label.
   */
  failure(kind: string): void {
    this.#failures[kind] = (this.#failures[kind] ?? 0) + 1;
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
      failures: { ...this.#failures },
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
  return {
    cpuUserSeconds: cpu.user / 1e6,
    cpuSystemSeconds: cpu.system / 1e6,
    rss: Deno.memoryUsage().rss,
    systemMemoryUsed,
    systemMemoryTotal,
  };
}
