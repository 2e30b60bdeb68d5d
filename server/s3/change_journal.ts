/**
 * The journal of a user's last changes kept in the user's counter object
 * (s3_change_counters.ts), so that `Storage.changedNames` can answer from
 * the store on every server: the same rules as the local disk's journal
 * (server/change_counters.ts), bounded in entries and in bytes so that the
 * object every change reads and writes back stays small.
 *
 * @module
 */

/** Changes a journal holds at most, as the local disk's: the oldest go first. */
export const JOURNAL_ENTRIES = 4096;

/** The bytes of names a journal holds at most (each entry counted with {@linkcode ENTRY_OVERHEAD_BYTES} more). */
export const JOURNAL_BYTES = 64 * 1024;

/** What an entry costs in the object besides its name's bytes. */
const ENTRY_OVERHEAD_BYTES = 40;

/** One change in a journal: the counter it made, and the name it touched (a folder's, for a folder moved). */
export interface JournalEntry {
  counter: number;
  name: string;
  /** True when the name is a folder's (every name under it changed). */
  folder: boolean;
}

/** A journal: its entries, oldest first, covering every change after `from`. */
export interface Journal {
  entries: JournalEntry[];
  /** The journal holds every change after this counter. */
  from: number;
}

/** What a change touched. */
export interface Touched {
  /** The name. */
  name: string;
  /** True for a folder (a folder moved): every name under it changed. */
  folder?: boolean;
}

const encoder = new TextEncoder();

/**
 * The journal with the change that made `counter` added, and its oldest
 * changes dropped (a change's names together) past the bounds.
 *
 * @param journal The journal so far.
 * @param counter The counter the change made.
 * @param touched The names it touched.
 * @returns The new journal.
 */
export function appendChange(journal: Journal, counter: number, touched: Touched[]): Journal {
  const entries = [...journal.entries, ...touched.map(({ name, folder }) => ({ counter, name, folder: !!folder }))];
  let from = journal.from;
  let bytes = entries.reduce((sum, entry) => sum + entryBytes(entry), 0);
  let drop = 0;
  while (drop < entries.length && (entries.length - drop > JOURNAL_ENTRIES || bytes > JOURNAL_BYTES)) {
    // A change's names go together: none of a dropped change's may stay.
    const dropped = entries[drop].counter;
    while (drop < entries.length && entries[drop].counter === dropped) bytes -= entryBytes(entries[drop++]);
    from = Math.max(from, dropped);
  }
  return { entries: entries.slice(drop), from };
}

/**
 * The names changed since `since` under `prefix`, each once in the order of
 * its last change, or null when the journal cannot say: another epoch, a
 * counter ahead of this one, changes older than the journal holds, or a
 * folder moved that reaches into the prefix.
 *
 * @param journal The journal.
 * @param now The counter now.
 * @param since The counter the caller saw.
 * @param prefix Only names starting with this ("" for all).
 * @returns The names, or null.
 */
export function namesSince(
  journal: Journal,
  now: { epoch: string; counter: number },
  since: { epoch: string; counter: number },
  prefix: string,
): string[] | null {
  if (since.epoch !== now.epoch || since.counter > now.counter || since.counter < journal.from) return null;
  const names = new Set<string>();
  for (const entry of journal.entries) {
    if (entry.counter <= since.counter) continue;
    if (entry.folder) {
      // A folder moved: the names under it changed, and the journal does not hold them.
      const under = entry.name + "/";
      if (under.startsWith(prefix) || prefix.startsWith(under)) return null;
    } else if (entry.name.startsWith(prefix)) {
      names.delete(entry.name);
      names.add(entry.name);
    }
  }
  return [...names];
}

/**
 * A journal read back from the store, or an empty one covering nothing
 * before `counter` when it is not sound.
 *
 * @param value The stored `journal` field.
 * @param from The stored `from` field.
 * @param counter The stored counter.
 * @returns The journal.
 */
export function journalOf(value: unknown, from: unknown, counter: number): Journal {
  const sound = Array.isArray(value) && value.length <= JOURNAL_ENTRIES && Number.isSafeInteger(from) &&
    (from as number) <= counter &&
    value.every((entry, i) =>
      typeof entry === "object" && entry !== null && typeof entry.name === "string" &&
      typeof entry.folder === "boolean" && Number.isSafeInteger(entry.counter) && entry.counter > (from as number) &&
      entry.counter <= counter && (i === 0 || entry.counter >= value[i - 1].counter)
    );
  if (!sound) return { entries: [], from: counter };
  return {
    entries: (value as JournalEntry[]).map(({ counter, name, folder }) => ({ counter, name, folder })),
    from: from as number,
  };
}

function entryBytes(entry: JournalEntry): number {
  return encoder.encode(entry.name).length + ENTRY_OVERHEAD_BYTES;
}
