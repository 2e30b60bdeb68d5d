import assert from "node:assert/strict";
import { decodeBase64, encodeBase64 } from "./base64.ts";

Deno.test("decodeBase64() reads back what encodeBase64() writes, for every length up to 64", () => {
  for (let length = 0; length <= 64; length++) {
    const bytes = crypto.getRandomValues(new Uint8Array(length));
    assert.deepEqual(decodeBase64(encodeBase64(bytes)), bytes);
  }
});

Deno.test("decodeBase64() refuses what is not strict base64", () => {
  for (const text of ["A", "AB", "ABC", "AB=", "A===", "AB==CD==", " ABC=", "AB C", "AB-_", "AB==\n", "AB==", "ABD="]) {
    assert.equal(decodeBase64(text), null, text);
  }
  assert.deepEqual(decodeBase64(""), new Uint8Array(0));
});
