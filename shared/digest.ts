/**
 * `createDigest()`: the running check value of a body, by the algorithm its
 * END frame names.
 *
 * - `crc32` (the default): CRC-32, as S3 checks uploads by default. It catches
 *   truncation, corruption and mix-ups at almost no cost, where a
 *   cryptographic digest on both ends was the largest cost of a transfer on
 *   two cores (docs/PERFORMANCE.md). It is not a defence
 *   against someone who can alter the stream on purpose: that is TLS's job.
 * - `sha256`: SHA-256 through `node:crypto` (streaming, the CPU's SHA
 *   instructions), on request (`--verify`), and for anything that compares
 *   content across machines.
 *
 * Each implementation is imported when first needed: importing `node:crypto`
 * or `node:zlib` is a large share of a small command's start-up, which a
 * 1 KiB `dfos put` should not pay (docs/PERFORMANCE.md, "Start-up").
 *
 * @module
 */

import { crc32 as jsCrc32 } from "./crc32.ts";
import type { DigestAlgorithm } from "./messages.ts";

/** Bodies at least this large (or of unknown size) use `node:zlib`'s CRC-32, worth its import cost. */
const ZLIB_CRC_FROM_BYTES = 1 << 20;

/** A running digest over the bytes of one body. */
export interface BodyDigest {
  /** The algorithm, as named on the wire. */
  readonly algorithm: DigestAlgorithm;
  /** Bytes digested so far. */
  readonly size: number;
  /** Adds the next bytes of the body. */
  update(chunk: Uint8Array): void;
  /** Finishes the digest; returns it as lower-case hex. Call once. */
  hex(): string;
}

/** Options for {@linkcode createDigest}. */
export interface DigestOptions {
  /** The body's expected length, if known: a small body skips loading the fast CRC. */
  sizeHint?: number | null;
}

type ZlibCrc32 = (data: Uint8Array, value?: number) => number;
let zlibCrc32: Promise<ZlibCrc32> | null = null;

/**
 * Starts a digest.
 *
 * @param algorithm The algorithm's wire name.
 * @param options What is known of the body.
 * @returns The digest, ready for `update`.
 */
export async function createDigest(algorithm: DigestAlgorithm, options: DigestOptions = {}): Promise<BodyDigest> {
  if (algorithm === "sha256") {
    const { createHash } = await import("node:crypto");
    const hash = createHash("sha256");
    return countingDigest(algorithm, (chunk) => hash.update(chunk), () => hash.digest("hex"));
  }
  const hint = options.sizeHint ?? null;
  const crc = hint !== null && hint < ZLIB_CRC_FROM_BYTES ? jsCrc32 : await loadZlibCrc32();
  let value = 0;
  return countingDigest(algorithm, (chunk) => value = crc(chunk, value), () => value.toString(16).padStart(8, "0"));
}

/** A digest from an update and a finish function, counting the bytes it is given. */
function countingDigest(
  algorithm: DigestAlgorithm,
  update: (chunk: Uint8Array) => void,
  hex: () => string,
): BodyDigest {
  let size = 0;
  return {
    algorithm,
    get size() {
      return size;
    },
    update(chunk) {
      update(chunk);
      size += chunk.length;
    },
    hex,
  };
}

function loadZlibCrc32(): Promise<ZlibCrc32> {
  zlibCrc32 ??= import("node:zlib").then((zlib) => zlib.crc32 as ZlibCrc32);
  return zlibCrc32;
}
