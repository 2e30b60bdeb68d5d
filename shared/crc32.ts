/**
 * `crc32()`: CRC-32 (IEEE 802.3, the one zlib, gzip and S3 use) in plain
 * JavaScript, slice-by-8, with nothing to import. Slower than `node:zlib`'s
 * `crc32` but free at start-up, so `BodyDigest` uses it for small bodies and
 * zlib's for large ones (shared/digest.ts; the figures are in
 * docs/PERFORMANCE.md). Both give the same value for the same bytes, in any
 * split into chunks.
 *
 * @module
 */

const TABLE = makeTable();

function makeTable(): Int32Array {
  const table = new Int32Array(256 * 8);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[i] = c;
  }
  for (let i = 0; i < 256; i++) {
    for (let t = 1; t < 8; t++) {
      const previous = table[(t - 1) * 256 + i];
      table[t * 256 + i] = (previous >>> 8) ^ table[previous & 0xff];
    }
  }
  return table;
}

/**
 * Continues a CRC-32 over `bytes`.
 *
 * @param bytes The next bytes.
 * @param value The CRC so far (0 to start).
 * @returns The CRC including `bytes`, as an unsigned 32-bit number.
 *
 * @example Usage
 * ```ts
 * import assert from "node:assert/strict";
 * import { crc32 } from "./crc32.ts";
 * assert.equal(crc32(new TextEncoder().encode("123456789")), 0xcbf43926);
 * ```
 */
export function crc32(bytes: Uint8Array, value = 0): number {
  let crc = ~value;
  const n = bytes.length;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let i = 0;
  for (; i + 8 <= n; i += 8) {
    const a = view.getUint32(i, true) ^ crc;
    const b = view.getUint32(i + 4, true);
    crc = TABLE[1792 + (a & 0xff)] ^ TABLE[1536 + ((a >>> 8) & 0xff)] ^ TABLE[1280 + ((a >>> 16) & 0xff)] ^
      TABLE[1024 + (a >>> 24)] ^ TABLE[768 + (b & 0xff)] ^ TABLE[512 + ((b >>> 8) & 0xff)] ^
      TABLE[256 + ((b >>> 16) & 0xff)] ^ TABLE[b >>> 24];
  }
  for (; i < n; i++) crc = TABLE[(crc ^ bytes[i]) & 0xff] ^ (crc >>> 8);
  return ~crc >>> 0;
}
