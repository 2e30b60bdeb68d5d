import { deepStrictEqual, strictEqual, throws } from "node:assert/strict";
import { DfosError, Status } from "../shared/status.ts";
import { Quota } from "./quota.ts";
import type { FileInfo, Removed, Storage } from "./storage.ts";

/**
 * A storage that knows only sizes, in blocks of one byte (so a file takes its
 * size, an empty one 1): what Quota asks of it. Counts its usage walks.
 */
function sizes(files: Record<string, number>): Storage & { walks: number } {
  const storage = {
    walks: 0,
    blockSize: 1,
    usage: async () => {
      storage.walks++;
      await Promise.resolve();
      const all = Object.values(files);
      return { bytes: all.reduce((sum, size) => sum + Math.max(1, size), 0), entries: all.length };
    },
    stat: (_user: string, name: string): Promise<FileInfo | null> =>
      Promise.resolve(name in files ? { name, size: files[name], mtime: 0 } : null),
  };
  return storage as unknown as Storage & { walks: number };
}

/** What an rm of a file of `size` that pruned no folder returns. */
function removed(name: string, size: number): Removed {
  return { name, size, mtime: 0, folders: 0 };
}

const NEW = { replaced: null, folders: 0 };

/** The usage figures of a user with `entries` files and folders. */
function usage(used: number, reserved: number, entries: [number, number]) {
  return { used: { bytes: used, entries: entries[0] }, reserved: { bytes: reserved, entries: entries[1] } };
}

function isTooLarge(message: string) {
  return (error: unknown) => error instanceof DfosError && error.code === Status.TOO_LARGE && error.message === message;
}

Deno.test("Quota without a quota counts nothing and checks only the largest file", async () => {
  const storage = sizes({ "a.bin": 10 });
  const quota = new Quota(storage, { maxFileBytes: 100 });
  const allowance = await quota.reserve("alice", "b.bin", 100);
  allowance.receive(100);
  allowance.admit(NEW);
  allowance.committed();
  await throwsAsync(
    quota.reserve("alice", "c.bin", 101),
    `Cannot store "c.bin": its 101 bytes are over this server's largest file size of 100 bytes`,
  );
  const unknown = await quota.reserve("alice", "d.bin", null);
  unknown.receive(100);
  throws(
    () => unknown.receive(101),
    isTooLarge(`Cannot store "d.bin": the upload went over this server's largest file size of 100 bytes`),
  );
  strictEqual(storage.walks, 0);
  strictEqual(quota.usage("alice"), null);
});

Deno.test("Quota counts a user's files once, however many requests ask at the same time", async () => {
  const storage = sizes({ "a.bin": 300, "b.bin": 200 });
  const quota = new Quota(storage, { quotaBytes: 1000, quotaEntries: 100 });
  const allowances = await Promise.all([
    quota.reserve("alice", "c.bin", 100),
    quota.reserve("alice", "d.bin", 100),
    quota.ready("alice"),
  ]);
  strictEqual(storage.walks, 1);
  deepStrictEqual(quota.usage("alice"), usage(500, 200, [2, 2]));
  for (const allowance of allowances) allowance?.release();
  deepStrictEqual(quota.usage("alice"), usage(500, 0, [2, 0]));
  strictEqual(quota.usage("bob"), null);
});

Deno.test("Quota reserves an announced size at once: of two uploads that each fit alone, only one fits both", async () => {
  const quota = new Quota(sizes({ "base.bin": 400 }), { quotaBytes: 1000, quotaEntries: 100 });
  const first = await quota.reserve("alice", "x.bin", 600);
  await throwsAsync(
    quota.reserve("alice", "y.bin", 600),
    `Cannot store "y.bin": it would go over alice's quota of 1000 bytes (it adds 600 bytes; 0 bytes are free)`,
  );
  first.receive(600);
  first.admit(NEW);
  first.committed();
  deepStrictEqual(quota.usage("alice"), usage(1000, 0, [2, 0]));
  quota.removed("alice", removed("x.bin", 600));
  deepStrictEqual(quota.usage("alice"), usage(400, 0, [1, 0]));
});

Deno.test("Quota holds a replacement's whole size while it arrives, and counts only the difference once committed", async () => {
  const quota = new Quota(sizes({ "a.bin": 800 }), { quotaBytes: 2000, quotaEntries: 100 });
  // 1000 in place of 800: the new copy needs its own 1000 beside the old until the commit.
  const grow = await quota.reserve("alice", "a.bin", 1000);
  deepStrictEqual(quota.usage("alice"), usage(800, 1000, [1, 1]));
  grow.receive(1000);
  await throwsAsync(
    quota.reserve("alice", "b.bin", 201),
    `Cannot store "b.bin": it would go over alice's quota of 2000 bytes (it adds 201 bytes; 200 bytes are free)`,
  );
  grow.admit({ replaced: 800, folders: 0 });
  grow.committed();
  deepStrictEqual(quota.usage("alice"), usage(1000, 0, [1, 0]));
  // Meanwhile deleted: the commit replaces nothing, and counts the whole file.
  const again = await quota.reserve("alice", "a.bin", 500);
  quota.removed("alice", removed("a.bin", 1000));
  again.receive(500);
  again.admit({ replaced: null, folders: 0 });
  again.committed();
  deepStrictEqual(quota.usage("alice"), usage(500, 0, [1, 0]));
  // A smaller version gives bytes back; a commit's new folders are counted.
  const shrink = await quota.reserve("alice", "a.bin", 100);
  shrink.receive(100);
  shrink.admit({ replaced: 500, folders: 0 });
  shrink.committed();
  deepStrictEqual(quota.usage("alice"), usage(100, 0, [1, 0]));
  const nested = await quota.reserve("alice", "c/d/e.bin", 100);
  nested.receive(100);
  nested.admit({ replaced: null, folders: 2 });
  nested.committed();
  deepStrictEqual(quota.usage("alice"), usage(202, 0, [4, 0]));
  quota.removed("alice", { name: "c/d/e.bin", size: 100, mtime: 0, folders: 2 });
  deepStrictEqual(quota.usage("alice"), usage(100, 0, [1, 0]));
});

Deno.test("Quota takes the bytes of an upload of unknown size as they arrive, and cuts it the moment it goes over", async () => {
  const quota = new Quota(sizes({ "a.bin": 100 }), { quotaBytes: 1000, quotaEntries: 100 });
  const first = await quota.reserve("alice", "a.bin", null);
  const second = await quota.reserve("alice", "b.bin", null);
  deepStrictEqual(quota.usage("alice"), usage(100, 2, [1, 2])); // each, empty so far, takes its one block
  first.receive(500);
  second.receive(400);
  deepStrictEqual(quota.usage("alice"), usage(100, 900, [1, 2]));
  throws(
    () => second.receive(401),
    isTooLarge(`Cannot store "b.bin": the upload went over alice's quota of 1000 bytes`),
  );
  // What the cut upload held is free for the other at once, before it has unwound.
  deepStrictEqual(quota.usage("alice"), usage(100, 500, [1, 1]));
  first.receive(900);
  first.admit({ replaced: 100, folders: 0 });
  first.committed();
  second.release();
  deepStrictEqual(quota.usage("alice"), usage(900, 0, [1, 0]));
});

Deno.test("Quota gives twenty uploads replacing one file at once no more room than the quota leaves free", async () => {
  const quota = new Quota(sizes({ "a.bin": 1000 }), { quotaBytes: 2100, quotaEntries: 100 });
  const first = await quota.reserve("alice", "a.bin", 1000);
  deepStrictEqual(quota.usage("alice"), usage(1000, 1000, [1, 1]));
  for (let i = 0; i < 19; i++) {
    await throwsAsync(
      quota.reserve("alice", "a.bin", 1000),
      `Cannot store "a.bin": it would go over alice's quota of 2100 bytes (it adds 1000 bytes; 100 bytes are free)`,
    );
  }
  // Of unknown size, the others are cut as soon as they pass what is free.
  const unknown = await quota.reserve("alice", "a.bin", null);
  unknown.receive(100);
  throws(
    () => unknown.receive(101),
    isTooLarge(`Cannot store "a.bin": the upload went over alice's quota of 2100 bytes`),
  );
  deepStrictEqual(quota.usage("alice"), usage(1000, 1000, [1, 1]));
  // Once the first is done, the next one fits.
  first.release();
  const next = await quota.reserve("alice", "a.bin", 1000);
  deepStrictEqual(quota.usage("alice"), usage(1000, 1000, [1, 1]));
  next.release();
});

Deno.test("Quota counts files and folders: empty files take a block and an entry, and the limit refuses more", async () => {
  const quota = new Quota(sizes({ "a.bin": 10 }), { quotaBytes: 1000, quotaEntries: 3 });
  const empty = await quota.reserve("alice", "e1", 0);
  empty.admit({ replaced: null, folders: 1 });
  empty.committed();
  deepStrictEqual(quota.usage("alice"), usage(12, 0, [3, 0]));
  await throwsAsync(
    quota.reserve("alice", "e2", 0),
    `Cannot store "e2": alice has reached the limit of 3 files and folders`,
  );
  await throwsAsync(
    quota.reserve("alice", "e3", null),
    `Cannot store "e3": alice has reached the limit of 3 files and folders`,
  );
  // Replacing a file needs an entry while it arrives (its temporary file), and gives it back at the commit.
  await throwsAsync(
    quota.reserve("alice", "a.bin", 20),
    `Cannot store "a.bin": alice has reached the limit of 3 files and folders`,
  );
  quota.removed("alice", removed("e1", 0));
  const replace = await quota.reserve("alice", "a.bin", 20);
  replace.receive(20);
  replace.admit({ replaced: 10, folders: 0 });
  replace.committed();
  // A commit that would create a folder is refused at the last check.
  const nested = await quota.reserve("alice", "f/g", 0);
  throws(
    () => nested.admit({ replaced: null, folders: 1 }),
    isTooLarge(`Cannot store "f/g": alice has reached the limit of 3 files and folders`),
  );
  deepStrictEqual(quota.usage("alice"), usage(21, 0, [2, 0]));
});

Deno.test("Quota limits files and folders to one per 16 KiB of quota by default, and not at all without a quota", () => {
  strictEqual(new Quota(sizes({}), { quotaBytes: 1024 * 1024 * 1024 }).quotaEntries, 65_536);
  strictEqual(new Quota(sizes({}), { quotaBytes: 1000 }).quotaEntries, 1);
  strictEqual(new Quota(sizes({}), { quotaBytes: 1000, quotaEntries: 0 }).quotaEntries, 0);
  strictEqual(new Quota(sizes({}), {}).quotaEntries, 0);
  strictEqual(new Quota(sizes({}), { quotaEntries: 5 }).quotaEntries, 5);
});

async function throwsAsync(promise: Promise<unknown>, message: string): Promise<void> {
  const error = await promise.then(() => null, (error) => error);
  strictEqual(isTooLarge(message)(error), true, `expected TOO_LARGE "${message}", got ${error}`);
}
