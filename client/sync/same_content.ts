/**
 * `sameContent()`: `--checksum`'s comparison of a local file with a remote
 * one. With the chunk requests, the local chunk list's root against the
 * server's (`groups`), which the server keeps and need not read the file
 * for; against a server without them, the SHA-256 of the local bytes
 * against the one `stat` computes.
 *
 * @module
 */

import { createHash } from "node:crypto";
import type { DfosClient } from "../connection.ts";
import { localChunkList } from "../local_chunks.ts";

/**
 * True when the local file and the remote one hold the same bytes.
 *
 * @param client The connection.
 * @param path The local file.
 * @param name The remote file.
 * @returns The answer.
 */
export async function sameContent(client: DfosClient, path: string, name: string): Promise<boolean> {
  if (client.chunks) {
    const local = await localChunkList(path);
    const remote = await client.groups(name);
    return local.root === remote.root;
  }
  const remote = await client.stat(name, { digest: "sha256" });
  return remote.digest === await fileSha256(path);
}

async function fileSha256(path: string): Promise<string> {
  const hash = createHash("sha256");
  using file = await Deno.open(path, { read: true });
  const buffer = new Uint8Array(1 << 20);
  while (true) {
    const read = await file.read(buffer);
    if (read === null) break;
    hash.update(buffer.subarray(0, read));
  }
  return hash.digest("hex");
}
