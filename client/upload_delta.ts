/**
 * `deltaBase()`: for an upload that replaces a file the server has, the
 * block sums of the old file's bytes that the new file does not reuse as
 * whole chunks, so that each chunk the server lacks can be sent as a delta
 * of them (shared/block_delta.ts; docs/PROTOCOL.md "Deltas"). The old
 * file's group list (GROUPS) says which of its groups the new file does not
 * reuse; their chunk lists (GROUP-CHUNKS) say which chunks of them it does
 * not; SUMS sums those.
 *
 * @module
 */

import { blockSizeFor, BlockTable, type Range } from "../shared/block_delta.ts";
import { type ByteRange, SUM_BYTES, toHex } from "../shared/chunk_list.ts";
import { MAX_READ_RANGES, MAX_SUMS_BYTES } from "../shared/messages.ts";
import type { DfosClient } from "./connection.ts";
import type { LocalChunk } from "./local_chunks.ts";

/** The old version to patch, and its blocks. */
export interface DeltaBase {
  /** The version of the server's file the patches copy from. */
  version: string;
  /** Its blocks, by sum. */
  table: BlockTable;
}

/**
 * The base for patches of `name`, or null when there is nothing to gain
 * (no old bytes left unused, or too many to sum).
 *
 * @param client A client whose server has the delta requests.
 * @param name The remote name, which the server has a file of.
 * @param chunks The new file's chunks.
 * @param groupKeys The new file's group keys (hex).
 * @returns The base, or null.
 */
export async function deltaBase(
  client: DfosClient,
  name: string,
  chunks: readonly LocalChunk[],
  groupKeys: ReadonlySet<string>,
): Promise<DeltaBase | null> {
  const old = await client.groups(name);
  const newHashes = new Set(chunks.map((chunk) => toHex(chunk.hash)));
  // The old groups the new file does not take whole, as runs of adjacent groups (one GROUP-CHUNKS each).
  const runs: { first: number; count: number; offset: number }[] = [];
  let offset = 0;
  old.groups.forEach((group, g) => {
    if (!groupKeys.has(toHex(group.key))) {
      const last = runs.at(-1);
      if (last !== undefined && last.first + last.count === g) last.count++;
      else runs.push({ first: g, count: 1, offset });
    }
    offset += group.bytes;
  });
  const ranges: ByteRange[] = [];
  let total = 0;
  for (const run of runs) {
    let at = run.offset;
    for (const chunk of await client.groupChunks(name, old.version, run.first, run.count)) {
      if (!newHashes.has(toHex(chunk.hash))) {
        const last = ranges.at(-1);
        if (last !== undefined && last.offset + last.length === at) last.length += chunk.length;
        else ranges.push({ offset: at, length: chunk.length });
        total += chunk.length;
      }
      at += chunk.length;
    }
  }
  if (ranges.length === 0 || ranges.length > MAX_READ_RANGES || total > MAX_SUMS_BYTES) return null;
  const block = blockSizeFor(total);
  const sums = await client.sums(name, old.version, block, ranges);
  const table = new BlockTable(block);
  let at = 0;
  for (const range of ranges) {
    const count = Math.ceil(range.length / block);
    table.add(range as Range, sums.subarray(at, at + count * SUM_BYTES));
    at += count * SUM_BYTES;
  }
  return { version: old.version, table };
}
