/**
 * Deltas for a download over an old local file: the sums of the old file's
 * chunks the new version does not reuse whole (`localDeltaBase`), sent with
 * each DELTA, and the chunks the server describes against them rebuilt from
 * the old file and the literals sent, each checked against its hash before
 * it is written (`fetchDelta`; docs/PROTOCOL.md "Deltas"). A chunk whose
 * rebuilt bytes do not check (the old file changed meanwhile) is left for a
 * READ.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { blockSizeFor, blockSums, decodeOps } from "../shared/block_delta.ts";
import { type ByteRange, type ChunkEntry, toHex } from "../shared/chunk_list.ts";
import { concatBytes } from "../shared/concat_bytes.ts";
import { MAX_READ_RANGES, MAX_SUMS_BYTES } from "../shared/messages.ts";
import type { DfosClient } from "./connection.ts";
import type { BlockReader, LocalChunk } from "./local_chunks.ts";

/** The old bytes a download's deltas may copy from: where they lie in the local file, and their sums. */
export interface LocalDeltaBase {
  block: number;
  bases: ByteRange[];
  sums: Uint8Array;
  /** Reads the old file. */
  reader: BlockReader;
}

/**
 * The sums of the old file's chunks that the new version does not reuse
 * whole, or null when there are none or too many to sum.
 *
 * @param reader The old local file.
 * @param old Its chunks.
 * @param wanted The new version's chunks.
 * @returns The base, or null.
 */
export async function localDeltaBase(
  reader: BlockReader,
  old: readonly LocalChunk[],
  wanted: readonly ChunkEntry[],
): Promise<LocalDeltaBase | null> {
  const reused = new Set(wanted.map((chunk) => toHex(chunk.hash)));
  const bases: ByteRange[] = [];
  let total = 0;
  for (const chunk of old) {
    if (reused.has(toHex(chunk.hash))) continue;
    const last = bases.at(-1);
    if (last !== undefined && last.offset + last.length === chunk.offset) last.length += chunk.length;
    else bases.push({ offset: chunk.offset, length: chunk.length });
    total += chunk.length;
  }
  if (bases.length === 0 || bases.length > MAX_READ_RANGES || total > MAX_SUMS_BYTES) return null;
  const block = blockSizeFor(total);
  const sums: Uint8Array[] = [];
  for (const base of bases) sums.push(blockSums(await reader.read(base.offset, base.length), block));
  return { block, bases, sums: concatBytes(sums), reader };
}

/**
 * Fetches chunks as deltas of the old file and writes each, checked, with
 * `write`, in order; stops at the first that does not check.
 *
 * @param client The connection.
 * @param remote The name and version.
 * @param chunks The chunks, with their offsets in the remote file.
 * @param base The old file's sums.
 * @param write Appends a checked chunk to the partial.
 * @returns The bytes received, and how many chunks were written (the rest are for a READ).
 */
export async function fetchDelta(
  client: DfosClient,
  remote: { name: string; version: string },
  chunks: readonly (ChunkEntry & { offset: number })[],
  base: LocalDeltaBase,
  write: (bytes: Uint8Array) => void,
): Promise<{ received: number; written: number }> {
  const ranges = chunks.map(({ offset, length }) => ({ offset, length }));
  const all = await client.delta(remote.name, remote.version, base.block, ranges, base.bases, base.sums);
  let received = 0;
  for (const ops of all) received += 4 + ops.length;
  for (let i = 0; i < chunks.length; i++) {
    const bytes = new Uint8Array(chunks[i].length);
    let at = 0;
    for (const op of decodeOps(all[i], chunks[i].length)) {
      const part = op.kind === "literal" ? op.bytes : await base.reader.read(op.offset, op.length).catch(() => null);
      if (part === null || part.length !== (op.kind === "literal" ? op.bytes.length : op.length)) {
        return { received, written: i };
      }
      bytes.set(part, at);
      at += part.length;
    }
    if (createHash("sha256").update(bytes).digest("hex") !== toHex(chunks[i].hash)) return { received, written: i };
    write(bytes);
  }
  return { received, written: chunks.length };
}
