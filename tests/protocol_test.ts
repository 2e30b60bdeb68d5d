/**
 * End-to-end tests of the dfos protocol on raw sockets against a real server
 * started in-process: hostile bytes, cut connections, corrupt bodies,
 * concurrency, shutdown and symbolic links.
 *
 * @module
 */

import { crc32 } from "node:zlib";
import { deepStrictEqual, match, ok, strictEqual } from "node:assert/strict";
import { join } from "node:path";
import { getLogger } from "@logtape/logtape";
import { DfosClient } from "../client/connection.ts";
import type { BodySummary } from "../shared/body.ts";
import { type Message, MESSAGE_CODES, type MessageOf } from "../shared/messages.ts";
import { Status } from "../shared/status.ts";
import {
  type Fixture,
  listDir,
  memoryLog,
  randomBytes,
  runCli,
  sha256,
  sha256File,
  spawnCli,
  startServer,
  text,
  USERS,
  waitFor,
} from "./_fixture.ts";
import { concat, frameBytes, once, Peer, rawFrame } from "./_peer.ts";
import { bytesOf } from "../shared/pooled_bytes.ts";

const MiB = 1024 * 1024;

/** The frame type byte of HELLO. */
const MESSAGE_HELLO = 0x01;

/** Logs in with the real client and checks a put/get round trip: the server is still serving. */
async function assertServing(fx: Fixture, user = "alice"): Promise<void> {
  const client = await DfosClient.connect({ server: fx.address, user, password: USERS[user] });
  try {
    const body = randomBytes(100_000);
    const name = `alive/${crypto.randomUUID()}`;
    await client.put(name, once(body), { size: body.length });
    const download = await client.get(name);
    const parts: Uint8Array[] = [];
    for await (const chunk of download.body.chunks()) parts.push(chunk.slice());
    strictEqual(sha256(concat(parts)), sha256(body));
    await client.remove(name);
  } finally {
    await client.close();
  }
}

/** Fails unless a CLI run exited 0 and printed nothing on standard error. */
function assertOkCli(result: { code: number; stderr: string }): void {
  strictEqual(result.code, 0, result.stderr);
  strictEqual(result.stderr, "");
}

function partialDir(fx: Fixture, user = "alice"): string {
  return join(fx.root, user, ".dfos-partial");
}

/** The sizes of the upload temporaries of `user`. */
async function partSizes(fx: Fixture, user = "alice"): Promise<number[]> {
  const sizes: number[] = [];
  for (const name of await listDir(partialDir(fx, user))) {
    sizes.push((await Deno.stat(join(partialDir(fx, user), name))).size);
  }
  return sizes;
}

Deno.test("server closes a connection that sends garbage and keeps serving others", async () => {
  await using fx = await startServer();
  const peer = await Peer.open(fx);
  const garbage = new TextEncoder().encode("GET / HTTP/1.1\r\nHost: dfos\r\n\r\n");
  await peer.write(garbage);
  await peer.write(randomBytes(4000)).catch(() => {}); // the server may have closed already
  const { messages } = await peer.untilClosed();
  // Whatever arrived before the close can only be one ERROR ("GET " read as a length is far too long).
  ok(messages.length <= 1, JSON.stringify(messages));
  if (messages.length === 1) {
    strictEqual(messages[0].type, "error");
    strictEqual((messages[0] as MessageOf<"error">).code, Status.TOO_LARGE);
  }
  peer.abort();

  const zero = await Peer.open(fx);
  await zero.write(new Uint8Array([0, 0, 0, 0, 0x01]));
  const zeroMessages = (await zero.untilClosed()).messages;
  deepStrictEqual(zeroMessages.map((m) => m.type === "error" && m.code), [Status.BAD_REQUEST]);
  zero.abort();

  await assertServing(fx);
});

Deno.test("server closes at once a connection that announces a 4 GiB frame, before or after HELLO", async () => {
  await using fx = await startServer();
  const absurd = new Uint8Array([0xff, 0xff, 0xff, 0xff, MESSAGE_HELLO]);

  const before = await Peer.open(fx);
  await before.write(absurd);
  const started = performance.now();
  const beforeMessages = (await before.untilClosed(2000)).messages;
  ok(performance.now() - started < 2000);
  strictEqual(beforeMessages.length, 1);
  strictEqual((beforeMessages[0] as MessageOf<"error">).code, Status.TOO_LARGE);
  match((beforeMessages[0] as MessageOf<"error">).message, /length 4294967295 exceeds the limit/);
  before.abort();

  const afterHello = await Peer.open(fx);
  await afterHello.hello();
  await afterHello.write(absurd);
  const afterMessages = (await afterHello.untilClosed(2000)).messages;
  deepStrictEqual(afterMessages.map((m) => m.type === "error" && m.code), [Status.TOO_LARGE]);
  afterHello.abort();

  // After login the limit is one DATA frame: 4 GiB is still refused.
  const loggedIn = await Peer.login(fx, "alice");
  await loggedIn.write(new Uint8Array([0xff, 0xff, 0xff, 0xff, 0x20]));
  const loggedInMessages = (await loggedIn.untilClosed(2000)).messages;
  deepStrictEqual(loggedInMessages.map((m) => m.type === "error" && m.code), [Status.TOO_LARGE]);
  loggedIn.abort();

  await assertServing(fx);
});

Deno.test("server answers a request before login with AUTH_REQUIRED and closes", async () => {
  await using fx = await startServer();
  for (
    const request of [
      { type: "list", prefix: "", after: "" },
      { type: "get", name: "a.txt", limit: null, digest: "sha256" },
      { type: "put", name: "a.txt", size: 1, digest: "sha256" },
    ] as Message[]
  ) {
    const peer = await Peer.open(fx);
    await peer.hello();
    await peer.send(request);
    const { messages } = await peer.untilClosed();
    strictEqual(messages.length, 1, JSON.stringify(messages));
    deepStrictEqual(messages[0], {
      type: "error",
      code: Status.AUTH_REQUIRED,
      message: `Cannot serve ${request.type}: log in first`,
    });
    peer.abort();
  }
  deepStrictEqual(await listDir(fx.root), [], "nothing was stored");

  // A request before HELLO is refused too.
  const early = await Peer.open(fx);
  await early.send({ type: "list", prefix: "", after: "" });
  const earlyMessages = (await early.untilClosed()).messages;
  deepStrictEqual(earlyMessages.map((m) => m.type === "error" && m.code), [Status.BAD_REQUEST]);
  early.abort();
});

Deno.test("server answers HELLO of another protocol version with VERSION and closes", async () => {
  await using fx = await startServer();
  const peer = await Peer.open(fx);
  await peer.hello(2);
  const { messages } = await peer.untilClosed();
  deepStrictEqual(messages, [{
    type: "error",
    code: Status.VERSION,
    message: "Protocol version 2 is not supported: this server speaks version 1",
  }]);
  peer.abort();
});

Deno.test("server closes the connection after the third wrong password", async () => {
  await using fx = await startServer();
  const peer = await Peer.open(fx);
  await peer.hello();
  const texts: string[] = [];
  for (const password of ["one", "two", "three"]) {
    const end = await peer.scram("alice", password);
    ok(end.type === "error" && end.code === Status.AUTH_FAILED, JSON.stringify(end));
    texts.push(end.message);
  }
  deepStrictEqual(texts, [
    "Authentication failed: unknown user or wrong password (2 attempts left)",
    "Authentication failed: unknown user or wrong password (1 attempt left)",
    "Authentication failed: unknown user or wrong password; closing the connection",
  ]);
  deepStrictEqual((await peer.untilClosed()).messages, []);
  peer.abort();

  // Two failures leave the third attempt open.
  const patient = await Peer.open(fx);
  await patient.hello();
  for (const password of ["one", "two"]) strictEqual((await patient.scram("alice", password)).type, "error");
  strictEqual((await patient.scram("alice", "apple")).type, "auth-ok");
  deepStrictEqual(await patient.names(), []);
  patient.abort();
});

Deno.test("server answers an unknown or malformed message after login with an ERROR and goes on", async () => {
  await using fx = await startServer();
  const peer = await Peer.login(fx, "alice");
  await peer.put("a.txt", new TextEncoder().encode("hello"));

  await peer.write(rawFrame(0x7f, new TextEncoder().encode("{}")));
  strictEqual(await peer.expectError(Status.UNSUPPORTED), "Cannot decode message: unknown type 0x7f");
  deepStrictEqual(await peer.names(), ["a.txt"]);

  await peer.write(rawFrame(0x11, new TextEncoder().encode('{"name":"a.txt"}')));
  strictEqual(await peer.expectError(Status.BAD_REQUEST), 'Cannot decode get: field "limit" is missing');
  await peer.write(rawFrame(0x13, new TextEncoder().encode("not json")));
  await peer.expectError(Status.BAD_REQUEST);
  await peer.send({ type: "hello", protocol: "dfos", version: 1, agent: "again" });
  await peer.expectError(Status.BAD_REQUEST);

  strictEqual(text(await peer.get("a.txt")), "hello");
  peer.abort();
});

Deno.test("server refuses DATA outside a body, even an empty frame, and closes", async () => {
  await using fx = await startServer();
  for (const chunk of [new Uint8Array(0), new Uint8Array([1, 2, 3])]) {
    const peer = await Peer.login(fx, "alice");
    await peer.write(rawFrame(0x20, chunk));
    await peer.send({ type: "list", prefix: "", after: "" });
    strictEqual(await peer.expectError(Status.BAD_REQUEST), "Unexpected data outside a body");
    deepStrictEqual((await peer.untilClosed()).messages, [], "the request behind it is not served");
    peer.abort();
  }
});

Deno.test("server answers a put it cannot read (unknown digest, malformed, over --max-frame) and drops its body", async () => {
  await using fx = await startServer({ maxFrameBytes: 4096 });
  const peer = await Peer.login(fx);
  const encoder = new TextEncoder();
  const put = (json: string) => rawFrame(MESSAGE_CODES.put, encoder.encode(json));
  const data = frameBytes({ type: "data", chunk: randomBytes(3000) });
  const end = (size: number) => frameBytes({ type: "end", size, algorithm: "crc32", digest: "00000000" });

  // As a client sends it: the request and at once its body. Each is answered once; the body is dropped.
  await peer.write(concat([put('{"name":"a","size":3000,"digest":"md5"}'), data, end(3000)]));
  strictEqual(await peer.expectError(Status.UNSUPPORTED), 'Cannot check body: digest algorithm "md5" is not supported');
  await peer.write(concat([put('{"name":"b","size":0}'), end(0)]));
  strictEqual(await peer.expectError(Status.BAD_REQUEST), 'Cannot decode put: field "digest" is missing');
  const long = frameBytes({ type: "put", name: "c".repeat(5000), size: null, digest: "crc32" });
  await peer.write(concat([long, data, data, frameBytes({ type: "abort", reason: "refused" })]));
  strictEqual(
    await peer.expectError(Status.TOO_LARGE),
    `Cannot decode frame: length ${long.length - 4} exceeds the limit of 4096`,
  );

  // The session goes on: nothing was stored, the next put is served.
  deepStrictEqual(await peer.names(), []);
  await peer.put("d", encoder.encode("served"));
  deepStrictEqual(await peer.names(), ["d"]);

  // Body frames after a request that was served are still outside a body: the connection closes.
  await peer.write(data);
  strictEqual(await peer.expectError(Status.BAD_REQUEST), "Unexpected data outside a body");
  deepStrictEqual((await peer.untilClosed()).messages, []);
  peer.abort();
});

Deno.test("an upload cut off mid-body leaves the previous version and no temporary file", async () => {
  await using fx = await startServer();
  const v1 = randomBytes(300_000);
  const first = await Peer.login(fx, "alice");
  await first.put("f", v1);
  first.abort();

  // By hand: announce 3 MiB, send 1 MiB and half a frame, then drop the socket.
  const cut = await Peer.login(fx, "alice");
  await cut.send({ type: "put", name: "f", size: 3 * MiB, digest: "sha256" });
  await cut.send({ type: "data", chunk: randomBytes(MiB) });
  await cut.write(frameBytes({ type: "data", chunk: randomBytes(MiB) }).subarray(0, 500_000));
  await waitFor(async () => (await partSizes(fx)).some((size) => size >= MiB), "the upload's temporary file");
  cut.abort();
  await waitFor(async () => (await listDir(partialDir(fx))).length === 0, "the temporary file to be removed");
  strictEqual(await sha256File(join(fx.root, "alice", "f")), sha256(v1));

  // The real CLI, uploading from a slow pipe, killed with SIGKILL.
  const child = spawnCli(["put", "-", "f"], { env: fx.envFor("alice") });
  const writer = child.stdin.getWriter();
  await writer.write(randomBytes(MiB + 1000)); // the CLI sends a DATA frame per full MiB read
  await waitFor(async () => (await partSizes(fx)).some((size) => size >= MiB), "the CLI's upload to begin", 10_000);
  child.kill("SIGKILL");
  const status = await child.status;
  await writer.close().catch(() => {});
  await child.stdout.cancel();
  await child.stderr.cancel();
  strictEqual(status.signal, "SIGKILL");
  await waitFor(async () => (await listDir(partialDir(fx))).length === 0, "the temporary file to be removed");
  strictEqual(await sha256File(join(fx.root, "alice", "f")), sha256(v1));

  const check = await Peer.login(fx, "alice");
  strictEqual(sha256(await check.get("f")), sha256(v1));
  deepStrictEqual(await check.names(), ["f"]);
  check.abort();
});

Deno.test("a body whose END disagrees is refused with INTEGRITY and the connection stays usable", async () => {
  await using fx = await startServer();
  const v1 = randomBytes(2 * MiB + 17);
  const peer = await Peer.login(fx, "alice");
  await peer.put("f", v1);
  const v2 = randomBytes(MiB + 5);

  // Wrong digest.
  await peer.send({ type: "put", name: "f", size: v2.length, digest: "sha256" });
  await peer.send({ type: "data", chunk: v2.subarray(0, MiB) });
  await peer.send({ type: "data", chunk: v2.subarray(MiB) });
  await peer.send({ type: "end", size: v2.length, algorithm: "sha256", digest: sha256(v1) });
  strictEqual(await peer.expectError(Status.INTEGRITY), "Body is corrupt: sha256 check does not match");
  deepStrictEqual(await listDir(partialDir(fx)), []);
  strictEqual(await sha256File(join(fx.root, "alice", "f")), sha256(v1));

  // END says fewer bytes than were sent.
  await peer.send({ type: "put", name: "f", size: null, digest: "sha256" });
  await peer.send({ type: "data", chunk: v2.subarray(0, MiB) });
  await peer.send({ type: "data", chunk: v2.subarray(MiB) });
  await peer.send({ type: "end", size: v2.length - 1, algorithm: "sha256", digest: sha256(v2) });
  match(
    await peer.expectError(Status.INTEGRITY),
    /^Body is incomplete: received 1048581 bytes, the sender says 1048580/,
  );

  // Fewer bytes than announced in PUT.
  await peer.send({ type: "put", name: "f", size: v2.length + 1, digest: "sha256" });
  await peer.sendBody(v2);
  await peer.expectError(Status.INTEGRITY);

  // More bytes than announced: refused at once, the rest of the body is skipped.
  await peer.send({ type: "put", name: "f", size: 10, digest: "sha256" });
  await peer.sendBody(v2);
  strictEqual(await peer.expectError(Status.INTEGRITY), "Body is longer than the announced 10 bytes");

  // The sender gives up.
  await peer.send({ type: "put", name: "f", size: v2.length, digest: "sha256" });
  await peer.send({ type: "data", chunk: v2.subarray(0, 1000) });
  await peer.send({ type: "abort", reason: "changed my mind" });
  strictEqual(await peer.expectError(Status.ABORTED), "Transfer aborted by the peer: changed my mind");

  deepStrictEqual(await listDir(partialDir(fx)), []);
  strictEqual(await sha256File(join(fx.root, "alice", "f")), sha256(v1));
  deepStrictEqual(await peer.names(), ["f"]);
  strictEqual(sha256(await peer.get("f")), sha256(v1));
  await peer.put("f", v2);
  strictEqual(sha256(await peer.get("f")), sha256(v2));
  peer.abort();
});

Deno.test("a client's ERROR inside an upload is refused as BAD_REQUEST, never taken as the server's reply", async () => {
  await using log = await memoryLog();
  await using fx = await startServer({ log: getLogger(["dfos-test", "server"]) });
  const v1 = randomBytes(1000);
  const peer = await Peer.login(fx, "alice");
  await peer.put("f", v1);
  const forged = "Login of alice from 203.0.113.9";
  await peer.send({ type: "put", name: "f", size: 2000, digest: "sha256" });
  await peer.send({ type: "data", chunk: randomBytes(500) });
  await peer.send({ type: "error", code: Status.NOT_FOUND, message: forged });
  strictEqual(await peer.expectError(Status.BAD_REQUEST), "Unexpected error message inside a body");
  ok(log.lines().every((line) => !line.includes(forged)), "the client's text is not in the log");
  // Nothing was stored, and the connection goes on.
  deepStrictEqual(await listDir(partialDir(fx)), []);
  strictEqual(sha256(await peer.get("f")), sha256(v1));
  peer.abort();
});

Deno.test("two interleaved uploads to one name leave exactly one of them", async () => {
  await using fx = await startServer();
  const a = randomBytes(2 * MiB + 1);
  const b = randomBytes(2 * MiB + 2);
  const [peerA, peerB] = await Promise.all([Peer.login(fx, "alice"), Peer.login(fx, "alice")]);
  await peerA.send({ type: "put", name: "same", size: a.length, digest: "sha256" });
  await peerB.send({ type: "put", name: "same", size: b.length, digest: "sha256" });
  for (let offset = 0; offset < a.length; offset += MiB) {
    await peerA.send({ type: "data", chunk: a.subarray(offset, offset + MiB) });
    await peerB.send({ type: "data", chunk: b.subarray(offset, offset + MiB) });
  }
  await waitFor(async () => (await partSizes(fx)).length === 2, "both uploads to be in progress");
  await Promise.all([
    peerA.send({ type: "end", size: a.length, algorithm: "sha256", digest: sha256(a) }),
    peerB.send({ type: "end", size: b.length, algorithm: "sha256", digest: sha256(b) }),
  ]);
  // Both are confirmed (their sizes in OK are checked by the next test).
  strictEqual((await peerA.expect("ok")).name, "same");
  strictEqual((await peerB.expect("ok")).name, "same");
  const stored = await sha256File(join(fx.root, "alice", "same"));
  ok(stored === sha256(a) || stored === sha256(b), "the file is one of the two uploads, whole");
  deepStrictEqual(await listDir(partialDir(fx)), []);
  deepStrictEqual(await listDir(join(fx.root, "alice")), [".dfos-partial", "same"]);
  peerA.abort();
  peerB.abort();
});

// Regression: OK once reported the size found at the target after the rename, which may be the other upload's.
Deno.test("each of two concurrent uploads to one name is confirmed with its own size", async () => {
  await using fx = await startServer();
  const connect = (user: string) => DfosClient.connect({ server: fx.address, user, password: USERS[user] });
  const [first, second] = await Promise.all([connect("alice"), connect("alice")]);
  try {
    const small = randomBytes(1000);
    const large = randomBytes(70_000);
    const failures: string[] = [];
    for (let round = 0; round < 30; round++) {
      const results = await Promise.allSettled([
        first.put("race", once(small), { size: small.length }),
        second.put("race", once(large), { size: large.length }),
      ]);
      for (const result of results) {
        if (result.status === "rejected") failures.push(`round ${round}: ${(result.reason as Error).message}`);
      }
      if (failures.length > 0) break;
    }
    // A client whose body the server stored whole must not be told otherwise.
    deepStrictEqual(failures, []);
  } finally {
    await Promise.all([first.close(), second.close()]);
  }
});

Deno.test("20 concurrent clients each get back exactly what they put", async () => {
  await using fx = await startServer();
  const users = ["alice", "bob", "carol"];
  const results = await Promise.all(Array.from({ length: 20 }, async (_, i) => {
    const user = users[i % users.length];
    const body = randomBytes(50_000 + i * 90_001);
    const name = `client-${i}/data.bin`;
    const client = await DfosClient.connect({ server: fx.address, user, password: USERS[user] });
    try {
      // Half check with SHA-256 (--verify), half with the default CRC-32.
      const digest = i % 2 === 0 ? "sha256" : "crc32";
      const sent: BodySummary = await client.put(name, once(body), { size: body.length, digest });
      strictEqual(sent.digest, digest === "sha256" ? sha256(body) : crc32(body).toString(16).padStart(8, "0"));
      const download = await client.get(name, { digest });
      strictEqual(download.file.size, body.length);
      const parts: Uint8Array[] = [];
      for await (const chunk of download.body.chunks()) parts.push(chunk.slice());
      return { user, name, expected: sha256(body), got: sha256(concat(parts)) };
    } finally {
      await client.close();
    }
  }));
  for (const { user, name, expected, got } of results) {
    strictEqual(got, expected, `${user} ${name}`);
    strictEqual(await sha256File(join(fx.root, user, name)), expected);
  }
  for (const user of users) {
    const own = results.filter((result) => result.user === user).map((result) => result.name).sort();
    const peer = await Peer.login(fx, user);
    deepStrictEqual(await peer.names(), own);
    peer.abort();
  }
});

Deno.test("server.shutdown() during an upload removes its temporary file and keeps the previous version", async () => {
  await using fx = await startServer();
  const v1 = randomBytes(123_456);
  const peer = await Peer.login(fx, "alice");
  await peer.put("f", v1);
  await peer.send({ type: "put", name: "f", size: 4 * MiB, digest: "sha256" });
  await peer.send({ type: "data", chunk: randomBytes(MiB) });
  await waitFor(async () => (await partSizes(fx)).some((size) => size >= MiB), "the upload's temporary file");

  await fx.server.shutdown();
  await fx.server.finished;
  deepStrictEqual(await listDir(partialDir(fx)), []);
  strictEqual(await sha256File(join(fx.root, "alice", "f")), sha256(v1));
  await peer.untilClosed();
  peer.abort();
  await Deno.connect({ hostname: "127.0.0.1", port: fx.port }).then(
    (conn) => {
      conn.close();
      throw new Error("The server still accepts connections after shutdown()");
    },
    (error) => ok(error instanceof Deno.errors.ConnectionRefused, String(error)),
  );
});

Deno.test("a symbolic link in a user's folder is never followed out of it", async () => {
  await using fx = await startServer();
  const outsideFile = join(fx.dir, "outside.txt");
  const outsideDir = join(fx.dir, "outside");
  await Deno.writeTextFile(outsideFile, "outside secret");
  await Deno.mkdir(outsideDir);
  await Deno.writeTextFile(join(outsideDir, "inner.txt"), "inner secret");
  const home = join(fx.root, "alice");
  await Deno.mkdir(home, { recursive: true });
  await Deno.writeTextFile(join(home, "real.txt"), "mine");
  await Deno.symlink(outsideFile, join(home, "link.txt"));
  await Deno.symlink(outsideDir, join(home, "linkdir"));
  const env = fx.envFor("alice");
  const local = join(fx.local, "up.txt");
  await Deno.writeTextFile(local, "planted");

  const [get, peek, rm, getInner, rmInner, putInner, ls] = await Promise.all([
    runCli(["get", "link.txt", "-"], { env }),
    runCli(["peek", "link.txt"], { env }),
    runCli(["rm", "link.txt"], { env }),
    runCli(["get", "linkdir/inner.txt", "-"], { env }),
    runCli(["rm", "linkdir/inner.txt"], { env }),
    runCli(["put", local, "linkdir/planted.txt"], { env }),
    runCli(["ls", "--json"], { env }),
  ]);
  const linkRefusal = 'Cannot use "link.txt": it is a symbolic link, which dfos does not follow';
  for (const [what, result] of [["get", get], ["peek", peek], ["rm", rm]] as const) {
    strictEqual(result.code, 1, `${what}: ${result.stderr}`);
    strictEqual(result.stdout.length, 0);
  }
  strictEqual(get.stderr, `dfos get: ${linkRefusal}\n`);
  strictEqual(peek.stderr, `dfos peek: ${linkRefusal}\n`);
  strictEqual(rm.stderr, `dfos rm: link.txt: ${linkRefusal}\ndfos rm: 1 of 1 files could not be deleted\n`);
  const dirRefusal = (name: string) => `Cannot use "${name}": "linkdir" is a symbolic link, which dfos does not follow`;
  strictEqual(getInner.code, 1);
  strictEqual(getInner.stderr, `dfos get: ${dirRefusal("linkdir/inner.txt")}\n`);
  strictEqual(getInner.stdout.length, 0);
  strictEqual(rmInner.code, 1);
  strictEqual(putInner.code, 1);
  strictEqual(putInner.stderr, `dfos put: ${dirRefusal("linkdir/planted.txt")}\n`);
  strictEqual(ls.code, 0, ls.stderr);
  deepStrictEqual(JSON.parse(text(ls.stdout)).map((entry: { name: string }) => entry.name), ["real.txt"]);

  strictEqual(await Deno.readTextFile(outsideFile), "outside secret");
  deepStrictEqual(await listDir(outsideDir), ["inner.txt"]);
  strictEqual(await Deno.readTextFile(join(outsideDir, "inner.txt")), "inner secret");
  ok((await Deno.lstat(join(home, "link.txt"))).isSymlink);
  deepStrictEqual(await listDir(partialDir(fx)), []);

  // A user's folder that is itself a link is refused whole.
  const bobOutside = join(fx.dir, "bob-outside");
  await Deno.mkdir(bobOutside);
  await Deno.writeTextFile(join(bobOutside, "x.txt"), "not bob's");
  await Deno.symlink(bobOutside, join(fx.root, "bob"));
  const bob = fx.envFor("bob");
  const [bobLs, bobGet, bobPut] = await Promise.all([
    runCli(["ls"], { env: bob }),
    runCli(["get", "x.txt", "-"], { env: bob }),
    runCli(["put", local, "y.txt"], { env: bob }),
  ]);
  for (const [what, result] of [["ls", bobLs], ["get", bobGet], ["put", bobPut]] as const) {
    ok(result.code !== 0, `bob's ${what} through a linked folder: exit 0`);
    strictEqual(result.stdout.length, 0, `bob's ${what} printed ${text(result.stdout)}`);
  }
  deepStrictEqual(await listDir(bobOutside), ["x.txt"]);
  strictEqual(await Deno.readTextFile(join(bobOutside, "x.txt")), "not bob's");

  // Uploading to the link's name replaces the link, never the file it points to.
  assertOkCli(await runCli(["put", local, "link.txt"], { env }));
  strictEqual(await Deno.readTextFile(outsideFile), "outside secret");
});

Deno.test("server refuses hostile names from a client that skips the CLI's checks, and goes on", async () => {
  await using fx = await startServer();
  const bob = await Peer.login(fx, "bob");
  await bob.put("secret.txt", new TextEncoder().encode("bob's secret"));
  bob.abort();
  const peer = await Peer.login(fx, "alice");
  await peer.put("mine.txt", new TextEncoder().encode("alice's"));
  const names = [
    "../bob/secret.txt",
    "/etc/passwd",
    "a//b",
    "a/",
    "./mine.txt",
    ".dfos-partial/x",
    "a\\..\\b",
    "x\u0000y",
    "cafe\u0301.txt",
    "",
    "x".repeat(256),
  ];
  const body = new TextEncoder().encode("planted");
  for (const name of names) {
    await peer.send({ type: "get", name, limit: null, digest: "sha256" });
    match(await peer.expectError(Status.BAD_NAME), /^Cannot use name /, `get ${JSON.stringify(name)}`);
    await peer.send({ type: "delete", name });
    await peer.expectError(Status.BAD_NAME);
    // The body after a refused PUT is read and dropped, so the next request is understood.
    await peer.send({ type: "put", name, size: body.length, digest: "sha256" });
    await peer.sendBody(body);
    await peer.expectError(Status.BAD_NAME);
  }
  deepStrictEqual(await peer.names(), ["mine.txt"]);
  strictEqual(await Deno.readTextFile(join(fx.root, "bob", "secret.txt")), "bob's secret");
  deepStrictEqual(await listDir(fx.root), ["alice", "bob"]);
  deepStrictEqual(await listDir(join(fx.root, "alice")), [".dfos-partial", "mine.txt"]);
  deepStrictEqual(await listDir(partialDir(fx)), []);
  peer.abort();
});

Deno.test("an upload in progress is invisible to readers and listers until its END", async () => {
  await using fx = await startServer();
  const v1 = randomBytes(5000);
  const v2 = randomBytes(2 * MiB + 9);
  const [writer, creator, reader] = await Promise.all([
    Peer.login(fx, "alice"),
    Peer.login(fx, "alice"),
    Peer.login(fx, "alice"),
  ]);
  await writer.put("f", v1);
  await writer.send({ type: "put", name: "f", size: v2.length, digest: "sha256" });
  await writer.send({ type: "data", chunk: v2.subarray(0, MiB) });
  await creator.send({ type: "put", name: "fresh", size: 3, digest: "sha256" });
  await creator.send({ type: "data", chunk: new TextEncoder().encode("ab") });
  await waitFor(async () => {
    const sizes = await partSizes(fx);
    return sizes.length === 2 && sizes.includes(2) && sizes.some((size) => size >= MiB);
  }, "both uploads to be under way");

  strictEqual(sha256(await reader.get("f")), sha256(v1));
  await reader.send({ type: "list", prefix: "", after: "" });
  const listing = await reader.expect("listing");
  deepStrictEqual(listing.entries.map(({ name, size }) => ({ name, size })), [{ name: "f", size: v1.length }]);
  await reader.send({ type: "get", name: "fresh", limit: null, digest: "sha256" });
  await reader.expectError(Status.NOT_FOUND);

  await writer.send({ type: "data", chunk: v2.subarray(MiB, 2 * MiB) });
  await writer.send({ type: "data", chunk: v2.subarray(2 * MiB) });
  await writer.send({ type: "end", size: v2.length, algorithm: "sha256", digest: sha256(v2) });
  await writer.expect("ok");
  strictEqual(sha256(await reader.get("f")), sha256(v2));
  await creator.send({ type: "data", chunk: new TextEncoder().encode("c") });
  await creator.send({ type: "end", size: 3, algorithm: "sha256", digest: sha256(new TextEncoder().encode("abc")) });
  await creator.expect("ok");
  deepStrictEqual(await reader.names(), ["f", "fresh"]);
  strictEqual(text(await reader.get("fresh")), "abc");
  for (const peer of [writer, creator, reader]) peer.abort();
});

Deno.test("a download abandoned by its client mid-body leaves the server serving and no file open", async () => {
  await using fx = await startServer();
  const big = randomBytes(16 * MiB);
  const peer = await Peer.login(fx, "alice");
  await peer.put("big", big);
  await peer.send({ type: "get", name: "big", limit: null, digest: "sha256" });
  strictEqual((await peer.expect("file")).size, big.length);
  // The first MiB arrives, in one piece or several.
  const first: Uint8Array[] = [];
  let received = 0;
  while (received < MiB) {
    const piece = bytesOf((await peer.expect("data")).chunk).slice();
    first.push(piece);
    received += piece.length;
  }
  deepStrictEqual(concat(first).subarray(0, MiB), big.subarray(0, MiB));
  peer.abort();
  // The server notices when its next write fails; then it closes the file (the resource sanitizer checks).
  await waitFor(() => fx.server.stats.snapshot().aborted.get === 1, "the server to give up sending");
  strictEqual(fx.server.stats.snapshot().failures.CLIENT_GONE, 1, "a client gone, not a failure of the server");
  await assertServing(fx);
});

Deno.test("server re-reads the users file when it changes", async () => {
  await using fx = await startServer();
  const connect = (user: string, password: string) => DfosClient.connect({ server: fx.address, user, password });
  await Deno.writeTextFile(fx.users, "dave:durian\nbob:blueberry\n");
  const dave = await connect("dave", "durian");
  strictEqual(dave.user, "dave");
  await dave.close();
  const alice = await connect("alice", "apple").catch((error) => error);
  if (alice instanceof DfosClient) {
    await alice.close();
    throw new Error("alice can still log in after being removed from the users file");
  }
  strictEqual(alice.code, Status.AUTH_FAILED, String(alice));
  const bob = await connect("bob", "blueberry");
  await bob.close();
});
