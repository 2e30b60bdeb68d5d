/**
 * `downloadFile()`: fetches a remote file so that only what is not already
 * beside the target crosses the wire (`get --resume`, `pull`;
 * docs/PROTOCOL.md, "Chunks").
 *
 * The new file is built in order in its partial file beside the target,
 * `.NAME.dfos-partial` ({@linkcode partialPath}): the chunks it already holds
 * that start the server's list are kept, the rest come from the target's old
 * version (copied and re-hashed) or from the server (READ, ranges merged where
 * adjacent). Every chunk's SHA-256 is checked before it is written, so the
 * partial is always a verified prefix; once whole its root is the server's,
 * its mtime is set to the server's and it is renamed over the target. An
 * interrupted download leaves the partial for the next try; a version that
 * changes mid-way (`CONFLICT`) starts the file over once.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { type ByteRange, type ChunkEntry, toHex } from "../shared/chunk_list.ts";
import { groupsOf, rootOf } from "../shared/chunk_groups.ts";
import { CHUNK_MIN_BYTES } from "../shared/chunker.ts";
import { type DigestAlgorithm, MAX_READ_RANGES } from "../shared/messages.ts";
import { type Bytes, bytesOf, release } from "../shared/pooled_bytes.ts";
import { DfosError, Status } from "../shared/status.ts";
import { type FileTransfer, IN_MEMORY_BYTES as SMALL_FILE_BYTES, type TransferOptions } from "./chunk_upload.ts";
import type { DfosClient } from "./connection.ts";
import { BlockReader, chunksOf, type LocalChunk, localChunks } from "./local_chunks.ts";
import { partialPath } from "./partial_path.ts";

/** The most bytes one READ (or DELTA) asks for: the partial grows by at most this between checks of the signal. */
const READ_BATCH_BYTES = 8 * 1024 * 1024;

/** Chunks to fetch of at least this many bytes in all are worth summing the old file for (a DELTA, not a READ). */
const DELTA_FROM_BYTES = 16 * 1024;

export { partialPath };

/**
 * Downloads `name` to `path`, fetching only the chunks not already in the
 * partial or the old `path`. Against a server without the chunk requests it
 * is a plain get (through the partial too).
 *
 * @param client A logged-in client.
 * @param name The remote name.
 * @param path The local file (a regular file or none).
 * @param options Progress, a stop signal, the size as last seen, and `pipelined` (only for a download that
 *   {@linkcode smallAndNew} says is one GET).
 * @returns What it took, and the server's mtime (ms).
 */
export async function downloadFile(
  client: DfosClient,
  name: string,
  path: string,
  options: TransferOptions & { size?: number; pipelined?: boolean; digest?: DigestAlgorithm } = {},
): Promise<FileTransfer & { mtime: number }> {
  if (!client.chunks) return await plainGet(client, name, path, { ...options, pipelined: false });
  // Nothing of it here: one GET into the partial, checked whole by its digest, as fast as a plain get and
  // resumable like any partial (the next try checks it chunk by chunk), instead of three round trips for
  // chunks that are all missing anyway. Such a GET goes in turn with the requests pipelined on the connection (a
  // pull's other files), whether it was asked for pipelined or not: its reply must not be read before theirs.
  if (options.pipelined || (!regularFileSync(path) && !regularFileSync(partialPath(path)))) {
    return await plainGet(client, name, path, { ...options, pipelined: true }, options.digest ?? "sha256");
  }
  try {
    return await downloadOnce(client, name, path, options);
  } catch (error) {
    if (!(error instanceof DfosError) || error.code !== Status.CONFLICT || options.signal?.aborted) throw error;
    return await downloadOnce(client, name, path, options);
  }
}

async function downloadOnce(
  client: DfosClient,
  name: string,
  path: string,
  options: TransferOptions,
): Promise<FileTransfer & { mtime: number }> {
  const remote = await client.groups(name);
  const old = regularFileSync(path) ? await localChunks(path) : null;
  const chunks = await serverChunks(client, name, remote, old?.chunks ?? []);
  if (rootOf(chunks) !== remote.root || chunks.reduce((sum, chunk) => sum + chunk.length, 0) !== remote.size) {
    throw new DfosError(Status.INTEGRITY, `Cannot download "${name}": the server's chunk list does not match its root`);
  }
  const partial = partialPath(path);
  const kept = regularFileSync(partial) ? await localChunks(partial) : null;
  let prefix = 0;
  let done = 0;
  while (
    kept !== null && prefix < kept.chunks.length && prefix < chunks.length &&
    sameChunk(kept.chunks[prefix], chunks[prefix])
  ) {
    done += chunks[prefix].length;
    prefix++;
  }
  const resumedBytes = done;
  const oldByHash = new Map<string, LocalChunk>();
  for (const chunk of old?.chunks ?? []) oldByHash.set(toHex(chunk.hash), chunk);
  // Synchronous file calls: one per step here, where an async one costs a hand-over to another thread.
  using out = Deno.openSync(partial, { write: true, create: true, mode: 0o644 });
  out.truncateSync(done);
  out.seekSync(done, Deno.SeekMode.Start);
  using oldFile = old === null ? null : Deno.openSync(path, { read: true });
  const oldReader = oldFile === null ? null : new BlockReader(oldFile);
  let sent = 0;
  let reused = resumedBytes;
  options.onProgress?.(done);
  // Server offsets of each chunk, for READ.
  const offsets: number[] = [];
  chunks.reduce((offset, chunk, i) => (offsets[i] = offset) + chunk.length, 0);
  // The chunks to fetch, if enough, come as deltas of the old file's chunks the new version does not reuse.
  const missing = chunks.slice(prefix).reduce(
    (sum, chunk) => sum + (oldByHash.has(toHex(chunk.hash)) ? 0 : chunk.length),
    0,
  );
  const base = client.deltas && oldReader !== null && old !== null && missing >= DELTA_FROM_BYTES
    ? await (await import("./download_delta.ts")).localDeltaBase(oldReader, old.chunks, chunks)
    : null;
  let pending: number[] = [];
  const flush = async () => {
    if (pending.length === 0) return;
    let batch = pending.map((i) => ({ ...chunks[i], offset: offsets[i] }));
    pending = [];
    if (base !== null) {
      const { fetchDelta } = await import("./download_delta.ts");
      const { received, written } = await fetchDelta(
        client,
        { name, version: remote.version },
        batch,
        base,
        (bytes) => {
          writeAll(out, bytes);
          done += bytes.length;
        },
      );
      sent += received;
      batch = batch.slice(written); // what did not check comes by READ
    }
    if (batch.length > 0) {
      sent += await fetchChunks(client, name, remote.version, batch, out);
      done += batch.reduce((sum, chunk) => sum + chunk.length, 0);
    }
    options.onProgress?.(done);
  };
  let pendingBytes = 0;
  let pendingRanges = 0;
  for (let i = prefix; i < chunks.length; i++) {
    options.signal?.throwIfAborted();
    const chunk = chunks[i];
    const local = oldByHash.get(toHex(chunk.hash));
    if (local !== undefined && oldReader !== null) {
      const bytes = await oldReader.read(local.offset, local.length).catch(() => null);
      if (bytes !== null && sha256(bytes) === toHex(chunk.hash)) {
        await flush();
        pendingBytes = pendingRanges = 0;
        writeAll(out, bytes);
        reused += bytes.length;
        done += bytes.length;
        options.onProgress?.(done);
        continue;
      }
    }
    const adjacent = pending.length > 0 && pending[pending.length - 1] === i - 1;
    if (!adjacent) pendingRanges++;
    if (pendingRanges > MAX_READ_RANGES || pendingBytes + chunk.length > READ_BATCH_BYTES) {
      await flush();
      pendingBytes = 0;
      pendingRanges = 1;
    }
    pending.push(i);
    pendingBytes += chunk.length;
  }
  await flush();
  // No fsync, as for a plain get: a file's bytes reach the disk when the system writes them back (rsync does
  // the same), and a partial left by a crash is checked chunk by chunk when taken up again.
  const mtime = new Date(remote.mtime);
  Deno.utimeSync(partial, mtime, mtime);
  options.landing?.();
  Deno.renameSync(partial, path);
  return { content: remote.size, sent, reused, resumed: reused > 0, mtime: remote.mtime, root: remote.root };
}

/** The server's chunk list: groups the old file has are taken from it, the rest asked with GROUP-CHUNKS. */
async function serverChunks(
  client: DfosClient,
  name: string,
  remote: { version: string; groups: { key: Uint8Array; chunks: number }[] },
  old: LocalChunk[],
): Promise<ChunkEntry[]> {
  const oldGroups = new Map<string, ChunkEntry[]>();
  let at = 0;
  for (const group of groupsOf(old)) {
    oldGroups.set(toHex(group.key), old.slice(at, at + group.chunks));
    at += group.chunks;
  }
  const chunks: ChunkEntry[] = [];
  const groups = remote.groups;
  for (let g = 0; g < groups.length;) {
    const known = oldGroups.get(toHex(groups[g].key));
    if (known !== undefined && known.length === groups[g].chunks) {
      chunks.push(...known.map(({ hash, length }) => ({ hash, length })));
      g++;
      continue;
    }
    let count = 1;
    while (g + count < groups.length && !oldGroups.has(toHex(groups[g + count].key))) count++;
    const fetched = await client.groupChunks(name, remote.version, g, count);
    const expected = groups.slice(g, g + count).reduce((sum, group) => sum + group.chunks, 0);
    if (fetched.length !== expected) {
      throw new DfosError(Status.BAD_REQUEST, `Server sent ${fetched.length} chunk entries for ${expected}`);
    }
    chunks.push(...fetched);
    g += count;
  }
  return chunks;
}

/** READs the chunks (server offsets given, adjacent ones merged) and appends each to `out` once its hash checks. */
async function fetchChunks(
  client: DfosClient,
  name: string,
  version: string,
  chunks: (ChunkEntry & { offset: number })[],
  out: Deno.FsFile,
): Promise<number> {
  const ranges: ByteRange[] = [];
  for (const chunk of chunks) {
    const last = ranges[ranges.length - 1];
    if (last !== undefined && last.offset + last.length === chunk.offset) last.length += chunk.length;
    else ranges.push({ offset: chunk.offset, length: chunk.length });
  }
  const download = await client.read(name, version, ranges);
  let index = 0;
  let buffer = new Uint8Array(chunks[0].length);
  let filled = 0;
  let received = 0;
  try {
    for await (const piece of download.body.pieces()) {
      try {
        const bytes = bytesOf(piece);
        let at = 0;
        while (at < bytes.length) {
          if (index >= chunks.length) throw new DfosError(Status.INTEGRITY, `READ of "${name}" sent too many bytes`);
          const take = Math.min(bytes.length - at, buffer.length - filled);
          buffer.set(bytes.subarray(at, at + take), filled);
          filled += take;
          at += take;
          if (filled === buffer.length) {
            if (sha256(buffer) !== toHex(chunks[index].hash)) {
              throw new DfosError(Status.INTEGRITY, `Cannot download "${name}": a chunk does not match its hash`);
            }
            writeAll(out, buffer);
            received += buffer.length;
            index++;
            if (index < chunks.length) buffer = new Uint8Array(chunks[index].length);
            filled = 0;
          }
        }
      } finally {
        release(piece);
      }
    }
  } catch (error) {
    // The rest of the body is read and dropped: the replies after it stay in step.
    await download.body.discard().catch(() => {});
    throw error;
  }
  if (index !== chunks.length) throw new DfosError(Status.INTEGRITY, `READ of "${name}" sent too few bytes`);
  return received;
}

/** A plain GET through the partial (a server without the chunk requests, or a small new file). */
async function plainGet(
  client: DfosClient,
  name: string,
  path: string,
  options: TransferOptions & { pipelined?: boolean },
  digest?: DigestAlgorithm,
): Promise<FileTransfer & { mtime: number }> {
  const partial = partialPath(path);
  const download = await client.get(name, { onProgress: options.onProgress, digest, pipelined: options.pipelined });
  let root: string | undefined;
  try {
    using out = Deno.openSync(partial, { write: true, create: true, truncate: true, mode: 0o644 });
    // Written in place, synchronously: one body at a time per file, and an async write costs a hand-over to
    // another thread for each piece (a plain get's TempFile does the same, client/download.ts).
    const written = writtenPieces(download.body.pieces(), out);
    // The root, when asked for, is chunked and hashed from the pieces as they are written, not read back after.
    if (options.wantRoot) root = (await chunksOf(written)).root;
    else for await (const _ of written);
  } catch (error) {
    // The rest of the body is read and dropped: the replies after it stay in step.
    await download.body.discard().catch(() => {});
    throw error;
  }
  const mtime = new Date(download.file.mtime);
  Deno.utimeSync(partial, mtime, mtime);
  options.landing?.();
  Deno.renameSync(partial, path);
  const size = download.file.size;
  return { content: size, sent: size, reused: 0, resumed: false, mtime: download.file.mtime, root };
}

/** Writes each piece to `out`, then gives it on; it goes back to its pool when the next one is asked for. */
async function* writtenPieces(pieces: AsyncIterable<Bytes>, out: Deno.FsFile): AsyncGenerator<Uint8Array> {
  for await (const piece of pieces) {
    try {
      const bytes = bytesOf(piece);
      writeAll(out, bytes);
      yield bytes;
    } finally {
      release(piece);
    }
  }
}

function sameChunk(a: ChunkEntry, b: ChunkEntry): boolean {
  return a.length === b.length && toHex(a.hash) === toHex(b.hash);
}

function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** Writes all of `bytes` in place: synchronous, as a plain get writes (client/download.ts). */
function writeAll(file: Deno.FsFile, bytes: Uint8Array): void {
  let at = 0;
  while (at < bytes.length) at += file.writeSync(bytes.subarray(at));
}

/**
 * True when a download of `size` bytes to `path` is best one GET, which may
 * then be `pipelined`: a file under the smallest chunk (one chunk, changed
 * whole), or a small one with no local file and no partial of it (nothing
 * to reuse).
 *
 * @param path The local target.
 * @param size The remote file's size, as last seen.
 * @returns Whether to ask {@linkcode downloadFile} for it `pipelined`.
 */
export function fetchedWhole(path: string, size: number): boolean {
  if (size < CHUNK_MIN_BYTES) return true;
  return size <= SMALL_FILE_BYTES && !regularFileSync(path) && !regularFileSync(partialPath(path));
}

function regularFileSync(path: string): boolean {
  try {
    return Deno.lstatSync(path).isFile;
  } catch {
    return false;
  }
}
