/**
 * `concatBytes()`: byte arrays joined into one new array.
 *
 * @module
 */

/**
 * Joins byte arrays into one.
 *
 * @param parts The pieces, in order.
 * @returns A new array holding them all.
 *
 * @example Usage
 * ```ts
 * import { concatBytes } from "./concat_bytes.ts";
 * import { deepStrictEqual } from "node:assert/strict";
 * deepStrictEqual(concatBytes([new Uint8Array([1]), new Uint8Array([2, 3])]), new Uint8Array([1, 2, 3]));
 * ```
 */
export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  const bytes = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let at = 0;
  for (const part of parts) {
    bytes.set(part, at);
    at += part.length;
  }
  return bytes;
}
