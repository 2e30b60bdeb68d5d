/**
 * Several real `dfos serve --storage s3://...` processes on one bucket of a
 * real engine (Ceph RGW), driven by the real CLI: three servers with the
 * clients spread across them agree at once (put, get, rm, ls, push, pull);
 * an upload begun through one is resumed through another; a server killed
 * mid-upload leaves no visible object, its client a clear error, and a
 * multipart upload that the cleanup of another server aborts (never a live
 * upload of a third); and, on an engine of the test's own, the engine taken
 * down mid-transfer and brought up again: the transfers in flight fail
 * clearly, the server keeps running, what was stored stays whole, and the
 * same server serves again once the engine is back.
 *
 * @module
 */

import assert from "node:assert/strict";
import { join, relative } from "node:path";
import { DfosClient } from "../client/connection.ts";
import { S3Connection } from "../server/s3/s3_client.ts";
import { startS3Engine, stopS3Engine, switchS3Engine } from "../tools/s3_engine.ts";
import { seededBytes } from "./_common.ts";
import { delay, runCli, sha256, spawnCli, USERS, waitFor } from "./_fixture.ts";
import { CountingProxy } from "./_proxy.ts";
import {
  S3_IGNORE,
  type S3Engine,
  s3Test,
  type ServedOnBucket,
  serveOnBucket,
  tellS3Ignored,
  type TestBucket,
} from "./_s3.ts";

tellS3Ignored("tests/s3_multi_server_test.ts");

const MiB = 1024 * 1024;

/** A running `dfos serve` on the bucket. */
type Served = ServedOnBucket;

/** Writes the users file into `dir`. */
async function writeUsers(dir: string): Promise<void> {
  const lines = Object.entries(USERS).map(([user, password]) => `${user}:${password}\n`);
  await Deno.writeTextFile(join(dir, "users.txt"), lines.join(""));
}

/** Starts `names.length` servers on the bucket; if one fails, stops those started. */
async function serveMany(
  engine: S3Engine,
  bucket: string,
  dir: string,
  names: string[],
  flags: string[] = [],
): Promise<Served[]> {
  const servers: Served[] = [];
  try {
    for (const name of names) servers.push(await serveOnBucket({ name: bucket, engine }, dir, name, { flags }));
  } catch (error) {
    await stopAll(servers);
    throw error;
  }
  return servers;
}

/** Stops every server still running (SIGTERM) and waits for each. */
async function stopAll(servers: Served[]): Promise<void> {
  for (const server of servers) {
    try {
      server.child.kill("SIGTERM");
    } catch {
      // ended already (killed by the test)
    }
  }
  for (const server of servers) await server.watch.ended;
}

/** A temporary folder with the users file, removed after `fn`. */
async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "dfos_s3_multi_" });
  try {
    await writeUsers(dir);
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** The CLI run against `server`, which must succeed. */
async function ok(server: Served, args: string[], cwd?: string): Promise<string> {
  const result = await runCli(args, { env: server.env, cwd });
  assert.equal(result.code, 0, `dfos ${args.join(" ")} through ${server.address}: ${result.stderr}`);
  return new TextDecoder().decode(result.stdout);
}

/** Every file under `dir` by its path there, with its SHA-256. */
async function tree(dir: string): Promise<Record<string, string>> {
  const files: Record<string, string> = {};
  const walk = async (folder: string) => {
    for await (const entry of Deno.readDir(folder)) {
      const path = join(folder, entry.name);
      if (entry.isDirectory) await walk(path);
      else files[relative(dir, path)] = sha256(await Deno.readFile(path));
    }
  };
  await walk(dir);
  return Object.fromEntries(Object.entries(files).sort(([a], [b]) => a < b ? -1 : 1));
}

s3Test(
  "three dfos serve on one bucket: put through A, get through B, rm through C; ls and pull agree through each at once",
  async (bucket) => {
    await withDir(async (dir) => {
      const local = join(dir, "tree");
      await Deno.mkdir(join(local, "sub", "deep"), { recursive: true });
      await Deno.writeFile(join(local, "a.txt"), new TextEncoder().encode("hello\n"));
      await Deno.writeFile(join(local, "sub", "b.bin"), seededBytes(9 * MiB + 7, 1)); // multipart
      await Deno.writeFile(join(local, "sub", "deep", "c.bin"), seededBytes(1000, 2));
      const [a, b, c] = await serveMany(bucket.engine, bucket.name, dir, ["a", "b", "c"]);
      try {
        await ok(a, ["put", join(local, "sub", "b.bin"), "docs/b.bin"]);
        await ok(a, ["put", join(local, "a.txt"), "docs/a.txt"]);
        await ok(b, ["get", "docs/b.bin", join(dir, "b-through-b.bin")]);
        assert.equal(
          sha256(await Deno.readFile(join(dir, "b-through-b.bin"))),
          sha256(await Deno.readFile(join(local, "sub", "b.bin"))),
        );

        const listings = await Promise.all([a, b, c].map((server) => ok(server, ["ls"])));
        assert.match(listings[0], /docs\/a\.txt/);
        assert.match(listings[0], /docs\/b\.bin/);
        assert.deepEqual(listings, [listings[0], listings[0], listings[0]], "one listing through every server");
        const wanted = {
          "a.txt": sha256(new TextEncoder().encode("hello\n")),
          "b.bin": (await tree(local))["sub/b.bin"],
        };
        for (const [i, server] of [a, b, c].entries()) {
          await ok(server, ["pull", "docs", join(dir, `pull-${i}`)]);
          assert.deepEqual(await tree(join(dir, `pull-${i}`)), wanted, `pull through server ${i}`);
        }

        // Removed through C: gone through A and B at once, in ls, get and pull.
        await ok(c, ["rm", "docs/b.bin"]);
        for (const server of [a, b]) {
          assert.doesNotMatch(await ok(server, ["ls"]), /b\.bin/, `ls through ${server.address}`);
          const get = await runCli(["get", "docs/b.bin", join(dir, "none.bin")], { env: server.env });
          assert.equal(get.code, 4, get.stderr);
          assert.match(get.stderr, /no such file/);
        }
        for (const [i, server] of [a, b, c].entries()) {
          await ok(server, ["pull", "--delete", "docs", join(dir, `pull-${i}`)]);
          assert.deepEqual(
            await tree(join(dir, `pull-${i}`)),
            { "a.txt": wanted["a.txt"] },
            `pull through server ${i}`,
          );
        }

        // A tree pushed through A is pulled through C the same.
        await ok(a, ["push", local, "proj"]);
        await ok(c, ["pull", "proj", join(dir, "proj-through-c")]);
        assert.deepEqual(await tree(join(dir, "proj-through-c")), await tree(local));
      } finally {
        await stopAll([a, b, c]);
      }
    });
  },
);

/** True once the server at `address` knows (HAVE) the first chunk of `path`: it kept what an upload sent. */
async function keptStart(address: string, path: string): Promise<boolean> {
  const { localChunkList } = await import("../client/local_chunks.ts");
  const { entries } = await localChunkList(path);
  const client = await DfosClient.connect({ server: address, user: "alice", password: USERS.alice });
  try {
    return (await client.have([entries[0].hash]))[0];
  } finally {
    await client.close();
  }
}

s3Test("put --resume interrupted through server A is resumed through server B with the CLI", async (bucket) => {
  await withDir(async (dir) => {
    const body = seededBytes(24 * MiB, 3);
    const path = join(dir, "big.bin");
    await Deno.writeFile(path, body);
    const [a, b] = await serveMany(bucket.engine, bucket.name, dir, ["a", "b"]);
    await using toA = new CountingProxy(a.watch.port);
    await using toB = new CountingProxy(b.watch.port);
    try {
      // B builds its chunk index now, before A keeps anything: it must still learn of what A keeps.
      assert.equal(await keptStart(b.address, path), false);
      toA.gate = { direction: "up", after: 12 * MiB };
      const child = spawnCli(["put", "--resume", "big.bin"], { env: { ...a.env, DFOS_SERVER: toA.address }, cwd: dir });
      await child.stdin.close();
      const output = child.output();
      try {
        await waitFor(() => toA.up >= 12 * MiB, "the put to get half-way", 60_000);
      } finally {
        child.kill("SIGKILL");
      }
      assert.notEqual((await output).code, 0, "the client was killed, not done");
      await waitFor(() => keptStart(b.address, path), "server B to see the upload A kept", 30_000).catch(
        async (error) => {
          throw new Error(`${error.message}; server A's log:\n${await Deno.readTextFile(join(dir, "a.log"))}`);
        },
      );

      await ok({ ...b, env: { ...b.env, DFOS_SERVER: toB.address } }, ["put", "--resume", "big.bin"], dir);
      assert.ok(toB.up < 14 * MiB, `the resumed put through B sent ${toB.up} bytes of ${24 * MiB}`);
      assert.ok(toB.up > 8 * MiB, `the resumed put through B sent ${toB.up} bytes: the rest must go`);
      const object = await bucket.store("dfos").head("alice/big.bin");
      assert.equal(object?.size, body.length);
      await ok(a, ["get", "big.bin", join(dir, "back.bin")]);
      assert.equal(sha256(await Deno.readFile(join(dir, "back.bin"))), sha256(body), "whole, read through A");
      assert.deepEqual(await bucket.store("dfos").listMultipartUploads(""), [], "no multipart upload left");
    } finally {
      await stopAll([a, b]);
    }
  });
});

/** The keys of the bucket's open multipart uploads under `dfos/`, with when each began. */
async function openUploads(bucket: TestBucket): Promise<{ key: string; initiated: number }[]> {
  const uploads = await bucket.store("dfos").listMultipartUploads("");
  return uploads.map(({ key, initiated }) => ({ key, initiated })).sort((x, y) => x.key < y.key ? -1 : 1);
}

s3Test(
  "a server killed mid-upload: no object, a clear client error; another's start-up cleanup aborts its upload, not a live one older still",
  async (bucket) => {
    await withDir(async (dir) => {
      const body = seededBytes(48 * MiB, 4);
      await Deno.writeFile(join(dir, "big.bin"), body);
      const [a, b] = await serveMany(bucket.engine, bucket.name, dir, ["a", "b"]);
      await using toA = new CountingProxy(a.watch.port);
      let live: DfosClient | null = null;
      try {
        // The put stalls after 30 MiB (the proxy drops the rest): A has sent parts of a multipart upload.
        toA.gate = { direction: "up", after: 30 * MiB };
        const put = runCli(["put", "big.bin"], { env: { ...a.env, DFOS_SERVER: toA.address }, cwd: dir });
        await waitFor(async () => (await openUploads(bucket)).length === 1, "A's multipart upload", 60_000);
        Deno.kill(a.child.pid, "SIGKILL");
        assert.equal((await a.watch.ended).status.signal, "SIGKILL");
        const failed = await put;
        assert.equal(failed.code, 1, failed.stderr);
        assert.match(failed.stderr, /^dfos put: Connection closed by the peer$/m);

        const [dead] = await openUploads(bucket);
        assert.equal(dead.key, "alice/big.bin", "the killed server's multipart upload is left");
        assert.doesNotMatch(await ok(b, ["ls"]), /big\.bin/, "no object shows through B");
        const stat = await runCli(["stat", "big.bin"], { env: b.env });
        assert.equal(stat.code, 4, stat.stderr);
        assert.equal(await bucket.store("dfos").head("alice/big.bin"), null);

        // A live upload through B, begun before the dead one is old, held open part-way: older than the cleanup's
        // bound when the cleanup comes, but it took a part just before.
        live = await DfosClient.connect({ server: b.address, user: "alice", password: USERS.alice });
        let moreParts!: () => void;
        const more = new Promise<void>((resolve) => moreParts = resolve);
        let release!: () => void;
        const released = new Promise<void>((resolve) => release = resolve);
        const liveBody = seededBytes(28 * MiB, 5);
        const livePut = live.put(
          "live.bin",
          (async function* () {
            yield liveBody.subarray(0, 12 * MiB); // one 8 MiB part sent, 4 MiB waiting
            await more;
            yield liveBody.subarray(12 * MiB, 20 * MiB); // a second part
            await released;
            yield liveBody.subarray(20 * MiB);
          })(),
          { size: liveBody.length },
        );
        await waitFor(async () => (await openUploads(bucket)).length === 2, "B's live multipart upload", 30_000);
        const liveUpload = (await openUploads(bucket)).find(({ key }) => key === "alice/live.bin")!;
        const bound = 8000;
        await waitFor(() => Date.now() - liveUpload.initiated > bound + 4000, "both uploads to age", 30_000);
        moreParts();
        const store = bucket.store("dfos");
        const uploadId = (await store.listMultipartUploads("")).find(({ key }) => key === "alice/live.bin")!.uploadId;
        await waitFor(
          async () => (await store.listParts("alice/live.bin", uploadId)).length === 2,
          "a new part",
          30_000,
        );

        // A third server, started with --s3-stale-upload 8s: its start-up cleanup (done before it serves) aborts
        // the upload that moved nothing for longer, and leaves the live one, begun as long ago, that just moved.
        const [c] = await serveMany(bucket.engine, bucket.name, dir, ["c"], ["--s3-stale-upload", `${bound / 1000}s`]);
        try {
          assert.deepEqual((await openUploads(bucket)).map(({ key }) => key), ["alice/live.bin"]);
        } finally {
          await stopAll([c]);
        }
        release();
        await livePut;
        await ok(b, ["get", "live.bin", join(dir, "live.bin")]);
        assert.equal(sha256(await Deno.readFile(join(dir, "live.bin"))), sha256(liveBody), "the live upload whole");
        assert.deepEqual(await openUploads(bucket), []);
      } finally {
        await live?.close();
        await stopAll([a, b]);
      }
    });
  },
);

/** Reads from `reader` until `bytes` have come, and returns how many came. */
async function readAtLeast(reader: ReadableStreamDefaultReader<Uint8Array>, bytes: number): Promise<number> {
  let got = 0;
  while (got < bytes) {
    const { value, done } = await reader.read();
    if (done) break;
    got += value.length;
  }
  return got;
}

Deno.test({
  name: "the engine taken down mid-transfer and brought up again: clear errors, nothing lost, the same server serves",
  ignore: S3_IGNORE !== null,
  async fn() {
    const started = await startS3Engine();
    if (typeof started === "string") throw new Error(`Cannot start an S3 engine for the test: ${started}`);
    const engine: S3Engine = {
      endpoint: started.env.S3_ENDPOINT,
      region: started.env.S3_REGION || "us-east-1",
      credentials: {
        accessKeyId: started.env.S3_ACCESS_KEY,
        secretAccessKey: started.env.S3_SECRET_KEY,
        source: "the test's engine",
      },
    };
    try {
      const connection = new S3Connection(
        { bucket: "outage", prefix: "", endpoint: engine.endpoint, region: engine.region },
        engine.credentials,
      );
      await (await connection.request({ method: "PUT", operation: "CreateBucket" })).body?.cancel();
      await withDir(async (dir) => {
        const kept = seededBytes(9 * MiB + 1, 6);
        const large = seededBytes(96 * MiB, 7);
        await Deno.writeFile(join(dir, "kept.bin"), kept);
        await Deno.writeFile(join(dir, "large.bin"), large);
        const [server] = await serveMany(engine, "outage", dir, ["a"]);
        let ended = false;
        server.watch.ended.then(() => ended = true);
        try {
          await ok(server, ["put", "kept.bin"], dir);
          await ok(server, ["put", "large.bin"], dir);

          // A put from standard input, 20 MiB sent; a get to standard output, 1 MiB read.
          const putting = spawnCli(["put", "-", "inflight.bin"], { env: server.env });
          const writer = putting.stdin.getWriter();
          const putBody = seededBytes(48 * MiB, 8);
          await writer.write(putBody.subarray(0, 20 * MiB));
          const getting = spawnCli(["get", "--no-resume", "large.bin", "-"], { env: server.env });
          await getting.stdin.close();
          const reader = getting.stdout.getReader();
          const getStderr = new Response(getting.stderr).text();
          assert.ok(await readAtLeast(reader, MiB) >= MiB);

          await switchS3Engine(started, "down");
          await writer.write(putBody.subarray(20 * MiB)).catch(() => {}); // the client may have ended
          await writer.close().catch(() => {});
          const put = await putting.output();
          let got = MiB;
          got += await readAtLeast(reader, Infinity);
          reader.releaseLock();
          const get = { code: (await getting.status).code, stderr: await getStderr };

          assert.equal(put.code, 1, new TextDecoder().decode(put.stderr));
          assert.match(
            new TextDecoder().decode(put.stderr),
            /^dfos put: Cannot store "inflight\.bin": the object store s3:\/\/outage\/dfos is unavailable/m,
          );
          assert.equal(get.code, 1, get.stderr);
          assert.ok(got < large.length, `the get ended short (${got} bytes)`);
          assert.match(get.stderr, /Cannot read "large\.bin": the object store s3:\/\/outage\/dfos is unavailable/);
          const ls = await runCli(["ls"], { env: server.env });
          assert.equal(ls.code, 1, ls.stderr);
          assert.match(ls.stderr, /object store .* is unavailable/);
          assert.equal(ended, false, "the server keeps running with its store gone");

          await switchS3Engine(started, "up");
          await waitFor(
            async () => (await runCli(["ls"], { env: server.env })).code === 0,
            "the server to serve",
            30_000,
          );
          assert.equal(ended, false, "the same server");
          await ok(server, ["get", "kept.bin", join(dir, "kept-back.bin")]);
          assert.equal(sha256(await Deno.readFile(join(dir, "kept-back.bin"))), sha256(kept), "stored before: whole");
          await ok(server, ["get", "large.bin", join(dir, "large-back.bin")]);
          assert.equal(
            sha256(await Deno.readFile(join(dir, "large-back.bin"))),
            sha256(large),
            "read in flight: whole",
          );
          const none = await runCli(["stat", "inflight.bin"], { env: server.env });
          assert.equal(none.code, 4, "the put cut by the outage stored nothing");
          await ok(server, ["put", join(dir, "kept.bin"), "after.bin"]);
          await ok(server, ["get", "after.bin", join(dir, "after-back.bin")]);
          assert.equal(sha256(await Deno.readFile(join(dir, "after-back.bin"))), sha256(kept), "put and get again");
        } finally {
          await stopAll([server]);
        }
      });
    } finally {
      await stopS3Engine(started);
    }
    await delay(0);
  },
});
