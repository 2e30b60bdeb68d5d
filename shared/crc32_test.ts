import assert from "node:assert/strict";
import { crc32 as zlibCrc32 } from "node:zlib";
import { crc32 } from "./crc32.ts";

function randomBytes(length: number): Uint8Array {
  const bytes = new Uint8Array(length);
  for (let offset = 0; offset < length; offset += 65536) {
    crypto.getRandomValues(bytes.subarray(offset, Math.min(length, offset + 65536)));
  }
  return bytes;
}

Deno.test("crc32 gives the standard check value of '123456789'", () => {
  assert.equal(crc32(new TextEncoder().encode("123456789")), 0xcbf43926);
  assert.equal(crc32(new Uint8Array(0)), 0);
});

Deno.test("crc32 agrees with node:zlib on every length from 0 to 64 and on unaligned views", () => {
  const bytes = randomBytes(4096);
  for (let length = 0; length <= 64; length++) {
    assert.equal(crc32(bytes.subarray(0, length)), zlibCrc32(bytes.subarray(0, length)), `length ${length}`);
  }
  for (let offset = 1; offset < 8; offset++) {
    const view = bytes.subarray(offset, offset + 1000);
    assert.equal(crc32(view), zlibCrc32(view), `offset ${offset}`);
  }
});

Deno.test("crc32 continues across chunks as if over the whole", () => {
  const bytes = randomBytes(300_000);
  let value = 0;
  const cuts = [0, 1, 8, 13, 65536, 200_001, bytes.length];
  for (let i = 0; i + 1 < cuts.length; i++) value = crc32(bytes.subarray(cuts[i], cuts[i + 1]), value);
  assert.equal(value, zlibCrc32(bytes));
});
