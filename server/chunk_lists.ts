/**
 * A file's chunk list, as the chunk requests need it: the one stored beside
 * the file when it describes the file's current version, else computed by
 * reading the file (shared/chunker.ts) and stored for the next time.
 *
 * @module
 */
import { type ChunkEntry, decodeChunkEntries, encodeChunkEntries, fromHex } from "../shared/chunk_list.ts";
import { chunkHashes } from "../shared/chunker.ts";
import { type Bytes, bytesOf, release } from "../shared/pooled_bytes.ts";
import type { ReadHandle, Storage } from "./storage.ts";

/**
 * The chunk list of the version `handle` reads.
 *
 * @param storage Where the file is.
 * @param user The file's owner.
 * @param handle The file, open for reading (not closed here).
 * @returns Its chunks, in order.
 */
export async function chunkListOf(storage: Storage, user: string, handle: ReadHandle): Promise<ChunkEntry[]> {
  const { name, version } = handle.info;
  const stored = await storage.readChunkList(user, name);
  if (stored !== null && stored.version === version) {
    const entries = decodeChunkEntries(stored.entries);
    if (entries !== null) return entries;
  }
  const entries: ChunkEntry[] = [];
  for await (const chunk of chunkHashes(plainPieces(handle.read()))) {
    entries.push({ hash: fromHex(chunk.sha256)!, length: chunk.length });
  }
  await storage.writeChunkList(user, { name, version, entries: encodeChunkEntries(entries) });
  return entries;
}

/** Plain pieces from possibly pooled ones: each released once the consumer has taken it (asks for the next). */
async function* plainPieces(pieces: AsyncIterable<Bytes>): AsyncGenerator<Uint8Array> {
  for await (const piece of pieces) {
    try {
      yield bytesOf(piece);
    } finally {
      release(piece);
    }
  }
}
