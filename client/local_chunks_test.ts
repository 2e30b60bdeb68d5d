import { deepStrictEqual, rejects, strictEqual } from "node:assert/strict";
import { join } from "node:path";
import { toHex } from "../shared/chunk_list.ts";
import { rootOf } from "../shared/chunk_groups.ts";
import { chunkHashes } from "../shared/chunker.ts";
import { seededBytes } from "../tests/_common.ts";
import { BlockReader, localChunkList, localChunks } from "./local_chunks.ts";

Deno.test("localChunkList gives the chunker's cuts and hashes of the file, and their root", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const bytes = seededBytes(3 * 1024 * 1024 + 123, 5);
    const path = join(dir, "f.bin");
    await Deno.writeFile(path, bytes);
    const expected = await Array.fromAsync(chunkHashes([bytes]));
    const list = await localChunkList(path);
    strictEqual(list.size, bytes.length);
    deepStrictEqual(
      list.entries.map((entry) => [toHex(entry.hash), entry.length]),
      expected.map((c) => [c.sha256, c.length]),
    );
    strictEqual(list.root, rootOf(list.entries));
    const { chunks } = await localChunks(path);
    deepStrictEqual(chunks.map((chunk) => chunk.offset), expected.map((c) => c.offset));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("localChunks with a limit: the prefix's chunks match the whole file's but for the last", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const bytes = seededBytes(2 * 1024 * 1024, 9);
    const path = join(dir, "f.bin");
    await Deno.writeFile(path, bytes);
    const whole = await localChunks(path);
    const part = await localChunks(path, { limit: 1024 * 1024 });
    strictEqual(part.size, 1024 * 1024);
    const same = part.chunks.slice(0, -1).map((chunk) => toHex(chunk.hash));
    deepStrictEqual(same, whole.chunks.slice(0, same.length).map((chunk) => toHex(chunk.hash)));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("localChunkList of an empty file: no chunks, the root of nothing", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = join(dir, "empty");
    await Deno.writeFile(path, new Uint8Array());
    const list = await localChunkList(path);
    deepStrictEqual(list.entries, []);
    strictEqual(list.root, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("BlockReader reads whole ranges and refuses one past the end", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = join(dir, "f");
    await Deno.writeFile(path, new Uint8Array([0, 1, 2, 3, 4, 5]));
    using file = await Deno.open(path);
    const reader = new BlockReader(file);
    deepStrictEqual(await reader.read(2, 3), new Uint8Array([2, 3, 4]));
    deepStrictEqual(await reader.read(0, 2), new Uint8Array([0, 1]), "back before the block read");
    await rejects(reader.read(4, 3), /ends at 6 bytes/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
