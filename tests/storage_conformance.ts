/**
 * The `Storage` conformance suite (issue 13): one set of cases, written once
 * against the interface in server/storage.ts, that every backend runs. A
 * backend's test file calls {@linkcode storageConformance} with a
 * {@linkcode ConformanceBackend}: how to open a fresh, empty store, how to
 * stop and open it again, and the few facts in which backends may differ as
 * storage.ts allows (block size, real folders, what a reader sees after a
 * replace, where chunk lists follow their files, the change counter after a
 * crash). The cases go through the interface only: nothing here looks at a
 * disk or a bucket, so a backend-specific check (links, `.dfos-partial`, the
 * engine's conditional writes) stays in that backend's own tests. Changes on
 * a condition (`ifVersion`) are held to the same rule on every backend,
 * racing through a second instance where the store may be shared
 * ({@linkcode ConformanceStore.peer}).
 *
 * Where storage.ts leaves an error's status open, the cases hold every
 * backend to LocalStorage's, since a client must see the same errors on
 * both (issue 13: "with the same errors and exit codes").
 *
 * Internal to tests/: nothing here is part of dfos.
 *
 * @module
 */

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { MAX_NAME_BYTES, MAX_SEGMENT_BYTES, MAX_USER_BYTES } from "../shared/names.ts";
import { type Block, type Bytes, bytesOf, PooledBytes, release } from "../shared/pooled_bytes.ts";
import { DfosError, Status, type StatusCode, statusName } from "../shared/status.ts";
import {
  type CommitChange,
  type CommitOptions,
  type FileInfo,
  footprint,
  type ListOptions,
  type Removed,
  type Storage,
  type Upload,
} from "../server/storage.ts";

/** The ways backends may differ, as storage.ts lets them. */
export interface ConformanceCapabilities {
  /**
   * The store has folders of its own (LocalStorage): folder counts
   * (`Removed.folders`, `Moved.foldersCreated`, `Moved.foldersRemoved`,
   * `CommitChange.folders`) are counted, and usage counts each folder as an
   * entry of one block. False for an object store: all of those are 0.
   */
  folders: boolean;
  /**
   * A reader opened before its file is replaced or removed still reads the
   * old version to its end (LocalStorage: the open file). False: such a read
   * may fail instead, with a `DfosError` (S3: GetObject with `If-Match`).
   * Either way it never gives bytes of another version.
   */
  readersKeepReplacedVersion: boolean;
  /** A file's stored chunk list moves with the file when the file is renamed (LocalStorage). */
  chunkListMovesWithFile: boolean;
  /** A file's stored chunk list goes when the file is removed (LocalStorage). */
  chunkListRemovedWithFile: boolean;
  /**
   * After an unclean stop ({@linkcode ConformanceStore.reopen} with
   * `clean: false`) the change counter's epoch is a new one (LocalStorage
   * counts in memory). False: the epoch may stay, and then the counter must
   * have counted every change before the stop (a counter written per change).
   */
  uncleanStopNewEpoch: boolean;
  /**
   * `changedNames` answers from a journal (LocalStorage, S3): names, not
   * null, for a counter of its epoch with no folder moved into the prefix
   * since, across a clean restart too. False: null is always allowed.
   */
  changedNamesAnswered: boolean;
}

/** A backend under test. */
export interface ConformanceBackend {
  /** Its name, the first words of each case's name ("LocalStorage"). */
  name: string;
  /** The block size the backend's usage counts in ({@linkcode Storage.blockSize}). */
  blockSize: number;
  /**
   * The longest name it stores, in UTF-8 bytes: at most `MAX_NAME_BYTES`
   * (shared/names.ts). Names up to it must round-trip, longer ones are
   * refused `BAD_NAME`.
   */
  maxNameBytes: number;
  /** How it differs where storage.ts lets it. */
  capabilities: ConformanceCapabilities;
  /** Opens a fresh, empty store (its own folder, its own key prefix) and a `Storage` on it. */
  open(): Promise<ConformanceStore>;
  /** Skips every case (an engine not available here). */
  ignore?: boolean;
}

/** One store under test, with the `Storage` instance open on it now. */
export interface ConformanceStore extends AsyncDisposable {
  /** The instance open on the store (another one after {@linkcode reopen}). */
  readonly storage: Storage;
  /**
   * Stops the instance and opens a new one on the same store, as a server
   * restarts. `clean`: stopped as at a shutdown (`abortUploads()`, which a
   * case may have called already, then let go). Not `clean`: let go as if
   * the process died (no call at all), uploads in progress included.
   */
  reopen(options: { clean: boolean }): Promise<void>;
  /**
   * Another instance on the same store, as a second server sharing it
   * (stopped with the store), for a store that several servers may share
   * (S3). Absent where one server keeps the store (the local disk): the
   * cases then race within the one instance.
   */
  peer?(): Promise<Storage>;
  /** Stops the instance cleanly and removes the store. */
  [Symbol.asyncDispose](): Promise<void>;
}

const ALICE = "alice";
const BOB = "bob";
/** A user whose name starts with another's: nothing of `alice` may show under `alice2` (a key prefix without "/"). */
const ALICE2 = "alice2";
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * Registers the conformance cases for `backend` as `Deno.test`s, each on a
 * store of its own with the users `alice`, `alice2` and `bob` prepared.
 *
 * @param backend The backend under test.
 *
 * @example Usage
 * ```ts ignore
 * import { storageConformance } from "./storage_conformance.ts";
 * storageConformance({ name: "LocalStorage", blockSize: 4096, ... });
 * ```
 */
export function storageConformance(backend: ConformanceBackend): void {
  for (const [title, fn] of [...cases(backend), ...conditionCases()]) {
    Deno.test({
      name: `${backend.name} conformance: ${title}`,
      ignore: backend.ignore ?? false,
      fn: async () => {
        await using store = await openStore(backend);
        await fn(store);
      },
    });
  }
}

/** Opens a fresh store with the users prepared. */
async function openStore(backend: ConformanceBackend): Promise<ConformanceStore> {
  const store = await backend.open();
  try {
    assert.equal(store.storage.blockSize, backend.blockSize, "blockSize");
    await prepareUsers(store.storage);
  } catch (error) {
    await store[Symbol.asyncDispose]();
    throw error;
  }
  return store;
}

async function prepareUsers(storage: Storage): Promise<void> {
  for (const user of [ALICE, ALICE2, BOB]) await storage.prepareUser(user);
}

/** Stops and opens the store again, and prepares the users as their next logins would. */
async function reopen(store: ConformanceStore, clean: boolean): Promise<Storage> {
  await store.reopen({ clean });
  await prepareUsers(store.storage);
  return store.storage;
}

// ---------------------------------------------------------------------------------------------------------------
// Helpers: the whole PUT, reads, listings, refusals.

function bytes(content: string | Uint8Array): Uint8Array {
  return typeof content === "string" ? encoder.encode(content) : content;
}

/** Begins, writes `content` and commits: the whole PUT. */
async function put(
  storage: Storage,
  user: string,
  name: string,
  content: string | Uint8Array,
  options?: CommitOptions,
): Promise<FileInfo> {
  const upload = await storage.beginUpload(user, name);
  try {
    await upload.write(bytes(content));
    return await upload.commit(options);
  } finally {
    await upload.abort(); // harmless after a commit; drops a failed one
  }
}

/** The pieces' bytes in one array, each pooled piece released. */
async function collect(pieces: AsyncIterable<Bytes>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  let length = 0;
  for await (const piece of pieces) {
    parts.push(bytesOf(piece).slice());
    length += piece.length;
    release(piece);
  }
  const all = new Uint8Array(length);
  let offset = 0;
  for (const part of parts) {
    all.set(part, offset);
    offset += part.length;
  }
  return all;
}

/** The whole content of `name` (at most `limit` bytes), read through a handle closed afterwards. */
async function readAll(storage: Storage, user: string, name: string, limit?: number): Promise<Uint8Array> {
  const handle = await storage.openRead(user, name);
  try {
    return await collect(handle.read(limit));
  } finally {
    handle.close();
  }
}

async function readText(storage: Storage, user: string, name: string): Promise<string> {
  return decoder.decode(await readAll(storage, user, name));
}

function sha256(data: Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}

/** Every name the user's listing gives, page by page (`limit` a page), with the pages' checks. */
async function listAll(
  storage: Storage,
  user: string,
  options: Partial<ListOptions> = {},
): Promise<string[]> {
  const limit = options.limit ?? 1000;
  const names: string[] = [];
  let after = options.after ?? "";
  for (let pages = 0;; pages++) {
    assert.ok(pages < 10_000, "the listing ends");
    const page = await storage.list(user, { prefix: options.prefix ?? "", after, limit });
    assert.ok(page.entries.length <= limit, `a page of at most ${limit} entries`);
    names.push(...page.entries.map((entry) => entry.name));
    if (page.next === null) return names;
    assert.ok(page.entries.length > 0 || page.next !== after, "a page that is not the last moves on");
    after = page.next;
  }
}

/** Waits for `promise`, failing the case when it has not settled within 10 s (a wake that never came). */
async function settles<T>(promise: Promise<T>, context: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${context}: still waiting after 10 s`)), 10_000);
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** True when `promise` is still pending after `ms`. */
async function pendingAfter(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const later = new Promise<true>((resolve) => timer = setTimeout(() => resolve(true), ms));
  try {
    return await Promise.race([promise.then(() => false, () => false), later]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Asserts that `promise` rejects with a `DfosError` of `code`, its message
 * starting "Cannot "; with `code` null, any `DfosError` (where storage.ts
 * names no status: the use of an upload already finished). Returns the error.
 */
async function refused(promise: Promise<unknown>, code: StatusCode | null, context: string): Promise<DfosError> {
  let caught: unknown = undefined;
  let resolved = false;
  try {
    await promise;
    resolved = true;
  } catch (error) {
    caught = error;
  }
  assert.ok(!resolved, `${context}: expected a refusal, but it succeeded`);
  assert.ok(caught instanceof DfosError, `${context}: expected a DfosError, got ${caught}`);
  if (code !== null) {
    assert.equal(statusName(caught.code), statusName(code), `${context} (message: ${caught.message})`);
    // A refusal the client is shown says what failed, in the project's style (`Cannot X "name": reason`).
    assert.match(caught.message, /^Cannot \S/, `${context}: the message says what failed`);
  }
  return caught;
}

/** An iteration of every chunk list of the user, as an array. */
async function allChunkLists(storage: Storage, user: string) {
  return await Array.fromAsync(storage.chunkLists(user));
}

/** A name of exactly `size` UTF-8 bytes, in segments of at most 200. */
function nameOfBytes(size: number): string {
  const segments: string[] = [];
  let left = size;
  while (left > MAX_SEGMENT_BYTES) {
    segments.push("s".repeat(199));
    left -= 200; // the segment and its "/"
  }
  segments.push("n".repeat(left));
  return segments.join("/");
}

/** Names that break the naming rules (shared/names.ts), each refused `BAD_NAME` by every method. */
function badNames(maxNameBytes: number): string[] {
  return [
    "",
    ".",
    "..",
    "../alice/f",
    "a/../../f",
    "a/./f",
    "/etc/passwd",
    "a//f",
    "a/",
    "a\\f",
    ".dfos-partial",
    ".dfos-x/f",
    "a/.dfos-chunks/f",
    ".DFOS-kept",
    ".dfo\u017f-changes", // long s: case folding makes it ".dfos-"
    "a\nf",
    "a\u0000f",
    "a\u001b[2Jf",
    "e\u0301", // not NFC
    "\ud800f", // a lone surrogate
    "x".repeat(MAX_SEGMENT_BYTES + 1),
    "\u00e9".repeat(MAX_SEGMENT_BYTES / 2 + 1), // 128 characters, 256 bytes
    nameOfBytes(maxNameBytes + 1),
  ];
}

/** User names that break the rules, each refused `BAD_NAME`. */
const BAD_USERS = [
  "",
  ".",
  "..",
  ".dfos-x",
  ".hidden",
  "a/b",
  "../alice",
  "a:b",
  "a\nb",
  "x".repeat(MAX_USER_BYTES + 1),
];

/** Everything a user's space holds as seen through the interface: a fingerprint to compare before and after. */
async function snapshot(storage: Storage, user: string) {
  const page = await storage.list(user, { prefix: "", after: "", limit: 10_000 });
  const kept = (await storage.keptUploads(user)).map((kept) => ({ ...kept, updated: 0, state: sha256(kept.state) }));
  const lists = (await allChunkLists(storage, user)).map((list) => ({ ...list, entries: sha256(list.entries) }));
  const byName = (a: { name: string }, b: { name: string }) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
  return {
    entries: page.entries,
    kept: kept.sort(byName),
    lists: lists.sort(byName),
    usage: await storage.usage(user),
    changes: await storage.changes(user),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// The cases.

type Case = [string, (store: ConformanceStore) => Promise<void>];

function cases(backend: ConformanceBackend): Case[] {
  const { capabilities: can, blockSize } = backend;
  const folders = (count: number) => can.folders ? count : 0;
  return [
    ["prepareUser gives an empty space, twice is harmless, and refuses a bad user name", async ({ storage }) => {
      await storage.prepareUser(ALICE);
      assert.deepEqual(await storage.list(ALICE, { prefix: "", after: "", limit: 10 }), { entries: [], next: null });
      assert.deepEqual(await storage.usage(ALICE), { bytes: 0, entries: 0 });
      assert.deepEqual(await storage.keptUploads(ALICE), []);
      assert.deepEqual(await allChunkLists(storage, ALICE), []);
      const counter = await storage.changes(ALICE);
      assert.equal(typeof counter.epoch, "string");
      assert.ok(counter.epoch.length > 0, "an epoch");
      assert.ok(Number.isSafeInteger(counter.counter) && counter.counter >= 0, "a counter");
      for (const user of BAD_USERS) await refused(storage.prepareUser(user), Status.BAD_NAME, `prepareUser "${user}"`);
    }],

    ["an upload commits as the file's content, read whole, by limit and by range", async ({ storage }) => {
      const before = Date.now();
      const info = await put(storage, ALICE, "a.txt", "0123456789");
      const after = Date.now();
      assert.equal(info.name, "a.txt");
      assert.equal(info.size, 10);
      assert.ok(info.mtime >= before - 2000 && info.mtime <= after + 2000, `mtime ${info.mtime} is now`);
      assert.equal(await readText(storage, ALICE, "a.txt"), "0123456789");
      assert.equal(decoder.decode(await readAll(storage, ALICE, "a.txt", 4)), "0123");
      assert.equal(decoder.decode(await readAll(storage, ALICE, "a.txt", 0)), "");
      assert.equal(decoder.decode(await readAll(storage, ALICE, "a.txt", 100)), "0123456789");
      const handle = await storage.openRead(ALICE, "a.txt");
      try {
        assert.deepEqual([handle.info.name, handle.info.size, handle.info.mtime], ["a.txt", 10, info.mtime]);
        assert.equal(typeof handle.info.version, "string");
        assert.equal(decoder.decode(await collect(handle.readRange(3, 4))), "3456");
        assert.equal(decoder.decode(await collect(handle.readRange(0, 10))), "0123456789");
        assert.equal(decoder.decode(await collect(handle.readRange(10, 0))), "", "an empty range at the end");
        assert.equal(decoder.decode(await collect(handle.read())), "0123456789", "a whole read after ranges");
        for (
          const [offset, length] of [[8, 3], [11, 0], [0, 11], [-1, 2], [2, -1], [0.5, 1], [1, Number.MAX_SAFE_INTEGER]]
        ) {
          await refused(
            collect(handle.readRange(offset, length)),
            Status.BAD_REQUEST,
            `readRange(${offset}, ${length})`,
          );
        }
      } finally {
        handle.close();
        handle.close(); // twice is harmless
      }
      const empty = await put(storage, ALICE, "empty", "");
      assert.equal(empty.size, 0);
      assert.deepEqual(await readAll(storage, ALICE, "empty"), new Uint8Array(0));
      const unwritten = await storage.beginUpload(ALICE, "unwritten");
      assert.equal((await unwritten.commit()).size, 0, "an upload with no write at all");
      assert.deepEqual(await readAll(storage, ALICE, "unwritten"), new Uint8Array(0));
      await put(storage, ALICE, "deep/er/name.txt", "deep");
      assert.equal(await readText(storage, ALICE, "deep/er/name.txt"), "deep");
    }],

    ["a large body in uneven writes round-trips whole, across any part boundary", async ({ storage }) => {
      const size = 13 * 1024 * 1024 + 12345;
      const body = new Uint8Array(size);
      for (let i = 0; i < size; i += 65536) crypto.getRandomValues(body.subarray(i, Math.min(size, i + 65536)));
      const upload = await storage.beginUpload(ALICE, "big.bin");
      const steps = [1, 1024 * 1024 - 1, 3 * 1024 * 1024 + 7, 64 * 1024, 5 * 1024 * 1024 + 1];
      let offset = 0;
      for (let i = 0; offset < size; i++) {
        const end = Math.min(size, offset + steps[i % steps.length]);
        await upload.write(body.subarray(offset, end));
        offset = end;
        assert.equal(upload.written, offset);
      }
      const info = await upload.commit();
      assert.equal(info.size, size);
      assert.equal(sha256(await readAll(storage, ALICE, "big.bin")), sha256(body));
      const handle = await storage.openRead(ALICE, "big.bin");
      try {
        for (const [at, length] of [[5 * 1024 * 1024 - 10, 20], [8 * 1024 * 1024 - 1, 2], [size - 3, 3], [0, 1]]) {
          assert.deepEqual(await collect(handle.readRange(at, length)), body.subarray(at, at + length), `at ${at}`);
        }
      } finally {
        handle.close();
      }
      const limit = 5 * 1024 * 1024 + 1;
      assert.equal(sha256(await readAll(storage, ALICE, "big.bin", limit)), sha256(body.subarray(0, limit)));
    }],

    ["write takes the hold of pooled bytes and releases it, whether the write succeeds or not", async ({ storage }) => {
      let freed = 0;
      const block: Block = { bytes: new Uint8Array(1024), holders: 0, free: () => freed++ };
      block.bytes.fill(65);
      const upload = await storage.beginUpload(ALICE, "pooled");
      await upload.write(new PooledBytes(block, block.bytes.subarray(0, 100)));
      await upload.commit();
      assert.equal(freed, 1, "released once the commit is done");
      assert.equal(await readText(storage, ALICE, "pooled"), "A".repeat(100));
      const aborted = await storage.beginUpload(ALICE, "pooled2");
      await aborted.abort();
      await refused(aborted.write(new PooledBytes(block, block.bytes.subarray(0, 10))), null, "write after abort");
      assert.equal(freed, 2, "released after a refused write");
    }],

    [
      "commit sets the mtime asked for, everywhere it shows, and refuses one that is not a time",
      async ({ storage }) => {
        const mtime = Date.UTC(2020, 1, 2, 3, 4, 5, 678);
        assert.equal((await put(storage, ALICE, "f", "x", { mtime })).mtime, mtime);
        assert.equal((await storage.stat(ALICE, "f"))?.mtime, mtime);
        const handle = await storage.openRead(ALICE, "f");
        handle.close();
        assert.equal(handle.info.mtime, mtime);
        const page = await storage.list(ALICE, { prefix: "", after: "", limit: 10 });
        assert.deepEqual(page.entries, [{ name: "f", size: 1, mtime }]);
        assert.equal((await storage.remove(ALICE, "f")).mtime, mtime);
        const counter = await storage.changes(ALICE);
        for (const bad of [1e20, Number.NaN, 1.5, Infinity]) {
          await refused(put(storage, ALICE, "g", "x", { mtime: bad }), Status.BAD_REQUEST, `mtime ${bad}`);
        }
        assert.equal(await storage.stat(ALICE, "g"), null, "nothing stored");
        assert.deepEqual(await storage.changes(ALICE), counter, "nothing counted");
      },
    ],

    ["an upload in progress is invisible until committed; a replace leaves one whole version", async ({ storage }) => {
      await put(storage, ALICE, "a", "old");
      const before = await snapshot(storage, ALICE);
      const replacing = await storage.beginUpload(ALICE, "a");
      await replacing.write(bytes("new content"));
      const fresh = await storage.beginUpload(ALICE, "n/b");
      await fresh.write(bytes("b"));
      assert.equal(await readText(storage, ALICE, "a"), "old");
      assert.equal((await storage.stat(ALICE, "a"))?.size, 3);
      assert.equal(await storage.stat(ALICE, "n/b"), null);
      await refused(storage.openRead(ALICE, "n/b"), Status.NOT_FOUND, "openRead of an upload in progress");
      assert.deepEqual(await snapshot(storage, ALICE), before, "list, usage, counter as before");
      await replacing.commit();
      await fresh.commit();
      assert.equal(await readText(storage, ALICE, "a"), "new content");
      assert.deepEqual(await listAll(storage, ALICE), ["a", "n/b"]);
    }],

    ["no other change of the user's files comes between a commit's admit and its replacement", async ({ storage }) => {
      await put(storage, ALICE, "f", "old");
      const upload = await storage.beginUpload(ALICE, "f");
      await upload.write(bytes("the new version"));
      const started: Promise<Removed>[] = [];
      // Started in admit, run after the replacement: one change of the user's files at a time.
      await upload.commit({ admit: () => void started.push(storage.remove(ALICE, "f")) });
      assert.equal(started.length, 1);
      assert.equal((await started[0]).size, 15, "the removal found the committed version");
      assert.equal(await storage.stat(ALICE, "f"), null);
    }],

    [
      "uploads to one name committed together each replace the one before, and one whole version stays",
      async ({ storage }) => {
        const contents = ["first", "the second one", "3", "and a fourth, the longest of them"];
        const uploads = await Promise.all(contents.map(() => storage.beginUpload(ALICE, "same")));
        await Promise.all(uploads.map((upload, i) => upload.write(bytes(contents[i]))));
        const start = await storage.changes(ALICE);
        const seen: { replaced: number | null; size: number }[] = [];
        await Promise.all(
          uploads.map((upload, i) =>
            upload.commit({
              admit: (change) => void seen.push({ replaced: change.replaced, size: contents[i].length }),
            })
          ),
        );
        assert.equal(seen.length, contents.length, "admit once per commit");
        assert.deepEqual(
          seen.map((step) => step.replaced),
          [null, ...seen.slice(0, -1).map((step) => step.size)],
        );
        const final = await readText(storage, ALICE, "same");
        assert.equal(final.length, seen.at(-1)!.size);
        assert.ok(contents.includes(final), "one whole version");
        assert.equal((await storage.changes(ALICE)).counter, start.counter + contents.length);
      },
    ],

    ["abort keeps the previous version, is safe twice and after a commit, and counts nothing", async ({ storage }) => {
      await put(storage, ALICE, "a", "previous");
      const before = await snapshot(storage, ALICE);
      const upload = await storage.beginUpload(ALICE, "a");
      await upload.write(bytes("half of a new versi"));
      await upload.abort();
      await upload.abort();
      await refused(upload.write(bytes("more")), null, "write after abort");
      await refused(upload.commit(), null, "commit after abort");
      const fresh = await storage.beginUpload(ALICE, "new/file");
      await fresh.write(bytes("x"));
      await fresh.abort();
      assert.equal(await storage.stat(ALICE, "new/file"), null);
      assert.deepEqual(await snapshot(storage, ALICE), before);
      await put(storage, ALICE, "new", "a file where the aborted upload's folder would have been");
      const committed = await storage.beginUpload(ALICE, "c");
      await committed.write(bytes("kept"));
      await committed.commit();
      await committed.abort();
      await refused(committed.commit(), null, "a second commit");
      await refused(committed.write(bytes("more")), null, "a write after the commit");
      assert.equal(await readText(storage, ALICE, "c"), "kept", "abort after commit leaves the file");
    }],

    [
      "commit tells admit the size it replaces and the folders it makes; a refusal leaves the old version",
      async ({ storage }) => {
        const seen: CommitChange[] = [];
        const record = (change: CommitChange) => void seen.push(change);
        await put(storage, ALICE, "a.txt", "12345", { admit: record });
        await put(storage, ALICE, "a.txt", "123", { admit: record });
        await put(storage, ALICE, "b/c/d.txt", "", { admit: record });
        await put(storage, ALICE, "b/e.txt", "", { admit: record });
        assert.deepEqual(seen, [
          { replaced: null, folders: 0 },
          { replaced: 5, folders: 0 },
          { replaced: null, folders: folders(2) },
          { replaced: null, folders: 0 },
        ]);
        const before = await snapshot(storage, ALICE);
        let calls = 0;
        const refuse = () => {
          calls++;
          throw new DfosError(Status.TOO_LARGE, "Cannot store: no room");
        };
        await refused(put(storage, ALICE, "a.txt", "1234567", { admit: refuse }), Status.TOO_LARGE, "replace");
        await refused(put(storage, ALICE, "x/y/z.txt", "1", { admit: refuse }), Status.TOO_LARGE, "new folders");
        await refused(put(storage, ALICE, "b/f/g.txt", "1", { admit: refuse }), Status.TOO_LARGE, "a new folder");
        assert.equal(calls, 3);
        const dropped = await storage.beginUpload(ALICE, "a.txt");
        await dropped.write(bytes("1234"));
        await refused(dropped.commit({ admit: refuse }), Status.TOO_LARGE, "refused");
        await refused(dropped.commit(), null, "the refused upload was dropped");
        assert.equal(await readText(storage, ALICE, "a.txt"), "123");
        assert.deepEqual(await snapshot(storage, ALICE), before, "nothing changed, nothing counted");
        // The folders made for a refused commit are gone: their names can be files.
        await put(storage, ALICE, "x", "a file");
        await put(storage, ALICE, "b/f", "a file");
      },
    ],

    [
      "a name is a file or a folder, never both: CONFLICT at begin, at commit, and for reads and removes",
      async ({ storage }) => {
        await put(storage, ALICE, "dir/x", "x");
        await put(storage, ALICE, "file", "f");
        const before = await snapshot(storage, ALICE);
        await refused(storage.beginUpload(ALICE, "dir"), Status.CONFLICT, "upload to a folder's name");
        await refused(storage.beginUpload(ALICE, "file/x"), Status.CONFLICT, "upload through a file");
        await refused(storage.beginUpload(ALICE, "dir/x/y/z"), Status.CONFLICT, "upload deeper through a file");
        await refused(storage.beginUpload(ALICE, "dir", { keep: "k" }), Status.CONFLICT, "keepable upload to a folder");
        await refused(storage.openRead(ALICE, "dir"), Status.CONFLICT, "openRead of a folder");
        await refused(storage.openRead(ALICE, "file/x"), Status.CONFLICT, "openRead through a file");
        await refused(storage.remove(ALICE, "dir"), Status.CONFLICT, "remove of a folder");
        await refused(storage.remove(ALICE, "file/x"), Status.CONFLICT, "remove through a file");
        await refused(storage.stat(ALICE, "file/x"), Status.CONFLICT, "stat through a file");
        assert.deepEqual(await snapshot(storage, ALICE), before);

        // What begin checked, commit checks again: a folder or a file may have taken the way meanwhile.
        const toFolder = await storage.beginUpload(ALICE, "later");
        await toFolder.write(bytes("data"));
        const throughFile = await storage.beginUpload(ALICE, "way/down");
        await throughFile.write(bytes("data"));
        await put(storage, ALICE, "later/inside", "made meanwhile");
        await put(storage, ALICE, "way", "a file made meanwhile");
        await refused(toFolder.commit(), Status.CONFLICT, "commit to what became a folder");
        await refused(throughFile.commit(), Status.CONFLICT, "commit through what became a file");
        assert.equal(await readText(storage, ALICE, "later/inside"), "made meanwhile");
        assert.equal(await readText(storage, ALICE, "way"), "a file made meanwhile");
        assert.deepEqual(await listAll(storage, ALICE), ["dir/x", "file", "later/inside", "way"]);
      },
    ],

    ["every method refuses every bad name as BAD_NAME, and changes nothing", async ({ storage }) => {
      await put(storage, ALICE, "ok", "ok");
      const before = await snapshot(storage, ALICE);
      for (const name of badNames(backend.maxNameBytes)) {
        const label = JSON.stringify(name.length > 40 ? name.slice(0, 40) + "..." : name);
        await refused(storage.beginUpload(ALICE, name), Status.BAD_NAME, `beginUpload ${label}`);
        await refused(storage.beginUpload(ALICE, name, { keep: "k" }), Status.BAD_NAME, `beginUpload keep ${label}`);
        await refused(storage.resumeUpload(ALICE, name, "k"), Status.BAD_NAME, `resumeUpload ${label}`);
        await refused(storage.dropKept(ALICE, name, "k"), Status.BAD_NAME, `dropKept ${label}`);
        await refused(storage.readChunkList(ALICE, name), Status.BAD_NAME, `readChunkList ${label}`);
        const list = { name, version: "v", entries: new Uint8Array(36) };
        await refused(storage.writeChunkList(ALICE, list), Status.BAD_NAME, `writeChunkList ${label}`);
        await refused(storage.openRead(ALICE, name), Status.BAD_NAME, `openRead ${label}`);
        await refused(storage.remove(ALICE, name), Status.BAD_NAME, `remove ${label}`);
        await refused(storage.rename(ALICE, "ok", name), Status.BAD_NAME, `rename to ${label}`);
        await refused(storage.rename(ALICE, name, "ok2"), Status.BAD_NAME, `rename from ${label}`);
        await refused(storage.stat(ALICE, name), Status.BAD_NAME, `stat ${label}`);
      }
      assert.deepEqual(await snapshot(storage, ALICE), before);
    }],

    ["every method refuses a bad user name as BAD_NAME", async ({ storage }) => {
      const list = { name: "f", version: "v", entries: new Uint8Array(36) };
      for (const user of BAD_USERS) {
        const label = JSON.stringify(user.slice(0, 20));
        await refused(storage.beginUpload(user, "f"), Status.BAD_NAME, `beginUpload as ${label}`);
        await refused(storage.resumeUpload(user, "f", "k"), Status.BAD_NAME, `resumeUpload as ${label}`);
        await refused(storage.keptUploads(user), Status.BAD_NAME, `keptUploads as ${label}`);
        await refused(storage.dropKept(user, "f", "k"), Status.BAD_NAME, `dropKept as ${label}`);
        await refused(storage.readChunkList(user, "f"), Status.BAD_NAME, `readChunkList as ${label}`);
        await refused(storage.writeChunkList(user, list), Status.BAD_NAME, `writeChunkList as ${label}`);
        await refused(allChunkLists(storage, user), Status.BAD_NAME, `chunkLists as ${label}`);
        await refused(storage.changes(user), Status.BAD_NAME, `changes as ${label}`);
        const since = { epoch: "e", counter: 0 };
        const waited = storage.waitForChange(user, since, new AbortController().signal);
        await refused(waited, Status.BAD_NAME, `waitForChange as ${label}`);
        await refused(storage.openRead(user, "f"), Status.BAD_NAME, `openRead as ${label}`);
        await refused(storage.remove(user, "f"), Status.BAD_NAME, `remove as ${label}`);
        await refused(storage.rename(user, "f", "g"), Status.BAD_NAME, `rename as ${label}`);
        await refused(storage.list(user, { prefix: "", after: "", limit: 10 }), Status.BAD_NAME, `list as ${label}`);
        await refused(storage.stat(user, "f"), Status.BAD_NAME, `stat as ${label}`);
        await refused(storage.usage(user), Status.BAD_NAME, `usage as ${label}`);
      }
    }],

    ["names up to the longest allowed round-trip; one byte more is BAD_NAME", async ({ storage }) => {
      const longest = nameOfBytes(backend.maxNameBytes);
      assert.equal(encoder.encode(longest).length, backend.maxNameBytes);
      assert.ok(backend.maxNameBytes <= MAX_NAME_BYTES);
      const segment = "\u00e9".repeat(MAX_SEGMENT_BYTES >> 1) + "e"; // 255 bytes
      const names = [longest, segment, `a/${segment}/b`, "\u{1F600} \u00e9t\u00e9 #1 (copy) 'q' & $x; %20 +.txt"];
      for (const name of names) {
        await put(storage, ALICE, name, name);
        assert.equal(await readText(storage, ALICE, name), name);
        assert.equal((await storage.stat(ALICE, name))?.name, name);
      }
      assert.deepEqual(await listAll(storage, ALICE), [...names].sort());
      await storage.rename(ALICE, longest, "short");
      await storage.rename(ALICE, "short", longest);
      for (const name of names) await storage.remove(ALICE, name);
      assert.deepEqual(await listAll(storage, ALICE), []);
    }],

    [
      "names with characters that URLs and shells treat specially are stored, listed and moved as written",
      async ({ storage }) => {
        const odd = "a b+c%2F?d=e&f#g\"h'i*j~k`l$(m)[n]{o}<p>|q;r,s!t@u^v";
        const names = [`${odd}/x`, `${odd}/y/z`, `${odd}.txt`, "%", "+", " lead and trail ", "-", "~"];
        for (const name of names) await put(storage, ALICE, name, `content of ${name}`);
        assert.deepEqual(await listAll(storage, ALICE), [...names].sort());
        assert.deepEqual(await listAll(storage, ALICE, { prefix: `${odd}/` }), [`${odd}/x`, `${odd}/y/z`]);
        assert.deepEqual(await listAll(storage, ALICE, { prefix: odd, after: `${odd}.txt`, limit: 1 }), [
          `${odd}/x`,
          `${odd}/y/z`,
        ]);
        const to = "moved %20+&?=";
        assert.equal((await storage.rename(ALICE, odd, to)).files, 2);
        assert.equal(await readText(storage, ALICE, `${to}/y/z`), `content of ${odd}/y/z`);
        await storage.rename(ALICE, `${odd}.txt`, `${to}/${odd}.txt`);
        assert.equal(await readText(storage, ALICE, `${to}/${odd}.txt`), `content of ${odd}.txt`);
        assert.equal((await storage.remove(ALICE, `${to}/x`)).name, `${to}/x`);
        assert.deepEqual(await listAll(storage, ALICE, { prefix: to }), [`${to}/${odd}.txt`, `${to}/y/z`]);
      },
    ],

    [
      "remove deletes a file and the folders it empties, returns its facts, and refuses what is not a file",
      async ({ storage }) => {
        const mtime = Date.UTC(2021, 5, 6);
        await put(storage, ALICE, "p/q/r.txt", "12345", { mtime });
        await put(storage, ALICE, "p/s.txt", "1");
        const start = await storage.changes(ALICE);
        assert.deepEqual(await storage.remove(ALICE, "p/q/r.txt"), {
          name: "p/q/r.txt",
          size: 5,
          mtime,
          folders: folders(1),
        });
        assert.equal(await storage.stat(ALICE, "p/q/r.txt"), null);
        await refused(storage.openRead(ALICE, "p/q/r.txt"), Status.NOT_FOUND, "openRead after remove");
        assert.equal((await storage.remove(ALICE, "p/s.txt")).folders, folders(1));
        assert.equal((await storage.changes(ALICE)).counter, start.counter + 2);
        assert.deepEqual(await listAll(storage, ALICE), []);
        // The emptied folders are gone: their names can be files.
        await put(storage, ALICE, "p", "now a file");
        const before = await snapshot(storage, ALICE);
        await refused(storage.remove(ALICE, "nothing"), Status.NOT_FOUND, "remove of nothing");
        await refused(storage.remove(ALICE, "no/such/file"), Status.NOT_FOUND, "remove in no folder");
        await refused(storage.openRead(ALICE, "nothing"), Status.NOT_FOUND, "openRead of nothing");
        await refused(storage.openRead(ALICE, "no/such/file"), Status.NOT_FOUND, "openRead in no folder");
        assert.deepEqual(await snapshot(storage, ALICE), before, "nothing counted");
      },
    ],

    [
      "a reader opened before a replace or a remove reads the old version whole, or fails: never other bytes",
      async ({ storage }) => {
        const old = "version one: " + "1".repeat(100_000);
        const cases: [string, () => Promise<unknown>][] = [
          ["replace", () => put(storage, ALICE, "f", "version two, " + "2".repeat(200_000))],
          ["remove", () => storage.remove(ALICE, "f")],
          ["rename", () => storage.rename(ALICE, "f", "g")],
        ];
        for (const [what, change] of cases) {
          await put(storage, ALICE, "f", old);
          const handle = await storage.openRead(ALICE, "f");
          try {
            const version = handle.info.version;
            await change();
            assert.equal(handle.info.size, old.length, "the facts of the version opened");
            assert.equal(handle.info.version, version);
            let read: string | DfosError;
            try {
              read = decoder.decode(await collect(handle.read()));
            } catch (error) {
              assert.ok(error instanceof DfosError, `after a ${what}: a read fails with a DfosError, not ${error}`);
              read = error;
            }
            if (can.readersKeepReplacedVersion) assert.equal(read, old, `after a ${what}: the old version`);
            else if (typeof read === "string") assert.equal(read, old, `after a ${what}: the old version or a failure`);
            let ranged: string | DfosError;
            try {
              ranged = decoder.decode(await collect(handle.readRange(5, 10)));
            } catch (error) {
              assert.ok(error instanceof DfosError, `after a ${what}: a range fails with a DfosError, not ${error}`);
              ranged = error;
            }
            if (can.readersKeepReplacedVersion || typeof ranged === "string") assert.equal(ranged, old.slice(5, 15));
          } finally {
            handle.close();
          }
        }
      },
    ],

    [
      "versions: the same content keeps its version; a replace gets another; a new open reads the new",
      async ({ storage }) => {
        await put(storage, ALICE, "f", "one");
        const open = async () => {
          const handle = await storage.openRead(ALICE, "f");
          handle.close();
          return handle.info.version;
        };
        const first = await open();
        assert.equal(await open(), first);
        await put(storage, ALICE, "f", "two, longer");
        const second = await open();
        assert.notEqual(second, first);
        assert.equal(await readText(storage, ALICE, "f"), "two, longer");
      },
    ],

    ["rename moves a file with its content and facts, making and pruning folders", async ({ storage }) => {
      const mtime = Date.UTC(2022, 0, 1);
      await put(storage, ALICE, "a/f", "content", { mtime });
      const start = await storage.changes(ALICE);
      assert.deepEqual(await storage.rename(ALICE, "a/f", "b/c/g"), {
        from: "a/f",
        to: "b/c/g",
        files: 1,
        foldersCreated: folders(2),
        foldersRemoved: folders(1),
      });
      assert.equal((await storage.changes(ALICE)).counter, start.counter + 1);
      assert.equal(await storage.stat(ALICE, "a/f"), null);
      const moved = await storage.stat(ALICE, "b/c/g");
      assert.deepEqual([moved?.name, moved?.size, moved?.mtime], ["b/c/g", 7, mtime]);
      assert.equal(await readText(storage, ALICE, "b/c/g"), "content");
      assert.deepEqual(await listAll(storage, ALICE), ["b/c/g"]);
      await put(storage, ALICE, "a", "the emptied folder is gone");
      // Within one folder, and out to the top.
      assert.equal((await storage.rename(ALICE, "b/c/g", "b/c/h")).foldersRemoved, 0);
      assert.deepEqual(await storage.rename(ALICE, "b/c/h", "h"), {
        from: "b/c/h",
        to: "h",
        files: 1,
        foldersCreated: 0,
        foldersRemoved: folders(2),
      });
      assert.deepEqual(await listAll(storage, ALICE), ["a", "h"]);
      // Up out of a folder that still holds the file, and down into a new one beside it.
      await put(storage, ALICE, "x/y/f", "f");
      assert.equal((await storage.rename(ALICE, "x/y/f", "x/g")).foldersRemoved, folders(1));
      const down = await storage.rename(ALICE, "x/g", "x/z/g");
      assert.deepEqual([down.foldersCreated, down.foldersRemoved], [folders(1), 0]);
      assert.deepEqual(await listAll(storage, ALICE), ["a", "h", "x/z/g"]);
    }],

    [
      "rename moves a folder with every file at any depth, and nothing that only shares its prefix",
      async ({ storage }) => {
        const files = ["d/x", "d/y/z", "d/y/w/v", "dz", "d.txt", "d-e/f", "c/d/x"];
        for (const [i, name] of files.entries()) {
          await put(storage, ALICE, name, `content of ${name}`, { mtime: Date.UTC(2019, 0, 1 + i) });
        }
        const start = await storage.changes(ALICE);
        assert.deepEqual(await storage.rename(ALICE, "d", "e/d2"), {
          from: "d",
          to: "e/d2",
          files: 3,
          foldersCreated: folders(1),
          foldersRemoved: 0,
        });
        assert.equal((await storage.changes(ALICE)).counter, start.counter + 1, "one change for the whole folder");
        const moved = ["e/d2/x", "e/d2/y/z", "e/d2/y/w/v"];
        assert.deepEqual(await listAll(storage, ALICE), ["c/d/x", "d-e/f", "d.txt", "dz", ...moved].sort());
        for (const [i, name] of moved.entries()) {
          assert.equal(await readText(storage, ALICE, name), `content of ${files[i]}`);
          const info = await storage.stat(ALICE, name);
          assert.deepEqual([info?.size, info?.mtime], [`content of ${files[i]}`.length, Date.UTC(2019, 0, 1 + i)]);
        }
        assert.equal(await storage.stat(ALICE, "d/x"), null);
        await put(storage, ALICE, "d", "the old folder's name is free");
        assert.equal((await storage.rename(ALICE, "e/d2/y", "y")).files, 2);
        assert.deepEqual(await listAll(storage, ALICE, { prefix: "y" }), ["y/w/v", "y/z"]);
        // A name that only starts with the folder's is not inside it.
        assert.equal((await storage.rename(ALICE, "y", "yy/y")).files, 2);
        assert.deepEqual(await listAll(storage, ALICE, { prefix: "y" }), ["yy/y/w/v", "yy/y/z"]);
      },
    ],

    [
      "rename refuses an existing target, a folder into itself, a missing source and a way through a file",
      async ({ storage }) => {
        await put(storage, ALICE, "f", "f");
        await put(storage, ALICE, "g", "g");
        await put(storage, ALICE, "dir/x", "x");
        await put(storage, ALICE, "other/y", "y");
        const before = await snapshot(storage, ALICE);
        await refused(storage.rename(ALICE, "f", "g"), Status.CONFLICT, "onto a file");
        await refused(storage.rename(ALICE, "f", "dir"), Status.CONFLICT, "onto a folder");
        await refused(storage.rename(ALICE, "dir", "other"), Status.CONFLICT, "a folder onto a folder");
        await refused(storage.rename(ALICE, "dir", "f"), Status.CONFLICT, "a folder onto a file");
        await refused(storage.rename(ALICE, "dir", "dir/sub"), Status.CONFLICT, "a folder into itself");
        await refused(storage.rename(ALICE, "dir", "dir/a/b"), Status.CONFLICT, "a folder deep into itself");
        await refused(storage.rename(ALICE, "dir", "dir"), Status.CONFLICT, "a folder onto itself");
        await refused(storage.rename(ALICE, "f", "f"), Status.CONFLICT, "a file onto itself");
        await refused(storage.rename(ALICE, "f", "g/x"), Status.CONFLICT, "a way through a file");
        await refused(storage.rename(ALICE, "f", "dir/x/y"), Status.CONFLICT, "a way deeper through a file");
        await refused(storage.rename(ALICE, "nothing", "new"), Status.NOT_FOUND, "a missing source");
        await refused(storage.rename(ALICE, "no/such", "new"), Status.NOT_FOUND, "a source in no folder");
        await refused(storage.rename(ALICE, "f/x", "new"), Status.CONFLICT, "a source through a file");
        assert.deepEqual(await snapshot(storage, ALICE), before, "nothing moved, nothing counted");
      },
    ],

    [
      "rename refuses, before anything moves, new names past maxNameBytes: a file's, or any file's of a folder",
      async ({ storage }) => {
        await put(storage, ALICE, "f", "f");
        await put(storage, ALICE, "dir/a", "a");
        await put(storage, ALICE, "dir/sub/deeper/longest-name.txt", "b");
        await put(storage, ALICE, "dir/z", "z");
        const before = await snapshot(storage, ALICE);
        const limit = 40;
        const long = "x".repeat(limit - "/sub/deeper/longest-name.txt".length + 1); // "long/sub/..." is limit + 1
        await refused(
          storage.rename(ALICE, "f", "y".repeat(limit + 1), { maxNameBytes: limit }),
          Status.BAD_NAME,
          "a file",
        );
        const error = await refused(
          storage.rename(ALICE, "dir", long, { maxNameBytes: limit }),
          Status.BAD_NAME,
          "a folder whose deepest file's name would be too long",
        );
        assert.match(error.message, /longest-name\.txt" would have a name longer than 40 bytes/);
        assert.deepEqual(await snapshot(storage, ALICE), before, "nothing moved, not even the files of short names");
        // At the limit exactly, both move.
        assert.equal((await storage.rename(ALICE, "dir", long.slice(1), { maxNameBytes: limit })).files, 3);
        assert.equal((await storage.rename(ALICE, "f", "y".repeat(limit), { maxNameBytes: limit })).files, 1);
      },
    ],

    ["rename asks admit the folders it will make; a refusal changes nothing", async ({ storage }) => {
      await put(storage, ALICE, "f", "f");
      await put(storage, ALICE, "m/n/o", "o");
      const seen: number[] = [];
      await storage.rename(ALICE, "f", "x/y/f", { admit: (made) => void seen.push(made) });
      await storage.rename(ALICE, "x/y/f", "x/z", { admit: (made) => void seen.push(made) });
      await storage.rename(ALICE, "m", "p/q/m", { admit: (made) => void seen.push(made) });
      assert.deepEqual(seen, [folders(2), 0, folders(2)]);
      const before = await snapshot(storage, ALICE);
      const refuse = () => {
        throw new DfosError(Status.TOO_LARGE, "Cannot move: no room");
      };
      await refused(storage.rename(ALICE, "x/z", "s/t/z", { admit: refuse }), Status.TOO_LARGE, "a file");
      await refused(storage.rename(ALICE, "p", "u/v", { admit: refuse }), Status.TOO_LARGE, "a folder");
      assert.deepEqual(await snapshot(storage, ALICE), before, "nothing moved, nothing counted");
      await put(storage, ALICE, "s", "no folder was left at s");
      await put(storage, ALICE, "u", "no folder was left at u");
    }],

    [
      "list pages in JavaScript string order; a full listing gives each file once at any page size",
      async ({ storage }) => {
        const names = [
          "a-b",
          "a/x",
          "ab",
          "a.c",
          "a/y/z",
          "a0",
          "a!",
          "B",
          "c",
          "d/e/f",
          "\u00e9",
          "\ufb01", // sorts after the emoji in JavaScript (UTF-16), before it in UTF-8 byte order (S3's)
          "\u{1F600}",
          "\uff5e/x",
          "z",
        ];
        const mtime = Date.UTC(2023, 3, 4);
        for (const [i, name] of names.entries()) await put(storage, ALICE, name, "x".repeat(i), { mtime: mtime + i });
        const expected = [...names].sort();
        const first = await storage.list(ALICE, { prefix: "", after: "", limit: 1000 });
        assert.deepEqual(first.entries.map((entry) => entry.name), expected);
        assert.equal(first.next, null);
        for (const entry of first.entries) {
          const i = names.indexOf(entry.name);
          assert.deepEqual(entry, { name: entry.name, size: i, mtime: mtime + i }, "an entry's facts");
        }
        for (const limit of [1, 2, 3, 4, 5, expected.length - 1, expected.length, expected.length + 1]) {
          const pages: number[] = [];
          let after = "";
          const seen: string[] = [];
          for (;;) {
            const page = await storage.list(ALICE, { prefix: "", after, limit });
            assert.ok(page.entries.length <= limit);
            pages.push(page.entries.length);
            seen.push(...page.entries.map((entry) => entry.name));
            if (page.next === null) break;
            after = page.next;
          }
          assert.deepEqual(seen, expected, `limit ${limit}`);
          assert.equal(
            pages.length,
            Math.ceil(expected.length / limit),
            `limit ${limit}: next is null on the last page`,
          );
        }
        // `after` need not be a name that exists.
        for (const after of ["a.", "a/", "a/x", "a/y/z", "\u00e9", "\u{1F600}", "\ufb01", "{", "zz"]) {
          assert.deepEqual(await listAll(storage, ALICE, { after }), expected.filter((name) => name > after), after);
        }
      },
    ],

    ["list keeps only names starting with the prefix, paging within it", async ({ storage }) => {
      for (const name of ["a!", "a-b", "a.c", "a/x", "a/y/z", "ab", "b/a", "ba"]) await put(storage, ALICE, name, "x");
      const cases: [string, string[]][] = [
        ["a", ["a!", "a-b", "a.c", "a/x", "a/y/z", "ab"]],
        ["a/", ["a/x", "a/y/z"]],
        ["a/y", ["a/y/z"]],
        ["a/y/", ["a/y/z"]],
        ["a/y/z", ["a/y/z"]],
        ["b", ["b/a", "ba"]],
        ["zz", []],
        ["a/x/", []],
      ];
      for (const [prefix, expected] of cases) {
        for (const limit of [1, 2, 100]) {
          assert.deepEqual(
            await listAll(storage, ALICE, { prefix, limit }),
            expected,
            `prefix ${prefix}, limit ${limit}`,
          );
        }
      }
      // With `after` before, inside and past the prefix's names.
      const within: [string, string, string[]][] = [
        ["b", "a/zzz", ["b/a", "ba"]],
        ["b", "b/a", ["ba"]],
        ["b", "c", []],
        ["a/", "a/x", ["a/y/z"]],
        ["a/", "a.c", ["a/x", "a/y/z"]],
        ["a", "a/x", ["a/y/z", "ab"]],
      ];
      for (const [prefix, after, expected] of within) {
        assert.deepEqual(
          await listAll(storage, ALICE, { prefix, after }),
          expected,
          `prefix ${prefix}, after ${after}`,
        );
      }
    }],

    ["list goes on past files and folders removed between pages, and never shows one twice", async ({ storage }) => {
      const names: string[] = [];
      for (let i = 0; i < 20; i++) names.push(`f${String(i).padStart(2, "0")}`);
      names.push("m/1", "m/2", "m/n/3", "n");
      for (const name of names) await put(storage, ALICE, name, name);
      const first = await storage.list(ALICE, { prefix: "", after: "", limit: 5 });
      assert.deepEqual(first.entries.map((entry) => entry.name), names.slice(0, 5));
      const gone = ["f03", "f07", "f12", "m/1", "m/2", "m/n/3"];
      for (const name of gone) await storage.remove(ALICE, name);
      const rest = await listAll(storage, ALICE, { after: first.next!, limit: 5 });
      assert.deepEqual(rest, names.slice(5).filter((name) => !gone.includes(name)));
      // A folder moved away under a listing: no error, and nothing twice.
      for (const name of ["p/1", "p/2", "q"]) await put(storage, ALICE, name, name);
      const start = await storage.list(ALICE, { prefix: "", after: "", limit: 3 });
      await storage.rename(ALICE, "p", "a/p");
      const seen = [
        ...start.entries.map((entry) => entry.name),
        ...await listAll(storage, ALICE, { after: start.next! }),
      ];
      assert.equal(new Set(seen).size, seen.length, "each name once");
      assert.ok(seen.includes("q") && !seen.includes("p/1") && !seen.includes("p/2"), seen.join(" "));
    }],

    ["stat gives a file's facts, and null for nothing and for a folder", async ({ storage }) => {
      const mtime = Date.UTC(2024, 7, 8);
      await put(storage, ALICE, "a/b.txt", "12345", { mtime });
      const info = await storage.stat(ALICE, "a/b.txt");
      assert.deepEqual([info?.name, info?.size, info?.mtime], ["a/b.txt", 5, mtime]);
      assert.equal(await storage.stat(ALICE, "a/none.txt"), null);
      assert.equal(await storage.stat(ALICE, "none/b.txt"), null);
      assert.equal(await storage.stat(ALICE, "a"), null, "a folder");
      assert.equal(await storage.stat(ALICE, "a/b"), null, "a prefix of a name");
    }],

    ["usage counts each file's footprint in blocks, and folders where the store has them", async ({ storage }) => {
      assert.deepEqual(await storage.usage(ALICE), { bytes: 0, entries: 0 });
      await put(storage, ALICE, "a.txt", "12345");
      await put(storage, ALICE, "deep/er/b.txt", new Uint8Array(4097));
      await put(storage, ALICE, "empty.txt", "");
      const files = footprint(5, blockSize) + footprint(4097, blockSize) + footprint(0, blockSize);
      const expected = { bytes: files + folders(2) * blockSize, entries: 3 + folders(2) };
      assert.deepEqual(await storage.usage(ALICE), expected);
      // Neither uploads in progress, kept uploads, nor chunk lists count.
      const pending = await storage.beginUpload(ALICE, "pending/x");
      await pending.write(new Uint8Array(100_000));
      const kept = await storage.beginUpload(ALICE, "kept/x", { keep: "k" });
      await kept.write(new Uint8Array(100_000));
      await kept.keep(new Uint8Array(1000));
      const handle = await storage.openRead(ALICE, "a.txt");
      handle.close();
      await storage.writeChunkList(ALICE, {
        name: "a.txt",
        version: handle.info.version,
        entries: new Uint8Array(3600),
      });
      assert.deepEqual(await storage.usage(ALICE), expected);
      await pending.abort();
      assert.equal((await storage.remove(ALICE, "deep/er/b.txt")).folders, folders(2));
      const left = footprint(5, blockSize) + footprint(0, blockSize);
      assert.deepEqual(await storage.usage(ALICE), { bytes: left, entries: 2 });
      assert.deepEqual(await storage.usage(BOB), { bytes: 0, entries: 0 });
    }],

    [
      "a kept upload is listed with its state, resumed only by its key, continued from written, finished whole",
      async ({ storage }) => {
        const before = await snapshot(storage, ALICE);
        const start = Date.now();
        const upload = await storage.beginUpload(ALICE, "dir/big", { keep: "root-1" });
        await upload.write(bytes("first half,"));
        assert.equal(upload.written, 11);
        await upload.keep(bytes("state-1"));
        const end = Date.now();
        await refused(upload.write(bytes("more")), null, "write after keep");
        await refused(upload.commit(), null, "commit after keep");
        assert.equal(await storage.stat(ALICE, "dir/big"), null, "a kept upload is not a file");
        assert.deepEqual((await snapshot(storage, ALICE)).entries, before.entries, "nor listed");
        assert.deepEqual(await storage.usage(ALICE), before.usage, "nor counted");
        assert.deepEqual(await storage.changes(ALICE), before.changes, "nor a change");
        const kept = await storage.keptUploads(ALICE);
        assert.equal(kept.length, 1);
        const { updated, ...facts } = kept[0];
        assert.deepEqual(facts, { name: "dir/big", key: "root-1", size: 11, state: bytes("state-1") });
        assert.ok(updated >= start - 2000 && updated <= end + 2000, `updated ${updated} is when it was kept`);

        assert.equal(await storage.resumeUpload(ALICE, "dir/big", "root-2"), null, "another key");
        assert.equal(await storage.resumeUpload(ALICE, "dir/other", "root-1"), null, "another name");
        assert.equal(await storage.resumeUpload(ALICE, "big", "root-1"), null, "another name");
        const resumed = await storage.resumeUpload(ALICE, "dir/big", "root-1");
        assert.ok(resumed !== null, "resumed by its name and key");
        assert.deepEqual(resumed.state, bytes("state-1"));
        assert.equal(resumed.upload.written, 11);
        assert.equal(await storage.resumeUpload(ALICE, "dir/big", "root-1"), null, "taken up by one try at a time");
        assert.deepEqual(await storage.keptUploads(ALICE), [], "taken up: in progress, no longer kept");
        await resumed.upload.write(bytes(" second"));
        assert.equal(resumed.upload.written, 18);
        await resumed.upload.keep(bytes("state-2"));
        assert.deepEqual((await storage.keptUploads(ALICE)).map((kept) => [kept.size, decoder.decode(kept.state)]), [
          [18, "state-2"],
        ]);

        const again = await storage.resumeUpload(ALICE, "dir/big", "root-1");
        assert.ok(again !== null);
        assert.equal(again.upload.written, 18);
        await again.upload.write(bytes(" half"));
        const info = await again.upload.commit();
        assert.equal(info.size, 23);
        assert.equal(await readText(storage, ALICE, "dir/big"), "first half, second half");
        assert.deepEqual(await storage.keptUploads(ALICE), []);
        assert.equal(await storage.resumeUpload(ALICE, "dir/big", "root-1"), null, "finished");
        assert.equal((await storage.changes(ALICE)).counter, before.changes.counter + 1, "one commit");
      },
    ],

    [
      "kept uploads go by dropKept, by a new keepable upload of the name, and by the sweep, by time",
      async ({ storage }) => {
        const keep = async (user: string, name: string, key: string) => {
          const upload = await storage.beginUpload(user, name, { keep: key });
          await upload.write(bytes("bytes"));
          await upload.keep(new Uint8Array(0));
        };
        const keys = async (user: string) =>
          (await storage.keptUploads(user)).map((kept) => `${kept.name}:${kept.key}`).sort();
        await keep(ALICE, "a", "k1");
        const replacing = await storage.beginUpload(ALICE, "a", { keep: "k2" });
        assert.deepEqual(await keys(ALICE), [], "dropped as the new keepable upload begins");
        await replacing.write(bytes("x"));
        await replacing.keep(new Uint8Array(0));
        assert.deepEqual(await keys(ALICE), ["a:k2"]);
        assert.equal(await storage.resumeUpload(ALICE, "a", "k1"), null);
        const same = await storage.beginUpload(ALICE, "a", { keep: "k2" });
        assert.deepEqual(await keys(ALICE), [], "the same key too");
        await same.abort();

        await keep(ALICE, "b", "k3");
        await keep(ALICE, "c", "k4");
        await storage.dropKept(ALICE, "b", "other key");
        await storage.dropKept(ALICE, "nothing", "k3");
        assert.deepEqual(await keys(ALICE), ["b:k3", "c:k4"], "nothing dropped by another key or name");
        await storage.dropKept(ALICE, "b", "k3");
        await storage.dropKept(ALICE, "b", "k3");
        assert.deepEqual(await keys(ALICE), ["c:k4"]);

        const plain = await storage.beginUpload(ALICE, "plain");
        await plain.write(bytes("x"));
        await refused(plain.keep(new Uint8Array(0)), Status.BAD_REQUEST, "keep of an upload not begun to be kept");
        await plain.abort();

        // The sweep: by when each was last written, across users.
        await keep(BOB, "d", "k5");
        const kept = [...await storage.keptUploads(ALICE), ...await storage.keptUploads(BOB)];
        const older = Math.max(...kept.map((kept) => kept.updated));
        // Kept again until its time is later than theirs: a store may keep times in whole seconds (S3).
        let newer = older;
        for (let tries = 0; newer <= older; tries++) {
          assert.ok(tries < 50, "an upload kept later is updated later");
          if (tries > 0) await new Promise((resolve) => setTimeout(resolve, 100));
          await keep(BOB, "e", "k6");
          newer = (await storage.keptUploads(BOB)).find((kept) => kept.name === "e")!.updated;
        }
        assert.equal(await storage.sweepKept(older - 60_000), 0, "none old enough");
        assert.equal(await storage.sweepKept(newer), 2, "those last written before");
        assert.deepEqual(await keys(ALICE), []);
        assert.deepEqual(await keys(BOB), ["e:k6"]);
        assert.equal(await storage.sweepKept(Date.now() + 60_000), 1);
        assert.deepEqual(await keys(BOB), []);
      },
    ],

    [
      "a large kept upload stopped at an odd size is resumed from there, kept again, and finished whole",
      async ({ storage }) => {
        const size = 15 * 1024 * 1024 + 777;
        const body = new Uint8Array(size);
        for (let i = 0; i < size; i += 65536) crypto.getRandomValues(body.subarray(i, Math.min(size, i + 65536)));
        const stops = [7 * 1024 * 1024 + 3, 11 * 1024 * 1024 + 1];
        let upload = await storage.beginUpload(ALICE, "big", { keep: "root" });
        let offset = 0;
        for (const stop of [...stops, size]) {
          while (offset < stop) {
            const end = Math.min(stop, offset + 3 * 1024 * 1024 + 5);
            await upload.write(body.subarray(offset, end));
            offset = end;
          }
          if (offset === size) break;
          await upload.keep(encoder.encode(`at ${offset}`));
          const kept = await storage.keptUploads(ALICE);
          assert.deepEqual(kept.map((kept) => kept.size), [offset]);
          const resumed = await storage.resumeUpload(ALICE, "big", "root");
          assert.ok(resumed !== null);
          assert.equal(decoder.decode(resumed.state), `at ${offset}`);
          assert.equal(resumed.upload.written, offset);
          upload = resumed.upload;
        }
        assert.equal((await upload.commit()).size, size);
        assert.equal(sha256(await readAll(storage, ALICE, "big")), sha256(body));
        assert.deepEqual(await storage.keptUploads(ALICE), []);
      },
    ],

    ["a kept upload's state may be 16 MiB, not more (TOO_LARGE)", async ({ storage }) => {
      const max = 16 * 1024 * 1024;
      const state = new Uint8Array(max);
      crypto.getRandomValues(state.subarray(0, 65536));
      state.set(state.subarray(0, 65536), max - 65536);
      const upload = await storage.beginUpload(ALICE, "f", { keep: "k" });
      await upload.write(bytes("x"));
      await upload.keep(state);
      const resumed = await storage.resumeUpload(ALICE, "f", "k");
      assert.ok(resumed !== null);
      assert.equal(sha256(resumed.state), sha256(state));
      await refused(resumed.upload.keep(new Uint8Array(max + 1)), Status.TOO_LARGE, "a state over 16 MiB");
      await resumed.upload.abort();
    }],

    ["a kept upload survives a clean restart and is resumed there", async (store) => {
      const upload = await store.storage.beginUpload(ALICE, "f", { keep: "k" });
      await upload.write(bytes("before the restart, "));
      await upload.keep(bytes("state"));
      const storage = await reopen(store, true);
      const kept = await storage.keptUploads(ALICE);
      assert.deepEqual(kept.map((kept) => [kept.name, kept.key, kept.size]), [["f", "k", 20]]);
      const resumed = await storage.resumeUpload(ALICE, "f", "k");
      assert.ok(resumed !== null);
      assert.deepEqual(resumed.state, bytes("state"));
      await resumed.upload.write(bytes("after it"));
      await resumed.upload.commit();
      assert.equal(await readText(storage, ALICE, "f"), "before the restart, after it");
    }],

    [
      "chunk lists: stored per name, replaced, all iterated, metadata only, stale ones shown by version",
      async ({ storage }) => {
        assert.equal(await storage.readChunkList(ALICE, "f"), null, "none stored");
        await put(storage, ALICE, "f", "content of f");
        await put(storage, ALICE, "a/g", "content of g");
        const versionOf = async (name: string) => {
          const handle = await storage.openRead(ALICE, name);
          handle.close();
          return handle.info.version;
        };
        const entries = new Uint8Array(36 * 5000);
        crypto.getRandomValues(entries.subarray(0, 65536));
        const before = await snapshot(storage, ALICE);
        const v = await versionOf("f");
        await storage.writeChunkList(ALICE, { name: "f", version: v, entries: new Uint8Array(36).fill(1) });
        await storage.writeChunkList(ALICE, { name: "f", version: v, entries });
        assert.deepEqual(await storage.readChunkList(ALICE, "f"), { name: "f", version: v, entries }, "the last one");
        const g = { name: "a/g", version: await versionOf("a/g"), entries: new Uint8Array(36).fill(2) };
        await storage.writeChunkList(ALICE, g);
        const ghost = { name: "ghost/h", version: "some version", entries: new Uint8Array(0) };
        await storage.writeChunkList(ALICE, ghost);
        const all = (await allChunkLists(storage, ALICE)).sort((a, b) => a.name < b.name ? -1 : 1);
        assert.deepEqual(all, [g, { name: "f", version: v, entries }, ghost], "each once, with no file too");
        const after = await snapshot(storage, ALICE);
        assert.deepEqual([after.entries, after.usage, after.changes], [before.entries, before.usage, before.changes]);

        // A replaced file's list is stale, and says so by its version.
        await put(storage, ALICE, "f", "new content of f");
        const stale = await storage.readChunkList(ALICE, "f");
        assert.ok(stale === null || stale.version !== await versionOf("f"), "a stale list shows by its version");

        await storage.rename(ALICE, "a/g", "b/g");
        const moved = await storage.readChunkList(ALICE, "b/g");
        const left = await storage.readChunkList(ALICE, "a/g");
        if (can.chunkListMovesWithFile) {
          assert.deepEqual(moved, { ...g, name: "b/g" }, "moved with the file");
          assert.equal(left, null);
        } else {
          assert.ok(moved === null || moved.name === "b/g");
          assert.ok(left === null || left.name === "a/g");
        }
        await storage.remove(ALICE, "b/g");
        const removed = await storage.readChunkList(ALICE, "b/g");
        if (can.chunkListRemovedWithFile) assert.equal(removed, null, "removed with the file");
        await put(storage, ALICE, "b/g", "another file of that name");
        const again = await storage.readChunkList(ALICE, "b/g");
        assert.ok(again === null || again.version !== await versionOf("b/g"), "not taken for the new file");
      },
    ],

    ["the change counter counts each commit, remove and rename once, and nothing else", async ({ storage }) => {
      const start = await storage.changes(ALICE);
      const bob = await storage.changes(BOB);
      const expect = async (added: number, what: string) => {
        const now = await storage.changes(ALICE);
        assert.deepEqual(now, { epoch: start.epoch, counter: start.counter + added }, what);
      };
      await put(storage, ALICE, "f", "x");
      await expect(1, "a commit");
      await put(storage, ALICE, "f", "y");
      await expect(2, "a replace");
      await put(storage, ALICE, "d/a", "a");
      await put(storage, ALICE, "d/b", "b");
      await expect(4, "two commits");
      await storage.rename(ALICE, "f", "g");
      await expect(5, "a file's rename");
      await storage.rename(ALICE, "d", "e");
      await expect(6, "a folder's rename");
      await storage.remove(ALICE, "g");
      await expect(7, "a remove");
      // Nothing else is a change of the user's files.
      const aborted = await storage.beginUpload(ALICE, "h");
      await aborted.write(bytes("x"));
      await aborted.abort();
      await refused(storage.remove(ALICE, "g"), Status.NOT_FOUND, "remove of nothing");
      await refused(storage.rename(ALICE, "e/a", "e/b"), Status.CONFLICT, "rename onto a file");
      await refused(storage.beginUpload(ALICE, "e"), Status.CONFLICT, "upload onto a folder");
      const kept = await storage.beginUpload(ALICE, "k", { keep: "key" });
      await kept.write(bytes("x"));
      await kept.keep(new Uint8Array(0));
      await storage.dropKept(ALICE, "k", "key");
      await storage.writeChunkList(ALICE, { name: "e/a", version: "v", entries: new Uint8Array(36) });
      await expect(7, "no change");
      assert.deepEqual(await storage.changes(BOB), bob, "bob's counter is his own");
    }],

    [
      "waitForChange ends when the user's counter moves by a commit, remove or rename, not by another user's change",
      async ({ storage }) => {
        await put(storage, ALICE, "a", "a");
        const changes: [string, () => Promise<unknown>][] = [
          ["a commit", () => put(storage, ALICE, "b", "b")],
          ["a rename", () => storage.rename(ALICE, "b", "c")],
          ["a remove", () => storage.remove(ALICE, "c")],
        ];
        for (const [what, change] of changes) {
          const since = await storage.changes(ALICE);
          const stop = new AbortController();
          try {
            const waiting = storage.waitForChange(ALICE, since, stop.signal);
            assert.ok(await pendingAfter(waiting, 100), `${what}: nothing changed yet`);
            await put(storage, BOB, "bobs", what);
            assert.ok(await pendingAfter(waiting, 200), `${what}: bob's change is not alice's`);
            await change();
            await settles(waiting, `${what} ends the wait`);
          } finally {
            stop.abort();
          }
        }
        // The counter moved before the wait began, or is of another epoch: it ends at once.
        const now = await storage.changes(ALICE);
        const signal = new AbortController().signal;
        await settles(storage.waitForChange(ALICE, { ...now, counter: now.counter - 1 }, signal), "an older counter");
        await settles(storage.waitForChange(ALICE, { epoch: "another epoch", counter: 0 }, signal), "another epoch");
        // A signal ends it, aborted before or during the wait.
        await settles(storage.waitForChange(ALICE, now, AbortSignal.abort()), "a signal aborted before");
        const stop = new AbortController();
        const waiting = storage.waitForChange(ALICE, now, stop.signal);
        assert.ok(await pendingAfter(waiting, 100), "nothing changed");
        stop.abort();
        await settles(waiting, "a signal aborted during the wait");
      },
    ],

    [
      "changedNames answers null, or every name changed since under the prefix and none changed before",
      async (store) => {
        let storage = store.storage;
        await put(storage, ALICE, "p/before", "x");
        await put(storage, ALICE, "q/before", "x");
        const since = await storage.changes(ALICE);
        await put(storage, ALICE, "p/a", "a");
        await put(storage, ALICE, "p/b", "b");
        await storage.remove(ALICE, "p/b");
        await storage.rename(ALICE, "p/a", "p/c");
        await put(storage, ALICE, "q/other", "x");
        await put(storage, BOB, "p/bobs", "x");
        const answered = can.changedNamesAnswered;
        const names = await storage.changedNames(ALICE, since, "p/");
        if (answered) assert.notEqual(names, null, "answered from the journal");
        if (names !== null) {
          for (const name of ["p/a", "p/b", "p/c"]) assert.ok(names.includes(name), `${name} is named`);
          assert.ok(!names.includes("p/before"), "a change before the counter is not named");
          assert.ok(names.every((name) => name.startsWith("p/")), `only names under the prefix: ${names}`);
          assert.equal(new Set(names).size, names.length, "each name once");
        }
        const now = await storage.changes(ALICE);
        const none = await storage.changedNames(ALICE, now, "");
        assert.ok(none === null || none.length === 0, "nothing changed since now");
        if (answered) assert.deepEqual(none, [], "nothing changed since now, answered");
        assert.equal(await storage.changedNames(ALICE, { epoch: "another epoch", counter: 0 }, ""), null);
        // A folder moved: its files are not named one by one, so no answer may reach into it.
        await storage.rename(ALICE, "q", "p/q");
        assert.equal(await storage.changedNames(ALICE, now, "p/"), null, "a folder moved into the prefix");
        storage = await reopen(store, true);
        const kept = await storage.changedNames(ALICE, since, "p/");
        assert.ok(kept === null || ["p/a", "p/b", "p/c"].every((name) => kept.includes(name)), "across a restart");
        const moved = await storage.changes(ALICE);
        await put(storage, ALICE, "p/d", "d");
        storage = await reopen(store, true);
        const after = await storage.changedNames(ALICE, moved, "p/");
        assert.ok(after === null || after.includes("p/d"), "a change after the folder moved");
        if (answered) assert.deepEqual(after, ["p/d"], "answered across a clean restart");
      },
    ],

    [
      "the change counter keeps its epoch across a clean restart, and never misses a change after an unclean one",
      async (store) => {
        let storage = store.storage;
        await put(storage, ALICE, "f", "x");
        const counted = await storage.changes(ALICE);
        storage = await reopen(store, true);
        assert.deepEqual(await storage.changes(ALICE), counted, "kept across a clean restart");
        await put(storage, ALICE, "g", "y");
        assert.deepEqual(await storage.changes(ALICE), { epoch: counted.epoch, counter: counted.counter + 1 });
        // Stopped without a word, as when killed.
        storage = await reopen(store, false);
        const after = await storage.changes(ALICE);
        if (can.uncleanStopNewEpoch) assert.notEqual(after.epoch, counted.epoch, "a new epoch after an unclean stop");
        if (after.epoch === counted.epoch) {
          assert.ok(
            after.counter >= counted.counter + 1,
            "the same epoch counted it all",
          );
        }
        await put(storage, ALICE, "h", "z");
        assert.deepEqual(await storage.changes(ALICE), { epoch: after.epoch, counter: after.counter + 1 });
        storage = await reopen(store, true);
        assert.deepEqual(await storage.changes(ALICE), { epoch: after.epoch, counter: after.counter + 1 });
      },
    ],

    [
      "an upload in progress at an unclean stop never shows; a kept one stays; names can be stored after",
      async (store) => {
        await put(store.storage, ALICE, "old", "old content");
        const kept = await store.storage.beginUpload(ALICE, "kept", { keep: "key" });
        await kept.write(bytes("kept before the stop"));
        await kept.keep(bytes("state"));
        const upload = await store.storage.beginUpload(ALICE, "old");
        await upload.write(bytes("half of the new"));
        const fresh = await store.storage.beginUpload(ALICE, "new/file");
        await fresh.write(bytes("half"));
        const storage = await reopen(store, false);
        try {
          assert.equal(await readText(storage, ALICE, "old"), "old content");
          assert.deepEqual(await listAll(storage, ALICE), ["old"]);
          const left = await storage.keptUploads(ALICE);
          assert.deepEqual(left.map((kept) => [kept.name, kept.key, kept.size]), [["kept", "key", 20]]);
          const resumed = await storage.resumeUpload(ALICE, "kept", "key");
          assert.ok(resumed !== null);
          assert.equal(resumed.upload.written, 20);
          await resumed.upload.commit();
          assert.equal(await readText(storage, ALICE, "kept"), "kept before the stop");
          await put(storage, ALICE, "new/file", "whole");
          assert.equal(await readText(storage, ALICE, "new/file"), "whole");
        } finally {
          // The dead instance's handles, as a process's end would close them.
          await upload.abort();
          await fresh.abort();
        }
        assert.equal(await readText(storage, ALICE, "old"), "old content");
        assert.deepEqual(await listAll(storage, ALICE), ["kept", "new/file", "old"]);
      },
    ],

    ["abortUploads aborts every upload in progress, and leaves kept ones", async (store) => {
      const { storage } = store;
      await put(storage, ALICE, "p1", "old p1");
      const plain = await storage.beginUpload(ALICE, "p1");
      await plain.write(bytes("new p1"));
      const other = await storage.beginUpload(BOB, "p2/x");
      await other.write(bytes("p2"));
      const keepable = await storage.beginUpload(ALICE, "p3", { keep: "k3" });
      await keepable.write(bytes("p3"));
      const kept = await storage.beginUpload(ALICE, "p4", { keep: "k4" });
      await kept.write(bytes("p4 so far"));
      await kept.keep(bytes("state 4"));
      await storage.abortUploads();
      for (const [upload, name] of [[plain, "p1"], [other, "p2/x"], [keepable, "p3"]] as [Upload, string][]) {
        await refused(upload.commit(), null, `commit of ${name} after abortUploads`);
      }
      await refused(keepable.keep(bytes("too late")), null, "keep after abortUploads");
      const restarted = await reopen(store, true);
      assert.equal(await readText(restarted, ALICE, "p1"), "old p1");
      assert.deepEqual(await listAll(restarted, ALICE), ["p1"]);
      assert.deepEqual(await listAll(restarted, BOB), []);
      const left = await restarted.keptUploads(ALICE);
      assert.deepEqual(left.map((kept) => [kept.name, kept.key, kept.size]), [["p4", "k4", 9]]);
      const resumed = await restarted.resumeUpload(ALICE, "p4", "k4");
      assert.ok(resumed !== null);
      await resumed.upload.write(bytes(", and the rest"));
      await resumed.upload.commit();
      assert.equal(await readText(restarted, ALICE, "p4"), "p4 so far, and the rest");
    }],

    [
      "a commit makes again the folders a remove pruned meanwhile; uploads into one new folder all land",
      async ({ storage }) => {
        await put(storage, ALICE, "d/x", "x");
        const upload = await storage.beginUpload(ALICE, "d/e/y");
        assert.equal(upload.written, 0);
        await upload.write(bytes("y"));
        await storage.remove(ALICE, "d/x"); // prunes d
        await upload.commit();
        assert.equal(await readText(storage, ALICE, "d/e/y"), "y");
        const names = ["n/1", "n/2", "n/m/3", "n/m/4"];
        const uploads = await Promise.all(names.map((name) => storage.beginUpload(ALICE, name)));
        await Promise.all(uploads.map((upload, i) => upload.write(bytes(names[i]))));
        const made: number[] = [];
        await Promise.all(
          uploads.map((upload) => upload.commit({ admit: (change) => void made.push(change.folders) })),
        );
        assert.equal(made.reduce((sum, count) => sum + count, 0), folders(2), "each folder made once");
        assert.deepEqual(await listAll(storage, ALICE), ["d/e/y", ...names]);
        for (const name of names) assert.equal(await readText(storage, ALICE, name), name);
      },
    ],

    ["names that differ only by case are different files", async ({ storage }) => {
      const names = ["Case", "case", "CASE", "\u00c9t\u00e9", "\u00e9t\u00e9"];
      for (const name of names) await put(storage, ALICE, name, `content of ${name}`);
      assert.deepEqual(await listAll(storage, ALICE), [...names].sort());
      for (const name of names) assert.equal(await readText(storage, ALICE, name), `content of ${name}`);
    }],

    ["the sweep drops kept uploads only: uploads in progress still commit", async ({ storage }) => {
      await put(storage, ALICE, "file", "a file");
      const plain = await storage.beginUpload(ALICE, "plain");
      await plain.write(bytes("plain"));
      const keepable = await storage.beginUpload(ALICE, "keepable", { keep: "k1" });
      await keepable.write(bytes("keepable"));
      // More than a part's worth (S3's smallest is 5 MiB), so that a store would have something to abort.
      const large = new Uint8Array(6 * 1024 * 1024 + 1).fill(120);
      const kept = await storage.beginUpload(ALICE, "kept", { keep: "k2" });
      await kept.write(large);
      await kept.keep(new Uint8Array(0));
      const resumed = await storage.resumeUpload(ALICE, "kept", "k2");
      assert.ok(resumed !== null);
      await resumed.upload.write(bytes(", resumed"));
      const another = await storage.beginUpload(BOB, "kept", { keep: "k3" });
      await another.write(bytes("bob's"));
      await another.keep(new Uint8Array(0));
      assert.equal(await storage.sweepKept(Date.now() + 60_000), 1, "bob's kept upload only");
      await plain.commit();
      await keepable.commit();
      await resumed.upload.commit();
      assert.deepEqual(await listAll(storage, ALICE), ["file", "keepable", "kept", "plain"]);
      assert.equal(
        sha256(await readAll(storage, ALICE, "kept")),
        sha256(new Uint8Array([...large, ...bytes(", resumed")])),
      );
      assert.equal(await readText(storage, ALICE, "file"), "a file");
    }],

    [
      "a kept upload whose name became a folder is refused as CONFLICT when resumed or committed",
      async ({ storage }) => {
        const key = "../../etc/\u00e9 key with / and spaces";
        const upload = await storage.beginUpload(ALICE, "n", { keep: key });
        await upload.write(bytes("so far"));
        await upload.keep(bytes("state"));
        assert.deepEqual((await storage.keptUploads(ALICE)).map((kept) => kept.key), [key], "any key is kept as it is");
        await put(storage, ALICE, "n/inside", "a folder took the name");
        let resumed: Awaited<ReturnType<Storage["resumeUpload"]>> = null;
        try {
          resumed = await storage.resumeUpload(ALICE, "n", key);
        } catch (error) {
          assert.ok(
            error instanceof DfosError && error.code === Status.CONFLICT,
            `resume refused as CONFLICT: ${error}`,
          );
        }
        if (resumed !== null) {
          await resumed.upload.write(bytes(" and more"));
          await refused(resumed.upload.commit(), Status.CONFLICT, "commit to a folder's name");
        }
        assert.deepEqual(await listAll(storage, ALICE), ["n/inside"]);
      },
    ],

    [
      "chunk lists of the files in a renamed folder are stale or moved, never taken for another file",
      async ({ storage }) => {
        await put(storage, ALICE, "a/h", "content of h");
        const handle = await storage.openRead(ALICE, "a/h");
        handle.close();
        await storage.writeChunkList(ALICE, { name: "a/h", version: handle.info.version, entries: new Uint8Array(36) });
        await storage.rename(ALICE, "a", "c");
        const moved = await storage.readChunkList(ALICE, "c/h");
        assert.ok(moved === null || moved.name === "c/h");
        await put(storage, ALICE, "a/h", "another content at the old name");
        const reopened = await storage.openRead(ALICE, "a/h");
        reopened.close();
        const left = await storage.readChunkList(ALICE, "a/h");
        assert.ok(left === null || left.version !== reopened.info.version, "the old list is not the new file's");
        for await (const list of storage.chunkLists(ALICE)) {
          assert.ok(list.name === "a/h" || list.name === "c/h", `a list of a name that had a file: ${list.name}`);
        }
      },
    ],

    ["nothing of one user is reachable as another, through any method", async ({ storage }) => {
      await put(storage, ALICE, "x/f", "alice's x/f");
      await put(storage, ALICE, "g", "alice's g");
      const upload = await storage.beginUpload(ALICE, "k", { keep: "key" });
      await upload.write(bytes("alice's kept"));
      await upload.keep(bytes("alice's state"));
      const handle = await storage.openRead(ALICE, "g");
      handle.close();
      await storage.writeChunkList(ALICE, { name: "g", version: handle.info.version, entries: new Uint8Array(36) });
      const alice = await snapshot(storage, ALICE);
      for (const other of [ALICE2, BOB]) {
        const before = await snapshot(storage, other);
        assert.deepEqual(before.entries, []);
        assert.deepEqual(before.kept, []);
        assert.deepEqual(before.lists, []);
        assert.deepEqual(before.usage, { bytes: 0, entries: 0 });
        assert.equal(await storage.stat(other, "g"), null);
        assert.equal(await storage.stat(other, "x/f"), null);
        assert.equal(await storage.stat(other, "x"), null);
        await refused(storage.openRead(other, "g"), Status.NOT_FOUND, `openRead as ${other}`);
        await refused(storage.remove(other, "g"), Status.NOT_FOUND, `remove as ${other}`);
        await refused(storage.rename(other, "g", "h"), Status.NOT_FOUND, `rename of a file as ${other}`);
        await refused(storage.rename(other, "x", "y"), Status.NOT_FOUND, `rename of a folder as ${other}`);
        assert.equal(await storage.resumeUpload(other, "k", "key"), null, `resumeUpload as ${other}`);
        await storage.dropKept(other, "k", "key");
        assert.equal(await storage.readChunkList(other, "g"), null, `readChunkList as ${other}`);
        for (const prefix of ["g", "x/", "../alice/", `../${ALICE}`]) {
          const page = await storage.list(other, { prefix, after: "", limit: 100 }).catch((error) => {
            assert.ok(error instanceof DfosError && error.code === Status.BAD_NAME, `list prefix ${prefix}: ${error}`);
            return { entries: [] };
          });
          assert.deepEqual(page.entries, [], `list as ${other}, prefix ${prefix}`);
        }
        // Their own files of the same names are theirs.
        await put(storage, other, "g", `${other}'s g`);
        await put(storage, other, "x", `${other}'s x, a file`);
        await storage.rename(other, "g", "g2");
        await storage.remove(other, "x");
        assert.equal(await readText(storage, other, "g2"), `${other}'s g`);
        await storage.writeChunkList(other, { name: "g2", version: "v", entries: new Uint8Array(72) });
        assert.equal((await storage.changes(other)).counter, before.changes.counter + 4);
      }
      assert.deepEqual(await snapshot(storage, ALICE), alice, "alice's space as it was");
      assert.equal(await readText(storage, ALICE, "g"), "alice's g");
      assert.equal(await readText(storage, ALICE, "x/f"), "alice's x/f");
    }],
  ];
}

// ---------------------------------------------------------------------------------------------------------------
// Conditions (`ifVersion`): a change made only if the file is still the version read, as `dfos sync` asks.

/** The version `openRead` gives `name` now. */
async function versionNow(storage: Storage, user: string, name: string): Promise<string> {
  const handle = await storage.openRead(user, name);
  handle.close();
  return handle.info.version;
}

/** Asserts the refusal of a change whose condition does not hold, in the words every backend uses. */
async function changedSince(promise: Promise<unknown>, action: string, name: string, context: string): Promise<void> {
  const error = await refused(promise, Status.CONFLICT, context);
  assert.equal(error.message, `Cannot ${action} "${name}": changed on the server since it was read`, context);
}

/** Of racing changes, exactly one went through and the others were refused as changed since: its index. */
function oneWinner(results: PromiseSettledResult<unknown>[], context: string): number {
  const won = results.flatMap((result, i) => result.status === "fulfilled" ? [i] : []);
  assert.equal(won.length, 1, `${context}: exactly one goes through (${won.length} did)`);
  for (const result of results) {
    if (result.status === "fulfilled") continue;
    const error = result.reason;
    assert.ok(
      error instanceof DfosError && error.code === Status.CONFLICT,
      `${context}: the others CONFLICT: ${error}`,
    );
  }
  return won[0];
}

function conditionCases(): Case[] {
  return [
    [
      "a commit on a version replaces only that version: a stale one, or null over a file, is CONFLICT, nothing changes",
      async ({ storage }) => {
        await put(storage, ALICE, "f", "one");
        const one = await versionNow(storage, ALICE, "f");
        await put(storage, ALICE, "f", "two", { ifVersion: one });
        assert.equal(await readText(storage, ALICE, "f"), "two");
        const before = await snapshot(storage, ALICE);
        let admitted = 0;
        const admit = () => void admitted++;
        await changedSince(
          put(storage, ALICE, "f", "three", { ifVersion: one, admit }),
          "store",
          "f",
          "a stale version",
        );
        await changedSince(
          put(storage, ALICE, "f", "three", { ifVersion: null, admit }),
          "store",
          "f",
          "null on a file",
        );
        await changedSince(
          put(storage, ALICE, "g", "new", { ifVersion: one, admit }),
          "store",
          "g",
          "a version, no file",
        );
        assert.equal(admitted, 0, "the quota is not asked for a refused commit");
        // The refused upload is dropped: it cannot be committed after all.
        const upload = await storage.beginUpload(ALICE, "f");
        await upload.write(bytes("four"));
        await changedSince(upload.commit({ ifVersion: one }), "store", "f", "a stale version");
        await refused(upload.commit(), null, "a refused upload is dropped");
        assert.equal(await readText(storage, ALICE, "f"), "two", "the version committed stays");
        assert.deepEqual(await snapshot(storage, ALICE), before, "listing, usage, counter, kept uploads as before");
        // Null stores a name that has no file; the current version replaces.
        await put(storage, ALICE, "new/n", "fresh", { ifVersion: null });
        assert.equal(await readText(storage, ALICE, "new/n"), "fresh");
        await put(storage, ALICE, "f", "five", { ifVersion: await versionNow(storage, ALICE, "f") });
        assert.equal(await readText(storage, ALICE, "f"), "five");
      },
    ],

    [
      "a commit on the version read is refused when another commit or a removal came while its body did",
      async (store) => {
        const { storage } = store;
        const other = await store.peer?.() ?? storage;
        await put(storage, ALICE, "f", "read by the slow upload");
        const read = await versionNow(storage, ALICE, "f");
        const slow = await storage.beginUpload(ALICE, "f");
        await slow.write(bytes("the slow upload's edit"));
        await put(other, ALICE, "f", "another writer's edit, stored first");
        await changedSince(slow.commit({ ifVersion: read }), "store", "f", "replaced meanwhile");
        assert.equal(await readText(storage, ALICE, "f"), "another writer's edit, stored first");
        const again = await versionNow(storage, ALICE, "f");
        const late = await storage.beginUpload(ALICE, "f");
        await late.write(bytes("an edit of a file removed meanwhile"));
        await other.remove(ALICE, "f");
        await changedSince(late.commit({ ifVersion: again }), "store", "f", "removed meanwhile");
        assert.equal(await storage.stat(ALICE, "f"), null, "no file stored in its place");
      },
    ],

    [
      "commits on the same version racing, small or large, through one server or two: exactly one stores, whole",
      async (store) => {
        const { storage } = store;
        const other = await store.peer?.() ?? storage;
        const sides = [storage, other, storage, other];
        for (const size of [40, 5 * 1024 * 1024 + 1]) {
          const name = `race-${size}`;
          await put(storage, ALICE, name, "the version both read");
          const read = await versionNow(storage, ALICE, name);
          const contents = sides.map((_, i) => new Uint8Array(size).fill(0x41 + i));
          const uploads = await Promise.all(sides.map((side) => side.beginUpload(ALICE, name)));
          await Promise.all(uploads.map((upload, i) => upload.write(contents[i])));
          const results = await Promise.allSettled(uploads.map((upload) => upload.commit({ ifVersion: read })));
          const winner = oneWinner(results, `${size} bytes`);
          assert.equal(sha256(await readAll(storage, ALICE, name)), sha256(contents[winner]), "the winner's, whole");
          await Promise.all(uploads.map((upload) => upload.abort()));
        }
        // Null: of two new files of one name, one.
        const uploads = await Promise.all([storage, other].map((side) => side.beginUpload(ALICE, "fresh")));
        await Promise.all(uploads.map((upload, i) => upload.write(bytes(`new file ${i}`))));
        const results = await Promise.allSettled(uploads.map((upload) => upload.commit({ ifVersion: null })));
        assert.equal(await readText(storage, ALICE, "fresh"), `new file ${oneWinner(results, "null")}`);
        await Promise.all(uploads.map((upload) => upload.abort()));
      },
    ],

    [
      "remove on a version removes only that version: a stale one is CONFLICT and the file stays",
      async ({ storage }) => {
        await put(storage, ALICE, "d/f", "one");
        const one = await versionNow(storage, ALICE, "d/f");
        await put(storage, ALICE, "d/f", "two");
        const before = await snapshot(storage, ALICE);
        await changedSince(storage.remove(ALICE, "d/f", { ifVersion: one }), "remove", "d/f", "a stale version");
        assert.equal(await readText(storage, ALICE, "d/f"), "two");
        assert.deepEqual(await snapshot(storage, ALICE), before, "nothing changed");
        await refused(storage.remove(ALICE, "gone", { ifVersion: one }), Status.NOT_FOUND, "a file that is not there");
        const removed = await storage.remove(ALICE, "d/f", { ifVersion: await versionNow(storage, ALICE, "d/f") });
        assert.equal(removed.size, 3);
        assert.equal(await storage.stat(ALICE, "d/f"), null);
      },
    ],

    [
      "rename on a version moves only that file's version: a stale one, or a folder, is CONFLICT",
      async ({ storage }) => {
        await put(storage, ALICE, "f", "one");
        const one = await versionNow(storage, ALICE, "f");
        await put(storage, ALICE, "f", "two");
        await put(storage, ALICE, "d/x", "in a folder");
        const before = await snapshot(storage, ALICE);
        await changedSince(storage.rename(ALICE, "f", "g", { ifVersion: one }), "move", "f", "a stale version");
        await changedSince(storage.rename(ALICE, "d", "e", { ifVersion: one }), "move", "d", "a folder");
        assert.deepEqual(await snapshot(storage, ALICE), before, "nothing moved");
        await refused(storage.rename(ALICE, "gone", "g", { ifVersion: one }), Status.NOT_FOUND, "a file not there");
        const two = await versionNow(storage, ALICE, "f");
        await storage.rename(ALICE, "f", "n/g", { ifVersion: two });
        assert.equal(await readText(storage, ALICE, "n/g"), "two");
        assert.equal(await storage.stat(ALICE, "f"), null);
      },
    ],

    [
      "a removal and a commit on the same version racing, through one server or two: exactly one is made",
      async (store) => {
        const { storage } = store;
        const other = await store.peer?.() ?? storage;
        for (const [remover, writer] of [[storage, other], [other, storage]]) {
          await put(storage, ALICE, "f", "the version both read");
          const read = await versionNow(storage, ALICE, "f");
          const upload = await writer.beginUpload(ALICE, "f");
          await upload.write(bytes("an edit"));
          const results = await Promise.allSettled([
            remover.remove(ALICE, "f", { ifVersion: read }),
            upload.commit({ ifVersion: read }),
          ]);
          if (oneWinner(results, "remove or commit") === 0) assert.equal(await storage.stat(ALICE, "f"), null);
          else assert.equal(await readText(storage, ALICE, "f"), "an edit");
          await upload.abort();
        }
      },
    ],
  ];
}
