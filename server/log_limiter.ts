/**
 * `AddressLimiter`: at most so many log records per client address per
 * window; the rest are counted, and one summary per address and window says
 * how many: "1480 more records from 203.0.113.9 suppressed in the last 10 s".
 * A record without an address (the server's own: start-up, totals,
 * shutdown) always passes. It tracks a bounded number of addresses: when
 * that many have a window open, the others share one, "other addresses".
 *
 * @example Usage
 * ```ts
 * import assert from "node:assert/strict";
 * import { AddressLimiter } from "./log_limiter.ts";
 * let now = 0;
 * const limiter = new AddressLimiter({ limit: 2, windowMs: 10_000, now: () => now });
 * assert.ok(limiter.admit("192.0.2.7") && limiter.admit("192.0.2.7") && !limiter.admit("192.0.2.7"));
 * now = 10_000;
 * assert.equal(limiter.sweep()[0].line, "1 more records from 192.0.2.7 suppressed in the last 10 s");
 * ```
 *
 * @module
 */

/** Options for {@linkcode AddressLimiter}. */
export interface AddressLimiterOptions {
  /**
   * Records let through per address and window; 0 for no limit.
   *
   * @default {DEFAULT_LOG_LIMIT}
   */
  limit?: number;
  /**
   * The window, in milliseconds; it starts with an address's first record.
   *
   * @default {DEFAULT_LOG_WINDOW_MS}
   */
  windowMs?: number;
  /**
   * The most addresses with a window of their own at once.
   *
   * @default {DEFAULT_LOG_ADDRESSES}
   */
  maxAddresses?: number;
  /**
   * The clock, in milliseconds.
   *
   * @default {() => performance.now()}
   */
  now?: () => number;
}

/** A window that ended with records suppressed. */
export interface Suppressed {
  /** The address, or "other addresses". */
  address: string;
  /** Records suppressed in the window. */
  count: number;
  /** The summary line: "N more records from ADDRESS suppressed in the last S s". */
  line: string;
}

/** Records per address and window by default. */
export const DEFAULT_LOG_LIMIT = 20;

/** The window: 10 s. */
export const DEFAULT_LOG_WINDOW_MS = 10_000;

/** Addresses tracked at once by default. */
export const DEFAULT_LOG_ADDRESSES = 1024;

/** The shared window of the addresses beyond the bound. */
export const OTHER_ADDRESSES = "other addresses";

interface Window {
  start: number;
  passed: number;
  suppressed: number;
}

/** Lets through at most `limit` records per address per window, and summarises the rest. */
export class AddressLimiter {
  readonly #limit: number;
  readonly #windowMs: number;
  readonly #maxAddresses: number;
  readonly #now: () => number;
  readonly #windows = new Map<string, Window>();
  /** Summaries of windows that ended when their address logged again, until `sweep()` takes them. */
  #ended: Suppressed[] = [];
  #lastPrune = -Infinity;

  /**
   * @param options The limit, the window, the bound on addresses and the clock.
   */
  constructor(options: AddressLimiterOptions = {}) {
    this.#limit = options.limit ?? DEFAULT_LOG_LIMIT;
    this.#windowMs = options.windowMs ?? DEFAULT_LOG_WINDOW_MS;
    this.#maxAddresses = options.maxAddresses ?? DEFAULT_LOG_ADDRESSES;
    this.#now = options.now ?? (() => performance.now());
  }

  /** Addresses with a window open ("other addresses" included). */
  get tracked(): number {
    return this.#windows.size;
  }

  /**
   * Says whether a record from `address` may pass, and counts it.
   *
   * @param address The record's address; undefined for the server's own records.
   * @returns True to let it through; false when it is suppressed (and counted for the summary).
   */
  admit(address: string | undefined): boolean {
    if (address === undefined || this.#limit === 0) return true;
    const now = this.#now();
    const key = this.#keyFor(address, now);
    let window = this.#windows.get(key);
    if (window !== undefined && now - window.start >= this.#windowMs) {
      this.#end(key, window, now);
      window = undefined;
    }
    if (window === undefined) {
      window = { start: now, passed: 0, suppressed: 0 };
      this.#windows.set(key, window);
    }
    if (window.passed < this.#limit) {
      window.passed++;
      return true;
    }
    window.suppressed++;
    return false;
  }

  /**
   * Ends the windows that are over and returns their summaries (those with
   * records suppressed). Call it now and then (every second), and with `all`
   * at the end to say what the last windows held back.
   *
   * @param all End every window, over or not.
   * @returns The summaries, oldest first.
   */
  sweep(all = false): Suppressed[] {
    const now = this.#now();
    for (const [key, window] of this.#windows) {
      if (all || now - window.start >= this.#windowMs) this.#end(key, window, now);
    }
    const ended = this.#ended;
    this.#ended = [];
    return ended;
  }

  /** The window an address counts in: its own, or the shared one once `maxAddresses` are tracked. */
  #keyFor(address: string, now: number): string {
    if (this.#windows.has(address) || this.#windows.size < this.#maxAddresses) return address;
    // Full: make room from windows that are over, at most once a second (it is a walk over all of them).
    if (now - this.#lastPrune >= 1000) {
      this.#lastPrune = now;
      for (const [key, window] of this.#windows) {
        if (now - window.start >= this.#windowMs) this.#end(key, window, now);
      }
      if (this.#windows.size < this.#maxAddresses) return address;
    }
    return OTHER_ADDRESSES;
  }

  #end(key: string, window: Window, now: number): void {
    this.#windows.delete(key);
    if (window.suppressed === 0) return;
    const seconds = Math.max(1, Math.round(Math.min(now - window.start, this.#windowMs) / 1000));
    this.#ended.push({
      address: key,
      count: window.suppressed,
      line: `${window.suppressed} more records from ${key} suppressed in the last ${seconds} s`,
    });
  }
}
