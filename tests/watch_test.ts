/**
 * End-to-end tests of the `watch` request (docs/PROTOCOL.md "Sync") on a
 * real server on the local disk, through real sockets: a watch is held until
 * the user's counter moves (a put, rm or mv on another connection of the
 * user's answers it, with `changed` and `gone`), not by another user's
 * change; it is answered after its `wait` otherwise (a wait over the limit is
 * cut, not refused), at once for a counter of another epoch, at once when the
 * server shuts down (in process and on SIGTERM, without holding the shutdown
 * up), and at once when the client sends its next request; a client that
 * hangs up while it is held frees it. The S3 cases are in s3_watch_test.ts.
 *
 * @module
 */

import { deepStrictEqual, match, ok, rejects, strictEqual } from "node:assert/strict";
import { DfosClient } from "../client/connection.ts";
import { stillPending, within } from "./_common.ts";
import { MAX_WATCH_MS } from "../shared/messages.ts";
import { DfosError, Status } from "../shared/status.ts";
import { connect, spawnServe, startServer, storeFile, USERS, waitFor, watchServe } from "./_fixture.ts";
import { Peer } from "./_peer.ts";

const encoder = new TextEncoder();

/** The watches the server holds now (its `dfos_watches_held` gauge). */
function held(fx: { server: { metrics: { value(name: string): number } } }): number {
  return fx.server.metrics.value("dfos_watches_held");
}

Deno.test("watch is answered when another connection of the user puts, removes or moves a file, with changed and gone", async () => {
  await using fx = await startServer();
  const watcher = await connect(fx);
  const other = await connect(fx);
  try {
    const put = async (name: string, text: string) => {
      const bytes = encoder.encode(text);
      await other.put(
        name,
        (async function* () {
          yield bytes;
        })(),
        { size: bytes.length },
      );
    };
    const steps: { change: () => Promise<unknown>; changed: [string, number][]; gone: string[] }[] = [
      { change: () => put("docs/a.txt", "one"), changed: [["docs/a.txt", 3]], gone: [] },
      { change: () => put("docs/b.txt", "two!"), changed: [["docs/b.txt", 4]], gone: [] },
      { change: () => other.remove("docs/a.txt"), changed: [], gone: ["docs/a.txt"] },
      { change: () => other.move("docs/b.txt", "docs/c.txt"), changed: [["docs/c.txt", 4]], gone: ["docs/b.txt"] },
    ];
    const { epoch } = await watcher.changes();
    let { counter } = await watcher.changes();
    for (const step of steps) {
      const watching = watcher.watch({ epoch, counter, prefix: "docs/" }, { wait: MAX_WATCH_MS });
      await waitFor(() => held(fx) === 1, "the watch to be held");
      ok(await stillPending(watching, 100), "a watch with nothing changed is held");
      await step.change();
      const answer = await within(watching, "the watch's answer to a change");
      strictEqual(answer.epoch, epoch);
      strictEqual(answer.counter, counter + 1);
      strictEqual(answer.mine, 0);
      deepStrictEqual(answer.changed?.map(({ name, size }) => [name, size]), step.changed);
      deepStrictEqual(answer.gone, step.gone);
      counter = answer.counter;
    }
    strictEqual(held(fx), 0);
  } finally {
    await watcher.close();
    await other.close();
  }
});

Deno.test("watch is not answered by another user's change, and is by the user's next one", async () => {
  await using fx = await startServer();
  const alice = await connect(fx);
  try {
    const since = await alice.changes();
    const watching = alice.watch({ epoch: since.epoch, counter: since.counter, prefix: "" }, { wait: MAX_WATCH_MS });
    await waitFor(() => held(fx) === 1, "the watch to be held");
    await storeFile(fx, "bobs.txt", encoder.encode("bob's"), "bob");
    ok(await stillPending(watching, 500), "bob's change answered alice's watch");
    strictEqual(held(fx), 1);
    await storeFile(fx, "alices.txt", encoder.encode("alice's"));
    const answer = await within(watching, "the watch's answer to alice's change");
    strictEqual(answer.counter, since.counter + 1);
    deepStrictEqual(answer.changed?.map((entry) => entry.name), ["alices.txt"]);
  } finally {
    await alice.close();
  }
});

Deno.test("watch with nothing changed is answered after its wait with the counter as it was, and the connection serves on", async () => {
  await using fx = await startServer();
  const alice = await connect(fx);
  try {
    const since = await alice.changes();
    const answer = await within(alice.watch({ ...since, prefix: "" }, { wait: 300 }), "the watch's answer");
    deepStrictEqual(answer, { epoch: since.epoch, counter: since.counter, mine: 0, changed: [], gone: [] });
    strictEqual((await alice.changes()).counter, since.counter);
    strictEqual(fx.server.stats.snapshot().operations.watch, 1);
  } finally {
    await alice.close();
  }
});

Deno.test("watch of a wait past the limit is cut to the server's longest, not refused", async () => {
  // Half the op timeout (1 s) is this server's longest watch: a wait of about 50 days is answered, not refused.
  await using fx = await startServer({ opTimeoutMs: 2000 });
  const alice = await connect(fx);
  try {
    const since = await alice.changes();
    const answer = await within(alice.watch({ ...since, prefix: "" }, { wait: 2 ** 32 }), "the cut watch's answer");
    strictEqual(answer.counter, since.counter);
    strictEqual((await alice.changes()).counter, since.counter, "the connection still serves");
  } finally {
    await alice.close();
  }
});

Deno.test("watch of a counter of another epoch is answered at once, with the counter and without changes", async () => {
  await using fx = await startServer();
  await storeFile(fx, "a.txt", encoder.encode("a"));
  const alice = await connect(fx);
  try {
    const now = await alice.changes();
    const answer = await within(
      alice.watch({ epoch: "an epoch of another run", counter: now.counter, prefix: "" }, { wait: MAX_WATCH_MS }),
      "the watch's answer to another epoch",
    );
    deepStrictEqual(answer, { epoch: now.epoch, counter: now.counter, mine: 0 });
  } finally {
    await alice.close();
  }
});

Deno.test("watch is answered at once when the client sends its next request, which is then served in turn", async () => {
  await using fx = await startServer();
  const peer = await Peer.login(fx);
  try {
    await peer.send({ type: "changes" });
    const since = await peer.expect("counter");
    await peer.send({ type: "watch", epoch: since.epoch, since: since.counter, prefix: "", wait: MAX_WATCH_MS });
    await waitFor(() => held(fx) === 1, "the watch to be held");
    await peer.send({ type: "stat", name: "nothing.txt", digest: null });
    const answer = await within(peer.expect("counter"), "the watch's answer");
    strictEqual(answer.counter, since.counter);
    match(await peer.expectError(Status.NOT_FOUND), /nothing\.txt/);
  } finally {
    peer.abort();
  }
});

Deno.test("a client that hangs up while its watch is held frees it, and the server serves on", async () => {
  await using fx = await startServer();
  const watcher = await connect(fx);
  const since = await watcher.changes();
  const stop = new AbortController();
  const watching = watcher.watch({ ...since, prefix: "" }, { wait: MAX_WATCH_MS, signal: stop.signal });
  await waitFor(() => held(fx) === 1, "the watch to be held");
  stop.abort(new Error("the user gave up"));
  await rejects(watching, /the user gave up/);
  await watcher.close();
  await waitFor(() => held(fx) === 0, "the server to free the watch");
  await waitFor(() => fx.server.stats.snapshot().activeConnections === 0, "the connection to end");

  // A raw client that just closes its socket, too.
  const peer = await Peer.login(fx);
  await peer.send({ type: "watch", epoch: since.epoch, since: since.counter, prefix: "", wait: MAX_WATCH_MS });
  await waitFor(() => held(fx) === 1, "the raw watch to be held");
  peer.abort();
  await waitFor(() => held(fx) === 0, "the server to free the raw watch");

  await storeFile(fx, "after.txt", encoder.encode("still serving"));
  const alice = await connect(fx);
  strictEqual((await alice.changes()).counter, since.counter + 1);
  await alice.close();
});

Deno.test("DfosClient.watch() with a signal aborted already sends nothing and rejects with its reason", async () => {
  await using fx = await startServer();
  const alice = await connect(fx);
  try {
    const since = await alice.changes();
    await rejects(alice.watch({ ...since, prefix: "" }, { signal: AbortSignal.abort(new Error("no")) }), /no/);
    strictEqual((await alice.changes()).counter, since.counter, "the connection is untouched");
  } finally {
    await alice.close();
  }
});

Deno.test("shutdown answers a held watch at once with the counter, then says BUSY, and does not wait for it", async () => {
  await using fx = await startServer();
  const alice = await connect(fx);
  try {
    const since = await alice.changes();
    const watching = alice.watch({ ...since, prefix: "" }, { wait: MAX_WATCH_MS });
    await waitFor(() => held(fx) === 1, "the watch to be held");
    const stopping = fx.server.shutdown({ drainMs: 30_000 });
    const answer = await within(watching, "the watch's answer at shutdown");
    strictEqual(answer.counter, since.counter);
    await within(stopping, "the shutdown");
    await rejects(
      alice.changes(),
      (error) => error instanceof DfosError && error.code === Status.BUSY && error.message === "Server shutting down",
    );
  } finally {
    await alice.close();
  }
});

Deno.test("dfos serve on SIGTERM answers a held watch at once and exits without waiting for it", async () => {
  const { child, dir } = await spawnServe([]);
  try {
    const serve = await watchServe(child);
    const alice = await DfosClient.connect({ server: `127.0.0.1:${serve.port}`, user: "alice", password: USERS.alice });
    try {
      const since = await alice.changes();
      const watching = alice.watch({ ...since, prefix: "" }, { wait: MAX_WATCH_MS });
      ok(await stillPending(watching, 300), "the watch is held");
      child.kill("SIGTERM");
      const answer = await within(watching, "the watch's answer on SIGTERM");
      strictEqual(answer.counter, since.counter);
      // The drain timeout is 30 s: a server that waited for the watch would not be gone yet.
      const { status } = await within(serve.ended, "the server's exit");
      strictEqual(status.code, 0);
    } finally {
      await alice.close();
    }
  } finally {
    try {
      child.kill("SIGKILL");
    } catch {
      // It has ended.
    }
    await child.status;
    await Deno.remove(dir, { recursive: true });
  }
});
