/**
 * The delta requests on the wire, as a client and as an attacker would use
 * them: `sums` of a version's ranges, and an `assemble` whose patch steps
 * copy from the old version of the file they replace. A patch can only ever
 * read the version it names of the very file it replaces, and a chunk it
 * makes is stored only when its bytes have the chunk's hash.
 */

import { deepStrictEqual, strictEqual } from "node:assert/strict";
import { sendBody } from "../shared/body.ts";
import { blockSums, BlockTable, decodeOps, encodeOps, SUM_BYTES } from "../shared/block_delta.ts";
import { encodeRanges } from "../shared/chunk_list.ts";
import { rootOf } from "../shared/chunk_groups.ts";
import { FEATURE_CHUNKS, FEATURE_DELTAS, MAX_DELTA_BYTES, MAX_SUMS_BYTES } from "../shared/messages.ts";
import { bytesOf } from "../shared/pooled_bytes.ts";
import { patchStepHeader } from "../shared/recipe.ts";
import { Status } from "../shared/status.ts";
import { seededBytes } from "./_common.ts";
import { startServer } from "./_fixture.ts";
import { concat, HELLO, once, Peer } from "./_peer.ts";

/** Reads a reply's body (DATA frames and END). */
async function receiveBody(peer: Peer): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  while (true) {
    const message = await peer.expect("data", "end");
    if (message.type === "end") return concat(parts);
    parts.push(bytesOf(message.chunk).slice());
  }
}

/** The version of a stored file, from `groups`. */
async function versionOf(peer: Peer, name: string): Promise<string> {
  await peer.send({ type: "groups", name });
  const list = await peer.expect("group-list");
  await receiveBody(peer);
  return list.version;
}

async function sha256(bytes: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>));
}

/** Assembles `next` (one chunk: under 16 KiB, the chunker's minimum) as one patch step of `ops`. */
async function patch(peer: Peer, name: string, next: Uint8Array, ops: Uint8Array, base?: string, hash?: Uint8Array) {
  const chunk = { hash: hash ?? await sha256(next), length: next.length };
  await peer.send({
    type: "assemble",
    name,
    size: next.length,
    mtime: 1_700_000_000_000,
    root: rootOf([chunk]),
    chunks: 1,
    ...(base === undefined ? {} : { base }),
  });
  await sendBody(peer.channel, once(concat([patchStepHeader(chunk.hash, next.length, ops.length), ops])));
  return await peer.expect("ok", "error");
}

Deno.test("welcome lists the deltas feature only to a client that asked for it with the chunks", async () => {
  await using fx = await startServer();
  const asking = await Peer.open(fx);
  await asking.send({ ...HELLO, features: [FEATURE_CHUNKS, FEATURE_DELTAS] });
  deepStrictEqual((await asking.expect("welcome")).features, [FEATURE_CHUNKS, FEATURE_DELTAS]);
  asking.abort();
  const chunksOnly = await Peer.open(fx);
  await chunksOnly.send({ ...HELLO, features: [FEATURE_CHUNKS] });
  deepStrictEqual((await chunksOnly.expect("welcome")).features, [FEATURE_CHUNKS]);
  chunksOnly.abort();
});

Deno.test("sums gives 12 bytes a block of the ranges asked, and refuses what is out of bounds", async () => {
  await using fx = await startServer();
  const peer = await Peer.login(fx);
  try {
    const bytes = seededBytes(10_000, 1);
    await peer.put("f.bin", bytes);
    const version = await versionOf(peer, "f.bin");
    const ranges = [{ offset: 0, length: 3000 }, { offset: 5000, length: 5000 }];
    await peer.send({ type: "sums", name: "f.bin", version, block: 1024, ranges: encodeRanges(ranges) });
    strictEqual((await peer.expect("sum-list")).count, 3 + 5);
    deepStrictEqual(
      await receiveBody(peer),
      concat([blockSums(bytes.subarray(0, 3000), 1024), blockSums(bytes.subarray(5000), 1024)]),
    );
    const refused = async (message: Parameters<Peer["send"]>[0], code: number, what: string) => {
      await peer.send(message);
      const reply = await peer.expect("error");
      strictEqual(reply.code, code, `${what}: ${reply.message}`);
    };
    const one = encodeRanges([{ offset: 0, length: 1000 }]);
    await refused({ type: "sums", name: "f.bin", version, block: 100, ranges: one }, Status.BAD_REQUEST, "tiny block");
    await refused({ type: "sums", name: "f.bin", version, block: 1 << 20, ranges: one }, Status.BAD_REQUEST, "huge");
    const past = encodeRanges([{ offset: 9000, length: 2000 }]);
    await refused({ type: "sums", name: "f.bin", version, block: 1024, ranges: past }, Status.BAD_REQUEST, "past end");
    const empty = new Uint8Array(0);
    await refused({ type: "sums", name: "f.bin", version, block: 1024, ranges: empty }, Status.BAD_REQUEST, "none");
    await refused({ type: "sums", name: "f.bin", version: "v0", block: 1024, ranges: one }, Status.CONFLICT, "stale");
    await refused({ type: "sums", name: "../bob/f", version, block: 1024, ranges: one }, Status.BAD_NAME, "bob's");
    await refused({ type: "sums", name: "nope", version, block: 1024, ranges: one }, Status.NOT_FOUND, "missing");
    const big = seededBytes(MAX_SUMS_BYTES / 2 + 1, 2);
    await peer.put("big.bin", big);
    const bigVersion = await versionOf(peer, "big.bin");
    const twice = encodeRanges([{ offset: 0, length: big.length }, { offset: 0, length: big.length }]);
    await refused(
      { type: "sums", name: "big.bin", version: bigVersion, block: 8192, ranges: twice },
      Status.BAD_REQUEST,
      "more than 16 MiB summed",
    );
    strictEqual(SUM_BYTES, 12);
  } finally {
    peer.abort();
  }
});

Deno.test("a patch step rebuilds the chunk from the old version's bytes and the literals sent", async () => {
  await using fx = await startServer();
  const peer = await Peer.login(fx);
  try {
    const old = seededBytes(12_000, 3);
    await peer.put("f.bin", old);
    const version = await versionOf(peer, "f.bin");
    const next = old.slice();
    next.set(seededBytes(100, 4), 6000);
    const table = new BlockTable(1024);
    table.add({ offset: 0, length: old.length }, blockSums(old, 1024));
    const ops = encodeOps(table.delta(next));
    strictEqual((await patch(peer, "f.bin", next, ops, version)).type, "ok");
    deepStrictEqual(await peer.get("f.bin"), next);
  } finally {
    peer.abort();
  }
});

Deno.test("a patch is refused, and nothing stored, without its base, against another version, past its end, or making other bytes", async () => {
  await using fx = await startServer();
  const peer = await Peer.login(fx);
  try {
    const old = seededBytes(12_000, 5);
    await peer.put("f.bin", old);
    const secret = seededBytes(12_000, 6);
    await peer.put("secret.bin", secret);
    const version = await versionOf(peer, "f.bin");
    const secretVersion = await versionOf(peer, "secret.bin");
    const copyAll = (length: number, offset = 0) => encodeOps([{ kind: "copy", offset, length }]);
    const refusal = async (reply: Promise<{ type: string }>, code: number, what: string) => {
      const answer = await reply as { type: string; code?: number; message?: string };
      strictEqual(answer.type, "error", what);
      strictEqual(answer.code, code, `${what}: ${answer.message}`);
    };
    await refusal(patch(peer, "f.bin", old, copyAll(old.length)), Status.BAD_REQUEST, "no base");
    await refusal(patch(peer, "f.bin", old, copyAll(old.length), "v0"), Status.NOT_FOUND, "another version");
    // The base is always the file replaced: naming another file's version reads nothing of it.
    await refusal(patch(peer, "f.bin", secret, copyAll(secret.length), secretVersion), Status.NOT_FOUND, "other file");
    await refusal(patch(peer, "new.bin", secret, copyAll(secret.length), secretVersion), Status.NOT_FOUND, "no file");
    await refusal(patch(peer, "f.bin", old, copyAll(old.length, 1), version), Status.NOT_FOUND, "past the end");
    const other = seededBytes(12_000, 7);
    await refusal(
      patch(peer, "f.bin", other, copyAll(old.length), version, await sha256(other)),
      Status.NOT_FOUND,
      "bytes of another hash",
    );
    await refusal(
      patch(peer, "f.bin", old, encodeOps([{ kind: "copy", offset: 0, length: 1024 }]), version),
      Status.BAD_REQUEST,
      "ops that make fewer bytes than the chunk",
    );
    deepStrictEqual(await peer.get("f.bin"), old);
    deepStrictEqual(await peer.names(), ["f.bin", "secret.bin"]);
  } finally {
    peer.abort();
  }
});

/** Sends a `delta` with `sums` as its body; returns the reply and, on success, its body. */
async function delta(
  peer: Peer,
  request: { name: string; version: string; block: number; ranges: Uint8Array; bases: Uint8Array },
  sums: Uint8Array,
) {
  await peer.send({ type: "delta", ...request });
  await sendBody(peer.channel, once(sums));
  const reply = await peer.expect("delta-list", "error");
  return reply.type === "delta-list" ? { reply, body: await receiveBody(peer) } : { reply, body: null };
}

Deno.test("delta describes ranges against the client's sums, and the ops rebuild them from the client's old bytes", async () => {
  await using fx = await startServer();
  const peer = await Peer.login(fx);
  try {
    const old = seededBytes(40_000, 8);
    const next = old.slice();
    next.set(seededBytes(3000, 9), 20_000);
    await peer.put("f.bin", next);
    const version = await versionOf(peer, "f.bin");
    const ranges = [{ offset: 0, length: 20_000 }, { offset: 20_000, length: 20_000 }];
    const { reply, body } = await delta(peer, {
      name: "f.bin",
      version,
      block: 1024,
      ranges: encodeRanges(ranges),
      bases: encodeRanges([{ offset: 0, length: old.length }]),
    }, blockSums(old, 1024));
    strictEqual(reply.type, "delta-list");
    const view = new DataView(body!.buffer, body!.byteOffset, body!.length);
    let at = 0;
    let literal = 0;
    for (const range of ranges) {
      const length = view.getUint32(at);
      const ops = decodeOps(body!.subarray(at + 4, at + 4 + length), range.length);
      at += 4 + length;
      const rebuilt = concat(
        ops.map((op) => op.kind === "copy" ? old.subarray(op.offset, op.offset + op.length) : op.bytes),
      );
      deepStrictEqual(rebuilt, next.subarray(range.offset, range.offset + range.length));
      for (const op of ops) if (op.kind === "literal") literal += op.bytes.length;
    }
    strictEqual(at, body!.length);
    strictEqual(literal < 3000 + 4 * 1024, true, `${literal} literal bytes for 3,000 changed`);
  } finally {
    peer.abort();
  }
});

Deno.test("delta refuses what is out of bounds, sums of the wrong length and a stale version; the session goes on", async () => {
  await using fx = await startServer();
  const peer = await Peer.login(fx);
  try {
    const bytes = seededBytes(20_000, 10);
    await peer.put("f.bin", bytes);
    const version = await versionOf(peer, "f.bin");
    const one = encodeRanges([{ offset: 0, length: 10_000 }]);
    const base = encodeRanges([{ offset: 0, length: 4096 }]);
    const sums = blockSums(bytes.subarray(0, 4096), 1024);
    const request = { name: "f.bin", version, block: 1024, ranges: one, bases: base };
    const refused = async (changes: Partial<typeof request>, body: Uint8Array, code: number, what: string) => {
      const { reply } = await delta(peer, { ...request, ...changes }, body);
      strictEqual(reply.type, "error", what);
      strictEqual(reply.type === "error" && reply.code, code, what);
    };
    await refused({ block: 100 }, sums, Status.BAD_REQUEST, "a block too small");
    await refused(
      { ranges: encodeRanges([{ offset: 0, length: MAX_DELTA_BYTES + 1 }]) },
      sums,
      Status.BAD_REQUEST,
      "too much",
    );
    await refused(
      { ranges: encodeRanges([{ offset: 15_000, length: 10_000 }]) },
      sums,
      Status.BAD_REQUEST,
      "past the end",
    );
    await refused({ bases: new Uint8Array(0) }, sums, Status.BAD_REQUEST, "no bases");
    await refused({}, sums.subarray(0, 12), Status.BAD_REQUEST, "too few sums");
    await refused({}, concat([sums, sums]), Status.BAD_REQUEST, "too many sums");
    await refused({ version: "v0" }, sums, Status.CONFLICT, "a stale version");
    await refused({ name: "../bob/f.bin" }, sums, Status.BAD_NAME, "another user's file");
    strictEqual((await delta(peer, request, sums)).reply.type, "delta-list", "the session goes on");
  } finally {
    peer.abort();
  }
});
