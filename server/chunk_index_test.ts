/**
 * Tests of the chunk index's bookkeeping: where a chunk and a group are, and
 * the bound on its entries.
 *
 * @module
 */
import { deepStrictEqual, strictEqual } from "node:assert/strict";
import { groupsOf } from "../shared/chunk_groups.ts";
import { ChunkIndex, MAX_INDEX_ENTRIES } from "./chunk_index.ts";

/** A chunk entry of a distinct hash (`i` in its last bytes; first bytes 0x0001 never end a group). */
function entry(i: number, length = 100) {
  const hash = new Uint8Array(32);
  hash[1] = 1;
  new DataView(hash.buffer).setUint32(28, i);
  return { hash, length };
}

Deno.test("ChunkIndex finds a file's chunks at their offsets and its groups", () => {
  const index = new ChunkIndex();
  const entries = [entry(1, 10), entry(2, 20), entry(3, 30)];
  index.add({ kind: "file", name: "a", version: "v1" }, entries);
  deepStrictEqual(index.chunk(entries[2].hash), { kind: "file", name: "a", version: "v1", offset: 30, length: 30 });
  const [group] = groupsOf(entries);
  const found = index.group(group.key)!;
  deepStrictEqual(found.source, { kind: "file", name: "a", version: "v1", offset: 0, length: 60 });
  strictEqual(found.chunks.length, 3);
  index.forget(entries[0].hash);
  strictEqual(index.chunk(entries[0].hash), undefined);
});

Deno.test("ChunkIndex indexes a kept upload's chunks but not its groups", () => {
  const index = new ChunkIndex();
  const entries = [entry(1), entry(2)];
  index.add({ kind: "kept", name: "k", key: "root" }, entries);
  strictEqual(index.chunk(entries[1].hash)?.kind, "kept");
  strictEqual(index.group(groupsOf(entries)[0].key), undefined);
});

Deno.test("ChunkIndex keeps a stored file's copy of a chunk when a kept upload holds it too", () => {
  const index = new ChunkIndex();
  const shared = entry(7, 50);
  index.add({ kind: "file", name: "a", version: "v1" }, [shared]);
  index.add({ kind: "kept", name: "b", key: "k" }, [entry(8, 10), shared]);
  deepStrictEqual(index.chunk(shared.hash), { kind: "file", name: "a", version: "v1", offset: 0, length: 50 });
  deepStrictEqual(index.chunk(entry(8).hash), { kind: "kept", name: "b", key: "k", offset: 0, length: 10 });
});

Deno.test("ChunkIndex stops adding at its bound", () => {
  const index = new ChunkIndex();
  const entries = Array.from({ length: MAX_INDEX_ENTRIES + 10 }, (_, i) => entry(i, 1));
  index.add({ kind: "file", name: "big", version: "v" }, entries);
  strictEqual(index.size <= MAX_INDEX_ENTRIES, true);
  strictEqual(index.chunk(entries[MAX_INDEX_ENTRIES + 5].hash), undefined);
});
