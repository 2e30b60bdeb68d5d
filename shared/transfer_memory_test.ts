import assert from "node:assert/strict";
import {
  BLOCK_BYTES,
  IDLE_FREE_BYTES,
  MIN_POOLED_BYTES,
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
  const first = memory.take(BLOCK_BYTES);
  first.bytes[0] = 42;
  first.release();
  assert.equal(memory.snapshot().freeBytes, BLOCK_BYTES);
  const second = memory.take(BLOCK_BYTES);
  assert.equal(second.bytes.buffer, first.bytes.buffer);
  assert.equal(second.bytes[0], 42, "a reused block keeps its old bytes: it is not zeroed");
  assert.equal(memory.snapshot().freeBytes, 0);
  second.release();
});

Deno.test("TransferMemory.take() cuts smaller requests from one block, side by side, whatever their sizes", () => {
  const memory = new TransferMemory();
  const pieces = [memory.take(SIZE), memory.take(2 * SIZE), memory.take(SIZE)];
  assert.deepEqual(pieces.map((piece) => piece.length), [SIZE, 2 * SIZE, SIZE]);
  assert.ok(pieces.every((piece) => piece.bytes.buffer === pieces[0].bytes.buffer), "one block");
  assert.deepEqual(pieces.map((piece) => piece.bytes.byteOffset), [0, SIZE, 3 * SIZE]);
  const next = memory.take(SIZE);
  assert.notEqual(next.bytes.buffer, pieces[0].bytes.buffer, "a full block is cut no further");
  assert.equal(memory.poolCounts().poolBytes, 2 * BLOCK_BYTES, "a change of piece size made no other block");
  for (const piece of pieces) piece.release();
  next.release();
});

Deno.test("TransferMemory.take() does not lend a block again while a slice or view of it is held", () => {
  const memory = new TransferMemory();
  const end = memory.begin();
  const taken = memory.take(BLOCK_BYTES);
  const view = taken.hold(10, 20);
  assert.equal(view.length, 10);
  taken.release();
  const other = memory.take(BLOCK_BYTES);
  assert.notEqual(other.bytes.buffer, taken.bytes.buffer);
  view.release();
  view.release(); // a second release counts once
  const again = memory.take(BLOCK_BYTES);
  assert.equal(again.bytes.buffer, taken.bytes.buffer);
  // Slices: their block goes back once every slice is released and no more are cut from it.
  const slices = Array.from({ length: BLOCK_BYTES / SIZE }, () => memory.take(SIZE));
  const block = slices[0].bytes.buffer;
  for (const slice of slices.slice(1)) slice.release();
  memory.take(SIZE).release(); // cut from a new block: the first is no longer being cut
  assert.ok(memory.snapshot().freeBytes === 0 || memory.take(BLOCK_BYTES).bytes.buffer !== block);
  slices[0].release();
  assert.equal(memory.take(BLOCK_BYTES).bytes.buffer, block, "free once its last slice is released");
  other.release();
  again.release();
  end();
});

Deno.test("PooledBytes.hold() after release() throws, and sizes outside the pool's are never reused", () => {
  const memory = new TransferMemory();
  for (const size of [MIN_POOLED_BYTES - 1, BLOCK_BYTES + 1]) {
    const plain = memory.take(size);
    assert.equal(plain.length, size);
    plain.release();
    assert.throws(() => plain.hold(), TypeError);
    assert.notEqual(memory.take(size).bytes.buffer, plain.bytes.buffer);
  }
  assert.equal(memory.poolCounts().poolBytes, 0);
});

Deno.test("TransferMemory drops no block while bodies move, and keeps IDLE_FREE_BYTES once none does", () => {
  const memory = new TransferMemory();
  const end = memory.begin();
  const count = 80;
  const held = Array.from({ length: count }, () => memory.take(BLOCK_BYTES));
  assert.equal(memory.poolCounts().poolBytes, count * BLOCK_BYTES);
  for (const block of held) block.release();
  assert.equal(memory.snapshot().freeBytes, count * BLOCK_BYTES, "every block kept: none waits for the collector");
  assert.equal(memory.poolCounts().droppedBytes, 0);
  const reused = memory.take(BLOCK_BYTES);
  assert.equal(memory.poolCounts().madeBytes, count * BLOCK_BYTES, "a free block is lent before a new one is made");
  reused.release();
  end();
  assert.equal(memory.snapshot().freeBytes, IDLE_FREE_BYTES, "idle: most free blocks go");
  assert.equal(memory.poolCounts().poolBytes, IDLE_FREE_BYTES);
});

Deno.test("TransferMemory.queue() waits while the bytes queued for the disk would go over the total", async () => {
  const memory = new TransferMemory();
  await memory.queue(2 * WRITE_BEHIND_TOTAL_BYTES); // nothing queued: a piece of any size goes, alone
  memory.dequeue(2 * WRITE_BEHIND_TOTAL_BYTES);
  await memory.queue(WRITE_BEHIND_TOTAL_BYTES - 10);
  await memory.queue(10);
  let queued = 0;
  const waiting = [memory.queue(1).then(() => queued++), memory.queue(1).then(() => queued++)];
  await new Promise((resolve) => setTimeout(resolve, 0));
  assert.equal(queued, 0);
  memory.dequeue(1);
  await new Promise((resolve) => setTimeout(resolve, 0));
  assert.equal(queued, 1, "woken together, only one fits");
  assert.equal(memory.snapshot().queuedBytes, WRITE_BEHIND_TOTAL_BYTES);
  memory.dequeue(WRITE_BEHIND_TOTAL_BYTES);
  await Promise.all(waiting);
  assert.equal(memory.snapshot().queuedBytes, 1);
  memory.dequeue(1);
});
