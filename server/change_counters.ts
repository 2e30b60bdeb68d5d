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
 * Each counter keeps a journal of its last {@linkcode JOURNAL_ENTRIES}
 * changes (the name each touched), kept with it at a clean close, so that a
 * client that saw counter `c` can ask which names changed since instead of
 * listing everything again (`changedNames`). The journal covers what the
 * counter covers: a new epoch starts an empty one.
 *
 * Changes made to `ROOT` by other means than dfos are not counted (an
 * operator's copy into a user's folder); docs/SECURITY.md says so.
 *
 * @module
 */

import { join } from "node:path";
import { RESERVED_PREFIX } from "../shared/names.ts";
import { JOURNAL_ENTRIES, type JournalEntry, namesSince } from "./change_journal.ts";
import type { ChangeCounter } from "./storage.ts";

/** Each user's counter file, in the user's folder. */
export const COUNTER_FILE = `${RESERVED_PREFIX}changes`;

export { JOURNAL_ENTRIES };

/** What a change touched, as the storage tells {@linkcode ChangeCounters.bump}. */
export interface Touched {
  /** The name. */
  name: string;
  /** True for a folder (a folder moved): every name under it changed. */
  folder?: boolean;
}

/** A user's counter in memory: where its file is, whether a clean close writes it, and its journal. */
interface Counter extends ChangeCounter {
  path: string;
  keep: boolean;
  /** The last changes, oldest first. */
  journal: JournalEntry[];
  /** The journal holds every change after this counter. */
  from: number;
}

/** The change counters of every user under one root. */
export class ChangeCounters {
  readonly #counters = new Map<string, Counter>();
  readonly #onBump: (user: string, counter: ChangeCounter) => void;

  /** @param onBump Told each counter after a bump (the storage wakes who waits on it: server/change_waiters.ts). */
  constructor(onBump: (user: string, counter: ChangeCounter) => void = () => {}) {
    this.#onBump = onBump;
  }

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
   * Adds one to the user's counter, after a change, and notes in its journal
   * what the change touched.
   *
   * @param user The user (a checked name).
   * @param home The user's folder.
   * @param touched The names the change touched (a rename: both).
   */
  bump(user: string, home: string, touched: Touched[]): void {
    const counter = this.#load(user, home);
    counter.counter++;
    for (const { name, folder } of touched) counter.journal.push({ counter: counter.counter, name, folder: !!folder });
    if (counter.journal.length > JOURNAL_ENTRIES) {
      const dropped = counter.journal.splice(0, counter.journal.length - JOURNAL_ENTRIES);
      counter.from = Math.max(counter.from, dropped.at(-1)!.counter);
      // A change's names go together: none of the dropped change's may stay.
      while (counter.journal.length > 0 && counter.journal[0].counter <= counter.from) counter.journal.shift();
    }
    this.#onBump(user, { epoch: counter.epoch, counter: counter.counter });
  }

  /**
   * The names changed since `since` under `prefix` (the names themselves,
   * whether they exist now or not), or null when the journal cannot say: a
   * counter of another epoch, changes older than the journal holds, or a
   * folder moved that reaches into the prefix.
   *
   * @param user The user (a checked name).
   * @param home The user's folder.
   * @param since The counter the caller saw.
   * @param prefix Only names starting with this ("" for all).
   * @returns The names, each once, in the order of their last change; or null.
   */
  changedNames(user: string, home: string, since: ChangeCounter, prefix: string): string[] | null {
    const counter = this.#load(user, home);
    return namesSince({ entries: counter.journal, from: counter.from }, counter, since, prefix);
  }

  /** Writes the counters to keep to their users' folders, marked as written by a clean close. */
  close(): void {
    for (const counter of this.#counters.values()) {
      if (!counter.keep) continue;
      try {
        const { epoch, from, journal } = counter;
        writeJson(counter.path, { epoch, counter: counter.counter, clean: true, from, journal });
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
      ? { epoch: stored.epoch as string, counter: stored.counter as number, path, keep: true, ...journalOf(stored) }
      : { epoch: crypto.randomUUID(), counter: 0, path, keep: stored !== null, journal: [], from: 0 };
    if (counter.keep) {
      // In use from now on: a run that does not close cleanly leaves it marked so.
      writeJson(path, { epoch: counter.epoch, counter: counter.counter, clean: false });
    }
    this.#counters.set(user, counter);
    return counter;
  }
}

/** The journal kept in a counter file; an empty one (covering nothing before the counter) when it is not sound. */
function journalOf(stored: Record<string, unknown>): { journal: JournalEntry[]; from: number } {
  const counter = stored.counter as number;
  const { journal, from } = stored;
  const sound = Array.isArray(journal) && journal.length <= JOURNAL_ENTRIES && Number.isSafeInteger(from) &&
    (from as number) <= counter &&
    journal.every((entry, i) =>
      typeof entry === "object" && entry !== null && typeof entry.name === "string" &&
      typeof entry.folder === "boolean" && Number.isSafeInteger(entry.counter) && entry.counter > (from as number) &&
      entry.counter <= counter && (i === 0 || entry.counter >= journal[i - 1].counter)
    );
  if (!sound) return { journal: [], from: counter };
  return {
    journal: (journal as JournalEntry[]).map(({ counter, name, folder }) => ({ counter, name, folder })),
    from: from as number,
  };
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
