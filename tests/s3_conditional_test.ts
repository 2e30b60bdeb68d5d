/**
 * `S3Storage`'s changes on a condition (`ifVersion`) when another server
 * changes the name at the worst moment: right after the change's own
 * HeadObject, before its write. Two instances share a real bucket, as two
 * servers; the first one's store is the real `S3ObjectStore` under a
 * decorator that runs the other server's change there, once, as a racing
 * server can. A plain change of the other server is awaited (nothing holds
 * it back); a change on a condition is let go until it either ends or finds
 * the name's commit lease held (then it waits for the lease, and sees the
 * first change once it has it).
 *
 * What must hold: a small commit loses to a plain commit slipped in
 * (`If-Match`); a large commit, a removal and a rename each win against a
 * conditional commit begun in between, which is refused instead of being
 * overwritten, removed or copied over; a rename loses to a plain commit
 * slipped in (the copy's condition on its source). Every refusal is
 * `CONFLICT` "changed on the server since it was read".
 *
 * @module
 */

import assert from "node:assert/strict";
import type { AwsCredentials } from "../server/s3/aws_credentials.ts";
import type { ObjectHead, PutOptions } from "../server/s3/object_store.ts";
import { S3ObjectStore } from "../server/s3/s3_client.ts";
import { isLostCondition } from "../server/s3/s3_errors.ts";
import { S3Storage } from "../server/s3/s3_storage.ts";
import type { CommitOptions, Storage } from "../server/storage.ts";
import { bytesOf } from "../shared/pooled_bytes.ts";
import { DfosError, Status } from "../shared/status.ts";
import { seededBytes, sha256 } from "./_common.ts";
import { s3Test, tellS3Ignored, type TestBucket } from "./_s3.ts";

tellS3Ignored("tests/s3_conditional_test.ts");

const MiB = 1024 * 1024;
const ALICE = "alice";

/** The real store, with a step run once right after a HeadObject of one key, and a signal when a lease is held. */
class Interleaved extends S3ObjectStore {
  #after: { key: string; step: () => Promise<void> } | null = null;
  /** Resolved when this store finds a commit lease held by another (its change waits for it). */
  leaseHeld = Promise.withResolvers<void>();

  constructor(options: ConstructorParameters<typeof S3ObjectStore>[0], credentials: AwsCredentials) {
    super(options, credentials);
  }

  /** Runs `step` right after the next HeadObject of `key` has been answered, before its answer is returned. */
  afterHead(key: string, step: () => Promise<void>): void {
    this.#after = { key, step };
  }

  override async head(key: string): Promise<ObjectHead | null> {
    const head = await super.head(key);
    const after = this.#after;
    if (after !== null && after.key === key) {
      this.#after = null;
      await after.step();
    }
    return head;
  }

  override async put(key: string, body: Uint8Array, options?: PutOptions): Promise<string> {
    try {
      return await super.put(key, body, options);
    } catch (error) {
      if (key.includes("/.dfos-leases/") && isLostCondition(error)) this.leaseHeld.resolve();
      throw error;
    }
  }
}

/** Two servers on one bucket: `mine` through an {@linkcode Interleaved} store, `theirs` through another. */
async function twoServers(bucket: TestBucket) {
  const { engine } = bucket;
  const options = { bucket: bucket.name, prefix: "srv", endpoint: engine.endpoint, region: engine.region };
  const mineStore = new Interleaved(options, engine.credentials);
  const theirsStore = new Interleaved(options, engine.credentials);
  const mine = await S3Storage.open(mineStore, { partBytes: 5 * MiB });
  const theirs = await S3Storage.open(theirsStore, { partBytes: 5 * MiB });
  let conflicts = 0;
  mine.observe({ conflict: () => conflicts++, multipartOpened() {}, multipartClosed() {} });
  return {
    mine,
    theirs,
    mineStore,
    theirsStore,
    conflicts: () => conflicts,
    async [Symbol.asyncDispose]() {
      await Promise.all([mine.abortUploads(), theirs.abortUploads()]);
    },
  };
}

/** Begins, writes and commits: the whole PUT. */
async function put(storage: Storage, name: string, bytes: Uint8Array, options?: CommitOptions): Promise<void> {
  const upload = await storage.beginUpload(ALICE, name);
  try {
    for (let at = 0; at < bytes.length; at += MiB) await upload.write(bytes.slice(at, at + MiB));
    if (bytes.length === 0) await upload.write(new Uint8Array(0));
    await upload.commit(options);
  } finally {
    await upload.abort();
  }
}

async function versionNow(storage: Storage, name: string): Promise<string> {
  const handle = await storage.openRead(ALICE, name);
  handle.close();
  return handle.info.version;
}

/** The file's bytes, or null when there is none. */
async function content(storage: Storage, name: string): Promise<Uint8Array | null> {
  if (await storage.stat(ALICE, name) === null) return null;
  const handle = await storage.openRead(ALICE, name);
  try {
    const pieces: Uint8Array[] = [];
    for await (const piece of handle.read()) pieces.push(bytesOf(piece).slice());
    return new Uint8Array(pieces.flatMap((piece) => [...piece]));
  } finally {
    handle.close();
  }
}

function assertChanged(error: unknown, action: string, name: string): void {
  assert.ok(error instanceof DfosError && error.code === Status.CONFLICT, `CONFLICT: ${error}`);
  assert.equal(error.message, `Cannot ${action} "${name}": changed on the server since it was read`);
}

/** A change of the other server's, begun: how it ended ("stored", or its error), once it has. */
class Rival {
  ended: Promise<unknown> = Promise.resolve("not begun");

  /** Starts `change` (on a condition) and returns once it has ended or found the name's lease held (`waiting`). */
  async begin(change: Promise<void>, waiting: Promise<void>): Promise<void> {
    this.ended = change.then(() => "stored", (error) => error);
    await Promise.race([this.ended, waiting]);
  }
}

s3Test(
  "S3Storage: a small commit on a version, with a plain commit slipped in after its look, is CONFLICT",
  async (bucket) => {
    await using servers = await twoServers(bucket);
    const { mine, theirs, mineStore } = servers;
    await put(mine, "f", seededBytes(100, 1));
    const read = await versionNow(mine, "f");
    const theirEdit = seededBytes(200, 2);
    mineStore.afterHead("alice/f", () => put(theirs, "f", theirEdit));
    const before = servers.conflicts();
    await assert.rejects(put(mine, "f", seededBytes(300, 3), { ifVersion: read }), (error) => {
      assertChanged(error, "store", "f");
      return true;
    });
    assert.equal(sha256((await content(mine, "f"))!), sha256(theirEdit), "their edit stays, whole");
    assert.equal(servers.conflicts() - before, 1, "the lost PutObject condition is counted as a conflict");
  },
);

s3Test(
  "S3Storage: a large commit on a version wins over a conditional commit begun after its look, which is CONFLICT",
  async (bucket) => {
    await using servers = await twoServers(bucket);
    const { mine, theirs, mineStore, theirsStore } = servers;
    await put(mine, "f", seededBytes(100, 4));
    const read = await versionNow(mine, "f");
    const rival = new Rival();
    mineStore.afterHead("alice/f", async () => {
      await rival.begin(put(theirs, "f", seededBytes(200, 5), { ifVersion: read }), theirsStore.leaseHeld.promise);
    });
    const large = seededBytes(6 * MiB + 7, 6); // two parts: a multipart upload, completed without a condition
    await put(mine, "f", large, { ifVersion: read });
    assertChanged(await rival.ended, "store", "f");
    assert.equal(sha256((await content(theirs, "f"))!), sha256(large), "the large file, whole; nothing over it");
  },
);

s3Test(
  "S3Storage: a removal on a version wins over a conditional commit begun after its look, which is CONFLICT",
  async (bucket) => {
    await using servers = await twoServers(bucket);
    const { mine, theirs, mineStore, theirsStore } = servers;
    await put(mine, "f", seededBytes(100, 7));
    const read = await versionNow(mine, "f");
    const rival = new Rival();
    mineStore.afterHead("alice/f", async () => {
      await rival.begin(put(theirs, "f", seededBytes(200, 8), { ifVersion: read }), theirsStore.leaseHeld.promise);
    });
    await mine.remove(ALICE, "f", { ifVersion: read });
    assertChanged(await rival.ended, "store", "f");
    assert.equal(await theirs.stat(ALICE, "f"), null, "removed, and no edit stored that the removal took away");
  },
);

s3Test(
  "S3Storage: a rename on a version, with a plain commit slipped in after its look, is CONFLICT and moves nothing",
  async (bucket) => {
    await using servers = await twoServers(bucket);
    const { mine, theirs, mineStore } = servers;
    await put(mine, "f", seededBytes(100, 9));
    const read = await versionNow(mine, "f");
    const theirEdit = seededBytes(200, 10);
    mineStore.afterHead("alice/f", () => put(theirs, "f", theirEdit));
    const before = servers.conflicts();
    await assert.rejects(mine.rename(ALICE, "f", "g", { ifVersion: read }), (error) => {
      assertChanged(error, "move", "f");
      return true;
    });
    assert.equal(sha256((await content(mine, "f"))!), sha256(theirEdit), "their edit stays under the old name");
    assert.equal(await mine.stat(ALICE, "g"), null, "nothing under the new name");
    assert.equal(servers.conflicts() - before, 1, "the copy's lost condition on its source is counted");
  },
);

s3Test(
  "S3Storage: a rename on a version wins over a conditional commit of a new file of the new name begun in between",
  async (bucket) => {
    await using servers = await twoServers(bucket);
    const { mine, theirs, mineStore, theirsStore } = servers;
    const original = seededBytes(100, 11);
    await put(mine, "f", original);
    const read = await versionNow(mine, "f");
    const rival = new Rival();
    mineStore.afterHead("alice/f", async () => {
      await rival.begin(put(theirs, "g", seededBytes(200, 12), { ifVersion: null }), theirsStore.leaseHeld.promise);
    });
    await mine.rename(ALICE, "f", "g", { ifVersion: read });
    assertChanged(await rival.ended, "store", "g");
    assert.equal(sha256((await content(theirs, "g"))!), sha256(original), "the moved file, not copied over");
    assert.equal(await theirs.stat(ALICE, "f"), null);
  },
);
