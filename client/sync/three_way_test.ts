import assert from "node:assert/strict";
import type { LocalFacts, SyncedFile } from "./base_state.ts";
import { planThreeWay, type RemoteFacts, type SyncStep } from "./three_way.ts";
import { conflictName, hostLabel } from "./conflict_name.ts";

const R = (c: string) => c.repeat(64);

function facts(size: number, mtime = 1000, ino = 1, ctime = 1000): LocalFacts {
  return { size, mtime, ino, ctime };
}

function synced(root: string, size: number, mtime = 1000, ino = 1): SyncedFile {
  return { root, local: facts(size, mtime, ino), remote: { size, mtime } };
}

interface Case {
  base?: [string, SyncedFile][];
  local?: [string, LocalFacts][];
  remote?: [string, RemoteFacts][];
  changed?: string[];
  localRoots?: Record<string, string>;
  remoteRoots?: Record<string, string | null>;
  skipped?: string[];
}

async function plan(c: Case): Promise<{ steps: SyncStep[]; asked: string[] }> {
  const asked: string[] = [];
  const steps = await planThreeWay({
    base: new Map(c.base ?? []),
    local: new Map(c.local ?? []),
    remote: new Map(c.remote ?? []),
    remoteChanged: new Set(c.changed ?? []),
    skipped: new Set(c.skipped ?? []),
    localRoot: (rel) => {
      asked.push(`local ${rel}`);
      const root = c.localRoots?.[rel];
      if (root === undefined) throw new Error(`local root of ${rel} not expected`);
      return Promise.resolve(root);
    },
    remoteRoot: (rel) => {
      asked.push(`remote ${rel}`);
      const root = c.remoteRoots?.[rel];
      if (root === undefined) throw new Error(`remote root of ${rel} not expected`);
      return Promise.resolve(root);
    },
  });
  return { steps, asked };
}

const ops = (steps: SyncStep[]) =>
  steps.map((step) => `${step.op} ${"from" in step ? `${step.from}>` : ""}${step.rel}`);

Deno.test("three-way: nothing changed on either side plans nothing and reads nothing", async () => {
  const { steps, asked } = await plan({
    base: [["a", synced(R("a"), 5)]],
    local: [["a", facts(5)]],
    remote: [["a", { size: 5, mtime: 1000 }]],
  });
  assert.deepEqual(steps, []);
  assert.deepEqual(asked, []);
});

Deno.test("three-way: a change on one side goes to the other, over the base's version", async () => {
  const { steps } = await plan({
    base: [["a", synced(R("a"), 5)], ["b", synced(R("b"), 5)]],
    local: [["a", facts(6, 2000)], ["b", facts(5)]],
    remote: [["a", { size: 5, mtime: 1000 }], ["b", { size: 7, mtime: 3000 }]],
    changed: ["b"],
  });
  assert.deepEqual(ops(steps), ["upload a", "download b"]);
  assert.equal((steps[0] as Extract<SyncStep, { op: "upload" }>).ifRoot, R("a"));
  assert.deepEqual((steps[1] as Extract<SyncStep, { op: "download" }>).expect, facts(5));
});

Deno.test("three-way: an edit that keeps size and mtime is seen by its ctime, and read for its root", async () => {
  const { steps, asked } = await plan({
    base: [["a", synced(R("a"), 5)]],
    local: [["a", facts(5, 1000, 1, 5000)]],
    remote: [["a", { size: 5, mtime: 1000 }]],
    localRoots: { a: R("e") },
  });
  assert.deepEqual(ops(steps), ["upload a"]);
  assert.deepEqual(asked, ["local a"]);
});

Deno.test("three-way: a touched file (same root, new facts) is recorded, not sent", async () => {
  const { steps } = await plan({
    base: [["a", synced(R("a"), 5)]],
    local: [["a", facts(5, 9000, 1, 9000)]],
    remote: [["a", { size: 5, mtime: 1000 }]],
    localRoots: { a: R("a") },
  });
  assert.deepEqual(ops(steps), ["record a"]);
});

Deno.test("three-way: the same file changed on both sides is a conflict only when the contents differ", async () => {
  const both: Case = {
    base: [["a", synced(R("a"), 5)]],
    local: [["a", facts(6, 2000)]],
    remote: [["a", { size: 6, mtime: 3000 }]],
    changed: ["a"],
  };
  assert.deepEqual(ops((await plan({ ...both, localRoots: { a: R("b") }, remoteRoots: { a: R("c") } })).steps), [
    "conflict a",
  ]);
  assert.deepEqual(ops((await plan({ ...both, localRoots: { a: R("b") }, remoteRoots: { a: R("b") } })).steps), [
    "record a",
  ]);
});

Deno.test("three-way: an edit beats a delete, on either side", async () => {
  const { steps } = await plan({
    base: [["a", synced(R("a"), 5)], ["b", synced(R("b"), 5)]],
    local: [["a", facts(6, 2000)]],
    remote: [["b", { size: 8, mtime: 3000 }]],
    changed: ["a", "b"],
  });
  assert.deepEqual(ops(steps), ["upload a", "download b"]);
  assert.equal((steps[0] as Extract<SyncStep, { op: "upload" }>).ifRoot, null);
  assert.equal((steps[1] as Extract<SyncStep, { op: "download" }>).expect, null);
});

Deno.test("three-way: a delete against an unchanged file deletes; gone on both sides is forgotten", async () => {
  const { steps } = await plan({
    base: [["a", synced(R("a"), 5)], ["b", synced(R("b"), 5)], ["c", synced(R("c"), 5)]],
    local: [["b", facts(5)]],
    remote: [["a", { size: 5, mtime: 1000 }]],
    changed: ["b", "c"],
  });
  assert.deepEqual(ops(steps), ["delete-remote a", "delete-local b", "forget c"]);
});

Deno.test("three-way: a first run merges: one side's files go over, both sides' are compared, nothing is deleted", async () => {
  const { steps } = await plan({
    local: [["a", facts(5)], ["same", facts(3)], ["diff", facts(3)]],
    remote: [["b", { size: 5, mtime: 1 }], ["same", { size: 3, mtime: 1 }], ["diff", { size: 3, mtime: 1 }]],
    localRoots: { same: R("1"), diff: R("2") },
    remoteRoots: { same: R("1"), diff: R("3") },
  });
  assert.deepEqual(ops(steps), ["upload a", "download b", "conflict diff", "record same"]);
});

Deno.test("three-way: a rename here is a move there, found by size then root", async () => {
  const { steps, asked } = await plan({
    base: [["old", synced(R("a"), 500)], ["other", synced(R("b"), 7)]],
    local: [["new", facts(500, 1000, 1, 2000)], ["x", facts(9)]],
    remote: [["old", { size: 500, mtime: 1000 }], ["other", { size: 7, mtime: 1000 }]],
    localRoots: { new: R("a") },
  });
  assert.deepEqual(ops(steps), ["move-remote old>new", "delete-remote other", "upload x"]);
  assert.deepEqual(asked, ["local new"]); // x's size matches nothing gone: never read for a root
});

Deno.test("three-way: a rename on the server is a move here; a new server file with a local file's content a copy", async () => {
  const { steps } = await plan({
    base: [["old", synced(R("a"), 500)], ["keep", synced(R("k"), 300)]],
    local: [["old", facts(500)], ["keep", facts(300)]],
    remote: [["new", { size: 500, mtime: 1000 }], ["keep", { size: 300, mtime: 1000 }], [
      "dup",
      { size: 300, mtime: 1000 },
    ]],
    changed: ["old", "new", "dup"],
    remoteRoots: { new: R("a"), dup: R("k") },
  });
  assert.deepEqual(ops(steps), ["copy-local keep>dup", "move-local old>new"]);
});

Deno.test("three-way: a server name changed by this client's own last run (same facts) is checked by its root", async () => {
  const base: [string, SyncedFile][] = [["a", synced(R("a"), 5)]];
  const remote: [string, RemoteFacts][] = [["a", { size: 5, mtime: 1000 }]];
  const echo = await plan({ base, local: [["a", facts(5)]], remote, changed: ["a"], remoteRoots: { a: R("a") } });
  assert.deepEqual(echo.steps, []);
  const other = await plan({ base, local: [["a", facts(5)]], remote, changed: ["a"], remoteRoots: { a: R("f") } });
  assert.deepEqual(ops(other.steps), ["download a"]);
});

Deno.test("three-way: skipped paths, and all under a skipped folder, are left alone on both sides", async () => {
  const { steps } = await plan({
    base: [["link/a", synced(R("a"), 5)], ["l", synced(R("b"), 5)]],
    remote: [["link/a", { size: 5, mtime: 1000 }], ["l", { size: 5, mtime: 1000 }], ["link/new", {
      size: 1,
      mtime: 1,
    }]],
    skipped: ["link", "l"],
  });
  assert.deepEqual(steps, []);
});

Deno.test("conflict copies are named NAME.conflict-YYYYMMDD-HHMMSS-HOST.EXT", () => {
  const when = new Date(Date.UTC(2026, 0, 2, 3, 4, 5));
  assert.equal(conflictName("a/b/report.final.pdf", when, "lap"), "a/b/report.final.conflict-20260102-030405-lap.pdf");
  assert.equal(hostLabel("my laptop.local"), "my-laptop");
  assert.equal(hostLabel(null), "host");
  assert.equal(hostLabel("../../etc"), "host");
});
