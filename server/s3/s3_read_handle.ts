/**
 * `S3ReadHandle`: a file opened for reading (`Storage.openRead`): the
 * HeadObject's facts and ETag, and GetObject with `If-Match` on that ETag
 * (with a Range for a limit or a range), so every byte read is of the version
 * opened. A file replaced meanwhile fails the read (`CONFLICT`) instead of
 * mixing versions; one removed meanwhile is `NOT_FOUND`. The body comes in
 * pieces of about {@linkcode READ_PIECE_BYTES} (the engine's small reads
 * gathered, its large ones passed on).
 *
 * @module
 */

import { DfosError, Status } from "../../shared/status.ts";
import type { ReadHandle, VersionedInfo } from "../storage.ts";
import type { ObjectStore } from "./object_store.ts";
import { ObjectStoreError } from "./object_store.ts";
import { storeFailure } from "./s3_errors.ts";

/** The pieces a read yields, at most (and at least, but the last). */
export const READ_PIECE_BYTES = 1024 * 1024;

/** A chunk of the engine's body at least this large is passed on as it is. */
const PASS_THROUGH_BYTES = 256 * 1024;

/** A file of the bucket opened for reading. */
export class S3ReadHandle implements ReadHandle {
  readonly info: VersionedInfo;
  readonly #store: ObjectStore;
  readonly #key: string;
  readonly #stop = new AbortController();

  /**
   * @param store The bucket.
   * @param key The file's key.
   * @param info Its facts, from the HeadObject that opened it.
   */
  constructor(store: ObjectStore, key: string, info: VersionedInfo) {
    this.#store = store;
    this.#key = key;
    this.info = info;
  }

  read(limit = Infinity): AsyncIterable<Uint8Array> {
    return this.#read(0, Math.min(limit, this.info.size));
  }

  async *readRange(offset: number, length: number): AsyncIterable<Uint8Array> {
    const { name, size } = this.info;
    if (
      !Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 ||
      offset + length > size
    ) {
      throw new DfosError(Status.BAD_REQUEST, `Cannot read ${length} bytes at ${offset} of "${name}": it has ${size}`);
    }
    yield* this.#read(offset, length);
  }

  async *#read(offset: number, length: number): AsyncGenerator<Uint8Array> {
    if (length <= 0) return;
    const { name, version } = this.info;
    const whole = offset === 0 && length === this.info.size;
    let object;
    try {
      object = await this.#store.get(this.#key, {
        ifMatch: version,
        range: whole ? undefined : { offset, length },
        signal: this.#stop.signal,
      });
    } catch (error) {
      throw readFailure(error, name, this.#store.label);
    }
    if (object === null) throw new DfosError(Status.NOT_FOUND, `Cannot read "${name}": it was removed`);
    const reader = object.body.getReader();
    let piece = new Uint8Array(Math.min(READ_PIECE_BYTES, length));
    let filled = 0;
    let left = length;
    try {
      while (left > 0) {
        let chunk: Uint8Array;
        try {
          const next = await reader.read();
          if (next.done) break;
          chunk = next.value;
        } catch (error) {
          // The engine's connection lost mid-body is the store gone, as a request that gets no answer.
          const lost = error instanceof ObjectStoreError || error instanceof DfosError ? error : new ObjectStoreError(
            "unavailable",
            `GetObject ${this.#key}: the body broke off: ${(error as Error).message}`,
            { cause: error },
          );
          throw readFailure(lost, name, this.#store.label);
        }
        if (filled === 0 && chunk.length >= PASS_THROUGH_BYTES && chunk.length <= left) {
          // Large already (the client reads 1 MiB at a time): passed on as it is, not copied.
          left -= chunk.length;
          yield chunk;
          if (left < piece.length) piece = new Uint8Array(left);
          continue;
        }
        while (chunk.length > 0 && left > 0) {
          const taken = Math.min(chunk.length, piece.length - filled, left);
          piece.set(chunk.subarray(0, taken), filled);
          filled += taken;
          left -= taken;
          chunk = chunk.subarray(taken);
          if (filled === piece.length) {
            yield piece;
            piece = new Uint8Array(Math.min(READ_PIECE_BYTES, left));
            filled = 0;
          }
        }
      }
      if (filled > 0) yield piece.subarray(0, filled);
    } finally {
      await reader.cancel().catch(() => {});
    }
  }

  close(): void {
    this.#stop.abort();
  }
}

/** A read's failure as the client sees it. */
function readFailure(error: unknown, name: string, store: string): unknown {
  if (error instanceof ObjectStoreError && error.kind === "precondition") {
    return new DfosError(Status.CONFLICT, `Cannot read "${name}": it was replaced while being read`);
  }
  if (error instanceof ObjectStoreError && error.kind === "not-found") {
    return new DfosError(Status.NOT_FOUND, `Cannot read "${name}": it was removed`);
  }
  return storeFailure(error, `read "${name}"`, store);
}
