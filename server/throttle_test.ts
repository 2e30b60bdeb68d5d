import { deepStrictEqual, ok, rejects, strictEqual } from "node:assert/strict";
import { addressKey, LoginSlot, LoginThrottle, type LoginThrottleOptions } from "./throttle.ts";

/** A throttle on a clock the test moves by hand. */
function fakeClock(options: LoginThrottleOptions = {}): { throttle: LoginThrottle; advance(ms: number): void } {
  let now = 1_000_000;
  const throttle = new LoginThrottle({ now: () => now, ...options });
  return { throttle, advance: (ms) => now += ms };
}

const SMALL: LoginThrottleOptions = {
  freeFailures: 2,
  delayBaseMs: 100,
  delayMaxMs: 500,
  lockoutFailures: 6,
  lockoutMs: 60_000,
};

Deno.test("LoginThrottle answers the free failures at once, then doubles the delay up to its cap", () => {
  const { throttle } = fakeClock({ ...SMALL, lockoutFailures: 0 });
  const delays: number[] = [];
  for (let i = 0; i < 7; i++) {
    delays.push(throttle.delayFor("192.0.2.1", "alice"));
    throttle.failure("192.0.2.1", "alice");
  }
  deepStrictEqual(delays, [0, 0, 100, 200, 400, 500, 500]);
  strictEqual(throttle.lockedFor("192.0.2.1"), 0, "no lockout when lockoutFailures is 0");
});

Deno.test("LoginThrottle counts a user name from every address, and an address over every name", () => {
  const { throttle } = fakeClock(SMALL);
  // Failures on one name from many addresses delay that name everywhere...
  for (let i = 0; i < 3; i++) throttle.failure(`198.51.100.${i}`, "alice");
  strictEqual(throttle.delayFor("203.0.113.9", "alice"), 200);
  // ...but not other names from a fresh address.
  strictEqual(throttle.delayFor("203.0.113.9", "bob"), 0);
  // Failures from one address over many names delay that address, whatever name it tries next.
  for (const name of ["u1", "u2", "u3", "u4"]) throttle.failure("192.0.2.1", name);
  strictEqual(throttle.delayFor("192.0.2.1", "someone-new"), 400);
  strictEqual(throttle.delayFor("192.0.2.1", null), 400);
  // The larger of the two delays applies.
  strictEqual(throttle.delayFor("192.0.2.1", "alice"), 400);
});

Deno.test("LoginThrottle treats every name alike: it is never told whether a user exists", () => {
  // The same failures on a real user's name and on a made-up one give the same answers throughout.
  const { throttle } = fakeClock(SMALL);
  for (let i = 0; i < 5; i++) {
    strictEqual(throttle.delayFor(`198.51.100.${i}`, "alice"), throttle.delayFor(`203.0.113.${i}`, "mallory"));
    deepStrictEqual(throttle.failure(`198.51.100.${i}`, "alice"), throttle.failure(`203.0.113.${i}`, "mallory"));
  }
  strictEqual(throttle.delayFor("192.0.2.1", "alice"), 500);
  strictEqual(throttle.delayFor("192.0.2.1", "mallory"), 500);
});

Deno.test("LoginThrottle locks out an address after its failures, and never a name", () => {
  const { throttle, advance } = fakeClock(SMALL);
  const outcomes = [];
  for (let i = 0; i < 7; i++) outcomes.push(throttle.failure("192.0.2.1", "alice").lockout);
  deepStrictEqual(outcomes, [false, false, false, false, false, true, false], "the lockout starts once");
  strictEqual(throttle.lockedFor("192.0.2.1"), 60_000);
  // Another address is not locked out, and the name is only delayed there.
  strictEqual(throttle.lockedFor("192.0.2.2"), 0);
  strictEqual(throttle.delayFor("192.0.2.2", "alice"), 500);
  advance(59_999);
  strictEqual(throttle.lockedFor("192.0.2.1"), 1);
  advance(1);
  strictEqual(throttle.lockedFor("192.0.2.1"), 0, "the lockout ends");
  strictEqual(throttle.delayFor("192.0.2.1", null), 0, "and the address's failures are forgotten with it");
});

Deno.test("LoginThrottle forgets a key's failures a lockout window after the last one", () => {
  const { throttle, advance } = fakeClock(SMALL);
  for (let i = 0; i < 3; i++) throttle.failure("192.0.2.1", "alice");
  advance(30_000);
  throttle.failure("192.0.2.1", "alice"); // a failure keeps the key alive
  advance(59_999);
  strictEqual(throttle.delayFor("192.0.2.1", "alice"), 400);
  advance(1);
  strictEqual(throttle.delayFor("192.0.2.1", "alice"), 0);
  deepStrictEqual(throttle.size, { addresses: 0, names: 0 }, "expired entries are dropped when looked at");
});

Deno.test("LoginThrottle forgets at a login only the address's failures on that name, not the name's", () => {
  const { throttle } = fakeClock(SMALL);
  for (let i = 0; i < 4; i++) throttle.failure("192.0.2.1", "alice");
  throttle.success("192.0.2.1", "alice");
  strictEqual(throttle.delayFor("192.0.2.1", null), 0);
  strictEqual(throttle.delayFor("192.0.2.1", "alice"), 400, "the name's failures may be someone else's");
  strictEqual(throttle.failure("192.0.2.1", "bob").addressFailures, 1);
});

Deno.test("LoginThrottle: a login as one's own account forgets no guesses at another's, nor a lockout", () => {
  const { throttle } = fakeClock(SMALL); // 6 failures lock an address out
  for (let i = 0; i < 5; i++) throttle.failure("192.0.2.1", "bob");
  throttle.failure("192.0.2.1", "mallory"); // a typo on the attacker's own account: the sixth failure
  strictEqual(throttle.lockedFor("192.0.2.1"), 60_000);
  throttle.success("192.0.2.1", "mallory");
  strictEqual(throttle.lockedFor("192.0.2.1"), 60_000, "the lockout stands");
  strictEqual(throttle.delayFor("192.0.2.1", null), 500);

  const other = fakeClock(SMALL).throttle;
  for (let i = 0; i < 4; i++) other.failure("192.0.2.1", "bob");
  other.failure("192.0.2.1", "mallory");
  other.success("192.0.2.1", "mallory"); // forgets the typo, not the guesses at bob
  deepStrictEqual(other.failure("192.0.2.1", "bob"), { lockout: false, addressFailures: 5, nameFailures: 5 });
  strictEqual(other.failure("192.0.2.1", "bob").lockout, true);
});

Deno.test("LoginThrottle.reserve: failures plus checks under way never exceed the lockout's count", async () => {
  const { throttle } = fakeClock(SMALL); // 6 failures lock an address out
  const slots = await Promise.all(Array.from({ length: 6 }, () => throttle.reserve("192.0.2.1")));
  strictEqual(throttle.checking("192.0.2.1"), 6);
  // A seventh waits for one of the six to end...
  let granted = false;
  const waiting = throttle.reserve("192.0.2.1").then((slot) => (granted = true, slot));
  await Promise.resolve();
  strictEqual(granted, false);
  // ...a success makes room for it...
  slots[0]!.success("alice");
  const seventh = await waiting;
  ok(seventh instanceof LoginSlot);
  // ...and once the failures lock the address out, those waiting get no slot.
  const eighth = throttle.reserve("192.0.2.1");
  for (const slot of [...slots.slice(1), seventh]) slot!.failure("bob");
  strictEqual(await eighth, null);
  strictEqual(throttle.lockedFor("192.0.2.1"), 60_000);
  strictEqual(throttle.checking("192.0.2.1"), 0);
  // Another address is not held up.
  const elsewhere = await throttle.reserve("192.0.2.2");
  elsewhere!.release();
  elsewhere!.release(); // settling twice frees one slot
  strictEqual(throttle.checking("192.0.2.2"), 0);
});

Deno.test("LoginThrottle.reserve gives up waiting when its signal is aborted", async () => {
  const { throttle } = fakeClock({ ...SMALL, lockoutFailures: 1 });
  const slot = await throttle.reserve("192.0.2.1");
  const controller = new AbortController();
  const waiting = throttle.reserve("192.0.2.1", controller.signal);
  controller.abort(new Error("closing"));
  await rejects(waiting, /closing/);
  slot!.release();
  strictEqual(throttle.checking("192.0.2.1"), 0);
});

Deno.test("LoginThrottle with a lockout window of 0 remembers nothing", () => {
  const { throttle } = fakeClock({ ...SMALL, lockoutMs: 0 });
  for (let i = 0; i < 10; i++) strictEqual(throttle.failure("192.0.2.1", "alice").lockout, false);
  strictEqual(throttle.delayFor("192.0.2.1", "alice"), 0);
  strictEqual(throttle.lockedFor("192.0.2.1"), 0);
});

Deno.test("LoginThrottle tracks at most maxKeys addresses and names, dropping the oldest first", () => {
  const { throttle, advance } = fakeClock({ ...SMALL, maxKeys: 100 });
  for (let i = 0; i < 10_000; i++) {
    throttle.failure(`10.0.${i >> 8}.${i & 255}`, `user${i}`);
    advance(1);
  }
  deepStrictEqual(throttle.size, { addresses: 100, names: 100 });
  // The newest are kept: the last address still has its failure, the first none.
  strictEqual(throttle.failure("10.0.39.15", "x").addressFailures, 2);
  strictEqual(throttle.failure("10.0.0.0", "x").addressFailures, 1);
  // A very long name counts under its first 256 characters: no entry holds more.
  const long = "n".repeat(100_000);
  throttle.failure("192.0.2.1", long);
  strictEqual(throttle.failure("192.0.2.1", long + "other").nameFailures, 2);
});

Deno.test("LoginThrottle sweeps expired entries before evicting live ones", () => {
  const { throttle, advance } = fakeClock({ ...SMALL, maxKeys: 3 });
  throttle.failure("192.0.2.1", null);
  throttle.failure("192.0.2.2", null);
  advance(60_000); // both expired
  throttle.failure("192.0.2.3", null);
  throttle.failure("192.0.2.4", null);
  throttle.failure("192.0.2.5", null);
  strictEqual(throttle.size.addresses, 3);
  strictEqual(throttle.failure("192.0.2.3", null).addressFailures, 2, "a live entry was kept");
});

Deno.test("addressKey keeps IPv4, unwraps IPv4-mapped IPv6, and cuts IPv6 to its /64", () => {
  const cases: [string, string][] = [
    ["127.0.0.1", "127.0.0.1"],
    ["::ffff:192.0.2.7", "192.0.2.7"],
    ["::FFFF:c000:0207", "192.0.2.7"],
    ["0:0:0:0:0:ffff:192.0.2.7", "192.0.2.7"],
    ["2001:db8:1:2:aaaa:bbbb:cccc:dddd", "2001:db8:1:2::/64"],
    ["2001:0DB8:0001:0002::1", "2001:db8:1:2::/64"],
    ["2001:db8::1", "2001:db8:0:0::/64"],
    ["[2001:db8:1:2::5]", "2001:db8:1:2::/64"],
    ["fe80::1%eth0", "fe80:0:0:0::/64"],
    ["::1", "0:0:0:0::/64"],
    ["not-an-address", "not-an-address"],
  ];
  for (const [address, key] of cases) strictEqual(addressKey(address), key, address);
});
