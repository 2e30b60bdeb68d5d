/**
 * Block deltas inside a changed chunk, rsync's way: one side (the one that
 * has the old bytes) sends block sums of them, the other finds its new
 * chunk's blocks among them at any byte offset (a rolling weak sum, then a
 * strong one) and describes the chunk as copies of old bytes and the
 * literal bytes that match nothing. A content-defined chunk around a small
 * edit costs 16 to 256 KiB when sent whole; its delta costs the edit, a few
 * blocks around it and 12 bytes of sums per old block
 * (docs/PROTOCOL.md "Deltas", docs/PERFORMANCE.md).
 *
 * - A **sum** is 12 bytes: the weak sum (uint32, rsync's: the byte sum and
 *   the sum of the running sums, each mod 2^16) and the first 8 bytes of the
 *   block's SHA-256. A false match costs nothing but bytes: the receiver
 *   checks every chunk it builds against the chunk's SHA-256.
 * - **Ops** describe a chunk: `0x00` offset (uint64) length (uint32), copy
 *   that many old bytes (at least {@linkcode MIN_BLOCK_BYTES}: whole
 *   blocks); `0x01` length (uint32) then the bytes, literal.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { SUM_BYTES } from "./chunk_list.ts";
import { DfosError, Status } from "./status.ts";

export { SUM_BYTES };

/** The smallest and largest block a sum may cover. */
export const MIN_BLOCK_BYTES = 512;
export const MAX_BLOCK_BYTES = 64 * 1024;

const OP_COPY = 0x00;
const OP_LITERAL = 0x01;

/** One op of a chunk's delta. */
export type DeltaOp = { kind: "copy"; offset: number; length: number } | { kind: "literal"; bytes: Uint8Array };

/** A range of the old bytes. */
export interface Range {
  offset: number;
  length: number;
}

/**
 * The block size for sums over `bytes` old bytes: about sqrt(6 x bytes)
 * (what balances 12 bytes of sums per block against a block's worth of
 * literal bytes on each side of an edit), a power of two from
 * {@linkcode MIN_BLOCK_BYTES} to 8 KiB.
 *
 * @param bytes The old bytes to be summed.
 * @returns The block size.
 *
 * @example Usage
 * ```ts
 * import { blockSizeFor } from "./block_delta.ts";
 * import { strictEqual } from "node:assert/strict";
 * strictEqual(blockSizeFor(70_000), 512);
 * strictEqual(blockSizeFor(16 * 1024 * 1024), 8192);
 * ```
 */
export function blockSizeFor(bytes: number): number {
  const ideal = Math.sqrt(6 * Math.max(bytes, 1));
  let block = MIN_BLOCK_BYTES;
  while (block * 2 <= ideal && block < 8192) block *= 2;
  return block;
}

/** The weak sum of `bytes[from, to)`. */
function weakOf(bytes: Uint8Array, from: number, to: number): { a: number; b: number } {
  let a = 0;
  let b = 0;
  for (let i = from; i < to; i++) {
    a = (a + bytes[i]) & 0xffff;
    b = (b + a) & 0xffff;
  }
  return { a, b };
}

function strongOf(bytes: Uint8Array): Uint8Array {
  return Uint8Array.from(createHash("sha256").update(bytes).digest().subarray(0, 8));
}

/**
 * The sums of `bytes` in blocks of `block` (the last may be shorter), 12
 * bytes each, in order.
 *
 * @param bytes Old bytes.
 * @param block The block size.
 * @returns The sums.
 */
export function blockSums(bytes: Uint8Array, block: number): Uint8Array {
  const count = Math.ceil(bytes.length / block);
  const out = new Uint8Array(count * SUM_BYTES);
  const view = new DataView(out.buffer);
  for (let i = 0; i < count; i++) {
    const from = i * block;
    const to = Math.min(from + block, bytes.length);
    const { a, b } = weakOf(bytes, from, to);
    view.setUint32(i * SUM_BYTES, (b << 16 | a) >>> 0);
    out.set(strongOf(bytes.subarray(from, to)), i * SUM_BYTES + 4);
  }
  return out;
}

/** Old blocks by weak sum: where each lies in the old bytes, and its strong sum. */
export class BlockTable {
  readonly block: number;
  readonly #byWeak = new Map<number, { offset: number; strong: Uint8Array }[]>();
  /** A 16-bit tag of each weak sum in the table (rsync's tag table): most offsets are ruled out by one load. */
  readonly #tags = new Uint8Array(1 << 16);
  #size = 0;

  /** @param block The block size the sums cover. */
  constructor(block: number) {
    if (!Number.isSafeInteger(block) || block < MIN_BLOCK_BYTES || block > MAX_BLOCK_BYTES) {
      throw new DfosError(
        Status.BAD_REQUEST,
        `Cannot use blocks of ${block} bytes (${MIN_BLOCK_BYTES} to ${MAX_BLOCK_BYTES})`,
      );
    }
    this.block = block;
  }

  /** Blocks in the table. */
  get size(): number {
    return this.#size;
  }

  /**
   * Adds the sums of one range of old bytes: its whole blocks (a short last
   * block is left out: it could only match at the end of a chunk).
   *
   * @param range Where the summed bytes lie in the old file.
   * @param sums Their sums, as {@linkcode blockSums} makes them.
   */
  add(range: Range, sums: Uint8Array): void {
    const view = new DataView(sums.buffer, sums.byteOffset, sums.length);
    const whole = Math.floor(range.length / this.block);
    for (let i = 0; i < whole && (i + 1) * SUM_BYTES <= sums.length; i++) {
      const weak = view.getUint32(i * SUM_BYTES);
      const entry = {
        offset: range.offset + i * this.block,
        strong: sums.subarray(i * SUM_BYTES + 4, (i + 1) * SUM_BYTES),
      };
      this.#tags[tagOf(weak)] = 1;
      const found = this.#byWeak.get(weak);
      if (found === undefined) this.#byWeak.set(weak, [entry]);
      else if (found.length < 8) found.push(entry);
      this.#size++;
    }
  }

  /**
   * Describes `bytes` (a new chunk) as copies of old blocks and literal
   * bytes: the weak sum rolls over every byte offset; a weak match is
   * confirmed by the strong sum. Adjacent copies are merged.
   *
   * @param bytes The new chunk.
   * @returns Its ops, whose lengths add up to its length.
   */
  delta(bytes: Uint8Array): DeltaOp[] {
    const block = this.block;
    const ops: DeltaOp[] = [];
    let literalFrom = 0;
    const copyAt = (offset: number) => {
      const last = ops.at(-1);
      if (last?.kind === "copy" && last.offset + last.length === offset) last.length += block;
      else ops.push({ kind: "copy", offset, length: block });
    };
    const tags = this.#tags;
    if (bytes.length >= block && this.#size > 0) {
      let at = 0;
      let { a, b } = weakOf(bytes, 0, block);
      while (true) {
        const weak = (b << 16 | a) >>> 0;
        const found = tags[tagOf(weak)] === 0 ? undefined : this.#byWeak.get(weak);
        let matched = false;
        if (found !== undefined) {
          const strong = strongOf(bytes.subarray(at, at + block));
          const hit = found.find((entry) => entry.strong.every((byte, i) => byte === strong[i]));
          if (hit !== undefined) {
            if (at > literalFrom) ops.push({ kind: "literal", bytes: bytes.subarray(literalFrom, at) });
            copyAt(hit.offset);
            at += block;
            literalFrom = at;
            matched = true;
            if (at + block > bytes.length) break;
            ({ a, b } = weakOf(bytes, at, at + block));
          }
        }
        if (!matched) {
          if (at + block >= bytes.length) break;
          // Roll one byte: drop bytes[at], take bytes[at + block].
          const out = bytes[at];
          const into = bytes[at + block];
          a = (a - out + into) & 0xffff;
          b = (b - block * out + a) & 0xffff;
          at++;
        }
      }
    }
    if (literalFrom < bytes.length) ops.push({ kind: "literal", bytes: bytes.subarray(literalFrom) });
    return ops;
  }
}

/** A weak sum's tag: its two halves folded into 16 bits. */
function tagOf(weak: number): number {
  return ((weak >>> 16) ^ weak) & 0xffff;
}

/**
 * The ops as bytes.
 *
 * @param ops The ops.
 * @returns Their encoding.
 */
export function encodeOps(ops: readonly DeltaOp[]): Uint8Array {
  let size = 0;
  for (const op of ops) size += op.kind === "copy" ? 13 : 5 + op.bytes.length;
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  let at = 0;
  for (const op of ops) {
    if (op.kind === "copy") {
      out[at] = OP_COPY;
      view.setBigUint64(at + 1, BigInt(op.offset));
      view.setUint32(at + 9, op.length);
      at += 13;
    } else {
      out[at] = OP_LITERAL;
      view.setUint32(at + 1, op.bytes.length);
      out.set(op.bytes, at + 5);
      at += 5 + op.bytes.length;
    }
  }
  return out;
}

/**
 * Reads ops; refuses (`BAD_REQUEST`) bytes that are not whole ops, an op of
 * length 0, or ops that do not make exactly `length` bytes.
 *
 * @param bytes The encoded ops.
 * @param length The bytes they must make.
 * @returns The ops (literal bytes are views of `bytes`).
 */
export function decodeOps(bytes: Uint8Array, length: number): DeltaOp[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  const ops: DeltaOp[] = [];
  const bad = (why: string) => new DfosError(Status.BAD_REQUEST, `Cannot read a delta: ${why}`);
  let at = 0;
  let made = 0;
  while (at < bytes.length) {
    if (bytes[at] === OP_COPY) {
      if (at + 13 > bytes.length) throw bad("a copy cut short");
      const offset = Number(view.getBigUint64(at + 1));
      const n = view.getUint32(at + 9);
      // A copy is of whole blocks, so at least the smallest: a chunk's ops stay few (at most 512 copies).
      if (n < MIN_BLOCK_BYTES || !Number.isSafeInteger(offset)) throw bad(`a copy of ${n} bytes, or at ${offset}`);
      ops.push({ kind: "copy", offset, length: n });
      made += n;
      at += 13;
    } else if (bytes[at] === OP_LITERAL) {
      if (at + 5 > bytes.length) throw bad("a literal cut short");
      const n = view.getUint32(at + 1);
      if (n === 0 || at + 5 + n > bytes.length) throw bad("an empty literal, or one cut short");
      ops.push({ kind: "literal", bytes: bytes.subarray(at + 5, at + 5 + n) });
      made += n;
      at += 5 + n;
    } else {
      throw bad(`unknown op 0x${bytes[at].toString(16)}`);
    }
    if (made > length) throw bad(`the ops make more than ${length} bytes`);
  }
  if (made !== length) throw bad(`the ops make ${made} bytes, not ${length}`);
  return ops;
}
