/**
 * Bodies for the in-process clients, made in memory instead of read from
 * disk: a random 1 MiB block per body, each chunk a fresh copy of it with the
 * chunk's index written into its first bytes (so every MiB differs), and the
 * SHA-256 of such a body, or of what came back.
 *
 * @module
 */

import { createHash } from "node:crypto";

/** The size of each chunk a body yields (the protocol's DATA limit). */
export const CHUNK_BYTES = 1024 * 1024;
/** The most `crypto.getRandomValues` fills in one call. */
const RANDOM_PIECE = 64 * 1024;

/** A body of a given size, the same bytes every time it is iterated. */
export class GeneratedBody {
  /** Its length in bytes. */
  readonly size: number;
  readonly #block: Uint8Array;
  #sha256: string | null = null;

  /**
   * Makes a body with a fresh random block.
   *
   * @param size Its length in bytes.
   */
  constructor(size: number) {
    this.size = size;
    this.#block = new Uint8Array(Math.min(size, CHUNK_BYTES));
    for (let offset = 0; offset < this.#block.length; offset += RANDOM_PIECE) {
      crypto.getRandomValues(this.#block.subarray(offset, offset + RANDOM_PIECE));
    }
  }

  /**
   * Yields the body in chunks of {@linkcode CHUNK_BYTES} (the last may be
   * shorter), each a new buffer that is never written again. The first
   * iteration to reach the end also computes the SHA-256, unless
   * {@linkcode GeneratedBody.sha256} has already (call that first to keep
   * the hashing out of a timed run).
   */
  async *chunks(): AsyncGenerator<Uint8Array> {
    if (this.#sha256 !== null) {
      yield* this.#pieces();
      return;
    }
    const hash = createHash("sha256");
    for (const piece of this.#pieces()) {
      hash.update(piece);
      yield piece;
    }
    this.#sha256 ??= hash.digest("hex");
  }

  /** The body's SHA-256 in lower-case hex, computed now unless known already. */
  sha256(): string {
    if (this.#sha256 === null) {
      const hash = createHash("sha256");
      for (const piece of this.#pieces()) hash.update(piece);
      this.#sha256 = hash.digest("hex");
    }
    return this.#sha256;
  }

  *#pieces(): Generator<Uint8Array> {
    for (let index = 0, offset = 0; offset < this.size; index++, offset += CHUNK_BYTES) {
      const chunk = new Uint8Array(Math.min(CHUNK_BYTES, this.size - offset));
      chunk.set(this.#block.subarray(0, chunk.length));
      if (chunk.length >= 4) new DataView(chunk.buffer).setUint32(0, index);
      yield chunk;
    }
  }
}

/**
 * Yields one buffer: a small body.
 *
 * @param bytes The body.
 */
export async function* oneChunk(bytes: Uint8Array): AsyncGenerator<Uint8Array> {
  yield bytes;
}

/**
 * Reads a body to its end and hashes it.
 *
 * @param chunks The body (for a download: `body.chunks()`, which also checks the protocol's own digest).
 * @returns Its length and SHA-256 in lower-case hex.
 */
export async function sha256Of(chunks: AsyncIterable<Uint8Array>): Promise<{ size: number; sha256: string }> {
  const hash = createHash("sha256");
  let size = 0;
  for await (const chunk of chunks) {
    hash.update(chunk);
    size += chunk.length;
  }
  return { size, sha256: hash.digest("hex") };
}
