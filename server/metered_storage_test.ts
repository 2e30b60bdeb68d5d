/**
 * Tests of `MeteredStorage` around a real `LocalStorage`: every call timed
 * under its operation, refusals apart from failures, iterations counted
 * once, and the events a backend reports through `observe`.
 *
 * @module
 */

import { ok, rejects, strictEqual } from "node:assert/strict";
import { join } from "node:path";
import { bytesOf, release } from "../shared/pooled_bytes.ts";
import { DfosError, Status } from "../shared/status.ts";
import { LocalStorage } from "./local_storage.ts";
import { MeteredStorage } from "./metered_storage.ts";
import { ServerMetrics } from "./server_metrics.ts";
import type { StorageEvents } from "./storage.ts";

/** A metered LocalStorage in a temporary folder. */
async function metered(): Promise<{ storage: MeteredStorage; metrics: ServerMetrics; root: string } & AsyncDisposable> {
  const root = await Deno.makeTempDir({ prefix: "dfos_metered_" });
  const metrics = new ServerMetrics();
  const storage = new MeteredStorage(await LocalStorage.open(root), metrics);
  return { storage, metrics, root, [Symbol.asyncDispose]: () => Deno.remove(root, { recursive: true }) };
}

function calls(metrics: ServerMetrics, operation: string, backend = "local"): number {
  return metrics.value("dfos_storage_operation_duration_seconds", { backend, operation });
}

function failures(metrics: ServerMetrics, operation: string): number {
  return metrics.value("dfos_storage_operation_failures_total", { backend: "local", operation });
}

Deno.test("MeteredStorage times each call of the storage and of its uploads and reads under its operation", async () => {
  await using fx = await metered();
  const { storage, metrics } = fx;
  await storage.prepareUser("alice");
  const upload = await storage.beginUpload("alice", "a.txt");
  await upload.write(new TextEncoder().encode("hello"));
  await upload.write(new TextEncoder().encode(" world"));
  strictEqual(upload.written, 11);
  await upload.commit();
  const handle = await storage.openRead("alice", "a.txt");
  let read = "";
  for await (const chunk of handle.read()) {
    read += new TextDecoder().decode(bytesOf(chunk));
    release(chunk);
  }
  handle.close();
  strictEqual(read, "hello world");
  strictEqual((await storage.stat("alice", "a.txt"))?.size, 11);
  strictEqual((await storage.list("alice", { prefix: "", after: "", limit: 10 })).entries.length, 1);
  await storage.remove("alice", "a.txt");
  for (
    const [operation, count] of [
      ["prepare_user", 1],
      ["begin_upload", 1],
      ["upload_write", 2],
      ["upload_commit", 1],
      ["open_read", 1],
      ["read", 1],
      ["stat", 1],
      ["list", 1],
      ["remove", 1],
      ["rename", 0],
    ] as const
  ) {
    strictEqual(calls(metrics, operation), count, operation);
    strictEqual(failures(metrics, operation), 0, operation);
  }
});

Deno.test("MeteredStorage counts a refusal as a call and a storage error as a failure too", async () => {
  await using fx = await metered();
  const { storage, metrics, root } = fx;
  await storage.prepareUser("alice");
  await rejects(storage.openRead("alice", "missing.txt"), (error) => error instanceof DfosError);
  strictEqual(calls(metrics, "open_read"), 1);
  strictEqual(failures(metrics, "open_read"), 0);
  // A file where bob's folder must go: making the folder fails in the file system, not by a rule of dfos.
  await Deno.writeTextFile(join(root, "bob"), "in the way");
  await rejects(storage.prepareUser("bob"), (error) => !(error instanceof DfosError));
  strictEqual(calls(metrics, "prepare_user"), 2);
  strictEqual(failures(metrics, "prepare_user"), 1);
});

Deno.test("MeteredStorage counts a read the consumer stops early once, and passes the stop on", async () => {
  await using fx = await metered();
  const { storage, metrics } = fx;
  await storage.prepareUser("alice");
  const upload = await storage.beginUpload("alice", "big.bin");
  await upload.write(new Uint8Array(3 * 1024 * 1024));
  await upload.commit();
  const handle = await storage.openRead("alice", "big.bin");
  for await (const chunk of handle.readRange(0, 3 * 1024 * 1024)) {
    release(chunk);
    break;
  }
  handle.close();
  strictEqual(calls(metrics, "read_range"), 1);
  await rejects(async () => {
    for await (const chunk of handle.readRange(0, 10 * 1024 * 1024)) release(chunk); // past the end
  }, (error) => error instanceof DfosError && error.code === Status.BAD_REQUEST);
  strictEqual(calls(metrics, "read_range"), 2);
  strictEqual(failures(metrics, "read_range"), 0);
});

Deno.test("MeteredStorage names the backend and counts the conflicts and multipart uploads it reports", async () => {
  const root = await Deno.makeTempDir({ prefix: "dfos_metered_" });
  try {
    const local = await LocalStorage.open(root);
    let events: StorageEvents | null = null;
    // A backend that says it is S3 and reports its events: what s3_storage.ts is to do.
    const backend = Object.assign(Object.create(local), {
      backend: "s3",
      observe: (given: StorageEvents) => events = given,
    });
    const metrics = new ServerMetrics();
    new MeteredStorage(backend, metrics);
    ok(events !== null, "observe was called");
    const reported = events as StorageEvents;
    reported.multipartOpened();
    reported.multipartOpened();
    reported.multipartClosed();
    reported.conflict();
    strictEqual(metrics.value("dfos_storage_multipart_uploads_open", { backend: "s3" }), 1);
    strictEqual(metrics.value("dfos_storage_conflicts_total", { backend: "s3" }), 1);
    const text = metrics.render();
    ok(text.includes('dfos_storage_conflicts_total{backend="s3"} 1\n'));
    ok(!text.includes('backend="local"'), "only the backend in use is shown");
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
