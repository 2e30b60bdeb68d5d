/**
 * `LoginThrottle`: what failed logins cost, per client address and per user
 * name. It is bookkeeping with an injectable clock: the session asks it how
 * long to hold an answer and whether an address is locked out, reserves a
 * slot before each step of a login that may check a password, and tells it
 * how each step ended. It sets no timer; the session holds its own answer
 * with a timer, so other connections go on.
 *
 * - Every failed login counts against the client's address
 *   ({@linkcode addressKey}) and against the user name it tried (none for a
 *   malformed attempt). Every refused attempt is a failure: a wrong password,
 *   an unknown user, an unoffered mechanism, a malformed message. The
 *   throttle is never told whether that name exists: an unknown user and a
 *   wrong password cost the same, by construction.
 * - Once either key has `freeFailures` failures, the answer to each further
 *   attempt on it waits `delayBaseMs`, doubling with each failure, at most
 *   `delayMaxMs` (the larger of the address's and the name's delays). A
 *   correct password waits as long as a wrong one: a client that takes a
 *   slow answer for a failure and gives up early learns nothing sooner.
 * - Once an address has `lockoutFailures` failures, it is locked out for
 *   `lockoutMs`: its login attempts are refused at once, before any password
 *   is checked. A user name is never locked out, so failures from elsewhere
 *   cannot keep its owner out: from another address, the right password
 *   still logs in (after the name's delay).
 * - A password is checked only in a slot ({@linkcode LoginThrottle.reserve}):
 *   an address's failures plus its checks in flight never exceed
 *   `lockoutFailures`, so attempts sent in parallel are checked at most that
 *   many times per window; the others wait for a slot, and are refused once
 *   the lockout begins.
 * - A key's failures are forgotten `lockoutMs` after the last one (or when its
 *   lockout ends, if later); `lockoutMs` 0 turns the throttle off. A login
 *   forgets only what it proves: the failures its address made on the same
 *   user name. It never ends a lockout, never forgets other names' failures
 *   (a login as one's own account must not buy guesses at another's), and
 *   never the name's failures from elsewhere.
 * - At most `maxKeys` addresses and as many names are tracked: when one more
 *   comes, expired entries go first, else the one whose last failure is the
 *   oldest. Memory stays bounded whatever a distributed attack sends.
 *
 * @example Usage
 * ```ts
 * import assert from "node:assert/strict";
 * import { LoginThrottle } from "./throttle.ts";
 * let now = 0;
 * const throttle = new LoginThrottle({ freeFailures: 1, delayBaseMs: 100, lockoutFailures: 3, now: () => now });
 * throttle.failure("192.0.2.1", "alice");
 * assert.equal(throttle.delayFor("192.0.2.1", "alice"), 100);
 * assert.equal(throttle.delayFor("192.0.2.9", "alice"), 100); // the name's delay, from anywhere
 * throttle.failure("192.0.2.1", "bob");
 * assert.ok(throttle.failure("192.0.2.1", "carol").lockout);
 * assert.ok(throttle.lockedFor("192.0.2.1") > 0);
 * assert.equal(throttle.lockedFor("192.0.2.9"), 0);
 * ```
 *
 * @module
 */

/** Failures from an address or on a name before answers are delayed, by default. */
export const DEFAULT_FREE_FAILURES = 5;

/** The first delay, in milliseconds, by default; it doubles with each further failure. */
export const DEFAULT_DELAY_BASE_MS = 250;

/** The longest delay, in milliseconds, by default. */
export const DEFAULT_DELAY_MAX_MS = 8_000;

/** Failures from one address that lock it out, by default. */
export const DEFAULT_LOCKOUT_FAILURES = 20;

/** Milliseconds a lockout lasts, and failures are remembered, by default (15 minutes). */
export const DEFAULT_LOCKOUT_MS = 900_000;

/** Addresses tracked at most, and as many names, by default. */
export const DEFAULT_MAX_KEYS = 100_000;

/** Characters of a user name that count: longer names share an entry with their first ones. */
const NAME_KEY_LENGTH = 256;

/**
 * Names whose failures an address entry keeps apart, so that a login can
 * forget its own name's; failures on further names stay in the address's
 * count, and no login forgets them.
 */
const NAMES_PER_ADDRESS = 32;

/** Options for {@linkcode LoginThrottle}. */
export interface LoginThrottleOptions {
  /**
   * Failures on a key (an address, a name) answered without delay.
   *
   * @default {DEFAULT_FREE_FAILURES}
   */
  freeFailures?: number;
  /**
   * Milliseconds the first delayed answer waits; each further failure doubles it.
   *
   * @default {DEFAULT_DELAY_BASE_MS}
   */
  delayBaseMs?: number;
  /**
   * The longest wait, in milliseconds; 0 for no delay at all.
   *
   * @default {DEFAULT_DELAY_MAX_MS}
   */
  delayMaxMs?: number;
  /**
   * Failures from one address that lock it out; 0 for no lockout.
   *
   * @default {DEFAULT_LOCKOUT_FAILURES}
   */
  lockoutFailures?: number;
  /**
   * Milliseconds a lockout lasts, and a key's failures are remembered after
   * its last one; 0 remembers nothing (the throttle is off).
   *
   * @default {DEFAULT_LOCKOUT_MS}
   */
  lockoutMs?: number;
  /**
   * Addresses tracked at most, and as many names.
   *
   * @default {DEFAULT_MAX_KEYS}
   */
  maxKeys?: number;
  /**
   * The clock, in milliseconds.
   *
   * @default {performance.now}
   */
  now?: () => number;
}

/** What {@linkcode LoginThrottle.failure} reports. */
export interface FailureOutcome {
  /** True when this failure started a lockout of the address. */
  lockout: boolean;
  /** Failures from the address now remembered. */
  addressFailures: number;
  /** Failures on the name now remembered (0 without a name). */
  nameFailures: number;
}

/** One key's failures. */
interface Entry {
  /** Failures remembered. */
  count: number;
  /** When the last one came. */
  last: number;
  /** Until when the key is locked out (addresses only; 0: not locked). */
  lockedUntil: number;
  /** Of an address: its failures per user name tried (at most `NAMES_PER_ADDRESS` names). */
  byName?: Map<string, number>;
}

/** An address's password checks under way, and the attempts waiting for one to end. */
interface InFlight {
  count: number;
  waiters: Set<() => void>;
}

/**
 * The right to check one password for an address, from
 * {@linkcode LoginThrottle.reserve}. Settle it once the check is done: as a
 * failure, a success, or neither (the step checked nothing, or the
 * connection went away before it could). Only the first settlement frees
 * the slot; `failure()` counts a failure every time it is called.
 */
export class LoginSlot {
  readonly #throttle: LoginThrottle;
  readonly #address: string;
  #held = true;

  /** @internal Made by {@linkcode LoginThrottle.reserve} only. */
  constructor(throttle: LoginThrottle, address: string) {
    this.#throttle = throttle;
    this.#address = address;
  }

  /** True until the slot is settled. */
  get held(): boolean {
    return this.#held;
  }

  /** Frees the slot without counting anything. Safe to call again. */
  release(): void {
    if (!this.#held) return;
    this.#held = false;
    this.#throttle.freeSlot(this.#address);
  }

  /**
   * Counts a failed login and frees the slot.
   *
   * @param name The user name tried, or null when the attempt never named one.
   * @returns Whether this failure started a lockout, and the counts.
   */
  failure(name: string | null): FailureOutcome {
    // Counted before the slot is freed: an attempt waiting for it then sees the failure.
    const outcome = this.#throttle.failure(this.#address, name);
    this.release();
    return outcome;
  }

  /**
   * Notes a successful login as `name` ({@linkcode LoginThrottle.success}) and frees the slot.
   *
   * @param name The user who logged in.
   */
  success(name: string): void {
    this.#throttle.success(this.#address, name);
    this.release();
  }
}

/** Counts failed logins per address and per user name, and says what they cost. */
export class LoginThrottle {
  readonly #free: number;
  readonly #base: number;
  readonly #max: number;
  readonly #lockoutFailures: number;
  readonly #lockoutMs: number;
  readonly #maxKeys: number;
  readonly #now: () => number;
  /** By address key; in the order of their last failure, oldest first. */
  readonly #addresses = new Map<string, Entry>();
  /** By user name; in the order of their last failure, oldest first. */
  readonly #names = new Map<string, Entry>();
  /** By address key: checks under way (an entry only while there is one, or a waiter). */
  readonly #inFlight = new Map<string, InFlight>();

  /** @param options Thresholds, delays, lockout, memory bound and clock. */
  constructor(options: LoginThrottleOptions = {}) {
    this.#free = options.freeFailures ?? DEFAULT_FREE_FAILURES;
    this.#base = options.delayBaseMs ?? DEFAULT_DELAY_BASE_MS;
    this.#max = options.delayMaxMs ?? DEFAULT_DELAY_MAX_MS;
    this.#lockoutFailures = options.lockoutFailures ?? DEFAULT_LOCKOUT_FAILURES;
    this.#lockoutMs = options.lockoutMs ?? DEFAULT_LOCKOUT_MS;
    this.#maxKeys = Math.max(1, options.maxKeys ?? DEFAULT_MAX_KEYS);
    this.#now = options.now ?? (() => performance.now());
  }

  /** Milliseconds a lockout lasts (as configured). */
  get lockoutMs(): number {
    return this.#lockoutMs;
  }

  /** How many addresses and names are tracked now (expired ones included until they are swept). */
  get size(): { addresses: number; names: number } {
    return { addresses: this.#addresses.size, names: this.#names.size };
  }

  /**
   * Returns how long the address is still locked out.
   *
   * @param address The client's address key ({@linkcode addressKey}).
   * @returns Milliseconds left, 0 when it may log in.
   */
  lockedFor(address: string): number {
    const entry = this.#get(this.#addresses, address);
    return entry === undefined ? 0 : Math.max(0, entry.lockedUntil - this.#now());
  }

  /**
   * Returns how long to hold the answer to an attempt, whatever its outcome:
   * the larger of the address's and the name's delays, from the failures
   * remembered before this attempt.
   *
   * @param address The client's address key.
   * @param name The user name tried, or null when there is none (a malformed or unoffered AUTH).
   * @returns Milliseconds, 0 for none.
   */
  delayFor(address: string, name: string | null): number {
    const byAddress = this.#delay(this.#get(this.#addresses, address)?.count ?? 0);
    const byName = name === null ? 0 : this.#delay(this.#get(this.#names, nameKey(name))?.count ?? 0);
    return Math.max(byAddress, byName);
  }

  /**
   * Waits until the address may have one more password checked, and reserves
   * that check: its failures plus its checks under way stay below
   * `lockoutFailures` (without a lockout, a slot is granted at once). Waits
   * for a check under way to end when there is no room; an address locked
   * out meanwhile gets no slot.
   *
   * @param address The client's address key.
   * @param signal Ends the wait (the connection is closing): the promise then rejects with its reason.
   * @returns The slot, or null when the address is locked out ({@linkcode lockedFor}).
   */
  async reserve(address: string, signal?: AbortSignal): Promise<LoginSlot | null> {
    while (true) {
      signal?.throwIfAborted();
      if (this.lockedFor(address) > 0) return null;
      const inFlight = this.#inFlight.get(address) ?? { count: 0, waiters: new Set() };
      const failures = this.#get(this.#addresses, address)?.count ?? 0;
      if (this.#lockoutFailures <= 0 || this.#lockoutMs <= 0 || failures + inFlight.count < this.#lockoutFailures) {
        inFlight.count++;
        this.#inFlight.set(address, inFlight);
        return new LoginSlot(this, address);
      }
      // No room: wait for a check under way to end (a success makes room, failures may start the lockout).
      this.#inFlight.set(address, inFlight);
      await new Promise<void>((resolve, reject) => {
        const onAbort = () => {
          inFlight.waiters.delete(wake);
          this.#forget(address, inFlight);
          reject(signal!.reason);
        };
        const wake = () => {
          signal?.removeEventListener("abort", onAbort);
          resolve();
        };
        inFlight.waiters.add(wake);
        signal?.addEventListener("abort", onAbort, { once: true });
      });
    }
  }

  /** Checks under way for the address (for tests and the log). */
  checking(address: string): number {
    return this.#inFlight.get(address)?.count ?? 0;
  }

  /** @internal Called by {@linkcode LoginSlot}: one check for the address has ended; the waiters look again. */
  freeSlot(address: string): void {
    const inFlight = this.#inFlight.get(address);
    if (inFlight === undefined) return;
    inFlight.count--;
    const waiters = [...inFlight.waiters];
    inFlight.waiters.clear();
    this.#forget(address, inFlight);
    for (const wake of waiters) wake();
  }

  #forget(address: string, inFlight: InFlight): void {
    if (inFlight.count <= 0 && inFlight.waiters.size === 0) this.#inFlight.delete(address);
  }

  /**
   * Counts a failed login against the address and the name.
   *
   * @param address The client's address key.
   * @param name The user name tried (known or not), or null.
   * @returns Whether this failure started a lockout, and the counts.
   */
  failure(address: string, name: string | null): FailureOutcome {
    const now = this.#now();
    const entry = this.#count(this.#addresses, address, now);
    let lockout = false;
    if (this.#lockoutFailures > 0 && entry.count >= this.#lockoutFailures && entry.lockedUntil <= now) {
      entry.lockedUntil = now + this.#lockoutMs;
      lockout = this.#lockoutMs > 0;
    }
    if (name !== null) {
      const byName = entry.byName ??= new Map();
      const key = nameKey(name);
      if (byName.has(key) || byName.size < NAMES_PER_ADDRESS) byName.set(key, (byName.get(key) ?? 0) + 1);
    }
    const nameFailures = name === null ? 0 : this.#count(this.#names, nameKey(name), now).count;
    return { lockout, addressFailures: entry.count, nameFailures };
  }

  /**
   * Notes a successful login as `name`: the failures this address made on
   * that name are forgotten, as the login proves they were its owner's
   * typos. Nothing else is: not the address's failures on other names (a
   * login as one's own account must not buy more guesses at another's), not
   * a lockout under way, and not the name's failures from elsewhere.
   *
   * @param address The client's address key.
   * @param name The user who logged in.
   */
  success(address: string, name: string): void {
    const now = this.#now();
    const entry = this.#get(this.#addresses, address);
    if (entry === undefined || entry.lockedUntil > now) return;
    const key = nameKey(name);
    const own = entry.byName?.get(key) ?? 0;
    if (own === 0) return;
    entry.byName!.delete(key);
    entry.count -= own;
    if (entry.count <= 0) this.#addresses.delete(address);
  }

  #delay(count: number): number {
    if (this.#max <= 0 || count < this.#free) return 0;
    return Math.min(this.#base * 2 ** Math.min(count - this.#free, 40), this.#max);
  }

  /** The key's live entry, or undefined (an expired one is dropped). */
  #get(map: Map<string, Entry>, key: string): Entry | undefined {
    const entry = map.get(key);
    if (entry !== undefined && this.#expired(entry, this.#now())) {
      map.delete(key);
      return undefined;
    }
    return entry;
  }

  #expired(entry: Entry, now: number): boolean {
    return now >= Math.max(entry.lockedUntil, entry.last + this.#lockoutMs);
  }

  /** Adds a failure to the key's entry (made if needed) and moves it to the end of the map. */
  #count(map: Map<string, Entry>, key: string, now: number): Entry {
    let entry = this.#get(map, key);
    if (entry === undefined) {
      this.#makeRoom(map, now);
      entry = { count: 0, last: now, lockedUntil: 0 };
    }
    map.delete(key);
    entry.count++;
    entry.last = now;
    map.set(key, entry);
    return entry;
  }

  /** Makes room for one more entry: expired ones from the front first, else the one idle the longest. */
  #makeRoom(map: Map<string, Entry>, now: number): void {
    // The map is in the order of last failures: the front expires first.
    for (const [key, entry] of map) {
      if (map.size < this.#maxKeys) return;
      map.delete(key);
      if (!this.#expired(entry, now)) return; // evicted a live one: room made, the rest are newer
    }
  }
}

/**
 * Returns the key a client address counts under: an IPv4 address as it is
 * (an IPv4-mapped IPv6 address as its IPv4 form), an IPv6 address as its /64
 * prefix, since one host or customer usually has a whole /64 to draw from.
 *
 * @example Usage
 * ```ts
 * import assert from "node:assert/strict";
 * import { addressKey } from "./throttle.ts";
 * assert.equal(addressKey("192.0.2.7"), "192.0.2.7");
 * assert.equal(addressKey("::ffff:192.0.2.7"), "192.0.2.7");
 * assert.equal(addressKey("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
 * ```
 *
 * @param hostname The remote address, as `Deno.NetAddr.hostname` gives it.
 * @returns The key.
 */
export function addressKey(hostname: string): string {
  const bare = hostname.replace(/^\[|\]$/g, "").replace(/%.*$/, "").toLowerCase();
  if (!bare.includes(":")) return bare;
  const groups = expandIpv6(bare);
  if (groups === null) return bare;
  const hex = groups.map((group) => parseInt(group, 16));
  if (hex.slice(0, 5).every((value) => value === 0) && hex[5] === 0xffff) {
    return [hex[6] >> 8, hex[6] & 0xff, hex[7] >> 8, hex[7] & 0xff].join("."); // IPv4-mapped
  }
  return `${hex.slice(0, 4).map((value) => value.toString(16)).join(":")}::/64`;
}

/** The eight groups of an IPv6 address (an embedded IPv4 tail turned into two), or null if it is not one. */
function expandIpv6(address: string): string[] | null {
  let text = address;
  const ipv4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (ipv4 !== null) {
    const [a, b, c, d] = ipv4.slice(1).map(Number);
    text = text.slice(0, ipv4.index) + `${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const halves = text.split("::");
  if (halves.length > 2) return null;
  const head = halves[0] === "" ? [] : halves[0].split(":");
  const tail = halves.length === 1 || halves[1] === "" ? [] : halves[1].split(":");
  const missing = 8 - head.length - tail.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return null;
  const groups = [...head, ...Array(halves.length === 1 ? 0 : missing).fill("0"), ...tail];
  return groups.every((group) => /^[0-9a-f]{1,4}$/.test(group)) ? groups : null;
}

/** The key a user name counts under: the name, cut to its first characters if it is very long. */
function nameKey(name: string): string {
  return name.length > NAME_KEY_LENGTH ? name.slice(0, NAME_KEY_LENGTH) : name;
}
