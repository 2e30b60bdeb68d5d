/**
 * The `watch` request on S3, where another server sharing the bucket may
 * move a user's counter: two real `dfos serve` on one bucket of a real
 * engine (Ceph RGW), a watch held on one answered when a file changes
 * through the other (and through itself), one of another epoch answered at
 * once, and both servers exiting promptly on SIGTERM with a watch held;
 * and the poller itself (server/s3/s3_change_watch.ts) on the bucket: one
 * per user whatever its waiters, woken by another server's bump, stopped
 * when its last waiter leaves, leaving no timer behind.
 *
 * @module
 */

import { deepStrictEqual, ok, strictEqual } from "node:assert/strict";
import { join } from "node:path";
import { DfosClient } from "../client/connection.ts";
import { stillPending, within } from "./_common.ts";
import { S3ChangeCounters } from "../server/s3/s3_change_counters.ts";
import { S3ChangeWatch } from "../server/s3/s3_change_watch.ts";
import { MAX_WATCH_MS } from "../shared/messages.ts";
import { USERS } from "./_fixture.ts";
import { s3Test, type ServedOnBucket, serveOnBucket, tellS3Ignored } from "./_s3.ts";

tellS3Ignored("tests/s3_watch_test.ts");

const encoder = new TextEncoder();

/** An in-process client of `server`, as alice. */
function connect(server: ServedOnBucket): Promise<DfosClient> {
  return DfosClient.connect({ server: server.address, user: "alice", password: USERS.alice });
}

/** Stores `text` as `name` through `client`. */
async function put(client: DfosClient, name: string, text: string): Promise<void> {
  const bytes = encoder.encode(text);
  await client.put(
    name,
    (async function* () {
      yield bytes;
    })(),
    { size: bytes.length },
  );
}

s3Test(
  "two dfos serve on one bucket: a watch held on one is answered when a file changes through the other",
  async (bucket) => {
    const dir = await Deno.makeTempDir({ prefix: "dfos_s3_watch_" });
    const servers: ServedOnBucket[] = [];
    try {
      const lines = Object.entries(USERS).map(([user, password]) => `${user}:${password}\n`);
      await Deno.writeTextFile(join(dir, "users.txt"), lines.join(""));
      for (const name of ["one", "two"]) servers.push(await serveOnBucket(bucket, dir, name));
      const [one, two] = servers;
      const watcher = await connect(one);
      const changer = await connect(two);
      const local = await connect(one);
      try {
        let since = await watcher.changes();

        // Through the other server: only the bucket tells server one.
        let watching = watcher.watch({ ...since, prefix: "" }, { wait: MAX_WATCH_MS });
        ok(await stillPending(watching, 1000), "a watch with nothing changed is held");
        await put(changer, "docs/a.txt", "from server two");
        let answer = await within(watching, "the answer to a change through the other server");
        strictEqual(answer.epoch, since.epoch);
        strictEqual(answer.counter, since.counter + 1);
        deepStrictEqual(answer.changed?.map(({ name, size }) => [name, size]), [["docs/a.txt", 15]]);
        deepStrictEqual(answer.gone, []);
        since = answer;

        watching = watcher.watch({ ...since, prefix: "docs/" }, { wait: MAX_WATCH_MS });
        ok(await stillPending(watching, 500), "the watch is held again");
        await changer.remove("docs/a.txt");
        answer = await within(watching, "the answer to a removal through the other server");
        strictEqual(answer.counter, since.counter + 1);
        deepStrictEqual(answer.gone, ["docs/a.txt"]);
        since = answer;

        // Through the same server: woken in process.
        watching = watcher.watch({ ...since, prefix: "" }, { wait: MAX_WATCH_MS });
        ok(await stillPending(watching, 500), "the watch is held again");
        await put(local, "b.txt", "from server one");
        answer = await within(watching, "the answer to a change through the same server");
        strictEqual(answer.counter, since.counter + 1);
        since = answer;

        // Of another epoch: at once, with the counter and without changes.
        answer = await within(
          watcher.watch({ epoch: "another run's", counter: since.counter, prefix: "" }, { wait: MAX_WATCH_MS }),
          "the answer to another epoch",
        );
        deepStrictEqual(answer, { epoch: since.epoch, counter: since.counter, mine: 0 });

        // A watch held while both servers stop: answered at once, and neither waits for it (their drain is 30 s).
        watching = watcher.watch({ ...since, prefix: "" }, { wait: MAX_WATCH_MS });
        ok(await stillPending(watching, 500), "the watch is held again");
        for (const server of servers) server.child.kill("SIGTERM");
        strictEqual((await within(watching, "the answer at shutdown")).counter, since.counter);
        for (const server of servers) {
          strictEqual((await within(server.watch.ended, "the server's exit")).status.code, 0);
        }
      } finally {
        for (const client of [watcher, changer, local]) await client.close();
      }
    } finally {
      for (const server of servers) {
        try {
          server.child.kill("SIGKILL");
        } catch {
          // It has ended.
        }
        await server.watch.ended;
      }
      await Deno.remove(dir, { recursive: true });
    }
  },
);

s3Test(
  "S3ChangeWatch polls once per watched user, wakes on another server's bump, and stops with its last waiter",
  async (bucket) => {
    const store = bucket.store("poller");
    const counters = new S3ChangeCounters(store);
    const watch = new S3ChangeWatch(store, counters, 100);
    const elsewhere = new S3ChangeCounters(store); // another server's: this watch is not told of its writes
    try {
      const since = await counters.get("alice");
      const stops = [new AbortController(), new AbortController(), new AbortController()];
      const first = watch.wait("alice", since, stops[0].signal);
      const second = watch.wait("alice", since, stops[1].signal);
      const bobs = watch.wait("bob", await counters.get("bob"), stops[2].signal);
      strictEqual(watch.polled, 2, "one poller per user");
      ok(await stillPending(Promise.race([first, second]), 500), "nothing changed: the waiters wait");

      await elsewhere.bump("alice", { touched: [{ name: "a.txt" }] });
      await within(Promise.all([first, second]), "alice's waiters woken by another server's bump");
      strictEqual(watch.polled, 1, "alice's poller stopped with her last waiter");
      ok(await stillPending(bobs, 300), "bob's waiter is not woken by alice's change");

      stops[2].abort();
      await bobs;
      strictEqual(watch.polled, 0);
    } finally {
      await watch.close(); // the last looks done: no request or timer left for the sanitizers
    }
  },
);
