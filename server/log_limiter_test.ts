import assert from "node:assert/strict";
import { AddressLimiter, OTHER_ADDRESSES } from "./log_limiter.ts";

Deno.test("AddressLimiter lets through the limit per address and window, and summarises the rest once", () => {
  let now = 1000;
  const limiter = new AddressLimiter({ limit: 20, windowMs: 10_000, now: () => now });
  let passed = 0;
  for (let i = 0; i < 1000; i++) if (limiter.admit("192.0.2.7")) passed++;
  assert.equal(passed, 20);
  assert.deepEqual(limiter.sweep(), [], "nothing summarised before the window ends");
  now += 9_999;
  assert.equal(limiter.admit("192.0.2.7"), false);
  now += 1;
  assert.deepEqual(limiter.sweep().map((s) => s.line), ["981 more records from 192.0.2.7 suppressed in the last 10 s"]);
  assert.deepEqual(limiter.sweep(), [], "one summary per window");
  assert.equal(limiter.admit("192.0.2.7"), true, "a new window");
});

Deno.test("AddressLimiter always lets through the server's own records and counts addresses apart", () => {
  let now = 0;
  const limiter = new AddressLimiter({ limit: 2, windowMs: 10_000, now: () => now });
  for (let i = 0; i < 100; i++) assert.equal(limiter.admit(undefined), true);
  assert.equal(limiter.admit("a"), true);
  assert.equal(limiter.admit("a"), true);
  assert.equal(limiter.admit("a"), false);
  assert.equal(limiter.admit("b"), true);
  now = 10_000;
  assert.deepEqual(limiter.sweep().map((s) => [s.address, s.count]), [["a", 1]]);
});

Deno.test("AddressLimiter summarises a window that ended when its address logs again", () => {
  let now = 0;
  const limiter = new AddressLimiter({ limit: 1, windowMs: 10_000, now: () => now });
  limiter.admit("a");
  limiter.admit("a");
  limiter.admit("a");
  now = 25_000;
  assert.equal(limiter.admit("a"), true);
  assert.deepEqual(limiter.sweep().map((s) => s.line), ["2 more records from a suppressed in the last 10 s"]);
});

Deno.test("AddressLimiter tracks a bounded number of addresses; the others share one window", () => {
  let now = 0;
  const limiter = new AddressLimiter({ limit: 2, windowMs: 10_000, maxAddresses: 100, now: () => now });
  let passed = 0;
  for (let i = 0; i < 100_000; i++) if (limiter.admit(`2001:db8:${i.toString(16)}::`)) passed++;
  assert.ok(limiter.tracked <= 101, `${limiter.tracked} tracked`);
  assert.equal(passed, 100 + 2, "one window each for the first 100, one shared by the rest");
  now = 10_000;
  const summaries = limiter.sweep();
  assert.deepEqual(summaries.map((s) => s.line), [
    `${100_000 - 102} more records from ${OTHER_ADDRESSES} suppressed in the last 10 s`,
  ]);
  assert.equal(limiter.tracked, 0);
  assert.equal(limiter.admit("2001:db8:ffff::"), true, "room again once the windows are over");
});

Deno.test("AddressLimiter sweep(true) ends every window, over or not", () => {
  let now = 0;
  const limiter = new AddressLimiter({ limit: 1, windowMs: 10_000, now: () => now });
  limiter.admit("a");
  limiter.admit("a");
  now = 3_000;
  assert.deepEqual(limiter.sweep(true).map((s) => s.line), ["1 more records from a suppressed in the last 3 s"]);
});

Deno.test("AddressLimiter with limit 0 lets everything through", () => {
  const limiter = new AddressLimiter({ limit: 0 });
  for (let i = 0; i < 1000; i++) assert.equal(limiter.admit("a"), true);
  assert.equal(limiter.tracked, 0);
});
