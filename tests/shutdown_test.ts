/**
 * End-to-end tests of the graceful shutdown: `Server.shutdown({ drainMs })`
 * in-process, and SIGTERM to a `dfos serve` subprocess. An upload in flight
 * finishes whole; one still running at the deadline leaves nothing behind;
 * a second stop request ends it at once.
 *
 * @module
 */

import { deepStrictEqual, match, ok, rejects, strictEqual } from "node:assert/strict";
import { join } from "node:path";
import { DfosError, Status } from "../shared/status.ts";
import {
  connect,
  listDir,
  randomBytes,
  sha256,
  sha256File,
  spawnServe,
  startServer,
  waitFor,
  watchServe,
} from "./_fixture.ts";
import { gatedBody, once, Peer } from "./_peer.ts";

const MiB = 1024 * 1024;

const SHUTTING_DOWN = { type: "error", code: Status.BUSY, message: "Server shutting down" };

/** The sizes of alice's upload temporaries under `root`. */
async function partSizes(root: string): Promise<number[]> {
  const dir = join(root, "alice", ".dfos-partial");
  const sizes: number[] = [];
  for (const name of await listDir(dir)) sizes.push((await Deno.stat(join(dir, name))).size);
  return sizes;
}

/** Waits until an upload of alice's has at least `bytes` in its temporary file. */
function uploadUnderWay(root: string, bytes: number): Promise<void> {
  return waitFor(async () => (await partSizes(root)).some((size) => size >= bytes), "the upload to be under way");
}

async function assertRefused(port: number): Promise<void> {
  await Deno.connect({ hostname: "127.0.0.1", port }).then(
    (conn) => {
      conn.close();
      throw new Error("The server still accepts connections");
    },
    (error) => ok(error instanceof Deno.errors.ConnectionRefused, String(error)),
  );
}

Deno.test("shutdown({ drainMs }) lets an upload in flight finish whole and closes idle connections at once", async () => {
  await using fx = await startServer();
  const uploader = await connect(fx);
  const v1 = randomBytes(100_000);
  await uploader.put("f", once(v1), { size: v1.length });
  const idle = await Peer.login(fx, "bob");
  const handshaking = await Peer.open(fx);
  await waitFor(() => fx.server.stats.snapshot().activeConnections === 3, "three connections");

  const v2 = randomBytes(3 * MiB + 5);
  const gated = gatedBody(v2);
  const putting = uploader.put("f", gated.chunks, { size: v2.length });
  await uploadUnderWay(fx.root, MiB);

  const started = performance.now();
  const stopping = fx.server.shutdown({ drainMs: 10_000 });
  // Idle connections, and those still in the handshake, are told and closed at once.
  for (const peer of [idle, handshaking]) {
    const { messages, at } = await peer.untilClosed(2000);
    deepStrictEqual(messages, [SHUTTING_DOWN]);
    ok(at - started < 1000, `closed after ${(at - started).toFixed(0)} ms`);
    peer.abort();
  }
  await assertRefused(fx.port);

  // The upload is still being received: let it finish.
  gated.release();
  strictEqual((await putting).size, v2.length);
  await stopping;
  ok(performance.now() - started < 5000, "the drain ended when the upload did, not at its deadline");
  strictEqual(await sha256File(join(fx.root, "alice", "f")), sha256(v2));
  deepStrictEqual(await listDir(join(fx.root, "alice", ".dfos-partial")), []);

  // The uploader's connection took no new request: the server said why.
  await rejects(
    Array.fromAsync(uploader.list()),
    (error) => error instanceof DfosError && error.code === Status.BUSY && error.message === "Server shutting down",
  );
  await uploader.close();
  const totals = fx.server.stats.snapshot();
  strictEqual(totals.operations.put, 2);
  strictEqual(totals.activeConnections, 0);
  strictEqual(totals.failures.SHUTDOWN, undefined);
});

Deno.test("an upload still running at the drain deadline leaves no temporary file and the previous version", async () => {
  await using fx = await startServer();
  const uploader = await connect(fx);
  const v1 = randomBytes(200_000);
  await uploader.put("f", once(v1), { size: v1.length });
  const gated = gatedBody(randomBytes(4 * MiB));
  const putting = uploader.put("f", gated.chunks, { size: 4 * MiB });
  putting.catch(() => {});
  await uploadUnderWay(fx.root, MiB);

  const started = performance.now();
  await fx.server.shutdown({ drainMs: 300 });
  const took = performance.now() - started;
  ok(took >= 290 && took < 2000, `shutdown took ${took.toFixed(0)} ms`);
  deepStrictEqual(await listDir(join(fx.root, "alice", ".dfos-partial")), []);
  strictEqual(await sha256File(join(fx.root, "alice", "f")), sha256(v1));
  strictEqual(fx.server.stats.snapshot().failures.SHUTDOWN, 1);

  gated.release();
  await rejects(putting);
  await uploader.close();
});

Deno.test("a second shutdown() cuts the drain short and aborts what is in flight at once", async () => {
  await using fx = await startServer();
  const uploader = await connect(fx);
  const v1 = randomBytes(50_000);
  await uploader.put("f", once(v1), { size: v1.length });
  const gated = gatedBody(randomBytes(4 * MiB));
  const putting = uploader.put("f", gated.chunks, { size: 4 * MiB });
  putting.catch(() => {});
  await uploadUnderWay(fx.root, MiB);

  const started = performance.now();
  const first = fx.server.shutdown({ drainMs: 30_000 });
  await new Promise((resolve) => setTimeout(resolve, 100));
  const second = fx.server.shutdown();
  strictEqual(second, first, "both calls wait for the same shutdown");
  await first;
  ok(performance.now() - started < 2000, "the second call did not wait for the drain deadline");
  deepStrictEqual(await listDir(join(fx.root, "alice", ".dfos-partial")), []);
  strictEqual(await sha256File(join(fx.root, "alice", "f")), sha256(v1));

  gated.release();
  await rejects(putting);
  await uploader.close();
});

/** A `dfos serve` subprocess on a free port, in a fresh folder. */
interface ServeProcess extends AsyncDisposable {
  child: Deno.ChildProcess;
  address: string;
  port: number;
  root: string;
  log: string;
  /** Everything the server printed on standard output so far. */
  output(): string;
  /** Resolves to the exit status once the process has ended and its output is read. */
  ended: Promise<Deno.CommandStatus>;
}

async function startServeProcess(args: string[]): Promise<ServeProcess> {
  const { child, dir, root, log } = await spawnServe(args);
  const watch = await watchServe(child);
  const ended = watch.ended.then(({ status }) => status);
  const stop = async () => {
    try {
      child.kill("SIGKILL");
    } catch {
      // It has ended already.
    }
    await ended;
    await Deno.remove(dir, { recursive: true });
  };
  return {
    child,
    address: `127.0.0.1:${watch.port}`,
    port: watch.port,
    root,
    log,
    output: watch.output,
    ended,
    [Symbol.asyncDispose]: stop,
  };
}

Deno.test("SIGTERM to dfos serve lets the upload in flight finish, logs the totals and exits 0", async () => {
  await using server = await startServeProcess(["--stats-interval", "0.2"]);
  const uploader = await connect(server);
  const body = randomBytes(2 * MiB + 3);
  const gated = gatedBody(body);
  const putting = uploader.put("big.bin", gated.chunks, { size: body.length });
  await uploadUnderWay(server.root, MiB);
  await waitFor(() => server.output().includes("Totals: "), "a periodic totals line");

  server.child.kill("SIGTERM");
  await waitFor(() => server.output().includes("SIGTERM: shutting down"), "the server to start its drain");
  await assertRefused(server.port);
  gated.release();
  strictEqual((await putting).size, body.length);
  await uploader.close();

  const status = await server.ended;
  strictEqual(status.code, 0, server.output());
  strictEqual(await sha256File(join(server.root, "alice", "big.bin")), sha256(body));
  deepStrictEqual(await listDir(join(server.root, "alice", ".dfos-partial")), []);
  const log = await Deno.readTextFile(server.log);
  match(log, /put user=alice name=big\.bin bytes=2097155 duration=[\d.]+s rate=[\d.]+MiB\/s/);
  match(
    log,
    /Connection from 127\.0\.0\.1:\d+ closed \(Server shutting down\): user alice, [\d.]+ s, 1 operations, 2097155 bytes in, 0 bytes out/,
  );
  match(log, /Totals: \d+ connections \(\d+ active, peak 1\); operations put \d/);
  match(
    log,
    /Shut down\. Totals: 1 connections \(0 active, peak 1\); operations put 1, get 0, peek 0, rm 0, ls 0, mv 0, stat 0, changes 0, have 0, push 0, groups 0, read 0, watch 0; aborted none; 2097155 bytes in, 0 bytes out; failures none; CPU [\d.]+ s user, [\d.]+ s system, [\d.]+% of one core over the last [\d.]+ s; RSS [\d.]+ MiB; system memory \d+ of \d+ MiB used/,
  );
});

Deno.test("a second SIGTERM to dfos serve aborts the upload in flight at once and still exits 0", async () => {
  await using server = await startServeProcess(["--drain-timeout", "30"]);
  const uploader = await connect(server);
  const v1 = randomBytes(10_000);
  await uploader.put("f", once(v1), { size: v1.length });
  const gated = gatedBody(randomBytes(4 * MiB));
  const putting = uploader.put("f", gated.chunks, { size: 4 * MiB });
  putting.catch(() => {});
  await uploadUnderWay(server.root, MiB);

  const started = performance.now();
  server.child.kill("SIGTERM");
  await waitFor(() => server.output().includes("SIGTERM: shutting down"), "the server to start its drain");
  server.child.kill("SIGTERM");
  const status = await server.ended;
  ok(performance.now() - started < 5000, "the second signal did not wait for the drain");
  strictEqual(status.code, 0, server.output());
  deepStrictEqual(await listDir(join(server.root, "alice", ".dfos-partial")), []);
  strictEqual(await sha256File(join(server.root, "alice", "f")), sha256(v1));
  const log = await Deno.readTextFile(server.log);
  match(log, /\[WRN\] dfos·server: SIGTERM again: aborting everything now/);
  match(
    log,
    /\[WRN\] dfos·server: put aborted user=alice name=f direction=upload bytes=\d+ duration=[\d.]+s rate=[\d.]+MiB\/s: shutdown: request in flight aborted/,
  );
  match(log, /Shut down\. Totals: .*aborted put 1 \(\d+ bytes in, 0 bytes out\);.*failures shutdown 1 \(SHUTDOWN 1\);/);

  gated.release();
  await rejects(putting);
  await uploader.close();
});
