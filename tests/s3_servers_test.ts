/**
 * `S3Storage` (server/s3/s3_storage.ts) as several servers use it, on a real
 * engine (Ceph RGW): two instances on one bucket stand for two servers. An
 * upload begun through one is resumed through the other, and two that try to
 * resume it at once do not both get it; commits racing to one name through
 * both end with one whole version; the cleanup aborts a dead server's
 * multipart uploads but not a live or a kept one; a store that goes away
 * mid-transfer gives a clear error and loses nothing stored; and the real
 * `dfos serve --storage s3://...` serves the real CLI.
 *
 * @module
 */

import assert from "node:assert/strict";
import { sandboxPermissions } from "../server/sandbox.ts";
import { S3Storage, type S3StorageOptions } from "../server/s3/s3_storage.ts";
import type { Upload } from "../server/storage.ts";
import { bytesOf } from "../shared/pooled_bytes.ts";
import { DfosError, Status } from "../shared/status.ts";
import { randomBytes, sha256 } from "./_common.ts";
import { runCli, USERS } from "./_fixture.ts";
import { CountingProxy } from "./_proxy.ts";
import { s3Test, serveOnBucket, tellS3Ignored } from "./_s3.ts";

tellS3Ignored("tests/s3_servers_test.ts");

const MiB = 1024 * 1024;
const OPTIONS: S3StorageOptions = { partBytes: 5 * MiB };
const CREDENTIALS = { accessKeyId: "id", secretAccessKey: "secret", source: "a test" };

/** Writes `bytes` to the upload in pieces of at most 1 MiB. */
async function writeAll(upload: Upload, bytes: Uint8Array): Promise<void> {
  for (let at = 0; at < bytes.length; at += MiB) await upload.write(bytes.slice(at, at + MiB));
}

/** Everything `name` holds now, read through `storage`. */
async function readAll(storage: S3Storage, user: string, name: string): Promise<Uint8Array> {
  const handle = await storage.openRead(user, name);
  try {
    const parts: Uint8Array[] = [];
    for await (const piece of handle.read()) parts.push(bytesOf(piece).slice());
    const all = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
    let at = 0;
    for (const part of parts) {
      all.set(part, at);
      at += part.length;
    }
    return all;
  } finally {
    handle.close();
  }
}

s3Test(
  "S3Storage: an upload begun through one server is resumed through another, by one of them only",
  async (bucket) => {
    const a = await S3Storage.open(bucket.store("srv"), OPTIONS);
    const b = await S3Storage.open(bucket.store("srv"), OPTIONS);
    try {
      const body = randomBytes(13 * MiB + 123);
      const state = new TextEncoder().encode("entries so far");
      const first = await a.beginUpload("alice", "big/file.bin", { keep: "root-1" });
      await writeAll(first, body.subarray(0, 7 * MiB + 5)); // one whole part, and 2 MiB past it
      await first.keep(state);

      const kept = await b.keptUploads("alice");
      assert.deepEqual(kept.map(({ name, key, size }) => ({ name, key, size })), [
        { name: "big/file.bin", key: "root-1", size: 7 * MiB + 5 },
      ]);
      assert.deepEqual(kept[0].state, state);

      // Both servers asked at once: one takes it up, the other finds none.
      const [fromA, fromB] = await Promise.all([
        a.resumeUpload("alice", "big/file.bin", "root-1"),
        b.resumeUpload("alice", "big/file.bin", "root-1"),
      ]);
      assert.equal([fromA, fromB].filter((taken) => taken !== null).length, 1, "one server resumes it");
      const resumed = (fromB ?? fromA)!;
      assert.equal(resumed.upload.written, 7 * MiB + 5);
      assert.deepEqual(resumed.state, state);
      // Kept again through that server, and taken up through the other.
      await resumed.upload.keep(state);
      const again = await (fromB === null ? b : a).resumeUpload("alice", "big/file.bin", "root-1");
      assert.ok(again !== null);
      await writeAll(again.upload, body.subarray(7 * MiB + 5));
      const info = await again.upload.commit({ mtime: 1_700_000_000_123 });
      assert.equal(info.size, body.length);
      assert.equal(info.mtime, 1_700_000_000_123);

      assert.equal(sha256(await readAll(a, "alice", "big/file.bin")), sha256(body));
      assert.deepEqual(await a.stat("alice", "big/file.bin"), { ...info });
      assert.deepEqual(await b.keptUploads("alice"), []);
      assert.deepEqual(await bucket.store("srv").listMultipartUploads(""), [], "no multipart upload left");
    } finally {
      await a.abortUploads();
      await b.abortUploads();
    }
  },
);

s3Test("S3Storage: commits racing to one name through two servers leave one whole version", async (bucket) => {
  const servers = [
    await S3Storage.open(bucket.store("srv"), OPTIONS),
    await S3Storage.open(bucket.store("srv"), OPTIONS),
  ];
  try {
    // Small bodies (conditional PutObject) and large ones (multipart, under the commit lease), through both.
    const bodies = [1000, 6 * MiB, 2000, 7 * MiB, 3000, 5 * MiB + 1].map((size) => randomBytes(size));
    const results = await Promise.allSettled(bodies.map(async (body, i) => {
      const upload = await servers[i % 2].beginUpload("alice", "race.bin");
      await writeAll(upload, body);
      return await upload.commit();
    }));
    const won = results.flatMap((result, i) => result.status === "fulfilled" ? [sha256(bodies[i])] : []);
    for (const result of results) {
      if (result.status === "rejected") {
        assert.ok(result.reason instanceof DfosError, String(result.reason));
        assert.equal(result.reason.code, Status.CONFLICT, result.reason.message);
      }
    }
    assert.ok(won.length >= 1, "at least one commit wins");
    const stored = sha256(await readAll(servers[1], "alice", "race.bin"));
    assert.ok(won.includes(stored), "the file is one whole version that was committed");
    assert.equal(sha256(await readAll(servers[0], "alice", "race.bin")), stored, "both servers see it");
    assert.deepEqual(await bucket.store("srv").listMultipartUploads(""), [], "no multipart upload left");
    const leases = await bucket.store("srv").list("alice/.dfos-leases/");
    assert.deepEqual(leases.objects, [], "every lease released");
  } finally {
    for (const server of servers) await server.abortUploads();
  }
});

s3Test(
  "S3Storage: the cleanup aborts the multipart uploads a dead server left, never a kept one or its own",
  async (bucket) => {
    const store = bucket.store("srv");
    const live = await S3Storage.open(store, { ...OPTIONS, staleUploadMs: 2000 });
    const dead = await S3Storage.open(store, OPTIONS);
    const deadUpload = await dead.beginUpload("alice", "dead.bin");
    await writeAll(deadUpload, randomBytes(6 * MiB)); // a part sent: a multipart upload open; then the server "dies"
    const keeper = await S3Storage.open(store, OPTIONS);
    const kept = await keeper.beginUpload("alice", "kept.bin", { keep: "k" });
    await writeAll(kept, randomBytes(6 * MiB));
    await kept.keep(new Uint8Array([1]));
    const liveUpload = await live.beginUpload("bob", "live.bin");
    await writeAll(liveUpload, randomBytes(6 * MiB));
    try {
      const keys = async () => (await store.listMultipartUploads("")).map((upload) => upload.key).sort();
      assert.deepEqual(await keys(), ["alice/dead.bin", "alice/kept.bin", "bob/live.bin"]);
      // A server starting now (the default bound, 24 h) takes none of them for a dead server's: all are young.
      const starting = await S3Storage.open(store, OPTIONS);
      await starting.abortUploads();
      assert.deepEqual(await keys(), ["alice/dead.bin", "alice/kept.bin", "bob/live.bin"]);
      // Past the live server's bound: its cleanup aborts the dead server's upload, not its own, not the kept one.
      await new Promise((resolve) => setTimeout(resolve, 3100));
      assert.equal(await live.abortStale(), 1);
      assert.deepEqual(await keys(), ["alice/kept.bin", "bob/live.bin"]);
      assert.equal(await live.stat("alice", "dead.bin"), null, "nothing of the dead upload shows");
      // Both left are still whole: the kept one resumed, the live one committed.
      const resumed = await live.resumeUpload("alice", "kept.bin", "k");
      assert.ok(resumed !== null);
      assert.equal((await resumed.upload.commit()).size, 6 * MiB);
      assert.equal((await liveUpload.commit()).size, 6 * MiB);
      assert.deepEqual(await keys(), []);
    } finally {
      await liveUpload.abort();
      for (const storage of [live, keeper, dead]) await storage.abortUploads();
    }
  },
);

s3Test("S3Storage: a store gone mid-transfer is a clear error; what was stored stays", async (bucket) => {
  const port = Number(new URL(bucket.engine.endpoint).port);
  const direct = await S3Storage.open(bucket.store("srv"), OPTIONS);
  const before = randomBytes(6 * MiB);
  const upload = await direct.beginUpload("alice", "kept-safe.bin");
  await writeAll(upload, before);
  await upload.commit();

  const proxy = new CountingProxy(port);
  let proxyUp = true;
  const viaProxy = bucket.store("srv", { endpoint: `http://${proxy.address}`, timeoutMs: 5000 });
  const storage = await S3Storage.open(viaProxy, OPTIONS);
  try {
    const replacing = await storage.beginUpload("alice", "kept-safe.bin");
    await writeAll(replacing, randomBytes(6 * MiB));
    proxyUp = false;
    await proxy[Symbol.asyncDispose](); // the store goes away
    const failed = await replacing.write(randomBytes(6 * MiB)).then(() => replacing.commit()).then(
      () => null,
      (error) => error,
    );
    assert.ok(failed instanceof DfosError, `a DfosError, not ${failed}`);
    assert.equal(failed.code, Status.INTERNAL);
    assert.match(failed.message, /^Cannot store "kept-safe\.bin": the object store s3:\/\/.* is unavailable/);
    await assert.rejects(storage.stat("alice", "kept-safe.bin"), /is unavailable/);
    assert.equal(sha256(await readAll(direct, "alice", "kept-safe.bin")), sha256(before), "the stored file is whole");
  } finally {
    await storage.abortUploads();
    await direct.abortUploads();
    if (proxyUp) await proxy[Symbol.asyncDispose]();
  }
});

s3Test(
  "two dfos serve --storage s3:// on one bucket serve the real CLI one truth: put, get, ls, rm",
  async (bucket) => {
    const dir = await Deno.makeTempDir({ prefix: "dfos_s3_serve_" });
    await Deno.writeTextFile(
      `${dir}/users.txt`,
      Object.entries(USERS).map(([user, password]) => `${user}:${password}\n`).join(""),
    );
    const a = await serveOnBucket(bucket, dir, "a");
    const b = await serveOnBucket(bucket, dir, "b").catch(async (error) => {
      a.child.kill("SIGTERM");
      await a.watch.ended;
      throw error;
    });
    try {
      const body = randomBytes(9 * MiB + 7);
      await Deno.writeFile(`${dir}/in.bin`, body);
      const put = await runCli(["put", `${dir}/in.bin`, "docs/in.bin"], { env: a.env });
      assert.equal(put.code, 0, put.stderr);
      const object = await bucket.store("dfos").head("alice/docs/in.bin");
      assert.equal(object?.size, body.length, "a plain object under PREFIX/<user>/<name>");
      const get = await runCli(["get", "docs/in.bin", `${dir}/out.bin`], { env: b.env });
      assert.equal(get.code, 0, get.stderr);
      assert.equal(sha256(await Deno.readFile(`${dir}/out.bin`)), sha256(body), "put through A, got through B");
      const ls = await runCli(["ls"], { env: b.env });
      assert.equal(ls.code, 0, ls.stderr);
      assert.match(new TextDecoder().decode(ls.stdout), /docs\/in\.bin/);
      const conflict = await runCli(["put", `${dir}/in.bin`, "docs"], { env: b.env });
      assert.notEqual(conflict.code, 0, "a folder's name is refused");
      const rm = await runCli(["rm", "docs/in.bin"], { env: b.env });
      assert.equal(rm.code, 0, rm.stderr);
      assert.equal(await bucket.store("dfos").head("alice/docs/in.bin"), null);
      const missing = await runCli(["get", "docs/in.bin", `${dir}/none.bin`], { env: a.env });
      assert.notEqual(missing.code, 0);
      assert.match(missing.stderr, /no such file/, "removed through B, gone through A");
    } finally {
      for (const server of [a, b]) server.child.kill("SIGTERM");
      for (const server of [a, b]) await server.watch.ended;
      await Deno.remove(dir, { recursive: true });
    }
  },
);

Deno.test("sandboxPermissions() with S3 gives the worker net to the endpoint and no storage folder", () => {
  const base = { hostname: "127.0.0.1", port: 7000, root: "/srv/unused", users: "/etc/dfos/users.txt" };
  const s3 = { bucket: "files", prefix: "dfos", endpoint: "http://127.0.0.1:7480", credentials: CREDENTIALS };
  const local = sandboxPermissions(base);
  assert.ok(local.write.length > 0, "the local disk: the root is written");
  const onS3 = sandboxPermissions({ ...base, s3 });
  assert.deepEqual(onS3.net, ["127.0.0.1:7000", "127.0.0.1:7480"]);
  assert.deepEqual(onS3.write, []);
  assert.deepEqual(onS3.read, ["/etc/dfos/users.txt"]);
  const hosted = sandboxPermissions({ ...base, s3: { ...s3, endpoint: "https://s3.example.net" } });
  assert.deepEqual(hosted.net, ["127.0.0.1:7000", "files.s3.example.net:443"], "virtual-hosted addressing");
});

Deno.test("dfos serve refuses S3 flags that do not go together, as usage errors", async () => {
  for (
    const [flags, message] of [
      [["--s3-endpoint", "http://127.0.0.1:1"], /--s3-endpoint needs --storage/],
      [["--storage", "s3://files"], /needs --s3-endpoint/],
      [["--storage", "files"], /--storage takes s3:\/\/BUCKET/],
      [["--storage", "s3://files", "--s3-endpoint", "ftp://x"], /--s3-endpoint takes an http/],
      [["--s3-stale-upload", "1h"], /--s3-stale-upload needs --storage/],
      [
        ["--storage", "s3://files", "--s3-endpoint", "http://127.0.0.1:1", "--s3-stale-upload", "soon"],
        /s3-stale-upload/,
      ],
    ] as const
  ) {
    const result = await runCli(["serve", "--port", "0", ...flags]);
    assert.equal(result.code, 2, result.stderr);
    assert.match(result.stderr, message);
  }
});
