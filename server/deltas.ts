/**
 * `delta`: ranges of a file's version described as copies of the client's
 * old bytes and literal bytes, for a client that has an old version of the
 * file (docs/PROTOCOL.md "Deltas", shared/block_delta.ts). The client sends
 * the sums of its old bytes (the body, for its `bases` ranges, in blocks of
 * `block`); each range asked is read and rolled over them, and answered as
 * its ops, each range's preceded by their length (uint32).
 *
 * @module
 */

import { BlockTable, encodeOps, MAX_BLOCK_BYTES, MIN_BLOCK_BYTES, SUM_BYTES } from "../shared/block_delta.ts";
import type { BodyReceiver } from "../shared/body.ts";
import { type ByteRange, decodeRanges } from "../shared/chunk_list.ts";
import { concatBytes } from "../shared/concat_bytes.ts";
import { MAX_DELTA_BYTES, MAX_READ_RANGES, MAX_SUMS_BYTES, type MessageOf } from "../shared/messages.ts";
import { excerpt } from "../shared/names.ts";
import { bytesOf, release } from "../shared/pooled_bytes.ts";
import { DfosError, Status } from "../shared/status.ts";
import type { ReadHandle } from "./storage.ts";

/**
 * Checks a `delta` request's ranges and block size before anything is read.
 *
 * @param message The request.
 * @returns The ranges asked and the client's bases, and the sums' length the body must have.
 * @throws {DfosError} `BAD_REQUEST` for anything out of bounds.
 */
export function checkDelta(message: MessageOf<"delta">): { ranges: ByteRange[]; bases: ByteRange[]; sums: number } {
  const name = excerpt(message.name);
  const bad = (why: string) => new DfosError(Status.BAD_REQUEST, `Cannot describe "${name}" as a delta: ${why}`);
  const ranges = decodeRanges(message.ranges);
  const bases = decodeRanges(message.bases);
  if (ranges === null || ranges.length === 0 || ranges.length > MAX_READ_RANGES) {
    throw bad(`1 to ${MAX_READ_RANGES} ranges of 12 bytes`);
  }
  if (bases === null || bases.length === 0 || bases.length > MAX_READ_RANGES) {
    throw bad(`1 to ${MAX_READ_RANGES} bases of 12 bytes`);
  }
  const { block } = message;
  if (block < MIN_BLOCK_BYTES || block > MAX_BLOCK_BYTES) {
    throw bad(`blocks of ${block} bytes (${MIN_BLOCK_BYTES} to ${MAX_BLOCK_BYTES})`);
  }
  const total = ranges.reduce((sum, range) => sum + range.length, 0);
  if (total > MAX_DELTA_BYTES) throw bad(`${total} bytes asked, more than ${MAX_DELTA_BYTES}`);
  const based = bases.reduce((sum, range) => sum + range.length, 0);
  if (based > MAX_SUMS_BYTES) throw bad(`${based} bytes of bases, more than ${MAX_SUMS_BYTES}`);
  const sums = bases.reduce((sum, range) => sum + Math.ceil(range.length / block), 0) * SUM_BYTES;
  return { ranges, bases, sums };
}

/**
 * The ops of each range of the file, against the client's sums.
 *
 * @param message The request.
 * @param body The sums.
 * @param handle The file, opened at the version asked.
 * @returns Each range's ops, preceded by their length.
 */
export async function deltaOf(
  message: MessageOf<"delta">,
  body: BodyReceiver,
  handle: ReadHandle,
): Promise<Uint8Array> {
  const { ranges, bases, sums: expected } = checkDelta(message);
  for (const range of ranges) {
    if (range.offset + range.length > handle.info.size) {
      throw new DfosError(
        Status.BAD_REQUEST,
        `Cannot describe "${excerpt(message.name)}" as a delta: the range ${range.offset}+${range.length} ` +
          `is past its ${handle.info.size} bytes`,
      );
    }
  }
  const parts: Uint8Array[] = [];
  let received = 0;
  for await (const piece of body.chunks()) {
    received += piece.length;
    if (received > expected) break;
    parts.push(piece);
  }
  if (received !== expected) {
    throw new DfosError(
      Status.BAD_REQUEST,
      `Cannot describe "${excerpt(message.name)}" as a delta: ${received} bytes of sums for ${expected}`,
    );
  }
  const sums = concatBytes(parts);
  const table = new BlockTable(message.block);
  let at = 0;
  for (const base of bases) {
    const length = Math.ceil(base.length / message.block) * SUM_BYTES;
    table.add(base, sums.subarray(at, at + length));
    at += length;
  }
  const out: Uint8Array[] = [];
  for (const range of ranges) {
    const bytes = new Uint8Array(range.length);
    let filled = 0;
    if (range.length > 0) {
      for await (const piece of handle.readRange(range.offset, range.length)) {
        try {
          bytes.set(bytesOf(piece), filled);
          filled += bytesOf(piece).length;
        } finally {
          release(piece);
        }
      }
    }
    const ops = encodeOps(table.delta(bytes.subarray(0, filled)));
    const head = new Uint8Array(4);
    new DataView(head.buffer).setUint32(0, ops.length);
    out.push(head, ops);
  }
  return concatBytes(out);
}
