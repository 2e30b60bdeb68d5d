/**
 * The quota and the journal of changed names shared by several servers on
 * one bucket (server/s3/s3_usage_ledger.ts, server/ledger_allowance.ts,
 * server/change_journal.ts), on a real engine (Ceph RGW): two real
 * servers, each with its own `S3Storage` on the same bucket, and real
 * clients. Uploads racing through both cannot together pass the quota, and
 * the refused ones leave nothing; the usage in the bucket follows puts,
 * replaces, removes and moves made through either; a hold that a killed
 * server left stops counting at its expiry; and a change made through one
 * server is in the other's answer of the names changed; and two real
 * `dfos serve --storage s3:// --quota` hold one quota for the real CLI.
 *
 * @module
 */

import assert from "node:assert/strict";
import { Quota } from "../server/quota.ts";
import { S3Storage, type S3StorageOptions } from "../server/s3/s3_storage.ts";
import type { DfosClient } from "../client/connection.ts";
import { DfosError, Status } from "../shared/status.ts";
import { randomBytes } from "./_common.ts";
import { connect, type Fixture, runCli, startServer, USERS, waitFor } from "./_fixture.ts";
import { s3Test, serveOnBucket, tellS3Ignored, type TestBucket } from "./_s3.ts";

tellS3Ignored("tests/s3_quota_test.ts");

const MiB = 1024 * 1024;
const OPTIONS: S3StorageOptions = { partBytes: 5 * MiB };

/** Two servers on one bucket (prefix `srv`), each with its own S3Storage and the quota given. */
async function twoServers(
  bucket: TestBucket,
  quotaBytes: number,
  options: S3StorageOptions = OPTIONS,
): Promise<{ storages: S3Storage[]; servers: Fixture[]; [Symbol.asyncDispose](): Promise<void> }> {
  const storages = [
    await S3Storage.open(bucket.store("srv"), options),
    await S3Storage.open(bucket.store("srv"), options),
  ];
  const servers: Fixture[] = [];
  for (const storage of storages) servers.push(await startServer({ storage, quotaBytes }));
  return {
    storages,
    servers,
    async [Symbol.asyncDispose]() {
      for (const server of servers) await server.shutdown();
    },
  };
}

/** Sends `bytes` as one body, its size announced or not. */
async function put(client: DfosClient, name: string, bytes: Uint8Array, announce = true): Promise<void> {
  await client.put(
    name,
    (async function* () {
      for (let at = 0; at < bytes.length; at += 64 * 1024) yield bytes.slice(at, at + 64 * 1024);
    })(),
    { size: announce ? bytes.length : null },
  );
}

/** The usage kept in the bucket equals a count of the files, and no hold is left. */
async function assertUsage(storage: S3Storage, user: string, what: string): Promise<void> {
  const kept = await storage.ledger.usage(user);
  assert.deepEqual(kept.used, await storage.usage(user), `${what}: the usage kept is the files' count`);
  assert.deepEqual(kept.reserved, { bytes: 0, entries: 0 }, `${what}: no hold left`);
}

s3Test("S3 quota: uploads racing through two servers cannot together pass the quota", async (bucket) => {
  const quota = 1_050_000;
  await using pair = await twoServers(bucket, quota);
  const clients = await Promise.all([0, 1, 2, 3, 4, 5, 6, 7].map((i) => connect(pair.servers[i % 2])));
  try {
    // Eight files of 200 kB, four through each server, half of unknown size: five at most fit.
    const bodies = clients.map(() => randomBytes(200_000));
    const results = await Promise.allSettled(
      clients.map((client, i) => put(client, `f${i}.bin`, bodies[i], i % 4 < 2)),
    );
    const stored = results.flatMap((result, i) => result.status === "fulfilled" ? [`f${i}.bin`] : []);
    for (const result of results) {
      if (result.status === "rejected") {
        assert.ok(result.reason instanceof DfosError, String(result.reason));
        assert.equal(result.reason.code, Status.TOO_LARGE, result.reason.message);
        assert.match(result.reason.message, /quota/, result.reason.message);
      }
    }
    assert.ok(stored.length >= 1 && stored.length <= 5, `between 1 and 5 stored: ${stored}`);
    // Nothing partial: exactly the files confirmed are there, whole.
    const [a, b] = pair.storages;
    const page = await b.list("alice", { prefix: "", after: "", limit: 100 });
    assert.deepEqual(page.entries.map((entry) => entry.name).sort(), stored.sort());
    for (const entry of page.entries) assert.equal(entry.size, 200_000);
    assert.ok((await a.usage("alice")).bytes <= quota, "within the quota");
    await waitFor(async () => (await a.ledger.usage("alice")).reserved.bytes === 0, "the refused uploads' holds go");
    await assertUsage(a, "alice", "after the race");
    assert.deepEqual(await bucket.store("srv").listMultipartUploads(""), [], "no multipart upload left");
    // The room left is what the two servers both see: one more file of the room left fits, one byte more does not.
    const free = quota - (await a.usage("alice")).bytes;
    await assert.rejects(put(clients[1], "over.bin", randomBytes(free + 1)), (error) => {
      return error instanceof DfosError && error.code === Status.TOO_LARGE;
    });
    await put(clients[0], "last.bin", randomBytes(free));
    await assertUsage(b, "alice", "full");
  } finally {
    for (const client of clients) await client.close();
  }
});

s3Test(
  "S3 quota: the usage in the bucket follows puts, replaces, removes and moves through either server",
  async (bucket) => {
    await using pair = await twoServers(bucket, 10 * MiB);
    const [viaA, viaB] = [await connect(pair.servers[0]), await connect(pair.servers[1])];
    const [a, b] = pair.storages;
    try {
      await put(viaA, "x", randomBytes(100_000));
      await assertUsage(b, "alice", "a put through A");
      await put(viaB, "x", randomBytes(300_000), false);
      await assertUsage(a, "alice", "a replace through B");
      await put(viaA, "dir/y", randomBytes(50_000));
      await put(viaB, "dir/w", randomBytes(0));
      await viaB.move("dir/y", "z");
      await assertUsage(a, "alice", "a move through B");
      await viaA.move("dir", "moved");
      await assertUsage(b, "alice", "a folder moved through A");
      await viaA.remove("x");
      await assertUsage(b, "alice", "a remove through A");
      assert.deepEqual((await a.ledger.usage("alice")).used, { bytes: 50_001, entries: 2 });
      // Another user's usage is their own.
      await using bob = {
        client: await connect(pair.servers[1], "bob"),
        [Symbol.asyncDispose]: () => bob.client.close(),
      };
      await put(bob.client, "b", randomBytes(10));
      assert.deepEqual((await a.ledger.usage("bob")).used, { bytes: 10, entries: 1 });
      assert.deepEqual((await a.ledger.usage("alice")).used, { bytes: 50_001, entries: 2 });
    } finally {
      await viaA.close();
      await viaB.close();
    }
  },
);

s3Test("S3 quota: a hold that a killed server left stops counting at its expiry", async (bucket) => {
  const holdMs = 4000;
  await using pair = await twoServers(bucket, 1_000_000, { ...OPTIONS, holdMs });
  // The "killed" server: its own S3Storage and quota hold room for an upload, and it is never heard of again.
  const killed = await S3Storage.open(bucket.store("srv"), { ...OPTIONS, holdMs });
  const held = await new Quota(killed, { quotaBytes: 1_000_000 }).reserve("alice", "big.bin", 900_000);
  void held; // neither committed nor released
  const client = await connect(pair.servers[1]);
  try {
    await assert.rejects(put(client, "f.bin", randomBytes(200_000)), (error) => {
      return error instanceof DfosError && error.code === Status.TOO_LARGE && /quota/.test(error.message);
    }, "refused while the hold lasts");
    assert.equal((await pair.storages[0].ledger.usage("alice")).reserved.bytes, 900_000);
    await waitFor(
      async () => (await pair.storages[0].ledger.usage("alice")).reserved.bytes === 0,
      "the hold expires",
      4 * holdMs,
    );
    await put(client, "f.bin", randomBytes(200_000));
    await assertUsage(pair.storages[0], "alice", "after the expiry");
  } finally {
    await client.close();
    await killed.abortUploads();
  }
});

s3Test(
  "S3 changedNames: a change through one server is in the other's answer, by storage and by protocol",
  async (bucket) => {
    await using pair = await twoServers(bucket, 0);
    const [a, b] = pair.storages;
    const viaA = await connect(pair.servers[0]);
    const viaB = await connect(pair.servers[1]);
    try {
      await put(viaA, "p/before", randomBytes(10));
      const since = await b.changes("alice");
      await put(viaA, "p/new", randomBytes(10));
      await put(viaB, "p/other", randomBytes(10));
      await viaA.remove("p/before");
      await put(viaA, "q/elsewhere", randomBytes(10));
      assert.deepEqual(await b.changedNames("alice", since, "p/"), ["p/new", "p/other", "p/before"]);
      assert.deepEqual(await a.changedNames("alice", since, "p/"), ["p/new", "p/other", "p/before"]);
      // The CHANGES request through B answers what changed through A.
      const answer = await viaB.changes({ ...since, prefix: "p/" });
      assert.deepEqual(answer.changed?.map((entry) => entry.name).sort(), ["p/new", "p/other"]);
      assert.deepEqual(answer.gone, ["p/before"]);
      // A folder moved through A makes B's answer for the prefix it reaches null: the client lists.
      await viaA.move("q", "p/q");
      assert.equal(await b.changedNames("alice", since, "p/"), null);
    } finally {
      await viaA.close();
      await viaB.close();
    }
  },
);

s3Test("two dfos serve --storage s3:// --quota on one bucket hold one quota for the real CLI", async (bucket) => {
  const dir = await Deno.makeTempDir({ prefix: "dfos_s3_quota_" });
  await Deno.writeTextFile(
    `${dir}/users.txt`,
    Object.entries(USERS).map(([user, password]) => `${user}:${password}\n`).join(""),
  );
  const servers: Awaited<ReturnType<typeof serveOnBucket>>[] = [];
  try {
    for (const name of ["a", "b"]) {
      servers.push(await serveOnBucket(bucket, dir, name, { flags: ["--quota", "300000"] }));
    }
    await Deno.writeFile(`${dir}/in.bin`, randomBytes(200_000));
    // B counts alice's usage first (a server keeping the sums in memory would not see A's put after).
    const small = await runCli(["put", "-", "small.bin"], { env: servers[1].env, stdin: "x" });
    assert.equal(small.code, 0, small.stderr);
    const first = await runCli(["put", `${dir}/in.bin`, "one.bin"], { env: servers[0].env });
    assert.equal(first.code, 0, first.stderr);
    // Through the other server, and of unknown size (standard input): the quota is the same one.
    const second = await runCli(["put", "-", "two.bin"], { env: servers[1].env, stdin: randomBytes(200_000) });
    assert.notEqual(second.code, 0, "over the quota through the other server");
    assert.match(second.stderr, /would go over alice's quota of 300000 bytes|went over alice's quota/, second.stderr);
    assert.equal(await bucket.store("dfos").head("alice/two.bin"), null, "nothing of it stays");
    // Removed through B, the room is free through A.
    const rm = await runCli(["rm", "one.bin"], { env: servers[1].env });
    assert.equal(rm.code, 0, rm.stderr);
    const third = await runCli(["put", "-", "two.bin"], { env: servers[0].env, stdin: randomBytes(250_000) });
    assert.equal(third.code, 0, third.stderr);
  } finally {
    for (const server of servers) server.child.kill("SIGTERM");
    for (const server of servers) await server.watch.ended;
    await Deno.remove(dir, { recursive: true });
  }
});
