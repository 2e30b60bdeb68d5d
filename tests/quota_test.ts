/**
 * End-to-end tests of what an upload may take, on a real server started
 * in-process: the per-user quota (`--quota`), the largest file
 * (`--max-file-size`), the longest name (`--max-name`), the listing page
 * (`--list-page`) and the frame limit (`--max-frame`). A refused upload
 * must leave nothing: no temporary file, the previous version intact. The
 * command line is run as a subprocess where what it prints and its exit code
 * matter, and `dfos serve` itself once, to show the flags reach the server.
 *
 * @module
 */

import { deepStrictEqual, ok, strictEqual } from "node:assert/strict";
import { join } from "node:path";
import { BLOCK_BYTES } from "../server/local_storage.ts";
import { MESSAGE_CODES } from "../shared/messages.ts";
import { DfosError, Status } from "../shared/status.ts";
import {
  connect,
  delay,
  type Fixture,
  freePort,
  listDir,
  randomBytes,
  runCli,
  sha256,
  sha256File,
  spawnCli,
  startServer,
  USERS,
  waitFor,
  waitForPort,
} from "./_fixture.ts";
import { concat, frameBytes, HELLO, once, Peer, rawFrame } from "./_peer.ts";

/** The refusal a promise ends with: its status code and message. */
async function refusal(promise: Promise<unknown>): Promise<{ code: number; message: string }> {
  const error = await promise.then(() => null, (error) => error);
  ok(error instanceof DfosError, `expected a refusal, got ${error}`);
  return { code: error.code, message: error.message };
}

/** Yields `count` chunks of `size` random bytes, `pauseMs` apart; `sent` collects them. */
async function* slowly(
  count: number,
  size: number,
  pauseMs: number,
  sent: Uint8Array[] = [],
): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < count; i++) {
    if (i > 0) await delay(pauseMs);
    const chunk = randomBytes(size);
    sent.push(chunk);
    yield chunk;
  }
}

/** Checks that no upload of `user`'s left a temporary file. */
async function assertNoTemporaries(fx: Fixture, user = "alice"): Promise<void> {
  // An aborted upload's temporary is removed as the handler unwinds, just after the refusal is sent.
  await waitFor(async () => (await listDir(join(fx.root, user, ".dfos-partial"))).length === 0, "no temporary file");
}

/** The block the quota counts in: a file takes its size rounded up to it, at least one; a folder one. */
const B = BLOCK_BYTES;

/** The refusal of an upload announced to add `adds` bytes when `free` are free, under alice's quota `quota`. */
function overQuota(name: string, quota: number, adds: number, free: number): string {
  return `Cannot store "${name}": it would go over alice's quota of ${quota} bytes (it adds ${adds} bytes; ${free} ${
    free === 1 ? "byte is" : "bytes are"
  } free)`;
}

/** What `du` counts under a folder, every entry below it (temporary files included): blocks of 512 bytes. */
async function diskUse(dir: string): Promise<number> {
  let total = 0;
  for await (const entry of Deno.readDir(dir)) {
    const path = join(dir, entry.name);
    const info = await Deno.lstat(path).catch(() => null);
    if (info === null) continue;
    total += (info.blocks ?? 0) * 512;
    if (info.isDirectory) total += await diskUse(path);
  }
  return total;
}

/** Files and folders under a folder, .dfos-partial and what is in it left out. */
async function entriesUnder(dir: string): Promise<number> {
  let count = 0;
  for await (const entry of Deno.readDir(dir)) {
    if (entry.name === ".dfos-partial") continue;
    count++;
    if (entry.isDirectory) count += await entriesUnder(join(dir, entry.name));
  }
  return count;
}

Deno.test("--quota: an upload that fills the quota exactly is stored, one byte more is refused at once and leaves nothing", async () => {
  const quota = 3 * B;
  await using fx = await startServer({ quotaBytes: quota, quotaEntries: 100 });
  const client = await connect(fx);
  await client.put("a.bin", once(randomBytes(2 * B - 100)), { size: 2 * B - 100 }); // two blocks
  await client.put("b.bin", once(randomBytes(1)), { size: 1 }); // one block: exactly at the quota
  deepStrictEqual(await refusal(client.put("c.bin", once(randomBytes(1)), { size: 1 })), {
    code: Status.TOO_LARGE,
    message: overQuota("c.bin", quota, B, 0),
  });
  await assertNoTemporaries(fx);
  deepStrictEqual(await listDir(join(fx.root, "alice")), [".dfos-partial", "a.bin", "b.bin"]);

  // "At once": the refusal comes right after PUT, before any byte of the body is sent.
  const peer = await Peer.login(fx);
  await peer.send({ type: "put", name: "d.bin", size: 5000, digest: "crc32" });
  strictEqual(await peer.expectError(Status.TOO_LARGE), overQuota("d.bin", quota, 2 * B, 0));
  await peer.send({ type: "abort", reason: "refused" });
  deepStrictEqual(await peer.names(), ["a.bin", "b.bin"]); // the session goes on

  // Each user has a quota of their own; a delete gives its blocks back.
  const bob = await connect(fx, "bob");
  await bob.put("b.bin", once(randomBytes(quota)), { size: quota });
  await client.remove("a.bin");
  await client.put("c.bin", once(randomBytes(2 * B)), { size: 2 * B });
  deepStrictEqual(await refusal(client.put("e.bin", once(randomBytes(0)), { size: 0 })), {
    code: Status.TOO_LARGE,
    message: overQuota("e.bin", quota, B, 0), // an empty file takes a block too
  });
  deepStrictEqual(fx.server.stats.snapshot().failures.TOO_LARGE, 3);
  peer.abort();
  await bob.close();
  await client.close();
});

Deno.test("--quota: a replacement needs room for its new copy while it arrives; a refused one keeps the old version", async () => {
  const quota = 6 * B;
  await using fx = await startServer({ quotaBytes: quota, quotaEntries: 100 });
  const client = await connect(fx);
  const first = randomBytes(2 * B);
  await client.put("a.bin", once(first), { size: first.length });
  // Three blocks beside the two of the old copy: five, which fit; once committed, three are used.
  const second = randomBytes(3 * B);
  await client.put("a.bin", once(second), { size: second.length });
  // One byte more is a fourth block beside the three: over the quota, announced or not.
  deepStrictEqual(await refusal(client.put("a.bin", once(randomBytes(3 * B + 1)), { size: 3 * B + 1 })), {
    code: Status.TOO_LARGE,
    message: overQuota("a.bin", quota, 4 * B, 3 * B),
  });
  deepStrictEqual(await refusal(client.put("a.bin", slowly(4, B, 0), { size: null })), {
    code: Status.TOO_LARGE,
    message: `Cannot store "a.bin": the upload went over alice's quota of ${quota} bytes`,
  });
  deepStrictEqual(await refusal(client.put("a.bin", once(randomBytes(3 * B + 1)))), {
    code: Status.TOO_LARGE,
    message: `Cannot store "a.bin": the upload went over alice's quota of ${quota} bytes`,
  });
  await assertNoTemporaries(fx);
  strictEqual(await sha256File(join(fx.root, "alice", "a.bin")), sha256(second));
  // A smaller version gives blocks back at once.
  await client.put("a.bin", once(randomBytes(10)), { size: 10 });
  await client.put("b.bin", once(randomBytes(5 * B)), { size: 5 * B });
  await client.close();
});

Deno.test("--quota: the files and folders already stored are counted at the first upload, links and temporaries are not", async () => {
  await using fx = await startServer({ quotaBytes: 5 * B, quotaEntries: 100 });
  const home = join(fx.root, "alice");
  // Two folders and two small files: four blocks.
  await Deno.mkdir(join(home, "old", "deeper"), { recursive: true });
  await Deno.writeFile(join(home, "old", "one.bin"), randomBytes(300));
  await Deno.writeFile(join(home, "old", "deeper", "two.bin"), randomBytes(400));
  // Neither a link (to a big file outside) nor a leftover in .dfos-partial takes any of the quota.
  const outside = join(fx.dir, "outside.bin");
  await Deno.writeFile(outside, randomBytes(50_000));
  await Deno.symlink(outside, join(home, "link.bin"));
  await Deno.mkdir(join(home, ".dfos-partial"));
  await Deno.writeFile(join(home, ".dfos-partial", "left.part"), randomBytes(50_000));

  const client = await connect(fx);
  deepStrictEqual(await refusal(client.put("new.bin", once(randomBytes(B + 1)), { size: B + 1 })), {
    code: Status.TOO_LARGE,
    message: overQuota("new.bin", 5 * B, 2 * B, B),
  });
  await client.put("new.bin", once(randomBytes(B)), { size: B });
  await client.remove("old/deeper/two.bin"); // its block, and its folder's, which the rm prunes
  await client.put("more.bin", once(randomBytes(2 * B)), { size: 2 * B });
  await client.close();
});

Deno.test("--quota: uploads racing for the last bytes of the quota, announced or not, get them only once", async () => {
  const quota = 3 * B;
  await using fx = await startServer({ quotaBytes: quota, quotaEntries: 100 });
  const clients = await Promise.all([connect(fx), connect(fx), connect(fx), connect(fx)]);
  await clients[0].put("base.bin", once(randomBytes(B)), { size: B });

  // Sizes announced: each reserves its two blocks before its body; only one reservation fits.
  const announced = await Promise.allSettled(
    clients.slice(0, 2).map((client, i) => client.put(`x${i}.bin`, once(randomBytes(2 * B)), { size: 2 * B })),
  );
  deepStrictEqual(announced.map((outcome) => outcome.status).sort(), ["fulfilled", "rejected"]);
  const stored = (await listDir(join(fx.root, "alice"))).filter((name) => name.startsWith("x"));
  strictEqual(stored.length, 1);
  await clients[0].remove(stored[0]);

  // Sizes unknown: each holds a block at once and takes more as its bytes arrive, 1 KiB at a time; the one that
  // goes over first is cut.
  const unknown = await Promise.allSettled(
    clients.slice(2).map((client, i) => client.put(`y${i}.bin`, slowly(6, 1024, 30), { size: null })),
  );
  deepStrictEqual(unknown.map((outcome) => outcome.status).sort(), ["fulfilled", "rejected"]);
  const cut = unknown.find((outcome) => outcome.status === "rejected") as PromiseRejectedResult;
  strictEqual(cut.reason.code, Status.TOO_LARGE);
  await assertNoTemporaries(fx);
  deepStrictEqual((await listDir(join(fx.root, "alice"))).filter((name) => name.startsWith("y")).length, 1);
  // What is stored is exactly the quota: not a byte more fits.
  deepStrictEqual(await refusal(clients[0].put("z.bin", once(randomBytes(1)), { size: 1 })), {
    code: Status.TOO_LARGE,
    message: overQuota("z.bin", quota, B, 0),
  });
  for (const client of clients) await client.close();
});

Deno.test("--quota: twenty uploads replacing one file at once, kept alive by trickles, never take more than the quota", async () => {
  const MiB = 1024 * 1024;
  const quota = 2 * MiB + 4 * B;
  await using fx = await startServer({ quotaBytes: quota, quotaEntries: 100, opTimeoutMs: 3000 });
  const home = join(fx.root, "alice");
  const client = await connect(fx);
  await client.put("a.bin", once(randomBytes(MiB)), { size: MiB });
  await client.close();
  const peers = await Promise.all(Array.from({ length: 20 }, () => Peer.login(fx)));
  // Each announces 1 MiB in place of a.bin's 1 MiB: room for one new copy beside the old is free, not for two.
  const bodies = peers.map(() => randomBytes(MiB));
  for (const peer of peers) await peer.send({ type: "put", name: "a.bin", size: MiB, digest: "sha256" });
  // The refusals come at once; an upload let in hears nothing until its END.
  const replies = peers.map((peer) => peer.expect("error", "ok"));
  const refused = new Set<Peer>();
  await Promise.all(peers.map(async (peer, i) => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const quiet = new Promise<null>((resolve) => timer = setTimeout(() => resolve(null), 1000));
    const reply = await Promise.race([replies[i], quiet]).finally(() => clearTimeout(timer));
    if (reply !== null) {
      strictEqual(reply.type, "error");
      strictEqual(reply.code, Status.TOO_LARGE, reply.message);
      refused.add(peer);
    }
  }));
  const admitted = peers.filter((peer) => !refused.has(peer));
  strictEqual(admitted.length, 1, `${admitted.length} of 20 admitted`);
  // The admitted ones send all but a byte, then one byte at a time, well inside the stall timeout.
  let most = 0;
  await Promise.all(admitted.map(async (peer) => {
    const body = bodies[peers.indexOf(peer)];
    await peer.send({ type: "data", chunk: body.subarray(0, MiB - 3) });
    for (let byte = MiB - 3; byte < MiB; byte++) {
      await delay(300);
      most = Math.max(most, await diskUse(home));
      await peer.send({ type: "data", chunk: body.subarray(byte, byte + 1) });
    }
  }));
  // On disk at most the quota (a.bin and the one temporary file side by side), and the .dfos-partial folder.
  ok(most <= quota + B, `disk use ${most} bytes, over ${quota + B}`);
  const index = peers.indexOf(admitted[0]);
  await admitted[0].send({ type: "end", size: MiB, algorithm: "sha256", digest: sha256(bodies[index]) });
  strictEqual((await replies[index]).type, "ok");
  for (const peer of peers) peer.abort();
  await assertNoTemporaries(fx);
});

Deno.test("--quota and --quota-files: empty files and fresh folders are not free, and are refused at the bound", async () => {
  // Bytes used up: an empty file, in a fresh folder or not, needs a block (and its folder one more).
  await using fx = await startServer({ quotaBytes: 4 * B, quotaEntries: 1000 });
  const home = join(fx.root, "alice");
  const client = await connect(fx);
  await client.put("full.bin", once(randomBytes(4 * B)), { size: 4 * B });
  const before = await diskUse(home);
  for (let i = 0; i < 50; i++) {
    const { code } = await refusal(client.put(`d${i}/e${i}`, once(new Uint8Array(0)), { size: 0 }));
    strictEqual(code, Status.TOO_LARGE);
    strictEqual((await refusal(client.put(`e${i}`, once(new Uint8Array(0)), { size: null }))).code, Status.TOO_LARGE);
  }
  await assertNoTemporaries(fx);
  strictEqual(await diskUse(home), before);
  strictEqual(await entriesUnder(home), 1);
  await client.close();

  // Files and folders bounded: 10 of them, whatever their size.
  await using small = await startServer({ quotaBytes: 1024 * B, quotaEntries: 10 });
  const other = await connect(small);
  const stored: string[] = [];
  for (let i = 0; i < 200; i++) {
    const name = `f${i}/e`; // a fresh folder and an empty file: two entries each
    const outcome = await other.put(name, once(new Uint8Array(0)), { size: 0 }).then(() => null, (error) => error);
    if (outcome === null) {
      stored.push(name);
      continue;
    }
    strictEqual(outcome.code, Status.TOO_LARGE);
    strictEqual(outcome.message, `Cannot store "${name}": alice has reached the limit of 10 files and folders`);
  }
  strictEqual(stored.length, 5);
  strictEqual(await entriesUnder(join(small.root, "alice")), 10);
  // A refused commit leaves no folder behind; an rm gives its file and pruned folder back.
  await other.remove("f0/e");
  await other.put("f200/e", once(new Uint8Array(0)), { size: 0 });
  strictEqual(await entriesUnder(join(small.root, "alice")), 10);
  await other.close();
});

Deno.test("--max-file-size: a larger upload is refused at once, or cut when its size is unknown, and leaves nothing", async () => {
  await using fx = await startServer({ maxFileBytes: 4096 });
  const client = await connect(fx);
  const old = randomBytes(100);
  await client.put("big.bin", once(old), { size: old.length });
  await client.put("exact.bin", once(randomBytes(4096)), { size: 4096 });
  deepStrictEqual(await refusal(client.put("big.bin", once(randomBytes(4097)), { size: 4097 })), {
    code: Status.TOO_LARGE,
    message: 'Cannot store "big.bin": its 4097 bytes are over this server\'s largest file size of 4096 bytes',
  });
  deepStrictEqual(await refusal(client.put("big.bin", slowly(5, 1000, 0), { size: null })), {
    code: Status.TOO_LARGE,
    message: 'Cannot store "big.bin": the upload went over this server\'s largest file size of 4096 bytes',
  });
  await assertNoTemporaries(fx);
  strictEqual(await sha256File(join(fx.root, "alice", "big.bin")), sha256(old));
  await client.close();
});

Deno.test("dfos put over the quota or the largest file size, from a file or standard input, says why and exits 1", async () => {
  const quota = 4 * B;
  await using fx = await startServer({ quotaBytes: quota, quotaEntries: 100, maxFileBytes: 2 * B });
  const env = fx.envFor("alice");
  const previous = randomBytes(500);
  await Deno.writeFile(join(fx.local, "previous.bin"), previous);
  strictEqual((await runCli(["put", join(fx.local, "previous.bin"), "kept.bin"], { env })).code, 0);
  await Deno.writeFile(join(fx.local, "big.bin"), randomBytes(2 * B + 1));

  const fromFile = await runCli(["put", join(fx.local, "big.bin"), "kept.bin"], { env });
  strictEqual(fromFile.code, 1, fromFile.stderr);
  strictEqual(
    fromFile.stderr,
    `dfos put: Cannot store "kept.bin": its ${2 * B + 1} bytes are over this server's largest file size of ${
      2 * B
    } bytes\n`,
  );
  const fromStdin = await runCli(["put", "-", "kept.bin"], { env, stdin: randomBytes(2 * B + 1) });
  strictEqual(fromStdin.code, 1, fromStdin.stderr);
  strictEqual(
    fromStdin.stderr,
    `dfos put: Cannot store "kept.bin": the upload went over this server's largest file size of ${2 * B} bytes\n`,
  );

  strictEqual((await runCli(["put", "-", "second.bin"], { env, stdin: randomBytes(2 * B) })).code, 0);
  // One block and two stored: one block is left of the quota.
  const overQuotaStdin = await runCli(["put", "-", "third.bin"], { env, stdin: randomBytes(B + 1) });
  strictEqual(overQuotaStdin.code, 1, overQuotaStdin.stderr);
  strictEqual(
    overQuotaStdin.stderr,
    `dfos put: Cannot store "third.bin": the upload went over alice's quota of ${quota} bytes\n`,
  );
  await Deno.writeFile(join(fx.local, "third.bin"), randomBytes(B + 1));
  const announced = await runCli(["put", join(fx.local, "third.bin")], { env });
  strictEqual(announced.code, 1, announced.stderr);
  strictEqual(announced.stderr, `dfos put: ${overQuota("third.bin", quota, 2 * B, B)}\n`);
  await assertNoTemporaries(fx);
  deepStrictEqual(await listDir(join(fx.root, "alice")), [".dfos-partial", "kept.bin", "second.bin"]);
  strictEqual(await sha256File(join(fx.root, "alice", "kept.bin")), sha256(previous));
});

Deno.test("--max-name: an upload may not create a longer name; longer names already stored still work", async () => {
  await using fx = await startServer({ maxNameBytes: 10 });
  const client = await connect(fx);
  await client.put("abcdefghij", once(randomBytes(10)), { size: 10 });
  deepStrictEqual(await refusal(client.put("abcdefghijk", once(randomBytes(10)), { size: 10 })), {
    code: Status.BAD_NAME,
    message: 'Cannot use name "abcdefghijk": name is longer than 10 bytes',
  });
  deepStrictEqual(await refusal(client.put("d/\u00e9\u00e9\u00e9\u00e9\u00e9", once(randomBytes(1)), { size: 1 })), {
    code: Status.BAD_NAME,
    message: 'Cannot use name "d/\u00e9\u00e9\u00e9\u00e9\u00e9": name is longer than 10 bytes',
  });
  // Stored before the limit was lowered: listed, read and deleted as ever.
  const body = randomBytes(20);
  await Deno.writeFile(join(fx.root, "alice", "a-much-longer-name.bin"), body);
  deepStrictEqual((await Array.fromAsync(client.list())).map((entry) => entry.name), [
    "a-much-longer-name.bin",
    "abcdefghij",
  ]);
  const { body: incoming } = await client.get("a-much-longer-name.bin");
  const parts: Uint8Array[] = [];
  for await (const chunk of incoming.chunks()) parts.push(chunk.slice());
  strictEqual(sha256(concat(parts)), sha256(body));
  await client.remove("a-much-longer-name.bin");
  await assertNoTemporaries(fx);
  await client.close();
});

Deno.test("--max-name: a move may not make a longer name either, of a file or of any file in a folder", async () => {
  await using fx = await startServer({ maxNameBytes: 10 });
  const client = await connect(fx);
  await client.put("a", once(randomBytes(3)), { size: 3 });
  await client.put("d/e/f", once(randomBytes(3)), { size: 3 });
  deepStrictEqual(await refusal(client.move("a", "abcdefghijk")), {
    code: Status.BAD_NAME,
    message: 'Cannot use name "abcdefghijk": name is longer than 10 bytes',
  });
  deepStrictEqual(await refusal(client.move("d", "abcdefg")), {
    code: Status.BAD_NAME,
    message: 'Cannot move "d" to "abcdefg": its file "abcdefg/e/f" would have a name longer than 10 bytes',
  });
  deepStrictEqual((await Array.fromAsync(client.list())).map((entry) => entry.name), ["a", "d/e/f"], "nothing moved");
  await client.move("d", "abcdef"); // "abcdef/e/f": 10 bytes
  deepStrictEqual((await Array.fromAsync(client.list())).map((entry) => entry.name), ["a", "abcdef/e/f"]);
  await client.close();
});

Deno.test("--list-page: a LISTING has at most that many entries, and the client pages through them all", async () => {
  await using fx = await startServer({ listPageEntries: 3 });
  const peer = await Peer.login(fx);
  const names = ["a", "b", "c", "d", "e", "f", "g"];
  for (const name of names) await peer.put(name, randomBytes(1));
  await peer.send({ type: "list", prefix: "", after: "" });
  const page = await peer.expect("listing");
  deepStrictEqual(page.entries.map((entry) => entry.name), ["a", "b", "c"]);
  strictEqual(page.next, "c");
  await peer.send({ type: "list", prefix: "", after: "f" });
  const last = await peer.expect("listing");
  deepStrictEqual(last.entries.map((entry) => entry.name), ["g"]);
  strictEqual(last.next, null);
  peer.abort();
  const client = await connect(fx);
  deepStrictEqual((await Array.fromAsync(client.list())).map((entry) => entry.name), names);
  await client.close();
});

Deno.test("--max-frame: a larger frame is refused before login (and closes), after login (and the session goes on)", async () => {
  await using fx = await startServer({ maxFrameBytes: 4096 });
  // Before login: refused from its header, before its payload is read.
  const early = await Peer.open(fx);
  const hello = frameBytes({ ...HELLO, agent: "x".repeat(5000) });
  await early.write(hello.subarray(0, 5));
  const { messages } = await early.untilClosed(3000);
  deepStrictEqual(messages, [{
    type: "error",
    code: Status.TOO_LARGE,
    message: `Cannot decode frame: length ${hello.length - 4} exceeds the limit of 4096`,
  }]);
  early.abort();

  // After login: a request over the limit is TOO_LARGE, the next one is served. DATA keeps its 1 MiB frames.
  const peer = await Peer.login(fx);
  const list = frameBytes({ type: "list", prefix: "p".repeat(4200), after: "" });
  await peer.write(list);
  strictEqual(
    await peer.expectError(Status.TOO_LARGE),
    `Cannot decode frame: length ${list.length - 4} exceeds the limit of 4096`,
  );
  const longName = ["a".repeat(255), "b".repeat(255), "c".repeat(255), "d".repeat(254), "e"].join("/"); // 1024 bytes
  const big = randomBytes(3 * 1024 * 1024);
  await peer.put(longName, big);
  deepStrictEqual(await peer.names(), [longName]);
  strictEqual(sha256(await peer.get(longName)), sha256(big));
  // An unknown type of the same size is refused the same way.
  await peer.write(rawFrame(0x7f, new Uint8Array(5000)));
  await peer.expectError(Status.TOO_LARGE);
  await peer.write(rawFrame(MESSAGE_CODES.list, new Uint8Array(100)));
  await peer.expectError(Status.BAD_REQUEST);
  deepStrictEqual(await peer.names(), [longName]);
  peer.abort();
});

Deno.test("dfos serve refuses a limit flag that is not a size or out of range, with a usage error", async () => {
  const cases: [string[], string][] = [
    [
      ["--quota", "10X"],
      '--quota takes a size in bytes ("4096", or with K, M, G or T: "512K", "10M", "2G"), not "10X"',
    ],
    [
      ["--max-frame", "1K"],
      '--max-frame takes a size in bytes from 4096 to 65536 ("4096", or with K, M, G or T: "512K", "10M", "2G"), ' +
      'not "1K"',
    ],
    [
      ["--max-name", "2000"],
      '--max-name takes a size in bytes from 1 to 1024 ("4096", or with K, M, G or T: "512K", "10M", "2G"), ' +
      'not "2000"',
    ],
    [["--list-page", "0"], '--list-page takes a whole number from 1 to 1000000, not "0"'],
    [["--op-timeout", "soon"], '--op-timeout takes a number of seconds from 0 to 2147483, not "soon"'],
  ];
  const cwd = await Deno.makeTempDir({ prefix: "dfos_test_" });
  try {
    for (const [flags, message] of cases) {
      const { code, stderr } = await runCli(["serve", ...flags], { cwd });
      strictEqual(code, 2, stderr);
      strictEqual(stderr, `dfos serve: ${message}\nRun "dfos serve --help" for usage.\n`);
    }
    deepStrictEqual(await listDir(cwd), []); // refused before anything was opened or created
  } finally {
    await Deno.remove(cwd, { recursive: true });
  }
});

Deno.test("dfos serve --quota, --quota-files and --max-file-size, with suffixes, reach the server", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dfos_test_" });
  const port = freePort();
  await Deno.writeTextFile(join(dir, "users.txt"), `alice:${USERS.alice}\n`);
  const server = spawnCli([
    "serve",
    ...["--host", "127.0.0.1", "--port", String(port), "--root", join(dir, "root")],
    ...["--users", join(dir, "users.txt"), "--log", join(dir, "server.log")],
    ...["--quota", "16K", "--max-file-size", "8K", "--quota-files", "3"],
  ], { cwd: dir });
  server.stdin.close();
  try {
    const env = { DFOS_SERVER: `127.0.0.1:${port}`, DFOS_USER: "alice", DFOS_PASSWORD: USERS.alice };
    await waitForPort(port, "the server to listen", 20_000);
    strictEqual((await runCli(["put", "-", "a.bin"], { env, stdin: randomBytes(4096) })).code, 0);
    const tooBig = await runCli(["put", "-", "b.bin"], { env, stdin: randomBytes(8193) });
    strictEqual(tooBig.code, 1, tooBig.stderr);
    ok(tooBig.stderr.includes("largest file size of 8192 bytes"), tooBig.stderr);
    strictEqual((await runCli(["put", "-", "b.bin"], { env, stdin: randomBytes(8192) })).code, 0);
    // Three blocks of four are taken: two more go over the quota.
    const overQuota = await runCli(["put", "-", "c.bin"], { env, stdin: randomBytes(4097) });
    strictEqual(overQuota.code, 1, overQuota.stderr);
    ok(overQuota.stderr.includes("alice's quota of 16384 bytes"), overQuota.stderr);
    strictEqual((await runCli(["put", "-", "c.bin"], { env, stdin: randomBytes(1) })).code, 0);
    strictEqual((await runCli(["rm", "b.bin"], { env })).code, 0);
    // Two blocks are free, but a file in a new folder makes four files and folders, one more than allowed.
    const overFiles = await runCli(["put", "-", "d/e.bin"], { env, stdin: randomBytes(1) });
    strictEqual(overFiles.code, 1, overFiles.stderr);
    ok(overFiles.stderr.includes("alice has reached the limit of 3 files and folders"), overFiles.stderr);
  } finally {
    server.kill("SIGTERM");
    const { code } = await server.output();
    strictEqual(code, 0);
    await Deno.remove(dir, { recursive: true });
  }
});
