/**
 * The journal of a user's last changes, which `Storage.changedNames`
 * answers from ({@linkcode namesSince}), on both backends: kept in the
 * user's counter file on the local disk (change_counters.ts), and in the
 * user's change record on S3 (s3/s3_change_counters.ts), where it is
 * also bounded in bytes so that the object every change reads and writes
 * back stays small.
 *
 * @module
 */

/** Changes a journal holds at most, as the local disk's: the oldest go first. */
export const JOURNAL_ENTRIES = 4096;

/** The bytes of names a journal holds at most (each entry counted with {@linkcode ENTRY_OVERHEAD_BYTES} more). */
export const JOURNAL_BYTES = 96 * 1024;

/** What an entry costs in the object besides its name's bytes. */
const ENTRY_OVERHEAD_BYTES = 16;

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

/** An entry as stored: `[counter, name]`, or `[counter, name, 1]` for a folder's name. */
export type StoredEntry = [number, string] | [number, string, 1];

/**
 * The journal's entries as stored, compact: every change reads and writes
 * them back.
 *
 * @param journal The journal.
 * @returns Its entries, each an array.
 */
export function storedEntries(journal: Journal): StoredEntry[] {
  return journal.entries.map(({ counter, name, folder }) => folder ? [counter, name, 1] : [counter, name]);
}

/**
 * A journal read back from the store, or an empty one covering nothing
 * before `counter` when it is not sound.
 *
 * @param value The stored entries ({@linkcode storedEntries}).
 * @param from The stored `from` field.
 * @param counter The stored counter.
 * @returns The journal.
 */
export function journalOf(value: unknown, from: unknown, counter: number): Journal {
  const empty = { entries: [], from: counter };
  if (!Array.isArray(value) || value.length > JOURNAL_ENTRIES || !Number.isSafeInteger(from)) return empty;
  const start = from as number;
  if (start > counter) return empty;
  const entries: JournalEntry[] = [];
  for (const entry of value) {
    if (!Array.isArray(entry) || !Number.isSafeInteger(entry[0]) || typeof entry[1] !== "string") return empty;
    const [at, name, folder] = entry;
    if (at <= start || at > counter || (entries.length > 0 && at < entries[entries.length - 1].counter)) return empty;
    entries.push({ counter: at, name, folder: folder === 1 });
  }
  return { entries, from: start };
}

function entryBytes(entry: JournalEntry): number {
  return utf8Length(entry.name) + ENTRY_OVERHEAD_BYTES;
}

/**
 * The UTF-8 length of a string, without encoding it.
 *
 * @param text The string.
 * @returns Its length in UTF-8 bytes.
 */
export function utf8Length(text: string): number {
  let bytes = text.length;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x80) continue;
    // Two bytes below U+0800, else three; a surrogate pair (two code units) makes four.
    bytes += code < 0x800 || (code >= 0xd800 && code < 0xe000) ? 1 : 2;
  }
  return bytes;
}
