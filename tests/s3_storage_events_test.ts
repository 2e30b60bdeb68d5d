/**
 * What `S3Storage` (server/s3/s3_storage.ts) reports for the metrics
 * through `observe(events)`, on a real engine (Ceph RGW): two instances on
 * one bucket stand for two servers.
 *
 * - Conflicts: each instance is opened on its own {@linkcode RefusalCounter},
 *   a decorator over the real `S3ObjectStore` that counts the conditional
 *   writes the engine refused as lost conditions (what the S3 client throws
 *   as `precondition` or `conflict`), which is the truth to compare with;
 *   writes race to a few names through both (small files' conditional
 *   PutObject, large files' commit leases, the change counter's bumps, a
 *   kept upload taken up by both at once), and each instance's conflicts
 *   must equal its store's refusals, and be more than 0.
 * - The multipart gauge: it goes up while a multipart upload is open on an
 *   instance, and back to 0 after a commit, an abort, a failed commit, an
 *   `abortUploads`, and a kept upload taken up through the other instance;
 *   it never goes below 0 on either.
 *
 * @module
 */

import assert from "node:assert/strict";
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
} from "../server/s3/object_store.ts";
import { ObjectStoreError } from "../server/s3/object_store.ts";
import { S3Storage, type S3StorageOptions } from "../server/s3/s3_storage.ts";
import type { StorageEvents, Upload } from "../server/storage.ts";
import { DfosError, Status } from "../shared/status.ts";
import { seededBytes } from "./_common.ts";
import { s3Test, tellS3Ignored } from "./_s3.ts";

tellS3Ignored("tests/s3_storage_events_test.ts");

const MiB = 1024 * 1024;
const OPTIONS: S3StorageOptions = { partBytes: 5 * MiB };

/**
 * The real store, passed through, counting the conditional writes (PutObject,
 * CopyObject, CompleteMultipartUpload with `If-Match` or `If-None-Match`, a
 * CopyObject's source condition, DeleteObject with `If-Match`) it threw as
 * lost conditions, and the conditional reads too (kept apart).
 */
class RefusalCounter implements ObjectStore {
  readonly label: string;
  readonly #store: ObjectStore;
  /** Conditional writes refused as lost conditions. */
  refusedWrites = 0;
  /** Conditional writes made. */
  conditionalWrites = 0;
  /** Reads refused as lost conditions (a file replaced while read): not conflicts. */
  refusedReads = 0;

  constructor(store: ObjectStore) {
    this.#store = store;
    this.label = store.label;
  }

  async #counted<T>(conditions: Conditions | undefined, kind: "write" | "read", call: () => Promise<T>): Promise<T> {
    const conditional = conditions?.ifMatch !== undefined || conditions?.ifNoneMatch !== undefined;
    if (conditional && kind === "write") this.conditionalWrites++;
    try {
      return await call();
    } catch (error) {
      const lost = error instanceof ObjectStoreError && (error.kind === "precondition" || error.kind === "conflict");
      if (conditional && lost) kind === "write" ? this.refusedWrites++ : this.refusedReads++;
      throw error;
    }
  }

  head(key: string): Promise<ObjectHead | null> {
    return this.#store.head(key);
  }
  get(key: string, options?: GetOptions): Promise<{ head: ObjectHead; body: ReadableStream<Uint8Array> } | null> {
    return this.#counted(options, "read", () => this.#store.get(key, options));
  }
  put(key: string, body: Uint8Array, options?: PutOptions): Promise<string> {
    return this.#counted(options, "write", () => this.#store.put(key, body, options));
  }
  delete(key: string, options?: DeleteOptions): Promise<void> {
    return this.#counted(options, "write", () => this.#store.delete(key, options));
  }
  copy(from: string, to: string, options?: CopyOptions): Promise<string> {
    const conditions = options?.ifSourceMatch !== undefined ? { ifMatch: options.ifSourceMatch } : options;
    return this.#counted(conditions, "write", () => this.#store.copy(from, to, options));
  }
  list(prefix: string, options?: ListObjectsOptions): Promise<ObjectPage> {
    return this.#store.list(prefix, options);
  }
  createMultipart(key: string, options?: { metadata?: Record<string, string> }): Promise<string> {
    return this.#store.createMultipart(key, options);
  }
  uploadPart(key: string, uploadId: string, partNumber: number, body: Uint8Array): Promise<string> {
    return this.#store.uploadPart(key, uploadId, partNumber, body);
  }
  completeMultipart(key: string, uploadId: string, parts: PartInfo[], options?: Conditions): Promise<ObjectHead> {
    return this.#counted(options, "write", () => this.#store.completeMultipart(key, uploadId, parts, options));
  }
  abortMultipart(key: string, uploadId: string): Promise<void> {
    return this.#store.abortMultipart(key, uploadId);
  }
  listParts(key: string, uploadId: string): Promise<PartInfo[]> {
    return this.#store.listParts(key, uploadId);
  }
  listMultipartUploads(prefix: string): Promise<MultipartInfo[]> {
    return this.#store.listMultipartUploads(prefix);
  }
}

/** Events that count, as the server's metrics would. */
class CountingEvents implements StorageEvents {
  conflicts = 0;
  /** Multipart uploads open now. */
  open = 0;
  /** The least `open` ever was. */
  lowest = 0;
  /** Multipart uploads opened, in all. */
  opened = 0;

  conflict(): void {
    this.conflicts++;
  }
  multipartOpened(): void {
    this.open++;
    this.opened++;
  }
  multipartClosed(): void {
    this.open--;
    this.lowest = Math.min(this.lowest, this.open);
  }
}

/** Writes `bytes` to the upload in pieces of at most 1 MiB. */
async function writeAll(upload: Upload, bytes: Uint8Array): Promise<void> {
  for (let at = 0; at < bytes.length; at += MiB) await upload.write(bytes.slice(at, at + MiB));
}

/** Stores `body` as `name` through `storage`. */
async function store(storage: S3Storage, name: string, body: Uint8Array): Promise<void> {
  const upload = await storage.beginUpload("alice", name);
  await writeAll(upload, body);
  await upload.commit();
}

s3Test("S3Storage reports each conditional write another writer made it lose as one conflict", async (bucket) => {
  const stores = [new RefusalCounter(bucket.store("srv")), new RefusalCounter(bucket.store("srv"))];
  const servers = [await S3Storage.open(stores[0], OPTIONS), await S3Storage.open(stores[1], OPTIONS)];
  const events = [new CountingEvents(), new CountingEvents()];
  servers.forEach((server, i) => server.observe(events[i]));
  try {
    assert.equal(servers[0].backend, "s3");
    // Small files (a conditional PutObject each) racing to 3 names, and large ones (the commit lease) to a 4th,
    // through both instances; every commit bumps the one change counter of alice.
    const writes = [
      ...Array.from({ length: 30 }, (_, i) => ({ name: `small-${i % 3}.bin`, body: seededBytes(1000 + i, i + 1) })),
      ...Array.from({ length: 4 }, (_, i) => ({ name: "large.bin", body: seededBytes(5 * MiB + i, 100 + i) })),
    ];
    const results = await Promise.allSettled(writes.map(({ name, body }, i) => store(servers[i % 2], name, body)));
    for (const result of results) {
      if (result.status === "rejected") {
        assert.ok(result.reason instanceof DfosError, String(result.reason));
        assert.equal(result.reason.code, Status.CONFLICT, result.reason.message);
      }
    }
    const refusedCommits = results.filter((result) => result.status === "rejected").length;

    // A kept upload that both take up at once: one wins, the other loses its If-Match (or finds it taken).
    const kept = await servers[0].beginUpload("alice", "kept.bin", { keep: "k" });
    await writeAll(kept, seededBytes(6 * MiB, 7));
    await kept.keep(new Uint8Array([1]));
    const taken = await Promise.all(servers.map((server) => server.resumeUpload("alice", "kept.bin", "k")));
    assert.equal(taken.filter((one) => one !== null).length, 1, "one of them takes it up");
    await taken.find((one) => one !== null)!.upload.abort();

    for (const i of [0, 1]) {
      assert.equal(stores[i].refusedReads, 0, "no read lost its condition here");
      assert.equal(
        events[i].conflicts,
        stores[i].refusedWrites,
        `instance ${i}: one conflict per conditional write refused (of ${stores[i].conditionalWrites})`,
      );
    }
    const conflicts = events[0].conflicts + events[1].conflicts;
    assert.ok(conflicts > 0, "the race made some conditional writes lose");
    assert.ok(conflicts >= refusedCommits, "each commit refused as CONFLICT lost at least one condition");
    console.log(
      `conflicts ${events[0].conflicts} + ${
        events[1].conflicts
      }; commits refused ${refusedCommits} of ${writes.length}`,
    );
  } finally {
    for (const server of servers) await server.abortUploads();
  }
});

s3Test(
  "S3Storage reports the multipart uploads open on it: back to 0 after a commit, an abort, a failure, a hand-over",
  async (bucket) => {
    const a = await S3Storage.open(bucket.store("srv"), OPTIONS);
    const b = await S3Storage.open(bucket.store("srv"), OPTIONS);
    const [ea, eb] = [new CountingEvents(), new CountingEvents()];
    a.observe(ea);
    b.observe(eb);
    try {
      // A small file makes no multipart upload.
      await store(a, "small.bin", seededBytes(1000, 1));
      assert.equal(ea.opened, 0);

      // Committed.
      const committed = await a.beginUpload("alice", "one.bin");
      await writeAll(committed, seededBytes(6 * MiB, 2)); // a whole part sent: the multipart upload exists
      assert.equal(ea.open, 1, "open while in progress");
      await committed.commit();
      assert.equal(ea.open, 0, "closed by the commit");

      // Aborted.
      const aborted = await a.beginUpload("alice", "two.bin");
      await writeAll(aborted, seededBytes(6 * MiB, 3));
      assert.equal(ea.open, 1);
      await aborted.abort();
      assert.equal(ea.open, 0, "closed by the abort");

      // A commit that fails (the quota refuses it): aborted.
      const failed = await a.beginUpload("alice", "three.bin");
      await writeAll(failed, seededBytes(6 * MiB, 4));
      await assert.rejects(
        failed.commit({
          admit: () => {
            throw new DfosError(Status.TOO_LARGE, 'Cannot store "three.bin": over quota');
          },
        }),
        /over quota/,
      );
      assert.equal(ea.open, 0, "closed by the failed commit");

      // In progress when the server stops.
      const stopped = await a.beginUpload("alice", "four.bin");
      await writeAll(stopped, seededBytes(6 * MiB, 5));
      assert.equal(ea.open, 1);
      await a.abortUploads();
      assert.equal(ea.open, 0, "closed by abortUploads");

      // Kept through A: open on no server; taken up through B: open there until B commits it.
      const kept = await a.beginUpload("alice", "five.bin", { keep: "k" });
      await writeAll(kept, seededBytes(6 * MiB, 6));
      assert.equal(ea.open, 1);
      await kept.keep(new Uint8Array([1]));
      assert.equal(ea.open, 0, "a kept upload is open on no server");
      const resumed = await b.resumeUpload("alice", "five.bin", "k");
      assert.ok(resumed !== null);
      assert.equal(eb.open, 1, "open on the server that took it up");
      await writeAll(resumed.upload, seededBytes(MiB, 7));
      await resumed.upload.commit();
      assert.deepEqual([ea.open, eb.open], [0, 0], "closed by the other server's commit");

      assert.deepEqual([ea.lowest, eb.lowest], [0, 0], "never below 0");
      assert.deepEqual([ea.opened, eb.opened], [5, 1]);
      assert.deepEqual(await bucket.store("srv").listMultipartUploads(""), [], "and none is left in the bucket");
    } finally {
      await a.abortUploads();
      await b.abortUploads();
    }
  },
);
