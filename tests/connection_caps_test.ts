/**
 * Attacks on the server's connection places, on a real server started
 * in-process: a client that pipelines requests and never reads the replies,
 * one address opening connection after connection, one account logging in
 * again and again. None of them may hold every place: each is cut off at the
 * op timeout, or refused with BUSY at its cap while others still get in.
 *
 * @module
 */

import { deepStrictEqual, ok, strictEqual } from "node:assert/strict";
import net from "node:net";
import { join } from "node:path";
import { MESSAGE_CODES } from "../shared/messages.ts";
import { Status } from "../shared/status.ts";
import { connect, delay, runCli, spawnServe, startServer, waitFor, watchServe } from "./_fixture.ts";
import { concat, frameBytes, HELLO, Peer } from "./_peer.ts";

Deno.test("clients that pipeline requests and never read the replies are cut off at --op-timeout, and others get in", async () => {
  await using fx = await startServer({
    opTimeoutMs: 1000,
    maxConnections: 2,
    maxConnectionsPerAddress: 2,
    maxConnectionsPerUser: 2,
  });
  // A listing of these fills a reply of about 64 KiB: 300 of them are far more than the sockets' buffers hold.
  const home = join(fx.root, "alice");
  await Deno.mkdir(home, { recursive: true });
  for (let i = 0; i < 600; i++) await Deno.writeTextFile(join(home, `${"n".repeat(100)}-${i}`), "x");
  const hogs = [await Peer.login(fx), await Peer.login(fx)];
  try {
    const requests = concat(Array.from({ length: 300 }, () => frameBytes({ type: "list", prefix: "", after: "" })));
    for (const hog of hogs) await hog.write(requests);
    // From here on the hogs read nothing. Every place is theirs, until the server's sends stall and it cuts them.
    await waitFor(
      () => fx.server.stats.snapshot().activeConnections === 0,
      "the server to close both connections that do not read",
      15_000,
    );
    strictEqual(fx.server.stats.snapshot().failures.STALL_TIMEOUT, 2);
  } finally {
    for (const hog of hogs) hog.abort();
  }
  const cli = await runCli(["ls"], { env: fx.envFor("bob") });
  strictEqual(cli.code, 0, cli.stderr);
});

Deno.test("one address cannot hold every place: over --max-connections-per-address it is told BUSY, others get in", async () => {
  await using fx = await startServer({ maxConnections: 4, maxConnectionsPerAddress: 2 });
  // Two connections from 127.0.0.1 that never say HELLO hold its two places.
  const silent = [await Peer.open(fx), await Peer.open(fx)];
  try {
    await waitFor(() => fx.server.stats.snapshot().activeConnections === 2, "two connections open");
    const third = await Peer.open(fx);
    const { messages } = await third.untilClosed(2000);
    third.abort();
    deepStrictEqual(messages, [{
      type: "error",
      code: Status.BUSY,
      message: "Server busy: 2 connections open from 127.0.0.1; try again later",
    }]);
    const cli = await runCli(["ls"], { env: fx.envFor("alice") });
    strictEqual(cli.code, 1, cli.stderr);
    strictEqual(cli.stderr, "dfos ls: Server busy: 2 connections open from 127.0.0.1; try again later\n");

    // Another address still gets the server's WELCOME.
    strictEqual(await firstFrameType(fx.port, "127.0.0.2"), MESSAGE_CODES.welcome);
  } finally {
    for (const peer of silent) peer.abort();
  }
  // A place given back is taken again.
  await waitFor(() => fx.server.stats.snapshot().activeConnections === 0, "the silent connections to be gone");
  const client = await connect(fx);
  await client.close();
});

Deno.test("one user cannot hold every place: by default a quarter of --max-connections, then a login is told BUSY", async () => {
  await using fx = await startServer({ maxConnections: 10 });
  const alice = [await Peer.login(fx), await Peer.login(fx)];
  try {
    // The third login of alice is answered BUSY instead of AUTH-OK; the connection is closed.
    const third = await Peer.open(fx);
    await third.hello();
    const end = await third.scram("alice", "apple");
    deepStrictEqual(end, {
      type: "error",
      code: Status.BUSY,
      message: "Server busy: alice has 2 connections open; try again later",
    });
    await third.untilClosed(2000);
    third.abort();
    const cli = await runCli(["ls"], { env: fx.envFor("alice") });
    strictEqual(cli.code, 1, cli.stderr);
    strictEqual(cli.stderr, "dfos ls: Server busy: alice has 2 connections open; try again later\n");
    // Everyone else still logs in.
    const bob = await runCli(["ls"], { env: fx.envFor("bob") });
    strictEqual(bob.code, 0, bob.stderr);
    ok(fx.server.stats.snapshot().failures.BUSY >= 2);
  } finally {
    for (const peer of alice) peer.abort();
  }
  // Once alice's connections are gone, she logs in again.
  await waitFor(() => fx.server.stats.snapshot().activeConnections === 0, "alice's connections to be gone");
  const again = await connect(fx);
  await again.close();
});

Deno.test("dfos serve refuses a per-address or per-user cap above --max-connections", async () => {
  for (const flag of ["--max-connections-per-address", "--max-connections-per-user"]) {
    const result = await runCli(["serve", "--port", "0", "--max-connections", "4", flag, "5"]);
    strictEqual(result.code, 2, result.stderr);
    strictEqual(result.stderr.split("\n")[0], `dfos serve: ${flag} takes a whole number from 1 to 4, not "5"`);
  }
});

/** Connects from `from` (node:net can bind the local address, Deno.connect cannot), says HELLO, reads one frame. */
function firstFrameType(port: number, from: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: "127.0.0.1", port, localAddress: from });
    let received: Uint8Array = new Uint8Array(0);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`No frame from the server within 3 s (connecting from ${from})`));
    }, 3000);
    socket.on("connect", () => socket.write(frameBytes(HELLO)));
    socket.on("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
    socket.on("data", (chunk: Uint8Array) => {
      received = concat([received, chunk]);
      if (received.length < 5) return;
      clearTimeout(timer);
      socket.destroy();
      resolve(received[4]);
    });
  });
}

Deno.test("a flood of connections over the cap is refused without holding a socket for each", async () => {
  // A `dfos serve` of its own, so that its open files are its alone (tests in parallel share this process).
  const { child, dir } = await spawnServe(["--max-connections", "1"], { prefix: "dfos_flood_" });
  const flood: Deno.TcpConn[] = [];
  const watch = await watchServe(child);
  try {
    const { port } = watch;
    flood.push(await Deno.connect({ hostname: "127.0.0.1", port })); // holds the one place
    await delay(300);
    const before = openFiles(child.pid);
    let most = before;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        most = Math.max(most, openFiles(child.pid));
        await delay(5);
      }
    })();
    // 400 connections that neither read nor hang up: each refused one the server lingers on holds a socket.
    for (let i = 0; i < 400; i++) flood.push(await Deno.connect({ hostname: "127.0.0.1", port }));
    await delay(1500);
    sampling = false;
    await sampler;
    // At most 256 of the server's own sockets while it tells the refused why (before: one for each, 400).
    ok(most - before <= 256 + 16, `${most - before} files opened by the server for 400 refused connections`);
  } finally {
    for (const conn of flood) conn.close();
    try {
      child.kill("SIGTERM");
    } catch {
      // It has ended already.
    }
    await watch.ended;
    await Deno.remove(dir, { recursive: true });
  }
});

/** Files the process `pid` has open now. */
function openFiles(pid: number): number {
  return [...Deno.readDirSync(`/proc/${pid}/fd`)].length;
}
