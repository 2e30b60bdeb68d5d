/**
 * The recipe an ASSEMBLE body carries (docs/PROTOCOL.md, "Chunks"): the new
 * file's chunks in order, each as a step.
 *
 * ```
 * 0x01 key[32]                  group: the chunks of a group the server knows (HAVE said so)
 * 0x02 hash[32] length:uint32   chunk: a chunk the server knows
 * 0x03 length:uint32 bytes      data: a chunk's bytes, 1 to CHUNK_MAX_BYTES of them
 * 0x04 hash[32] length:uint32 size:uint32 ops
 *                               patch: a chunk made of copies of the old file's bytes and literal bytes
 *                               (shared/block_delta.ts), `size` bytes of ops
 * ```
 *
 * `RecipeDecoder` takes the body in pieces split anywhere and yields whole
 * steps; it holds at most one chunk's bytes.
 *
 * @module
 */

import { concatBytes } from "./concat_bytes.ts";
import { CHUNK_MAX_BYTES } from "./chunker.ts";
import { HASH_BYTES } from "./chunk_list.ts";
import { DfosError, Status } from "./status.ts";

/** The step codes. */
export const STEP_GROUP = 0x01;
/** A chunk the server knows. */
export const STEP_CHUNK = 0x02;
/** A chunk's bytes. */
export const STEP_DATA = 0x03;
/** A chunk as a delta of the old file (the ASSEMBLE's `base`). */
export const STEP_PATCH = 0x04;

/** A patch step's ops take at most this much: a chunk of literals and an op for every 512 bytes of it. */
const MAX_PATCH_OPS_BYTES = CHUNK_MAX_BYTES + (CHUNK_MAX_BYTES / 512) * 13;

/** One step of a recipe. */
export type RecipeStep =
  | { kind: "group"; key: Uint8Array }
  | { kind: "chunk"; hash: Uint8Array; length: number }
  | { kind: "data"; bytes: Uint8Array }
  | { kind: "patch"; hash: Uint8Array; length: number; ops: Uint8Array };

/**
 * The bytes of a GROUP step.
 *
 * @param key The group's key.
 * @returns 33 bytes.
 */
export function groupStep(key: Uint8Array): Uint8Array {
  const step = new Uint8Array(1 + HASH_BYTES);
  step[0] = STEP_GROUP;
  step.set(key, 1);
  return step;
}

/**
 * The bytes of a CHUNK step.
 *
 * @param hash The chunk's hash.
 * @param length Its length.
 * @returns 37 bytes.
 */
export function chunkStep(hash: Uint8Array, length: number): Uint8Array {
  const step = new Uint8Array(1 + HASH_BYTES + 4);
  step[0] = STEP_CHUNK;
  step.set(hash, 1);
  new DataView(step.buffer).setUint32(1 + HASH_BYTES, length);
  return step;
}

/**
 * The header of a DATA step: the chunk's bytes follow it.
 *
 * @param length The chunk's length.
 * @returns 5 bytes.
 *
 * @example Usage
 * ```ts
 * import { dataStepHeader, RecipeDecoder } from "./recipe.ts";
 * import { strictEqual } from "node:assert/strict";
 * const decoder = new RecipeDecoder();
 * const steps = [...decoder.push(dataStepHeader(3)), ...decoder.push(new Uint8Array([1, 2, 3]))];
 * strictEqual(steps.length, 1);
 * strictEqual(steps[0].kind, "data");
 * decoder.finish();
 * ```
 */
export function dataStepHeader(length: number): Uint8Array {
  const header = new Uint8Array(5);
  header[0] = STEP_DATA;
  new DataView(header.buffer).setUint32(1, length);
  return header;
}

/**
 * The header of a PATCH step: its ops (shared/block_delta.ts `encodeOps`) follow it.
 *
 * @param hash The chunk's hash.
 * @param length The chunk's length.
 * @param opsBytes The length of its ops.
 * @returns 41 bytes.
 */
export function patchStepHeader(hash: Uint8Array, length: number, opsBytes: number): Uint8Array {
  const header = new Uint8Array(1 + HASH_BYTES + 8);
  header[0] = STEP_PATCH;
  header.set(hash, 1);
  const view = new DataView(header.buffer);
  view.setUint32(1 + HASH_BYTES, length);
  view.setUint32(1 + HASH_BYTES + 4, opsBytes);
  return header;
}

/** Reads a recipe from pieces split anywhere. */
export class RecipeDecoder {
  /** Bytes of the step under way, in the pieces they came in (joined once the step is whole, never piece by piece). */
  #parts: Uint8Array[] = [];
  #partsLength = 0;
  /** Bytes the step under way needs before it can be read (known once its header has come). */
  #need = 1;

  /**
   * Takes the next piece of the body.
   *
   * @param piece Bytes of the body; not kept after the call.
   * @returns The steps completed by this piece.
   * @throws {DfosError} `BAD_REQUEST` for an unknown step or a chunk length of 0 or past the largest chunk.
   */
  *push(piece: Uint8Array): Generator<RecipeStep> {
    if (piece.length === 0) return;
    // The decoder's own copy: the steps' bytes are views of it (or of a step's join), never copied again.
    const own = piece.slice();
    let at = 0;
    // A step begun in earlier pieces: completed with only the bytes it lacks, not joined with the whole piece.
    while (this.#partsLength > 0) {
      const lack = this.#need - this.#partsLength;
      if (own.length - at < lack) {
        this.#parts.push(own.subarray(at));
        this.#partsLength += own.length - at;
        return;
      }
      this.#parts.push(own.subarray(at, at + lack));
      at += lack;
      const head = concatBytes(this.#parts);
      const step = readStep(head, 0);
      if (typeof step === "number") {
        // Its header is whole now, and says how long the step is.
        this.#parts = [head];
        this.#partsLength = head.length;
        this.#need = step;
        continue;
      }
      this.#parts = [];
      this.#partsLength = 0;
      this.#need = 1;
      yield step.step;
    }
    while (at < own.length) {
      const step = readStep(own, at);
      if (typeof step === "number") {
        this.#parts = [own.subarray(at)];
        this.#partsLength = own.length - at;
        this.#need = step;
        return;
      }
      at = step.end;
      yield step.step;
    }
  }

  /**
   * Ends the recipe.
   *
   * @throws {DfosError} `BAD_REQUEST` when it ends inside a step.
   */
  finish(): void {
    if (this.#partsLength > 0) {
      throw new DfosError(Status.BAD_REQUEST, "Cannot assemble: the recipe ends inside a step");
    }
  }
}

/** Reads the step at `at`: the step and where it ends, or the bytes from `at` it needs when they have not all come. */
function readStep(bytes: Uint8Array, at: number): { step: RecipeStep; end: number } | number {
  const left = bytes.length - at;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  switch (bytes[at]) {
    case STEP_GROUP:
      if (left < 1 + HASH_BYTES) return 1 + HASH_BYTES;
      return { step: { kind: "group", key: bytes.slice(at + 1, at + 1 + HASH_BYTES) }, end: at + 1 + HASH_BYTES };
    case STEP_CHUNK: {
      if (left < 1 + HASH_BYTES + 4) return 1 + HASH_BYTES + 4;
      const length = checkLength(view.getUint32(at + 1 + HASH_BYTES));
      const hash = bytes.slice(at + 1, at + 1 + HASH_BYTES);
      return { step: { kind: "chunk", hash, length }, end: at + 1 + HASH_BYTES + 4 };
    }
    case STEP_PATCH: {
      const head = 1 + HASH_BYTES + 8;
      if (left < head) return head;
      const length = checkLength(view.getUint32(at + 1 + HASH_BYTES));
      const size = view.getUint32(at + 1 + HASH_BYTES + 4);
      if (size === 0 || size > MAX_PATCH_OPS_BYTES) {
        throw new DfosError(Status.BAD_REQUEST, `Cannot assemble: a patch of ${size} bytes of ops`);
      }
      if (left < head + size) return head + size;
      const hash = bytes.slice(at + 1, at + 1 + HASH_BYTES);
      return {
        step: { kind: "patch", hash, length, ops: bytes.subarray(at + head, at + head + size) },
        end: at + head + size,
      };
    }
    case STEP_DATA: {
      if (left < 5) return 5;
      const length = checkLength(view.getUint32(at + 1));
      if (left < 5 + length) return 5 + length;
      return { step: { kind: "data", bytes: bytes.subarray(at + 5, at + 5 + length) }, end: at + 5 + length };
    }
    default:
      throw new DfosError(Status.BAD_REQUEST, `Cannot assemble: unknown recipe step 0x${bytes[at].toString(16)}`);
  }
}

function checkLength(length: number): number {
  if (length === 0 || length > CHUNK_MAX_BYTES) {
    throw new DfosError(Status.BAD_REQUEST, `Cannot assemble: a chunk of ${length} bytes (1 to ${CHUNK_MAX_BYTES})`);
  }
  return length;
}
