/**
 * Block deltas: a chunk described against old bytes, its ops encoded and
 * decoded, and applied back to the very bytes; small edits cost about the
 * edit; malformed ops are refused.
 */

import assert from "node:assert/strict";
import { seededBytes } from "../tests/_common.ts";
import {
  blockSizeFor,
  blockSums,
  BlockTable,
  decodeOps,
  type DeltaOp,
  encodeOps,
  MAX_BLOCK_BYTES,
  MIN_BLOCK_BYTES,
  SUM_BYTES,
} from "./block_delta.ts";
import { DfosError, Status } from "./status.ts";

/** Applies ops to old bytes, as the receiving side does. */
function apply(old: Uint8Array, ops: DeltaOp[]): Uint8Array {
  const parts = ops.map((op) => op.kind === "copy" ? old.subarray(op.offset, op.offset + op.length) : op.bytes);
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

function literalBytes(ops: DeltaOp[]): number {
  return ops.reduce((sum, op) => sum + (op.kind === "literal" ? op.bytes.length : 0), 0);
}

/** The delta of `next` against `old` summed whole from offset `base`, round-tripped through its encoding. */
function deltaOf(old: Uint8Array, next: Uint8Array, block = blockSizeFor(old.length), base = 0): DeltaOp[] {
  const table = new BlockTable(block);
  table.add({ offset: base, length: old.length }, blockSums(old, block));
  const ops = decodeOps(encodeOps(table.delta(next)), next.length);
  const shifted = new Uint8Array(base + old.length);
  shifted.set(old, base);
  assert.deepEqual(apply(shifted, ops), next, "the ops make the new bytes");
  return ops;
}

Deno.test("block delta: unchanged bytes are one copy, with the offset of the range summed", () => {
  const old = seededBytes(70_000, 1);
  const ops = deltaOf(old, old.slice(0, 69_632), 512, 1_000_000); // whole blocks
  assert.deepEqual(ops, [{ kind: "copy", offset: 1_000_000, length: 69_632 }]);
});

Deno.test("block delta: 4 KiB overwritten in the middle costs the edit and at most a block each side", () => {
  const old = seededBytes(70_000, 2);
  const next = old.slice();
  next.set(seededBytes(4096, 3), 30_001);
  const block = blockSizeFor(old.length);
  const ops = deltaOf(old, next, block);
  assert.ok(literalBytes(ops) <= 4096 + 2 * block + (old.length % block), `${literalBytes(ops)} literal bytes`);
  assert.ok(encodeOps(ops).length < 8000, `${encodeOps(ops).length} bytes of ops for a 70 KB chunk`);
});

Deno.test("block delta: 100 bytes inserted shift the rest, which is still found at every byte offset", () => {
  const old = seededBytes(100_000, 4);
  const next = new Uint8Array(old.length + 100);
  next.set(old.subarray(0, 5_003));
  next.set(seededBytes(100, 5), 5_003);
  next.set(old.subarray(5_003), 5_103);
  const block = blockSizeFor(old.length);
  const ops = deltaOf(old, next, block);
  assert.ok(literalBytes(ops) <= 100 + 2 * block + (old.length % block), `${literalBytes(ops)} literal bytes`);
});

Deno.test("block delta: bytes that match nothing are one literal; no sums, no copies", () => {
  const next = seededBytes(10_000, 6);
  assert.deepEqual(deltaOf(seededBytes(10_000, 7), next).map((op) => op.kind), ["literal"]);
  const empty = new BlockTable(1024);
  assert.deepEqual(empty.delta(next), [{ kind: "literal", bytes: next }]);
  assert.equal(empty.size, 0);
});

Deno.test("block delta: sums are 12 bytes a block, the last block short", () => {
  assert.equal(blockSums(seededBytes(2_500, 8), 1024).length, 3 * SUM_BYTES);
  assert.equal(blockSizeFor(0), MIN_BLOCK_BYTES);
  assert.equal(blockSizeFor(1 << 30), 8192);
});

Deno.test("block delta: malformed ops and block sizes are refused as BAD_REQUEST", () => {
  const refused = (fn: () => unknown, what: string) =>
    assert.throws(fn, (error) => error instanceof DfosError && error.code === Status.BAD_REQUEST, what);
  const good = encodeOps([{ kind: "copy", offset: 5, length: 512 }, { kind: "literal", bytes: new Uint8Array(3) }]);
  assert.equal(decodeOps(good, 515).length, 2);
  refused(() => decodeOps(good, 514), "more bytes than the chunk");
  refused(() => decodeOps(good, 516), "fewer bytes than the chunk");
  refused(() => decodeOps(encodeOps([{ kind: "copy", offset: 0, length: 511 }]), 511), "a copy under a block");
  refused(() => decodeOps(good.subarray(0, 12), 512), "a copy cut short");
  refused(() => decodeOps(good.subarray(0, good.length - 1), 515), "a literal cut short");
  refused(() => decodeOps(new Uint8Array([7]), 1), "an unknown op");
  refused(() => decodeOps(encodeOps([{ kind: "literal", bytes: new Uint8Array(0) }]), 0), "an empty literal");
  refused(() => decodeOps(encodeOps([{ kind: "copy", offset: 0, length: 0 }]), 0), "an empty copy");
  refused(() => new BlockTable(MIN_BLOCK_BYTES - 1), "a block too small");
  refused(() => new BlockTable(MAX_BLOCK_BYTES + 1), "a block too large");
});
