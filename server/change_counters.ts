/**
 * `ChangeCounters`: each user's change counter on the local disk
 * (`Storage.changes`): every commit, removal and rename adds one.
 *
 * A counter is `{epoch, counter}`. The counters live in memory while the
 * server runs and are written to `ROOT/<user>/.dfos-changes` when it closes
 * cleanly; `ROOT/.dfos-state` holds the run's generation and whether it ended
 * cleanly. A run that starts after an unclean end (a crash, a kill, a power
 * loss: changes may have gone uncounted) takes a new generation, and a
 * counter file of another generation gives its user a new epoch: a client
 * that kept the old epoch lists again instead of trusting its state. So the
 * counter costs nothing per change, and is never trusted past a lost count.
 *
 * Changes made to `ROOT` by other means than dfos are not counted (an
 * operator's copy into a user's folder); docs/SECURITY.md says so.
 *
 * @module
 */

import { join } from "node:path";
import { RESERVED_PREFIX } from "../shared/names.ts";
import type { ChangeCounter } from "./storage.ts";

/** The root's state file (user names never start with "."). */
export const STATE_FILE = `${RESERVED_PREFIX}state`;
/** Each user's counter file, in the user's folder. */
export const COUNTER_FILE = `${RESERVED_PREFIX}changes`;

/** The change counters of every user under one root. */
export class ChangeCounters {
  readonly #root: string;
  readonly #generation: string;
  readonly #counters = new Map<string, ChangeCounter>();

  private constructor(root: string, generation: string) {
    this.#root = root;
    this.#generation = generation;
  }

  /**
   * Starts a run: keeps the last run's generation if it ended cleanly, else
   * takes a new one, and marks this run as not (yet) ended cleanly.
   *
   * @param root The storage root (a real path).
   * @returns The counters.
   */
  static open(root: string): ChangeCounters {
    const last = readJson(join(root, STATE_FILE));
    const generation = last?.clean === true && typeof last.generation === "string"
      ? last.generation
      : crypto.randomUUID();
    writeJson(join(root, STATE_FILE), { generation, clean: false });
    return new ChangeCounters(root, generation);
  }

  /**
   * The user's counter: from memory, else from the user's counter file if it
   * is of this generation, else a new epoch at 0.
   *
   * @param user The user (a checked name).
   * @param home The user's folder.
   * @returns The counter (a copy).
   */
  get(user: string, home: string): ChangeCounter {
    return { ...this.#load(user, home) };
  }

  /**
   * Adds one to the user's counter, after a change.
   *
   * @param user The user (a checked name).
   * @param home The user's folder.
   */
  bump(user: string, home: string): void {
    this.#load(user, home).counter++;
  }

  /** Writes every counter to its user's folder and marks the run as ended cleanly. */
  close(): void {
    for (const [user, counter] of this.#counters) {
      try {
        writeJson(join(this.#root, user, COUNTER_FILE), { generation: this.#generation, ...counter });
      } catch {
        // the user's folder is gone or unwritable: its next run starts a new epoch
      }
    }
    writeJson(join(this.#root, STATE_FILE), { generation: this.#generation, clean: true });
  }

  #load(user: string, home: string): ChangeCounter {
    let counter = this.#counters.get(user);
    if (counter === undefined) {
      const stored = readJson(join(home, COUNTER_FILE));
      counter = stored?.generation === this.#generation && typeof stored.epoch === "string" &&
          Number.isSafeInteger(stored.counter)
        ? { epoch: stored.epoch, counter: stored.counter as number }
        : { epoch: crypto.randomUUID(), counter: 0 };
      this.#counters.set(user, counter);
    }
    return counter;
  }
}

/** Reads a small JSON object; null when missing, unreadable, a link, or not an object. */
function readJson(path: string): Record<string, unknown> | null {
  try {
    if (!Deno.lstatSync(path).isFile) return null;
    const value = JSON.parse(Deno.readTextFileSync(path));
    return typeof value === "object" && value !== null ? value : null;
  } catch {
    return null;
  }
}

/** Writes a small JSON object atomically: a temporary file beside it, renamed over it. */
function writeJson(path: string, value: unknown): void {
  const temp = `${path}.${crypto.randomUUID()}`;
  Deno.writeTextFileSync(temp, JSON.stringify(value), { createNew: true, mode: 0o600 });
  try {
    Deno.renameSync(temp, path);
  } catch (error) {
    Deno.removeSync(temp);
    throw error;
  }
}
