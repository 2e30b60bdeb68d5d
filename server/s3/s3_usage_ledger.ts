/**
 * `S3UsageLedger`: the quota's sums in the bucket (`UsageLedger`,
 * server/storage.ts), so that the servers sharing it cannot together let a
 * user past the quota. They live in each user's change record
 * (s3_change_counters.ts): `usage`, which the storage moves in the write
 * that counts each change, and `holds`, one per upload in progress, which
 * this ledger makes, grows and drops with conditional writes.
 *
 * A hold is admitted only if the usage, every live hold and the new one fit
 * in the quota, tested and written in one conditional write: two servers
 * racing for the last bytes both read the same record, one write wins, the
 * other reads again and sees the winner's hold. A commit turns its hold
 * into usage in one write (the hold is at least what the file adds), so the
 * files stored and the uploads in progress never take more than the quota.
 *
 * A hold expires `holdMs` after it was last held, and its holder holds it
 * again before half of that is gone (server/ledger_allowance.ts): one that a
 * killed server left stops counting at its expiry, and the next write of
 * the record drops it. The usage is counted (a listing) the first time a
 * hold needs it, and written only if no change came meanwhile.
 *
 * @module
 */

import { DfosError, Status } from "../../shared/status.ts";
import type { HoldResult, Usage, UsageLedger } from "../storage.ts";
import type { S3ChangeCounters } from "./s3_change_counters.ts";

/** Counts of the usage one hold tries before it gives up (each undone only by a new record meanwhile). */
const MAX_COUNTS = 3;

/** How long a hold counts after it was last held, by default: 10 minutes. */
export const HOLD_MS = 10 * 60_000;

/** The quota's sums of every user of one bucket. */
export class S3UsageLedger implements UsageLedger {
  readonly holdMs: number;
  readonly #counters: S3ChangeCounters;
  readonly #count: (user: string) => Promise<Usage>;
  readonly #pending = new Set<Promise<void>>();

  /**
   * @param counters The users' change records.
   * @param count Counts what a user's files take (`Storage.usage`).
   * @param holdMs How long a hold counts after it was last held.
   */
  constructor(counters: S3ChangeCounters, count: (user: string) => Promise<Usage>, holdMs = HOLD_MS) {
    this.#counters = counters;
    this.#count = count;
    this.holdMs = holdMs;
  }

  hold(user: string, id: string, min: Usage, want: Usage, limits: Usage): Promise<HoldResult> {
    return this.#track(this.#hold(user, id, min, want, limits));
  }

  async #hold(user: string, id: string, min: Usage, want: Usage, limits: Usage): Promise<HoldResult> {
    for (let tries = 0;; tries++) {
      let result = null as HoldResult | null;
      await this.#counters.update(user, `hold room for an upload of "${user}"`, (record, now) => {
        result = null;
        if (record.usage === null) return null; // not counted yet: counted below, then tried again
        const others = record.holds.filter((hold) => hold.id !== id && hold.expires > now);
        const taken = sum(record.usage, others);
        const free = { bytes: limits.bytes - taken.bytes, entries: limits.entries - taken.entries };
        if (limits.bytes > 0 && min.bytes > free.bytes) {
          result = { refused: "bytes", free: clampFree(free) };
          return null;
        }
        if (limits.entries > 0 && min.entries > free.entries) {
          result = { refused: "entries", free: clampFree(free) };
          return null;
        }
        const granted = {
          bytes: limits.bytes > 0 ? Math.max(min.bytes, Math.min(want.bytes, free.bytes)) : want.bytes,
          entries: limits.entries > 0 ? Math.max(min.entries, Math.min(want.entries, free.entries)) : want.entries,
        };
        const expires = now + this.holdMs;
        result = { granted, expires };
        return { ...record, holds: [...others, { id, ...granted, expires }] };
      });
      if (result !== null) return result;
      if (tries >= MAX_COUNTS) {
        throw new DfosError(Status.INTERNAL, `Cannot hold room for an upload of "${user}": the usage keeps changing`);
      }
      await this.#counters.counted(user, () => this.#count(user));
    }
  }

  release(user: string, id: string, after: Promise<unknown> = Promise.resolve()): void {
    const released = after.then(() => {}, () => {}).then(() =>
      this.#counters.update(user, `release room held for an upload of "${user}"`, (record, now) => {
        const holds = record.holds.filter((hold) => hold.id !== id && hold.expires > now);
        return holds.length === record.holds.length ? null : { ...record, holds };
      })
    ).then(() => {}, () => {}); // a hold that cannot be dropped expires
    this.#track(released);
  }

  async usage(user: string): Promise<{ used: Usage | null; reserved: Usage }> {
    const record = await this.#counters.read(user);
    const now = Date.now();
    return { used: record.usage, reserved: sum({ bytes: 0, entries: 0 }, record.holds.filter((h) => h.expires > now)) };
  }

  /** Resolves once every write under way has ended (the storage's close waits for it). */
  async settled(): Promise<void> {
    while (this.#pending.size > 0) await Promise.allSettled(this.#pending);
  }

  #track<T>(work: Promise<T>): Promise<T> {
    const settled = work.then(() => {}, () => {}).finally(() => this.#pending.delete(settled));
    this.#pending.add(settled);
    return work;
  }
}

/** `base` plus what `holds` take. */
function sum(base: Usage, holds: { bytes: number; entries: number }[]): Usage {
  return holds.reduce((all, hold) => ({ bytes: all.bytes + hold.bytes, entries: all.entries + hold.entries }), {
    ...base,
  });
}

function clampFree(free: Usage): Usage {
  return { bytes: Math.max(0, free.bytes), entries: Math.max(0, free.entries) };
}
