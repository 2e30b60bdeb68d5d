import assert from "node:assert/strict";
import {
  MIN_POOLED_BYTES,
  POOL_FREE_BYTES,
  TRANSFER_BUDGET_BYTES,
  TransferMemory,
  WRITE_BEHIND_TOTAL_BYTES,
} from "./transfer_memory.ts";

const SIZE = 256 * 1024;

Deno.test("TransferMemory.pieceBytes() is 1 MiB for a lone transfer and shrinks as transfers are added, down to 64 KiB", () => {
  const memory = new TransferMemory();
  const ends = [memory.begin()];
  assert.equal(memory.pieceBytes(), 1 << 20);
  while (memory.snapshot().transfers < 32) ends.push(memory.begin());
  assert.ok(memory.pieceBytes() * 4 * 32 <= TRANSFER_BUDGET_BYTES, "32 transfers stay within the budget");
  assert.equal(memory.pieceBytes(), 512 * 1024);
  while (memory.snapshot().transfers < 2000) ends.push(memory.begin());
  assert.equal(memory.pieceBytes(), 64 * 1024);
  for (const end of ends) end();
  assert.equal(memory.snapshot().transfers, 0);
});

Deno.test("TransferMemory.begin()'s end counts once, however often it is called", () => {
  const memory = new TransferMemory();
  const end = memory.begin();
  end();
  end();
  assert.equal(memory.snapshot().transfers, 0);
});

Deno.test("TransferMemory.take() lends a block again once its only hold is released, not zeroed", () => {
  const memory = new TransferMemory();
  const first = memory.take(SIZE);
  first.bytes[0] = 42;
  first.release();
  assert.equal(memory.snapshot().freeBytes, SIZE);
  const second = memory.take(SIZE);
  assert.equal(second.bytes.buffer, first.bytes.buffer);
  assert.equal(second.bytes[0], 42, "a reused block keeps its old bytes: it is not zeroed");
  assert.equal(memory.snapshot().freeBytes, 0);
  second.release();
});

Deno.test("TransferMemory.take() does not lend a block while a view held from it is not released", () => {
  const memory = new TransferMemory();
  const taken = memory.take(SIZE);
  const view = taken.hold(10, 20);
  assert.equal(view.length, 10);
  taken.release();
  const other = memory.take(SIZE);
  assert.notEqual(other.bytes.buffer, taken.bytes.buffer);
  view.release();
  view.release(); // a second release counts once
  const again = memory.take(SIZE);
  assert.equal(again.bytes.buffer, taken.bytes.buffer);
  other.release();
  again.release();
});

Deno.test("PooledBytes.hold() after release() throws, and blocks below MIN_POOLED_BYTES are never reused", () => {
  const memory = new TransferMemory();
  const small = memory.take(MIN_POOLED_BYTES - 1);
  small.release();
  assert.throws(() => small.hold(), TypeError);
  assert.notEqual(memory.take(MIN_POOLED_BYTES - 1).bytes.buffer, small.bytes.buffer);
  assert.equal(memory.snapshot().freeBytes, 0);
});

Deno.test("TransferMemory keeps at most POOL_FREE_BYTES of free blocks", () => {
  const memory = new TransferMemory();
  const size = 1024 * 1024;
  const held = Array.from({ length: POOL_FREE_BYTES / size + 8 }, () => memory.take(size));
  for (const block of held) block.release();
  const { freeBytes } = memory.snapshot();
  assert.ok(freeBytes <= POOL_FREE_BYTES && freeBytes >= POOL_FREE_BYTES - size, `${freeBytes} bytes free`);
  const reused = memory.take(size);
  assert.equal(memory.snapshot().freeBytes, freeBytes - size, "a free block is lent before a new one is made");
  reused.release();
});

Deno.test("TransferMemory.take() serves a request from a larger free block when none of its size is free", () => {
  const memory = new TransferMemory();
  const large = memory.take(4 * SIZE);
  large.release();
  const smaller = memory.take(2 * SIZE);
  assert.equal(smaller.bytes.buffer, large.bytes.buffer);
  assert.equal(smaller.length, 4 * SIZE);
  smaller.release();
});

Deno.test("A full TransferMemory pool drops free blocks of a size no longer asked for before the one released", () => {
  const memory = new TransferMemory();
  const old = 128 * 1024;
  const current = 1024 * 1024;
  const stale = Array.from({ length: POOL_FREE_BYTES / old }, () => memory.take(old));
  for (const block of stale) block.release();
  const fresh = Array.from({ length: 4 }, () => memory.take(current));
  for (const block of fresh) block.release();
  assert.ok(memory.snapshot().freeBytes <= POOL_FREE_BYTES);
  const again = memory.take(current);
  assert.ok(
    fresh.some((block) => block.bytes.buffer === again.bytes.buffer),
    "the blocks of the current size were kept",
  );
  again.release();
});

Deno.test("TransferMemory counts the bytes queued for the disk and says when they are over the total", () => {
  const memory = new TransferMemory();
  memory.queue(WRITE_BEHIND_TOTAL_BYTES);
  assert.equal(memory.overQueued, false);
  memory.queue(1);
  assert.equal(memory.overQueued, true);
  assert.equal(memory.snapshot().queuedBytes, WRITE_BEHIND_TOTAL_BYTES + 1);
  memory.dequeue(WRITE_BEHIND_TOTAL_BYTES + 1);
  assert.equal(memory.snapshot().queuedBytes, 0);
});
