/**
 * The one base64 codec of dfos (RFC 4648, standard alphabet, padded): byte
 * strings in JSON messages, SCRAM's attributes and the users file's stored
 * secrets. Decoding is strict: padding required, no whitespace, no other
 * alphabet, and the unused bits of the last group zero, so each byte string
 * has exactly one text.
 *
 * @module
 */

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * Encodes bytes as padded base64.
 *
 * @param bytes The bytes.
 * @returns The text.
 *
 * @example Usage
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodeBase64 } from "./base64.ts";
 * assert.equal(encodeBase64(new TextEncoder().encode("n,,")), "biws");
 * ```
 */
export function encodeBase64(bytes: Uint8Array): string {
  return bytes.toBase64();
}

/**
 * Decodes strict base64.
 *
 * @param text The text.
 * @returns The bytes, or null when `text` is not strict base64.
 *
 * @example Usage
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeBase64 } from "./base64.ts";
 * assert.deepEqual(decodeBase64("biws"), new TextEncoder().encode("n,,"));
 * assert.equal(decodeBase64("biw"), null); // no padding
 * assert.equal(decodeBase64("AB=="), null); // unused bits set
 * ```
 */
export function decodeBase64(text: string): Uint8Array | null {
  if (!BASE64.test(text)) return null;
  try {
    return Uint8Array.fromBase64(text, { lastChunkHandling: "strict" });
  } catch {
    return null;
  }
}
