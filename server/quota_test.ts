import { deepStrictEqual, strictEqual, throws } from "node:assert/strict";
import { DfosError, Status } from "../shared/status.ts";
import { Quota } from "./quota.ts";
import type { FileInfo, Storage } from "./storage.ts";

/** A storage that knows only sizes: what Quota asks of it. Counts its usage walks. */
function sizes(files: Record<string, number>): Storage & { walks: number } {
  const storage = {
    walks: 0,
    usage: async () => {
      storage.walks++;
      await Promise.resolve();
      return Object.values(files).reduce((sum, size) => sum + size, 0);
    },
    stat: (_user: string, name: string): Promise<FileInfo | null> =>
      Promise.resolve(name in files ? { name, size: files[name], mtime: 0 } : null),
  };
  return storage as unknown as Storage & { walks: number };
}

function isTooLarge(message: string) {
  return (error: unknown) => error instanceof DfosError && error.code === Status.TOO_LARGE && error.message === message;
}

Deno.test("Quota without a quota counts nothing and checks only the largest file", async () => {
  const storage = sizes({ "a.bin": 10 });
  const quota = new Quota(storage, { maxFileBytes: 100 });
  const allowance = await quota.reserve("alice", "b.bin", 100);
  allowance.receive(100);
  allowance.admit(0);
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
  const quota = new Quota(storage, { quotaBytes: 1000 });
  const allowances = await Promise.all([
    quota.reserve("alice", "c.bin", 100),
    quota.reserve("alice", "d.bin", 100),
    quota.ready("alice"),
  ]);
  strictEqual(storage.walks, 1);
  deepStrictEqual(quota.usage("alice"), { used: 500, reserved: 200 });
  for (const allowance of allowances) allowance?.release();
  deepStrictEqual(quota.usage("alice"), { used: 500, reserved: 0 });
  strictEqual(quota.usage("bob"), null);
});

Deno.test("Quota reserves an announced size at once: of two uploads that each fit alone, only one fits both", async () => {
  const quota = new Quota(sizes({ "base.bin": 400 }), { quotaBytes: 1000 });
  const first = await quota.reserve("alice", "x.bin", 600);
  await throwsAsync(
    quota.reserve("alice", "y.bin", 600),
    `Cannot store "y.bin": it would go over alice's quota of 1000 bytes (it adds 600 bytes; 0 bytes are free)`,
  );
  first.receive(600);
  first.admit(0);
  first.committed();
  deepStrictEqual(quota.usage("alice"), { used: 1000, reserved: 0 });
  quota.removed("alice", 600);
  deepStrictEqual(quota.usage("alice"), { used: 400, reserved: 0 });
});

Deno.test("Quota counts a replacement's difference, and checks again with the file replaced at the commit", async () => {
  const quota = new Quota(sizes({ "a.bin": 800 }), { quotaBytes: 1000 });
  // 1000 in place of 800: 200 held.
  const grow = await quota.reserve("alice", "a.bin", 1000);
  deepStrictEqual(quota.usage("alice"), { used: 800, reserved: 200 });
  grow.receive(1000);
  // Meanwhile a.bin was deleted: the commit replaces nothing, and adds 1000, which does not fit beside the rest.
  quota.removed("alice", 800);
  const other = await quota.reserve("alice", "b.bin", 500);
  throws(
    () => grow.admit(0),
    isTooLarge(
      `Cannot store "a.bin": it would go over alice's quota of 1000 bytes (it adds 1000 bytes; 500 bytes are free)`,
    ),
  );
  deepStrictEqual(quota.usage("alice"), { used: 0, reserved: 500 }); // given back at once
  other.receive(500);
  other.admit(0);
  other.committed();
  // A smaller version gives bytes back.
  const shrink = await quota.reserve("alice", "b.bin", 100);
  shrink.receive(100);
  shrink.admit(500);
  shrink.committed();
  deepStrictEqual(quota.usage("alice"), { used: 100, reserved: 0 });
});

Deno.test("Quota takes the bytes of an upload of unknown size as they arrive, and cuts it the moment it goes over", async () => {
  const quota = new Quota(sizes({ "a.bin": 100 }), { quotaBytes: 1000 });
  const first = await quota.reserve("alice", "a.bin", null);
  const second = await quota.reserve("alice", "b.bin", null);
  first.receive(100); // no more than the file it replaces: nothing held
  deepStrictEqual(quota.usage("alice"), { used: 100, reserved: 0 });
  first.receive(500);
  second.receive(400);
  deepStrictEqual(quota.usage("alice"), { used: 100, reserved: 800 });
  throws(
    () => second.receive(501),
    isTooLarge(`Cannot store "b.bin": the upload went over alice's quota of 1000 bytes`),
  );
  // What the cut upload held is free for the other at once, before it has unwound.
  deepStrictEqual(quota.usage("alice"), { used: 100, reserved: 400 });
  first.receive(1000);
  first.admit(100);
  first.committed();
  second.release();
  deepStrictEqual(quota.usage("alice"), { used: 1000, reserved: 0 });
});

async function throwsAsync(promise: Promise<unknown>, message: string): Promise<void> {
  const error = await promise.then(() => null, (error) => error);
  strictEqual(isTooLarge(message)(error), true, `expected TOO_LARGE "${message}", got ${error}`);
}
