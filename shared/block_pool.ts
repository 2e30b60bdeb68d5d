/**
 * `takeBlock()` / `retainBlock()`: receive blocks that are used again once
 * every view of them has been released, instead of a fresh block per read.
 *
 * A fresh 1 MiB block costs the allocator, zeroing and a page fault per 4 KiB
 * on first touch, and its garbage stays in the process until V8 collects it:
 * on this machine that was 10-20 % of the CPU of receiving a body and much of
 * a busy server's memory above its live buffers (docs/PERFORMANCE.md).
 *
 * The rule that keeps reuse safe: a block goes back to the pool only when
 * its count of holders drops to zero, and every holder is counted. The reader
 * that fills a block holds it, and each chunk it hands on carries a hold of its
 * own until the frame decoder has taken it in ({@linkcode handOver},
 * {@linkcode releaseView}); the decoder takes one hold per view it passes on;
 * whoever keeps a view longer (a queued file write) takes its own with
 * {@linkcode retainBlock}. Each hold is released once, by the function
 * that took it (a second call does nothing). A hold that is never released
 * costs only the reuse: the block is then collected like any other buffer.
 *
 * @module
 */

/** Blocks smaller than this are plain buffers: pooling them would save little. */
export const MIN_POOLED_BYTES = 64 * 1024;

/** Free blocks the pool keeps, in bytes, across all sizes. */
export const POOL_FREE_BYTES = 16 * 1024 * 1024;

/** A pooled block and how many holders it has. */
interface PooledBlock {
  bytes: Uint8Array<ArrayBuffer>;
  holders: number;
}

/** A held block: its bytes and the function that gives the hold back. */
export interface HeldBlock {
  /** The whole block; its contents are undefined (a reused block holds old bytes). */
  bytes: Uint8Array<ArrayBuffer>;
  /** Gives this hold back; the block is reused once no one holds it. Safe to call twice. */
  release: () => void;
}

const NOTHING_TO_RELEASE = () => {};

/** Pooled blocks by their buffer, whether held or free. */
const blocks = new WeakMap<ArrayBufferLike, PooledBlock>();
/** Free blocks by size. */
const free = new Map<number, PooledBlock[]>();
let freeBytes = 0;

/**
 * Takes a block of at least `size` bytes, reused when one is free, and holds
 * it for the caller.
 *
 * @param size The least size in bytes (a reused block may be larger).
 * @returns The block and the release of the caller's hold.
 */
export function takeBlock(size: number): HeldBlock {
  if (size < MIN_POOLED_BYTES) return { bytes: new Uint8Array(size), release: NOTHING_TO_RELEASE };
  let block = takeFree(size);
  if (!block) {
    block = { bytes: new Uint8Array(size), holders: 0 };
    blocks.set(block.bytes.buffer, block);
  }
  return { bytes: block.bytes, release: hold(block) };
}

/**
 * A free block of `size` bytes, else the smallest larger one: sizes change
 * with the number of transfers, and a larger block serves as well.
 */
function takeFree(size: number): PooledBlock | undefined {
  let best = size;
  if (!free.get(size)?.length) {
    best = Infinity;
    for (const [length, list] of free) if (length > size && length < best && list.length > 0) best = length;
    if (best === Infinity) return undefined;
  }
  const block = free.get(best)!.pop()!;
  freeBytes -= best;
  return block;
}

/** Drops a free block of another size than `size` to make room, if there is one. */
function evictOtherSize(size: number): boolean {
  for (const [length, list] of free) {
    if (length === size || list.length === 0) continue;
    const block = list.shift()!;
    blocks.delete(block.bytes.buffer);
    freeBytes -= length;
    return true;
  }
  return false;
}

/**
 * Holds the block that `view` lies in, if it is a pooled one, so that it is
 * not reused until the returned function is called.
 *
 * @param view Bytes that are kept beyond the call that received them.
 * @returns The release of this hold, or undefined for bytes that are not pooled (nothing to hold).
 */
export function retainBlock(view: Uint8Array): (() => void) | undefined {
  const block = blocks.get(view.buffer);
  return block ? hold(block) : undefined;
}

/** Holds that travel with a view to its consumer (see {@linkcode handOver}). */
const viewHolds = new WeakMap<Uint8Array, () => void>();

/**
 * Takes a hold on `view`'s block for its consumer, to be given back with
 * {@linkcode releaseView} once the consumer has taken holds of its own for
 * what it keeps. For a stream's chunks: a chunk may wait in a queue after the
 * producer has moved on to the next block.
 *
 * @param view The bytes being handed over.
 * @returns `view` itself.
 */
export function handOver(view: Uint8Array): Uint8Array {
  const release = retainBlock(view);
  if (release) viewHolds.set(view, release);
  return view;
}

/**
 * Gives back the hold that {@linkcode handOver} took for `view` (nothing for
 * other bytes, or the second time).
 *
 * @param view The bytes received.
 */
export function releaseView(view: Uint8Array): void {
  const release = viewHolds.get(view);
  if (release === undefined) return;
  viewHolds.delete(view);
  release();
}

/** Bytes in free blocks now: for tests and the benchmark. */
export function pooledFreeBytes(): number {
  return freeBytes;
}

function hold(block: PooledBlock): () => void {
  block.holders++;
  let released = false;
  return () => {
    if (released) return;
    released = true;
    if (--block.holders > 0) return;
    const size = block.bytes.length;
    // The pool is full: blocks of a size no longer taken go first, else this one is forgotten and collected.
    while (freeBytes + size > POOL_FREE_BYTES && evictOtherSize(size));
    if (freeBytes + size > POOL_FREE_BYTES) {
      blocks.delete(block.bytes.buffer);
      return;
    }
    let list = free.get(size);
    if (!list) free.set(size, list = []);
    list.push(block);
    freeBytes += size;
  };
}
