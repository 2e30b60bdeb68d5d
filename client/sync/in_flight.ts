/**
 * `InFlight`: the files a push or pull moves at once, pipelined on its one
 * connection (client/connection.ts): at most so many, the next started once
 * one ends, and the first failure that ends the run (a lost connection)
 * surfacing in the loop that starts them.
 *
 * @module
 */

/** A bounded set of tasks under way. */
export class InFlight {
  readonly #most: number;
  readonly #tasks = new Set<Promise<void>>();

  /** @param most How many may be under way at once. */
  constructor(most: number) {
    this.#most = most;
  }

  /**
   * Starts a task once fewer than the bound are under way. Rejects when a
   * task under way failed (its error); the others' later failures are not
   * reported again.
   *
   * @param task The task; its own failures that the run survives are its to report.
   */
  async start(task: () => Promise<void>): Promise<void> {
    await this.settle(this.#most - 1);
    const running: Promise<void> = task().finally(() => this.#tasks.delete(running));
    running.catch(() => {}); // seen by settle()
    this.#tasks.add(running);
  }

  /**
   * Waits until at most `most` tasks are under way (0: all done).
   *
   * @param most How many may still run.
   */
  async settle(most = 0): Promise<void> {
    while (this.#tasks.size > most) await Promise.race(this.#tasks);
  }
}
