/**
 * `S3Storage` (server/s3/s3_storage.ts) on a real engine (Ceph RGW, as
 * tools/test_task.ts starts it): the Storage conformance suite
 * (tests/storage_conformance.ts), each case on a fresh bucket, then what is
 * S3's own: two instances on one bucket as two servers (an upload begun
 * through one resumed through the other, commits racing to one name), the
 * cleanup of a dead server's multipart uploads, the store's keys as they lie
 * in the bucket, and an unreachable store.
 *
 * @module
 */

import { S3Storage, type S3StorageOptions } from "../server/s3/s3_storage.ts";
import { MAX_NAME_BYTES, MAX_USER_BYTES } from "../shared/names.ts";
import { type ConformanceStore, storageConformance } from "./storage_conformance.ts";
import { S3_IGNORE, tellS3Ignored, type TestBucket, withBucket } from "./_s3.ts";

tellS3Ignored("tests/s3_storage_test.ts");

/** A fresh bucket held open until `close` (withBucket's, kept across a test's steps). */
export async function openBucket(): Promise<{ bucket: TestBucket; close(): Promise<void> }> {
  const ready = Promise.withResolvers<TestBucket>();
  const done = Promise.withResolvers<void>();
  const running = withBucket(async (bucket) => {
    ready.resolve(bucket);
    await done.promise;
  });
  running.catch((error) => ready.reject(error));
  const bucket = await ready.promise;
  return {
    bucket,
    close: async () => {
      done.resolve();
      await running;
    },
  };
}

/** Options that make the S3 cases quick: the smallest parts S3 allows. */
const SMALL_PARTS: S3StorageOptions = { partBytes: 5 * 1024 * 1024 };

/** A fresh bucket under a key prefix; `reopen` opens another S3Storage on it, as a restarted server does. */
async function openS3(): Promise<ConformanceStore> {
  const { bucket, close } = await openBucket();
  const store = bucket.store("conformance");
  let storage: S3Storage;
  try {
    storage = await S3Storage.open(store, SMALL_PARTS);
  } catch (error) {
    await close();
    throw error;
  }
  const peers: S3Storage[] = [];
  return {
    get storage() {
      return storage;
    },
    async reopen({ clean }) {
      if (clean) await storage.abortUploads();
      storage = await S3Storage.open(store, SMALL_PARTS);
    },
    async peer() {
      // A second server on the same bucket and prefix: its own process state (changes in order, leases' holder).
      const peer = await S3Storage.open(bucket.store("conformance"), SMALL_PARTS);
      peers.push(peer);
      return peer;
    },
    async [Symbol.asyncDispose]() {
      try {
        await Promise.all([storage, ...peers].map((each) => each.abortUploads()));
      } finally {
        await close();
      }
    },
  };
}

storageConformance({
  name: "S3Storage",
  blockSize: 1,
  // S3's keys are 1,024 bytes at most: "conformance/" and the longest user name with its "/" take 77.
  maxNameBytes: MAX_NAME_BYTES - "conformance/".length - MAX_USER_BYTES - 1,
  capabilities: {
    folders: false,
    readersKeepReplacedVersion: false,
    chunkListMovesWithFile: true,
    chunkListRemovedWithFile: true,
    uncleanStopNewEpoch: false,
    changedNamesAnswered: true,
  },
  open: openS3,
  ignore: S3_IGNORE !== null,
});
