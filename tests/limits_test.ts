/**
 * End-to-end tests of the server's limits on a real server started
 * in-process: the connection cap, the handshake timeout, the idle timeout and
 * the stall timeout of transfers (`--op-timeout`), with short limits so that
 * each takes a fraction of a second or two. The limits on what an upload may
 * take are in quota_test.ts.
 *
 * @module
 */

import { deepStrictEqual, ok, rejects, strictEqual } from "node:assert/strict";
import { join } from "node:path";
import { DfosClient } from "../client/connection.ts";
import { DfosError, Status } from "../shared/status.ts";
import { connect, delay, listDir, randomBytes, runCli, sha256, sha256File, startServer, waitFor } from "./_fixture.ts";
import { concat, frameBytes, HELLO, once, Peer } from "./_peer.ts";

/** Yields `count` fresh chunks of `size` random bytes, `pauseMs` apart; `sent` collects them. */
async function* slowly(count: number, size: number, pauseMs: number, sent: Uint8Array[]): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < count; i++) {
    if (i > 0) await delay(pauseMs);
    const chunk = randomBytes(size);
    sent.push(chunk);
    yield chunk;
  }
}

async function download(client: DfosClient, name: string): Promise<Uint8Array> {
  const { body } = await client.get(name);
  const parts: Uint8Array[] = [];
  for await (const chunk of body.chunks()) parts.push(chunk.slice());
  return concat(parts);
}

const BUSY_MESSAGE = "Server busy: 3 connections open; try again later";

Deno.test("a client over --max-connections gets BUSY at once, and a place that frees up is taken again", async () => {
  await using fx = await startServer({ maxConnections: 3, maxConnectionsPerAddress: 3, maxConnectionsPerUser: 3 });
  // Three held: two logged in, one that has not even said HELLO. The cap counts open connections.
  const held = [await connect(fx), await connect(fx, "bob")];
  const silent = await Peer.open(fx);
  await waitFor(() => fx.server.stats.snapshot().activeConnections === 3, "three connections open");

  const started = performance.now();
  const error = await connect(fx).then(
    (client) => client.close().then(() => null),
    (error) => error,
  );
  ok(error instanceof DfosError, `expected a DfosError, got ${error}`);
  strictEqual(error.code, Status.BUSY);
  strictEqual(error.message, BUSY_MESSAGE);
  ok(performance.now() - started < 1000, "the refusal came at once");

  // On the wire: one ERROR, sent without waiting for HELLO, then the close.
  const raw = await Peer.open(fx);
  const { messages } = await raw.untilClosed(2000);
  deepStrictEqual(messages, [{ type: "error", code: Status.BUSY, message: BUSY_MESSAGE }]);
  raw.abort();

  // The command line says the same sentence and exits 1.
  const cli = await runCli(["ls"], { env: fx.envFor("alice") });
  strictEqual(cli.code, 1, cli.stderr);
  strictEqual(cli.stderr, `dfos ls: ${BUSY_MESSAGE}\n`);
  strictEqual(fx.server.stats.snapshot().failures.BUSY, 3);

  // The held connections were never disturbed.
  const body = randomBytes(70_000);
  await held[0].put("kept.bin", once(body), { size: body.length });
  strictEqual(sha256(await download(held[0], "kept.bin")), sha256(body));

  // Once one closes, a new client gets in.
  silent.abort();
  await waitFor(() => fx.server.stats.snapshot().activeConnections === 2, "the silent connection to be gone");
  const late = await connect(fx);
  deepStrictEqual((await Array.fromAsync(late.list())).map((entry) => entry.name), ["kept.bin"]);
  await late.close();
  for (const client of held) await client.close();
  strictEqual(fx.server.stats.snapshot().peakConnections, 3);
});

Deno.test("a connection that does not finish HELLO and login within --handshake-timeout is told and closed", async () => {
  await using fx = await startServer({ handshakeTimeoutMs: 300 });
  const timedOut = { type: "error", code: Status.BAD_REQUEST, message: "Handshake timed out" };
  const hello = frameBytes(HELLO);

  // Silent from the start.
  const silent = await Peer.open(fx);
  const silentStart = performance.now();
  // One byte at a time, 40 ms apart: the HELLO alone would take longer than the deadline.
  const trickle = await Peer.open(fx);
  const trickleStart = performance.now();
  const trickling = (async () => {
    for (const byte of hello) {
      await trickle.write(new Uint8Array([byte]));
      await delay(40);
    }
  })().catch(() => "stopped by the close");
  // HELLO, then nothing.
  const mute = await Peer.open(fx);
  await mute.channel.send(HELLO);
  await mute.channel.expect("welcome");
  const muteStart = performance.now();

  for (const [peer, start] of [[silent, silentStart], [trickle, trickleStart], [mute, muteStart]] as const) {
    const { messages, at } = await peer.untilClosed(2000);
    deepStrictEqual(messages, [timedOut]);
    const waited = at - start;
    ok(waited >= 250 && waited < 1500, `closed after ${waited.toFixed(0)} ms`);
    peer.abort();
  }
  strictEqual(await trickling, "stopped by the close");
  strictEqual(fx.server.stats.snapshot().failures.HANDSHAKE_TIMEOUT, 3);

  // A client that logs in in time keeps its connection past the handshake deadline.
  const client = await connect(fx);
  await delay(500);
  deepStrictEqual(await Array.fromAsync(client.list()), []);
  await client.close();
});

Deno.test("an idle logged-in connection is closed after --idle-timeout; one that keeps asking is not", async () => {
  await using fx = await startServer({ idleTimeoutMs: 300 });
  const idle = await Peer.login(fx);
  const idleStart = performance.now();

  // Requests 100 ms apart keep a connection open for well over the idle timeout.
  const busy = await connect(fx);
  for (let i = 0; i < 8; i++) {
    deepStrictEqual(await Array.fromAsync(busy.list()), []);
    await delay(100);
  }

  const { messages, at } = await idle.untilClosed(2000);
  deepStrictEqual(messages, [{
    type: "error",
    code: Status.BAD_REQUEST,
    message: "No request for 0.3 s: idle connection closed",
  }]);
  ok(at - idleStart >= 250 && at - idleStart < 1500, `closed after ${(at - idleStart).toFixed(0)} ms`);
  idle.abort();
  strictEqual(fx.server.stats.snapshot().failures.IDLE_TIMEOUT, 1);

  // The next request of a client that was idled out is answered with the reason.
  await delay(500);
  await rejects(
    Array.fromAsync(busy.list()),
    (error) => error instanceof DfosError && error.message === "No request for 0.3 s: idle connection closed",
  );
  await busy.close();
});

Deno.test("a slow upload that lasts longer than --idle-timeout is not cut, nor is a slow download", async () => {
  // 500 ms leaves a loaded machine room between login and the PUT (which is an idle wait).
  await using fx = await startServer({ idleTimeoutMs: 500 });
  const client = await connect(fx);
  // 8 chunks 250 ms apart: 1.75 s of upload, more than three idle timeouts, without a pause as long as one.
  const sent: Uint8Array[] = [];
  const started = performance.now();
  await client.put("slow.bin", slowly(8, 64 * 1024 + 1, 250, sent));
  ok(performance.now() - started > 1700);
  const body = concat(sent);
  strictEqual(await sha256File(join(fx.root, "alice", "slow.bin")), sha256(body));

  // A download whose reader pauses between chunks: the server, blocked on a full socket for longer than
  // the idle timeout, waits on the client and not on a timer.
  const big = randomBytes(16 * 1024 * 1024);
  await client.put("big.bin", once(big), { size: big.length });
  const { body: incoming } = await client.get("big.bin");
  const parts: Uint8Array[] = [];
  for await (const chunk of incoming.chunks()) {
    parts.push(chunk.slice());
    await delay(100);
  }
  strictEqual(sha256(concat(parts)), sha256(big));
  deepStrictEqual(await listDir(join(fx.root, "alice", ".dfos-partial")), []);
  await client.close();
});

const STALLED = "Transfer stalled: nothing moved for 0.6 s; connection closed";

Deno.test("an upload that stops moving for --op-timeout is aborted: told, closed, and nothing left behind", async () => {
  await using fx = await startServer({ opTimeoutMs: 600 });
  const peer = await Peer.login(fx);
  const old = randomBytes(1000);
  await peer.put("kept.bin", old);
  // A body of 10 KB is announced, 4 KB of it sent, then nothing.
  await peer.send({ type: "put", name: "kept.bin", size: 10_000, digest: "crc32" });
  await peer.send({ type: "data", chunk: randomBytes(4000) });
  const started = performance.now();
  const { messages, at } = await peer.untilClosed(5000);
  deepStrictEqual(messages, [{ type: "error", code: Status.BAD_REQUEST, message: STALLED }]);
  // At 0.6 s to 0.75 s by the server's clock; the upper bound leaves a loaded machine room.
  ok(at - started >= 500 && at - started < 4000, `closed after ${(at - started).toFixed(0)} ms`);
  peer.abort();
  await waitFor(async () => (await listDir(join(fx.root, "alice", ".dfos-partial"))).length === 0, "no temporary");
  strictEqual(await sha256File(join(fx.root, "alice", "kept.bin")), sha256(old));
  strictEqual(fx.server.stats.snapshot().failures.STALL_TIMEOUT, 1);

  // A client that stalls after its upload was refused, while the rest of its body is being dropped, goes the same way.
  const refused = await Peer.login(fx);
  await refused.send({ type: "put", name: "bad//name", size: 10_000, digest: "crc32" });
  await refused.expectError(Status.BAD_NAME);
  await refused.send({ type: "data", chunk: randomBytes(4000) });
  deepStrictEqual((await refused.untilClosed(5000)).messages, [{
    type: "error",
    code: Status.BAD_REQUEST,
    message: STALLED,
  }]);
  refused.abort();
  strictEqual(fx.server.stats.snapshot().failures.STALL_TIMEOUT, 2);
});

Deno.test("a download whose client stops reading for --op-timeout is aborted and its connection closed", async () => {
  await using fx = await startServer({ opTimeoutMs: 600 });
  const peer = await Peer.login(fx);
  // Far more than the socket buffers on both sides hold: the server's sends must wait on the client.
  await Deno.writeFile(join(fx.root, "alice", "big.bin"), randomBytes(48 * 1024 * 1024));
  await peer.send({ type: "get", name: "big.bin", limit: null, digest: "crc32" });
  // Nothing is read: the server fills the buffers, waits, and gives up.
  await waitFor(() => fx.server.stats.snapshot().failures.STALL_TIMEOUT === 1, "the stall to be seen", 10_000);
  await waitFor(() => fx.server.stats.snapshot().activeConnections === 0, "the connection to be closed", 5000);
  deepStrictEqual(fx.server.stats.snapshot().failures, { STALL_TIMEOUT: 1 }); // a stall, not a failure of the server
  deepStrictEqual(fx.server.stats.snapshot().aborted, { get: 1 });
  peer.abort();
  // The server is none the worse: the file can be fetched whole by a client that reads.
  const client = await connect(fx);
  strictEqual((await download(client, "big.bin")).length, 48 * 1024 * 1024);
  await client.close();
});

Deno.test("a transfer slower in all than --op-timeout, but never still for that long, is not cut", async () => {
  await using fx = await startServer({ opTimeoutMs: 1000 });
  const client = await connect(fx);
  // 10 chunks 200 ms apart, size unknown: 1.8 s of upload, nearly twice the timeout.
  const sent: Uint8Array[] = [];
  let started = performance.now();
  await client.put("slow.bin", slowly(10, 32 * 1024, 200, sent), { size: null });
  ok(performance.now() - started > 1700);
  strictEqual(await sha256File(join(fx.root, "alice", "slow.bin")), sha256(concat(sent)));

  // A download read in bursts with pauses of 400 ms: the server waits on a full socket, again and again.
  const big = randomBytes(16 * 1024 * 1024);
  await Deno.writeFile(join(fx.root, "alice", "big.bin"), big);
  started = performance.now();
  const { body } = await client.get("big.bin");
  const parts: Uint8Array[] = [];
  let sinceRest = 0;
  for await (const chunk of body.chunks()) {
    parts.push(chunk.slice());
    sinceRest += chunk.length;
    if (sinceRest >= 2 * 1024 * 1024) {
      sinceRest = 0;
      await delay(400);
    }
  }
  ok(performance.now() - started > 1500, `the download took ${(performance.now() - started).toFixed(0)} ms`);
  strictEqual(sha256(concat(parts)), sha256(big));
  strictEqual(fx.server.stats.snapshot().failures.STALL_TIMEOUT, undefined);
  await client.close();
});

Deno.test("a client that trickles its login one byte at a time is cut at the handshake deadline, not kept", async () => {
  await using fx = await startServer({ handshakeTimeoutMs: 1000 });
  const peer = await Peer.open(fx);
  const started = performance.now();
  // HELLO and an AUTH, one byte every 150 ms: some 15 s of bytes, each well within any per-read timeout.
  const bytes = concat([
    frameBytes(HELLO),
    frameBytes({ type: "auth", mechanism: "SCRAM-SHA-256", data: new TextEncoder().encode("n,,n=alice,r=abc") }),
  ]);
  const trickling = (async () => {
    for (const byte of bytes) {
      await peer.write(new Uint8Array([byte]));
      await delay(150);
    }
    return "sent it all";
  })().catch(() => "stopped by the close");
  const { messages, at } = await peer.untilClosed(8000);
  deepStrictEqual(messages.at(-1), { type: "error", code: Status.BAD_REQUEST, message: "Handshake timed out" });
  ok(at - started >= 900 && at - started < 4000, `closed after ${(at - started).toFixed(0)} ms`);
  strictEqual(await trickling, "stopped by the close");
  peer.abort();
});
