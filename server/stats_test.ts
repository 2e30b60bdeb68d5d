import { deepStrictEqual, ok, strictEqual } from "node:assert/strict";
import { failureClass, type ProcessFigures, processFigures, ServerStats, TotalsReport } from "./stats.ts";

const MiB = 2 ** 20;

/** Figures that a test sets by hand. */
function fakeFigures(initial: Partial<ProcessFigures> = {}): ProcessFigures {
  return {
    cpuUserSeconds: 0,
    cpuSystemSeconds: 0,
    rss: 0,
    heapUsed: 0,
    external: 0,
    systemMemoryUsed: null,
    systemMemoryTotal: null,
    ...initial,
  };
}

Deno.test("ServerStats counts connections with their peak, operations, bytes and failures", () => {
  const stats = new ServerStats();
  stats.connectionOpened();
  stats.connectionOpened();
  stats.connectionOpened();
  stats.connectionClosed();
  stats.connectionClosed();
  stats.connectionOpened();
  stats.operation("put", 100, 0);
  stats.operation("get", 0, 40);
  stats.operation("get", 0, 2);
  stats.failure("NOT_FOUND");
  stats.failure("BUSY");
  stats.failure("BUSY");
  const totals = stats.snapshot();
  strictEqual(totals.connections, 4);
  strictEqual(totals.activeConnections, 2);
  strictEqual(totals.peakConnections, 3);
  strictEqual(totals.operations.put, 1);
  strictEqual(totals.operations.get, 2);
  strictEqual(totals.bytesIn, 100);
  strictEqual(totals.bytesOut, 42);
  strictEqual(totals.failures.BUSY, 2);
  strictEqual(totals.failures.NOT_FOUND, 1);
});

Deno.test("TotalsReport writes every total on one line, with CPU use since the line before", () => {
  const stats = new ServerStats();
  const figures = fakeFigures({
    cpuUserSeconds: 1,
    cpuSystemSeconds: 0.5,
    rss: 50 * MiB,
    heapUsed: 12 * MiB,
    external: 40 * MiB,
    systemMemoryUsed: 1000 * MiB,
    systemMemoryTotal: 4000 * MiB,
  });
  let now = 10_000;
  const bodies = { transfers: 3, pieceBytes: 256 * 1024, queuedBytes: 2 * MiB, freeBytes: 16 * MiB };
  const report = new TotalsReport(stats, {
    figures: () => ({ ...figures }),
    now: () => now,
    transferMemory: () => bodies,
  });
  stats.connectionOpened();
  stats.connectionOpened();
  stats.connectionClosed();
  stats.operation("put", 1234, 0);
  stats.operation("ls", 0, 0);
  stats.failure("NOT_FOUND");
  stats.failure("AUTH_FAILED");
  // 60 s later the process has used 12 s of CPU more: 20% of one core.
  now += 60_000;
  figures.cpuUserSeconds += 9;
  figures.cpuSystemSeconds += 3;
  strictEqual(
    report.line(),
    "2 connections (1 active, peak 2); operations put 1, get 0, peek 0, rm 0, ls 1, mv 0, stat 0, changes 0, have 0, " +
      "push 0, groups 0, read 0, watch 0; aborted none; " +
      "1234 bytes in, 0 bytes out; failures refused 2 (AUTH_FAILED 1, NOT_FOUND 1); CPU 10.00 s user, 3.50 s system, 20.0% of one core over the last " +
      "60.0 s; RSS 50.0 MiB; system memory 1000 of 4000 MiB used; transfer memory: 3 bodies moving, pieces of " +
      "256 KiB, 2.0 MiB queued for the disk, 16.0 MiB free in the pool; V8 heap 12.0 MiB, external 40.0 MiB",
  );
  // The next line measures from this one.
  now += 10_000;
  figures.cpuUserSeconds += 5;
  const next = report.line();
  ok(next.includes("CPU 15.00 s user, 3.50 s system, 50.0% of one core over the last 10.0 s"), next);
});

Deno.test("ServerStats counts aborted transfers with their bytes, and failures by what happened", () => {
  const stats = new ServerStats();
  stats.operation("put", 100, 0);
  stats.abortedTransfer("put", 40, 0);
  stats.abortedTransfer("get", 0, 7);
  stats.failure("CLIENT_GONE");
  stats.failure("CLIENT_GONE");
  stats.failure("STALL_TIMEOUT");
  stats.failure("TLS_CLIENT");
  stats.failure("STORAGE");
  stats.failure("NOT_FOUND");
  const totals = stats.snapshot();
  deepStrictEqual(totals.aborted, { put: 1, get: 1 });
  strictEqual(totals.abortedBytesIn, 40);
  strictEqual(totals.abortedBytesOut, 7);
  strictEqual(totals.bytesIn, 140, "the bytes in count what the aborted upload moved");
  strictEqual(totals.bytesOut, 7);
  strictEqual(totals.operations.put, 1, "an aborted transfer is no operation");
  deepStrictEqual(totals.failureClasses, {
    "client gone": 2,
    "timed out": 1,
    "protocol error": 1,
    "storage error": 1,
    refused: 1,
  });
  strictEqual(failureClass("BAD_REQUEST"), "protocol error");
  strictEqual(failureClass("BUSY"), "refused");
  const line = new TotalsReport(stats, { figures: () => fakeFigures(), now: () => 0 }).line();
  ok(
    line.includes(
      "aborted put 1, get 1 (40 bytes in, 7 bytes out); 140 bytes in, 7 bytes out; failures client gone 2 " +
        "(CLIENT_GONE 2), timed out 1 (STALL_TIMEOUT 1), protocol error 1 (TLS_CLIENT 1), storage error 1 " +
        "(STORAGE 1), refused 1 (NOT_FOUND 1); CPU",
    ),
    line,
  );
});

Deno.test("TotalsReport says so when the failures are none and the system's memory is unknown", () => {
  const report = new TotalsReport(new ServerStats(), { figures: () => fakeFigures(), now: () => 0 });
  const line = report.line();
  ok(line.includes("failures none;"), line);
  ok(line.includes("0.0% of one core over the last 0.0 s"), line);
  ok(line.includes("system memory unknown (no --allow-sys); transfer memory: "), line);
});

Deno.test("processFigures() reads this process's CPU time and RSS and the system's memory", () => {
  const figures = processFigures();
  ok(figures.cpuUserSeconds > 0);
  ok(figures.cpuSystemSeconds >= 0);
  ok(figures.rss > MiB);
  ok(figures.heapUsed > 0 && figures.heapUsed < figures.rss);
  ok(figures.external >= 0);
  ok(figures.systemMemoryTotal !== null && figures.systemMemoryUsed !== null, "the tests run with --allow-all");
  ok(figures.systemMemoryUsed <= figures.systemMemoryTotal);
});
