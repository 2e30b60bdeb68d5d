/**
 * `Semaphore`: at most `limit` pieces of work at once, the rest waiting in
 * turn. The server bounds its PBKDF2 work with one, so that logins cannot
 * take every core (`server/users.ts`).
 *
 * @example Usage
 * ```ts
 * import assert from "node:assert/strict";
 * import { Semaphore } from "./semaphore.ts";
 * const one = new Semaphore(1);
 * const order: number[] = [];
 * await Promise.all([1, 2].map((n) => one.run(async () => order.push(n))));
 * assert.equal(order.join(), "1,2");
 * assert.equal(one.peak, 1);
 * ```
 *
 * @module
 */

/** Runs at most `limit` pieces of work at once, in the order they came. */
export class Semaphore {
  /** Pieces of work run at once, at most. */
  readonly limit: number;
  #active = 0;
  #peak = 0;
  /** Waiting pieces of work, oldest first: each is handed a slot when one frees. */
  readonly #waiting = new Set<() => void>();

  /** @param limit Pieces of work at once, at least 1. */
  constructor(limit: number) {
    if (!Number.isInteger(limit) || limit < 1) {
      throw new RangeError(`Cannot make a semaphore of ${limit}: need 1 or more`);
    }
    this.limit = limit;
  }

  /** Pieces of work running now. */
  get active(): number {
    return this.#active;
  }

  /** Pieces of work waiting for a slot now. */
  get waiting(): number {
    return this.#waiting.size;
  }

  /** The most pieces of work that ever ran at once. */
  get peak(): number {
    return this.#peak;
  }

  /**
   * Runs `work` once a slot is free.
   *
   * @param work The work.
   * @param signal Gives up waiting (not running): the promise then rejects with its reason.
   * @returns What `work` returns.
   */
  async run<T>(work: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    await this.#acquire(signal);
    try {
      return await work();
    } finally {
      this.#release();
    }
  }

  async #acquire(signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted();
    if (this.#active < this.limit) {
      this.#active++;
      this.#peak = Math.max(this.#peak, this.#active);
      return;
    }
    await new Promise<void>((resolve, reject) => {
      const onAbort = () => {
        this.#waiting.delete(take);
        reject(signal!.reason);
      };
      const take = () => { // the releasing work's slot passes to this one: #active stays as it is
        signal?.removeEventListener("abort", onAbort);
        resolve();
      };
      this.#waiting.add(take);
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  }

  #release(): void {
    const next = this.#waiting.values().next();
    if (next.done) {
      this.#active--;
      return;
    }
    this.#waiting.delete(next.value);
    next.value();
  }
}
