/**
 * `S3ChangeWatch`: `Storage.waitForChange` on S3. A user's counter moves
 * when any server sharing the bucket changes the user's files, so waiting on
 * this server's own changes is not enough:
 *
 * - a change through this server wakes its waiters at once (the change
 *   record's writer tells {@linkcode S3ChangeWatch.changed});
 * - a change through another server is seen by looking at the user's change
 *   record (`<user>/.dfos-changes`): a HeadObject every
 *   {@linkcode WATCH_POLL_MS}, and a GetObject of the record only when its
 *   ETag moved (a quota hold moves it too, the counter not: the waiters then
 *   sleep on).
 *
 * One poller per user, shared by all the user's waiters on this server,
 * started by the first and stopped when the last has left, so a server
 * polls at most once per interval per user with a `watch` held, and not at
 * all without. A store that cannot be reached is tried again, less often
 * (up to {@linkcode MAX_RETRY_MS} apart); the waiters wait on, their own
 * `wait` bounding them.
 *
 * @module
 */

import { ChangeWaiters } from "../change_waiters.ts";
import type { ChangeCounter } from "../storage.ts";
import type { ObjectStore } from "./object_store.ts";
import { counterKey } from "./s3_keys.ts";

/** Milliseconds between two looks at a watched user's change record. */
export const WATCH_POLL_MS = 300;

/** The longest pause between two looks while the store fails to answer. */
export const MAX_RETRY_MS = 5000;

/** What the poller needs of the change records. */
export interface WatchedCounters {
  /** The user's counter as stored (one is made when there is none). */
  get(user: string): Promise<ChangeCounter>;
}

/** A user's poller: its stop, and its loop. */
interface Poller {
  stop: AbortController;
  done: Promise<void>;
}

/** The waits on users' counters in one bucket, and their pollers. */
export class S3ChangeWatch {
  readonly #store: ObjectStore;
  readonly #counters: WatchedCounters;
  readonly #intervalMs: number;
  readonly #pollers = new Map<string, Poller>();
  /** Every loop still running (a stopped one finishes its last look): the close waits for them. */
  readonly #running = new Set<Promise<void>>();
  readonly #waiters = new ChangeWaiters({
    onFirst: (user) => this.#start(user),
    onLast: (user) => this.#stop(user),
  });

  /**
   * @param store The bucket.
   * @param counters The users' change records.
   * @param intervalMs Milliseconds between two looks at a user's record.
   */
  constructor(store: ObjectStore, counters: WatchedCounters, intervalMs = WATCH_POLL_MS) {
    this.#store = store;
    this.#counters = counters;
    this.#intervalMs = intervalMs;
  }

  /** Users polled now (each has at least one waiter). */
  get polled(): number {
    return this.#pollers.size;
  }

  /** As `Storage.waitForChange`. */
  wait(user: string, since: ChangeCounter, signal: AbortSignal): Promise<void> {
    return this.#waiters.wait(user, since, signal, () => this.#counters.get(user));
  }

  /**
   * Wakes the user's waiters whose counter this no longer is: told of each
   * record this server writes.
   *
   * @param user The user.
   * @param counter The counter written.
   */
  changed(user: string, counter: ChangeCounter): void {
    this.#waiters.changed(user, counter);
  }

  /** Stops every poller and waits until their last looks are done (at shutdown, once no request waits). */
  async close(): Promise<void> {
    for (const user of [...this.#pollers.keys()]) this.#stop(user);
    await Promise.all(this.#running);
  }

  #start(user: string): void {
    const stop = new AbortController();
    const done = this.#poll(user, stop.signal);
    this.#pollers.set(user, { stop, done });
    this.#running.add(done);
    done.finally(() => this.#running.delete(done));
  }

  #stop(user: string): void {
    this.#pollers.get(user)?.stop.abort();
    this.#pollers.delete(user);
  }

  /** Looks at the user's change record until stopped; reads it when its ETag moved (at the first look, always). */
  async #poll(user: string, stop: AbortSignal): Promise<void> {
    const key = counterKey(user);
    let seen: string | null | undefined;
    let pauseMs = this.#intervalMs;
    while (!stop.aborted) {
      try {
        const etag = (await this.#store.head(key))?.etag ?? null;
        if (etag !== seen && !stop.aborted) {
          this.#waiters.changed(user, await this.#counters.get(user));
          seen = etag;
        }
        pauseMs = this.#intervalMs;
      } catch {
        pauseMs = Math.min(MAX_RETRY_MS, pauseMs * 2); // the store does not answer: looked at again, less often
      }
      await pause(pauseMs, stop);
    }
  }
}

/** Resolves after `ms`, or at once when `signal` aborts; leaves no timer behind. */
function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });
}
