/**
 * `ChangeWaiters`: the calls waiting for a user's change counter to move
 * (`Storage.waitForChange`, for the `watch` request), and the one place that
 * wakes them. A storage tells it each counter it writes
 * ({@linkcode ChangeWaiters.changed}); a waiter wakes when that counter is
 * no longer the one it waits on (another epoch, or another count). Nothing
 * here polls or holds a timer: a storage that must look for changes made
 * elsewhere (S3) starts and stops its looking with the first and last
 * waiter of a user (`onFirst`, `onLast`).
 *
 * @example Usage
 * ```ts
 * import assert from "node:assert/strict";
 * import { ChangeWaiters } from "./change_waiters.ts";
 * const waiters = new ChangeWaiters();
 * const since = { epoch: "e", counter: 3 };
 * const woken = waiters.wait("alice", since, new AbortController().signal, () => Promise.resolve(since));
 * await Promise.resolve(); // the counter has been looked at once
 * waiters.changed("alice", { epoch: "e", counter: 4 });
 * await woken;
 * assert.equal(waiters.size, 0);
 * ```
 *
 * @module
 */

import type { ChangeCounter } from "./storage.ts";

/** Options for {@linkcode ChangeWaiters}. */
export interface ChangeWaitersOptions {
  /** Called when a user has a waiter and had none (S3: start looking at the user's change record). */
  onFirst?: (user: string) => void;
  /** Called when a user's last waiter has left, woken or given up (S3: stop looking). */
  onLast?: (user: string) => void;
}

/** One waiting call: the counter it waits on, and how to wake it. */
interface Waiter {
  since: ChangeCounter;
  wake: () => void;
}

/** Returns true when `counter` is no longer `since`. */
export function hasMoved(counter: ChangeCounter, since: ChangeCounter): boolean {
  return counter.epoch !== since.epoch || counter.counter !== since.counter;
}

/** The calls waiting on users' change counters, per user. */
export class ChangeWaiters {
  readonly #waiting = new Map<string, Set<Waiter>>();
  readonly #options: ChangeWaitersOptions;

  /** @param options What to do when a user's first waiter arrives and its last one leaves. */
  constructor(options: ChangeWaitersOptions = {}) {
    this.#options = options;
  }

  /** Calls waiting now, of every user. */
  get size(): number {
    let size = 0;
    for (const waiters of this.#waiting.values()) size += waiters.size;
    return size;
  }

  /** Returns true while `user` has a waiter. */
  has(user: string): boolean {
    return this.#waiting.has(user);
  }

  /**
   * Resolves once the user's counter is no longer `since`, or `signal`
   * aborts (never rejects for that). The counter is looked at once
   * (`current`) after the waiter is in place, so a change between the look
   * and the wait is not missed.
   *
   * @param user The user.
   * @param since The counter the caller saw.
   * @param signal Stops the wait.
   * @param current Reads the user's counter now; its error is the call's.
   */
  async wait(
    user: string,
    since: ChangeCounter,
    signal: AbortSignal,
    current: () => Promise<ChangeCounter>,
  ): Promise<void> {
    if (signal.aborted) return;
    const { promise, resolve } = Promise.withResolvers<void>();
    const wake = () => resolve();
    const waiter: Waiter = { since, wake };
    let waiters = this.#waiting.get(user);
    if (waiters === undefined) {
      waiters = new Set();
      this.#waiting.set(user, waiters);
      this.#options.onFirst?.(user);
    }
    waiters.add(waiter);
    signal.addEventListener("abort", wake, { once: true });
    try {
      if (hasMoved(await current(), since)) return;
      await promise;
    } finally {
      signal.removeEventListener("abort", wake);
      waiters.delete(waiter);
      if (waiters.size === 0 && this.#waiting.get(user) === waiters) {
        this.#waiting.delete(user);
        this.#options.onLast?.(user);
      }
    }
  }

  /**
   * Wakes the user's waiters whose counter `counter` no longer is. Cheap when
   * nobody waits: a storage calls it after every counter it writes.
   *
   * @param user The user.
   * @param counter The user's counter now.
   */
  changed(user: string, counter: ChangeCounter): void {
    const waiters = this.#waiting.get(user);
    if (waiters === undefined) return;
    for (const waiter of waiters) if (hasMoved(counter, waiter.since)) waiter.wake();
  }
}
