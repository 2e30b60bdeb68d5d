/**
 * `connReadable()`: a connection's bytes as a `ReadableStream`, read in large
 * blocks.
 *
 * Deno's `conn.readable` hands out chunks of at most 64 KiB, one promise each,
 * which costs a third of the wire speed on the body path (see
 * docs/PERFORMANCE.md). This source reads with `conn.read` into the free tail
 * of a large block and hands out views of what arrived. A block is never
 * reused: the frame decoder passes views of it downstream, so a new block is
 * allocated once the free tail is small.
 *
 * @module
 */

/** Options for {@linkcode connReadable}. */
export interface ConnReadableOptions {
  /**
   * Size of each block read into.
   *
   * @default {4194304}
   */
  blockSize?: number;
  /**
   * A new block is allocated when less than this is left free in the current one.
   *
   * @default {262144}
   */
  minRead?: number;
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
  const blockSize = options.blockSize ?? 4 * 1024 * 1024;
  const minRead = Math.min(options.minRead ?? 256 * 1024, blockSize);
  let block = new Uint8Array(0);
  let used = 0;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (block.length - used < minRead) {
        block = new Uint8Array(blockSize);
        used = 0;
      }
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
    },
  }, { highWaterMark: 0 });
}
