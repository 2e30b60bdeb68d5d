/**
 * `Chunker`: content-defined chunking (FastCDC with normalized chunking, Xia
 * et al., USENIX ATC 2016 and IEEE TPDS 2020), and `chunkHashes()`, which
 * yields each chunk of a stream of bytes with its SHA-256. Client and server
 * cut the same bytes at the same places, so a file's chunk list is part of
 * the protocol: the parameters, the gear table and the cut rule below must
 * never change without a new protocol version.
 *
 * The cut rule. A chunk's bytes are numbered from 1. The fingerprint `fp`
 * (32 bits) starts at 0 at each chunk; for byte number `n >= min` it becomes
 * `fp = (fp << 1) + GEAR[byte]` (mod 2^32), and the chunk ends after that
 * byte when `fp & mask === 0`, where `mask` is `maskS` (the top
 * `log2(avg) + 1` bits) while `n <= avg` and `maskL` (the top `log2(avg) - 1`
 * bits) after (normalization level 1); it ends after byte `max` in any case,
 * and at the end of the input. The top
 * bits of a gear fingerprint depend on the last 32 bytes, so a cut depends
 * only on the 32 bytes before it and on where the chunk began: an edit moves
 * the cuts near it, and those after it fall back into step within a chunk or
 * a few (docs/PERFORMANCE.md, "Chunking, for issue 12").
 *
 * Invariants: the cuts do not depend on how the input is split into pieces;
 * every chunk but the last is `min` to `max` bytes long; the same bytes give
 * the same chunks on every machine.
 *
 * @module
 */

/** The parameters of a {@linkcode Chunker}, in bytes. */
export interface ChunkerOptions {
  /**
   * No chunk but the last is shorter. Bytes before it are not hashed.
   *
   * @default {16384}
   */
  minSize?: number;
  /**
   * The target mean: a power of two, with `minSize <= avgSize <= maxSize`.
   *
   * @default {65536}
   */
  avgSize?: number;
  /**
   * No chunk is longer.
   *
   * @default {262144}
   */
  maxSize?: number;
  /**
   * Normalization level: `maskS` has `log2(avgSize) + level` bits and
   * `maskL` `log2(avgSize) - level`. Higher levels bunch chunk sizes closer
   * to the mean; lower ones let cuts realign sooner after an edit.
   *
   * @default {1}
   */
  normalization?: number;
}

/** Where one chunk lies in the input. */
export interface ChunkBoundary {
  /** Its first byte's offset from the start of the input. */
  offset: number;
  /** Its length in bytes. */
  length: number;
}

/** A chunk with its content hash, as {@linkcode chunkHashes} yields it. */
export interface ChunkHash extends ChunkBoundary {
  /** SHA-256 of the chunk's bytes, lower-case hex. */
  sha256: string;
}

/** The protocol's chunk sizes (docs/PERFORMANCE.md, "Chunking, for issue 12", says why). */
export const CHUNK_MIN_BYTES = 16 * 1024;
/** The protocol's target mean chunk size. */
export const CHUNK_AVG_BYTES = 64 * 1024;
/** The protocol's largest chunk. */
export const CHUNK_MAX_BYTES = 256 * 1024;

/** The protocol's normalization level. */
export const CHUNK_NORMALIZATION = 1;

/**
 * The gear table: 256 pseudo-random 32-bit values, one per byte value.
 * `GEAR[i]` is Chris Wellons' "lowbias32" integer hash of `i + 0x64666f73`
 * (the ASCII bytes "dfos"): `x ^= x >>> 16; x *= 0x7feb352d; x ^= x >>> 15;
 * x *= 0x846ca68b; x ^= x >>> 16`, multiplications mod 2^32. Part of the
 * protocol: chunker_test.ts pins its SHA-256.
 */
export const GEAR: Int32Array = makeGear();

function makeGear(): Int32Array {
  const table = new Int32Array(256);
  for (let i = 0; i < 256; i++) {
    let x = (i + 0x64666f73) | 0;
    x ^= x >>> 16;
    x = Math.imul(x, 0x7feb352d);
    x ^= x >>> 15;
    x = Math.imul(x, 0x846ca68b);
    x ^= x >>> 16;
    table[i] = x;
  }
  return table;
}

/** The mask of the top `bits` bits of a 32-bit word, as a signed 32-bit integer. */
function topBits(bits: number): number {
  return (~0 << (32 - bits)) | 0;
}

/**
 * Cuts a stream of bytes into content-defined chunks. Feed it the input in
 * pieces of any size with {@linkcode Chunker.push}, then call
 * {@linkcode Chunker.finish}: the chunks are the same however the input was
 * split.
 *
 * @example Usage
 * ```ts
 * import { Chunker } from "./chunker.ts";
 * import { deepStrictEqual } from "node:assert/strict";
 * const bytes = new Uint8Array(1 << 20).map((_, i) => (i * 2654435761) >>> 24);
 * const whole = new Chunker();
 * const a = [...whole.push(bytes), ...whole.finish()];
 * const split = new Chunker();
 * const b = [...split.push(bytes.subarray(0, 1000)), ...split.push(bytes.subarray(1000)), ...split.finish()];
 * deepStrictEqual(a, b);
 * ```
 */
export class Chunker {
  readonly #min: number;
  readonly #avg: number;
  readonly #max: number;
  readonly #maskS: number;
  readonly #maskL: number;
  /** Offset of the current chunk's first byte. */
  #start = 0;
  /** Bytes of the current chunk seen so far. */
  #length = 0;
  /** The fingerprint over the current chunk's hashed bytes. */
  #fp = 0;

  /**
   * Makes a chunker.
   *
   * @param options The chunk sizes; the defaults are the protocol's.
   */
  constructor(options: ChunkerOptions = {}) {
    const min = options.minSize ?? CHUNK_MIN_BYTES;
    const avg = options.avgSize ?? CHUNK_AVG_BYTES;
    const max = options.maxSize ?? CHUNK_MAX_BYTES;
    const bits = Math.log2(avg);
    if (!Number.isInteger(bits) || bits < 6 || bits > 28) {
      throw new RangeError(`Cannot make a chunker: average size "${avg}" is not a power of two from 64 to 2^28`);
    }
    if (!Number.isSafeInteger(min) || !Number.isSafeInteger(max) || min < 1 || min > avg || max < avg) {
      throw new RangeError(`Cannot make a chunker: sizes "${min}", "${avg}", "${max}" are not 1 <= min <= avg <= max`);
    }
    this.#min = min;
    this.#avg = avg;
    this.#max = max;
    const level = options.normalization ?? CHUNK_NORMALIZATION;
    if (!Number.isInteger(level) || level < 0 || level > bits - 1 || bits + level > 31) {
      throw new RangeError(`Cannot make a chunker: normalization level "${level}" is out of range`);
    }
    this.#maskS = topBits(bits + level);
    this.#maskL = topBits(bits - level);
  }

  /**
   * Takes the next piece of the input and returns the chunks that end in it
   * (none, one or many), in order. The piece is not kept.
   *
   * @param piece The next bytes of the input.
   * @returns The chunks completed by this piece.
   */
  push(piece: Uint8Array): ChunkBoundary[] {
    const done: ChunkBoundary[] = [];
    const gear = GEAR;
    const min = this.#min, avg = this.#avg, max = this.#max;
    const maskS = this.#maskS, maskL = this.#maskL;
    const end = piece.length;
    let length = this.#length;
    let fp = this.#fp;
    let i = 0;
    while (i < end) {
      // Bytes before the min-th are only counted.
      if (length < min - 1) {
        const skip = Math.min(min - 1 - length, end - i);
        length += skip;
        i += skip;
        continue;
      }
      let cut = false;
      if (length < avg) {
        const stop = Math.min(end, i + (avg - length));
        let j = i;
        for (; j < stop; j++) {
          fp = ((fp << 1) + gear[piece[j]]) | 0;
          if ((fp & maskS) === 0) {
            cut = true;
            j++;
            break;
          }
        }
        length += j - i;
        i = j;
      }
      if (!cut && length >= avg && i < end) {
        const stop = Math.min(end, i + (max - length));
        let j = i;
        for (; j < stop; j++) {
          fp = ((fp << 1) + gear[piece[j]]) | 0;
          if ((fp & maskL) === 0) {
            cut = true;
            j++;
            break;
          }
        }
        length += j - i;
        i = j;
      }
      if (cut || length === max) {
        done.push({ offset: this.#start, length });
        this.#start += length;
        length = 0;
        fp = 0;
      }
    }
    this.#length = length;
    this.#fp = fp;
    return done;
  }

  /**
   * Ends the input: returns the last chunk (shorter than `min` perhaps), or
   * nothing when the input ended on a cut or was empty. The chunker is then
   * ready for a new input.
   *
   * @returns The last chunk, if any, as a list of zero or one.
   */
  finish(): ChunkBoundary[] {
    const last = this.#length > 0 ? [{ offset: this.#start, length: this.#length }] : [];
    this.#start = 0;
    this.#length = 0;
    this.#fp = 0;
    return last;
  }
}

/**
 * Yields the chunks of a stream of bytes with the SHA-256 of each, in order.
 * Each piece is wholly hashed before anything is yielded for it, so the
 * source may reuse a piece's buffer once the next one is asked for.
 * `node:crypto` is imported on the first call, not with this module.
 *
 * @param pieces The input, in pieces of any size (a file's reads, a body's DATA frames).
 * @param options The chunk sizes; the defaults are the protocol's.
 * @returns The chunks, each with its offset, length and hash.
 *
 * @example Usage
 * ```ts
 * import { chunkHashes } from "./chunker.ts";
 * import { strictEqual } from "node:assert/strict";
 * const chunks = await Array.fromAsync(chunkHashes([new Uint8Array(3)]));
 * strictEqual(chunks.length, 1);
 * strictEqual(chunks[0].sha256, "709e80c88487a2411e1ee4dfb9f22a861492d20c4765150c0c794abd70f8147c");
 * ```
 */
export async function* chunkHashes(
  pieces: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  options: ChunkerOptions = {},
): AsyncGenerator<ChunkHash> {
  const { createHash } = await import("node:crypto");
  const chunker = new Chunker(options);
  let hash = createHash("sha256");
  let offset = 0;
  for await (const piece of pieces) {
    const done: ChunkHash[] = [];
    let from = 0;
    for (const chunk of chunker.push(piece)) {
      const to = chunk.offset + chunk.length - offset;
      hash.update(piece.subarray(from, to));
      done.push({ ...chunk, sha256: hash.digest("hex") });
      hash = createHash("sha256");
      from = to;
    }
    if (from < piece.length) hash.update(piece.subarray(from));
    offset += piece.length;
    yield* done;
  }
  for (const chunk of chunker.finish()) yield { ...chunk, sha256: hash.digest("hex") };
}
