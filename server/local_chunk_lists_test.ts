/**
 * The chunk list log (local_chunk_lists.ts) through LocalStorage: lists
 * survive a restart, a record cut short by a crash ends the log there and
 * loses nothing before it, a log mostly dead is written again smaller, a log
 * changed behind the server's back is read again, and the lists of the
 * earlier layout (a file each) are cleared away.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { CHUNKS_DIR, LOG_FILE } from "./local_chunk_lists.ts";
import { LocalStorage } from "./local_storage.ts";
import type { StoredChunkList } from "./storage.ts";

const USER = "alice";

async function withStorage(fn: (root: string, reopen: () => Promise<LocalStorage>) => Promise<void>): Promise<void> {
  const base = await Deno.makeTempDir({ prefix: "dfos-chunk-log-" });
  const opened: LocalStorage[] = [];
  try {
    const root = join(base, "root");
    await fn(root, async () => {
      const storage = await LocalStorage.open(root);
      await storage.prepareUser(USER);
      opened.push(storage);
      return storage;
    });
  } finally {
    for (const storage of opened) await storage.abortUploads();
    await Deno.remove(base, { recursive: true });
  }
}

function list(name: string, version: string, fill: number, size = 36): StoredChunkList {
  return { name, version, entries: new Uint8Array(size).fill(fill) };
}

async function names(storage: LocalStorage): Promise<string[]> {
  const found: string[] = [];
  for await (const stored of storage.chunkLists(USER)) found.push(`${stored.name}@${stored.version}`);
  return found.sort();
}

Deno.test("chunk list log: lists written by one run are read by the next, the last of a name wins, removals hold", async () => {
  await withStorage(async (_root, reopen) => {
    const first = await reopen();
    await first.writeChunkList(USER, list("a", "v1", 1));
    await first.writeChunkList(USER, list("b", "v1", 2));
    await first.writeChunkList(USER, list("a", "v2", 3));
    await first.writeChunkList(USER, list("c", "v1", 4));
    const upload = await first.beginUpload(USER, "c");
    await upload.write(new Uint8Array([1]));
    await upload.commit();
    await first.remove(USER, "c");
    await first.abortUploads();
    const second = await reopen();
    assert.deepEqual(await second.readChunkList(USER, "a"), list("a", "v2", 3));
    assert.deepEqual(await second.readChunkList(USER, "b"), list("b", "v1", 2));
    assert.equal(await second.readChunkList(USER, "c"), null, "removed with its file");
    assert.deepEqual(await names(second), ["a@v2", "b@v1"]);
  });
});

Deno.test("chunk list log: a record cut short by a crash ends the log there; what came before stays and writing goes on", async () => {
  await withStorage(async (root, reopen) => {
    const first = await reopen();
    await first.writeChunkList(USER, list("a", "v1", 1));
    await first.writeChunkList(USER, list("b", "v1", 2, 3600));
    await first.abortUploads();
    const path = join(root, USER, CHUNKS_DIR, LOG_FILE);
    const whole = Deno.readFileSync(path);
    Deno.truncateSync(path, whole.length - 100); // b's record cut short
    const second = await reopen();
    assert.deepEqual(await second.readChunkList(USER, "a"), list("a", "v1", 1));
    assert.equal(await second.readChunkList(USER, "b"), null);
    await second.writeChunkList(USER, list("b", "v2", 5));
    await second.abortUploads();
    const third = await reopen();
    assert.deepEqual(
      await third.readChunkList(USER, "b"),
      list("b", "v2", 5),
      "appended after the cut, not after garbage",
    );
    assert.deepEqual(await names(third), ["a@v1", "b@v2"]);
  });
});

Deno.test("chunk list log: a damaged record is not taken for a list", async () => {
  await withStorage(async (root, reopen) => {
    const first = await reopen();
    await first.writeChunkList(USER, list("a", "v1", 1));
    await first.writeChunkList(USER, list("b", "v1", 2));
    await first.abortUploads();
    const path = join(root, USER, CHUNKS_DIR, LOG_FILE);
    const bytes = Deno.readFileSync(path);
    bytes[bytes.length - 1] ^= 0xff; // a bit of b's entries flipped
    Deno.writeFileSync(path, bytes);
    const second = await reopen();
    assert.deepEqual(await second.readChunkList(USER, "a"), list("a", "v1", 1));
    assert.equal(await second.readChunkList(USER, "b"), null);
  });
});

Deno.test("chunk list log: once mostly dead records it is written again with only the live ones", async () => {
  await withStorage(async (root, reopen) => {
    const storage = await reopen();
    const path = join(root, USER, CHUNKS_DIR, LOG_FILE);
    const big = 64 * 1024;
    let shrank = 0;
    for (let i = 0, size = 0; i < 40; i++) {
      await storage.writeChunkList(USER, list("big", `v${i}`, i, big));
      if (Deno.statSync(path).size < size) shrank++;
      size = Deno.statSync(path).size;
    }
    await storage.writeChunkList(USER, list("small", "v1", 9));
    assert.ok(shrank >= 2, `written again ${shrank} times for 2.6 MB appended`);
    const size = Deno.statSync(path).size;
    assert.ok(size < 1024 * 1024 + 2 * big, `${size} bytes for two live lists: the dead ones stay under 1 MiB`);
    assert.deepEqual(await storage.readChunkList(USER, "big"), list("big", "v39", 39, big));
    assert.deepEqual(await storage.readChunkList(USER, "small"), list("small", "v1", 9));
    assert.deepEqual([...Deno.readDirSync(join(root, USER, CHUNKS_DIR))].map((entry) => entry.name), [LOG_FILE]);
    await storage.abortUploads();
    const again = await reopen();
    assert.deepEqual(await names(again), ["big@v39", "small@v1"]);
  });
});

Deno.test("chunk list log: a log replaced behind the server's back is read again, not trusted from memory", async () => {
  await withStorage(async (root, reopen) => {
    const storage = await reopen();
    await storage.writeChunkList(USER, list("a", "v1", 1));
    const path = join(root, USER, CHUNKS_DIR, LOG_FILE);
    const before = Deno.readFileSync(path);
    await storage.writeChunkList(USER, list("b", "v1", 2));
    // An operator restores an older copy: same size would fool a size check alone, so a new file of other size.
    Deno.removeSync(path);
    Deno.writeFileSync(path, before);
    assert.equal(await storage.readChunkList(USER, "b"), null, "b is not in the restored log");
    assert.deepEqual(await storage.readChunkList(USER, "a"), list("a", "v1", 1));
    await storage.writeChunkList(USER, list("c", "v1", 3));
    assert.deepEqual(await names(storage), ["a@v1", "c@v1"]);
  });
});

Deno.test("chunk list log: the earlier layout's list files are removed once the log is read", async () => {
  await withStorage(async (root, reopen) => {
    const storage = await reopen();
    await storage.writeChunkList(USER, list("a", "v1", 1));
    const dir = join(root, USER, CHUNKS_DIR);
    const old = join(dir, "ab".repeat(32));
    Deno.writeFileSync(old, new Uint8Array(10));
    await storage.abortUploads();
    const again = await reopen();
    assert.deepEqual(await again.readChunkList(USER, "a"), list("a", "v1", 1));
    assert.deepEqual([...Deno.readDirSync(dir)].map((entry) => entry.name), [LOG_FILE]);
  });
});
