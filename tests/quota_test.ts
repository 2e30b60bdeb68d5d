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
import { MESSAGE_CODES } from "../shared/messages.ts";
import { DfosError, Status } from "../shared/status.ts";
import {
  closedPort,
  connect,
  delay,
  type Fixture,
  listDir,
  randomBytes,
  runCli,
  sha256,
  sha256File,
  spawnCli,
  startServer,
  USERS,
  waitFor,
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

const QUOTA_1000 = (name: string, adds: number, free: number) =>
  `Cannot store "${name}": it would go over alice's quota of 1000 bytes (it adds ${adds} byte${
    adds === 1 ? "" : "s"
  }; ${free} byte${free === 1 ? " is" : "s are"} free)`;

Deno.test("--quota: an upload that fills the quota exactly is stored, one byte more is refused at once and leaves nothing", async () => {
  await using fx = await startServer({ quotaBytes: 1000 });
  const client = await connect(fx);
  await client.put("a.bin", once(randomBytes(600)), { size: 600 });
  await client.put("b.bin", once(randomBytes(400)), { size: 400 }); // exactly at the quota
  deepStrictEqual(await refusal(client.put("c.bin", once(randomBytes(1)), { size: 1 })), {
    code: Status.TOO_LARGE,
    message: QUOTA_1000("c.bin", 1, 0),
  });
  await assertNoTemporaries(fx);
  deepStrictEqual(await listDir(join(fx.root, "alice")), [".dfos-partial", "a.bin", "b.bin"]);

  // "At once": the refusal comes right after PUT, before any byte of the body is sent.
  const peer = await Peer.login(fx);
  await peer.send({ type: "put", name: "d.bin", size: 5000, digest: "crc32" });
  strictEqual(await peer.expectError(Status.TOO_LARGE), QUOTA_1000("d.bin", 5000, 0));
  await peer.send({ type: "abort", reason: "refused" });
  deepStrictEqual(await peer.names(), ["a.bin", "b.bin"]); // the session goes on

  // Each user has a quota of their own; a delete gives bytes back.
  const bob = await connect(fx, "bob");
  await bob.put("b.bin", once(randomBytes(1000)), { size: 1000 });
  await client.remove("a.bin");
  await client.put("c.bin", once(randomBytes(600)), { size: 600 });
  deepStrictEqual(await refusal(client.put("e.bin", once(randomBytes(1)), { size: 1 })), {
    code: Status.TOO_LARGE,
    message: QUOTA_1000("e.bin", 1, 0),
  });
  deepStrictEqual(fx.server.stats.snapshot().failures.TOO_LARGE, 3);
  peer.abort();
  await bob.close();
  await client.close();
});

Deno.test("--quota: replacing a file counts only the difference, and a refused replacement keeps the old version", async () => {
  await using fx = await startServer({ quotaBytes: 1000 });
  const client = await connect(fx);
  const first = randomBytes(800);
  await client.put("a.bin", once(first), { size: first.length });
  // 1000 bytes in place of 800: 200 more, which fit.
  const second = randomBytes(1000);
  await client.put("a.bin", once(second), { size: second.length });
  // 1001 in place of 1000: one byte more than the quota, announced or not.
  deepStrictEqual(await refusal(client.put("a.bin", once(randomBytes(1001)), { size: 1001 })), {
    code: Status.TOO_LARGE,
    message: QUOTA_1000("a.bin", 1, 0),
  });
  deepStrictEqual(await refusal(client.put("a.bin", slowly(3, 400, 0), { size: null })), {
    code: Status.TOO_LARGE,
    message: 'Cannot store "a.bin": the upload went over alice\'s quota of 1000 bytes',
  });
  deepStrictEqual(await refusal(client.put("a.bin", once(randomBytes(1001)))), {
    code: Status.TOO_LARGE,
    message: 'Cannot store "a.bin": the upload went over alice\'s quota of 1000 bytes',
  });
  await assertNoTemporaries(fx);
  strictEqual(await sha256File(join(fx.root, "alice", "a.bin")), sha256(second));
  // A smaller version gives bytes back at once.
  await client.put("a.bin", once(randomBytes(10)), { size: 10 });
  await client.put("b.bin", once(randomBytes(990)), { size: 990 });
  await client.close();
});

Deno.test("--quota: the files already stored are counted at the first upload, links and temporaries are not", async () => {
  await using fx = await startServer({ quotaBytes: 1000 });
  const home = join(fx.root, "alice");
  await Deno.mkdir(join(home, "old", "deeper"), { recursive: true });
  await Deno.writeFile(join(home, "old", "one.bin"), randomBytes(300));
  await Deno.writeFile(join(home, "old", "deeper", "two.bin"), randomBytes(400));
  // Neither a link (to a big file outside) nor a leftover in .dfos-partial takes any of the quota.
  const outside = join(fx.dir, "outside.bin");
  await Deno.writeFile(outside, randomBytes(5000));
  await Deno.symlink(outside, join(home, "link.bin"));
  await Deno.mkdir(join(home, ".dfos-partial"));
  await Deno.writeFile(join(home, ".dfos-partial", "left.part"), randomBytes(5000));

  const client = await connect(fx);
  deepStrictEqual(await refusal(client.put("new.bin", once(randomBytes(301)), { size: 301 })), {
    code: Status.TOO_LARGE,
    message: QUOTA_1000("new.bin", 301, 300),
  });
  await client.put("new.bin", once(randomBytes(300)), { size: 300 });
  await client.remove("old/deeper/two.bin");
  await client.put("more.bin", once(randomBytes(400)), { size: 400 });
  await client.close();
});

Deno.test("--quota: uploads racing for the last bytes of the quota, announced or not, get them only once", async () => {
  await using fx = await startServer({ quotaBytes: 1000 });
  const clients = await Promise.all([connect(fx), connect(fx), connect(fx), connect(fx)]);
  await clients[0].put("base.bin", once(randomBytes(400)), { size: 400 });

  // Sizes announced: each reserves its 600 bytes before its body; only one reservation fits.
  const announced = await Promise.allSettled(
    clients.slice(0, 2).map((client, i) => client.put(`x${i}.bin`, once(randomBytes(600)), { size: 600 })),
  );
  deepStrictEqual(announced.map((outcome) => outcome.status).sort(), ["fulfilled", "rejected"]);
  const stored = (await listDir(join(fx.root, "alice"))).filter((name) => name.startsWith("x"));
  strictEqual(stored.length, 1);
  await clients[0].remove(stored[0]);

  // Sizes unknown: both take their bytes as they arrive, 100 at a time; the one that goes over first is cut.
  const unknown = await Promise.allSettled(
    clients.slice(2).map((client, i) => client.put(`y${i}.bin`, slowly(6, 100, 30), { size: null })),
  );
  deepStrictEqual(unknown.map((outcome) => outcome.status).sort(), ["fulfilled", "rejected"]);
  const cut = unknown.find((outcome) => outcome.status === "rejected") as PromiseRejectedResult;
  strictEqual(cut.reason.code, Status.TOO_LARGE);
  await assertNoTemporaries(fx);
  deepStrictEqual((await listDir(join(fx.root, "alice"))).filter((name) => name.startsWith("y")).length, 1);
  // What is stored is exactly the quota: not a byte more fits.
  deepStrictEqual(await refusal(clients[0].put("z.bin", once(randomBytes(1)), { size: 1 })), {
    code: Status.TOO_LARGE,
    message: QUOTA_1000("z.bin", 1, 0),
  });
  for (const client of clients) await client.close();
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
  await using fx = await startServer({ quotaBytes: 3000, maxFileBytes: 2000 });
  const env = fx.envFor("alice");
  const previous = randomBytes(500);
  await Deno.writeFile(join(fx.local, "previous.bin"), previous);
  strictEqual((await runCli(["put", join(fx.local, "previous.bin"), "kept.bin"], { env })).code, 0);
  await Deno.writeFile(join(fx.local, "big.bin"), randomBytes(2500));

  const fromFile = await runCli(["put", join(fx.local, "big.bin"), "kept.bin"], { env });
  strictEqual(fromFile.code, 1, fromFile.stderr);
  strictEqual(
    fromFile.stderr,
    'dfos put: Cannot store "kept.bin": its 2500 bytes are over this server\'s largest file size of 2000 bytes\n',
  );
  const fromStdin = await runCli(["put", "-", "kept.bin"], { env, stdin: randomBytes(2500) });
  strictEqual(fromStdin.code, 1, fromStdin.stderr);
  strictEqual(
    fromStdin.stderr,
    'dfos put: Cannot store "kept.bin": the upload went over this server\'s largest file size of 2000 bytes\n',
  );

  strictEqual((await runCli(["put", "-", "second.bin"], { env, stdin: randomBytes(2000) })).code, 0);
  // 500 + 2000 stored: 500 bytes are left of the quota.
  const overQuota = await runCli(["put", "-", "third.bin"], { env, stdin: randomBytes(501) });
  strictEqual(overQuota.code, 1, overQuota.stderr);
  strictEqual(
    overQuota.stderr,
    'dfos put: Cannot store "third.bin": the upload went over alice\'s quota of 3000 bytes\n',
  );
  await Deno.writeFile(join(fx.local, "third.bin"), randomBytes(501));
  const announced = await runCli(["put", join(fx.local, "third.bin")], { env });
  strictEqual(announced.code, 1, announced.stderr);
  strictEqual(
    announced.stderr,
    'dfos put: Cannot store "third.bin": it would go over alice\'s quota of 3000 bytes (it adds 501 bytes; ' +
      "500 bytes are free)\n",
  );
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

Deno.test("dfos serve --quota and --max-file-size, with suffixes, reach the server", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dfos_test_" });
  const port = closedPort();
  await Deno.writeTextFile(join(dir, "users.txt"), `alice:${USERS.alice}\n`);
  const server = spawnCli([
    "serve",
    ...["--host", "127.0.0.1", "--port", String(port), "--root", join(dir, "root")],
    ...["--users", join(dir, "users.txt"), "--log", join(dir, "server.log")],
    ...["--quota", "3K", "--max-file-size", "2K"],
  ], { cwd: dir });
  server.stdin.close();
  try {
    const env = { DFOS_SERVER: `127.0.0.1:${port}`, DFOS_USER: "alice", DFOS_PASSWORD: USERS.alice };
    await waitFor(
      async () => {
        try {
          (await Deno.connect({ hostname: "127.0.0.1", port })).close();
          return true;
        } catch {
          return false;
        }
      },
      "the server to listen",
      20_000,
    );
    strictEqual((await runCli(["put", "-", "a.bin"], { env, stdin: randomBytes(2048) })).code, 0);
    const tooBig = await runCli(["put", "-", "b.bin"], { env, stdin: randomBytes(2049) });
    strictEqual(tooBig.code, 1, tooBig.stderr);
    ok(tooBig.stderr.includes("largest file size of 2048 bytes"), tooBig.stderr);
    const overQuota = await runCli(["put", "-", "b.bin"], { env, stdin: randomBytes(1025) });
    strictEqual(overQuota.code, 1, overQuota.stderr);
    ok(overQuota.stderr.includes("alice's quota of 3072 bytes"), overQuota.stderr);
    strictEqual((await runCli(["put", "-", "b.bin"], { env, stdin: randomBytes(1024) })).code, 0);
  } finally {
    server.kill("SIGTERM");
    const { code } = await server.output();
    strictEqual(code, 0);
    await Deno.remove(dir, { recursive: true });
  }
});
