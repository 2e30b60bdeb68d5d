/**
 * What an operator reads: the server's log line by line for each way a
 * connection or a transfer ends (a clean hang-up, a client that hangs up or is
 * killed mid-transfer, an ABORT, a stall, a TLS client at a plaintext port, a
 * plaintext client at a TLS port, a second `dfos serve` on a port in use), and
 * how the totals count each. Real servers on port 0, real sockets; the log is
 * read as the log file would show it (`formatLogRecord`).
 *
 * @module
 */

import { configure, getLogger, type LogRecord, reset } from "@logtape/logtape";
import { deepStrictEqual, match, ok, strictEqual } from "node:assert/strict";
import { join } from "node:path";
import { LocalStorage } from "../server/local_storage.ts";
import { formatLogRecord } from "../server/log_format.ts";
import type { ServeOptions } from "../server/server.ts";
import { MESSAGE_CODES } from "../shared/messages.ts";
import { bytesOf } from "../shared/pooled_bytes.ts";
import { Status } from "../shared/status.ts";
import { frameBytes, HELLO, Peer, rawFrame } from "./_peer.ts";
import {
  delay,
  type Fixture,
  makeCertificate,
  randomBytes,
  spawnCli,
  spawnServe,
  startServer,
  text,
  waitFor,
  watchServe,
} from "./_fixture.ts";

const MiB = 1024 * 1024;

/** A server whose log is kept in memory, each record formatted as the log file's line. */
async function loggedServer(
  options: Omit<ServeOptions, "hostname" | "port" | "root" | "users" | "log"> = {},
): Promise<{ fx: Fixture; lines: () => string[]; [Symbol.asyncDispose]: () => Promise<void> }> {
  const records: LogRecord[] = [];
  await configure({
    reset: true,
    sinks: { memory: (record) => records.push(record) },
    loggers: [
      { category: ["dfos-test"], lowestLevel: "debug", sinks: ["memory"] },
      { category: ["logtape", "meta"], lowestLevel: "warning", sinks: ["memory"] },
    ],
  });
  const fx = await startServer({ ...options, log: getLogger(["dfos-test", "server"]) });
  return {
    fx,
    lines: () => records.map(formatLogRecord).map((line) => line.trimEnd()),
    async [Symbol.asyncDispose]() {
      await fx.shutdown();
      await reset();
    },
  };
}

/** The lines of one connection (by its local port), from its first to its last. */
function linesOf(lines: string[], peer: Peer): string[] {
  const port = (peer.conn.localAddr as Deno.NetAddr).port;
  const from = lines.findIndex((line) => line.includes(`Connection from 127.0.0.1:${port}`));
  return lines.slice(from);
}

/** Fails on a line at error level or with a stack trace. */
function assertNoErrors(lines: string[]): void {
  for (const line of lines) {
    ok(!line.includes("[ERR]") && !line.includes("[FTL]"), `an error line: ${line}`);
    ok(!/\\x0a\s+at /.test(line), `a stack trace: ${line}`);
  }
}

/** Waits until the server has closed every connection. */
function allClosed(fx: Fixture): Promise<void> {
  return waitFor(() => fx.server.stats.snapshot().activeConnections === 0, "every connection to be closed", 10_000);
}

/** Reads the DATA of a download until `bytes` have arrived. */
async function readSome(peer: Peer, bytes: number): Promise<number> {
  let received = 0;
  while (received < bytes) received += bytesOf((await peer.expect("data")).chunk).length;
  return received;
}

Deno.test("log: a client that hangs up between requests ends in one info line, killed or not, and transfers say MiB/s", async () => {
  await using served = await loggedServer();
  const { fx } = served;
  const clean = await Peer.login(fx);
  await clean.put("a.bin", randomBytes(3 * MiB));
  await clean.channel.close();
  // A client killed with a reply unread (its WELCOME): on loopback the server reads the end of the stream.
  const killed = await Deno.connect({ hostname: "127.0.0.1", port: fx.port });
  await killed.write(frameBytes(HELLO));
  await delay(300);
  killed.close();
  await allClosed(fx);
  const lines = served.lines();
  assertNoErrors(lines);
  match(lines.join("\n"), /put user=alice name=a\.bin bytes=3145728 duration=[\d.]+s rate=[\d.]+MiB\/s/);
  const ends = lines.filter((line) => / closed[ :(]/.test(line));
  strictEqual(ends.length, 2, ends.join("\n"));
  match(
    ends[0],
    /\[INF\] .*Connection from 127\.0\.0\.1:\d+ closed: user alice, [\d.]+ s, 1 operations, 3145728 bytes in/,
  );
  match(
    ends[1],
    /\[INF\] .*Connection from 127\.0\.0\.1:\d+ closed: user -, [\d.]+ s, 0 operations/,
  );
  deepStrictEqual(fx.server.stats.snapshot().failures, {});
});

Deno.test("log: a client that hangs up mid-download is one warning naming the download and its bytes, no error, no stack", async () => {
  await using served = await loggedServer();
  const { fx } = served;
  await Deno.mkdir(join(fx.root, "alice"), { recursive: true });
  await Deno.writeFile(join(fx.root, "alice", "big.bin"), randomBytes(64 * MiB));
  const peer = await Peer.login(fx);
  await peer.send({ type: "get", name: "big.bin", limit: null, digest: "crc32" });
  await peer.expect("file");
  await readSome(peer, 2 * MiB);
  peer.abort();
  await allClosed(fx);
  const lines = linesOf(served.lines(), peer);
  assertNoErrors(lines);
  const aborted = lines.filter((line) => line.includes("get aborted"));
  strictEqual(aborted.length, 1, lines.join("\n"));
  match(
    aborted[0],
    /\[WRN\] .*get aborted user=alice name=big\.bin direction=download bytes=(\d+) duration=[\d.]+s rate=[\d.]+MiB\/s: client gone: hung up \((broken pipe|connection reset by peer)\)$/,
  );
  const bytes = Number(/bytes=(\d+)/.exec(aborted[0])![1]);
  ok(bytes >= 2 * MiB && bytes < 64 * MiB, `${bytes} bytes sent before the hang-up`);
  const totals = fx.server.stats.snapshot();
  deepStrictEqual(totals.aborted, { get: 1 });
  strictEqual(totals.abortedBytesOut, bytes);
  strictEqual(totals.bytesOut, bytes);
  deepStrictEqual(totals.failures, { CLIENT_GONE: 1 });
  deepStrictEqual(totals.failureClasses, { "client gone": 1 });
  match(
    lines.at(-1)!,
    new RegExp(`closed \\(client gone: .*\\): user alice, [\\d.]+ s, 0 operations, 0 bytes in, ${bytes} bytes out$`),
  );
});

Deno.test("log: a download whose client stops reading is named with its bytes, timed out", async () => {
  await using served = await loggedServer({ opTimeoutMs: 600 });
  const { fx } = served;
  await Deno.mkdir(join(fx.root, "alice"), { recursive: true });
  // Far more than the socket buffers hold: the server's sends must wait on the client.
  await Deno.writeFile(join(fx.root, "alice", "big.bin"), randomBytes(48 * MiB));
  const peer = await Peer.login(fx);
  await peer.send({ type: "get", name: "big.bin", limit: null, digest: "crc32" });
  await waitFor(() => fx.server.stats.snapshot().failures.STALL_TIMEOUT === 1, "the stall to be seen", 10_000);
  peer.abort();
  await allClosed(fx);
  const lines = linesOf(served.lines(), peer);
  assertNoErrors(lines);
  const aborted = lines.filter((line) => line.includes("get aborted"));
  strictEqual(aborted.length, 1, lines.join("\n"));
  match(
    aborted[0],
    /\[WRN\] .*get aborted user=alice name=big\.bin direction=download bytes=\d+ duration=[\d.]+s rate=[\d.]+MiB\/s: timed out: Transfer stalled: nothing moved for 0\.6 s/,
  );
  deepStrictEqual(fx.server.stats.snapshot().aborted, { get: 1 });
  deepStrictEqual(fx.server.stats.snapshot().failures, { STALL_TIMEOUT: 1 });
  match(
    lines.at(-1)!,
    /closed \(timed out: Transfer stalled: nothing moved for 0\.6 s; connection closed\): user alice/,
  );
});

Deno.test("log: an upload whose client hangs up, is killed inside a frame, sends ABORT or stalls is named with its bytes and why", async () => {
  await using served = await loggedServer({ opTimeoutMs: 500 });
  const { fx } = served;
  const body = randomBytes(2 * MiB);
  const put = async (name: string) => {
    const peer = await Peer.login(fx);
    await peer.send({ type: "put", name, size: 8 * MiB, digest: "crc32" });
    await peer.send({ type: "data", chunk: body.subarray(0, MiB) });
    await peer.send({ type: "data", chunk: body.subarray(MiB) });
    return peer;
  };
  // Hangs up between frames.
  const hangsUp = await put("hangs-up.bin");
  await hangsUp.channel.close();
  // Killed inside a DATA frame: its header and half its payload, then the end of the stream.
  const killed = await put("killed.bin");
  await killed.write(rawFrame(MESSAGE_CODES.data, randomBytes(MiB)).subarray(0, MiB / 2));
  await killed.conn.closeWrite();
  // Gives the upload up.
  const aborts = await put("aborts.bin");
  await aborts.send({ type: "abort", reason: "Sender failed: disk unplugged" });
  await aborts.expectError(Status.ABORTED);
  await aborts.channel.close();
  // Stops sending.
  const stalls = await put("stalls.bin");
  await stalls.untilClosed(5000);
  for (const peer of [hangsUp, killed, stalls]) peer.abort();
  await allClosed(fx);

  const lines = served.lines();
  assertNoErrors(lines);
  const named = (name: string) => lines.filter((line) => line.includes(`put aborted user=alice name=${name} `));
  const line = (name: string) => {
    const found = named(name);
    strictEqual(found.length, 1, `${name}:\n${lines.join("\n")}`);
    return found[0];
  };
  const head = (name: string, bytes: number) =>
    `\\[WRN\\] .*put aborted user=alice name=${name.replace(".", "\\.")} direction=upload bytes=${bytes} duration=`;
  match(
    line("hangs-up.bin"),
    new RegExp(
      `${head("hangs-up.bin", 2 * MiB)}.*: client gone: hung up \\(connection closed in the middle of a body\\)$`,
    ),
  );
  match(
    line("killed.bin"),
    new RegExp(
      `${head("killed.bin", 2 * MiB + MiB / 2 - 5)}.*: client gone: hung up \\(the stream ended inside a frame\\)$`,
    ),
  );
  match(
    line("aborts.bin"),
    new RegExp(`${head("aborts.bin", 2 * MiB)}.*: client abort: Sender failed: disk unplugged$`),
  );
  match(
    line("stalls.bin"),
    new RegExp(`${head("stalls.bin", 2 * MiB)}.*: timed out: Transfer stalled: nothing moved for 0\\.5 s`),
  );

  const totals = fx.server.stats.snapshot();
  deepStrictEqual(totals.aborted, { put: 4 });
  // What arrived of the killed client's last frame was received too: all but its 5-byte header.
  const received = 8 * MiB + MiB / 2 - 5;
  strictEqual(totals.abortedBytesIn, received);
  strictEqual(totals.bytesIn, received);
  // The killed client is a client gone, not a BAD_REQUEST.
  deepStrictEqual(totals.failures, { CLIENT_GONE: 2, ABORTED: 1, STALL_TIMEOUT: 1 });
  deepStrictEqual(totals.failureClasses, { "client gone": 2, "client abort": 1, "timed out": 1 });
  await fx.server.shutdown();
  const last = served.lines().at(-1)!;
  match(
    last,
    /aborted put 4 \(8912891 bytes in, 0 bytes out\); 8912891 bytes in, 0 bytes out; failures client gone 2 \(CLIENT_GONE 2\), client abort 1 \(ABORTED 1\), timed out 1 \(STALL_TIMEOUT 1\);/,
  );
});

Deno.test("log: a disk that fails mid-upload is one error line naming the upload and its bytes, without a stack", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dfos_log_disk_" });
  try {
    const local = await LocalStorage.open(join(dir, "root"));
    // The disk fails once 1 MiB of the upload is written.
    const beginUpload = async (user: string, name: string) => {
      const upload = await local.beginUpload(user, name);
      let written = 0;
      const write = upload.write.bind(upload);
      upload.write = async (chunk) => {
        if (written >= MiB) throw new Error(`Input/output error (os error 5): write '${dir}/root/${user}/x'`);
        written += bytesOf(chunk).length;
        await write(chunk);
      };
      return upload;
    };
    const storage = new Proxy(local, {
      get(target, key) {
        if (key === "beginUpload") return beginUpload;
        const value = Reflect.get(target, key, target);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
    await using served = await loggedServer({ storage });
    const { fx } = served;
    const peer = await Peer.login(fx);
    await peer.send({ type: "put", name: "doomed.bin", size: 3 * MiB, digest: "crc32" });
    const body = randomBytes(3 * MiB);
    for (let offset = 0; offset < body.length; offset += MiB) {
      await peer.send({ type: "data", chunk: body.subarray(offset, offset + MiB) });
    }
    await peer.send({ type: "end", size: body.length, algorithm: "crc32", digest: "00000000" });
    await peer.expectError(Status.INTERNAL);
    await peer.channel.close();
    await allClosed(fx);
    const lines = served.lines();
    const failed = lines.filter((line) => line.includes("put aborted"));
    strictEqual(failed.length, 1, lines.join("\n"));
    match(
      failed[0],
      /\[ERR\] .*put aborted user=alice name=doomed\.bin direction=upload bytes=\d+ duration=[\d.]+s rate=[\d.]+MiB\/s: storage error: Input\/output error \(os error 5\): write '/,
    );
    ok(!/\\x0a\s+at /.test(failed[0]), "no stack trace");
    deepStrictEqual(fx.server.stats.snapshot().failures, { STORAGE: 1 });
    deepStrictEqual(fx.server.stats.snapshot().aborted, { put: 1 });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("log: a TLS client at a plaintext port is one line saying so, and is sent nothing", async () => {
  await using served = await loggedServer();
  const { fx } = served;
  // A real TLS client: its handshake fails.
  const tls = await Deno.connectTls({ hostname: "127.0.0.1", port: fx.port });
  await tls.handshake().then(() => ok(false, "no TLS server here"), () => {});
  tls.close();
  // The first bytes of a ClientHello, by hand: nothing comes back but the close.
  const raw = await Deno.connect({ hostname: "127.0.0.1", port: fx.port });
  const hello = new Uint8Array([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03]);
  await raw.write(hello);
  const reply = new Uint8Array(64);
  strictEqual(await raw.read(reply), null, "the server sent nothing");
  raw.close();
  await allClosed(fx);
  const lines = served.lines();
  assertNoErrors(lines);
  const said = lines.filter((line) => line.includes("TLS client at a plaintext port"));
  strictEqual(said.length, 2, lines.join("\n"));
  for (const line of said) match(line, /\[INF\] .*closed \(protocol error: TLS client at a plaintext port\): user -,/);
  ok(lines.every((line) => !/frame|369\d{6}/.test(line)), lines.join("\n"));
  deepStrictEqual(fx.server.stats.snapshot().failures, { TLS_CLIENT: 2 });
});

Deno.test("log: a plaintext client at a TLS port is one line saying so", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dfos_log_tls_" });
  try {
    const certificate = await makeCertificate(dir, "server");
    await using served = await loggedServer({ tls: certificate });
    const { fx } = served;
    const peer = await Peer.open(fx);
    await peer.send(HELLO);
    // The server's TLS alert is no frame.
    await peer.untilClosed(5000).catch(() => {});
    peer.abort();
    await allClosed(fx);
    const lines = linesOf(served.lines(), peer);
    assertNoErrors(lines);
    strictEqual(lines.length, 2, lines.join("\n"));
    match(lines[1], /\[INF\] .*closed \(protocol error: plaintext client at a TLS port\): user -,/);
    deepStrictEqual(fx.server.stats.snapshot().failures, { PLAINTEXT_CLIENT: 1 });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("log: a second dfos serve on a port in use writes only its fatal error into the running one's log", async () => {
  const first = await spawnServe([]);
  try {
    const watch = await watchServe(first.child);
    const before = await Deno.readTextFile(first.log);
    const second = spawnCli([
      "serve",
      ...["--host", "127.0.0.1", "--port", String(watch.port), "--root", first.root],
      ...["--users", first.users, "--log", first.log],
    ], { cwd: first.dir });
    await second.stdin.close();
    const { code, stdout, stderr } = await second.output();
    strictEqual(code, 1);
    match(text(stderr), new RegExp(`Cannot listen on 127\\.0\\.0\\.1:${watch.port}: Address already in use`));
    strictEqual(text(stdout), "", "nothing on the console's log either: the error is on standard error");
    const after = await Deno.readTextFile(first.log);
    ok(after.startsWith(before));
    const added = after.slice(before.length).trimEnd().split("\n");
    strictEqual(added.length, 1, added.join("\n"));
    match(
      added[0],
      new RegExp(
        `\\[FTL\\] .*dfos serve stopped: Cannot listen on 127\\.0\\.0\\.1:${watch.port}: Address already in use`,
      ),
    );
    first.child.kill("SIGTERM");
    strictEqual((await watch.ended).status.code, 0);
  } finally {
    try {
      first.child.kill("SIGKILL");
    } catch {
      // It has ended.
    }
    await Deno.remove(first.dir, { recursive: true });
  }
});
