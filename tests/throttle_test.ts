/**
 * The throttle of failed logins end to end, against a real server with small
 * settings: answers held longer and longer, then the address locked out; the
 * same user from another address, and other users, still log in; an unknown
 * user and a wrong password cost the same; a held answer blocks nothing.
 *
 * All test connections come from 127.0.0.1, so "another address" is made
 * with a relay whose connections to the server leave from 127.0.0.2 (Linux
 * routes all of 127/8 to the loopback; `node:net` can bind the local
 * address, `Deno.connect` cannot).
 *
 * Timing is asserted only from below (a held answer cannot come early); what
 * each answer was held is read from the server's log.
 *
 * @module
 */

import { deepStrictEqual, match, ok, strictEqual } from "node:assert/strict";
import net from "node:net";
import { getLogger } from "@logtape/logtape";
import { scramMechanism } from "../client/auth/scram.ts";
import type { LoginThrottleOptions } from "../server/throttle.ts";
import { KEY_DERIVATION_LIMIT, KEY_DERIVATIONS } from "../server/users.ts";
import { formatSecret } from "../server/auth/scram_secret.ts";
import { Status } from "../shared/status.ts";
import { type Fixture, makeCertificate, memoryLog, runCli, startServer } from "./_fixture.ts";
import { frameBytes, Peer, plain } from "./_peer.ts";

/** Small settings: 2 free failures, then 200 ms, 400 ms (the cap); 5 failures lock an address out for a minute. */
const SMALL: LoginThrottleOptions = {
  freeFailures: 2,
  delayBaseMs: 200,
  delayMaxMs: 400,
  lockoutFailures: 5,
  lockoutMs: 60_000,
};

/** A relay on 127.0.0.1 whose connections reach the fixture's server from `from`, another loopback address. */
interface Relay extends AsyncDisposable {
  /** Its port on 127.0.0.1. */
  port: number;
  /** The fixture as seen through the relay (for `Peer.open`). */
  fixture: Fixture;
  /** `127.0.0.1:PORT`, for `DFOS_SERVER`. */
  address: string;
}

async function relay(fx: Fixture, from: string): Promise<Relay> {
  const sockets = new Set<net.Socket>();
  const track = (socket: net.Socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => socket.destroy());
  };
  const server = net.createServer((inbound) => {
    const outbound = net.connect({ host: "127.0.0.1", port: fx.port, localAddress: from });
    track(inbound);
    track(outbound);
    inbound.on("close", () => outbound.destroy());
    outbound.on("close", () => inbound.destroy());
    inbound.pipe(outbound);
    outbound.pipe(inbound);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    fixture: { ...fx, port, address: `127.0.0.1:${port}` },
    address: `127.0.0.1:${port}`,
    async [Symbol.asyncDispose]() {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** One SCRAM attempt on a new connection; returns how it ended and how long the answer took. */
async function attempt(fx: Fixture, user: string, password: string) {
  const peer = await Peer.open(fx);
  try {
    await peer.hello();
    const started = performance.now();
    const end = await peer.scram(user, password);
    return { end, ms: performance.now() - started };
  } finally {
    peer.abort();
  }
}

/** The "answer held N ms" figures of the log's failed logins, in order. */
function heldFailures(lines: string[]): number[] {
  return lines.filter((line) => line.startsWith("Failed login from "))
    .map((line) => Number(/answer held (\d+) ms/.exec(line)?.[1]));
}

Deno.test("throttle: failures from one address are answered slower, then it is locked out; another address is not", async () => {
  await using log = await memoryLog();
  await using fx = await startServer({ log: getLogger(["dfos-test", "server"]), loginThrottle: SMALL });
  await using other = await relay(fx, "127.0.0.2");

  // Five wrong passwords from 127.0.0.1, one connection each (three per connection would close it).
  const answers = [];
  for (let i = 1; i <= 5; i++) answers.push(await attempt(fx, "alice", `wrong-${i}`));
  deepStrictEqual(heldFailures(log.lines()), [0, 0, 200, 400, 400], "held after 2 free failures, doubling to the cap");
  for (const [i, held] of [[2, 200], [3, 400], [4, 400]]) {
    ok(answers[i].ms >= held - 5, `answer ${i + 1} came after ${answers[i].ms.toFixed(0)} ms, held ${held} ms`);
  }
  for (
    const [i, held] of [[0, ""], [1, ""], [2, "; answer held 200 ms after failed logins"], [
      3,
      "; answer held 400 ms after failed logins",
    ]] as const
  ) {
    deepStrictEqual(answers[i].end, {
      type: "error",
      code: Status.AUTH_FAILED,
      message: `Authentication failed: unknown user or wrong password (2 attempts left${held})`,
    });
  }
  // The fifth failure locks 127.0.0.1 out, and says so.
  deepStrictEqual(answers[4].end, {
    type: "error",
    code: Status.AUTH_FAILED,
    message: "Authentication failed: unknown user or wrong password; answer held 400 ms after failed logins; " +
      "too many failed logins from 127.0.0.1: no login from there for 60 s; closing the connection",
  });
  ok(
    log.lines().some((line) =>
      /^Locking out 127\.0\.0\.1 for 60 s after 5 failed logins, the last from 127\.0\.0\.1:\d+ as alice$/.test(line)
    ),
    log.lines().join("\n"),
  );

  // Locked out: even the right password is refused at once, before any challenge, for anyone.
  const peer = await Peer.open(fx);
  await peer.hello();
  const refused = await peer.scram("bob", "banana");
  ok(refused.type === "error" && refused.code === Status.AUTH_FAILED, JSON.stringify(refused));
  match(refused.message, /^Cannot log in: too many failed logins from 127\.0\.0\.1; try again in \d+ s$/);
  deepStrictEqual((await peer.untilClosed()).messages, [], "and the connection is closed");
  peer.abort();
  const cli = await runCli(["ls"], { env: fx.envFor("alice") });
  strictEqual(cli.code, 3, cli.stderr);
  match(cli.stderr, /^dfos ls: Cannot log in: too many failed logins from 127\.0\.0\.1; try again in \d+ s\n$/);

  // From 127.0.0.2, alice's right password still logs in, after her name's delay; bob is not delayed at all.
  const alice = await attempt(other.fixture, "alice", "apple");
  strictEqual(alice.end.type, "auth-ok");
  ok(alice.ms >= 395, `alice's answer came after ${alice.ms.toFixed(0)} ms, her name's delay is 400 ms`);
  strictEqual((await attempt(other.fixture, "bob", "banana")).end.type, "auth-ok");
  const cliOther = await runCli(["ls"], { env: { ...fx.envFor("carol"), DFOS_SERVER: other.address } });
  strictEqual(cliOther.code, 0, cliOther.stderr);
  const logins = log.lines().filter((line) => line.startsWith("Login of "));
  deepStrictEqual(logins.map((line) => line.replace(/ from [\d.]+:\d+/, "")), [
    "Login of alice (SCRAM-SHA-256; answer held 400 ms)",
    "Login of bob (SCRAM-SHA-256)",
    "Login of carol (SCRAM-SHA-256)",
  ]);
  ok(logins.every((line) => line.includes(" from 127.0.0.2:")), logins.join("\n"));

  const { failures } = fx.server.stats.snapshot();
  strictEqual(failures.AUTH_FAILED, 5);
  strictEqual(failures.AUTH_LOCKOUT, 1);
  strictEqual(failures.AUTH_LOCKED_OUT, 2);
});

Deno.test("throttle: an unknown user and a wrong password get the same answers, held as long", async () => {
  await using log = await memoryLog();
  await using fx = await startServer({
    log: getLogger(["dfos-test", "server"]),
    loginThrottle: { ...SMALL, lockoutFailures: 0 },
  });
  await using other = await relay(fx, "127.0.0.2");
  // alice (wrong password) from 127.0.0.1, mallory (no such user) from 127.0.0.2, in turn: same counts on both sides.
  const known: { message: string; ms: number }[] = [];
  const unknown: { message: string; ms: number }[] = [];
  for (let i = 0; i < 5; i++) {
    for (const [side, fixture, user] of [[known, fx, "alice"], [unknown, other.fixture, "mallory"]] as const) {
      const { end, ms } = await attempt(fixture, user, `guess-${i}`);
      ok(end.type === "error", JSON.stringify(end));
      side.push({ message: end.message, ms });
    }
  }
  deepStrictEqual(unknown.map((answer) => answer.message), known.map((answer) => answer.message));
  const held = heldFailures(log.lines());
  const knownHeld = held.filter((_, i) => i % 2 === 0);
  const unknownHeld = held.filter((_, i) => i % 2 === 1);
  deepStrictEqual(knownHeld, [0, 0, 200, 400, 400]);
  deepStrictEqual(unknownHeld, knownHeld, "the same delays for a name that does not exist");
  for (let i = 0; i < 5; i++) {
    ok(known[i].ms >= knownHeld[i] - 5 && unknown[i].ms >= unknownHeld[i] - 5, `attempt ${i + 1}`);
  }
});

Deno.test("throttle: a held answer blocks nothing else, and a shutdown does not wait for it", async () => {
  await using fx = await startServer({
    loginThrottle: { freeFailures: 1, delayBaseMs: 8_000, delayMaxMs: 8_000, lockoutFailures: 0 },
    handshakeTimeoutMs: 60_000,
  });
  await using other = await relay(fx, "127.0.0.2");
  const held = await Peer.open(fx);
  await held.hello();
  strictEqual((await held.scram("mallory", "one")).type, "error"); // the free failure
  const started = performance.now();
  const answer = held.scram("mallory", "two").catch((error: Error) => error); // held 8 s
  // Meanwhile, from another address, bob logs in and lists his files.
  const bob = await Peer.login(other.fixture, "bob");
  deepStrictEqual(await bob.names(), []);
  bob.abort();
  ok(performance.now() - started < 8_000, "bob was served while mallory's answer was held");
  // A shutdown ends the wait at once (the test's sanitizers check that no timer is left).
  await fx.shutdown();
  ok(performance.now() - started < 8_000, "the shutdown did not wait for the held answer");
  const end = await answer;
  ok(end instanceof Error, `the held answer was sent: ${JSON.stringify(end)}`);
  match(end.message, /the connection was closed/);
  held.abort();
});

const encoder = new TextEncoder();

/** A wrong proof for a server-first challenge: the AUTH-RESPONSE's bytes. */
function wrongProof(serverFirst: Uint8Array): Uint8Array {
  const nonce = new TextDecoder().decode(serverFirst).split(",")[0].slice(2);
  const proof = new Uint8Array(32).fill(7).toBase64();
  return frameBytes({ type: "auth-response", data: encoder.encode(`c=biws,r=${nonce},p=${proof}`) });
}

Deno.test("throttle: 300 proofs sent at once from one address: at most the limit checked, no login after the lockout", async () => {
  await using log = await memoryLog();
  await using fx = await startServer({
    log: getLogger(["dfos-test", "server"]),
    loginThrottle: { freeFailures: 1000, lockoutFailures: 20, lockoutMs: 60_000 },
    handshakeTimeoutMs: 60_000,
  });
  const right = 150; // alice's right password, in the middle of 299 wrong ones
  const peers = await Promise.all(Array.from({ length: 300 }, async (_, i) => {
    const peer = await Peer.open(fx);
    await peer.hello();
    const scram = scramMechanism({ user: "alice", password: i === right ? "apple" : `guess-${i}` });
    await peer.send({ type: "auth", mechanism: scram.name, data: await scram.start() });
    const challenge = (await peer.expect("auth-continue")).data;
    const proof = i === right
      ? frameBytes({ type: "auth-response", data: await scram.step(challenge) })
      : wrongProof(challenge);
    return { peer, proof };
  }));
  // Every challenge is out; now all the proofs at once.
  await Promise.all(peers.map(({ peer, proof }) => peer.write(proof)));
  const ends = await Promise.all(peers.map(({ peer }) => peer.expect("auth-ok", "error")));
  for (const { peer } of peers) peer.abort();

  const { failures } = fx.server.stats.snapshot();
  ok(failures.AUTH_FAILED <= 20, `${failures.AUTH_FAILED} proofs were checked and failed; the limit is 20`);
  strictEqual(failures.AUTH_LOCKOUT, 1);
  const lines = log.lines();
  const lockedAt = lines.findIndex((line) => line.startsWith("Locking out 127.0.0.1"));
  const loginAt = lines.findIndex((line) => line.startsWith("Login of alice"));
  ok(lockedAt >= 0, "the address was locked out");
  ok(loginAt < lockedAt, `a login came after the lockout began:\n${lines.join("\n")}`);
  const refused = ends.filter((end) => end.type === "error" && end.message.startsWith("Cannot log in: too many"));
  strictEqual(refused.length + failures.AUTH_FAILED + (loginAt >= 0 ? 1 : 0), 300, "every proof was answered");
});

Deno.test("throttle: logins as one's own account never reset the lockout earned guessing another's", async () => {
  await using fx = await startServer({ loginThrottle: { ...SMALL, freeFailures: 100 } }); // 5 failures lock out
  const answers: string[] = [];
  for (let round = 0; round < 4; round++) {
    for (let i = 0; i < 4; i++) {
      const { end } = await attempt(fx, "bob", `guess-${round}-${i}`);
      answers.push(end.type === "error" ? end.message : "logged in as bob");
    }
    const own = await attempt(fx, "alice", "apple"); // the attacker's own account
    answers.push(own.end.type === "error" ? own.end.message : "logged in as alice");
  }
  const { failures } = fx.server.stats.snapshot();
  strictEqual(
    failures.AUTH_FAILED,
    5,
    `guesses checked: ${failures.AUTH_FAILED}, the limit is 5\n${answers.join("\n")}`,
  );
  strictEqual(failures.AUTH_LOCKOUT, 1);
  strictEqual(answers[4], "logged in as alice", "a login before the lockout is fine");
  match(answers[5], /no login from there for 60 s; closing the connection$/);
  for (const answer of answers.slice(6)) match(answer, /^Cannot log in: too many failed logins from 127\.0\.0\.1/);
});

Deno.test("throttle: every refused login counts, malformed or not: no free retries", async () => {
  await using fx = await startServer({ loginThrottle: { ...SMALL, freeFailures: 100 } }); // 5 failures lock out
  const scram = "SCRAM-SHA-256";
  const tries: [string, (peer: Peer) => Promise<void>, number, string | RegExp][] = [
    [
      "a SCRAM client-first that is not one",
      async (peer) => {
        await peer.send({ type: "auth", mechanism: scram, data: encoder.encode("hello") });
      },
      Status.BAD_REQUEST,
      /^Cannot log in with SCRAM-SHA-256: /,
    ],
    [
      "a SCRAM message that is not UTF-8",
      async (peer) => {
        await peer.send({ type: "auth", mechanism: scram, data: new Uint8Array([0x6e, 0x2c, 0x2c, 0xff, 0xfe]) });
      },
      Status.BAD_REQUEST,
      "Cannot log in with SCRAM-SHA-256: message is not UTF-8",
    ],
    [
      "a malformed client-final",
      async (peer) => {
        await peer.send({ type: "auth", mechanism: scram, data: encoder.encode("n,,n=bob,r=abc") });
        await peer.expect("auth-continue");
        await peer.send({ type: "auth-response", data: encoder.encode("c=biws,r=abc") });
      },
      Status.BAD_REQUEST,
      /^Cannot log in with SCRAM-SHA-256: /,
    ],
    [
      "another message in place of AUTH-RESPONSE",
      async (peer) => {
        await peer.send({ type: "auth", mechanism: scram, data: encoder.encode("n,,n=bob,r=abc") });
        await peer.expect("auth-continue");
        await peer.send({ type: "list", prefix: "", after: "" });
      },
      Status.BAD_REQUEST,
      /auth-response/,
    ],
    [
      "a request before login",
      async (peer) => {
        await peer.send({ type: "list", prefix: "", after: "" });
      },
      Status.AUTH_REQUIRED,
      "Cannot serve list: log in first",
    ],
  ];
  for (const [what, send, code, message] of tries) {
    const peer = await Peer.open(fx);
    await peer.hello();
    await send(peer);
    const closed = await peer.untilClosed();
    peer.abort();
    strictEqual(closed.messages.length, 1, `${what}: ${JSON.stringify(closed.messages)}`);
    const error = closed.messages[0];
    ok(error.type === "error" && error.code === code, `${what}: ${JSON.stringify(error)}`);
    if (typeof message === "string") strictEqual(error.message, message, what);
    else match(error.message, message, what);
  }
  // Five refused logins: the address is locked out, and the right password no longer gets in.
  const { end } = await attempt(fx, "bob", "banana");
  ok(end.type === "error", `bob logged in after 5 malformed logins: ${JSON.stringify(end)}`);
  match(end.message, /^Cannot log in: too many failed logins from 127\.0\.0\.1; try again in \d+ s$/);
  strictEqual(fx.server.stats.snapshot().failures.AUTH_LOCKOUT, 1);
});

Deno.test("throttle: 40 PLAIN logins at once over TLS with a costly hash: PBKDF2 bounded, counted, others still served", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dfos_test_" });
  const { cert, key } = await makeCertificate(dir, "server").finally(() => Deno.remove(dir, { recursive: true }));
  // No delays (they would only make the test slow); the default lockout: 20 failures.
  await using fx = await startServer({
    tls: { cert, key },
    handshakeTimeoutMs: 60_000,
    loginThrottle: { freeFailures: 1000 },
  });
  await using other = await relay(fx, "127.0.0.2");
  // A user hashed with 1,000,000 iterations (made-up keys: no password logs in as heavy).
  const heavy = {
    iterations: 1_000_000,
    salt: crypto.getRandomValues(new Uint8Array(16)),
    storedKey: crypto.getRandomValues(new Uint8Array(32)),
    serverKey: crypto.getRandomValues(new Uint8Array(32)),
  };
  await Deno.writeTextFile(fx.users, `heavy:${formatSecret(heavy)}\n`, { append: true });

  let peak = 0;
  const sampler = setInterval(() => peak = Math.max(peak, KEY_DERIVATIONS.active), 2);
  try {
    const flood = Array.from({ length: 40 }, async (_, i) => {
      const peer = await Peer.openTls(fx, cert);
      try {
        await peer.hello();
        await peer.send({ type: "auth", mechanism: "PLAIN", data: plain("heavy", `guess-${i}`) });
        return await peer.expect("error");
      } finally {
        peer.abort();
      }
    });
    // Meanwhile, from another address, bob logs in (SCRAM: no PBKDF2 at login) and lists his files.
    await new Promise((resolve) => setTimeout(resolve, 100));
    const started = performance.now();
    const bob = await Peer.openTls(other.fixture, cert);
    await bob.hello();
    strictEqual((await bob.scram("bob", "banana")).type, "auth-ok");
    const bobMs = performance.now() - started;
    bob.abort();
    const ends = await Promise.all(flood);
    ok(bobMs < 5_000, `bob's login took ${bobMs.toFixed(0)} ms during the flood`);
    ok(ends.every((end) => end.code === Status.AUTH_FAILED), JSON.stringify(ends));
  } finally {
    clearInterval(sampler);
  }
  ok(peak <= KEY_DERIVATION_LIMIT, `${peak} PBKDF2 derivations ran at once; the limit is ${KEY_DERIVATION_LIMIT}`);
  const { failures } = fx.server.stats.snapshot();
  ok(failures.AUTH_FAILED <= 20, `${failures.AUTH_FAILED} PLAIN passwords were derived; the address's limit is 20`);
  strictEqual(failures.AUTH_LOCKOUT, 1);
});

Deno.test("dfos serve checks its --auth-* flags", async () => {
  const help = await runCli(["serve", "--help"]);
  strictEqual(help.code, 0, help.stderr);
  const usage = new TextDecoder().decode(help.stdout) + help.stderr;
  for (const flag of ["--auth-free-failures N", "--auth-max-delay SECONDS", "--auth-lockout-failures N"]) {
    ok(usage.includes(flag), `${flag} missing from the usage:\n${usage}`);
  }
  ok(usage.includes("--auth-lockout SECONDS"), usage);
  const cases: [string[], RegExp][] = [
    [["--auth-free-failures", "many"], /--auth-free-failures takes a whole number from 0 to 1000000, not "many"/],
    [["--auth-lockout-failures", "1.5"], /--auth-lockout-failures takes a whole number/],
    [["--auth-max-delay", "1s"], /--auth-max-delay takes a number of seconds/],
    [["--auth-lockout", "forever"], /--auth-lockout takes a number of seconds/],
  ];
  for (const [args, message] of cases) {
    const result = await runCli(["serve", "--port", "0", ...args]);
    strictEqual(result.code, 2, `${args.join(" ")}: ${result.stderr}`);
    match(result.stderr, message);
  }
});
