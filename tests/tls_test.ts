/**
 * End-to-end tests of TLS: `dfos serve --tls-cert --tls-key` (and `serve()`
 * with `tls`) against the CLI's `--tls` / `--ca` / `DFOS_TLS` and
 * `DfosClient.connect({ tls })`, with certificates made by openssl at test
 * time. Round trips keep every byte; a certificate the client does not accept
 * is a clear failure, never a fallback to plaintext; a plaintext client and a
 * TLS server (or the reverse) part at once, with a hint; the server's limits
 * (BUSY, the handshake timeout, which the TLS handshake counts against, and
 * the drain) work the same over TLS.
 *
 * @module
 */

import { deepStrictEqual, match, ok, rejects, strictEqual } from "node:assert/strict";
import { join } from "node:path";
import { DfosClient, TlsError } from "../client/connection.ts";
import { Channel } from "../shared/channel.ts";
import { DfosError, Status } from "../shared/status.ts";
import {
  type Certificate,
  type CertificateOptions,
  delay,
  type Fixture,
  listDir,
  makeCertificate,
  randomBytes,
  runCli,
  sha256,
  sha256File,
  spawnCli,
  startServer,
  USERS,
  waitFor,
} from "./_fixture.ts";
import { concat, frameBytes, gatedBody, HELLO, once, plain } from "./_peer.ts";

const MiB = 1024 * 1024;

/** A temporary folder for one test's certificates. */
interface CertificateDir extends AsyncDisposable {
  /** The folder. */
  dir: string;
  /** Makes a certificate in it (see `makeCertificate`). */
  make(name: string, options?: CertificateOptions): Promise<Certificate>;
}

async function certificateDir(): Promise<CertificateDir> {
  const dir = await Deno.makeTempDir({ prefix: "dfos_tls_" });
  return {
    dir,
    make: (name, options) => makeCertificate(dir, name, options),
    [Symbol.asyncDispose]: () => Deno.remove(dir, { recursive: true }),
  };
}

/** Starts a TLS fixture server with a fresh self-signed certificate for localhost and 127.0.0.1. */
async function startTlsServer(
  certs: CertificateDir,
  options: Parameters<typeof startServer>[0] = {},
): Promise<{ fx: Fixture; certificate: Certificate }> {
  const certificate = await certs.make("server");
  const fx = await startServer({ ...options, tls: certificate });
  return { fx, certificate };
}

function connectTls(fx: Fixture, certificate: Certificate, user = "alice"): Promise<DfosClient> {
  return DfosClient.connect({
    server: `localhost:${fx.port}`,
    user,
    password: USERS[user],
    tls: { caCerts: [certificate.cert] },
  });
}

/** The environment that makes the CLI talk to the fixture's server by the name `localhost`. */
function localhostEnv(fx: Fixture, user = "alice"): Record<string, string> {
  return { ...fx.envFor(user), DFOS_SERVER: `localhost:${fx.port}` };
}

/**
 * Reads until the server closes the connection (end of input or a reset),
 * for at most `timeoutMs`.
 *
 * @returns The bytes received, or null when the connection was still open at the deadline.
 */
async function untilClosed(conn: Deno.Conn, timeoutMs: number): Promise<number[] | null> {
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    conn.close();
  }, timeoutMs);
  const received: number[] = [];
  try {
    const scratch = new Uint8Array(1024);
    while (true) {
      const n = await conn.read(scratch);
      if (n === null) break;
      received.push(...scratch.subarray(0, n));
    }
  } catch (error) {
    if (timedOut) return null;
    if (!(error instanceof Deno.errors.ConnectionReset)) throw error;
  } finally {
    clearTimeout(timer);
  }
  return received;
}

/**
 * Deno's TLS listener keeps the socket of a connection closed before its TLS
 * handshake completed until the client sends something or hangs up (the
 * close waits for the handshake). dfos's session is over at its deadline all
 * the same; this shows that the socket then goes as soon as the client stirs.
 */
async function assertGoneOnceStirred(conn: Deno.Conn): Promise<void> {
  await conn.write(new Uint8Array(16)).catch(() => {}); // not a TLS record: the pending handshake fails
  ok(await untilClosed(conn, 2000) !== null, "the connection was closed once the client wrote");
  conn.close();
}

Deno.test("dfos put and get over TLS with --ca keep every byte of a 5 MiB file and of a small one", async () => {
  await using certs = await certificateDir();
  const { fx, certificate } = await startTlsServer(certs);
  await using _fx = fx;
  strictEqual(fx.server.tls, true);
  const env = localhostEnv(fx);
  for (const [name, size] of [["big.bin", 5 * MiB + 3], ["small.txt", 100]] as const) {
    const bytes = randomBytes(size);
    const local = join(fx.local, name);
    await Deno.writeFile(local, bytes);
    const put = await runCli(["put", "--tls", "--ca", certificate.certFile, local, name], { env });
    strictEqual(put.code, 0, put.stderr);
    strictEqual(await sha256File(join(fx.root, "alice", name)), sha256(bytes));
    const back = join(fx.local, `${name}.back`);
    const get = await runCli(["get", "--tls", "--ca", certificate.certFile, "--verify", name, back], { env });
    strictEqual(get.code, 0, get.stderr);
    strictEqual(await sha256File(back), sha256(bytes));
  }
  // Every client ended its TLS session cleanly (close_notify), so none counts as a lost connection.
  const stats = fx.server.stats.snapshot();
  strictEqual(stats.connections, 4);
  deepStrictEqual(stats.failures, {});
});

Deno.test("DFOS_TLS=1 and DFOS_CA make every client command use TLS; --ca alone implies --tls", async () => {
  await using certs = await certificateDir();
  const { fx, certificate } = await startTlsServer(certs);
  await using _fx = fx;
  const env = { ...localhostEnv(fx), DFOS_TLS: "1", DFOS_CA: certificate.certFile };
  const put = await runCli(["put", "-", "notes.txt"], { env, stdin: "hello over TLS\n" });
  strictEqual(put.code, 0, put.stderr);
  const ls = await runCli(["ls"], { env });
  strictEqual(ls.code, 0, ls.stderr);
  match(new TextDecoder().decode(ls.stdout), /^15 +\S+ \S+ UTC +notes\.txt\n$/);
  const peek = await runCli(["peek", "notes.txt"], { env });
  strictEqual(new TextDecoder().decode(peek.stdout), "hello over TLS\n");

  // DFOS_TLS=1 with --ca on the command line, and --ca alone.
  const withFlag = await runCli(["ls", "--ca", certificate.certFile], {
    env: { ...localhostEnv(fx), DFOS_TLS: "1" },
  });
  strictEqual(withFlag.code, 0, withFlag.stderr);
  const caAlone = await runCli(["rm", "--ca", certificate.certFile, "notes.txt"], { env: localhostEnv(fx) });
  strictEqual(caAlone.code, 0, caAlone.stderr);
  deepStrictEqual((await listDir(join(fx.root, "alice"))).filter((name) => !name.startsWith(".")), []);

  // A DFOS_TLS that is neither on nor off is a usage error, not a guess.
  const bad = await runCli(["ls"], { env: { ...env, DFOS_TLS: "maybe" } });
  strictEqual(bad.code, 2, bad.stderr);
  match(bad.stderr, /DFOS_TLS takes 1 or 0, not "maybe"/);
});

Deno.test("DfosClient.connect with tls says so on the client, and trusts a CA given in caCerts", async () => {
  await using certs = await certificateDir();
  const ca = await certs.make("test-ca", { ca: true });
  const signed = await certs.make("server", { issuer: ca });
  await using fx = await startServer({ tls: signed });
  const client = await DfosClient.connect({
    server: `127.0.0.1:${fx.port}`,
    user: "bob",
    password: USERS.bob,
    tls: { caCerts: [ca.cert] },
  });
  strictEqual(client.tls, true);
  const body = randomBytes(3 * MiB + 17);
  await client.put("b.bin", once(body), { size: body.length });
  const { body: download } = await client.get("b.bin");
  const parts: Uint8Array[] = [];
  for await (const chunk of download.chunks()) parts.push(chunk.slice());
  strictEqual(sha256(concat(parts)), sha256(body));
  await client.close();

  // The CLI the same way: --ca with the CA's certificate, not the server's.
  const ls = await runCli(["ls", "--tls", "--ca", ca.certFile], { env: fx.envFor("bob") });
  strictEqual(ls.code, 0, ls.stderr);
  match(new TextDecoder().decode(ls.stdout), /b\.bin/);

  await using plaintext = await startServer();
  const plainClient = await DfosClient.connect({ server: plaintext.address, user: "bob", password: USERS.bob });
  strictEqual(plainClient.tls, false);
  strictEqual(plaintext.server.tls, false);
  await plainClient.close();
});

Deno.test("a certificate that does not carry the host name is refused: exit 1 and why", async () => {
  await using certs = await certificateDir();
  const dnsOnly = await certs.make("dns-only", { names: ["DNS:localhost"] });
  const other = await certs.make("other", { names: ["DNS:other.example"] });
  const cases = [{ certificate: dnsOnly, host: "127.0.0.1" }, { certificate: other, host: "localhost" }];
  for (const { certificate, host } of cases) {
    await using fx = await startServer({ tls: certificate });
    const result = await runCli(["ls", "--tls", "--ca", certificate.certFile], {
      env: { ...fx.envFor("alice"), DFOS_SERVER: `${host}:${fx.port}` },
    });
    strictEqual(result.code, 1, result.stderr);
    const escaped = host.replaceAll(".", "\\.");
    match(
      result.stderr,
      new RegExp(
        `^dfos ls: Cannot connect to ${escaped}:\\d+: the server's TLS certificate was not accepted: ` +
          `it does not carry the name the client connected to: certificate not valid for name "${escaped}"`,
      ),
    );
    strictEqual(fx.server.stats.snapshot().failures.TLS_HANDSHAKE, 1);
    strictEqual(fx.server.stats.snapshot().operations.ls ?? 0, 0);
  }
});

Deno.test("a certificate nobody vouches for is refused: exit 1, and --ca is suggested", async () => {
  await using certs = await certificateDir();
  const { fx } = await startTlsServer(certs);
  await using _fx = fx;
  const stranger = await certs.make("stranger");
  const expected =
    /^dfos ls: Cannot connect to localhost:\d+: the server's TLS certificate was not accepted: it is not signed by a trusted authority \(UnknownIssuer\); trust it, or the CA that signed it, with --ca FILE\n$/;
  // No --ca: only the default roots, which do not know a self-signed certificate.
  const untrusted = await runCli(["ls", "--tls"], { env: localhostEnv(fx) });
  strictEqual(untrusted.code, 1, untrusted.stderr);
  match(untrusted.stderr, expected);
  // --ca with some other certificate.
  const wrongCa = await runCli(["ls", "--ca", stranger.certFile], { env: localhostEnv(fx) });
  strictEqual(wrongCa.code, 1, wrongCa.stderr);
  match(wrongCa.stderr, expected);
  // In-process: a TlsError, and no password was sent (the server never saw a login).
  const error = await connectTls(fx, stranger).then(() => null, (error) => error);
  ok(error instanceof TlsError, `expected a TlsError, got ${error}`);
  await waitFor(() => fx.server.stats.snapshot().failures.TLS_HANDSHAKE === 3, "three failed TLS handshakes");
  strictEqual(fx.server.stats.snapshot().failures.AUTH_FAILED, undefined);
});

Deno.test("a plaintext client and a TLS server part at once, with a hint to use --tls", async () => {
  await using certs = await certificateDir();
  // A long handshake timeout: a client left waiting for it would fail the timing checks.
  const { fx } = await startTlsServer(certs, { handshakeTimeoutMs: 60_000 });
  await using _fx = fx;
  const result = await runCli(["ls"], { env: localhostEnv(fx) });
  strictEqual(result.code, 1, result.stderr);
  strictEqual(
    result.stderr,
    `dfos ls: Cannot connect to localhost:${fx.port}: the server did not answer HELLO in the dfos protocol ` +
      "(is it serving TLS? then connect with --tls)\n",
  );
  const started = performance.now();
  await rejects(
    DfosClient.connect({ server: fx.address, user: "alice", password: USERS.alice }),
    /is it serving TLS\? then connect with --tls/,
  );
  const waited = performance.now() - started;
  ok(waited < 2000, `the client gave up after ${waited.toFixed(0)} ms`);
  await waitFor(() => fx.server.stats.snapshot().failures.PLAINTEXT_CLIENT === 2, "two plaintext clients");
});

Deno.test("a TLS client and a plaintext server part at once, with a hint to drop --tls", async () => {
  await using certs = await certificateDir();
  const certificate = await certs.make("server");
  await using fx = await startServer({ handshakeTimeoutMs: 60_000 });
  const result = await runCli(["ls", "--tls", "--ca", certificate.certFile], { env: localhostEnv(fx) });
  strictEqual(result.code, 1, result.stderr);
  match(
    result.stderr,
    /^dfos ls: Cannot connect to localhost:\d+: TLS handshake failed: .+ \(is the server serving TLS\? a plaintext server needs no --tls\)\n$/,
  );
  const started = performance.now();
  await rejects(connectTls(fx, certificate), TlsError);
  const waited = performance.now() - started;
  ok(waited < 2000, `the client gave up after ${waited.toFixed(0)} ms`);
  strictEqual(fx.server.stats.snapshot().failures.AUTH_FAILED, undefined);
});

Deno.test("a TLS client gives up on a server that never answers its handshake, after its timeout", async () => {
  await using certs = await certificateDir();
  const certificate = await certs.make("server");
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const accepted = listener.accept(); // held open, never answered
  const started = performance.now();
  await rejects(
    DfosClient.connect({
      server: `localhost:${(listener.addr as Deno.NetAddr).port}`,
      user: "alice",
      password: USERS.alice,
      tls: { caCerts: [certificate.cert], handshakeTimeoutMs: 300 },
    }),
    (error) => error instanceof TlsError && /^TLS handshake timed out after 0\.3 s/.test(error.message),
  );
  const waited = performance.now() - started;
  ok(waited >= 250 && waited < 2000, `gave up after ${waited.toFixed(0)} ms`);
  (await accepted).close();
});

Deno.test("the TLS handshake counts against --handshake-timeout, and the timeout cuts it off on time", async () => {
  await using certs = await certificateDir();
  const { fx, certificate } = await startTlsServer(certs, { handshakeTimeoutMs: 300 });
  await using _fx = fx;

  // A TCP connection that never starts TLS: cut off at the deadline (no ERROR can reach it before TLS).
  const silent = await Deno.connect({ hostname: "127.0.0.1", port: fx.port });
  const silentStart = performance.now();
  // Half a TLS ClientHello's record header, then nothing.
  const stalled = await Deno.connect({ hostname: "127.0.0.1", port: fx.port });
  await stalled.write(new Uint8Array([0x16, 0x03]));
  const stalledStart = performance.now();
  // TLS done, then silence: told "Handshake timed out" over TLS.
  const mute = await Deno.connectTls({ hostname: "localhost", port: fx.port, caCerts: [certificate.cert] });
  await mute.handshake();
  const muteStart = performance.now();

  // Both sessions end at the deadline itself, not the deadline plus the second of grace a connection past TLS
  // gets for its ERROR: the mute one is still open then.
  await waitFor(() => fx.server.stats.snapshot().failures.HANDSHAKE_TIMEOUT >= 2, "two handshake timeouts", 3000);
  const waited = performance.now() - Math.max(silentStart, stalledStart);
  ok(waited >= 250 && waited < 900, `closed after ${waited.toFixed(0)} ms`);
  for (const conn of [silent, stalled]) await assertGoneOnceStirred(conn);
  const channel = new Channel(mute);
  deepStrictEqual(await channel.receive(), { type: "error", code: Status.BAD_REQUEST, message: "Handshake timed out" });
  strictEqual(await channel.receive(), null);
  ok(performance.now() - muteStart < 1500);
  channel.abort();
  strictEqual(fx.server.stats.snapshot().failures.HANDSHAKE_TIMEOUT, 3);

  // A client that logs in in time keeps its connection past the deadline.
  const client = await connectTls(fx, certificate);
  await delay(500);
  deepStrictEqual(await Array.fromAsync(client.list()), []);
  await client.close();
});

Deno.test("a TLS client over --max-connections is told BUSY at once", async () => {
  await using certs = await certificateDir();
  const { fx, certificate } = await startTlsServer(certs, { maxConnections: 1 });
  await using _fx = fx;
  const held = await connectTls(fx, certificate);
  const started = performance.now();
  const error = await connectTls(fx, certificate, "bob").then(
    (client) => client.close().then(() => null),
    (error) => error,
  );
  ok(error instanceof DfosError, `expected a DfosError, got ${error}`);
  strictEqual(error.code, Status.BUSY);
  strictEqual(error.message, "Server busy: 1 connections open; try again later");
  ok(performance.now() - started < 1000, "the refusal came at once");
  const cli = await runCli(["ls", "--ca", certificate.certFile], { env: localhostEnv(fx) });
  strictEqual(cli.code, 1, cli.stderr);
  strictEqual(cli.stderr, "dfos ls: Server busy: 1 connections open; try again later\n");
  // The held connection was not disturbed.
  deepStrictEqual(await Array.fromAsync(held.list()), []);
  await held.close();
});

Deno.test("shutdown({ drainMs }) over TLS lets an upload finish and closes the others at once", async () => {
  await using certs = await certificateDir();
  const { fx, certificate } = await startTlsServer(certs);
  await using _fx = fx;
  const uploader = await connectTls(fx, certificate);
  const idle = await Deno.connectTls({ hostname: "localhost", port: fx.port, caCerts: [certificate.cert] });
  const idleChannel = new Channel(idle);
  await idleChannel.send(HELLO);
  await idleChannel.expect("welcome");
  await idleChannel.send({ type: "auth", mechanism: "PLAIN", data: plain("bob", USERS.bob) });
  await idleChannel.expect("auth-ok");
  const handshaking = await Deno.connect({ hostname: "127.0.0.1", port: fx.port }); // never starts TLS
  await waitFor(() => fx.server.stats.snapshot().activeConnections === 3, "three connections");

  const body = randomBytes(3 * MiB + 5);
  const gated = gatedBody(body);
  const putting = uploader.put("f.bin", gated.chunks, { size: body.length });
  const partial = join(fx.root, "alice", ".dfos-partial");
  await waitFor(async () => {
    for (const name of await listDir(partial)) if ((await Deno.stat(join(partial, name))).size >= MiB) return true;
    return false;
  }, "the upload to be under way");

  const shuttingDown = fx.server.shutdown({ drainMs: 10_000 });
  deepStrictEqual(await idleChannel.receive(), { type: "error", code: Status.BUSY, message: "Server shutting down" });
  await waitFor(() => fx.server.stats.snapshot().activeConnections === 1, "only the upload left");
  await assertGoneOnceStirred(handshaking);
  gated.release();
  strictEqual((await putting).size, body.length);
  await uploader.close();
  await shuttingDown;
  idleChannel.abort();
  strictEqual(await sha256File(join(fx.root, "alice", "f.bin")), sha256(body));
  deepStrictEqual(await listDir(partial), []);
});

Deno.test("dfos serve --tls-cert --tls-key serves TLS and says so; a bad pair of flags or files is refused", async () => {
  await using certs = await certificateDir();
  const certificate = await certs.make("server");
  const other = await certs.make("other");
  const dir = certs.dir;
  const users = join(dir, "users.txt");
  await Deno.writeTextFile(users, `alice:${USERS.alice}\n`);
  const common = ["--host", "127.0.0.1", "--port", "0", "--root", join(dir, "root"), "--users", users];
  const common2 = [...common, "--log", join(dir, "serve.log")];

  // Both flags or neither.
  for (const [given, missing] of [["--tls-cert", "--tls-key"], ["--tls-key", "--tls-cert"]]) {
    const file = given === "--tls-cert" ? certificate.certFile : certificate.keyFile;
    const result = await runCli(["serve", ...common2, given, file], { cwd: dir });
    strictEqual(result.code, 2, result.stderr);
    match(
      result.stderr,
      new RegExp(`^dfos serve: ${given} needs ${missing}: TLS takes both a certificate and its key\n`),
    );
  }
  // Files that cannot be used: each named, exit 1.
  const cases: [string[], RegExp][] = [
    [
      ["--tls-cert", join(dir, "missing.pem"), "--tls-key", certificate.keyFile],
      /Cannot read the TLS certificate file ".*missing\.pem": No such file/,
    ],
    [
      ["--tls-cert", certificate.keyFile, "--tls-key", certificate.keyFile],
      /Cannot use the TLS certificate file ".*server\.key": it holds no PEM certificate/,
    ],
    [
      ["--tls-cert", certificate.certFile, "--tls-key", certificate.certFile],
      /Cannot use the TLS private key file ".*server\.pem": it holds no PEM private key/,
    ],
    [
      ["--tls-cert", certificate.certFile, "--tls-key", other.keyFile],
      /Cannot use the TLS certificate and key: the private key does not belong to the certificate/,
    ],
  ];
  for (const [flags, expected] of cases) {
    const result = await runCli(["serve", ...common2, ...flags], { cwd: dir });
    strictEqual(result.code, 1, result.stderr);
    match(result.stderr, expected);
  }

  // A good pair: it logs that it serves TLS, and a client with --ca gets in.
  const log = join(dir, "tls.log");
  const child = spawnCli(
    ["serve", ...common, "--log", log, "--tls-cert", certificate.certFile, "--tls-key", certificate.keyFile],
    { cwd: dir },
  );
  await child.stdin.close();
  let stdout = "";
  const reading = (async () => {
    for await (const text of child.stdout.pipeThrough(new TextDecoderStream())) stdout += text;
  })();
  const stderr = new Response(child.stderr).text();
  try {
    await waitFor(() => /valid until /.test(stdout), "dfos serve to listen", 15_000);
    const port = Number(/Serving TLS on 127\.0\.0\.1:(\d+)/.exec(stdout)![1]);
    match(stdout, /TLS certificate for DNS:localhost, IP Address:127\.0\.0\.1, valid until /);
    const env = { DFOS_SERVER: `localhost:${port}`, DFOS_USER: "alice", DFOS_PASSWORD: USERS.alice };
    const put = await runCli(["put", "--ca", certificate.certFile, "-", "x.txt"], { env, stdin: "x" });
    strictEqual(put.code, 0, put.stderr);
    const plainLs = await runCli(["ls"], { env });
    strictEqual(plainLs.code, 1, plainLs.stderr);
  } finally {
    child.kill("SIGTERM");
  }
  const [status] = await Promise.all([child.status, reading, stderr]);
  strictEqual(status.code, 0, stdout);
  strictEqual(await Deno.readTextFile(join(dir, "root", "alice", "x.txt")), "x");
  match(
    await Deno.readTextFile(log),
    /Connection from 127\.0\.0\.1:\d+ closed \(protocol error: plaintext client at a TLS port\): user -/,
  );
});

Deno.test("the HELLO frame a plaintext client sends is never answered in plaintext by a TLS server", async () => {
  await using certs = await certificateDir();
  const { fx } = await startTlsServer(certs);
  await using _fx = fx;
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: fx.port });
  await conn.write(frameBytes(HELLO));
  const received = await untilClosed(conn, 2000);
  conn.close();
  ok(received !== null, "the server closed the connection");
  // At most a TLS alert record (content type 21), never a dfos frame.
  ok(received.length === 0 || received[0] === 21, `received ${received.slice(0, 8)}`);
});

Deno.test("a certificate signed by another key than the trusted one it names is refused: BadSignature explained", async () => {
  // Two CAs of the same name: the one the client trusts, and the one made again (a new key) that signed the server's.
  await using trusted = await certificateDir();
  await using remade = await certificateDir();
  const oldCa = await trusted.make("ca", { ca: true });
  const newCa = await remade.make("ca", { ca: true });
  const certificate = await remade.make("server", { issuer: newCa });
  await using fx = await startServer({ tls: certificate });
  const result = await runCli(["ls", "--ca", oldCa.certFile], { env: localhostEnv(fx) });
  strictEqual(result.code, 1, result.stderr);
  match(
    result.stderr,
    /^dfos ls: Cannot connect to localhost:\d+: the server's TLS certificate was not accepted: its signature does not match the trusted certificate it names as its signer \(BadSignature\): the server's certificate or its CA was made again with a new key, or --ca holds an old copy; give --ca the certificate \(or CA\) the server uses now\n$/,
  );
  strictEqual(fx.server.stats.snapshot().failures.AUTH_FAILED, undefined);
});

Deno.test("a CA certificate served as the server's own is refused: CaUsedAsEndEntity explained", async () => {
  await using certs = await certificateDir();
  const ca = await certs.make("ca", { ca: true });
  await using fx = await startServer({ tls: ca });
  const result = await runCli(["ls", "--ca", ca.certFile], { env: localhostEnv(fx) });
  strictEqual(result.code, 1, result.stderr);
  match(
    result.stderr,
    /^dfos ls: Cannot connect to localhost:\d+: the server's TLS certificate was not accepted: it is a CA certificate, not a server's \(CaUsedAsEndEntity\): the server must serve a certificate made for it with basicConstraints=critical,CA:FALSE, signed by that CA or self-signed\n$/,
  );
});
