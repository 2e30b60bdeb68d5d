/**
 * `fileChunks()`: reads a file (or standard input) in large, fresh chunks,
 * the shape a body is sent in.
 *
 * @module
 */

import { MAX_DATA_PAYLOAD } from "./frames.ts";
import type { PooledBytes } from "./pooled_bytes.ts";
import { transferMemory } from "./transfer_memory.ts";

/** Anything with Deno's `read(buffer)` contract: a file, standard input. */
export interface ByteSource {
  /** Reads into `buffer`, resolving to the byte count, or null at the end. */
  read(buffer: Uint8Array): Promise<number | null>;
  /** The same, synchronously: for small known remainders, and for every read without read-ahead. */
  readSync?(buffer: Uint8Array): number | null;
}

/** Options for {@linkcode fileChunks}. */
export interface FileChunksOptions {
  /**
   * Stop after this many bytes.
   *
   * @default {Infinity}
   */
  limit?: number;
  /**
   * Read the next chunk on Deno's blocking-I/O thread while the caller works
   * on this one: for a server, where a read that waits for the disk must not
   * hold the event loop. False reads every chunk synchronously, in turn
   * (when the source can): for a client sending its one file, where it
   * costs less and paces the body evenly (docs/PERFORMANCE.md).
   *
   * @default {true}
   */
  readAhead?: boolean;
}

/** A known remainder up to this size is read synchronously (an async read costs 40-60 us here). */
const SMALL_READ_BYTES = 64 * 1024;

/**
 * Yields the bytes of `source` in chunks of `transferMemory.pieceBytes()`
 * (1 MiB for a lone transfer, smaller when many run at once; the last one
 * shorter), each `PooledBytes` that the caller owns: its block is read into
 * again only once the chunk is released (the channel does, once the socket
 * has taken the bytes), so they can be queued for the socket without a copy.
 * With read-ahead (the default), the next chunk is read while the caller
 * works on the current one (one read in flight) as long as chunks are of
 * the largest size; smaller ones mean many transfers share the budget, and
 * the next is then read (still asynchronously) once the caller asks for it.
 *
 * @param source What to read.
 * @param options The limit, and whether to read ahead.
 */
export async function* fileChunks(source: ByteSource, options: FileChunksOptions = {}): AsyncGenerator<PooledBytes> {
  let left = options.limit ?? Infinity;
  const readAhead = options.readAhead ?? true;
  const readNext = async (): Promise<PooledBytes | null> => {
    if (left <= 0) return null;
    const size = Math.min(left, transferMemory.pieceBytes());
    const held = transferMemory.take(size);
    const readSync = left <= SMALL_READ_BYTES || !readAhead ? source.readSync?.bind(source) : undefined;
    let filled = 0;
    try {
      while (filled < size) {
        const room = held.bytes.subarray(filled, size);
        const n = readSync ? readSync(room) : await source.read(room);
        if (n === null) break;
        filled += n;
      }
    } catch (error) {
      held.release();
      throw error;
    }
    left = filled < size ? 0 : left - filled;
    if (filled === 0) {
      held.release();
      return null;
    }
    if (filled === held.length) return held;
    // A short last chunk: a view of its own, and the whole block's hold goes.
    const chunk = held.hold(0, filled);
    held.release();
    return chunk;
  };
  if (!readAhead) {
    for (let chunk = await readNext(); chunk !== null; chunk = await readNext()) yield chunk;
    return;
  }
  let next = readNext();
  try {
    while (true) {
      const chunk = await next;
      if (chunk === null) return;
      // With pieces below the largest, many transfers share the budget and keep the disk and the CPU busy
      // between them: a read ahead would only add a piece to each one's memory.
      const ahead = chunk.length >= MAX_DATA_PAYLOAD;
      if (ahead) next = readNext();
      yield chunk;
      if (!ahead) next = readNext();
    }
  } finally {
    // A caller that stops early must not close the file under a read still in flight.
    await next.catch(() => {});
  }
}
