/**
 * `dfos sync` end to end: two local folders A and B, each synced by the real
 * command line (a subprocess with a state folder and host name of its own,
 * as two laptops), through one real server.
 */

import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import { seededBytes, sha256File } from "./_common.ts";
import { CountingProxy } from "./_proxy.ts";
import { connect, type Fixture, listDir, runCli, startServer, text } from "./_fixture.ts";

/** One laptop: a folder, its own state and host name. */
interface Side {
  name: string;
  dir: string;
  env: Record<string, string>;
}

function sides(fx: Fixture, server = fx.address): [Side, Side] {
  const side = (name: string): Side => ({
    name,
    dir: join(fx.local, name),
    env: {
      ...fx.envFor("alice"),
      DFOS_SERVER: server,
      XDG_STATE_HOME: join(fx.dir, `state-${name}`),
      DFOS_HOST: `host${name}`,
    },
  });
  return [side("A"), side("B")];
}

async function sync(side: Side, ...flags: string[]) {
  return await runCli(["sync", side.dir, "shared", ...flags], { env: side.env });
}

async function synced(side: Side, ...flags: string[]): Promise<Record<string, unknown>> {
  const result = await sync(side, "--json", ...flags);
  assert.equal(result.code, 0, `sync of ${side.name} failed: ${result.stderr}`);
  const lines = text(result.stdout).trim().split("\n").map((line) => JSON.parse(line));
  return lines[lines.length - 1];
}

async function write(side: Side, rel: string, content: string | Uint8Array, mtime?: number): Promise<void> {
  const path = join(side.dir, rel);
  await Deno.mkdir(dirname(path), { recursive: true });
  if (typeof content === "string") await Deno.writeTextFile(path, content);
  else await Deno.writeFile(path, content);
  if (mtime !== undefined) await Deno.utime(path, new Date(mtime), new Date(mtime));
}

async function read(side: Side, rel: string): Promise<string | null> {
  return await Deno.readTextFile(join(side.dir, rel)).catch(() => null);
}

/** Every file of a folder with its content's hash. */
async function tree(dir: string): Promise<Record<string, string>> {
  const files: Record<string, string> = {};
  for await (const entry of Deno.readDir(dir)) {
    const path = join(dir, entry.name);
    if (entry.isDirectory) {
      for (const [rel, hash] of Object.entries(await tree(path))) files[`${entry.name}/${rel}`] = hash;
    } else files[entry.name] = await sha256File(path);
  }
  return files;
}

async function sameTrees(a: Side, b: Side): Promise<void> {
  assert.deepEqual(await tree(a.dir), await tree(b.dir));
}

Deno.test("sync: an edit in A appears in B, and edits to different files on both sides both survive", async () => {
  await using fx = await startServer();
  const [a, b] = sides(fx);
  await write(a, "notes.txt", "one");
  await write(a, "deep/er/plan.md", "plan");
  assert.equal((await synced(a)).sent, 2);
  assert.equal((await synced(b)).received, 2);
  assert.equal(await read(b, "deep/er/plan.md"), "plan");

  await write(a, "notes.txt", "one, edited in A");
  await synced(a);
  await synced(b);
  assert.equal(await read(b, "notes.txt"), "one, edited in A");

  await write(a, "notes.txt", "A's edit");
  await write(b, "deep/er/plan.md", "B's edit");
  await synced(a);
  await synced(b);
  await synced(a);
  assert.equal(await read(a, "deep/er/plan.md"), "B's edit");
  assert.equal(await read(b, "notes.txt"), "A's edit");
  await sameTrees(a, b);
  const quiet = await synced(a);
  assert.deepEqual([quiet.sent, quiet.received, quiet.deleted, quiet.conflicts], [0, 0, 0, 0]);
});

Deno.test("sync: the same file edited on both sides keeps both versions on both sides, once", async () => {
  await using fx = await startServer();
  const [a, b] = sides(fx);
  await write(a, "doc.txt", "base");
  await synced(a);
  await synced(b);
  await write(a, "doc.txt", "A's version");
  await write(b, "doc.txt", "B's version, longer");
  await synced(a); // the server takes A's first
  const bRun = await synced(b);
  assert.equal(bRun.conflicts, 1);
  await synced(a);
  for (const side of [a, b]) {
    const files = await listDir(side.dir);
    assert.equal(files.length, 2, `${side.name}: ${files}`);
    assert.equal(await read(side, "doc.txt"), "A's version");
    const copy = files.find((file) => file !== "doc.txt")!;
    assert.match(copy, /^doc\.conflict-\d{8}-\d{6}-hostB\.txt$/);
    assert.equal(await read(side, copy), "B's version, longer");
  }
  // Once: more runs make no more copies.
  for (const side of [b, a, b]) assert.equal((await synced(side)).conflicts, 0);
  assert.equal((await listDir(b.dir)).length, 2);
});

Deno.test("sync: identical edits on both sides are no conflict", async () => {
  await using fx = await startServer();
  const [a, b] = sides(fx);
  await write(a, "same.txt", "x");
  await synced(a);
  await synced(b);
  await write(a, "same.txt", "both wrote this");
  await write(b, "same.txt", "both wrote this");
  await synced(a);
  assert.equal((await synced(b)).conflicts, 0);
  assert.deepEqual(await listDir(b.dir), ["same.txt"]);
});

Deno.test("sync: a delete against an unchanged file deletes; a delete against an edit keeps the edit", async () => {
  await using fx = await startServer();
  const [a, b] = sides(fx);
  for (const name of ["gone.txt", "edited.txt", "keep1", "keep2", "keep3"]) await write(a, name, name);
  await synced(a);
  await synced(b);
  await Deno.remove(join(a.dir, "gone.txt"));
  await Deno.remove(join(a.dir, "edited.txt"));
  await write(b, "edited.txt", "edited in B");
  await synced(a);
  await synced(b);
  await synced(a);
  for (const side of [a, b]) {
    assert.equal(await read(side, "gone.txt"), null, side.name);
    assert.equal(await read(side, "edited.txt"), "edited in B", side.name);
  }
  // And the other way: an edit here against a delete on the server comes back there.
  await write(a, "keep1", "edited in A");
  await Deno.remove(join(b.dir, "keep1"));
  await synced(b);
  await synced(a);
  await synced(b);
  assert.equal(await read(b, "keep1"), "edited in A");
  await sameTrees(a, b);
});

Deno.test("sync: edits that keep size and mtime go across, also on a file the last run just downloaded", async () => {
  await using fx = await startServer();
  const [a, b] = sides(fx);
  const mtime = Date.UTC(2024, 0, 1);
  await write(a, "f.txt", "aaaa", mtime);
  await synced(a);
  await synced(b);
  await write(a, "f.txt", "bbbb", mtime); // its ctime moved
  assert.equal((await synced(a)).sent, 1);
  assert.equal((await synced(b)).received, 1);
  assert.equal(await read(b, "f.txt"), "bbbb");
  // Straight after B's run wrote it, most often in the same second of ctime (which comes in whole seconds): only the
  // racily clean rule reads it again.
  await write(b, "f.txt", "cccc", mtime);
  assert.equal((await synced(b)).sent, 1);
  await synced(a);
  assert.equal(await read(a, "f.txt"), "cccc");
});

Deno.test("sync: a rename of a large file moves almost nothing on the wire, both ways", async () => {
  await using fx = await startServer();
  await using proxy = new CountingProxy(fx.port);
  const [a, b] = sides(fx, proxy.address);
  const size = 8 * 1024 * 1024;
  await write(a, "big.bin", seededBytes(size, 7));
  await synced(a);
  await synced(b);
  await Deno.rename(join(a.dir, "big.bin"), join(a.dir, "moved.bin"));
  proxy.reset();
  const up = await synced(a);
  assert.equal(up.moved, 1);
  assert.ok(proxy.up + proxy.down < 16 * 1024, `A's run moved ${proxy.up + proxy.down} bytes`);
  proxy.reset();
  const down = await synced(b);
  assert.equal(down.moved, 1);
  assert.ok(proxy.up + proxy.down < 16 * 1024, `B's run moved ${proxy.up + proxy.down} bytes`);
  assert.deepEqual(await listDir(b.dir), ["moved.bin"]);
  await sameTrees(a, b);
});

Deno.test("sync: --max-delete and the empty-side guard stop a run, changing nothing", async () => {
  await using fx = await startServer();
  const [a, b] = sides(fx);
  for (let i = 0; i < 10; i++) await write(a, `f${i}`, `${i}`);
  await synced(a);
  await synced(b);
  for (let i = 0; i < 6; i++) await Deno.remove(join(a.dir, `f${i}`));
  const stopped = await sync(a);
  assert.equal(stopped.code, 1);
  assert.match(stopped.stderr, /would delete 6 of the 10 files synced \(60%\), more than --max-delete 50%/);
  assert.equal((await synced(b)).deleted, 0, "nothing was deleted on the server");
  assert.equal((await listDir(b.dir)).length, 10);
  assert.equal((await synced(a, "--max-delete", "60")).deleted, 6);

  // B's folder suddenly empty (an unmounted disk): stopped, the server keeps its files.
  await Deno.remove(b.dir, { recursive: true });
  await Deno.mkdir(b.dir);
  const empty = await sync(b);
  assert.equal(empty.code, 1);
  assert.match(empty.stderr, /is empty, but the last sync left 10 files there: stopped, nothing changed/);
  assert.equal((await synced(a)).deleted, 0);
  assert.equal((await listDir(a.dir)).length, 4);
  // The server's side suddenly empty (all removed there by another tool, or another PREFIX's state): stopped too.
  const client = await connect(fx);
  try {
    for await (const entry of client.list("shared/")) await client.remove(entry.name);
  } finally {
    await client.close();
  }
  const gone = await sync(a);
  assert.equal(gone.code, 1);
  assert.match(gone.stderr, /"shared" on the server is empty, but the last sync left 4 files there/);
  assert.equal((await listDir(a.dir)).length, 4, "A deleted nothing");
});

Deno.test("sync: --dry-run changes nothing and says what it would do", async () => {
  await using fx = await startServer();
  const [a, b] = sides(fx);
  await write(a, "x.txt", "x");
  const dry = await sync(a, "--dry-run");
  assert.equal(dry.code, 0, dry.stderr);
  assert.match(text(dry.stdout), /^upload shared\/x\.txt$/m);
  assert.equal((await synced(b)).received, 0);
});
