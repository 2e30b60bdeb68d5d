/**
 * `ChangeCounters`: each user's change counter on the local disk
 * (`Storage.changes`): every commit, removal and rename adds one.
 *
 * A counter is `{epoch, counter}`. It lives in memory while the server runs;
 * `ROOT/<user>/.dfos-changes` holds it between runs, with whether the run
 * that wrote it ended cleanly. A run takes a user's counter from that file
 * only if it says so, and at once marks it as in use (not clean): after a
 * crash, a kill or a power loss, when changes may have gone uncounted, the
 * next run finds it so and starts a new epoch, and a client that kept the old
 * epoch lists again instead of trusting its state. A clean close writes the
 * counters back, for the users that have a file or were asked for theirs (a
 * user whose counter nobody asked for needs none kept). So the counter costs
 * nothing per change, and is never trusted past a lost count.
 *
 * Changes made to `ROOT` by other means than dfos are not counted (an
 * operator's copy into a user's folder); docs/SECURITY.md says so.
 *
 * @module
 */

import { join } from "node:path";
import { RESERVED_PREFIX } from "../shared/names.ts";
import type { ChangeCounter } from "./storage.ts";

/** Each user's counter file, in the user's folder. */
export const COUNTER_FILE = `${RESERVED_PREFIX}changes`;

/** A user's counter in memory: where its file is, and whether a clean close writes it. */
interface Counter extends ChangeCounter {
  path: string;
  keep: boolean;
}

/** The change counters of every user under one root. */
export class ChangeCounters {
  readonly #counters = new Map<string, Counter>();

  /**
   * The user's counter: from memory, else from the user's counter file if
   * the last run closed cleanly, else a new epoch at 0.
   *
   * @param user The user (a checked name).
   * @param home The user's folder.
   * @returns The counter (a copy).
   */
  get(user: string, home: string): ChangeCounter {
    const counter = this.#load(user, home);
    counter.keep = true;
    return { epoch: counter.epoch, counter: counter.counter };
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

  /** Writes the counters to keep to their users' folders, marked as written by a clean close. */
  close(): void {
    for (const counter of this.#counters.values()) {
      if (!counter.keep) continue;
      try {
        writeJson(counter.path, { epoch: counter.epoch, counter: counter.counter, clean: true });
      } catch {
        // the user's folder is gone or unwritable: its next run starts a new epoch
      }
    }
    this.#counters.clear();
  }

  #load(user: string, home: string): Counter {
    let counter = this.#counters.get(user);
    if (counter !== undefined) return counter;
    const path = join(home, COUNTER_FILE);
    const stored = readJson(path);
    const trusted = stored?.clean === true && typeof stored.epoch === "string" && Number.isSafeInteger(stored.counter);
    counter = trusted
      ? { epoch: stored.epoch as string, counter: stored.counter as number, path, keep: true }
      : { epoch: crypto.randomUUID(), counter: 0, path, keep: stored !== null };
    if (counter.keep) {
      // In use from now on: a run that does not close cleanly leaves it marked so.
      writeJson(path, { epoch: counter.epoch, counter: counter.counter, clean: false });
    }
    this.#counters.set(user, counter);
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
