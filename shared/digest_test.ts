import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { crc32 as zlibCrc32 } from "node:zlib";
import { createDigest } from "./digest.ts";

const bytes = new Uint8Array(3 * 1024 * 1024 + 5).map((_, i) => (i * 7919) % 251);

Deno.test("createDigest crc32 gives the same hex whether the body is small (plain JS) or large (zlib)", async () => {
  const expected = zlibCrc32(bytes).toString(16).padStart(8, "0");
  for (const sizeHint of [10, null, bytes.length]) {
    const digest = await createDigest("crc32", { sizeHint });
    for (let offset = 0; offset < bytes.length; offset += 1 << 20) {
      digest.update(bytes.subarray(offset, offset + (1 << 20)));
    }
    assert.equal(digest.size, bytes.length);
    assert.equal(digest.hex(), expected, `sizeHint ${sizeHint}`);
  }
});

Deno.test("createDigest sha256 gives node:crypto's hex digest", async () => {
  const digest = await createDigest("sha256");
  digest.update(bytes.subarray(0, 1000));
  digest.update(bytes.subarray(1000));
  assert.equal(digest.algorithm, "sha256");
  assert.equal(digest.hex(), createHash("sha256").update(bytes).digest("hex"));
});

Deno.test("createDigest crc32 of an empty body is 00000000", async () => {
  assert.equal((await createDigest("crc32", { sizeHint: 0 })).hex(), "00000000");
});
