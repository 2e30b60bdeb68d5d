/**
 * `CommitLeases`: a lease per name, so that the servers sharing a bucket
 * commit a multipart upload to one name, or change it on a condition, one at
 * a time.
 *
 * Ceph RGW 16 honours `If-Match` and `If-None-Match` on PutObject only: not
 * on CompleteMultipartUpload, nor on CopyObject's target, nor on
 * DeleteObject (checked against the engine; docs/SECURITY.md), so a large
 * file's commit cannot be made conditional itself. Instead it is made under
 * a lease, and so is every change with a condition on the name's version
 * (`ifVersion`: a commit of any size, a removal, a rename's source), so that
 * two of them never overlap: the object
 * `<user>/.dfos-leases/<hash of name>`, created with `If-None-Match: *` and
 * holding its holder's id and when it expires. A server that finds it held
 * waits for it (a little while) and then refuses (`CONFLICT`); one that
 * finds it expired (its holder died) takes it over with `If-Match` on the
 * ETag it read, so only one server takes it. Under the lease the commit
 * looks at what it replaces (HeadObject), asks the quota, and completes; the
 * lease is then deleted if it is still the one written.
 *
 * Limits: a holder that takes longer than {@linkcode LEASE_MS} to commit
 * (a stalled store) may see its lease taken over and two commits to the name
 * overlap: each still stores a whole file, the last one wins, and the
 * quota's `replaced` may be off by the other's size. A small file's commit
 * with no `ifVersion` is a PutObject conditional on what it looked at and
 * takes no lease; one that lands between a lease holder's look and its
 * completion (or its removal) is replaced (or removed) by it: two whole
 * files, ordered, but the holder's own condition did not see it.
 *
 * @module
 */

import { DfosError, Status } from "../../shared/status.ts";
import type { ObjectStore } from "./object_store.ts";
import { isLostCondition, storeFailure, storeStep } from "./s3_errors.ts";
import { leaseKey } from "./s3_keys.ts";

/** How long a lease holds without its holder: longer than any commit takes. */
export const LEASE_MS = 60_000;

/** How long a commit waits for a lease held by another before it refuses. */
export const LEASE_WAIT_MS = 10_000;

/** A lease held: release it once the change is made. */
export interface Lease {
  /** Deletes the lease if it is still this one. Never throws. */
  release(): Promise<void>;
}

/** The commit leases of one bucket. */
export class CommitLeases {
  readonly #store: ObjectStore;
  readonly #holder = crypto.randomUUID();

  /** @param store The bucket. */
  constructor(store: ObjectStore) {
    this.#store = store;
  }

  /**
   * Takes the lease of `name`, waiting up to {@linkcode LEASE_WAIT_MS} for
   * another holder to release it; refuses (`CONFLICT`) after that.
   *
   * @param user The user.
   * @param name The remote name.
   * @param action What the lease is for, as `Cannot <action> "name"` (default `store`).
   * @returns The lease.
   */
  async take(user: string, name: string, action = "store"): Promise<Lease> {
    const key = leaseKey(user, name);
    const deadline = Date.now() + LEASE_WAIT_MS;
    for (let wait = 5;; wait = Math.min(wait * 2, 500)) {
      const body = new TextEncoder().encode(JSON.stringify({ holder: this.#holder, expires: Date.now() + LEASE_MS }));
      let held: { etag: string; expires: number } | null = null;
      try {
        const etag = await this.#store.put(key, body, { ifNoneMatch: "*" });
        return this.#lease(key, etag);
      } catch (error) {
        if (!isLostCondition(error)) throw storeFailure(error, `commit "${name}"`, this.#store.label);
        held = await this.#read(key, name);
      }
      if (held !== null && held.expires < Date.now()) {
        try {
          const etag = await this.#store.put(key, body, { ifMatch: held.etag });
          return this.#lease(key, etag);
        } catch (error) {
          if (!isLostCondition(error)) throw storeFailure(error, `commit "${name}"`, this.#store.label);
        }
      }
      if (Date.now() >= deadline) {
        throw new DfosError(
          Status.CONFLICT,
          `Cannot ${action} "${name}": another change of it is being committed; try again`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, wait));
    }
  }

  /** The lease's ETag and expiry, or null when it is gone (or unreadable: then it counts as expired). */
  async #read(key: string, name: string): Promise<{ etag: string; expires: number } | null> {
    return await storeStep(`commit "${name}"`, this.#store.label, async () => {
      const object = await this.#store.get(key);
      if (object === null) return null;
      const text = await new Response(object.body).text();
      let expires = 0;
      try {
        const value = JSON.parse(text);
        if (Number.isFinite(value?.expires)) expires = value.expires;
      } catch {
        // unreadable: expired
      }
      return { etag: object.head.etag, expires };
    });
  }

  #lease(key: string, etag: string): Lease {
    let released = false;
    return {
      release: async () => {
        if (released) return;
        released = true;
        try {
          // DeleteObject is not conditional on RGW: look first, so that a lease taken over is left to its new holder.
          const head = await this.#store.head(key);
          if (head?.etag === etag) await this.#store.delete(key);
        } catch {
          // it expires by itself
        }
      },
    };
  }
}
