import assert from "node:assert/strict";
import { join } from "node:path";
import { DfosError, Status, type StatusCode, statusName } from "../shared/status.ts";
import { bytesOf } from "../shared/pooled_bytes.ts";
import { LARGE_FILE_BYTES } from "./confinement.ts";
import { BLOCK_BYTES, LocalStorage, PARTIAL_DIR } from "./local_storage.ts";
import type { CommitChange, ListOptions } from "./storage.ts";

const USER = "alice";
const encoder = new TextEncoder();
const decoder = new TextDecoder();

interface Fixture {
  storage: LocalStorage;
  /** The storage root (a real path). */
  root: string;
  /** ROOT/alice. */
  home: string;
  /** A folder outside the root, for things that must stay out of reach. */
  outside: string;
}

/** Runs `fn` on a fresh storage with the user prepared; removes every folder afterwards. */
async function withStorage(fn: (fixture: Fixture) => Promise<void>): Promise<void> {
  const base = await Deno.makeTempDir({ prefix: "dfos-storage-" });
  try {
    const storage = await LocalStorage.open(join(base, "root"));
    await storage.prepareUser(USER);
    const outside = join(base, "outside");
    await Deno.mkdir(outside);
    try {
      await fn({ storage, root: storage.root, home: join(storage.root, USER), outside });
    } finally {
      await storage.abortUploads();
    }
  } finally {
    await Deno.remove(base, { recursive: true });
  }
}

async function put(storage: LocalStorage, name: string, text: string) {
  const upload = await storage.beginUpload(USER, name);
  await upload.write(encoder.encode(text));
  return await upload.commit();
}

async function read(storage: LocalStorage, name: string, limit?: number): Promise<string> {
  const handle = await storage.openRead(USER, name);
  try {
    const chunks: Uint8Array[] = [];
    for await (const chunk of handle.read(limit)) chunks.push(bytesOf(chunk));
    return chunks.map((chunk) => decoder.decode(chunk, { stream: true })).join("") + decoder.decode();
  } finally {
    handle.close();
  }
}

async function names(storage: LocalStorage, options: Partial<ListOptions> = {}): Promise<string[]> {
  const page = await storage.list(USER, { prefix: "", after: "", limit: 1000, ...options });
  return page.entries.map((entry) => entry.name);
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

async function partials(home: string): Promise<string[]> {
  if (!(await exists(join(home, PARTIAL_DIR)))) return [];
  return (await Array.fromAsync(Deno.readDir(join(home, PARTIAL_DIR)))).map((entry) => entry.name);
}

/** Asserts that `promise` rejects with a `DfosError` of `code`. */
async function assertRejectsWith(promise: Promise<unknown>, code: StatusCode, context = ""): Promise<void> {
  let caught: unknown;
  try {
    await promise;
  } catch (error) {
    caught = error;
  }
  assert.ok(caught instanceof DfosError, `${context}: expected a DfosError, got ${caught}`);
  assert.equal(statusName(caught.code), statusName(code), `${context} (message: ${caught.message})`);
}

/** Begins an upload of `name`, writes `text` and commits: the whole PUT. */
async function putExpectingRefusal(storage: LocalStorage, name: string, text: string, code: StatusCode) {
  await assertRejectsWith(
    (async () => {
      const upload = await storage.beginUpload(USER, name);
      await upload.write(encoder.encode(text));
      await upload.commit();
    })(),
    code,
    `put "${name}"`,
  );
}

Deno.test("LocalStorage commits an upload as the file's content", async () => {
  await withStorage(async ({ storage, home }) => {
    const info = await put(storage, "a.txt", "hello");
    assert.equal(info.name, "a.txt");
    assert.equal(info.size, 5);
    assert.ok(info.mtime > 0);
    assert.equal(await Deno.readTextFile(join(home, "a.txt")), "hello");
    assert.equal(await read(storage, "a.txt"), "hello");
    assert.deepEqual(await partials(home), []);
  });
});

Deno.test("LocalStorage replaces a file's content on a second commit", async () => {
  await withStorage(async ({ storage }) => {
    await put(storage, "a.txt", "first version");
    const info = await put(storage, "a.txt", "v2");
    assert.equal(info.size, 2);
    assert.equal(await read(storage, "a.txt"), "v2");
    assert.deepEqual(await names(storage), ["a.txt"]);
  });
});

Deno.test("LocalStorage hides an upload in progress from readers and listings", async () => {
  await withStorage(async ({ storage, home }) => {
    await put(storage, "a.txt", "old");
    const upload = await storage.beginUpload(USER, "a.txt");
    await upload.write(encoder.encode("new content"));
    const fresh = await storage.beginUpload(USER, "b.txt");
    await fresh.write(encoder.encode("b"));
    assert.equal(await read(storage, "a.txt"), "old");
    await assertRejectsWith(storage.openRead(USER, "b.txt"), Status.NOT_FOUND);
    assert.deepEqual(await names(storage), ["a.txt"]);
    assert.equal((await partials(home)).length, 2);
    await upload.commit();
    await fresh.commit();
    assert.deepEqual(await names(storage), ["a.txt", "b.txt"]);
  });
});

Deno.test("LocalStorage abort keeps the previous version and leaves nothing in .dfos-partial", async () => {
  await withStorage(async ({ storage, home }) => {
    await put(storage, "a.txt", "previous");
    const upload = await storage.beginUpload(USER, "a.txt");
    await upload.write(encoder.encode("half of a new versi"));
    assert.equal((await partials(home)).length, 1);
    await upload.abort();
    assert.equal(await read(storage, "a.txt"), "previous");
    assert.deepEqual(await partials(home), []);
    await upload.abort(); // twice is harmless
    await assertRejectsWith(upload.write(encoder.encode("more")), Status.ABORTED, "write after abort");
    await assertRejectsWith(upload.commit(), Status.ABORTED, "commit after abort");
    assert.equal(await read(storage, "a.txt"), "previous");

    // An aborted upload of a new name leaves no file at all.
    const fresh = await storage.beginUpload(USER, "new.txt");
    await fresh.write(encoder.encode("x"));
    await fresh.abort();
    assert.equal(await exists(join(home, "new.txt")), false);
    assert.deepEqual(await names(storage), ["a.txt"]);
    assert.deepEqual(await partials(home), []);
  });
});

Deno.test("LocalStorage.abortUploads aborts every upload in progress", async () => {
  await withStorage(async ({ storage, home }) => {
    const uploads = await Promise.all(["a", "b", "c/d"].map((name) => storage.beginUpload(USER, name)));
    for (const upload of uploads) await upload.write(encoder.encode("x"));
    assert.equal((await partials(home)).length, 3);
    await storage.abortUploads();
    assert.deepEqual(await partials(home), []);
    assert.deepEqual(await names(storage), []);
    await assertRejectsWith(uploads[0].commit(), Status.ABORTED);
  });
});

Deno.test("LocalStorage creates the folders of a nested name", async () => {
  await withStorage(async ({ storage, home }) => {
    await put(storage, "a/b/c.txt", "deep");
    assert.ok((await Deno.lstat(join(home, "a"))).isDirectory);
    assert.ok((await Deno.lstat(join(home, "a", "b"))).isDirectory);
    assert.equal(await Deno.readTextFile(join(home, "a", "b", "c.txt")), "deep");
    assert.equal(await read(storage, "a/b/c.txt"), "deep");
    assert.deepEqual(await names(storage), ["a/b/c.txt"]);
  });
});

Deno.test("LocalStorage.remove deletes a file and prunes the folders it leaves empty", async () => {
  await withStorage(async ({ storage, home }) => {
    await put(storage, "a/b/c.txt", "1");
    await put(storage, "a/d.txt", "22");
    const info = await storage.remove(USER, "a/b/c.txt");
    assert.equal(info.name, "a/b/c.txt");
    assert.equal(info.size, 1);
    assert.equal(await exists(join(home, "a", "b")), false, "a/b is empty and should be gone");
    assert.equal(await exists(join(home, "a")), true, "a still holds d.txt");
    await storage.remove(USER, "a/d.txt");
    assert.equal(await exists(join(home, "a")), false);
    assert.equal(await exists(home), true, "the user's folder stays");
    assert.deepEqual(await names(storage), []);
  });
});

Deno.test("LocalStorage.remove refuses a missing file as NOT_FOUND", async () => {
  await withStorage(async ({ storage }) => {
    await assertRejectsWith(storage.remove(USER, "nothing.txt"), Status.NOT_FOUND);
    await assertRejectsWith(storage.remove(USER, "no/such/folder.txt"), Status.NOT_FOUND);
    await assertRejectsWith(storage.openRead(USER, "nothing.txt"), Status.NOT_FOUND);
    await assertRejectsWith(storage.openRead(USER, "no/such/folder.txt"), Status.NOT_FOUND);
  });
});

Deno.test("LocalStorage refuses bad names as BAD_NAME before touching the disk", async () => {
  await withStorage(async ({ storage, home }) => {
    for (const name of ["", "../escape", "/etc/passwd", "a/../../b", `${PARTIAL_DIR}/x`, "a\\b", "a//b"]) {
      await assertRejectsWith(storage.beginUpload(USER, name), Status.BAD_NAME, `beginUpload ${name}`);
      await assertRejectsWith(storage.openRead(USER, name), Status.BAD_NAME, `openRead ${name}`);
      await assertRejectsWith(storage.remove(USER, name), Status.BAD_NAME, `remove ${name}`);
    }
    for (const user of ["", "..", ".dfos-partial", "a/b", "a:b"]) {
      await assertRejectsWith(storage.openRead(user, "a.txt"), Status.BAD_NAME, `user ${user}`);
      await assertRejectsWith(
        storage.list(user, { prefix: "", after: "", limit: 10 }),
        Status.BAD_NAME,
        `list, user ${user}`,
      );
    }
    assert.deepEqual(await partials(home), []);
  });
});

Deno.test("LocalStorage.list sorts names in JavaScript string order across folders", async () => {
  await withStorage(async ({ storage }) => {
    const all = ["a-b", "a/x", "ab", "a.c", "a/y/z", "a0", "a!", "b", "B", "a/x-1", "\u00e9", "a/-"];
    for (const name of all) await put(storage, name, name);
    const expected = [...all].sort();
    assert.deepEqual(expected.slice(0, 5), ["B", "a!", "a-b", "a.c", "a/-"]);
    assert.deepEqual(await names(storage), expected);
  });
});

Deno.test("LocalStorage.list returns sizes and modification times", async () => {
  await withStorage(async ({ storage, home }) => {
    await put(storage, "a.txt", "12345");
    await Deno.utime(join(home, "a.txt"), new Date(), new Date(1_700_000_000_000));
    const page = await storage.list(USER, { prefix: "", after: "", limit: 10 });
    assert.deepEqual(page, { entries: [{ name: "a.txt", size: 5, mtime: 1_700_000_000_000 }], next: null });
  });
});

Deno.test("LocalStorage.list pages with after and limit", async () => {
  await withStorage(async ({ storage }) => {
    const all = ["a-b", "a/x", "ab", "a.c", "a/y/z", "c", "d/e/f"];
    for (const name of all) await put(storage, name, "x");
    const expected = [...all].sort();
    for (const limit of [1, 2, 3, 7, 8]) {
      const seen: string[] = [];
      let after = "";
      for (let pages = 0; pages < 20; pages++) {
        const page = await storage.list(USER, { prefix: "", after, limit });
        assert.ok(page.entries.length <= limit);
        seen.push(...page.entries.map((entry) => entry.name));
        if (page.next === null) break;
        assert.equal(page.next, page.entries.at(-1)?.name);
        after = page.next;
      }
      assert.deepEqual(seen, expected, `limit ${limit}`);
    }
    // `after` need not be an existing name.
    assert.deepEqual(await names(storage, { after: "a." }), ["a.c", "a/x", "a/y/z", "ab", "c", "d/e/f"]);
    assert.deepEqual(await names(storage, { after: "a/x" }), ["a/y/z", "ab", "c", "d/e/f"]);
    assert.deepEqual(await names(storage, { after: "a/" }), ["a/x", "a/y/z", "ab", "c", "d/e/f"]);
    assert.deepEqual(await names(storage, { after: "d/e/f" }), []);
    assert.deepEqual(await names(storage, { after: "zzz" }), []);
  });
});

Deno.test("LocalStorage.list sets next to null when the last page is exactly full", async () => {
  await withStorage(async ({ storage }) => {
    for (const name of ["a", "b", "c", "d"]) await put(storage, name, "x");
    const first = await storage.list(USER, { prefix: "", after: "", limit: 2 });
    assert.deepEqual(first.entries.map((entry) => entry.name), ["a", "b"]);
    assert.equal(first.next, "b");
    const second = await storage.list(USER, { prefix: "", after: "b", limit: 2 });
    assert.deepEqual(second.entries.map((entry) => entry.name), ["c", "d"]);
    assert.equal(second.next, null);
  });
});

Deno.test("LocalStorage.list keeps only names that start with the prefix", async () => {
  await withStorage(async ({ storage }) => {
    for (const name of ["a-b", "a/x", "ab", "a.c", "a/y/z", "b/a", "ba"]) await put(storage, name, "x");
    assert.deepEqual(await names(storage, { prefix: "a" }), ["a-b", "a.c", "a/x", "a/y/z", "ab"]);
    assert.deepEqual(await names(storage, { prefix: "a/" }), ["a/x", "a/y/z"]);
    assert.deepEqual(await names(storage, { prefix: "a/y" }), ["a/y/z"]);
    assert.deepEqual(await names(storage, { prefix: "a." }), ["a.c"]);
    assert.deepEqual(await names(storage, { prefix: "b" }), ["b/a", "ba"]);
    assert.deepEqual(await names(storage, { prefix: "c" }), []);
    assert.deepEqual(await names(storage, { prefix: "a", after: "a.c" }), ["a/x", "a/y/z", "ab"]);
    assert.deepEqual(await names(storage, { prefix: "a/", after: "a/x" }), ["a/y/z"]);
    const page = await storage.list(USER, { prefix: "a", after: "", limit: 2 });
    assert.deepEqual(page.entries.map((entry) => entry.name), ["a-b", "a.c"]);
    assert.equal(page.next, "a.c");
    assert.deepEqual(await names(storage, { prefix: "a", after: page.next! }), ["a/x", "a/y/z", "ab"]);
  });
});

Deno.test("LocalStorage.list hides .dfos-partial, symbolic links and what lies behind them", async () => {
  await withStorage(async ({ storage, home, outside }) => {
    await put(storage, "visible.txt", "x");
    await put(storage, "dir/inside.txt", "x");
    const pending = await storage.beginUpload(USER, "pending.txt");
    await pending.write(encoder.encode("x"));
    await Deno.writeTextFile(join(outside, "secret.txt"), "secret");
    await Deno.mkdir(join(outside, "folder"));
    await Deno.writeTextFile(join(outside, "folder", "x"), "secret");
    await Deno.symlink(join(outside, "secret.txt"), join(home, "file-link"));
    await Deno.symlink(join(outside, "folder"), join(home, "folder-link"));
    await Deno.symlink(join(home, "visible.txt"), join(home, "dir", "inner-link"));
    await Deno.symlink("nowhere", join(home, "dangling"));
    assert.ok(await exists(join(home, PARTIAL_DIR)));
    assert.deepEqual(await names(storage), ["dir/inside.txt", "visible.txt"]);
    assert.deepEqual(await names(storage, { prefix: "folder-link/" }), []);
    assert.deepEqual(await names(storage, { prefix: ".dfos-" }), []);
    await pending.abort();
  });
});

Deno.test("LocalStorage refuses to read, remove, list or write through a symbolic link to a file outside", async () => {
  await withStorage(async ({ storage, home, outside }) => {
    const secret = join(outside, "secret.txt");
    await Deno.writeTextFile(secret, "secret");
    await Deno.symlink(secret, join(home, "link"));

    await assertRejectsWith(storage.openRead(USER, "link"), Status.FORBIDDEN, "openRead");
    await assertRejectsWith(storage.remove(USER, "link"), Status.FORBIDDEN, "remove");
    assert.deepEqual(await names(storage), []);
    // As a folder on the way, the link is refused too.
    await assertRejectsWith(storage.openRead(USER, "link/x"), Status.FORBIDDEN, "openRead link/x");
    await putExpectingRefusal(storage, "link/x", "overwritten", Status.FORBIDDEN);

    assert.equal(await Deno.readTextFile(secret), "secret");
    assert.ok((await Deno.lstat(join(home, "link"))).isSymlink, "the link itself is left alone");
    assert.deepEqual(await partials(home), []);
  });
});

Deno.test("LocalStorage replaces a symbolic link on upload instead of writing through it", async () => {
  await withStorage(async ({ storage, home, outside }) => {
    const secret = join(outside, "secret.txt");
    await Deno.writeTextFile(secret, "secret");
    await Deno.symlink(secret, join(home, "link"));
    try {
      await put(storage, "link", "overwritten");
    } catch (error) {
      // Refusing is as good as replacing; writing through is not.
      assert.ok(error instanceof DfosError, String(error));
    }
    assert.equal(await Deno.readTextFile(secret), "secret");
    assert.deepEqual(await partials(home), []);
  });
});

Deno.test("LocalStorage refuses to read, remove, list or write through a symbolic link to a folder outside", async () => {
  await withStorage(async ({ storage, home, outside }) => {
    const folder = join(outside, "folder");
    await Deno.mkdir(folder);
    await Deno.writeTextFile(join(folder, "x"), "secret");
    await Deno.symlink(folder, join(home, "link"));

    await assertRejectsWith(storage.openRead(USER, "link/x"), Status.FORBIDDEN, "openRead");
    await assertRejectsWith(storage.remove(USER, "link/x"), Status.FORBIDDEN, "remove");
    await putExpectingRefusal(storage, "link/x", "overwritten", Status.FORBIDDEN);
    await putExpectingRefusal(storage, "link/new.txt", "planted", Status.FORBIDDEN);
    await putExpectingRefusal(storage, "link/sub/new.txt", "planted", Status.FORBIDDEN);
    assert.deepEqual(await names(storage), []);
    assert.deepEqual(await names(storage, { prefix: "link/" }), []);
    await assertRejectsWith(storage.openRead(USER, "link"), Status.FORBIDDEN, "openRead of the link");
    await assertRejectsWith(storage.remove(USER, "link"), Status.FORBIDDEN, "remove of the link");

    assert.equal(await Deno.readTextFile(join(folder, "x")), "secret");
    assert.deepEqual((await Array.fromAsync(Deno.readDir(folder))).map((entry) => entry.name), ["x"]);
    assert.deepEqual(await partials(home), []);
  });
});

Deno.test("LocalStorage refuses a symbolic link deeper in the path", async () => {
  await withStorage(async ({ storage, home, outside }) => {
    await Deno.writeTextFile(join(outside, "x"), "secret");
    await put(storage, "a/b/keep.txt", "mine");
    await Deno.symlink(outside, join(home, "a", "b", "link"));
    await assertRejectsWith(storage.openRead(USER, "a/b/link/x"), Status.FORBIDDEN, "openRead");
    await assertRejectsWith(storage.remove(USER, "a/b/link/x"), Status.FORBIDDEN, "remove");
    await putExpectingRefusal(storage, "a/b/link/x", "overwritten", Status.FORBIDDEN);
    assert.equal(await Deno.readTextFile(join(outside, "x")), "secret");
    assert.deepEqual(await names(storage), ["a/b/keep.txt"]);
  });
});

Deno.test("LocalStorage.prepareUser refuses a user folder that is a symbolic link", async () => {
  await withStorage(async ({ storage, root, outside }) => {
    await Deno.symlink(outside, join(root, "mallory"));
    await assert.rejects(storage.prepareUser("mallory"));
  });
});

Deno.test("LocalStorage refuses every operation when the user's own folder is a symbolic link", async () => {
  // The module promises that "a symbolic link anywhere on the path is refused", and the Storage
  // interface that each method checks for itself; ROOT/<user> is on every path. Here the user's
  // folder was replaced by a link after login (prepareUser), or prepareUser was never called.
  await withStorage(async ({ storage, root, outside }) => {
    await Deno.writeTextFile(join(outside, "x"), "secret");
    await Deno.symlink(outside, join(root, "mallory"));
    const results: string[] = [];
    const attempt = async (what: string, operation: () => Promise<unknown>) => {
      try {
        await operation();
        results.push(`${what}: allowed`);
      } catch (error) {
        results.push(`${what}: ${error instanceof DfosError ? statusName(error.code) : String(error)}`);
      }
    };
    await attempt("openRead", async () => (await storage.openRead("mallory", "x")).close());
    await attempt("list", async () => {
      const page = await storage.list("mallory", { prefix: "", after: "", limit: 10 });
      if (page.entries.length === 0) throw new Error("nothing listed");
    });
    await attempt("put", async () => {
      const upload = await storage.beginUpload("mallory", "planted");
      await upload.write(encoder.encode("planted"));
      await upload.commit();
    });
    await attempt("remove", () => storage.remove("mallory", "x"));
    assert.deepEqual(results, [
      "openRead: FORBIDDEN",
      "list: FORBIDDEN",
      "put: FORBIDDEN",
      "remove: FORBIDDEN",
    ]);
    assert.deepEqual((await Array.fromAsync(Deno.readDir(outside))).map((entry) => entry.name), ["x"]);
  });
});

Deno.test("LocalStorage refuses uploads when .dfos-partial is a symbolic link, and writes nothing through it", async () => {
  await withStorage(async ({ storage, home, outside }) => {
    await Deno.symlink(outside, join(home, PARTIAL_DIR));
    await assert.rejects(storage.beginUpload(USER, "a.txt"));
    assert.deepEqual(await Array.fromAsync(Deno.readDir(outside)), []);
  });
});

Deno.test("LocalStorage.open removes a .dfos-partial symbolic link without touching its target", async () => {
  const base = await Deno.makeTempDir({ prefix: "dfos-storage-" });
  try {
    const root = join(base, "root");
    const outside = join(base, "outside");
    await Deno.mkdir(join(root, USER), { recursive: true });
    await Deno.mkdir(outside);
    await Deno.writeTextFile(join(outside, "keep.txt"), "keep");
    await Deno.symlink(outside, join(root, USER, PARTIAL_DIR));
    await LocalStorage.open(root);
    assert.equal(await Deno.readTextFile(join(outside, "keep.txt")), "keep");
    assert.equal(await exists(join(root, USER, PARTIAL_DIR)), false);
  } finally {
    await Deno.remove(base, { recursive: true });
  }
});

Deno.test("LocalStorage refuses a path whose folder is a file as CONFLICT", async () => {
  await withStorage(async ({ storage, home }) => {
    await put(storage, "a", "a file");
    await putExpectingRefusal(storage, "a/b", "x", Status.CONFLICT);
    await putExpectingRefusal(storage, "a/b/c", "x", Status.CONFLICT);
    await assertRejectsWith(storage.openRead(USER, "a/b"), Status.CONFLICT, "openRead");
    await assertRejectsWith(storage.remove(USER, "a/b"), Status.CONFLICT, "remove");
    assert.equal(await read(storage, "a"), "a file");
    assert.deepEqual(await partials(home), []);
  });
});

Deno.test("LocalStorage refuses to replace, read or remove a folder as CONFLICT", async () => {
  await withStorage(async ({ storage, home }) => {
    await put(storage, "dir/x", "x");
    await putExpectingRefusal(storage, "dir", "x", Status.CONFLICT);
    await assertRejectsWith(storage.openRead(USER, "dir"), Status.CONFLICT, "openRead");
    await assertRejectsWith(storage.remove(USER, "dir"), Status.CONFLICT, "remove");
    assert.equal(await read(storage, "dir/x"), "x");
    assert.deepEqual(await partials(home), []);
  });
});

Deno.test("LocalStorage.openRead reads at most the limit and reports the file's facts", async () => {
  await withStorage(async ({ storage }) => {
    await put(storage, "a.txt", "0123456789");
    assert.equal(await read(storage, "a.txt", 4), "0123");
    assert.equal(await read(storage, "a.txt", 0), "");
    assert.equal(await read(storage, "a.txt", 100), "0123456789");
    const handle = await storage.openRead(USER, "a.txt");
    try {
      assert.equal(handle.info.name, "a.txt");
      assert.equal(handle.info.size, 10);
    } finally {
      handle.close();
      handle.close(); // twice is harmless
    }
  });
});

Deno.test("LocalStorage.openRead keeps reading the version it opened after a replace", async () => {
  await withStorage(async ({ storage }) => {
    await put(storage, "a.txt", "version one");
    const handle = await storage.openRead(USER, "a.txt");
    try {
      await put(storage, "a.txt", "version two, longer");
      const chunks = await Array.fromAsync(handle.read());
      assert.equal(chunks.map((chunk) => decoder.decode(bytesOf(chunk))).join(""), "version one");
    } finally {
      handle.close();
    }
  });
});

Deno.test("LocalStorage.open removes leftover .dfos-partial folders from a previous run", async () => {
  const base = await Deno.makeTempDir({ prefix: "dfos-storage-" });
  try {
    const root = join(base, "root");
    for (const user of ["alice", "bob"]) {
      await Deno.mkdir(join(root, user, PARTIAL_DIR), { recursive: true });
      await Deno.writeTextFile(join(root, user, PARTIAL_DIR, "1234.part"), "half");
      await Deno.writeTextFile(join(root, user, "kept.txt"), "kept");
    }
    await Deno.writeTextFile(join(root, "stray-file"), "not a user folder");
    const storage = await LocalStorage.open(root);
    for (const user of ["alice", "bob"]) {
      assert.equal(await exists(join(root, user, PARTIAL_DIR)), false, user);
      assert.equal(await Deno.readTextFile(join(root, user, "kept.txt")), "kept");
    }
    assert.equal(await exists(join(root, "stray-file")), true);
    assert.deepEqual(await names(storage), ["kept.txt"]);
  } finally {
    await Deno.remove(base, { recursive: true });
  }
});

Deno.test("LocalStorage.open creates a missing root and stores its real path", async () => {
  const base = await Deno.makeTempDir({ prefix: "dfos-storage-" });
  try {
    await Deno.mkdir(join(base, "real"));
    await Deno.symlink(join(base, "real"), join(base, "alias"));
    const storage = await LocalStorage.open(join(base, "alias", "new", "root"));
    assert.equal(storage.root, join(await Deno.realPath(base), "real", "new", "root"));
    assert.ok((await Deno.stat(storage.root)).isDirectory);
  } finally {
    await Deno.remove(base, { recursive: true });
  }
});

Deno.test("LocalStorage with fsync commits uploads the same way", async () => {
  const base = await Deno.makeTempDir({ prefix: "dfos-storage-" });
  try {
    const storage = await LocalStorage.open(base, { fsync: true });
    await storage.prepareUser(USER);
    await put(storage, "a/b.txt", "durable");
    assert.equal(await read(storage, "a/b.txt"), "durable");
  } finally {
    await Deno.remove(base, { recursive: true });
  }
});

Deno.test("LocalStorage does not read or list a file with more than one hard link, but replaces or removes it", async () => {
  await withStorage(async ({ storage, home, outside }) => {
    const secret = join(outside, "secret.txt");
    await Deno.writeTextFile(secret, "secret");
    await Deno.link(secret, join(home, "a"));
    await Deno.link(secret, join(home, "b"));
    await Deno.mkdir(join(home, "dir"));
    await Deno.link(secret, join(home, "dir", "c"));
    await put(storage, "own.txt", "mine");
    for (const name of ["a", "b", "dir/c"]) {
      await assertRejectsWith(storage.openRead(USER, name), Status.FORBIDDEN, `openRead ${name}`);
    }
    assert.deepEqual(await names(storage), ["own.txt"]);
    // An upload replaces the name: the other name's content stays as it was.
    await put(storage, "a", "replaced");
    assert.equal(await read(storage, "a"), "replaced");
    // Removing unlinks only the name in the user's folder.
    assert.equal((await storage.remove(USER, "b")).size, 6);
    assert.equal((await storage.remove(USER, "dir/c")).size, 6);
    assert.equal(await exists(join(home, "dir")), false);
    assert.equal(await Deno.readTextFile(secret), "secret");
    assert.equal((await Deno.lstat(secret)).nlink, 1);
    // A file of the user's own whose extra link is gone is served again.
    await Deno.link(join(home, "own.txt"), join(outside, "extra"));
    await assertRejectsWith(storage.openRead(USER, "own.txt"), Status.FORBIDDEN, "openRead with an extra link");
    await Deno.remove(join(outside, "extra"));
    assert.equal(await read(storage, "own.txt"), "mine");
  });
});

Deno.test("LocalStorage refuses to commit when the user's folder was replaced during the upload", async () => {
  await withStorage(async ({ storage, root, home, outside }) => {
    for (const name of ["a.txt", "sub/a.txt"]) {
      const upload = await storage.beginUpload(USER, name);
      await upload.write(encoder.encode("data"));
      // Moved away and a link put in its place: to the moved folder itself, or to a folder outside.
      const moved = join(outside, "moved");
      await Deno.rename(home, moved);
      await Deno.symlink(name === "a.txt" ? moved : outside, home);
      await assertRejectsWith(upload.commit(), Status.FORBIDDEN, `commit ${name}`);
      assert.deepEqual((await Array.fromAsync(Deno.readDir(outside))).map((entry) => entry.name), ["moved"]);
      // Its own temporary file is removed where the old path still leads to it; else it stays in the moved folder.
      assert.equal((await partials(moved)).length, name === "a.txt" ? 0 : 1, name);
      await Deno.remove(home);
      await Deno.rename(moved, home);
    }
    // Replaced by another real folder: not the folder the upload began in either.
    const upload = await storage.beginUpload(USER, "a.txt");
    await upload.write(encoder.encode("data"));
    await Deno.rename(home, join(root, "old-home"));
    await Deno.mkdir(join(home, PARTIAL_DIR), { recursive: true });
    await assertRejectsWith(upload.commit(), Status.FORBIDDEN, "commit into another folder");
    assert.deepEqual((await Array.fromAsync(Deno.readDir(home))).map((entry) => entry.name), [PARTIAL_DIR]);
    assert.deepEqual(await partials(home), []);
  });
});

Deno.test("LocalStorage neither moves in nor deletes a file that took the place of an upload's temporary file", async () => {
  await withStorage(async ({ storage, home, outside }) => {
    for (const ending of ["commit", "abort"] as const) {
      const upload = await storage.beginUpload(USER, "a.txt");
      await upload.write(encoder.encode("data"));
      const [temp] = await partials(home);
      // .dfos-partial swapped for a link to a folder outside that holds a file of the same name.
      const bait = join(outside, "bait");
      await Deno.mkdir(bait);
      await Deno.writeTextFile(join(bait, temp), "outside");
      await Deno.rename(join(home, PARTIAL_DIR), join(outside, "moved-partial"));
      await Deno.symlink(bait, join(home, PARTIAL_DIR));
      if (ending === "commit") await assertRejectsWith(upload.commit(), Status.FORBIDDEN, "commit");
      else await upload.abort();
      assert.equal(await Deno.readTextFile(join(bait, temp)), "outside", ending);
      assert.equal(await exists(join(home, "a.txt")), false, ending);
      await Deno.remove(join(home, PARTIAL_DIR));
      await Deno.remove(outside, { recursive: true });
      await Deno.mkdir(outside);
    }
    // The temporary file itself replaced, inside the real .dfos-partial.
    const upload = await storage.beginUpload(USER, "a.txt");
    await upload.write(encoder.encode("data"));
    const [temp] = await partials(home);
    await Deno.remove(join(home, PARTIAL_DIR, temp));
    await Deno.writeTextFile(join(home, PARTIAL_DIR, temp), "someone else's");
    await assertRejectsWith(upload.commit(), Status.FORBIDDEN, "commit of a replaced temporary file");
    assert.equal(await Deno.readTextFile(join(home, PARTIAL_DIR, temp)), "someone else's");
    assert.equal(await exists(join(home, "a.txt")), false);
  });
});

Deno.test("LocalStorage.usage counts files and folders as du does, and neither links, special files nor uploads", async () => {
  await withStorage(async ({ storage, home, outside }) => {
    assert.deepEqual(await storage.usage(USER), { bytes: 0, entries: 0 });
    await put(storage, "a.txt", "12345");
    await put(storage, "deep/er/b.txt", "x".repeat(BLOCK_BYTES + 1));
    await put(storage, "empty.txt", "");
    await Deno.writeTextFile(join(outside, "big.txt"), "x".repeat(1000));
    await Deno.symlink(join(outside, "big.txt"), join(home, "link.txt"));
    await Deno.symlink(outside, join(home, "linked-folder"));
    const upload = await storage.beginUpload(USER, "pending.txt");
    await upload.write(encoder.encode("x".repeat(100)));
    // a.txt and empty.txt one block each, b.txt two, the folders deep and deep/er one each.
    assert.deepEqual(await storage.usage(USER), { bytes: 6 * BLOCK_BYTES, entries: 5 });
    await upload.abort();
    // An rm says how many folders it pruned.
    assert.equal((await storage.remove(USER, "deep/er/b.txt")).folders, 2);
    assert.deepEqual(await storage.usage(USER), { bytes: 2 * BLOCK_BYTES, entries: 2 });
  });
});

Deno.test("LocalStorage.stat gives a regular file's facts, null for nothing, a folder or a link", async () => {
  await withStorage(async ({ storage, home, outside }) => {
    await put(storage, "a/b.txt", "12345");
    assert.equal((await storage.stat(USER, "a/b.txt"))?.size, 5);
    assert.equal(await storage.stat(USER, "a/none.txt"), null);
    assert.equal(await storage.stat(USER, "none/b.txt"), null);
    assert.equal(await storage.stat(USER, "a"), null);
    await Deno.symlink(join(outside), join(home, "out"));
    await Deno.symlink(join(home, "a", "b.txt"), join(home, "link.txt"));
    assert.equal(await storage.stat(USER, "link.txt"), null);
    await assertRejectsWith(storage.stat(USER, "out/x.txt"), Status.FORBIDDEN, "through a link");
    await assertRejectsWith(storage.stat(USER, "a/b.txt/c"), Status.CONFLICT, "through a file");
    await assertRejectsWith(storage.stat(USER, "../x"), Status.BAD_NAME, "bad name");
  });
});

Deno.test("LocalStorage commit tells admit the file it replaces and the folders it creates; a refusal there leaves nothing", async () => {
  await withStorage(async ({ storage, home }) => {
    const seen: CommitChange[] = [];
    const commit = async (name: string, text: string, admit: (change: CommitChange) => void) => {
      const upload = await storage.beginUpload(USER, name);
      await upload.write(encoder.encode(text));
      return await upload.commit({ admit });
    };
    await commit("a.txt", "12345", (change) => seen.push(change));
    await commit("a.txt", "123", (change) => seen.push(change));
    await commit("b/c/d.txt", "", (change) => seen.push(change));
    await commit("b/e.txt", "", (change) => seen.push(change));
    assert.deepEqual(seen, [
      { replaced: null, folders: 0 },
      { replaced: 5, folders: 0 },
      { replaced: null, folders: 2 },
      { replaced: null, folders: 0 },
    ]);
    const refuse = () => {
      throw new DfosError(Status.TOO_LARGE, "no room");
    };
    await assertRejectsWith(commit("a.txt", "1234567", refuse), Status.TOO_LARGE, "refused by admit");
    assert.equal(await read(storage, "a.txt"), "123");
    // The folders made for a refused commit are gone again.
    await assertRejectsWith(commit("x/y/z.txt", "1", refuse), Status.TOO_LARGE, "refused by admit");
    await assertRejectsWith(commit("b/f/g.txt", "1", refuse), Status.TOO_LARGE, "refused by admit");
    assert.equal(await exists(join(home, "x")), false);
    assert.equal(await exists(join(home, "b", "f")), false);
    assert.equal(await exists(join(home, "b", "c")), true);
    assert.deepEqual(await partials(home), []);
  });
});

Deno.test("LocalStorage refuses reserved names in any case, which a case-insensitive file system would take for .dfos-partial", async () => {
  await withStorage(async ({ storage, home }) => {
    for (const name of [".DFOS-partial/x", ".Dfos-Partial", "a/.dFoS-x", ".dfo\u017f-partial/x"]) {
      await putExpectingRefusal(storage, name, "x", Status.BAD_NAME);
      await assertRejectsWith(storage.openRead(USER, name), Status.BAD_NAME, name);
      await assertRejectsWith(storage.remove(USER, name), Status.BAD_NAME, name);
    }
    // Entries so named (planted on the disk) are the server's own: neither listed nor counted.
    await Deno.mkdir(join(home, ".DFOS-x"));
    await Deno.writeTextFile(join(home, ".DFOS-x", "f"), "x");
    assert.deepEqual(await names(storage), []);
    assert.deepEqual(await storage.usage(USER), { bytes: 0, entries: 0 });
  });
});

Deno.test("LocalStorage refuses an upload to a folder's name, or through a file or a link, when it begins", async () => {
  await withStorage(async ({ storage, home, outside }) => {
    await put(storage, "dir/x", "x");
    await put(storage, "file", "f");
    await Deno.symlink(outside, join(home, "link"));
    await assertRejectsWith(storage.beginUpload(USER, "dir"), Status.CONFLICT, "a folder's name");
    await assertRejectsWith(storage.beginUpload(USER, "file/x"), Status.CONFLICT, "through a file");
    await assertRejectsWith(storage.beginUpload(USER, "dir/x/y/z"), Status.CONFLICT, "deeper through a file");
    await assertRejectsWith(storage.beginUpload(USER, "link/x"), Status.FORBIDDEN, "through a link");
    assert.deepEqual(await partials(home), []);
    assert.deepEqual(await Array.fromAsync(Deno.readDir(outside)), []);
  });
});

Deno.test("LocalStorage still refuses at the commit a folder made at the name while the upload was under way", async () => {
  await withStorage(async ({ storage, home }) => {
    for (const [name, made] of [["a", "a/x"], ["b/c", "b"]]) {
      const upload = await storage.beginUpload(USER, name);
      await upload.write(encoder.encode("data"));
      if (made === "b") await Deno.writeTextFile(join(home, made), "a file");
      else await Deno.mkdir(join(home, made), { recursive: true });
      await assertRejectsWith(upload.commit(), Status.CONFLICT, `commit of "${name}"`);
    }
    assert.deepEqual(await partials(home), []);
  });
});

Deno.test("LocalStorage replaces and removes large files off the event loop, and leaves nothing in .dfos-partial", async () => {
  await withStorage(async ({ storage, home }) => {
    const large = "x".repeat(LARGE_FILE_BYTES + 1);
    await put(storage, "big", large);
    await put(storage, "big", large + "y");
    assert.equal((await storage.stat(USER, "big"))?.size, large.length + 1);
    await put(storage, "big", "small");
    assert.equal(await read(storage, "big"), "small");
    await put(storage, "deep/big", large);
    const removed = await storage.remove(USER, "deep/big");
    assert.deepEqual([removed.size, removed.folders], [large.length, 1]);
    assert.equal(await exists(join(home, "deep")), false);
    assert.deepEqual(await partials(home), []);
    assert.deepEqual(await storage.usage(USER), { bytes: BLOCK_BYTES, entries: 1 });
  });
});

Deno.test("LocalStorage commits one user's uploads to one name one at a time: each admit sees the file it replaces", async () => {
  await withStorage(async ({ storage }) => {
    const sizes = [32 * LARGE_FILE_BYTES, 32 * LARGE_FILE_BYTES + 1, 10, 32 * LARGE_FILE_BYTES + 2];
    const uploads = await Promise.all(sizes.map(() => storage.beginUpload(USER, "same")));
    await Promise.all(uploads.map((upload, i) => upload.write(new Uint8Array(sizes[i]))));
    // Committed together: with the renames of large files off the event loop and not queued, several saw no file.
    const seen: { replaced: number | null; size: number }[] = [];
    await Promise.all(
      uploads.map((upload, i) =>
        upload.commit({ admit: (change) => void seen.push({ replaced: change.replaced, size: sizes[i] }) })
      ),
    );
    // In the order they went in, each replaced the one before it.
    assert.deepEqual(seen.map((step) => step.replaced), [null, ...seen.slice(0, -1).map((step) => step.size)]);
    assert.equal((await storage.stat(USER, "same"))?.size, seen[seen.length - 1].size);
  });
});
