/**
 * `ConnectionCaps`: how many connections the server holds open at once, in
 * all, per client address and per logged-in user, so that no single address
 * or account can take every place: one more than a cap is refused with BUSY.
 *
 * @example Usage
 * ```ts
 * import { ConnectionCaps } from "./connection_caps.ts";
 * import { strictEqual } from "node:assert/strict";
 *
 * const caps = new ConnectionCaps({ total: 4, perAddress: 2, perUser: 1 });
 * strictEqual(caps.open("192.0.2.1"), null);
 * strictEqual(caps.open("192.0.2.1"), null);
 * strictEqual(caps.open("192.0.2.1")?.message, "Server busy: 2 connections open from 192.0.2.1; try again later");
 * strictEqual(caps.login("alice"), null);
 * strictEqual(caps.login("alice"), "Server busy: alice has 1 connection open; try again later");
 * caps.logout("alice");
 * strictEqual(caps.login("alice"), null);
 * ```
 *
 * @module
 */

import { printableName } from "../shared/names.ts";

/** The caps of {@linkcode ConnectionCaps}. */
export interface ConnectionCapsOptions {
  /** Connections open at once, in all. */
  total: number;
  /** Connections open at once from one address (as the throttle counts it: an IPv6 address by its /64). */
  perAddress: number;
  /** Logged-in connections open at once for one user. */
  perUser: number;
}

/** Why {@linkcode ConnectionCaps.open} refused a connection: the cap it hit (`total`, `address`), and the BUSY error's message. */
export interface CapRefusal {
  /** The cap: the server's in all, or the address's. */
  cap: "total" | "address";
  /** The BUSY error's message. */
  message: string;
}

/**
 * The default cap per address for a total cap: half of it, so that one
 * address never holds every place.
 */
export function defaultPerAddress(total: number): number {
  return Math.max(1, Math.floor(total / 2));
}

/**
 * The default cap per user for a total cap: a quarter of it, so that one
 * account never holds every place, even from two addresses.
 */
export function defaultPerUser(total: number): number {
  return Math.max(1, Math.floor(total / 4));
}

/** Counts open connections in all, per address and per user, against their caps. */
export class ConnectionCaps {
  /** The caps, as given. */
  readonly caps: Readonly<ConnectionCapsOptions>;
  #total = 0;
  readonly #byAddress = new Map<string, number>();
  readonly #byUser = new Map<string, number>();

  /**
   * @param caps The caps; each a whole number from 1, the per-address and
   * per-user ones at most the total.
   * @throws {RangeError} for a cap out of its range.
   */
  constructor(caps: ConnectionCapsOptions) {
    for (const [key, value] of Object.entries(caps)) {
      const max = key === "total" ? Number.MAX_SAFE_INTEGER : caps.total;
      if (!Number.isSafeInteger(value) || value < 1 || value > max) {
        throw new RangeError(`Cannot cap connections with ${key} ${value}: not a whole number from 1 to ${max}`);
      }
    }
    this.caps = { ...caps };
  }

  /**
   * Takes a place for a new connection from `address`.
   *
   * @returns null when it is taken; otherwise why not (the cap, and the
   * message of a BUSY error), and nothing is counted.
   */
  open(address: string): CapRefusal | null {
    if (this.#total >= this.caps.total) {
      return { cap: "total", message: `Server busy: ${this.#total} connections open; try again later` };
    }
    const fromAddress = this.#byAddress.get(address) ?? 0;
    if (fromAddress >= this.caps.perAddress) {
      return {
        cap: "address",
        message: `Server busy: ${fromAddress} connections open from ${address}; try again later`,
      };
    }
    this.#total++;
    this.#byAddress.set(address, fromAddress + 1);
    return null;
  }

  /** Gives back the place of a connection from `address` that {@linkcode ConnectionCaps.open} took. */
  close(address: string): void {
    this.#total--;
    decrement(this.#byAddress, address);
  }

  /**
   * Takes a place for a connection that has logged in as `user`.
   *
   * @returns null when it is taken; otherwise why not (the message of a BUSY
   * error), and nothing is counted.
   */
  login(user: string): string | null {
    const open = this.#byUser.get(user) ?? 0;
    if (open >= this.caps.perUser) {
      return `Server busy: ${printableName(user)} has ${open} connection${open === 1 ? "" : "s"} open; try again later`;
    }
    this.#byUser.set(user, open + 1);
    return null;
  }

  /** Gives back the place that {@linkcode ConnectionCaps.login} took for `user`. */
  logout(user: string): void {
    decrement(this.#byUser, user);
  }
}

function decrement(counts: Map<string, number>, key: string): void {
  const left = (counts.get(key) ?? 0) - 1;
  if (left > 0) counts.set(key, left);
  else counts.delete(key);
}
