/**
 * `S3ChangeCounters`: each user's change counter (`Storage.changes`) as one
 * object, `<user>/.dfos-changes`, holding `{epoch, counter}` as JSON. Every
 * server reads and bumps the same object: a bump reads it and writes it back
 * with `If-Match` on the ETag read (`If-None-Match: *` when there is none),
 * and tries again when another server won the race, so no bump is lost and
 * the counter is one truth for every server.
 *
 * A missing or unreadable counter starts a new epoch at 0. What stays open:
 * a server killed between a change and its bump leaves that change
 * uncounted (docs/SECURITY.md says so); a client that trusts the counter then
 * misses it until the next change moves the counter.
 *
 * @module
 */

import { isLostCondition, storeFailure, storeStep } from "./s3_errors.ts";
import { counterKey } from "./s3_keys.ts";
import type { ObjectStore } from "./object_store.ts";
import type { ChangeCounter } from "../storage.ts";

/** Tries of one bump before it gives up (each lost only to another server's bump, which moved the counter). */
const MAX_TRIES = 20;

/** The users' change counters in one bucket. */
export class S3ChangeCounters {
  readonly #store: ObjectStore;

  /** @param store The bucket. */
  constructor(store: ObjectStore) {
    this.#store = store;
  }

  /**
   * The user's counter; one is made (a new epoch at 0) when there is none.
   *
   * @param user The user.
   */
  async get(user: string): Promise<ChangeCounter> {
    for (let tries = 0;; tries++) {
      const read = await this.#read(user);
      if (read.etag !== null) return read.counter;
      try {
        await this.#write(user, read.counter, null);
        return read.counter;
      } catch (error) {
        if (!isLostCondition(error) || tries >= MAX_TRIES) {
          throw storeFailure(error, `make the change counter of "${user}"`, this.#store.label);
        }
      }
    }
  }

  /**
   * Adds one to the user's counter, after a change.
   *
   * @param user The user.
   */
  async bump(user: string): Promise<void> {
    for (let tries = 0;; tries++) {
      const read = await this.#read(user);
      try {
        await this.#write(user, { epoch: read.counter.epoch, counter: read.counter.counter + 1 }, read.etag);
        return;
      } catch (error) {
        if (!isLostCondition(error) || tries >= MAX_TRIES) {
          throw storeFailure(error, `count a change of "${user}"`, this.#store.label);
        }
        await new Promise((resolve) => setTimeout(resolve, Math.random() * 5 * (tries + 1)));
      }
    }
  }

  /**
   * Starts a new epoch for the user: the counter may have missed a change.
   *
   * @param user The user.
   */
  async renew(user: string): Promise<void> {
    await storeStep(
      `reset the change counter of "${user}"`,
      this.#store.label,
      () => this.#store.put(counterKey(user), encode({ epoch: crypto.randomUUID(), counter: 0 })),
    );
  }

  /** The stored counter and its ETag, or a new epoch and null when there is none (or it is unreadable). */
  async #read(user: string): Promise<{ counter: ChangeCounter; etag: string | null }> {
    const got = await storeStep(`read the change counter of "${user}"`, this.#store.label, async () => {
      const object = await this.#store.get(counterKey(user));
      if (object === null) return null;
      return { etag: object.head.etag, text: await new Response(object.body).text() };
    });
    const fresh = { epoch: crypto.randomUUID(), counter: 0 };
    if (got === null) return { counter: fresh, etag: null };
    try {
      const value = JSON.parse(got.text);
      if (typeof value?.epoch === "string" && Number.isSafeInteger(value.counter)) {
        return { counter: { epoch: value.epoch, counter: value.counter }, etag: got.etag };
      }
    } catch {
      // unreadable: replaced by a new epoch
    }
    return { counter: fresh, etag: got.etag };
  }

  async #write(user: string, counter: ChangeCounter, etag: string | null): Promise<void> {
    const conditions = etag === null ? { ifNoneMatch: "*" as const } : { ifMatch: etag };
    await this.#store.put(counterKey(user), encode(counter), conditions);
  }
}

function encode(counter: ChangeCounter): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(counter));
}
