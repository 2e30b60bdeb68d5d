/**
 * The `watch` request (docs/PROTOCOL.md "Sync"): held until the user's
 * change counter is no longer the one the client saw, then answered as a
 * `changes` that named it would be (`counterReply`, changes_since.ts). The
 * wait is the storage's (`Storage.waitForChange`: woken in process on the
 * local disk, by a poller of the change record on S3), bounded by the
 * request's `wait`, cut to {@linkcode longestWatch}, and by the session's
 * signal: a server draining, a connection closing, or the client sending
 * anything more answers the watch at once with the counter as it is.
 *
 * A held watch is the server waiting, not the client: the session's op
 * clock does not run out on it, and the idle clock is stopped as for any
 * request (server/session.ts). The cut below the timeouts is for what
 * stands between client and server (a proxy with a client timeout set to
 * the server's): an answer, even "nothing changed", comes well within them.
 *
 * @module
 */

import { MAX_WATCH_MS, type MessageOf } from "../shared/messages.ts";
import { counterReply } from "./changes_since.ts";
import type { Storage } from "./storage.ts";

/**
 * The longest a server holds a watch: {@linkcode MAX_WATCH_MS}, or half
 * the shortest of its timeouts that are set, if less.
 *
 * @param timeoutsMs The server's op and idle timeouts (0: none).
 * @returns Milliseconds, at least 1.
 *
 * @example Usage
 * ```ts
 * import assert from "node:assert/strict";
 * import { longestWatch } from "./watch.ts";
 * assert.equal(longestWatch([120_000, 300_000]), 60_000);
 * assert.equal(longestWatch([0, 20_000]), 10_000);
 * ```
 */
export function longestWatch(timeoutsMs: readonly number[]): number {
  const set = timeoutsMs.filter((ms) => ms > 0).map((ms) => Math.floor(ms / 2));
  return Math.max(1, Math.min(MAX_WATCH_MS, ...set));
}

/** What {@linkcode watch} needs besides the request. */
export interface WatchContext {
  /** The storage. */
  storage: Storage;
  /** The user. */
  user: string;
  /** The changes this session made (`counter.mine`). */
  mine: number;
  /** The longest wait ({@linkcode longestWatch}); a longer `wait` is cut to it. */
  maxWaitMs: number;
  /** Answers the watch at once when it aborts. */
  signal: AbortSignal;
}

/**
 * Waits for the user's counter to leave `since` in `epoch`, or `wait`
 * (cut to `maxWaitMs`) to pass, or the signal to abort; then answers the
 * counter as it is, with the changes since when they can be said.
 *
 * @param message The request.
 * @param context The storage, the user, the bound and the signal.
 * @returns The COUNTER reply.
 */
export async function watch(message: MessageOf<"watch">, context: WatchContext): Promise<MessageOf<"counter">> {
  const { storage, user, mine, maxWaitMs, signal } = context;
  const since = { epoch: message.epoch, counter: message.since };
  const waitMs = Math.min(message.wait, maxWaitMs);
  if (waitMs > 0 && !signal.aborted) {
    const stop = new AbortController();
    const timer = setTimeout(() => stop.abort(), waitMs);
    const hurry = () => stop.abort();
    signal.addEventListener("abort", hurry, { once: true });
    try {
      await storage.waitForChange(user, since, stop.signal);
    } finally {
      clearTimeout(timer);
      signal.removeEventListener("abort", hurry);
    }
  }
  return await counterReply(storage, user, { mine, since, prefix: message.prefix });
}
