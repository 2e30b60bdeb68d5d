/**
 * `transferMemory`: the memory this process's bodies in flight share, in one
 * object whose state {@linkcode TransferMemory.snapshot} shows.
 *
 * It holds three things:
 * - the budget: how many bodies are moving ({@linkcode TransferMemory.begin})
 *   and so how large each one's pieces are ({@linkcode TransferMemory.pieceBytes}):
 *   1 MiB for a lone transfer, smaller as transfers are added, down to 64 KiB,
 *   so that a server's memory stays flat however many clients move files;
 * - the pool of receive and read blocks ({@linkcode TransferMemory.take}): a
 *   block of 64 KiB or more is lent as `PooledBytes` and reused once every
 *   hold on it is released; at most {@linkcode POOL_FREE_BYTES} wait free;
 * - the write-behind total: bytes queued for the disk by every file being
 *   written ({@linkcode TransferMemory.queue}); over
 *   {@linkcode WRITE_BEHIND_TOTAL_BYTES}, a file waits for its own writes.
 *
 * @module
 */

import { MAX_DATA_PAYLOAD } from "./frames.ts";
import { type Block, PooledBytes } from "./pooled_bytes.ts";

/** Memory all bodies in flight together may hold in their pipelines. */
export const TRANSFER_BUDGET_BYTES = 64 * 1024 * 1024;

/** Blocks smaller than this are plain buffers: pooling them would save little. */
export const MIN_POOLED_BYTES = 64 * 1024;

/** Free blocks the pool keeps, in bytes, across all sizes. */
export const POOL_FREE_BYTES = 16 * 1024 * 1024;

/** Bytes that may wait in all files' write-behind queues together. */
export const WRITE_BEHIND_TOTAL_BYTES = 16 * 1024 * 1024;

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

/** The process-wide transfer memory. */
export class TransferMemory {
  #transfers = 0;
  #queuedBytes = 0;
  #freeBytes = 0;
  /** Free blocks by size. */
  readonly #free = new Map<number, Block[]>();
  readonly #freeBlock = (block: Block) => this.#giveBack(block);

  /** The state now, for the totals line, the benchmark and tests. */
  snapshot(): TransferMemorySnapshot {
    return {
      transfers: this.#transfers,
      pieceBytes: this.pieceBytes(),
      queuedBytes: this.#queuedBytes,
      freeBytes: this.#freeBytes,
    };
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
      if (!ended) this.#transfers--;
      ended = true;
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
   * Lends a block of at least `size` bytes, reused when one is free (a free
   * block of that size, else the smallest larger one). Below
   * {@linkcode MIN_POOLED_BYTES}, a fresh buffer that no pool takes back.
   *
   * @param size The least size in bytes.
   * @returns The whole block, one hold on it; its contents are undefined.
   */
  take(size: number): PooledBytes {
    if (size < MIN_POOLED_BYTES) return new PooledBytes({ bytes: new Uint8Array(size), holders: 0, free: () => {} });
    const block = this.#takeFree(size) ?? { bytes: new Uint8Array(size), holders: 0, free: this.#freeBlock };
    return new PooledBytes(block);
  }

  /**
   * Counts `size` bytes queued for the disk.
   *
   * @param size Bytes now waiting.
   */
  queue(size: number): void {
    this.#queuedBytes += size;
  }

  /**
   * Counts `size` queued bytes written (or dropped).
   *
   * @param size Bytes no longer waiting.
   */
  dequeue(size: number): void {
    this.#queuedBytes -= size;
  }

  /** True while the bytes queued for the disk are over {@linkcode WRITE_BEHIND_TOTAL_BYTES}. */
  get overQueued(): boolean {
    return this.#queuedBytes > WRITE_BEHIND_TOTAL_BYTES;
  }

  #takeFree(size: number): Block | undefined {
    let best = size;
    if (!this.#free.get(size)?.length) {
      best = Infinity;
      for (const [length, list] of this.#free) if (length > size && length < best && list.length > 0) best = length;
      if (best === Infinity) return undefined;
    }
    const block = this.#free.get(best)!.pop()!;
    this.#freeBytes -= best;
    return block;
  }

  /** A block no one holds: kept free if there is room (blocks of other sizes go first), else forgotten. */
  #giveBack(block: Block): void {
    const size = block.bytes.length;
    while (this.#freeBytes + size > POOL_FREE_BYTES && this.#evictOtherSize(size));
    if (this.#freeBytes + size > POOL_FREE_BYTES) return;
    let list = this.#free.get(size);
    if (!list) this.#free.set(size, list = []);
    list.push(block);
    this.#freeBytes += size;
  }

  #evictOtherSize(size: number): boolean {
    for (const [length, list] of this.#free) {
      if (length === size || list.length === 0) continue;
      list.shift();
      this.#freeBytes -= length;
      return true;
    }
    return false;
  }
}

/** The one transfer memory of this process. */
export const transferMemory: TransferMemory = new TransferMemory();
