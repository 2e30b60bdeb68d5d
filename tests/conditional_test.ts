/**
 * The conditions of `dfos sync` on the wire (docs/PROTOCOL.md "Sync"):
 * `assemble.ifRoot`, `delete.ifRoot`, `move.ifRoot`, through real servers
 * and real clients. Each case is the race or the stale write itself: two
 * clients that read the same root and store at once (exactly one wins, its
 * file whole), a new name stored by two at once, a delete or move of a
 * version no longer there, a file changed while an assemble's body was
 * coming (refused at the commit), and a refused assemble followed by
 * pipelined requests that must still be answered in turn. Run on a server
 * on the local disk, and on two `dfos serve` processes sharing one S3
 * bucket, the clients on different servers.
 *
 * @module
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { uploadFile } from "../client/chunk_upload.ts";
import type { DfosClient } from "../client/connection.ts";
import { memoryChunks } from "../client/local_chunks.ts";
import { concatBytes } from "../shared/concat_bytes.ts";
import { dataStepHeader } from "../shared/recipe.ts";
import { DfosError, Status } from "../shared/status.ts";
import { seededBytes, sha256 } from "./_common.ts";
import { connect, startServer, storeFile, USERS } from "./_fixture.ts";
import { S3_IGNORE, serveOnBucket, tellS3Ignored, withBucket } from "./_s3.ts";

tellS3Ignored("tests/conditional_test.ts");

const MiB = 1024 * 1024;

/** Where a case runs: the addresses of the servers its two clients use (one server twice, or two), and a folder. */
interface Place {
  /** The first client's server. */
  a: string;
  /** The second client's server (another one sharing the store, or the same). */
  b: string;
  /** A folder for local files. */
  local: string;
}

/** A connection as alice to `address`, asserted to have negotiated the conditions. */
async function login(address: string): Promise<DfosClient> {
  const client = await connect({ address });
  assert.ok(client.sync && client.chunks, "the server takes conditions");
  return client;
}

/** The remote file's bytes, read through a fresh connection, or null when there is none. */
async function remote(address: string, name: string): Promise<Uint8Array | null> {
  const client = await connect({ address });
  try {
    const { body } = await client.get(name);
    const pieces: Uint8Array[] = [];
    for await (const piece of body.chunks()) pieces.push(piece.slice());
    return concatBytes(pieces);
  } catch (error) {
    if (error instanceof DfosError && error.code === Status.NOT_FOUND) return null;
    throw error;
  } finally {
    await client.close();
  }
}

/** Stores `bytes` as `name` through a fresh connection (no condition), and returns its root as the server says it. */
async function store(address: string, name: string, bytes: Uint8Array): Promise<string> {
  await storeFile({ address }, name, bytes);
  const client = await connect({ address });
  try {
    return (await client.groups(name)).root;
  } finally {
    await client.close();
  }
}

/** Writes a local file and returns what `uploadFile` takes. */
async function localFile(dir: string, name: string, bytes: Uint8Array) {
  const path = join(dir, name);
  await Deno.writeFile(path, bytes);
  const info = await Deno.stat(path);
  return { path, size: info.size, mtime: info.mtime!.getTime() };
}

/**
 * A recipe of data steps for `bytes`; with a `gate`, it says when it reaches
 * the first chunk at `gate.at` bytes or after, and waits for `gate.open`
 * before sending it.
 */
async function* recipe(
  bytes: Uint8Array,
  chunks: { offset: number; length: number }[],
  gate?: { at: number; open: Promise<void>; reached: () => void },
): AsyncGenerator<Uint8Array> {
  let waited = gate === undefined;
  for (const { offset, length } of chunks) {
    if (!waited && offset >= gate!.at) {
      waited = true;
      gate!.reached();
      await gate!.open;
    }
    yield concatBytes([dataStepHeader(length), bytes.subarray(offset, offset + length)]);
  }
}

/** Asserts a refusal as a condition's: `CONFLICT`, "changed on the server since it was read". */
function assertChanged(error: unknown, action: string, name: string): void {
  assert.ok(error instanceof DfosError, `a DfosError: ${error}`);
  assert.equal(error.code, Status.CONFLICT, error.message);
  assert.equal(error.message, `Cannot ${action} "${name}": changed on the server since it was read`);
}

/** Of two racing results, exactly one went through, the other refused as changed: the winner's index. */
function oneWinner(results: PromiseSettledResult<unknown>[], action: string, name: string): number {
  const won = results.flatMap((result, i) => result.status === "fulfilled" ? [i] : []);
  assert.equal(won.length, 1, `exactly one of ${results.length} stores (${won.length} did)`);
  for (const result of results) if (result.status === "rejected") assertChanged(result.reason, action, name);
  return won[0];
}

/** The cases, each run on a `Place`. */
const CASES: [string, (place: Place) => Promise<void>][] = [
  [
    "two clients assemble at once on the root both read: exactly one stores, whole, the other is CONFLICT",
    async ({ a, b, local }) => {
      const base = seededBytes(2 * MiB + 17, 1);
      const root = await store(a, "doc.bin", base);
      assert.equal(root, (await memoryChunks(base)).root, "the root a client computes is the server's");
      const edits = [seededBytes(3 * MiB + 1, 2), seededBytes(3 * MiB + 2, 3)];
      const clients = await Promise.all([login(a), login(b)]);
      try {
        const files = await Promise.all(edits.map((bytes, i) => localFile(local, `edit${i}`, bytes)));
        const results = await Promise.allSettled(
          clients.map((client, i) => uploadFile(client, files[i], "doc.bin", { ifRoot: root, replaces: true })),
        );
        const winner = oneWinner(results, "store", "doc.bin");
        assert.equal(sha256((await remote(a, "doc.bin"))!), sha256(edits[winner]), "the winner's file, whole");
        // The loser, told, stores nothing on its stale root again; on the root it sees now it goes through.
        const loser = 1 - winner;
        await assert.rejects(uploadFile(clients[loser], files[loser], "doc.bin", { ifRoot: root }), (error) => {
          assertChanged(error, "store", "doc.bin");
          return true;
        });
        const now = (await clients[loser].groups("doc.bin")).root;
        await uploadFile(clients[loser], files[loser], "doc.bin", { ifRoot: now });
        assert.equal(sha256((await remote(b, "doc.bin"))!), sha256(edits[loser]));
      } finally {
        await Promise.all(clients.map((client) => client.close()));
      }
    },
  ],

  ["two clients store a new name at once on ifRoot null: exactly one stores", async ({ a, b, local }) => {
    const edits = [seededBytes(1 * MiB + 5, 4), seededBytes(1 * MiB + 6, 5)];
    const clients = await Promise.all([login(a), login(b)]);
    try {
      const files = await Promise.all(edits.map((bytes, i) => localFile(local, `new${i}`, bytes)));
      const results = await Promise.allSettled(
        clients.map((client, i) => uploadFile(client, files[i], "new/n.bin", { ifRoot: null })),
      );
      const winner = oneWinner(results, "store", "new/n.bin");
      assert.equal(sha256((await remote(b, "new/n.bin"))!), sha256(edits[winner]));
    } finally {
      await Promise.all(clients.map((client) => client.close()));
    }
  }],

  [
    "delete and move on a stale root are CONFLICT and change nothing; on the current root they are made",
    async ({ a, b }) => {
      const first = seededBytes(100_000, 6);
      const stale = await store(a, "f.txt", first);
      const second = seededBytes(100_001, 7);
      const current = await store(b, "f.txt", second);
      const client = await login(b);
      try {
        await assert.rejects(client.remove("f.txt", { ifRoot: stale }), (error) => {
          assertChanged(error, "remove", "f.txt");
          return true;
        });
        await assert.rejects(client.move("f.txt", "g.txt", { ifRoot: stale }), (error) => {
          assertChanged(error, "move", "f.txt");
          return true;
        });
        await assert.rejects(client.remove("f.txt", { ifRoot: "not a root" }), (error) => {
          assert.ok(error instanceof DfosError && error.code === Status.BAD_REQUEST, String(error));
          return true;
        });
        assert.equal(sha256((await remote(a, "f.txt"))!), sha256(second), "the file stays");
        assert.equal(await remote(a, "g.txt"), null, "nothing moved");
        const moved = await client.move("f.txt", "g.txt", { ifRoot: current });
        assert.equal(moved.files, 1);
        assert.equal(sha256((await remote(a, "g.txt"))!), sha256(second));
        await assert.rejects(client.remove("f.txt", { ifRoot: current }), (error) => {
          assert.ok(error instanceof DfosError && error.code === Status.NOT_FOUND, String(error));
          return true;
        });
        assert.equal((await client.remove("g.txt", { ifRoot: current })).size, second.length);
        assert.equal(await remote(a, "g.txt"), null);
      } finally {
        await client.close();
      }
    },
  ],

  [
    "an assemble refused on its condition at once is dropped whole, and the requests pipelined after it are answered",
    async ({ a, b }) => {
      const stale = await store(a, "p.bin", seededBytes(5000, 8));
      await store(b, "p.bin", seededBytes(5001, 9));
      const big = seededBytes(8 * MiB + 3, 10);
      const bigFile = await memoryChunks(big);
      const other = seededBytes(300_000, 11);
      const otherFile = await memoryChunks(other);
      const client = await login(a);
      try {
        const refused = client.assemble(
          {
            name: "p.bin",
            size: big.length,
            mtime: 1,
            root: bigFile.root,
            chunks: bigFile.chunks.length,
            ifRoot: stale,
          },
          recipe(big, bigFile.chunks),
        );
        const next = client.assemble(
          { name: "q.bin", size: other.length, mtime: 2, root: otherFile.root, chunks: otherFile.chunks.length },
          recipe(other, otherFile.chunks),
        );
        const known = client.have(otherFile.chunks.map((chunk) => chunk.hash));
        await assert.rejects(refused, (error) => {
          assertChanged(error, "store", "p.bin");
          return true;
        });
        assert.equal((await next).size, other.length);
        assert.deepEqual(await known, otherFile.chunks.map(() => true));
        assert.equal((await client.stat("p.bin")).size, 5001, "the file it would have replaced stays");
        assert.equal(sha256((await remote(b, "q.bin"))!), sha256(other));
      } finally {
        await client.close();
      }
    },
  ],

  [
    "an assemble whose file is replaced while its body comes is refused at its commit; its connection goes on",
    async ({ a, b, local }) => {
      const read = await store(a, "r.bin", seededBytes(7000, 12));
      // 16 MiB before the wait: more than the sockets hold, so the server has taken the body (and checked the
      // condition, which held then) when the other client stores its edit.
      const slow = seededBytes(20 * MiB + 9, 13);
      const slowFile = await memoryChunks(slow);
      const reached = Promise.withResolvers<void>();
      const open = Promise.withResolvers<void>();
      const client = await login(a);
      const rival = await login(b);
      try {
        const slowUpload = client.assemble(
          {
            name: "r.bin",
            size: slow.length,
            mtime: 3,
            root: slowFile.root,
            chunks: slowFile.chunks.length,
            ifRoot: read,
          },
          recipe(slow, slowFile.chunks, { at: 16 * MiB, open: open.promise, reached: reached.resolve }),
        );
        slowUpload.catch(() => {});
        await reached.promise;
        const edit = seededBytes(9000, 14);
        await uploadFile(rival, await localFile(local, "rival", edit), "r.bin", { ifRoot: read });
        open.resolve();
        await assert.rejects(slowUpload, (error) => {
          assertChanged(error, "store", "r.bin");
          return true;
        });
        assert.equal(sha256((await remote(a, "r.bin"))!), sha256(edit), "the rival's edit stays, whole");
        // The same connection goes on: a request after the refusal is answered.
        assert.equal((await client.stat("r.bin")).size, edit.length);
      } finally {
        open.resolve();
        await Promise.all([client.close(), rival.close()]);
      }
    },
  ],
];

for (const [name, run] of CASES) {
  Deno.test(`conditions, local disk: ${name}`, async () => {
    await using fx = await startServer();
    await run({ a: fx.address, b: fx.address, local: fx.local });
  });
}

for (const [name, run] of CASES) {
  Deno.test({
    name: `conditions, two servers on one S3 bucket: ${name}`,
    ignore: S3_IGNORE !== null,
    fn: () =>
      withBucket(async (bucket) => {
        const dir = await Deno.makeTempDir({ prefix: "dfos_cond_s3_" });
        const servers = [];
        try {
          await Deno.writeTextFile(join(dir, "users.txt"), `alice:${USERS.alice}\n`);
          for (const name of ["one", "two"]) servers.push(await serveOnBucket(bucket, dir, name));
          await run({ a: servers[0].address, b: servers[1].address, local: dir });
        } finally {
          for (const server of servers) {
            server.child.kill("SIGTERM");
            await server.watch.ended;
          }
          await Deno.remove(dir, { recursive: true });
        }
      }),
  });
}
