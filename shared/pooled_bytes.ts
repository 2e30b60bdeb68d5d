/**
 * `PooledBytes`: bytes lent from a reusable block, with the one release that
 * gives them back. The body path carries them from the socket read to the
 * file write, and from the file read to the socket write, instead of a fresh
 * buffer per piece.
 *
 * The rule that keeps reuse safe: a block is reused only once every
 * `PooledBytes` lent from it has been released. Each one is a single hold,
 * owned by one place at a time and passed on with the bytes: whoever gets a
 * `PooledBytes` releases it (or passes it on), once. {@linkcode PooledBytes.hold}
 * lends another view of the same block, with a hold of its own. A second
 * release does nothing; a hold never released costs only the reuse (the
 * block is then collected like any other buffer).
 *
 * Where bytes may be plain or pooled ({@linkcode Bytes}), {@linkcode bytesOf}
 * reads them and {@linkcode release} gives back a pooled one.
 *
 * @module
 */

/** A reusable block: its bytes, its count of holders, and where it goes back once no one holds it. */
export interface Block {
  /** The whole block; its contents are undefined (a reused block holds old bytes). */
  readonly bytes: Uint8Array<ArrayBuffer>;
  /** Holds on it now. */
  holders: number;
  /** Called once its holders drop to zero. */
  readonly free: (block: Block) => void;
}

/** Bytes lent from a block: one hold on it, released once. */
export class PooledBytes {
  /** The bytes; valid until {@linkcode PooledBytes.release}. */
  readonly bytes: Uint8Array<ArrayBuffer>;
  #block: Block | null;

  /**
   * Lends `bytes`, a view of `block`, with a hold of its own.
   *
   * @param block The block the bytes lie in.
   * @param bytes The view lent.
   */
  constructor(block: Block, bytes: Uint8Array<ArrayBuffer> = block.bytes) {
    this.#block = block;
    this.bytes = bytes;
    block.holders++;
  }

  /** The length of the bytes. */
  get length(): number {
    return this.bytes.length;
  }

  /**
   * Lends another view of the same block, `bytes.subarray(begin, end)`,
   * with a hold of its own: the block is not reused until both are released.
   *
   * @param begin Start, within these bytes.
   * @param end End, within these bytes.
   * @returns The new hold.
   * @throws {TypeError} once this one was released.
   */
  hold(begin = 0, end: number = this.bytes.length): PooledBytes {
    if (this.#block === null) throw new TypeError("Cannot hold pooled bytes: they were released");
    return new PooledBytes(this.#block, this.bytes.subarray(begin, end));
  }

  /** Gives this hold back; the block is reused once no one holds it. Safe to call twice. */
  release(): void {
    const block = this.#block;
    if (block === null) return;
    this.#block = null;
    if (--block.holders === 0) block.free(block);
  }
}

/** Body bytes as they travel: plain, or lent from a pool. */
export type Bytes = Uint8Array | PooledBytes;

/**
 * The bytes themselves, pooled or not.
 *
 * @example Usage
 * ```ts
 * import assert from "node:assert/strict";
 * import { bytesOf } from "./pooled_bytes.ts";
 *
 * assert.deepEqual(bytesOf(new Uint8Array([1, 2])), new Uint8Array([1, 2]));
 * ```
 *
 * @param bytes Plain or pooled bytes.
 * @returns The plain view.
 */
export function bytesOf(bytes: Bytes): Uint8Array {
  return bytes instanceof PooledBytes ? bytes.bytes : bytes;
}

/**
 * Gives back the hold of pooled bytes; does nothing for plain ones.
 *
 * @param bytes Plain or pooled bytes, no longer used.
 */
export function release(bytes: Bytes): void {
  if (bytes instanceof PooledBytes) bytes.release();
}
