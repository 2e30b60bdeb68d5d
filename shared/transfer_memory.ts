/**
 * `transferMemory`: the memory this process's bodies in flight share, in one
 * object whose state {@linkcode TransferMemory.snapshot} shows.
 *
 * It holds three things:
 * - the budget: how many bodies are moving ({@linkcode TransferMemory.begin})
 *   and so how large each one's pieces are ({@linkcode TransferMemory.pieceBytes}):
 *   1 MiB for a lone transfer, smaller as transfers are added, down to 64 KiB,
 *   so that a server's memory stays flat however many clients move files;
 * - the pool ({@linkcode TransferMemory.take}): blocks of one size,
 *   {@linkcode BLOCK_BYTES}; a request of 64 KiB or more is lent as
 *   `PooledBytes`, a whole block or a slice cut from one, and a block is reused
 *   once every hold on it is released. While bodies move, no block is dropped
 *   (to wait for the garbage collector): the pool is as large as the most the
 *   bodies held at once, which the budget sizes; once none moves, all but
 *   {@linkcode IDLE_FREE_BYTES} of the free ones go. A change of piece size
 *   wastes no block;
 * - the write-behind total: bytes queued for the disk by every file being
 *   written ({@linkcode TransferMemory.queue}), a hard bound: a file waits for
 *   room before it queues more than {@linkcode WRITE_BEHIND_TOTAL_BYTES} allow.
 *
 * @module
 */

import { MAX_DATA_PAYLOAD } from "./frames.ts";
import { type Block, PooledBytes } from "./pooled_bytes.ts";

/** Memory all bodies in flight together may hold in their pipelines. */
export const TRANSFER_BUDGET_BYTES = 64 * 1024 * 1024;

/** Requests smaller than this are plain buffers: pooling them would save little. */
export const MIN_POOLED_BYTES = 64 * 1024;

/** Bytes that may wait in all files' write-behind queues together. */
export const WRITE_BEHIND_TOTAL_BYTES = 16 * 1024 * 1024;

/** The size of every pooled block: the largest piece. Smaller requests are slices cut from a block. */
export const BLOCK_BYTES = MAX_DATA_PAYLOAD;

/** Free blocks kept once no body is moving: enough for one transfer to start without new blocks. */
export const IDLE_FREE_BYTES = 4 * BLOCK_BYTES;

/** Buffers one body holds at once: the one being handled, one read ahead, one queued, one in flight. */
const BUFFERS_PER_TRANSFER = 4;

/** The smallest piece, however many transfers there are. */
const MIN_PIECE_BYTES = 64 * 1024;

/** What {@linkcode TransferMemory.snapshot} shows. */
export interface TransferMemorySnapshot {
  /** Bodies being sent or received now. */
  transfers: number;
  /** Bytes per piece now. */
  pieceBytes: number;
  /** Bytes queued for the disk by every file being written. */
  queuedBytes: number;
  /** Bytes in free blocks, waiting to be lent again. */
  freeBytes: number;
}

/** What {@linkcode TransferMemory.poolCounts} shows: the pool's blocks over the process's life. */
export interface PoolCounts {
  /** Bytes in all the pool's blocks now, lent or free. */
  poolBytes: number;
  /** Bytes of blocks made since the process started. */
  madeBytes: number;
  /** Bytes of blocks dropped (left to the garbage collector) since the process started. */
  droppedBytes: number;
}

/** The process-wide transfer memory. */
export class TransferMemory {
  #transfers = 0;
  #queuedBytes = 0;
  #poolBytes = 0;
  #madeBytes = 0;
  #droppedBytes = 0;
  /** Free blocks, the most recently freed last. */
  readonly #free: Block[] = [];
  /** The block slices are being cut from (this object holds it meanwhile), and where the next slice starts. */
  #cutting: PooledBytes | null = null;
  #cutAt = 0;
  /** Files waiting for room in the write-behind total, first come first. */
  readonly #waiting: { size: number; wake: () => void }[] = [];
  readonly #freeBlock = (block: Block) => this.#giveBack(block);

  /** The state now, for the totals line, the benchmark and tests. */
  snapshot(): TransferMemorySnapshot {
    return {
      transfers: this.#transfers,
      pieceBytes: this.pieceBytes(),
      queuedBytes: this.#queuedBytes,
      freeBytes: this.#free.length * BLOCK_BYTES,
    };
  }

  /** The pool's blocks now and over the process's life: whether it churns. */
  poolCounts(): PoolCounts {
    return { poolBytes: this.#poolBytes, madeBytes: this.#madeBytes, droppedBytes: this.#droppedBytes };
  }

  /**
   * Counts a body starting.
   *
   * @returns The function that counts it ending; a second call does nothing.
   */
  begin(): () => void {
    this.#transfers++;
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      if (--this.#transfers === 0) this.#trim(IDLE_FREE_BYTES);
    };
  }

  /**
   * Bytes per piece now (a file read, a receive block): the budget's share for
   * one transfer, as a power of two from 64 KiB to 1 MiB.
   */
  pieceBytes(): number {
    const share = TRANSFER_BUDGET_BYTES / BUFFERS_PER_TRANSFER / Math.max(1, this.#transfers);
    let size = MAX_DATA_PAYLOAD;
    while (size > share && size > MIN_PIECE_BYTES) size /= 2;
    return size;
  }

  /**
   * Lends `size` bytes: a whole block for {@linkcode BLOCK_BYTES}, a slice
   * cut from one for less (slices taken one after another lie side by side).
   * Below {@linkcode MIN_POOLED_BYTES} or above a block, a fresh buffer that
   * no pool takes back.
   *
   * @param size The size in bytes.
   * @returns The bytes, one hold on their block; their contents are undefined.
   */
  take(size: number): PooledBytes {
    if (size < MIN_POOLED_BYTES || size > BLOCK_BYTES) {
      return new PooledBytes({ bytes: new Uint8Array(size), holders: 0, free: () => {} });
    }
    if (size === BLOCK_BYTES) return new PooledBytes(this.#takeBlock());
    if (this.#cutting === null || this.#cutAt + size > BLOCK_BYTES) {
      this.#cutting?.release();
      this.#cutting = new PooledBytes(this.#takeBlock());
      this.#cutAt = 0;
    }
    const slice = this.#cutting.hold(this.#cutAt, this.#cutAt + size);
    this.#cutAt += size;
    return slice;
  }

  /**
   * Counts `size` bytes queued for the disk, once they fit in the write-behind
   * total: waits until then (or until nothing is queued: a piece larger than
   * the total still goes, alone). The check and the count are one step, so
   * files woken together cannot overshoot; waiting files go first come,
   * first served.
   *
   * @param size Bytes about to be queued.
   */
  async queue(size: number): Promise<void> {
    if (this.#waiting.length === 0 && this.#fits(size)) {
      this.#queuedBytes += size;
      return;
    }
    // Counted by dequeue() when its turn comes, first come first served.
    await new Promise<void>((wake) => this.#waiting.push({ size, wake }));
  }

  /**
   * Counts `size` queued bytes written (or dropped), and lets the waiting
   * files that now fit queue theirs, in order.
   *
   * @param size Bytes no longer waiting.
   */
  dequeue(size: number): void {
    this.#queuedBytes -= size;
    while (this.#waiting.length > 0 && this.#fits(this.#waiting[0].size)) {
      const next = this.#waiting.shift()!;
      this.#queuedBytes += next.size;
      next.wake();
    }
  }

  #fits(size: number): boolean {
    return this.#queuedBytes === 0 || this.#queuedBytes + size <= WRITE_BEHIND_TOTAL_BYTES;
  }

  #takeBlock(): Block {
    const block = this.#free.pop();
    if (block !== undefined) return block;
    this.#poolBytes += BLOCK_BYTES;
    this.#madeBytes += BLOCK_BYTES;
    return { bytes: new Uint8Array(BLOCK_BYTES), holders: 0, free: this.#freeBlock };
  }

  /** A block no one holds: kept free, for good while bodies move (else up to the idle allowance). */
  #giveBack(block: Block): void {
    this.#free.push(block);
    if (this.#transfers === 0) this.#trim(IDLE_FREE_BYTES);
  }

  /** Drops free blocks, the longest free first, until at most `freeBytes` are free. */
  #trim(freeBytes: number): void {
    const drop = Math.max(0, this.#free.length - Math.floor(freeBytes / BLOCK_BYTES));
    if (drop === 0) return;
    this.#free.splice(0, drop);
    this.#poolBytes -= drop * BLOCK_BYTES;
    this.#droppedBytes += drop * BLOCK_BYTES;
  }
}

/** The one transfer memory of this process. */
export const transferMemory: TransferMemory = new TransferMemory();
