/**
 * `UserChanges`: one change of a user's files at a time, in this process
 * (a commit's last look, the quota's `admit` and the write; a removal; a
 * rename), as `Confinement.change` does for the local disk. Between servers
 * the store's conditional writes and the commit leases (commit_leases.ts)
 * take that part.
 *
 * @module
 */

/** Per user, the change under way. */
export class UserChanges {
  readonly #changing = new Map<string, Promise<void>>();

  /**
   * Runs `step` once no other change of the user's is under way here.
   *
   * @param user The user whose files change.
   * @param step The change.
   * @returns What the step returns.
   */
  async run<T>(user: string, step: () => Promise<T>): Promise<T> {
    while (this.#changing.has(user)) await this.#changing.get(user);
    const result = step();
    const done: Promise<void> = result.then(() => {}, () => {}).then(() => {
      if (this.#changing.get(user) === done) this.#changing.delete(user);
    });
    this.#changing.set(user, done);
    return await result;
  }
}
