/**
 * `S3ChangeCounters`: each user's record of changes as one object,
 * `<user>/.dfos-changes`, holding as JSON what every server must agree on
 * about the user's files:
 *
 * - the change counter (`Storage.changes`), `{epoch, counter}`;
 * - the journal of the last changes (../change_journal.ts), which answers
 *   `Storage.changedNames`;
 * - the usage the quota counts (`usage`, `{bytes, entries}`; absent until
 *   first counted) and the holds of uploads in progress (`holds`, each with
 *   its expiry), the `UsageLedger` of s3_usage_ledger.ts.
 *
 * Every server reads and changes the same object: an update reads it and
 * writes it back with `If-Match` on the ETag read (`If-None-Match: *` when
 * there is none), and reads again and retries when another server won the
 * race, so no change is lost: a change of a file bumps the counter, adds to
 * the journal, moves the usage and settles the commit's hold in one write.
 *
 * A missing or unreadable counter starts a new epoch at 0 (with an empty
 * journal and the usage to count again). What stays open: a server killed
 * between a change and its bump leaves that change uncounted (docs/SECURITY.md
 * says so): the counter and journal miss it, and so does the usage, until
 * the next change moves the counter.
 *
 * @module
 */

import { isLostCondition, storeFailure, storeStep } from "./s3_errors.ts";
import { counterKey } from "./s3_keys.ts";
import type { ObjectStore } from "./object_store.ts";
import type { ChangeCounter, Usage } from "../storage.ts";
import { appendChange, type Journal, journalOf, storedEntries, type Touched } from "../change_journal.ts";

/** Tries of one update before it gives up (each lost only to another server's update, which changed the record). */
const MAX_TRIES = 30;

/** An upload's hold on the user's quota, until `expires` (ms since the epoch). */
export interface Hold {
  id: string;
  bytes: number;
  entries: number;
  expires: number;
}

/** A user's record: the counter, its journal, the usage and the holds. */
export interface UserRecord extends ChangeCounter {
  journal: Journal;
  /** What the user's files take, or null when not counted yet. */
  usage: Usage | null;
  /** Holds of uploads in progress (some maybe expired). */
  holds: Hold[];
}

/** A change of a user's files, as the storage counts it. */
export interface CountedChange {
  /** The names it touched (a rename: both). */
  touched: Touched[];
  /** What it adds to the usage (negative: frees), if the usage is counted. */
  usage?: Usage;
  /** The hold it settles (a commit's), dropped in the same write. */
  settles?: string;
}

/** The users' change records in one bucket. */
export class S3ChangeCounters {
  readonly #store: ObjectStore;
  readonly #onWritten: (user: string, counter: ChangeCounter) => void;

  /**
   * @param store The bucket.
   * @param onWritten Told the counter of each record this server writes (the `watch`es waiting on it wake at once).
   */
  constructor(store: ObjectStore, onWritten: (user: string, counter: ChangeCounter) => void = () => {}) {
    this.#store = store;
    this.#onWritten = onWritten;
  }

  /**
   * The user's counter; one is made (a new epoch at 0) when there is none.
   *
   * @param user The user.
   */
  async get(user: string): Promise<ChangeCounter> {
    const record = await this.update(user, `make the change counter of "${user}"`, (record, _now, etag) => {
      return etag === null ? record : null;
    });
    return { epoch: record.epoch, counter: record.counter };
  }

  /**
   * The user's record as stored (a new epoch when there is none, not written).
   *
   * @param user The user.
   */
  async read(user: string): Promise<UserRecord> {
    return (await this.#read(user)).record;
  }

  /**
   * Adds one to the user's counter after a change, with what the change
   * touched in the journal, its usage, and the hold it settles.
   *
   * @param user The user.
   * @param change What changed.
   */
  async bump(user: string, change: CountedChange): Promise<void> {
    await this.update(user, `count a change of "${user}"`, (record, now) => {
      const counter = record.counter + 1;
      const usage = record.usage === null || change.usage === undefined ? record.usage : {
        bytes: Math.max(0, record.usage.bytes + change.usage.bytes),
        entries: Math.max(0, record.usage.entries + change.usage.entries),
      };
      return {
        ...record,
        counter,
        journal: appendChange(record.journal, counter, change.touched),
        usage,
        holds: record.holds.filter((hold) => hold.id !== change.settles && hold.expires > now),
      };
    });
  }

  /**
   * Starts a new epoch for the user (the counter may have missed a change);
   * the usage and holds stay.
   *
   * @param user The user.
   */
  async renew(user: string): Promise<void> {
    await this.update(user, `reset the change counter of "${user}"`, (record) => ({
      ...record,
      epoch: crypto.randomUUID(),
      counter: 0,
      journal: { entries: [], from: 0 },
    }));
  }

  /**
   * Counts the user's usage with `count` unless the record has it, and
   * writes it only if no change came between the record's read and the
   * count's end (`If-Match` on the ETag read before counting); else counts
   * again.
   *
   * @param user The user.
   * @param count Counts what the user's files take (a listing).
   * @returns The record with its usage.
   */
  async counted(user: string, count: () => Promise<Usage>): Promise<UserRecord> {
    for (let tries = 0;; tries++) {
      const read = await this.#read(user);
      if (read.record.usage !== null) return read.record;
      const record = { ...read.record, usage: await count() };
      try {
        await this.#write(user, record, read.etag);
        return record;
      } catch (error) {
        if (!isLostCondition(error) || tries >= MAX_TRIES) {
          throw storeFailure(error, `count the usage of "${user}"`, this.#store.label);
        }
      }
    }
  }

  /**
   * Changes the user's record by `change` with a conditional write, reading
   * it again and retrying when another server changed it first.
   *
   * @param user The user.
   * @param action What it does, for an error's message.
   * @param change The new record from the one read, or null to leave it as
   * it is (nothing written); it may run more than once.
   * @returns The record as written (or as read, when left).
   */
  async update(
    user: string,
    action: string,
    change: (record: UserRecord, now: number, etag: string | null) => UserRecord | null,
  ): Promise<UserRecord> {
    for (let tries = 0;; tries++) {
      const read = await this.#read(user);
      const record = change(read.record, Date.now(), read.etag);
      if (record === null) return read.record;
      try {
        await this.#write(user, record, read.etag);
        this.#onWritten(user, { epoch: record.epoch, counter: record.counter });
        return record;
      } catch (error) {
        if (!isLostCondition(error) || tries >= MAX_TRIES) throw storeFailure(error, action, this.#store.label);
        await new Promise((resolve) => setTimeout(resolve, Math.random() * 5 * (tries + 1)));
      }
    }
  }

  /** The stored record and its ETag, or a new epoch and null when there is none (or it is unreadable). */
  async #read(user: string): Promise<{ record: UserRecord; etag: string | null }> {
    const got = await storeStep(`read the change counter of "${user}"`, this.#store.label, async () => {
      const object = await this.#store.get(counterKey(user));
      if (object === null) return null;
      return { etag: object.head.etag, text: await new Response(object.body).text() };
    });
    const fresh: UserRecord = {
      epoch: crypto.randomUUID(),
      counter: 0,
      journal: { entries: [], from: 0 },
      usage: null,
      holds: [],
    };
    if (got === null) return { record: fresh, etag: null };
    try {
      const value = JSON.parse(got.text);
      if (typeof value?.epoch === "string" && Number.isSafeInteger(value.counter)) {
        return {
          record: {
            epoch: value.epoch,
            counter: value.counter,
            journal: journalOf(value.journal, value.from, value.counter),
            usage: usageOf(value.usage),
            holds: holdsOf(value.holds),
          },
          etag: got.etag,
        };
      }
    } catch {
      // unreadable: replaced by a new epoch
    }
    return { record: fresh, etag: got.etag };
  }

  async #write(user: string, record: UserRecord, etag: string | null): Promise<void> {
    const conditions = etag === null ? { ifNoneMatch: "*" as const } : { ifMatch: etag };
    const { epoch, counter, journal, usage, holds } = record;
    const body = { epoch, counter, from: journal.from, journal: storedEntries(journal), usage, holds };
    await this.#store.put(counterKey(user), new TextEncoder().encode(JSON.stringify(body)), conditions);
  }
}

/** A stored usage, or null when absent or not sound. */
function usageOf(value: unknown): Usage | null {
  if (typeof value !== "object" || value === null) return null;
  const { bytes, entries } = value as Record<string, unknown>;
  if (!Number.isSafeInteger(bytes) || !Number.isSafeInteger(entries)) return null;
  return { bytes: Math.max(0, bytes as number), entries: Math.max(0, entries as number) };
}

/** The stored holds that are sound. */
function holdsOf(value: unknown): Hold[] {
  if (!Array.isArray(value)) return [];
  return value.filter((hold) =>
    typeof hold === "object" && hold !== null && typeof hold.id === "string" && Number.isSafeInteger(hold.bytes) &&
    Number.isSafeInteger(hold.entries) && Number.isFinite(hold.expires)
  ).map(({ id, bytes, entries, expires }) => ({ id, bytes, entries, expires }));
}
