/**
 * `uploadFile()`: sends a local file so that only what the server lacks
 * crosses the wire (`put --resume`, `push`; docs/PROTOCOL.md, "Chunks"). The
 * file is read once for its chunk list; HAVE asks which of its groups, then
 * which chunks of the other groups, the server can copy (from the user's
 * files or a kept upload an interrupted try left); ASSEMBLE then sends a
 * recipe: group and chunk steps for those, the bytes of the rest, read from
 * the file again. A file that changes meanwhile fails "changed while
 * sending" (its size or mtime moved), never a splice: the server checks the
 * root announced.
 *
 * @module
 */

import { toHex } from "../shared/chunk_list.ts";
import { groupsOf } from "../shared/chunk_groups.ts";
import { fileChunks } from "../shared/file_chunks.ts";
import { chunkStep, dataStepHeader, groupStep, patchStepHeader } from "../shared/recipe.ts";
import { encodeOps } from "../shared/block_delta.ts";
import type { DeltaBase } from "./upload_delta.ts";
import { DfosError, Status } from "../shared/status.ts";
import type { AssembledFile, DfosClient } from "./connection.ts";
import { BlockReader, type LocalChunk, localChunks, memoryChunks } from "./local_chunks.ts";

/** What moving one file took. */
export interface FileTransfer {
  /** The file's bytes. */
  content: number;
  /** Chunk bytes that crossed the wire for it. */
  sent: number;
  /** Bytes taken from what the other side had. */
  reused: number;
  /** True when the other side had some of it (a kept upload or partial download, an older version, a copy). */
  resumed: boolean;
  /** The root of the content moved (docs/PROTOCOL.md "Root"), when the transfer knows it. */
  root?: string;
}

/** Options for {@linkcode uploadFile} and `downloadFile()`. */
export interface TransferOptions {
  /** Called with the file's bytes done so far. */
  onProgress?: (bytes: number) => void;
  /** Stops the transfer: an upload's body ends with ABORT (the server drops it), a download keeps its partial. */
  signal?: AbortSignal;
  /**
   * Called just before a download lands over its target; throwing leaves the
   * target as it is (and the partial for the next try). `dfos sync` checks
   * there that the local file is still the one it planned on.
   */
  landing?: () => void;
  /** A download computes the root of what it fetched even when it came by one GET (`root` in its result). */
  wantRoot?: boolean;
  /**
   * The server has a file of this name (an upload): the chunks it lacks go
   * as deltas of that file's bytes where that is smaller (client/upload_delta.ts).
   */
  replaces?: boolean;
  /**
   * An upload's condition (docs/PROTOCOL.md "Sync"; a server with
   * `DfosClient.sync`): store only if the server's file has this root, or,
   * null, only if there is no file of that name; `CONFLICT` "changed on the
   * server" otherwise, and nothing is stored. Sent with every ASSEMBLE the
   * upload makes.
   */
  ifRoot?: string | null;
}

/**
 * Files up to this size are read once, whole, into memory: chunked and sent
 * from there (no second read, no seek per chunk).
 */
export const IN_MEMORY_BYTES = 4 * 1024 * 1024;

/** A local file read and cut into chunks, ready to upload ({@linkcode prepareUpload}). */
export interface PreparedFile {
  /** Its size and mtime before it was read. */
  before: { size: number; mtime: number };
  /** Its chunks. */
  chunks: LocalChunk[];
  /** Their root. */
  root: string;
  /** The bytes read. */
  size: number;
  /** The file's bytes when it is small enough to be held ({@linkcode IN_MEMORY_BYTES}), else null. */
  bytes: Uint8Array | null;
}

/**
 * Reads a local file for {@linkcode uploadFile}: its facts and chunks, and a
 * small file's bytes.
 *
 * @param path The local file.
 * @returns What the upload needs.
 */
export async function prepareUpload(path: string): Promise<PreparedFile> {
  const before = fileState(path);
  if (before.size <= IN_MEMORY_BYTES) {
    const bytes = Deno.readFileSync(path);
    const { chunks, root } = await memoryChunks(bytes);
    return { before, chunks, root, size: bytes.length, bytes };
  }
  const { chunks, root, size } = await localChunks(path);
  return { before, chunks, root, size, bytes: null };
}

/** One step of the recipe to send. */
type Step =
  | { kind: "group"; key: Uint8Array; bytes: number }
  | { kind: "chunk"; chunk: LocalChunk }
  | { kind: "data"; chunk: LocalChunk };

/**
 * Uploads a local file as `name`, sending only the chunks the server does not
 * have; its mtime goes with it. Against a server without the chunk requests
 * it is a plain put (the server's clock gives the mtime).
 *
 * @param client A logged-in client.
 * @param local The file's path, and its size and mtime (ms) as seen before.
 * @param name The remote name.
 * @param options Progress, a stop signal, and a condition (`ifRoot`).
 * @returns What it took.
 * @throws {DfosError} `CONFLICT` "changed while sending" when the file changes meanwhile; `CONFLICT` "changed on
 * the server" when `ifRoot` does not hold.
 */
export async function uploadFile(
  client: DfosClient,
  local: { path: string; size: number; mtime: number },
  name: string,
  options: TransferOptions = {},
): Promise<FileTransfer> {
  if (!client.chunks) {
    if (options.ifRoot !== undefined) {
      throw new DfosError(
        Status.UNSUPPORTED,
        `Cannot upload "${name}" on a condition: the server has no chunk requests`,
      );
    }
    return await plainPut(client, local, name, options);
  }
  const prepared = await prepareUpload(local.path);
  const { before, chunks, root, size } = prepared;
  checkUnchanged(local.path, before, size, name);
  const file = { name, size, mtime: before.mtime, root, chunks: chunks.length, ifRoot: options.ifRoot };
  const steps = await plan(client, chunks, { name, root });
  const source = { path: local.path, bytes: prepared.bytes };
  try {
    const base = await patchBase(client, name, chunks, steps, options);
    const moved = await send(client, source, base === null ? file : { ...file, base: base.version }, steps, before, {
      ...options,
      base,
    });
    return { ...moved, root };
  } catch (error) {
    // The server lost a chunk it said it had (removed meanwhile): once more, with every chunk's bytes.
    if (!(error instanceof DfosError) || error.code !== Status.NOT_FOUND || options.signal?.aborted) throw error;
    const all: Step[] = chunks.map((chunk) => ({ kind: "data", chunk }));
    return { ...(await send(client, source, file, all, before, options)), root };
  }
}

/** The recipe: group steps for the groups the server has, chunk steps for its chunks, data for the rest. */
async function plan(client: DfosClient, chunks: LocalChunk[], upload: { name: string; root: string }): Promise<Step[]> {
  if (chunks.length <= 1) return chunks.map((chunk) => ({ kind: "data", chunk }));
  const groups = groupsOf(chunks);
  // One group: its chunks tell as much as its key would, in one round trip instead of two.
  const knownGroups = groups.length === 1 ? [false] : await client.have(groups.map((group) => group.key), upload);
  const asked: LocalChunk[] = [];
  const seen = new Set<string>();
  let at = 0;
  groups.forEach((group, g) => {
    if (!knownGroups[g]) {
      for (const chunk of chunks.slice(at, at + group.chunks)) {
        const hex = toHex(chunk.hash);
        if (!seen.has(hex)) {
          seen.add(hex);
          asked.push(chunk);
        }
      }
    }
    at += group.chunks;
  });
  const knownChunks = new Set<string>();
  (await client.have(asked.map((chunk) => chunk.hash), upload)).forEach((known, i) => {
    if (known) knownChunks.add(toHex(asked[i].hash));
  });
  const steps: Step[] = [];
  at = 0;
  groups.forEach((group, g) => {
    const members = chunks.slice(at, at + group.chunks);
    at += group.chunks;
    if (knownGroups[g]) {
      steps.push({ kind: "group", key: group.key, bytes: group.bytes });
      return;
    }
    for (const chunk of members) {
      steps.push({ kind: knownChunks.has(toHex(chunk.hash)) ? "chunk" : "data", chunk });
    }
  });
  return steps;
}

/** Data steps of at least this many bytes in all are worth asking for a delta base (three round trips). */
const DELTA_FROM_BYTES = 16 * 1024;

/** The base for patches when the upload replaces a file and sends enough data to gain from it; else null. */
async function patchBase(
  client: DfosClient,
  name: string,
  chunks: LocalChunk[],
  steps: Step[],
  options: TransferOptions,
): Promise<DeltaBase | null> {
  if (!options.replaces || !client.deltas) return null;
  const data = steps.reduce((sum, step) => sum + (step.kind === "data" ? step.chunk.length : 0), 0);
  if (data < DELTA_FROM_BYTES) return null;
  const { deltaBase } = await import("./upload_delta.ts");
  const keys = new Set(groupsOf(chunks).map((group) => toHex(group.key)));
  try {
    return await deltaBase(client, name, chunks, keys);
  } catch (error) {
    // The old file went or changed meanwhile: the chunks go whole.
    if (error instanceof DfosError && (error.code === Status.NOT_FOUND || error.code === Status.CONFLICT)) return null;
    throw error;
  }
}

/** Sends one ASSEMBLE of `steps`; the data steps' bytes are read from the file, which must not change. */
async function send(
  client: DfosClient,
  { path, bytes: held }: { path: string; bytes: Uint8Array | null },
  file: AssembledFile,
  steps: Step[],
  before: { size: number; mtime: number },
  options: TransferOptions & { base?: DeltaBase | null },
): Promise<FileTransfer> {
  let sent = 0;
  let done = 0;
  using source = held === null ? await Deno.open(path, { read: true }) : null;
  const reader = source === null ? null : new BlockReader(source);
  async function* recipe(): AsyncGenerator<Uint8Array> {
    for (const step of steps) {
      if (step.kind === "group") {
        yield groupStep(step.key);
        done += step.bytes;
      } else if (step.kind === "chunk") {
        yield chunkStep(step.chunk.hash, step.chunk.length);
        done += step.chunk.length;
      } else {
        const { offset, length } = step.chunk;
        const bytes = held !== null
          ? held.subarray(offset, offset + length)
          : await reader!.read(offset, length).catch((error) => {
            throw changed(file.name, error);
          });
        const patch = options.base ? encodeOps(options.base.table.delta(bytes)) : null;
        if (patch !== null && patch.length < bytes.length * 0.9) {
          yield patchStepHeader(step.chunk.hash, bytes.length, patch.length);
          yield patch;
          sent += patch.length;
        } else {
          yield dataStepHeader(bytes.length);
          yield bytes;
          sent += bytes.length;
        }
        done += bytes.length;
      }
      options.onProgress?.(done);
    }
    checkUnchanged(path, before, file.size, file.name);
  }
  await client.assemble(file, recipe(), { signal: options.signal });
  const reused = file.size - sent;
  return { content: file.size, sent, reused, resumed: reused > 0 };
}

/** A plain PUT of the whole file, for a server without the chunk requests. */
async function plainPut(
  client: DfosClient,
  local: { path: string; size: number },
  name: string,
  options: TransferOptions,
): Promise<FileTransfer> {
  using source = await Deno.open(local.path, { read: true });
  const { size } = await client.put(name, fileChunks(source, { limit: local.size }), {
    size: local.size,
    signal: options.signal,
    onProgress: options.onProgress,
  });
  return { content: size, sent: size, reused: 0, resumed: false };
}

/** A local file's size and mtime (ms); a `stat` takes microseconds, where an async one costs 40-60 us. */
function fileState(path: string): { size: number; mtime: number } {
  let info: Deno.FileInfo;
  try {
    info = Deno.statSync(path);
  } catch (error) {
    throw new Error(`Cannot read "${path}": ${(error as Error).message}`);
  }
  if (!info.isFile) throw new DfosError(Status.BAD_REQUEST, `Cannot upload "${path}": it is not a file`);
  return { size: info.size, mtime: info.mtime?.getTime() ?? Date.now() };
}

/** Throws "changed while sending" when the file's size or mtime is no longer what it was. */
function checkUnchanged(path: string, before: { size: number; mtime: number }, size: number, name: string): void {
  const now = fileState(path);
  if (now.size !== before.size || now.mtime !== before.mtime || size !== before.size) throw changed(name);
}

function changed(name: string, cause?: unknown): DfosError {
  const why = cause instanceof Error ? ` (${cause.message})` : "";
  return new DfosError(Status.CONFLICT, `Cannot upload "${name}": the local file changed while sending${why}`);
}
