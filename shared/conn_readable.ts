/**
 * `connReadable()`: a connection's bytes as a `ReadableStream`, read in large
 * blocks.
 *
 * Deno's `conn.readable` hands out chunks of at most 64 KiB, one promise each,
 * which costs a third of the wire speed on the body path (see
 * docs/PERFORMANCE.md). This source reads with `conn.read` into the free tail
 * of a block and hands out views of what arrived. A block is never reused:
 * the frame decoder passes views of it downstream, so a new block is
 * allocated once the free tail is small. Blocks start small (an idle
 * connection costs little memory) and grow while a body streams in.
 *
 * @module
 */

import { pieceBytes } from "./transfer_budget.ts";

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
   * @default {`pieceBytes()`: 1 MiB for a lone transfer, less when many run at once}
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
 * @returns The bytes, as views into blocks that are never written again.
 */
export function connReadable(
  conn: ConnReader,
  options: ConnReadableOptions = {},
): ReadableStream<Uint8Array> {
  const minBlockSize = options.minBlockSize ?? 16 * 1024;
  const maxBlockSize = () => Math.max(minBlockSize, options.maxBlockSize ?? pieceBytes());
  let blockSize = minBlockSize;
  let block = new Uint8Array(0);
  let used = 0;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      // A tail of less than 1/16 of the block is not worth a read: take a new block.
      if (block.length - used < blockSize / 16) {
        block = new Uint8Array(blockSize);
        used = 0;
      }
      const free = block.length - used;
      let n: number | null;
      try {
        n = await conn.read(block.subarray(used));
      } catch (error) {
        if (error instanceof Deno.errors.BadResource || error instanceof Deno.errors.Interrupted) {
          controller.close();
          return;
        }
        throw error;
      }
      if (n === null) {
        controller.close();
        return;
      }
      controller.enqueue(block.subarray(used, used + n));
      used += n;
      // A read that filled all the room there was means more is waiting: read bigger next time.
      // One that did not means the sender is not ahead of us: drop back to small blocks.
      blockSize = n === free ? Math.min(blockSize * 4, maxBlockSize()) : n < minBlockSize ? minBlockSize : blockSize;
    },
  }, { highWaterMark: 0 });
}
