/**
 * `changesSince()` on a real LocalStorage: the files changed with their
 * facts now, the names gone, and no answer past its bounds.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { changesSince, MAX_CHANGED_NAMES } from "./changes_since.ts";
import { LocalStorage } from "./local_storage.ts";

const USER = "alice";

async function withStorage(fn: (storage: LocalStorage) => Promise<void>): Promise<void> {
  const base = await Deno.makeTempDir({ prefix: "dfos-changes-since-" });
  const storage = await LocalStorage.open(join(base, "root"));
  try {
    await storage.prepareUser(USER);
    await fn(storage);
  } finally {
    await storage.abortUploads();
    await Deno.remove(base, { recursive: true });
  }
}

async function put(storage: LocalStorage, name: string, bytes: number, mtime = 1_000_000): Promise<void> {
  const upload = await storage.beginUpload(USER, name);
  await upload.write(new Uint8Array(bytes));
  await upload.commit({ mtime });
}

Deno.test("changesSince: files changed with their facts now, names gone, only under the prefix", async () => {
  await withStorage(async (storage) => {
    await put(storage, "p/keep", 1);
    const since = await storage.changes(USER);
    await put(storage, "p/new", 5, 2_000_000);
    await put(storage, "p/gone", 1);
    await storage.remove(USER, "p/gone");
    await put(storage, "q/other", 1);
    assert.deepEqual(await changesSince(storage, USER, since, "p/"), {
      changed: [{ name: "p/new", size: 5, mtime: 2_000_000 }],
      gone: ["p/gone"],
    });
  });
});

Deno.test("changesSince: no answer for more names than it may give, or names that would not fit a frame", async () => {
  await withStorage(async (storage) => {
    const since = await storage.changes(USER);
    for (let i = 0; i <= MAX_CHANGED_NAMES; i++) await put(storage, `n${i}`, 0);
    assert.equal(await changesSince(storage, USER, since, ""), null, `${MAX_CHANGED_NAMES + 1} names`);
    const later = await storage.changes(USER);
    const long = Array.from({ length: 4 }, () => "x".repeat(240)).join("/"); // a name of 963 bytes
    for (let i = 0; i < 70; i++) await put(storage, `${long}/${i}`, 0);
    assert.equal(await changesSince(storage, USER, later, ""), null, "70 names of 1 KB: more than one frame");
    const last = await storage.changes(USER);
    await put(storage, "small", 0);
    assert.equal((await changesSince(storage, USER, last, ""))?.changed.length, 1);
  });
});
