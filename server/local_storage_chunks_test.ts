/**
 * LocalStorage's methods for the chunk requests: versions and ranges, commit
 * mtimes, stored chunk lists, kept uploads and change counters, each also as
 * an attacker on the host or in the protocol would try them.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { bytesOf } from "../shared/pooled_bytes.ts";
import { DfosError, Status, type StatusCode } from "../shared/status.ts";
import { COUNTER_FILE, JOURNAL_ENTRIES } from "./change_counters.ts";
import { KEPT_DIR } from "./kept_uploads.ts";
import { CHUNKS_DIR, LOG_FILE } from "./local_chunk_lists.ts";
import { LocalStorage } from "./local_storage.ts";
import type { VersionedInfo } from "./storage.ts";

const USER = "alice";
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Runs `fn` with a fresh root; the storage is opened by `fn` (some tests reopen it). */
async function withRoot(fn: (root: string, outside: string) => Promise<void>): Promise<void> {
  const base = await Deno.makeTempDir({ prefix: "dfos-chunks-storage-" });
  try {
    await Deno.mkdir(join(base, "outside"));
    await fn(join(base, "root"), join(base, "outside"));
  } finally {
    await Deno.remove(base, { recursive: true });
  }
}

async function open(root: string): Promise<LocalStorage> {
  const storage = await LocalStorage.open(root);
  await storage.prepareUser(USER);
  await storage.prepareUser("bob");
  return storage;
}

async function put(storage: LocalStorage, name: string, text: string, mtime?: number): Promise<VersionedInfo> {
  const upload = await storage.beginUpload(USER, name);
  await upload.write(encoder.encode(text));
  return await upload.commit({ mtime }) as VersionedInfo;
}

async function collect(pieces: AsyncIterable<Uint8Array | { bytes: Uint8Array }>): Promise<string> {
  let text = "";
  for await (const piece of pieces) text += decoder.decode(bytesOf(piece as Uint8Array));
  return text;
}

async function rejectsWith(promise: Promise<unknown>, code: StatusCode): Promise<void> {
  await assert.rejects(promise, (error) => error instanceof DfosError && error.code === code);
}

Deno.test("LocalStorage versions: the same file keeps its version, a replaced one gets another", async () => {
  await withRoot(async (root) => {
    const storage = await open(root);
    try {
      const first = await put(storage, "f", "one");
      assert.equal((await storage.stat(USER, "f") as VersionedInfo).version, first.version);
      const handle = await storage.openRead(USER, "f");
      assert.equal(handle.info.version, first.version);
      handle.close();
      const second = await put(storage, "f", "two");
      assert.notEqual(second.version, first.version);
      assert.equal((await storage.stat(USER, "f") as VersionedInfo).version, second.version);
    } finally {
      await storage.abortUploads();
    }
  });
});

Deno.test("LocalStorage readRange gives the bytes asked for and refuses a range past the end", async () => {
  await withRoot(async (root) => {
    const storage = await open(root);
    try {
      await put(storage, "f", "0123456789");
      const handle = await storage.openRead(USER, "f");
      try {
        assert.equal(await collect(handle.readRange(3, 4)), "3456");
        assert.equal(await collect(handle.readRange(0, 2)), "01");
        assert.equal(await collect(handle.read()), "0123456789", "a whole read after ranges starts at 0");
        await rejectsWith(collect(handle.readRange(8, 3)), Status.BAD_REQUEST);
        await rejectsWith(collect(handle.readRange(-1, 2)), Status.BAD_REQUEST);
      } finally {
        handle.close();
      }
    } finally {
      await storage.abortUploads();
    }
  });
});

Deno.test("LocalStorage commit sets the mtime asked for, and refuses one that is not a time", async () => {
  await withRoot(async (root) => {
    const storage = await open(root);
    try {
      const mtime = Date.UTC(2020, 1, 2, 3, 4, 5, 678);
      const info = await put(storage, "f", "x", mtime);
      assert.equal(info.mtime, mtime);
      assert.equal((await Deno.stat(join(root, USER, "f"))).mtime!.getTime(), mtime);
      await rejectsWith(put(storage, "g", "x", 1e20), Status.BAD_REQUEST);
      assert.equal(await storage.stat(USER, "g"), null, "nothing stored");
    } finally {
      await storage.abortUploads();
    }
  });
});

Deno.test("LocalStorage chunk lists: stored per user beside the files, never listed nor counted, moved and removed with the file", async () => {
  await withRoot(async (root) => {
    const storage = await open(root);
    try {
      const info = await put(storage, "a/f", "content");
      const usage = await storage.usage(USER);
      const entries = new Uint8Array(36).fill(7);
      await storage.writeChunkList(USER, { name: "a/f", version: info.version, entries });
      const stored = await storage.readChunkList(USER, "a/f");
      assert.deepEqual(stored, { name: "a/f", version: info.version, entries });
      assert.equal(await storage.readChunkList("bob", "a/f"), null, "bob does not see alice's lists");
      assert.deepEqual(await storage.usage(USER), usage, "metadata is not in the quota");
      const page = await storage.list(USER, { prefix: "", after: "", limit: 100 });
      assert.deepEqual(page.entries.map((entry) => entry.name), ["a/f"]);
      await storage.rename(USER, "a/f", "b/g");
      assert.equal(await storage.readChunkList(USER, "a/f"), null);
      assert.deepEqual(await storage.readChunkList(USER, "b/g"), { name: "b/g", version: info.version, entries });
      assert.equal((await storage.stat(USER, "b/g") as VersionedInfo).version, info.version, "a rename keeps it");
      const all = [];
      for await (const list of storage.chunkLists(USER)) all.push(list.name);
      assert.deepEqual(all, ["b/g"]);
      await storage.remove(USER, "b/g");
      assert.equal(await storage.readChunkList(USER, "b/g"), null);
      await rejectsWith(storage.readChunkList(USER, "../bob/x"), Status.BAD_NAME);
      await rejectsWith(storage.writeChunkList(USER, { name: ".dfos-x", version: "v", entries }), Status.BAD_NAME);
    } finally {
      await storage.abortUploads();
    }
  });
});

Deno.test("LocalStorage chunk lists: a .dfos-chunks swapped for a link to outside is neither read nor written through", async () => {
  await withRoot(async (root, outside) => {
    const storage = await open(root);
    try {
      const info = await put(storage, "f", "content");
      await storage.writeChunkList(USER, { name: "f", version: info.version, entries: new Uint8Array(36) });
      const chunks = join(root, USER, CHUNKS_DIR);
      for (const entry of Deno.readDirSync(chunks)) {
        Deno.copyFileSync(join(chunks, entry.name), join(outside, entry.name));
      }
      const copied = Deno.readFileSync(join(outside, LOG_FILE));
      await Deno.remove(chunks, { recursive: true });
      await Deno.symlink(outside, chunks);
      await assert.rejects(storage.readChunkList(USER, "f"));
      await assert.rejects(storage.writeChunkList(USER, { name: "g", version: "v", entries: new Uint8Array(36) }));
      const after = [...Deno.readDirSync(outside)].map((entry) => entry.name);
      assert.deepEqual(after, [LOG_FILE], "nothing made outside");
      assert.deepEqual(Deno.readFileSync(join(outside, LOG_FILE)), copied, "nothing written outside");
    } finally {
      await storage.abortUploads();
    }
  });
});

Deno.test("LocalStorage kept uploads: kept across a restart, taken up where they stopped, finished whole", async () => {
  await withRoot(async (root) => {
    let storage = await open(root);
    const upload = await storage.beginUpload(USER, "big", { keep: "root-1" });
    await upload.write(encoder.encode("first half,"));
    await upload.keep(encoder.encode("state-1"));
    assert.equal(await storage.stat(USER, "big"), null, "a kept upload is not a file");
    await storage.abortUploads();
    storage = await open(root); // start-up empties .dfos-partial, not the kept uploads
    try {
      const kept = await storage.keptUploads(USER);
      assert.equal(kept.length, 1);
      assert.deepEqual({ ...kept[0], updated: 0 }, {
        name: "big",
        key: "root-1",
        size: 11,
        state: encoder.encode("state-1"),
        updated: 0,
      });
      assert.equal(await storage.resumeUpload(USER, "big", "root-2"), null, "another key is another upload");
      assert.equal(await storage.resumeUpload("bob", "big", "root-1"), null, "bob cannot take alice's");
      const resumed = await storage.resumeUpload(USER, "big", "root-1");
      assert.ok(resumed !== null);
      assert.deepEqual(resumed.state, encoder.encode("state-1"));
      assert.equal(resumed.upload.written, 11);
      assert.equal(await storage.resumeUpload(USER, "big", "root-1"), null, "taken up once at a time");
      await resumed.upload.write(encoder.encode(" second half"));
      await resumed.upload.commit();
      assert.equal(await Deno.readTextFile(join(root, USER, "big")), "first half, second half");
      assert.deepEqual(await storage.keptUploads(USER), []);
    } finally {
      await storage.abortUploads();
    }
  });
});

Deno.test("LocalStorage kept uploads: dropped by a new upload of the name, by dropKept and by the sweep only", async () => {
  await withRoot(async (root) => {
    const storage = await open(root);
    try {
      const keep = async (name: string, key: string) => {
        const upload = await storage.beginUpload(USER, name, { keep: key });
        await upload.write(encoder.encode("bytes"));
        await upload.keep(new Uint8Array(0));
      };
      await keep("a", "k1");
      await keep("a", "k2"); // a new keepable upload of "a" drops the first
      assert.deepEqual((await storage.keptUploads(USER)).map((kept) => kept.key), ["k2"]);
      await keep("b", "k3");
      await storage.dropKept(USER, "b", "k3");
      assert.deepEqual((await storage.keptUploads(USER)).map((kept) => kept.name), ["a"]);
      const plain = await storage.beginUpload(USER, "c");
      await rejectsWith(plain.keep(new Uint8Array(0)), Status.BAD_REQUEST);
      assert.equal(await storage.sweepKept(Date.now() - 60_000), 0, "not old enough");
      assert.equal(await storage.sweepKept(Date.now() + 60_000), 1);
      assert.deepEqual(await storage.keptUploads(USER), []);
      assert.deepEqual([...Deno.readDirSync(join(root, USER, KEPT_DIR))], []);
    } finally {
      await storage.abortUploads();
    }
  });
});

Deno.test("LocalStorage change counters: each change counts; a clean restart keeps the epoch, an unclean one does not", async () => {
  await withRoot(async (root) => {
    let storage = await open(root);
    const start = await storage.changes(USER);
    await put(storage, "f", "x");
    await storage.rename(USER, "f", "g");
    await storage.remove(USER, "g");
    const after = await storage.changes(USER);
    assert.equal(after.epoch, start.epoch);
    assert.equal(after.counter, start.counter + 3);
    assert.equal((await storage.changes("bob")).counter, 0, "bob's counter is his own");
    await storage.abortUploads(); // a clean close
    storage = await open(root);
    assert.deepEqual(await storage.changes(USER), after, "kept across a clean restart");
    await put(storage, "f", "x");
    // Not closed: as after a crash, the next run cannot trust the count.
    const crashed = JSON.parse(await Deno.readTextFile(join(root, USER, COUNTER_FILE)));
    assert.equal(crashed.clean, false);
    storage = await open(root);
    try {
      assert.notEqual((await storage.changes(USER)).epoch, after.epoch);
    } finally {
      await storage.abortUploads();
    }
  });
});

Deno.test("LocalStorage changed names: the journal names what changed since a counter, across a clean restart only", async () => {
  await withRoot(async (root) => {
    let storage = await open(root);
    const start = await storage.changes(USER);
    await put(storage, "d/a", "1");
    await put(storage, "d/b", "2");
    await put(storage, "e/c", "3");
    await storage.rename(USER, "d/a", "d/a2");
    await storage.remove(USER, "d/b");
    await put(storage, "d/a2", "again"); // named once, at its last change
    const sorted = async (since: typeof start, prefix: string) =>
      (await storage.changedNames(USER, since, prefix))?.sort();
    assert.deepEqual(await sorted(start, "d/"), ["d/a", "d/a2", "d/b"]);
    assert.deepEqual(await sorted(start, ""), ["d/a", "d/a2", "d/b", "e/c"]);
    const middle = { ...start, counter: start.counter + 3 };
    assert.deepEqual(await sorted(middle, ""), ["d/a", "d/a2", "d/b"]);
    const now = await storage.changes(USER);
    assert.deepEqual(await storage.changedNames(USER, now, ""), []);
    assert.equal(await storage.changedNames(USER, { ...now, counter: now.counter + 1 }, ""), null, "a counter ahead");
    assert.equal(await storage.changedNames(USER, { epoch: "another", counter: 0 }, ""), null, "another epoch");
    assert.deepEqual(await storage.changedNames("bob", await storage.changes("bob"), ""), [], "bob's are his own");
    // A folder moved: its files are not named, so no answer reaches into it; others still answer.
    await storage.rename(USER, "e", "d/e");
    assert.equal(await storage.changedNames(USER, now, "d/"), null);
    assert.equal(await storage.changedNames(USER, now, "d/e/"), null);
    assert.equal(await storage.changedNames(USER, now, ""), null);
    assert.deepEqual(await storage.changedNames(USER, now, "x/"), []);
    await storage.abortUploads(); // a clean close keeps the journal
    storage = await open(root);
    assert.deepEqual((await storage.changedNames(USER, start, "d/a"))?.sort(), ["d/a", "d/a2"]);
    await put(storage, "f", "x");
    // Not closed: the next run starts a new epoch, and nothing before it is answered.
    storage = await open(root);
    try {
      const fresh = await storage.changes(USER);
      assert.notEqual(fresh.epoch, start.epoch);
      assert.equal(await storage.changedNames(USER, start, ""), null);
      assert.deepEqual(await storage.changedNames(USER, fresh, ""), []);
    } finally {
      await storage.abortUploads();
    }
  });
});

Deno.test("LocalStorage changed names: the journal keeps the last changes only, and says so for older counters", async () => {
  await withRoot(async (root) => {
    const storage = await open(root);
    try {
      const start = await storage.changes(USER);
      for (let i = 0; i < JOURNAL_ENTRIES + 10; i++) await storage.remove(USER, "missing").catch(() => {});
      await put(storage, "a", "1");
      for (let i = 0; i < JOURNAL_ENTRIES + 10; i++) await put(storage, `n${i % 5}`, "x");
      assert.equal(await storage.changedNames(USER, start, ""), null, "older than the journal");
      const recent = await storage.changes(USER);
      await put(storage, "b", "2");
      assert.deepEqual(await storage.changedNames(USER, recent, ""), ["b"]);
    } finally {
      await storage.abortUploads();
    }
  });
});
