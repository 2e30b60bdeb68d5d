/**
 * TEMPORARY SHIM — delete once helper E's client/connection.ts,
 * client/chunk_upload.ts, client/chunk_download.ts and client/local_chunks.ts
 * are merged from main. It gives push and pull the agreed signatures over the
 * whole-file requests of today: no delta, no resume, no mtime on upload, no
 * change counter.
 *
 * @module
 */

import { dirname, join } from "node:path";
import { fileChunks } from "../../shared/file_chunks.ts";
import { chunkHashes } from "../../shared/chunker.ts";
import { type GroupEntry, rootOf } from "../../shared/chunk_list.ts";
import { DfosError, Status } from "../../shared/status.ts";
import { DfosClient } from "../connection.ts";

declare module "../connection.ts" {
  interface DfosClient {
    /** SHIM. */
    chunks: boolean;
    /** SHIM. */
    traffic: { sent: number; received: number };
    /** SHIM. */
    changes(): Promise<{ epoch: string; counter: number; mine: number }>;
    /** SHIM. */
    groups(name: string): Promise<{ size: number; mtime: number; version: string; root: string; groups: GroupEntry[] }>;
  }
}

Object.defineProperty(DfosClient.prototype, "chunks", { get: () => false, configurable: true });
Object.defineProperty(DfosClient.prototype, "traffic", { get: () => ({ sent: 0, received: 0 }), configurable: true });
DfosClient.prototype.changes = () => Promise.reject(new DfosError(Status.UNSUPPORTED, "SHIM: no change counter"));
DfosClient.prototype.groups = () => Promise.reject(new DfosError(Status.UNSUPPORTED, "SHIM: no groups"));

/** SHIM of E's FileTransfer. */
export interface FileTransfer {
  content: number;
  sent: number;
  reused: number;
  resumed: boolean;
}

/** SHIM of E's transfer options. */
export interface TransferOptions {
  onProgress?: (bytes: number) => void;
  signal?: AbortSignal;
}

/** SHIM of E's uploadFile: a whole-file put (the mtime is not carried). */
export async function uploadFile(
  client: DfosClient,
  file: { path: string; size: number; mtime: number },
  name: string,
  options: TransferOptions = {},
): Promise<FileTransfer> {
  using source = await Deno.open(file.path, { read: true });
  const sent = await client.put(name, fileChunks(source, { limit: file.size }), {
    size: file.size,
    onProgress: options.onProgress,
    signal: options.signal,
  });
  return { content: sent.size, sent: sent.size, reused: 0, resumed: false };
}

/** SHIM of E's downloadFile: a whole-file get into a temporary file, renamed, its mtime set. */
export async function downloadFile(
  client: DfosClient,
  name: string,
  path: string,
  options: TransferOptions = {},
): Promise<FileTransfer & { mtime: number }> {
  const { file, body } = await client.get(name, { onProgress: options.onProgress });
  const temp = join(dirname(path), `.shim-${crypto.randomUUID()}.dfos-part`);
  const out = await Deno.open(temp, { write: true, createNew: true });
  try {
    for await (const bytes of body.chunks()) {
      let offset = 0;
      while (offset < bytes.length) offset += out.writeSync(bytes.subarray(offset));
    }
  } catch (error) {
    out.close();
    await Deno.remove(temp).catch(() => {});
    throw error;
  }
  out.close();
  await Deno.utime(temp, new Date(file.mtime), new Date(file.mtime));
  await Deno.rename(temp, path);
  return { content: file.size, sent: file.size, reused: 0, resumed: false, mtime: file.mtime };
}

/** SHIM of E's localChunkList. */
export async function localChunkList(path: string): Promise<{ entries: unknown[]; root: string; size: number }> {
  const entries = [];
  let size = 0;
  for await (const chunk of chunkHashes([await Deno.readFile(path)])) {
    entries.push({
      hash: Uint8Array.from(chunk.sha256.match(/../g)!.map((h) => parseInt(h, 16))),
      length: chunk.length,
    });
    size += chunk.length;
  }
  return { entries, root: rootOf(entries), size };
}
