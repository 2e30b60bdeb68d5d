import assert from "node:assert/strict";
import {
  appendChange,
  type Journal,
  JOURNAL_BYTES,
  JOURNAL_ENTRIES,
  journalOf,
  namesSince,
  storedEntries,
  utf8Length,
} from "./change_journal.ts";

const EPOCH = "e";

function grown(changes: number, name: (i: number) => string): { journal: Journal; counter: number } {
  let journal: Journal = { entries: [], from: 0 };
  for (let counter = 1; counter <= changes; counter++) {
    journal = appendChange(journal, counter, [{ name: name(counter) }]);
  }
  return { journal, counter: changes };
}

Deno.test("change journal: names since a counter, each once in the order of its last change, under the prefix", () => {
  let journal: Journal = { entries: [], from: 0 };
  journal = appendChange(journal, 1, [{ name: "p/a" }]);
  journal = appendChange(journal, 2, [{ name: "p/b" }, { name: "q/c" }]);
  journal = appendChange(journal, 3, [{ name: "p/a" }]);
  const now = { epoch: EPOCH, counter: 3 };
  assert.deepEqual(namesSince(journal, now, { epoch: EPOCH, counter: 0 }, "p/"), ["p/b", "p/a"]);
  assert.deepEqual(namesSince(journal, now, { epoch: EPOCH, counter: 2 }, ""), ["p/a"]);
  assert.deepEqual(namesSince(journal, now, { epoch: EPOCH, counter: 3 }, ""), []);
  assert.equal(namesSince(journal, now, { epoch: "other", counter: 0 }, ""), null, "another epoch");
  assert.equal(namesSince(journal, now, { epoch: EPOCH, counter: 4 }, ""), null, "a counter ahead");
  journal = appendChange(journal, 4, [{ name: "q", folder: true }, { name: "p/q", folder: true }]);
  const later = { epoch: EPOCH, counter: 4 };
  assert.equal(namesSince(journal, later, { epoch: EPOCH, counter: 3 }, "p/"), null, "a folder moved into the prefix");
  assert.equal(namesSince(journal, later, { epoch: EPOCH, counter: 3 }, "p/q/x"), null, "a prefix inside it");
  assert.deepEqual(namesSince(journal, later, { epoch: EPOCH, counter: 3 }, "r/"), [], "a prefix it misses");
});

Deno.test("change journal: bounded in entries and bytes, dropping whole changes; older counters answer null", () => {
  const many = grown(JOURNAL_ENTRIES + 10, (i) => `f${i}`);
  assert.equal(many.journal.entries.length, JOURNAL_ENTRIES);
  assert.equal(many.journal.from, 10);
  const now = { epoch: EPOCH, counter: many.counter };
  assert.equal(namesSince(many.journal, now, { epoch: EPOCH, counter: 9 }, ""), null, "older than the journal");
  assert.equal(namesSince(many.journal, now, { epoch: EPOCH, counter: 10 }, "")?.length, JOURNAL_ENTRIES);

  const long = grown(200, (i) => `${"n".repeat(900)}${i}`);
  const bytes = long.journal.entries.reduce((sum, entry) => sum + entry.name.length + 16, 0);
  assert.ok(bytes <= JOURNAL_BYTES, `${bytes} bytes kept`);
  assert.ok(long.journal.entries.length > 10 && long.journal.entries.length < 200);
  assert.equal(long.journal.from, long.journal.entries[0].counter - 1);

  // A change's names go together.
  let pairs: Journal = { entries: [], from: 0 };
  for (let counter = 1; counter <= 20; counter++) {
    pairs = appendChange(pairs, counter, [{ name: `a${counter}${"n".repeat(9000)}` }, { name: `b${counter}` }]);
  }
  assert.equal(pairs.entries.length % 2, 0);
  assert.ok(pairs.entries[0].name.startsWith(`a${pairs.from + 1}n`), "the first kept is a change's first name");
});

Deno.test("change journal: read back from the store, an unsound journal covers nothing before the counter", () => {
  const { journal } = grown(3, (i) => `f${i}`);
  const folder = appendChange(journal, 4, [{ name: "d", folder: true }]);
  assert.deepEqual(journalOf(JSON.parse(JSON.stringify(storedEntries(folder))), folder.from, 4), folder);
  assert.deepEqual(journalOf("junk", 0, 7), { entries: [], from: 7 });
  assert.deepEqual(journalOf([[9, "x"]], 0, 7), { entries: [], from: 7 });
  assert.deepEqual(journalOf([[2, "x"], [1, "y"]], 0, 7), { entries: [], from: 7 });
  assert.deepEqual(journalOf([], 8, 7), { entries: [], from: 7 });
});

Deno.test("change journal: names are measured in UTF-8 bytes", () => {
  for (const text of ["", "abc", "é", "€uro", "😀", "a😀é€"]) {
    assert.equal(utf8Length(text), new TextEncoder().encode(text).length, JSON.stringify(text));
  }
});
