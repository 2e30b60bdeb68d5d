/**
 * A large file's commit (CompleteMultipartUpload, whose answer on Ceph RGW
 * carries no ETag, so the object's facts are read back) when another
 * server's small file replaces the object right after the completion, on a
 * real engine: the store is the real `S3ObjectStore` under a decorator that
 * makes that replacement happen there, with a real conditional PutObject,
 * between the completion and the read-back, as a racing server can. The
 * commit stands with its own size and a version that is not the small
 * file's, and the small file, stored last, is what the name holds, whole.
 *
 * @module
 */

import assert from "node:assert/strict";
import type { AwsCredentials } from "../server/s3/aws_credentials.ts";
import type { Conditions, ObjectHead, PartInfo } from "../server/s3/object_store.ts";
import { S3ObjectStore } from "../server/s3/s3_client.ts";
import { S3Storage } from "../server/s3/s3_storage.ts";
import type { VersionedInfo } from "../server/storage.ts";
import { bytesOf } from "../shared/pooled_bytes.ts";
import { seededBytes, sha256 } from "./_common.ts";
import { s3Test, tellS3Ignored } from "./_s3.ts";

tellS3Ignored("tests/s3_commit_race_test.ts");

const MiB = 1024 * 1024;

/** The real store, but each completion is followed at once by another writer's small file (If-Match on it). */
class ReplacedAtOnce extends S3ObjectStore {
  readonly #small: Uint8Array;

  constructor(options: ConstructorParameters<typeof S3ObjectStore>[0], credentials: AwsCredentials, small: Uint8Array) {
    super(options, credentials);
    this.#small = small;
  }

  override async completeMultipart(
    key: string,
    uploadId: string,
    parts: PartInfo[],
    options?: Conditions,
  ): Promise<ObjectHead> {
    const completed = await super.completeMultipart(key, uploadId, parts, options);
    await this.put(key, this.#small, { ifMatch: completed.etag, metadata: { mtime: "1700000000000" } });
    return (await this.head(key))!;
  }
}

s3Test("S3Storage: a large commit replaced at once by a small file keeps its own facts", async (bucket) => {
  const small = seededBytes(1234, 9);
  const { engine } = bucket;
  const options = { bucket: bucket.name, prefix: "srv", endpoint: engine.endpoint, region: engine.region };
  const racing = new ReplacedAtOnce(options, engine.credentials, small);
  const storage = await S3Storage.open(racing, { partBytes: 5 * MiB });
  try {
    const body = seededBytes(6 * MiB + 5, 1);
    const upload = await storage.beginUpload("alice", "big.bin");
    for (let at = 0; at < body.length; at += MiB) await upload.write(body.slice(at, at + MiB));
    const info = await upload.commit() as VersionedInfo;
    assert.equal(info.size, body.length, "the commit's own size, not the small file's");
    const now = await storage.stat("alice", "big.bin");
    assert.equal(now?.size, small.length);
    assert.notEqual(info.version, now?.version, "its version is not the small file's");
    assert.match(info.version, /^"[0-9a-f]{32}-2"$/, "the ETag S3 gives two parts");
    const handle = await storage.openRead("alice", "big.bin");
    const pieces: Uint8Array[] = [];
    for await (const piece of handle.read()) pieces.push(bytesOf(piece).slice());
    handle.close();
    assert.equal(sha256(new Uint8Array(pieces.flatMap((piece) => [...piece]))), sha256(small), "the last one, whole");
  } finally {
    await storage.abortUploads();
  }
});
