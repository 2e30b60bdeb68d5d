/**
 * End-to-end tests of the server's limits on a real server started
 * in-process: the connection cap, the handshake timeout and the idle timeout,
 * with short limits so that each takes a fraction of a second.
 *
 * @module
 */

import { deepStrictEqual, ok, rejects, strictEqual } from "node:assert/strict";
import { join } from "node:path";
import { DfosClient } from "../client/connection.ts";
import { DfosError, Status } from "../shared/status.ts";
import {
  delay,
  type Fixture,
  listDir,
  randomBytes,
  runCli,
  sha256,
  sha256File,
  startServer,
  USERS,
  waitFor,
} from "./_fixture.ts";
import { concat, frameBytes, HELLO, once, Peer } from "./_peer.ts";

function connect(fx: Fixture, user = "alice"): Promise<DfosClient> {
  return DfosClient.connect({ server: fx.address, user, password: USERS[user] });
}

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
  await using fx = await startServer({ maxConnections: 3 });
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
