/**
 * The chunk requests (docs/PROTOCOL.md "Chunks") on raw sockets against a
 * real server: the welcome's features, the change counter, `have`,
 * `assemble` (copies, sent chunks, bad recipes, kept and resumed uploads,
 * ABORT, the quota, the `--partial-ttl` sweep), and `groups`,
 * `group-chunks` and `read` reconstructing a file.
 *
 * @module
 */

import { deepStrictEqual, match, ok, strictEqual } from "node:assert/strict";
import { sendBody } from "../shared/body.ts";
import {
  type ChunkEntry,
  decodeChunkEntries,
  decodeGroupEntries,
  encodeRanges,
  isSet,
  joinKeys,
  toHex,
} from "../shared/chunk_list.ts";
import { groupsOf, rootOf } from "../shared/chunk_groups.ts";
import { chunkHashes } from "../shared/chunker.ts";
import { FEATURE_CHUNKS, MAX_HAVE_KEYS } from "../shared/messages.ts";
import { bytesOf } from "../shared/pooled_bytes.ts";
import { chunkStep, dataStepHeader, groupStep } from "../shared/recipe.ts";
import { Status } from "../shared/status.ts";
import { seededBytes, sha256 } from "./_common.ts";
import { serve } from "../server/server.ts";
import { startServer, waitFor } from "./_fixture.ts";
import { concat, HELLO, once, Peer } from "./_peer.ts";

const MiB = 1024 * 1024;

/** A chunk of a local file, with its bytes. */
interface Chunk extends ChunkEntry {
  bytes: Uint8Array;
}

/** Cuts bytes as the protocol does. */
async function chunksOf(bytes: Uint8Array): Promise<Chunk[]> {
  const chunks: Chunk[] = [];
  for await (const chunk of chunkHashes([bytes])) {
    chunks.push({
      hash: Uint8Array.from(chunk.sha256.match(/../g)!.map((hex) => parseInt(hex, 16))),
      length: chunk.length,
      bytes: bytes.subarray(chunk.offset, chunk.offset + chunk.length),
    });
  }
  return chunks;
}

/** Asks `have` about keys (in batches of at most MAX_HAVE_KEYS). */
async function have(peer: Peer, keys: Uint8Array[]): Promise<boolean[]> {
  const known: boolean[] = [];
  for (let at = 0; at < keys.length; at += MAX_HAVE_KEYS) {
    const batch = keys.slice(at, at + MAX_HAVE_KEYS);
    await peer.send({ type: "have", keys: joinKeys(batch) });
    const reply = await peer.expect("known");
    for (let i = 0; i < batch.length; i++) known.push(isSet(reply.bits, i));
  }
  return known;
}

/** A recipe's bytes and how many of them are file bytes sent. */
interface Recipe {
  steps: Uint8Array[];
  dataBytes: number;
  /** Group steps in it. */
  groups: number;
}

/** A recipe of the chunks: group steps for known groups, chunk steps for known chunks, data for the rest. */
async function planRecipe(peer: Peer | null, chunks: Chunk[]): Promise<Recipe> {
  const groups = groupsOf(chunks);
  const groupKnown = peer === null || groups.length === 0 ? groups.map(() => false) : await have(
    peer,
    groups.map((group) => group.key),
  );
  const chunkKnown = peer === null || chunks.length === 0
    ? chunks.map(() => false)
    : await have(peer, chunks.map((chunk) => chunk.hash));
  const steps: Uint8Array[] = [];
  let dataBytes = 0;
  let groupSteps = 0;
  let at = 0;
  groups.forEach((group, g) => {
    if (groupKnown[g]) {
      steps.push(groupStep(group.key));
      groupSteps++;
    } else {
      for (let i = at; i < at + group.chunks; i++) {
        if (chunkKnown[i]) {
          steps.push(chunkStep(chunks[i].hash, chunks[i].length));
        } else {
          steps.push(dataStepHeader(chunks[i].length), chunks[i].bytes);
          dataBytes += chunks[i].length;
        }
      }
    }
    at += group.chunks;
  });
  return { steps, dataBytes, groups: groupSteps };
}

/** Sends an `assemble` of `bytes` under `name` with its recipe; returns the reply (OK or ERROR). */
async function assemble(
  peer: Peer,
  name: string,
  bytes: Uint8Array,
  chunks: Chunk[],
  steps: Uint8Array[],
  announce: Partial<{ size: number; root: string; chunks: number }> = {},
) {
  await peer.send({
    type: "assemble",
    name,
    size: announce.size ?? bytes.length,
    mtime: 1_700_000_000_000,
    root: announce.root ?? rootOf(chunks),
    chunks: announce.chunks ?? chunks.length,
  });
  await sendBody(peer.channel, once(concat(steps)));
  return await peer.expect("ok", "error");
}

/** Reads a reply's body (DATA frames and END). */
async function receiveBody(peer: Peer): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  while (true) {
    const message = await peer.expect("data", "end");
    if (message.type === "end") return concat(parts);
    parts.push(bytesOf(message.chunk).slice());
  }
}

/** The change counter. */
async function counter(peer: Peer) {
  await peer.send({ type: "changes" });
  return await peer.expect("counter");
}

Deno.test("welcome lists the chunks feature only to a client that asked", async () => {
  await using fx = await startServer();
  const asking = await Peer.open(fx);
  await asking.send({ ...HELLO, features: [FEATURE_CHUNKS] });
  deepStrictEqual((await asking.expect("welcome")).features, [FEATURE_CHUNKS]);
  asking.abort();
  const older = await Peer.open(fx);
  await older.send(HELLO);
  strictEqual((await older.expect("welcome")).features, undefined);
  older.abort();
});

Deno.test("changes counts every change, and mine those of the session", async () => {
  await using fx = await startServer();
  const peer = await Peer.login(fx);
  const other = await Peer.login(fx);
  try {
    const start = await counter(peer);
    strictEqual(start.mine, 0);
    await peer.put("a.bin", seededBytes(1000, 1));
    await peer.send({ type: "move", from: "a.bin", to: "b.bin" });
    await peer.expect("moved");
    const bytes = seededBytes(300_000, 2);
    const chunks = await chunksOf(bytes);
    strictEqual((await assemble(peer, "c.bin", bytes, chunks, (await planRecipe(null, chunks)).steps)).type, "ok");
    await other.put("d.bin", seededBytes(10, 3));
    await peer.send({ type: "delete", name: "b.bin" });
    await peer.expect("ok");
    const now = await counter(peer);
    strictEqual(now.epoch, start.epoch);
    strictEqual(now.mine, 4);
    strictEqual(now.counter, start.counter + 5);
    strictEqual((await counter(other)).mine, 1);
  } finally {
    peer.abort();
    other.abort();
  }
});

Deno.test("have knows nothing of an empty store, then what an assemble stored; a second assemble copies", async () => {
  await using fx = await startServer();
  const peer = await Peer.login(fx);
  try {
    const first = seededBytes(4 * MiB, 11);
    const chunks = await chunksOf(first);
    const keys = [...chunks.map((chunk) => chunk.hash), ...groupsOf(chunks).map((group) => group.key)];
    deepStrictEqual(await have(peer, keys), keys.map(() => false));
    const plan = await planRecipe(peer, chunks);
    strictEqual(plan.dataBytes, first.length);
    deepStrictEqual(await assemble(peer, "one.bin", first, chunks, plan.steps), {
      type: "ok",
      name: "one.bin",
      size: first.length,
    });
    deepStrictEqual(await have(peer, keys), keys.map(() => true));
    strictEqual(sha256(await peer.get("one.bin")), sha256(first));

    // An edit in the middle: the second file is mostly copied.
    const second = concat([first.subarray(0, 2 * MiB), seededBytes(5000, 12), first.subarray(2 * MiB)]);
    const secondChunks = await chunksOf(second);
    const again = await planRecipe(peer, secondChunks);
    ok(again.dataBytes < second.length / 4, `sent ${again.dataBytes} of ${second.length} bytes`);
    ok(again.groups > 0, "a group copied whole");
    deepStrictEqual(await assemble(peer, "two.bin", second, secondChunks, again.steps), {
      type: "ok",
      name: "two.bin",
      size: second.length,
    });
    strictEqual(sha256(await peer.get("two.bin")), sha256(second));

    await peer.send({ type: "have", keys: new Uint8Array(0) });
    await peer.expectError(Status.BAD_REQUEST);
    await peer.send({ type: "have", keys: new Uint8Array(32 * (MAX_HAVE_KEYS + 1)) });
    await peer.expectError(Status.BAD_REQUEST);
  } finally {
    peer.abort();
  }
});

Deno.test("groups, group-chunks and read give back the file; a replaced version is a CONFLICT", async () => {
  await using fx = await startServer();
  const peer = await Peer.login(fx);
  try {
    const bytes = seededBytes(3 * MiB + 777, 21);
    await peer.put("f.bin", bytes);
    const chunks = await chunksOf(bytes);
    await peer.send({ type: "groups", name: "f.bin" });
    const list = await peer.expect("group-list");
    strictEqual(list.size, bytes.length);
    strictEqual(list.root, rootOf(chunks));
    const groups = decodeGroupEntries(await receiveBody(peer))!;
    strictEqual(groups.length, list.count);
    deepStrictEqual(groups, groupsOf(chunks));

    await peer.send({ type: "group-chunks", name: "f.bin", version: list.version, first: 0, count: groups.length });
    const chunkList = await peer.expect("chunk-list");
    const entries = decodeChunkEntries(await receiveBody(peer))!;
    strictEqual(chunkList.count, entries.length);
    deepStrictEqual(entries.map((entry) => toHex(entry.hash)), chunks.map((chunk) => toHex(chunk.hash)));

    const ranges = [];
    let offset = 0;
    for (const entry of entries) {
      ranges.push({ offset, length: entry.length });
      offset += entry.length;
    }
    await peer.send({ type: "read", name: "f.bin", version: list.version, ranges: encodeRanges(ranges) });
    strictEqual((await peer.expect("file")).size, bytes.length);
    strictEqual(sha256(await receiveBody(peer)), sha256(bytes));

    await peer.send({
      type: "group-chunks",
      name: "f.bin",
      version: list.version,
      first: groups.length,
      count: 1,
    });
    await peer.expectError(Status.BAD_REQUEST);
    await peer.send({
      type: "read",
      name: "f.bin",
      version: list.version,
      ranges: encodeRanges([{ offset: bytes.length - 1, length: 2 }]),
    });
    await peer.expectError(Status.BAD_REQUEST);

    await peer.put("f.bin", seededBytes(1000, 22));
    await peer.send({ type: "group-chunks", name: "f.bin", version: list.version, first: 0, count: 1 });
    match(await peer.expectError(Status.CONFLICT), /changed since/);
    await peer.send({ type: "read", name: "f.bin", version: list.version, ranges: encodeRanges([ranges[0]]) });
    match(await peer.expectError(Status.CONFLICT), /changed since/);
  } finally {
    peer.abort();
  }
});

Deno.test("a bad recipe is refused and nothing is committed", async () => {
  await using fx = await startServer();
  const peer = await Peer.login(fx);
  try {
    const bytes = seededBytes(200_000, 31);
    const chunks = await chunksOf(bytes);
    const { steps } = await planRecipe(null, chunks);
    const unknown = await assemble(peer, "bad.bin", bytes, chunks, [new Uint8Array([0x09, 1, 2, 3])]);
    strictEqual(unknown.type === "error" && unknown.code, Status.BAD_REQUEST);
    const lying = await assemble(peer, "bad.bin", bytes, chunks, [chunkStep(new Uint8Array(32).fill(7), 1000)]);
    strictEqual(lying.type === "error" && lying.code, Status.NOT_FOUND);
    const root = await assemble(peer, "bad.bin", bytes, chunks, steps, { root: "00".repeat(32) });
    strictEqual(root.type === "error" && root.code, Status.INTEGRITY);
    const size = await assemble(peer, "bad.bin", bytes, chunks, steps, { size: bytes.length + 1 });
    strictEqual(size.type === "error" && size.code, Status.INTEGRITY);
    const large = await assemble(peer, "bad.bin", bytes, chunks, [dataStepHeader(300_000), new Uint8Array(300_000)]);
    strictEqual(large.type === "error" && large.code, Status.BAD_REQUEST);
    deepStrictEqual(await peer.names(), []);
    // The session goes on.
    strictEqual((await assemble(peer, "good.bin", bytes, chunks, steps)).type, "ok");
    deepStrictEqual(await peer.names(), ["good.bin"]);
  } finally {
    peer.abort();
  }
});

/** Starts an assemble of `bytes` and sends the data steps of its first `sent` chunks only. */
async function startAssemble(peer: Peer, name: string, bytes: Uint8Array, chunks: Chunk[], sent: number) {
  await peer.send({
    type: "assemble",
    name,
    size: bytes.length,
    mtime: 0,
    root: rootOf(chunks),
    chunks: chunks.length,
  });
  for (const chunk of chunks.slice(0, sent)) {
    await peer.send({ type: "data", chunk: concat([dataStepHeader(chunk.length), chunk.bytes]) });
  }
}

Deno.test("an assemble cut by the connection is kept, and finished by a second sending only the rest", async () => {
  await using fx = await startServer();
  const bytes = seededBytes(2 * MiB, 41);
  const chunks = await chunksOf(bytes);
  const half = Math.floor(chunks.length / 2);
  const first = await Peer.login(fx);
  await startAssemble(first, "big.bin", bytes, chunks, half);
  first.abort();
  const second = await Peer.login(fx);
  try {
    await waitFor(async () => (await have(second, [chunks[half - 1].hash]))[0], "the kept upload's chunks known");
    deepStrictEqual(await second.names(), []);
    const plan = await planRecipe(second, chunks);
    const keptBytes = chunks.slice(0, half).reduce((sum, chunk) => sum + chunk.length, 0);
    strictEqual(plan.dataBytes, bytes.length - keptBytes);
    strictEqual((await assemble(second, "big.bin", bytes, chunks, plan.steps)).type, "ok");
    strictEqual(sha256(await second.get("big.bin")), sha256(bytes));
  } finally {
    second.abort();
  }
});

Deno.test("have for an upload offers a kept upload's chunks only to the upload that continues it", async () => {
  await using fx = await startServer();
  const bytes = seededBytes(1 * MiB, 45);
  const chunks = await chunksOf(bytes);
  const first = await Peer.login(fx);
  await startAssemble(first, "kept.bin", bytes, chunks, 3);
  first.abort();
  const second = await Peer.login(fx);
  try {
    await waitFor(async () => (await have(second, [chunks[2].hash]))[0], "the kept upload's chunks known");
    const askFor = async (name: string, root: string) => {
      await second.send({ type: "have", keys: joinKeys([chunks[2].hash]), name, root });
      return isSet((await second.expect("known")).bits, 0);
    };
    strictEqual(await askFor("kept.bin", rootOf(chunks)), true, "the upload that continues it");
    strictEqual(await askFor("kept.bin", "0".repeat(64)), false, "the same name, another content");
    strictEqual(await askFor("other.bin", rootOf(chunks)), false, "another name");
  } finally {
    second.abort();
  }
});

Deno.test("an assemble ended by ABORT drops its kept upload", async () => {
  await using fx = await startServer();
  const bytes = seededBytes(1 * MiB, 51);
  const chunks = await chunksOf(bytes);
  const peer = await Peer.login(fx);
  try {
    await startAssemble(peer, "gone.bin", bytes, chunks, 4);
    await peer.send({ type: "abort", reason: "changed my mind" });
    await peer.expectError(Status.ABORTED);
    deepStrictEqual(await have(peer, [chunks[0].hash]), [false]);
    deepStrictEqual(await peer.names(), []);
  } finally {
    peer.abort();
  }
});

Deno.test("a kept upload counts in the quota until it is finished", async () => {
  await using fx = await startServer({ quotaBytes: 3 * MiB });
  const bytes = seededBytes(2 * MiB, 61);
  const chunks = await chunksOf(bytes);
  const first = await Peer.login(fx);
  await startAssemble(first, "held.bin", bytes, chunks, 4);
  first.abort();
  const second = await Peer.login(fx);
  try {
    await waitFor(async () => (await have(second, [chunks[3].hash]))[0], "the kept upload's chunks known");
    await second.send({ type: "put", name: "other.bin", size: 2 * MiB, digest: "sha256" });
    await second.sendBody(seededBytes(2 * MiB, 62));
    await second.expectError(Status.TOO_LARGE);
    // Finishing it takes no more room than it held.
    const plan = await planRecipe(second, chunks);
    strictEqual((await assemble(second, "held.bin", bytes, chunks, plan.steps)).type, "ok");
  } finally {
    second.abort();
  }
});

Deno.test("a kept upload still counts in the quota after the server restarts", async () => {
  await using fx = await startServer({ quotaBytes: 3 * MiB });
  const bytes = seededBytes(2 * MiB, 63);
  const chunks = await chunksOf(bytes);
  // All but the last chunk sent: after a restart what is kept is held (its bytes on disk), not the announced size.
  const sent = chunks.length - 1;
  const first = await Peer.login(fx);
  await startAssemble(first, "held.bin", bytes, chunks, sent);
  first.abort();
  const checker = await Peer.login(fx);
  try {
    await waitFor(async () => (await have(checker, [chunks[sent - 1].hash]))[0], "the kept upload's chunks known");
  } finally {
    checker.abort();
  }
  await fx.server.shutdown();
  const server = await serve({
    hostname: "127.0.0.1",
    port: 0,
    root: fx.root,
    users: fx.users,
    quotaBytes: 3 * MiB,
  });
  try {
    const again = { ...fx, server, port: server.addr.port, address: `127.0.0.1:${server.addr.port}` };
    const second = await Peer.login(again);
    try {
      await second.send({ type: "put", name: "other.bin", size: 2 * MiB, digest: "sha256" });
      await second.sendBody(seededBytes(2 * MiB, 64));
      await second.expectError(Status.TOO_LARGE);
      // Finishing it takes no more room than it held.
      const plan = await planRecipe(second, chunks);
      strictEqual((await assemble(second, "held.bin", bytes, chunks, plan.steps)).type, "ok");
    } finally {
      second.abort();
    }
  } finally {
    await server.shutdown();
  }
});

Deno.test("a kept upload older than --partial-ttl is swept", async () => {
  await using fx = await startServer({ partialTtlMs: 2000 });
  const bytes = seededBytes(1 * MiB, 71);
  const chunks = await chunksOf(bytes);
  const first = await Peer.login(fx);
  await startAssemble(first, "old.bin", bytes, chunks, 4);
  first.abort();
  const second = await Peer.login(fx);
  try {
    // Known once kept, forgotten once swept (the sweep runs every 500 ms here).
    let seen = false;
    await waitFor(
      async () => {
        const known = (await have(second, [chunks[0].hash]))[0];
        seen ||= known;
        return seen && !known;
      },
      "the kept upload swept",
      10_000,
    );
  } finally {
    second.abort();
  }
});
