import assert from "node:assert/strict";
import { join } from "node:path";
import { excludeMatcher } from "./excludes.ts";
import { planSync } from "./plan.ts";
import { InFlight } from "./in_flight.ts";
import { SyncReport } from "./report.ts";
import { loadState, saveState, stateFile } from "./state.ts";
import { scanTree } from "./tree.ts";

Deno.test("excludeMatcher: segment patterns anywhere, anchored patterns from the top, folders whole", () => {
  const excluded = excludeMatcher(["*.tmp", "node_modules", "build/out", "docs/**.pdf", "x?[ab].txt"]);
  assert.ok(excluded("a.tmp"));
  assert.ok(excluded("deep/down/a.tmp"));
  assert.ok(excluded("node_modules/pkg/index.js"));
  assert.ok(excluded("src/node_modules/x"));
  assert.ok(excluded("build/out/x.o"));
  assert.ok(!excluded("src/build/out/x.o"));
  assert.ok(excluded("docs/a/b/c.pdf"));
  assert.ok(!excluded("docs.pdf"));
  assert.ok(excluded("x1a.txt"));
  assert.ok(!excluded("x1c.txt"));
  assert.ok(!excluded("a.tmpx"));
  assert.ok(!excludeMatcher([])("anything"));
  assert.ok(excludeMatcher(["a+b.(c)"])("a+b.(c)"), "regular expression characters are literal");
});

Deno.test("planSync: size and mtime decide; deletes only when asked; skipped paths are never sent or deleted", async () => {
  const facts = (size: number, mtime: number) => ({ size, mtime });
  const source = new Map([["same", facts(1, 1)], ["newer", facts(1, 2)], ["bigger", facts(2, 1)], [
    "new",
    facts(1, 1),
  ]]);
  const target = new Map([
    ["same", facts(1, 1)],
    ["newer", facts(1, 1)],
    ["bigger", facts(1, 1)],
    ["gone", facts(1, 1)],
    ["link", facts(1, 1)],
    ["linkdir/x", facts(1, 1)],
  ]);
  const skipped = new Map([["link", "a symbolic link"], ["linkdir", "a symbolic link"]]);
  const kept = await planSync({ source, target, skipped, delete: false });
  assert.deepEqual(kept.map((step) => `${step.action} ${step.rel}`), [
    "skip link",
    "skip linkdir",
    "send bigger",
    "send new",
    "send newer",
    "unchanged same",
  ]);
  const deleting = await planSync({ source, target, skipped, delete: true });
  assert.deepEqual(deleting.filter((step) => step.action === "delete").map((step) => step.rel), ["gone"]);
  const checked = await planSync({
    source,
    target,
    skipped,
    delete: false,
    sameContent: (rel) => Promise.resolve(rel === "newer"),
  });
  assert.deepEqual(checked.filter((step) => step.action === "unchanged").map((step) => step.rel), ["newer"]);
});

Deno.test("state: saved and loaded whole; a malformed file reads as none; one file per key", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const key = { server: "127.0.0.1:5000", user: "alice", prefix: "src", dir: "/home/a/src" };
    const path = await stateFile(dir, key);
    assert.notEqual(path, await stateFile(dir, { ...key, prefix: "src2" }));
    assert.equal(await loadState(path), null);
    const files = new Map([["a/b", { size: 3, mtime: 1_600_000_000_123 }]]);
    await saveState(path, { epoch: "e1", counter: 7, files });
    assert.deepEqual(await loadState(path), { epoch: "e1", counter: 7, files });
    await Deno.writeTextFile(path, "{not json");
    assert.equal(await loadState(path), null);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("scanTree: files with size and mtime, links and FIFOs set apart, excluded folders and partials left out", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.mkdir(join(dir, "a/b"), { recursive: true });
    await Deno.writeTextFile(join(dir, "a/b/f.txt"), "hello");
    await Deno.utime(join(dir, "a/b/f.txt"), 1, new Date(1_500_000_000_456));
    await Deno.symlink("/etc/passwd", join(dir, "a/link"));
    await Deno.mkdir(join(dir, "skip"));
    await Deno.writeTextFile(join(dir, "skip/x"), "x");
    await Deno.writeTextFile(join(dir, "a/.f.txt.dfos-partial"), "part");
    await Deno.writeTextFile(join(dir, "a/.1234.dfos-part"), "part");
    new Deno.Command("mkfifo", { args: [join(dir, "fifo")] }).outputSync();
    const tree = await scanTree(dir, excludeMatcher(["skip"]));
    assert.deepEqual([...tree.files.keys()], ["a/b/f.txt"]);
    assert.equal(tree.files.get("a/b/f.txt")!.size, 5);
    assert.equal(tree.files.get("a/b/f.txt")!.mtime, 1_500_000_000_456);
    assert.deepEqual(Object.fromEntries(tree.others), { "a/link": "symbolic link", "fifo": "special file" });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("SyncReport: actions told at once are written one at a time, in the order told", async () => {
  const lines: string[] = [];
  let writing = false;
  const io = {
    async write(data: Uint8Array | string) {
      assert.ok(!writing, "a write began before the previous one ended");
      writing = true;
      await new Promise((resolve) => setTimeout(resolve, 1)); // a pipe that takes its time
      lines.push(String(data));
      writing = false;
    },
    warn() {},
    interactive: false,
    confirm: () => Promise.resolve(false),
    atInterrupt: () => () => {},
  };
  const report = new SyncReport("push", io, { json: true, dryRun: false });
  await Promise.all(
    ["a", "b", "c", "d"].map((name) => report.action({ action: "send", name, size: 1, sent: 1 })),
  );
  assert.deepEqual(lines.map((line) => JSON.parse(line).name), ["a", "b", "c", "d"]);
  assert.equal(report.summary.sent, 4);
});

Deno.test("InFlight: at most so many tasks at once, and a failure surfaces where tasks are started", async () => {
  const inFlight = new InFlight(2);
  let running = 0;
  let most = 0;
  const task = (ms: number, fail = false) => async () => {
    running++;
    most = Math.max(most, running);
    await new Promise((resolve) => setTimeout(resolve, ms));
    running--;
    if (fail) throw new Error("lost");
  };
  for (let i = 0; i < 6; i++) await inFlight.start(task(2));
  await inFlight.settle();
  assert.equal(most, 2);
  assert.equal(running, 0);
  await inFlight.start(task(1, true));
  await inFlight.start(task(5));
  await assert.rejects(inFlight.start(task(5)), /lost/);
  await inFlight.settle().catch(() => {});
  await new Promise((resolve) => setTimeout(resolve, 10)); // the others end, unreported
});
