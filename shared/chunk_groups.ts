/**
 * The hashing of a chunk list (docs/PROTOCOL.md, "Chunks"; the formats are in
 * shared/chunk_list.ts): its groups with their keys, and its root. Apart from
 * chunk_list.ts because it loads `node:crypto`, which only the commands that
 * move chunks need.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { type ChunkEntry, endsGroup, type GroupEntry } from "./chunk_list.ts";

/**
 * Cuts a chunk list into its groups.
 *
 * @param chunks The chunks, in file order.
 * @returns The groups, in file order.
 *
 * @example Usage
 * ```ts
 * import { groupsOf } from "./chunk_groups.ts";
 * import { strictEqual } from "node:assert/strict";
 * const hash = new Uint8Array(32).fill(1);
 * const groups = groupsOf([{ hash, length: 10 }, { hash, length: 5 }]);
 * strictEqual(groups.length, 1);
 * strictEqual(groups[0].bytes, 15);
 * ```
 */
export function groupsOf(chunks: readonly ChunkEntry[]): GroupEntry[] {
  const groups: GroupEntry[] = [];
  let hash = createHash("sha256");
  let count = 0;
  let bytes = 0;
  for (const chunk of chunks) {
    hash.update(chunk.hash);
    count++;
    bytes += chunk.length;
    if (endsGroup(chunk.hash)) {
      groups.push({ key: new Uint8Array(hash.digest()), chunks: count, bytes });
      hash = createHash("sha256");
      count = 0;
      bytes = 0;
    }
  }
  if (count > 0) groups.push({ key: new Uint8Array(hash.digest()), chunks: count, bytes });
  return groups;
}

/**
 * The root of a chunk list, lower-case hex: the SHA-256 of its hashes.
 *
 * @param chunks The chunks, in file order.
 * @returns 64 hex digits.
 *
 * @example Usage
 * ```ts
 * import { rootOf } from "./chunk_groups.ts";
 * import { strictEqual } from "node:assert/strict";
 * strictEqual(rootOf([]), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
 * ```
 */
export function rootOf(chunks: readonly ChunkEntry[]): string {
  const hash = createHash("sha256");
  for (const chunk of chunks) hash.update(chunk.hash);
  return hash.digest("hex");
}
