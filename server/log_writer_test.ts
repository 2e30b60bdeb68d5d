import assert from "node:assert/strict";
import type { LogRecord } from "@logtape/logtape";
import { LogCounters } from "./log_counters.ts";
import { LogWriter } from "./log_writer.ts";

const decoder = new TextDecoder();

/** A writer that takes nothing until released: a console nobody reads. */
class StalledWriter {
  written = "";
  calls = 0;
  #release = Promise.withResolvers<void>();

  async write(bytes: Uint8Array): Promise<number> {
    this.calls++;
    await this.#release.promise;
    this.written += decoder.decode(bytes);
    return bytes.length;
  }

  release(): void {
    this.#release.resolve();
  }
}

function record(text: string, address?: string): LogRecord {
  return {
    category: ["dfos", "server"],
    level: "info",
    message: [text],
    rawMessage: text,
    timestamp: 0,
    properties: address === undefined ? {} : { address },
  };
}

/** Lets the writer's loop run. */
function settle(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 10));
}

Deno.test("LogWriter never queues more than its bound, drops and counts the rest, and never blocks", async () => {
  const out = new StalledWriter();
  const counters = new LogCounters();
  const writer = new LogWriter(out, { cause: "console slow", maxQueuedBytes: 64 * 1024, counters });
  let queued = 0;
  for (let i = 0; i < 100_000; i++) if (writer.write(record(`record ${i} ${"x".repeat(100)}`))) queued++;
  assert.ok(writer.queuedBytes <= 64 * 1024, `${writer.queuedBytes} bytes queued`);
  assert.ok(queued > 0 && queued < 1000, `${queued} queued`);
  assert.equal(counters.dropped("console slow"), 100_000 - queued);
  assert.equal(counters.dropped(), 100_000 - queued);
  assert.equal(out.calls, 1, "one write in flight, not one per record");
  out.release();
  await writer.close();
});

Deno.test("LogWriter says how many records it dropped once there is room again, before what comes next", async () => {
  const out = new StalledWriter();
  const writer = new LogWriter(out, { cause: "console slow", maxQueuedBytes: 4096 });
  for (let i = 0; i < 200; i++) writer.write(record(`first ${i}`));
  const dropped = writer.unreported;
  assert.ok(dropped > 0);
  out.release();
  await settle();
  writer.write(record("after"));
  await writer.close();
  const lines = out.written.trimEnd().split("\n");
  const note = lines.findIndex((line) =>
    line.endsWith(`[WRN] dfos·log: ${dropped} log records dropped (console slow)`)
  );
  assert.ok(note > 0, out.written);
  assert.ok(note < lines.findIndex((line) => line.endsWith("after")));
  assert.equal(lines.length, 200 - dropped + 2);
});

Deno.test("LogWriter keeps a quarter of its queue for the server's own records", async () => {
  const out = new StalledWriter();
  const writer = new LogWriter(out, { cause: "console slow", maxQueuedBytes: 8192 });
  while (writer.write(record("from a client", "192.0.2.7")));
  assert.ok(writer.queuedBytes <= 8192 * 0.75);
  assert.equal(writer.write(record("Shut down. Totals: ...")), true, "the server's own line still fits");
  out.release();
  await writer.close();
  assert.ok(out.written.includes("Shut down. Totals"));
});

Deno.test("LogWriter.close() gives up on a writer that takes nothing, at its deadline", async () => {
  const out = new StalledWriter();
  const writer = new LogWriter(out, { cause: "console slow", closeTimeoutMs: 200 });
  writer.write(record("never read"));
  const started = performance.now();
  await writer.close();
  const took = performance.now() - started;
  assert.ok(took >= 150 && took < 5000, `close took ${took.toFixed(0)} ms`);
  assert.equal(writer.write(record("after close")), false);
  out.release(); // let the stalled write end, so that the test leaves no promise behind
  await settle();
});

Deno.test("LogWriter drops and counts everything once its output is broken, without throwing", async () => {
  const counters = new LogCounters();
  const broken = { write: () => Promise.reject(new Deno.errors.BrokenPipe("gone")) };
  const writer = new LogWriter(broken, { cause: "file slow", counters });
  writer.write(record("one"));
  writer.write(record("two"));
  await settle();
  assert.equal(writer.write(record("three")), false);
  await writer.close();
  assert.equal(counters.dropped("file slow"), 3);
});

Deno.test("LogWriter writes every line of a writer that takes a few bytes at a time", async () => {
  let written = "";
  const trickle = {
    write(bytes: Uint8Array): Promise<number> {
      const n = Math.min(7, bytes.length);
      written += decoder.decode(bytes.subarray(0, n), { stream: true });
      return Promise.resolve(n);
    },
  };
  const writer = new LogWriter(trickle, { cause: "console slow" });
  for (let i = 0; i < 50; i++) writer.write(record(`line ${i} é`));
  await writer.close();
  const lines = written.trimEnd().split("\n");
  assert.equal(lines.length, 50);
  assert.ok(lines.every((line, i) => line.endsWith(`line ${i} é`)));
});

Deno.test("LogCounters bounds the records in flight and shares its counts between views", () => {
  const counters = new LogCounters();
  const other = new LogCounters(counters.buffer);
  let reserved = 0;
  while (counters.reserve(1000)) reserved++;
  assert.equal(reserved, 1000);
  assert.equal(other.inFlight, 1000);
  assert.equal(other.reserve(1000), false);
  other.settle();
  assert.equal(counters.reserve(1000), true);
  counters.drop("queue full");
  counters.drop("console slow");
  counters.suppress(40);
  assert.equal(
    other.describe(),
    "log records dropped 2 (queue full 1, console slow 1); 40 suppressed by the per-address limit",
  );
  assert.equal(new LogCounters().describe(), "");
});
