import assert from "node:assert/strict";
import {
  handOver,
  MIN_POOLED_BYTES,
  POOL_FREE_BYTES,
  pooledFreeBytes,
  releaseView,
  retainBlock,
  takeBlock,
} from "./block_pool.ts";

const SIZE = 256 * 1024;

Deno.test("takeBlock() reuses a block once its only hold is released", () => {
  const first = takeBlock(SIZE);
  first.bytes[0] = 42;
  first.release();
  const second = takeBlock(SIZE);
  assert.equal(second.bytes.buffer, first.bytes.buffer);
  assert.equal(second.bytes[0], 42, "a reused block keeps its old bytes: it is not zeroed");
  second.release();
});

Deno.test("takeBlock() does not reuse a block while a view of it is held", () => {
  const taken = takeBlock(SIZE);
  const release = retainBlock(taken.bytes.subarray(10, 20));
  assert.ok(release);
  taken.release();
  const other = takeBlock(SIZE);
  assert.notEqual(other.bytes.buffer, taken.bytes.buffer);
  release();
  const again = takeBlock(SIZE);
  assert.equal(again.bytes.buffer, taken.bytes.buffer);
  other.release();
  again.release();
});

Deno.test("A hold released twice counts once", () => {
  const taken = takeBlock(SIZE);
  const first = retainBlock(taken.bytes)!;
  const second = retainBlock(taken.bytes)!;
  taken.release();
  first();
  first();
  taken.release();
  const other = takeBlock(SIZE);
  assert.notEqual(other.bytes.buffer, taken.bytes.buffer, "one hold is still out");
  second();
  const again = takeBlock(SIZE);
  assert.equal(again.bytes.buffer, taken.bytes.buffer);
  other.release();
  again.release();
});

Deno.test("Blocks below MIN_POOLED_BYTES and other bytes are not pooled", () => {
  const small = takeBlock(MIN_POOLED_BYTES - 1);
  assert.equal(retainBlock(small.bytes), undefined);
  small.release();
  assert.notEqual(takeBlock(MIN_POOLED_BYTES - 1).bytes.buffer, small.bytes.buffer);
  assert.equal(retainBlock(new Uint8Array(SIZE)), undefined);
});

Deno.test("handOver() holds a view's block until releaseView(), once", () => {
  const taken = takeBlock(SIZE);
  const view = handOver(taken.bytes.subarray(0, 100));
  taken.release();
  const other = takeBlock(SIZE);
  assert.notEqual(other.bytes.buffer, taken.bytes.buffer);
  releaseView(view);
  releaseView(view);
  releaseView(new Uint8Array(4));
  const again = takeBlock(SIZE);
  assert.equal(again.bytes.buffer, taken.bytes.buffer);
  other.release();
  again.release();
});

Deno.test("The pool keeps at most POOL_FREE_BYTES of free blocks", () => {
  const size = 1024 * 1024;
  const held = Array.from({ length: POOL_FREE_BYTES / size + 8 }, () => takeBlock(size));
  for (const block of held) block.release();
  assert.ok(pooledFreeBytes() <= POOL_FREE_BYTES, `${pooledFreeBytes()} bytes free`);
  assert.ok(pooledFreeBytes() >= POOL_FREE_BYTES - size);
  const before = pooledFreeBytes();
  const reused = takeBlock(size);
  assert.equal(pooledFreeBytes(), before - size, "a free block is taken before a new one is made");
  reused.release();
});

Deno.test("takeBlock() serves a request from a larger free block when none of its size is free", () => {
  const large = takeBlock(4 * SIZE);
  large.release();
  const smaller = takeBlock(2 * SIZE);
  assert.equal(smaller.bytes.buffer, large.bytes.buffer);
  assert.equal(smaller.bytes.length, 4 * SIZE);
  smaller.release();
});

Deno.test("A full pool drops free blocks of a size no longer asked for before the one released", () => {
  const old = 128 * 1024;
  const current = 1024 * 1024;
  const stale = Array.from({ length: POOL_FREE_BYTES / old }, () => takeBlock(old));
  for (const block of stale) block.release();
  const fresh = Array.from({ length: 4 }, () => takeBlock(current));
  for (const block of fresh) block.release();
  assert.ok(pooledFreeBytes() <= POOL_FREE_BYTES);
  const again = takeBlock(current);
  assert.ok(
    fresh.some((block) => block.bytes.buffer === again.bytes.buffer),
    "the blocks of the current size were kept",
  );
  again.release();
});
