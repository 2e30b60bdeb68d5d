/**
 * The chunk list of a local file (docs/PROTOCOL.md, "Chunks"), as the server
 * computes it for its copy: shared/chunker.ts's cuts, each chunk named by the
 * SHA-256 of its bytes, the root over them. `put --resume`, `get --resume`,
 * `push` and `pull` compare it with the server's.
 *
 * @module
 */

import { type ChunkEntry, fromHex } from "../shared/chunk_list.ts";
import { rootOf } from "../shared/chunk_groups.ts";
import { chunkHashes } from "../shared/chunker.ts";

/** Bytes read from the file at once while its chunks are computed. */
const READ_BYTES = 1 << 20;

/** A chunk of a local file: its entry and where it lies. */
export interface LocalChunk extends ChunkEntry {
  /** Its first byte's offset in the file. */
  offset: number;
}

/**
 * Computes a local file's chunk list, reading it once.
 *
 * @param path The local file.
 * @returns Its chunk entries (binary hashes), root and size.
 */
export async function localChunkList(path: string): Promise<{ entries: ChunkEntry[]; root: string; size: number }> {
  const { chunks, root, size } = await localChunks(path);
  return { entries: chunks.map(({ hash, length }) => ({ hash, length })), root, size };
}

/**
 * Computes a local file's chunks with their offsets, reading it once.
 *
 * @param path The local file.
 * @param options `limit`: read only the first `limit` bytes (a partial download's verified prefix is all whole chunks
 *   up to its last cut; the chunks past `limit` are not included).
 * @returns Its chunks, root and the bytes read.
 */
export async function localChunks(
  path: string,
  options: { limit?: number } = {},
): Promise<{ chunks: LocalChunk[]; root: string; size: number }> {
  using file = Deno.openSync(path, { read: true });
  const limit = options.limit ?? Infinity;
  let size = 0;
  // No larger than the file: a new buffer is zeroed whole, and most files are far smaller than READ_BYTES.
  const buffer = new Uint8Array(Math.max(1, Math.min(READ_BYTES, limit, file.statSync().size)));
  async function* pieces(): AsyncGenerator<Uint8Array> {
    while (size < limit) {
      const want = Math.min(buffer.length, limit - size);
      const n = file.readSync(buffer.subarray(0, want));
      if (n === null) return;
      size += n;
      yield buffer.subarray(0, n);
    }
  }
  return { ...await chunksOf(pieces()), size };
}

/**
 * Computes the chunks of bytes in memory (a small file read whole).
 *
 * @param bytes The file's bytes.
 * @returns Its chunks and root.
 */
export function memoryChunks(bytes: Uint8Array): Promise<{ chunks: LocalChunk[]; root: string }> {
  return chunksOf([bytes]);
}

/**
 * Computes the chunks of bytes that come in pieces (a file read, a download
 * as it is written). Each piece is done with before the next is asked for,
 * so a piece's buffer may be reused once the next one is.
 *
 * @param pieces The bytes, in order.
 * @returns Their chunks and root.
 */
export async function chunksOf(
  pieces: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
): Promise<{ chunks: LocalChunk[]; root: string }> {
  const chunks: LocalChunk[] = [];
  for await (const chunk of chunkHashes(pieces)) {
    chunks.push({ hash: fromHex(chunk.sha256)!, length: chunk.length, offset: chunk.offset });
  }
  return { chunks, root: rootOf(chunks) };
}

/**
 * Reads ranges of an open file that mostly come in order (a recipe's data
 * steps, an old file's chunks): a block of at least {@linkcode BLOCK_BYTES} at
 * a time, so that a run of 64 KiB chunks costs one read, not a seek and a read
 * each. Every block is a new array: a range it gave stays valid while the
 * next ones are read.
 */
export class BlockReader {
  readonly #file: Deno.FsFile;
  #start = 0;
  #block = new Uint8Array(0);
  /** The file's size when first read, to make no block larger than what is left of it. */
  #size = -1;
  /** Where the file's position is: after the last block read (-1: not known yet). */
  #position = -1;

  /** @param file The file, open for reading (positioned anywhere). */
  constructor(file: Deno.FsFile) {
    this.#file = file;
  }

  /**
   * The `length` bytes at `offset`, whole.
   *
   * @param offset Where to start.
   * @param length How many bytes.
   * @returns The bytes (a view of a block; do not change them).
   * @throws {Error} when the file ends before them.
   */
  read(offset: number, length: number): Promise<Uint8Array> {
    try {
      return Promise.resolve(this.#read(offset, length));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** {@linkcode BlockReader.read}, with synchronous reads: an async one costs a hand-over to another thread. */
  #read(offset: number, length: number): Uint8Array {
    const from = offset - this.#start;
    if (from >= 0 && from + length <= this.#block.length) return this.#block.subarray(from, from + length);
    if (this.#position !== offset) this.#file.seekSync(offset, Deno.SeekMode.Start);
    if (this.#size < 0) this.#size = this.#file.statSync().size;
    // A new block is zeroed whole: no larger than what is left of the file (unless it grew since: then as asked).
    const block = new Uint8Array(Math.max(length, Math.min(BLOCK_BYTES, this.#size - offset)));
    let at = 0;
    while (at < block.length) {
      const n = this.#file.readSync(block.subarray(at));
      if (n === null) break;
      at += n;
    }
    this.#position = offset + at;
    if (at < length) throw new Error(`the file ends at ${offset + at} bytes, before ${offset + length}`);
    this.#start = offset;
    this.#block = block.subarray(0, at);
    return block.subarray(0, length);
  }
}

/** What {@linkcode BlockReader} reads at once. */
export const BLOCK_BYTES = 4 * 1024 * 1024;
