/**
 * `connReadable()`: a connection's bytes as a `ReadableStream`, read in large
 * blocks.
 *
 * Deno's `conn.readable` hands out chunks of at most 64 KiB, one promise each,
 * which costs a third of the wire speed on the body path (see
 * docs/PERFORMANCE.md). This source reads with `conn.read` into the free tail
 * of a block lent by `transferMemory` and hands out what arrived as
 * `PooledBytes`, each a hold of its own that its consumer releases; the
 * source holds the block while it fills it, and takes the next one once its
 * free tail is small. Blocks start small (an idle connection costs little
 * memory), grow while a body streams in, and go back to small once a read
 * shows the sender is not ahead.
 *
 * @module
 */

import type { PooledBytes } from "./pooled_bytes.ts";
import { transferMemory } from "./transfer_memory.ts";

/** Options for {@linkcode connReadable}. */
export interface ConnReadableOptions {
  /**
   * Size of the first block, and of blocks after the stream has been quiet:
   * an idle connection holds no more than this.
   *
   * @default {16384}
   */
  minBlockSize?: number;
  /**
   * The largest block. Blocks grow fourfold, up to this, while reads keep
   * filling them (a body is arriving).
   *
   * @default {`transferMemory.pieceBytes()`: 1 MiB for a lone transfer, less when many run at once}
   */
  maxBlockSize?: number;
}

/** What {@linkcode connReadable} reads from: a Deno connection or anything shaped like one. */
export interface ConnReader {
  /** Reads into `buffer`, resolving to the byte count, or null at end of stream. */
  read(buffer: Uint8Array): Promise<number | null>;
}

/**
 * Returns a stream of the bytes read from `conn`. The stream closes at end of
 * input and also when the connection is closed locally while a read is
 * pending (`BadResource`, `Interrupted`); other errors error the stream.
 *
 * @param conn The connection to read.
 * @param options Block sizes.
 * @returns The bytes, each a hold the consumer releases (else the block is not reused).
 */
export function connReadable(
  conn: ConnReader,
  options: ConnReadableOptions = {},
): ReadableStream<PooledBytes> {
  const minBlockSize = options.minBlockSize ?? 16 * 1024;
  const maxBlockSize = () => Math.max(minBlockSize, options.maxBlockSize ?? transferMemory.pieceBytes());
  let blockSize = minBlockSize;
  let held = transferMemory.take(0);
  let block = held.bytes;
  let used = 0;
  return new ReadableStream<PooledBytes>({
    async pull(controller) {
      // A tail of less than 1/16 of the block is not worth a read: take a new block. So is a large block once
      // the stream has gone quiet: a body has ended, and its block goes back to the pool (its other slices'
      // holders may be other transfers) rather than wait, held, for a tail that small messages fill slowly.
      if (block.length - used < blockSize / 16 || (blockSize === minBlockSize && block.length > minBlockSize)) {
        held.release();
        held = transferMemory.take(blockSize);
        block = held.bytes;
        used = 0;
      }
      const free = block.length - used;
      let n: number | null;
      try {
        n = await conn.read(block.subarray(used));
      } catch (error) {
        held.release();
        if (error instanceof Deno.errors.BadResource || error instanceof Deno.errors.Interrupted) {
          controller.close();
          return;
        }
        throw error;
      }
      if (n === null) {
        held.release();
        controller.close();
        return;
      }
      // The chunk may wait in the pipe while the next read goes into another block: it is a hold of its own.
      controller.enqueue(held.hold(used, used + n));
      used += n;
      // A read that filled all the room there was means more is waiting: read bigger next time.
      // One that did not means the sender is not ahead of us: drop back to small blocks.
      blockSize = n === free ? Math.min(blockSize * 4, maxBlockSize()) : n < minBlockSize ? minBlockSize : blockSize;
    },
    // No cancel(): a read may still be in flight into the block when the stream is cancelled, so its hold is
    // never released and the block is collected rather than reused.
  }, { highWaterMark: 0 });
}
