/**
 * `BodyDigest`: the running digest of a body, named by its algorithm as the
 * END frame names it. SHA-256 through `node:crypto`, which streams and uses
 * the CPU's SHA instructions (see docs/PERFORMANCE.md).
 *
 * @module
 */

import { createHash, type Hash } from "node:crypto";
import type { DigestAlgorithm } from "./messages.ts";

/** A streaming digest over the bytes of one body. */
export class BodyDigest {
  /** The algorithm, as named on the wire. */
  readonly algorithm: DigestAlgorithm;
  readonly #hash: Hash;
  #size = 0;

  /**
   * Starts a digest.
   *
   * @param algorithm The algorithm's wire name.
   */
  constructor(algorithm: DigestAlgorithm = "sha256") {
    this.algorithm = algorithm;
    this.#hash = createHash(algorithm);
  }

  /** Bytes digested so far. */
  get size(): number {
    return this.#size;
  }

  /**
   * Adds bytes.
   *
   * @param chunk The next bytes of the body.
   */
  update(chunk: Uint8Array): void {
    this.#hash.update(chunk);
    this.#size += chunk.length;
  }

  /** Finishes the digest; returns it as lower-case hex. Call once. */
  hex(): string {
    return this.#hash.digest("hex");
  }
}
