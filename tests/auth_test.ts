/**
 * Authentication end to end: SCRAM-SHA-256 by default against users stored
 * in clear and hashed, the same failure for an unknown user as for a wrong
 * password, `dfos passwd`, and a fake server caught by its signature.
 *
 * @module
 */

import { deepStrictEqual, match, ok, strictEqual } from "node:assert/strict";
import { join } from "node:path";
import { getLogger } from "@logtape/logtape";
import { Channel } from "../shared/channel.ts";
import type { Message } from "../shared/messages.ts";
import type { ServeOptions } from "../server/server.ts";
import { Status } from "../shared/status.ts";
import { scramMechanism } from "../client/auth/scram.ts";
import { parseClientFirst } from "../shared/scram.ts";
import { formatSecret, makeSecret } from "../server/auth/scram_secret.ts";
import {
  type CliResult,
  type Fixture,
  listDir,
  makeCertificate,
  memoryLog,
  runCli,
  startServer,
  text,
  USERS,
} from "./_fixture.ts";
import { Peer, plain } from "./_peer.ts";
import { runOnTerminal } from "./_terminal.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function assertOk(result: CliResult, what: string): void {
  strictEqual(result.code, 0, `${what} failed: ${result.stderr}`);
}

/** Adds `user` with `password` to the fixture's users file in hashed form (the server re-reads it). */
async function addHashedUser(fx: Fixture, user: string, password: string): Promise<void> {
  const line = `${user}:${formatSecret(await makeSecret(password))}\n`;
  await Deno.writeTextFile(fx.users, line, { append: true });
}

/**
 * Starts a fixture server that serves TLS, with a certificate made for it
 * (for 127.0.0.1); `cert` is what {@linkcode Peer.openTls} trusts.
 */
async function startTlsServer(options: Omit<ServeOptions, "hostname" | "port" | "root" | "users"> = {}) {
  const dir = await Deno.makeTempDir({ prefix: "dfos_test_" });
  try {
    const { cert, key } = await makeCertificate(dir, "server");
    return { fx: await startServer({ ...options, tls: { cert, key } }), cert };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Runs `dfos ls` as `user` with `password` against the fixture. */
function ls(fx: Fixture, user: string, password: string): Promise<CliResult> {
  return runCli(["ls"], { env: fx.envFor(user, password) });
}

Deno.test("dfos logs in with SCRAM-SHA-256 as users stored in clear and hashed", async () => {
  await using log = await memoryLog();
  await using fx = await startServer({ log: getLogger(["dfos-test", "server"]) });
  await addHashedUser(fx, "dave", "durian");
  const [inClear, hashed, colons] = await Promise.all([
    ls(fx, "alice", "apple"),
    ls(fx, "dave", "durian"),
    ls(fx, "carol", "pass:word:with:colons"),
  ]);
  assertOk(inClear, "ls as alice (in clear)");
  assertOk(hashed, "ls as dave (hashed)");
  assertOk(colons, "ls as carol (in clear, colons)");
  const logins = log.lines().filter((line) => line.startsWith("Login of ")).map((line) =>
    line.replace(/ from \S+/, "")
  );
  deepStrictEqual(logins.sort(), [
    "Login of alice (SCRAM-SHA-256)",
    "Login of carol (SCRAM-SHA-256)",
    "Login of dave (SCRAM-SHA-256)",
  ]);
});

Deno.test("server warns at start-up about each password stored in clear, once", async () => {
  await using log = await memoryLog();
  await using fx = await startServer({ log: getLogger(["dfos-test", "server"]) });
  const warnings = () => log.lines().filter((line) => line.includes("is stored in clear"));
  deepStrictEqual(
    warnings(),
    ["alice", "bob", "carol"].map((user, i) =>
      `${fx.users}:${i + 2}: the password of "${user}" is stored in clear; ` +
      `"dfos passwd ${user} --users ${fx.users}" stores it hashed`
    ),
  );
  // A change to the file (a hashed user added) is no reason to warn again about the others.
  await addHashedUser(fx, "dave", "durian");
  assertOk(await ls(fx, "dave", "durian"), "ls as dave");
  strictEqual(warnings().length, 3, warnings().join("\n"));
});

Deno.test("dfos exits 3 with the same message for an unknown user and a wrong password, in clear or hashed", async () => {
  await using fx = await startServer();
  await addHashedUser(fx, "dave", "durian");
  const results = await Promise.all([
    ls(fx, "alice", "pear"), // in clear, wrong password
    ls(fx, "dave", "apple"), // hashed, wrong password
    ls(fx, "mallory", "apple"), // unknown
    ls(fx, "mallory", "durian"),
  ]);
  for (const result of results) {
    strictEqual(result.code, 3, result.stderr);
    strictEqual(result.stderr, "dfos ls: Authentication failed: unknown user or wrong password (2 attempts left)\n");
    strictEqual(result.stdout.length, 0);
  }
  deepStrictEqual(await listDir(fx.root), [], "no folder for a user that failed to log in");
});

/** Sends a SCRAM client-first for `user`; returns the server-first text. */
async function scramChallenge(peer: Peer, user: string, nonce: string): Promise<string> {
  await peer.send({ type: "auth", mechanism: "SCRAM-SHA-256", data: encoder.encode(`n,,n=${user},r=${nonce}`) });
  return decoder.decode((await peer.expect("auth-continue")).data);
}

/** Answers a server-first with a proof made without the password; returns the ERROR text. */
async function scramGuess(peer: Peer, serverFirst: string): Promise<string> {
  const nonce = serverFirst.split(",")[0].slice(2);
  const proof = new Uint8Array(32).fill(1).toBase64();
  await peer.send({ type: "auth-response", data: encoder.encode(`c=biws,r=${nonce},p=${proof}`) });
  return await peer.expectError(Status.AUTH_FAILED);
}

Deno.test("server answers an unknown user with a challenge shaped like a real user's, then the same failure", async () => {
  await using fx = await startServer();
  await addHashedUser(fx, "dave", "durian");
  const shape = /^r=abc[A-Za-z0-9+/]{24},s=[A-Za-z0-9+/]{22}==,i=4096$/;
  const failures: string[] = [];
  const salts = new Map<string, string>();
  for (const user of ["alice", "dave", "mallory", "mallory"]) {
    const peer = await Peer.open(fx);
    await peer.hello();
    const serverFirst = await scramChallenge(peer, user, "abc");
    match(serverFirst, shape, `${user}: ${serverFirst}`);
    const salt = serverFirst.split(",")[1];
    if (salts.has(user)) strictEqual(salt, salts.get(user), "an unknown user's made-up salt is stable");
    salts.set(user, salt);
    failures.push(await scramGuess(peer, serverFirst));
    peer.abort();
  }
  strictEqual(new Set(salts.values()).size, 3, "every name has its own salt");
  deepStrictEqual(
    new Set(failures),
    new Set(["Authentication failed: unknown user or wrong password (2 attempts left)"]),
  );
});

/** The median of some numbers. */
function median(values: number[]): number {
  const sorted = values.toSorted((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

/**
 * Times failed logins as a known user with a wrong password and as an
 * unknown one, over TLS: 7 rounds of one connection per user (two PLAIN
 * attempts, then a SCRAM one), interleaved and in turns, so that any slowdown
 * hits both alike. Returns the medians, in milliseconds.
 */
async function failureTimes(fx: Fixture, cert: string): Promise<Record<string, number>> {
  const times: Record<string, number[]> = {
    "plain dave": [],
    "plain mallory": [],
    "scram dave": [],
    "scram mallory": [],
  };
  for (let round = 0; round < 7; round++) {
    for (const user of round % 2 === 0 ? ["dave", "mallory"] : ["mallory", "dave"]) {
      const peer = await Peer.openTls(fx, cert);
      await peer.hello();
      for (let attempt = 0; attempt < 3; attempt++) {
        const started = performance.now();
        if (attempt < 2) {
          await peer.send({ type: "auth", mechanism: "PLAIN", data: plain(user, "wrong") });
          await peer.expectError(Status.AUTH_FAILED);
          times[`plain ${user}`].push(performance.now() - started);
        } else {
          await scramGuess(peer, await scramChallenge(peer, user, `n${round}`));
          times[`scram ${user}`].push(performance.now() - started);
        }
      }
      peer.abort();
    }
  }
  return Object.fromEntries(Object.entries(times).map(([key, values]) => [key, median(values)]));
}

/** A hashed line for `user` with made-up keys (no password logs in), `iterations` and a salt of `saltBytes`. */
function madeUpLine(user: string, iterations: number, saltBytes = 16): string {
  const bytes = (n: number) => crypto.getRandomValues(new Uint8Array(n));
  return `${user}:${
    formatSecret({ iterations, salt: bytes(saltBytes), storedKey: bytes(32), serverKey: bytes(32) })
  }\n`;
}

Deno.test("server gives unknown users challenges shaped like real ones, whatever the file's iteration counts", async () => {
  await using fx = await startServer();
  // Hashed users with three shapes; one of them (20000 iterations, a 24-byte salt) is a single user's.
  const lines = [madeUpLine("h1", 4096), madeUpLine("h2", 8192), madeUpLine("h3", 8192), madeUpLine("odd", 20_000, 24)];
  await Deno.writeTextFile(fx.users, lines.join(""), { append: true });
  const challenge = async (user: string) => {
    const peer = await Peer.open(fx);
    try {
      await peer.hello();
      const [, salt, iterations] = (await scramChallenge(peer, user, "abc")).split(",");
      return `${iterations} salt of ${Uint8Array.fromBase64(salt.slice(2)).length} bytes`;
    } finally {
      peer.abort();
    }
  };
  const real = new Set(await Promise.all(["h1", "h2", "odd", "alice"].map(challenge)));
  const unknown = new Map<string, number>();
  for (let i = 0; i < 120; i += 10) {
    const shapes = await Promise.all(Array.from({ length: 10 }, (_, j) => challenge(`nobody-${i + j}`)));
    for (const shape of shapes) unknown.set(shape, (unknown.get(shape) ?? 0) + 1);
  }
  deepStrictEqual([...unknown.keys()].sort(), [...real].sort(), "unknown names show every real shape, and no other");
  ok(unknown.get("i=20000 salt of 24 bytes")! >= 10, `the odd user's shape is no rarer: ${[...unknown].join(", ")}`);
  strictEqual(await challenge("nobody-7"), await challenge("nobody-7"), "the same name gets the same answer");
});

Deno.test("removing a user or changing its password ends its sessions at their next request", async () => {
  await using fx = await startServer();
  const alice = await Peer.login(fx, "alice");
  const bob = await Peer.login(fx, "bob");
  const carol = await Peer.login(fx, "carol");
  // A login under way: dave has his challenge when his line goes.
  await Deno.writeTextFile(fx.users, `dave:${formatSecret(await makeSecret("durian"))}\n`, { append: true });
  const dave = await Peer.open(fx);
  await dave.hello();
  const scram = scramMechanism({ user: "dave", password: "durian" });
  await dave.send({ type: "auth", mechanism: scram.name, data: await scram.start() });
  const daveProof = await scram.step((await dave.expect("auth-continue")).data);

  // alice and dave are removed, bob's password changes; carol's line stays as it was.
  await Deno.writeTextFile(fx.users, `bob:new-banana\ncarol:${USERS.carol}\n`);
  await dave.send({ type: "auth-response", data: daveProof });
  strictEqual(
    await dave.expectError(Status.AUTH_FAILED),
    "Authentication failed: unknown user or wrong password (2 attempts left)",
  );
  dave.abort();

  for (const [peer, user] of [[alice, "alice"], [bob, "bob"]] as const) {
    // The file is looked at once a second at most: the session ends within a few requests.
    const started = performance.now();
    let end: Message | null = null;
    while (end === null && performance.now() - started < 5_000) {
      await peer.send({ type: "list", prefix: "", after: "" });
      const reply = await peer.expect("listing", "error");
      if (reply.type === "error") end = reply;
      else await new Promise((resolve) => setTimeout(resolve, 100));
    }
    deepStrictEqual(end, {
      type: "error",
      code: Status.AUTH_REQUIRED,
      message: `Cannot serve the request: user "${user}" was removed or changed its password; log in again`,
    });
    deepStrictEqual((await peer.untilClosed()).messages, [], `${user}'s connection is closed`);
    peer.abort();
  }
  deepStrictEqual(await carol.names(), [], "carol goes on");
  carol.abort();
  const oldBob = await Peer.open(fx);
  await oldBob.hello();
  strictEqual((await oldBob.scram("bob", "banana")).type, "error", "bob's old password no longer logs in");
  oldBob.abort();
  const cli = await runCli(["ls"], { env: fx.envFor("bob", "new-banana") });
  strictEqual(cli.code, 0, cli.stderr);
});

Deno.test("server takes as long to fail an unknown user as a wrong password (PLAIN and SCRAM)", async () => {
  // Over TLS, where PLAIN is offered; with the throttle off: its delays are the same for both, but would swamp the work.
  const { fx, cert } = await startTlsServer({ loginThrottle: { lockoutMs: 0 } });
  await using _fx = fx;
  await addHashedUser(fx, "dave", "durian");
  // A shortcut for unknown users (no PBKDF2 for PLAIN) would be several times faster, every time. A loaded machine
  // can make one measurement look so by chance (the whole suite runs files in parallel on two cores): up to five are
  // taken, and one within a factor of 2 is enough.
  let verdict = "";
  for (let run = 0; run < 5; run++) {
    const medians = await failureTimes(fx, cert);
    verdict = "";
    for (const mechanism of ["plain", "scram"]) {
      const known = medians[`${mechanism} dave`];
      const unknown = medians[`${mechanism} mallory`];
      if (!(unknown > known / 2 && unknown < known * 2)) {
        verdict += `${mechanism}: median ${unknown.toFixed(2)} ms for an unknown user, ${
          known.toFixed(2)
        } ms for a wrong password; `;
      }
    }
    if (verdict === "") break;
  }
  strictEqual(verdict, "", "five measurements out of a factor of 2");
});

Deno.test("server refuses a SCRAM channel binding request clearly and closes", async () => {
  await using fx = await startServer();
  const peer = await Peer.open(fx);
  await peer.hello();
  await peer.send({
    type: "auth",
    mechanism: "SCRAM-SHA-256",
    data: encoder.encode("p=tls-server-end-point,,n=alice,r=abc"),
  });
  const { messages } = await peer.untilClosed();
  deepStrictEqual(messages, [{
    type: "error",
    code: Status.UNSUPPORTED,
    message: 'Cannot log in with SCRAM-SHA-256: channel binding ("p=tls-server-end-point") is not supported; ' +
      'start with "n,,"',
  }]);
  peer.abort();
});

Deno.test("PLAIN still logs in over TLS, against lines in clear and hashed", async () => {
  const { fx, cert } = await startTlsServer();
  await using _fx = fx;
  await addHashedUser(fx, "dave", "durian");
  for (const [user, password] of [["alice", "apple"], ["dave", "durian"]]) {
    const peer = await Peer.openTls(fx, cert); // its hello() checks that WELCOME offers PLAIN after SCRAM-SHA-256
    await peer.hello();
    await peer.send({ type: "auth", mechanism: "PLAIN", data: plain(user, password) });
    strictEqual((await peer.expect("auth-ok")).user, user);
    deepStrictEqual(await peer.names(), []);
    peer.abort();
  }
});

Deno.test("server without TLS neither offers nor accepts PLAIN, even with the right password", async () => {
  await using fx = await startServer();
  const peer = await Peer.open(fx);
  await peer.hello(); // checks that WELCOME offers SCRAM-SHA-256 alone
  await peer.send({ type: "auth", mechanism: "PLAIN", data: plain("alice", "apple") });
  strictEqual(
    await peer.expectError(Status.AUTH_FAILED),
    'Authentication failed: mechanism "PLAIN" is not offered without TLS: it would send the password in clear ' +
      "(2 attempts left)",
  );
  // The attempt counts as a failed one; SCRAM-SHA-256 still logs in on the same connection.
  strictEqual((await peer.scram("alice", "apple")).type, "auth-ok");
  deepStrictEqual(await peer.names(), []);
  peer.abort();
  strictEqual(fx.server.stats.snapshot().failures.AUTH_FAILED, 1);
});

Deno.test("server answers an unknown mechanism with AUTH_FAILED, as a failed attempt", async () => {
  await using fx = await startServer();
  const peer = await Peer.open(fx);
  await peer.hello();
  await peer.send({ type: "auth", mechanism: "GSSAPI", data: new Uint8Array(0) });
  strictEqual(
    await peer.expectError(Status.AUTH_FAILED),
    'Authentication failed: mechanism "GSSAPI" is not offered (2 attempts left)',
  );
  strictEqual((await peer.scram("alice", "apple")).type, "auth-ok");
  peer.abort();
  strictEqual(fx.server.stats.snapshot().failures.AUTH_FAILED, 1);
});

Deno.test("dfos will not send the password in clear to a plaintext server that offers only PLAIN", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  const received = (async () => {
    const conn = await listener.accept();
    listener.close();
    const channel = new Channel(conn);
    const messages: Message[] = [];
    try {
      messages.push(await channel.expect("hello"));
      await channel.send({ type: "welcome", version: 1, agent: "fake/1", mechanisms: ["PLAIN"] });
      while (true) {
        const message = await channel.receive().catch(() => null);
        if (message === null) break;
        messages.push(message);
      }
    } finally {
      channel.abort();
    }
    return messages;
  })();
  const password = "correct horse battery staple";
  const result = await runCli(["ls"], {
    env: { DFOS_SERVER: `127.0.0.1:${port}`, DFOS_USER: "alice", DFOS_PASSWORD: password },
  });
  const messages = await received;
  strictEqual(result.code, 1, result.stderr);
  strictEqual(
    result.stderr,
    "dfos ls: Cannot log in: the server offers only PLAIN, which would send the password in clear on a connection " +
      "without TLS, and dfos will not send it (a dfos server always offers SCRAM-SHA-256; PLAIN needs --tls)\n",
  );
  deepStrictEqual(messages.map((message) => message.type), ["hello"], "no AUTH was sent");
});

Deno.test("dfos passwd hashes a password in place: the new one logs in, the old one not, the rest kept", async () => {
  await using fx = await startServer();
  // Comments, a blank line, CRLF endings and no final newline: all must survive byte for byte.
  const before = "# test users\r\nalice:apple\r\n\r\n  # bob is next\r\nbob:banana\r\ncarol:pass:word:with:colons";
  await Deno.writeTextFile(fx.users, before);
  await Deno.chmod(fx.users, 0o640);
  const changed = await runCli(["passwd", "alice", "--users", fx.users], { env: { DFOS_PASSWORD: "avocado" } });
  assertOk(changed, "passwd alice");
  strictEqual(text(changed.stdout), `Changed the password of "alice" in ${fx.users}\n`);
  const after = await Deno.readTextFile(fx.users);
  const [hashed] = /alice:SCRAM-SHA-256\$4096:[A-Za-z0-9+/]{22}==\$[A-Za-z0-9+/]{43}=:[A-Za-z0-9+/]{43}=/.exec(after) ??
    [];
  ok(hashed, after);
  strictEqual(after, before.replace("alice:apple", hashed));
  strictEqual((await Deno.stat(fx.users)).mode! & 0o777, 0o640, "the file keeps its mode");
  deepStrictEqual(await listDir(fx.dir), ["local", "root", "users.txt"], "no temporary file left");

  const [fresh, old, other] = await Promise.all([
    ls(fx, "alice", "avocado"),
    ls(fx, "alice", "apple"),
    ls(fx, "bob", "banana"),
  ]);
  assertOk(fresh, "ls with the new password");
  strictEqual(old.code, 3, old.stderr);
  assertOk(other, "ls as bob, untouched");

  // A new user is added at the end, with the file's own line ending.
  const added = await runCli(["passwd", "dave", "--users", fx.users], { env: { DFOS_PASSWORD: "durian" } });
  assertOk(added, "passwd dave");
  strictEqual(text(added.stdout), `Added "dave" to ${fx.users}\n`);
  const last = await Deno.readTextFile(fx.users);
  ok(last.startsWith(`${after}\r\ndave:SCRAM-SHA-256$4096:`), last);
  ok(last.endsWith("\r\n"));
  assertOk(await ls(fx, "dave", "durian"), "ls as dave");
});

Deno.test("dfos passwd refuses a bad user name, a bad iteration count, an empty or missing password", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dfos_test_" });
  try {
    const users = join(dir, "users.txt");
    await Deno.writeTextFile(users, "alice:apple\n");
    const env = { DFOS_PASSWORD: "x" };
    const cases: [string[], Record<string, string>, number, RegExp][] = [
      [["passwd"], env, 2, /passwd takes one USER, got none/],
      [["passwd", "a", "b"], env, 2, /passwd takes one USER, got 2/],
      [["passwd", "a:b"], env, 2, /Cannot use "a:b" as a user name: user name contains ":"/],
      [["passwd", ".hidden"], env, 2, /user name starts with "."/],
      [["passwd", "bob", "--iterations", "1000"], env, 2, /--iterations takes a whole number from 4096 to 10000000/],
      [["passwd", "bob"], { DFOS_PASSWORD: "" }, 1, /Cannot set the password: it is empty/],
      [["passwd", "bob"], {}, 2, /No password given/],
    ];
    for (const [args, childEnv, code, message] of cases) {
      const result = await runCli([...args, "--users", users], { env: childEnv });
      strictEqual(result.code, code, `${args.join(" ")}: ${result.stderr}`);
      match(result.stderr, message);
    }
    strictEqual(await Deno.readTextFile(users), "alice:apple\n", "the file is untouched");
    deepStrictEqual(await listDir(dir), ["users.txt"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("dfos passwd creates a missing users file readable by its owner only, with --iterations", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dfos_test_" });
  try {
    const result = await runCli(["passwd", "alice", "--iterations", "5000"], {
      env: { DFOS_PASSWORD: "apple" },
      cwd: dir,
    });
    assertOk(result, "passwd in an empty folder");
    strictEqual(text(result.stdout), 'Added "alice" to id_passwd.txt\n');
    const file = join(dir, "id_passwd.txt");
    match(await Deno.readTextFile(file), /^alice:SCRAM-SHA-256\$5000:[^\n]+\n$/);
    strictEqual((await Deno.stat(file)).mode! & 0o777, 0o600);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/**
 * A one-connection fake server: it offers SCRAM-SHA-256, makes up a
 * challenge, and ends with `final` (it cannot know the real signature).
 * Returns every message the client sent.
 */
function fakeServer(
  final: (channel: Channel) => Promise<void>,
  options: { challenge: boolean } = { challenge: true },
): { port: number; received: Promise<Message[]> } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  const received = (async () => {
    const conn = await listener.accept();
    listener.close();
    const channel = new Channel(conn);
    const messages: Message[] = [];
    try {
      messages.push(await channel.expect("hello"));
      await channel.send({ type: "welcome", version: 1, agent: "fake/1", mechanisms: ["SCRAM-SHA-256", "PLAIN"] });
      const auth = await channel.expect("auth");
      messages.push(auth);
      if (options.challenge) {
        const first = parseClientFirst(decoder.decode(auth.data));
        const salt = crypto.getRandomValues(new Uint8Array(16)).toBase64();
        await channel.send({
          type: "auth-continue",
          data: encoder.encode(`r=${first.nonce}fake,s=${salt},i=4096`),
        });
        messages.push(await channel.expect("auth-response"));
      }
      await final(channel);
      while (true) {
        const message = await channel.receive().catch(() => null);
        if (message === null) break;
        messages.push(message);
      }
    } finally {
      channel.abort();
    }
    return messages;
  })();
  return { port, received };
}

Deno.test("dfos refuses a fake server whose SCRAM signature is wrong, and never sends it the password", async () => {
  const fake = fakeServer(async (channel) => {
    const signature = crypto.getRandomValues(new Uint8Array(32)).toBase64();
    await channel.send({ type: "auth-ok", user: "alice", data: encoder.encode(`v=${signature}`) });
  });
  const password = "correct horse battery staple";
  const result = await runCli(["put", "-", "secret.txt"], {
    stdin: "top secret",
    env: { DFOS_SERVER: `127.0.0.1:${fake.port}`, DFOS_USER: "alice", DFOS_PASSWORD: password },
  });
  const messages = await fake.received;
  strictEqual(result.code, 1, result.stderr);
  strictEqual(
    result.stderr,
    "dfos put: Cannot log in with SCRAM-SHA-256: the server's signature is wrong: it does not know the password, " +
      "so it is not the server it claims to be\n",
  );
  deepStrictEqual(messages.map((message) => message.type), ["hello", "auth", "auth-response"], "no PUT was sent");
  strictEqual((messages[1] as { mechanism: string }).mechanism, "SCRAM-SHA-256");
  const wire = JSON.stringify(messages, (_key, value) => value instanceof Uint8Array ? decoder.decode(value) : value);
  ok(!wire.includes(password), `the password crossed the wire: ${wire}`);
  ok(!wire.includes("top secret"));
});

Deno.test("dfos refuses a fake server that accepts the login without a SCRAM challenge", async () => {
  const fake = fakeServer(async (channel) => {
    await channel.send({ type: "auth-ok", user: "alice", data: new Uint8Array(0) });
  }, { challenge: false });
  const result = await runCli(["ls"], {
    env: { DFOS_SERVER: `127.0.0.1:${fake.port}`, DFOS_USER: "alice", DFOS_PASSWORD: "apple" },
  });
  const messages = await fake.received;
  strictEqual(result.code, 1, result.stderr);
  match(result.stderr, /^dfos ls: Cannot log in with SCRAM-SHA-256: the server accepted the login without a challenge/);
  deepStrictEqual(messages.map((message) => message.type), ["hello", "auth"], "no LIST was sent");
});

/** Runs `dfos ARGS` under a pseudo-terminal (util-linux `script`), typing `answers` at successive prompts. */
function onTerminal(args: string[], env: Record<string, string>, answers: string[]) {
  const typed = answers.map((answer) => ({ after: "password for", type: `${answer}\r` }));
  return runOnTerminal(args, { env, answers: typed, timeoutMs: 60_000 });
}

Deno.test("dfos passwd asks twice on a terminal, without echo, and refuses two different passwords", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dfos_test_" });
  try {
    const users = join(dir, "users.txt");
    await Deno.writeTextFile(users, "alice:apple\n");
    const differ = await onTerminal(["passwd", "alice", "--users", users], {}, ["guava-one", "guava-two"]);
    strictEqual(differ.code, 1, differ.screen);
    ok(differ.screen.includes("New password for alice: "), differ.screen);
    ok(differ.screen.includes("Retype the new password for alice: "), differ.screen);
    ok(differ.screen.includes("the two passwords typed differ"), differ.screen);
    strictEqual(await Deno.readTextFile(users), "alice:apple\n");

    const same = await onTerminal(["passwd", "alice", "--users", users], {}, ["guava", "guava"]);
    strictEqual(same.code, 0, same.screen);
    ok(!same.screen.includes("guava"), `the password was echoed: ${JSON.stringify(same.screen)}`);
    match(await Deno.readTextFile(users), /^alice:SCRAM-SHA-256\$4096:/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
