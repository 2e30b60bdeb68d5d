/**
 * `sums`: the block sums of ranges of a file's version, for a client that
 * sends a changed chunk as a delta of the old one (docs/PROTOCOL.md
 * "Deltas", shared/block_delta.ts). The ranges are read whole (at most
 * {@linkcode MAX_SUMS_BYTES} in all) and summed in blocks of the size asked.
 *
 * @module
 */

import { blockSums, MAX_BLOCK_BYTES, MIN_BLOCK_BYTES, SUM_BYTES } from "../shared/block_delta.ts";
import { decodeRanges } from "../shared/chunk_list.ts";
import { concatBytes } from "../shared/concat_bytes.ts";
import { MAX_READ_RANGES, MAX_SUMS_BYTES, type MessageOf } from "../shared/messages.ts";
import { excerpt } from "../shared/names.ts";
import { bytesOf, release } from "../shared/pooled_bytes.ts";
import { DfosError, Status } from "../shared/status.ts";
import type { ReadHandle } from "./storage.ts";

/**
 * The sums a `sums` request asks for, from the file opened at its version.
 *
 * @param message The request.
 * @param handle The file, opened at the version asked.
 * @returns The sums, 12 bytes per block, range after range.
 * @throws {DfosError} `BAD_REQUEST` for ranges or a block size out of bounds.
 */
export async function sumsOf(message: MessageOf<"sums">, handle: ReadHandle): Promise<Uint8Array> {
  const name = excerpt(message.name);
  const ranges = decodeRanges(message.ranges);
  if (ranges === null || ranges.length === 0 || ranges.length > MAX_READ_RANGES) {
    throw new DfosError(Status.BAD_REQUEST, `Cannot sum "${name}": 1 to ${MAX_READ_RANGES} ranges of 12 bytes`);
  }
  const { block } = message;
  if (block < MIN_BLOCK_BYTES || block > MAX_BLOCK_BYTES) {
    throw new DfosError(
      Status.BAD_REQUEST,
      `Cannot sum "${name}": blocks of ${block} bytes (${MIN_BLOCK_BYTES} to ${MAX_BLOCK_BYTES})`,
    );
  }
  let total = 0;
  for (const range of ranges) {
    if (range.offset + range.length > handle.info.size) {
      throw new DfosError(
        Status.BAD_REQUEST,
        `Cannot sum "${name}": the range ${range.offset}+${range.length} is past its ${handle.info.size} bytes`,
      );
    }
    total += range.length;
  }
  if (total > MAX_SUMS_BYTES) {
    throw new DfosError(Status.BAD_REQUEST, `Cannot sum "${name}": ${total} bytes, more than ${MAX_SUMS_BYTES}`);
  }
  const sums: Uint8Array[] = [];
  for (const range of ranges) {
    if (range.length === 0) continue;
    const bytes = new Uint8Array(range.length);
    let at = 0;
    for await (const piece of handle.readRange(range.offset, range.length)) {
      try {
        bytes.set(bytesOf(piece), at);
        at += bytesOf(piece).length;
      } finally {
        release(piece);
      }
    }
    sums.push(blockSums(bytes.subarray(0, at), block));
  }
  const out = concatBytes(sums);
  if (out.length % SUM_BYTES !== 0) throw new Error("sums of whole blocks");
  return out;
}
