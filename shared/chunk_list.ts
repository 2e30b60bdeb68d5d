/**
 * A file's chunk list and what the chunk requests carry (docs/PROTOCOL.md,
 * "Chunks"): chunk entries, groups, the root, READ's ranges and the recipe
 * an ASSEMBLE body holds. Client and server compute groups and roots the same
 * way, so everything here is part of the protocol.
 *
 * - A chunk is a piece of a file as shared/chunker.ts cuts it, named by the
 *   SHA-256 of its bytes (its hash, 32 bytes).
 * - A group is a run of consecutive chunks: it ends after a chunk whose hash's
 *   first two bytes, read as a big-endian number, are a multiple of
 *   {@linkcode GROUP_DIVISOR} (and at the end of the list), so a group holds 64
 *   chunks on average and an edit changes the groups around it only. Its key is
 *   the SHA-256 of its chunks' hashes, concatenated.
 * - A file's root is the SHA-256 of all its chunks' hashes, concatenated (of
 *   nothing for an empty file): two files with the same root have the same
 *   bytes.
 *
 * The hashing (group keys, roots) is in shared/chunk_groups.ts: this module
 * loads no `node:crypto`, which every client command would otherwise pay for
 * at start (docs/PERFORMANCE.md, "Start-up").
 *
 * @module
 */

/** Groups end after a chunk whose hash's first two bytes are a multiple of this: 64 chunks a group on average. */
export const GROUP_DIVISOR = 64;

/** Bytes of one chunk entry on the wire and in a stored chunk list: hash (32), length (uint32). */
export const CHUNK_ENTRY_BYTES = 36;

/** Bytes of one group entry on the wire: key (32), chunks (uint32), bytes (uint64). */
export const GROUP_ENTRY_BYTES = 44;

/** Bytes of one READ range: offset (uint64), length (uint32). */
export const RANGE_BYTES = 12;

/** Bytes of a hash or a key. */
export const HASH_BYTES = 32;

/** One chunk of a file. */
export interface ChunkEntry {
  /** SHA-256 of its bytes. */
  hash: Uint8Array;
  /** Its length in bytes. */
  length: number;
}

/** One group of a chunk list. */
export interface GroupEntry {
  /** SHA-256 of its chunks' hashes, concatenated. */
  key: Uint8Array;
  /** How many chunks it holds. */
  chunks: number;
  /** How many bytes its chunks hold. */
  bytes: number;
}

/** One byte range of a file. */
export interface ByteRange {
  /** The first byte's offset. */
  offset: number;
  /** How many bytes. */
  length: number;
}

/**
 * Returns true when a group ends after the chunk of this hash.
 *
 * @param hash A chunk's hash.
 * @returns True for the last chunk of a group.
 */
export function endsGroup(hash: Uint8Array): boolean {
  return ((hash[0] << 8) | hash[1]) % GROUP_DIVISOR === 0;
}

/**
 * Encodes chunk entries, {@linkcode CHUNK_ENTRY_BYTES} each.
 *
 * @param chunks The entries.
 * @returns Their bytes.
 */
export function encodeChunkEntries(chunks: readonly ChunkEntry[]): Uint8Array {
  const bytes = new Uint8Array(chunks.length * CHUNK_ENTRY_BYTES);
  const view = new DataView(bytes.buffer);
  chunks.forEach((chunk, i) => {
    bytes.set(chunk.hash, i * CHUNK_ENTRY_BYTES);
    view.setUint32(i * CHUNK_ENTRY_BYTES + HASH_BYTES, chunk.length);
  });
  return bytes;
}

/**
 * Decodes chunk entries.
 *
 * @param bytes Whole entries, {@linkcode CHUNK_ENTRY_BYTES} each.
 * @returns The entries, or null when `bytes` is not whole entries.
 *
 * @example Usage
 * ```ts
 * import { decodeChunkEntries, encodeChunkEntries } from "./chunk_list.ts";
 * import { deepStrictEqual } from "node:assert/strict";
 * const chunks = [{ hash: new Uint8Array(32).fill(7), length: 65536 }];
 * deepStrictEqual(decodeChunkEntries(encodeChunkEntries(chunks)), chunks);
 * ```
 */
export function decodeChunkEntries(bytes: Uint8Array): ChunkEntry[] | null {
  if (bytes.length % CHUNK_ENTRY_BYTES !== 0) return null;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const chunks: ChunkEntry[] = [];
  for (let at = 0; at < bytes.length; at += CHUNK_ENTRY_BYTES) {
    chunks.push({ hash: bytes.slice(at, at + HASH_BYTES), length: view.getUint32(at + HASH_BYTES) });
  }
  return chunks;
}

/**
 * Encodes group entries, {@linkcode GROUP_ENTRY_BYTES} each.
 *
 * @param groups The entries.
 * @returns Their bytes.
 */
export function encodeGroupEntries(groups: readonly GroupEntry[]): Uint8Array {
  const bytes = new Uint8Array(groups.length * GROUP_ENTRY_BYTES);
  const view = new DataView(bytes.buffer);
  groups.forEach((group, i) => {
    const at = i * GROUP_ENTRY_BYTES;
    bytes.set(group.key, at);
    view.setUint32(at + HASH_BYTES, group.chunks);
    view.setBigUint64(at + HASH_BYTES + 4, BigInt(group.bytes));
  });
  return bytes;
}

/**
 * Decodes group entries.
 *
 * @param bytes Whole entries, {@linkcode GROUP_ENTRY_BYTES} each.
 * @returns The entries, or null when `bytes` is not whole entries or a size is past 2^53.
 */
export function decodeGroupEntries(bytes: Uint8Array): GroupEntry[] | null {
  if (bytes.length % GROUP_ENTRY_BYTES !== 0) return null;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const groups: GroupEntry[] = [];
  for (let at = 0; at < bytes.length; at += GROUP_ENTRY_BYTES) {
    const size = view.getBigUint64(at + HASH_BYTES + 4);
    if (size > BigInt(Number.MAX_SAFE_INTEGER)) return null;
    groups.push({
      key: bytes.slice(at, at + HASH_BYTES),
      chunks: view.getUint32(at + HASH_BYTES),
      bytes: Number(size),
    });
  }
  return groups;
}

/**
 * Encodes READ's ranges, {@linkcode RANGE_BYTES} each.
 *
 * @param ranges The ranges.
 * @returns Their bytes.
 */
export function encodeRanges(ranges: readonly ByteRange[]): Uint8Array {
  const bytes = new Uint8Array(ranges.length * RANGE_BYTES);
  const view = new DataView(bytes.buffer);
  ranges.forEach((range, i) => {
    view.setBigUint64(i * RANGE_BYTES, BigInt(range.offset));
    view.setUint32(i * RANGE_BYTES + 8, range.length);
  });
  return bytes;
}

/**
 * Decodes READ's ranges.
 *
 * @param bytes Whole ranges, {@linkcode RANGE_BYTES} each.
 * @returns The ranges, or null when `bytes` is not whole ranges or an offset is past 2^53.
 *
 * @example Usage
 * ```ts
 * import { decodeRanges, encodeRanges } from "./chunk_list.ts";
 * import { deepStrictEqual } from "node:assert/strict";
 * const ranges = [{ offset: 2 ** 40, length: 4096 }];
 * deepStrictEqual(decodeRanges(encodeRanges(ranges)), ranges);
 * ```
 */
export function decodeRanges(bytes: Uint8Array): ByteRange[] | null {
  if (bytes.length % RANGE_BYTES !== 0) return null;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const ranges: ByteRange[] = [];
  for (let at = 0; at < bytes.length; at += RANGE_BYTES) {
    const offset = view.getBigUint64(at);
    if (offset > BigInt(Number.MAX_SAFE_INTEGER)) return null;
    ranges.push({ offset: Number(offset), length: view.getUint32(at + 8) });
  }
  return ranges;
}

/**
 * Concatenates keys or hashes ({@linkcode HASH_BYTES} each) for HAVE.
 *
 * @param keys The keys.
 * @returns Their bytes.
 */
export function joinKeys(keys: readonly Uint8Array[]): Uint8Array {
  const bytes = new Uint8Array(keys.length * HASH_BYTES);
  keys.forEach((key, i) => bytes.set(key, i * HASH_BYTES));
  return bytes;
}

/**
 * Splits HAVE's keys.
 *
 * @param bytes Whole keys, {@linkcode HASH_BYTES} each.
 * @returns The keys, or null when `bytes` is not whole keys.
 */
export function splitKeys(bytes: Uint8Array): Uint8Array[] | null {
  if (bytes.length % HASH_BYTES !== 0) return null;
  const keys: Uint8Array[] = [];
  for (let at = 0; at < bytes.length; at += HASH_BYTES) keys.push(bytes.subarray(at, at + HASH_BYTES));
  return keys;
}

/**
 * KNOWN's bit set: bit `i` (of byte `i >> 3`, most significant bit first) is set when key `i` is known.
 *
 * @param known One flag per key.
 * @returns The bits, `ceil(n / 8)` bytes.
 *
 * @example Usage
 * ```ts
 * import { bitsOf, isSet } from "./chunk_list.ts";
 * import { strictEqual } from "node:assert/strict";
 * const bits = bitsOf([false, true, false]);
 * strictEqual(isSet(bits, 1), true);
 * strictEqual(isSet(bits, 2), false);
 * ```
 */
export function bitsOf(known: readonly boolean[]): Uint8Array {
  const bits = new Uint8Array(Math.ceil(known.length / 8));
  known.forEach((flag, i) => {
    if (flag) bits[i >> 3] |= 0x80 >> (i & 7);
  });
  return bits;
}

/** A block sum's bytes on the wire (`sums`; shared/block_delta.ts): weak sum (uint32), then 8 bytes of SHA-256. */
export const SUM_BYTES = 12;

/**
 * Reads one flag of KNOWN's bits.
 *
 * @param bits The bit set.
 * @param i The key's index.
 * @returns True when bit `i` is set.
 */
export function isSet(bits: Uint8Array, i: number): boolean {
  return ((bits[i >> 3] ?? 0) & (0x80 >> (i & 7))) !== 0;
}

/** Each byte's two hex digits. */
const HEX_PAIRS = Array.from({ length: 256 }, (_, byte) => byte.toString(16).padStart(2, "0"));

/** Lower-case hex of bytes (the chunk index keys every chunk by it). */
export function toHex(bytes: Uint8Array): string {
  let hex = "";
  for (let i = 0; i < bytes.length; i++) hex += HEX_PAIRS[bytes[i]];
  return hex;
}

/** Bytes of lower-case or upper-case hex, or null when it is not whole bytes of hex. */
export function fromHex(hex: string): Uint8Array | null {
  if (hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex)) return null;
  const bytes = new Uint8Array(hex.length / 2);
  for (let i = 0; i < bytes.length; i++) bytes[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return bytes;
}
