import { deepStrictEqual, strictEqual } from "node:assert/strict";
import { ChangeWaiters } from "./change_waiters.ts";
import type { ChangeCounter } from "./storage.ts";

/** Settles the microtasks queued so far (a waiter's first look). */
function settle(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

/** Records whether `promise` has resolved. */
function track(promise: Promise<void>): { done: boolean; promise: Promise<void> } {
  const tracked = { done: false, promise };
  promise.then(() => tracked.done = true);
  return tracked;
}

Deno.test("ChangeWaiters wakes a waiter when its user's counter moves, not for another user or the same counter", async () => {
  const waiters = new ChangeWaiters();
  const since: ChangeCounter = { epoch: "e", counter: 5 };
  const alice = track(waiters.wait("alice", since, new AbortController().signal, () => Promise.resolve(since)));
  await settle();
  waiters.changed("bob", { epoch: "e", counter: 9 });
  waiters.changed("alice", { epoch: "e", counter: 5 });
  await settle();
  strictEqual(alice.done, false);
  strictEqual(waiters.size, 1);
  waiters.changed("alice", { epoch: "e", counter: 6 });
  await alice.promise;
  strictEqual(waiters.size, 0);
});

Deno.test("ChangeWaiters wakes a waiter at once when the counter moved before it waited, or is of another epoch", async () => {
  const waiters = new ChangeWaiters();
  await waiters.wait(
    "alice",
    { epoch: "e", counter: 5 },
    new AbortController().signal,
    () => Promise.resolve({ epoch: "e", counter: 6 }),
  );
  await waiters.wait(
    "alice",
    { epoch: "old", counter: 5 },
    new AbortController().signal,
    () => Promise.resolve({ epoch: "e", counter: 5 }),
  );
  strictEqual(waiters.size, 0);
});

Deno.test("ChangeWaiters ends a wait when its signal aborts, and tells the first and last waiter of each user", async () => {
  const told: string[] = [];
  const waiters = new ChangeWaiters({
    onFirst: (user) => told.push(`first ${user}`),
    onLast: (user) => told.push(`last ${user}`),
  });
  const since: ChangeCounter = { epoch: "e", counter: 1 };
  const current = () => Promise.resolve(since);
  const stops = [new AbortController(), new AbortController(), new AbortController()];
  const waits = [
    waiters.wait("alice", since, stops[0].signal, current),
    waiters.wait("alice", since, stops[1].signal, current),
    waiters.wait("bob", since, stops[2].signal, current),
  ];
  await settle();
  strictEqual(waiters.has("alice"), true);
  for (const stop of stops) stop.abort();
  await Promise.all(waits);
  deepStrictEqual(told, ["first alice", "first bob", "last alice", "last bob"]);
  strictEqual(waiters.has("alice"), false);
  await waiters.wait("alice", since, AbortSignal.abort(), current); // aborted already: no wait, nobody told
  strictEqual(told.length, 4);
});

Deno.test("ChangeWaiters lets a failed look at the counter reject the wait, and forgets the waiter", async () => {
  const waiters = new ChangeWaiters();
  const failing = () => Promise.reject(new Error("store down"));
  let error: unknown;
  await waiters.wait("alice", { epoch: "e", counter: 1 }, new AbortController().signal, failing).catch((e) =>
    error = e
  );
  strictEqual((error as Error).message, "store down");
  strictEqual(waiters.size, 0);
});
