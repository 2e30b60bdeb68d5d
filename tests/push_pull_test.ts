/**
 * `dfos push` and `dfos pull` end to end: a real server, the real command
 * line as a subprocess.
 */

import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import { seededBytes } from "./_common.ts";
import { CountingProxy } from "./_proxy.ts";
import { runOnTerminal } from "./_terminal.ts";
import { connect, type Fixture, listDir, runCli, spawnCli, startServer, storeFile, text, waitFor } from "./_fixture.ts";

/** The tree most tests push: nested folders, known bytes and known mtimes. */
const TREE: Record<string, { bytes: number; mtime: number }> = {
  "top.txt": { bytes: 10, mtime: Date.UTC(2020, 0, 1, 12, 0, 0, 123) },
  "a/one.bin": { bytes: 70_000, mtime: Date.UTC(2021, 5, 2, 3, 4, 5, 678) },
  "a/b/two.txt": { bytes: 0, mtime: Date.UTC(2019, 1, 1) },
  "a/b/c/three.bin": { bytes: 300_000, mtime: Date.UTC(2022, 2, 3, 4, 5, 6, 7) },
};

async function writeTree(dir: string, tree = TREE, seed = 1): Promise<void> {
  let n = seed;
  for (const [rel, { bytes, mtime }] of Object.entries(tree)) {
    await seededFile(join(dir, rel), bytes, n++, mtime);
  }
}

/** Runs the CLI as alice against the fixture, with a state folder of the test's own. */
function dfos(fx: Fixture, args: string[], env: Record<string, string> = {}) {
  return runCli(args, { env: { ...fx.envFor("alice"), XDG_STATE_HOME: join(fx.dir, "state"), ...env }, cwd: fx.local });
}

/** The JSON lines of a --json run. */
function jsonLines(stdout: Uint8Array): Record<string, unknown>[] {
  return text(stdout).trim().split("\n").filter((line) => line !== "").map((line) => JSON.parse(line));
}

/** Alice's files under a prefix on the server: name -> size, mtime. */
async function remoteFiles(fx: Fixture, prefix: string): Promise<Map<string, { size: number; mtime: number }>> {
  const client = await connect(fx);
  try {
    const files = new Map<string, { size: number; mtime: number }>();
    for await (const entry of client.list(prefix)) files.set(entry.name, { size: entry.size, mtime: entry.mtime });
    return files;
  } finally {
    await client.close();
  }
}

async function readRemote(fx: Fixture, name: string): Promise<Uint8Array> {
  return await Deno.readFile(join(fx.root, "alice", ...name.split("/")));
}

Deno.test("push: a nested tree arrives whole with its mtimes, and pull brings it back the same", async () => {
  await using fx = await startServer();
  const src = join(fx.local, "src");
  await writeTree(src);
  const pushed = await dfos(fx, ["push", "src"]);
  assert.equal(pushed.code, 0, pushed.stderr);
  assert.equal(pushed.stderr, "", "no progress line on a pipe");
  const remote = await remoteFiles(fx, "src/");
  assert.deepEqual([...remote.keys()].sort(), Object.keys(TREE).map((rel) => `src/${rel}`).sort());
  for (const [rel, { mtime }] of Object.entries(TREE)) {
    assert.deepEqual(await readRemote(fx, `src/${rel}`), await Deno.readFile(join(src, rel)), rel);
    assert.equal(remote.get(`src/${rel}`)!.mtime, mtime, `server mtime of ${rel}`);
  }
  const pulled = await dfos(fx, ["pull", "src", "copy"]);
  assert.equal(pulled.code, 0, pulled.stderr);
  for (const [rel, { mtime }] of Object.entries(TREE)) {
    const path = join(fx.local, "copy", rel);
    assert.deepEqual(await Deno.readFile(path), await Deno.readFile(join(src, rel)), rel);
    assert.equal((await Deno.stat(path)).mtime!.getTime(), mtime, `local mtime of ${rel}`);
  }
});

Deno.test("push: a second push with nothing changed sends nothing and does not list; --json shape", async () => {
  await using fx = await startServer();
  await writeTree(join(fx.local, "src"));
  const first = await dfos(fx, ["push", "src", "--json"]);
  assert.equal(first.code, 0, first.stderr);
  const lines = jsonLines(first.stdout);
  const summary = lines.pop()!;
  for (const line of lines) {
    assert.equal(line.action, "send");
    assert.equal(typeof line.name, "string");
    assert.equal(typeof line.size, "number");
    assert.equal(typeof line.sent, "number");
  }
  assert.deepEqual(lines.map((line) => line.name).sort(), Object.keys(TREE).map((rel) => `src/${rel}`).sort());
  assert.equal(summary.action, "summary");
  assert.equal(summary.sent, 4);
  assert.equal(summary.content, Object.values(TREE).reduce((sum, file) => sum + file.bytes, 0));
  // Bytes, not messages: the content crossed the wire, with the frames and requests around it.
  assert.ok((summary.wire as number) > (summary.content as number), `${summary.wire} bytes on the wire`);

  const second = await dfos(fx, ["push", "src", "--json"]);
  assert.equal(second.code, 0, second.stderr);
  const again = jsonLines(second.stdout);
  const last = again.pop()!;
  assert.ok(again.every((line) => line.action === "unchanged"), JSON.stringify(again));
  assert.equal(last.sent, 0);
  assert.equal(last.unchanged, 4);
  assert.equal(last.listed, false, "the remote side came from the state, not a listing");
  assert.ok((last.wire as number) <= 4096, `${last.wire} bytes on the wire`);

  const text_ = await dfos(fx, ["push", "src"]);
  assert.match(text(text_.stdout), /push: 0 sent, 0 deleted, 4 unchanged; .* on the wire for 0 B of content/);
});

Deno.test("pull: small files and a new large one in flight at once each come whole (the large GET waits its turn)", async () => {
  await using fx = await startServer();
  const tree = {
    "a.txt": { bytes: 6, mtime: Date.UTC(2020, 0, 1) },
    "big.bin": { bytes: 9 * 1024 * 1024 + 7, mtime: Date.UTC(2021, 0, 1) }, // over the small files' bound: not pipelined
    "c.txt": { bytes: 100, mtime: Date.UTC(2022, 0, 1) },
  };
  await writeTree(join(fx.local, "src"), tree);
  assert.equal((await dfos(fx, ["push", "src"])).code, 0);
  const pulled = await dfos(fx, ["pull", "src", "copy"]);
  assert.equal(pulled.code, 0, pulled.stderr);
  for (const rel of Object.keys(tree)) {
    assert.deepEqual(await Deno.readFile(join(fx.local, "copy", rel)), await Deno.readFile(join(fx.local, "src", rel)));
  }
});

Deno.test("pull: a second pull with nothing changed fetches nothing and does not list", async () => {
  await using fx = await startServer();
  await writeTree(join(fx.local, "src"));
  assert.equal((await dfos(fx, ["push", "src"])).code, 0);
  assert.equal((await dfos(fx, ["pull", "src", "copy"])).code, 0);
  const second = await dfos(fx, ["pull", "src", "copy", "--json"]);
  const summary = jsonLines(second.stdout).pop()!;
  assert.equal(summary.sent, 0);
  assert.equal(summary.unchanged, 4);
  assert.equal(summary.listed, false);
  assert.ok((summary.wire as number) <= 4096, `${summary.wire} bytes on the wire`);
});

Deno.test("pull: after changes on the server, a pull takes them from the changes since, without listing", async () => {
  await using fx = await startServer();
  await writeTree(join(fx.local, "src"));
  assert.equal((await dfos(fx, ["push", "src"])).code, 0);
  assert.equal((await dfos(fx, ["pull", "src", "copy"])).code, 0);
  await storeFile(fx, "src/a/one.bin", new TextEncoder().encode("changed on the server"));
  const client = await connect(fx);
  await client.remove("src/top.txt");
  await client.close();
  const second = await dfos(fx, ["pull", "src", "copy", "--json", "--delete"]);
  assert.equal(second.code, 0, second.stderr);
  const lines = jsonLines(second.stdout);
  const summary = lines.pop()!;
  assert.equal(summary.listed, false, "the server said what changed");
  assert.deepEqual(lines.filter((line) => line.action === "send").map((line) => line.name), ["src/a/one.bin"]);
  assert.deepEqual(lines.filter((line) => line.action === "delete").map((line) => line.name), ["src/top.txt"]);
  assert.equal(await Deno.readTextFile(join(fx.local, "copy", "a", "one.bin")), "changed on the server");
  const copy = join(fx.local, "copy");
  const files: string[] = [];
  for await (const path of walkFiles(copy)) files.push(path.slice(copy.length + 1));
  assert.deepEqual(files.sort(), ["a/b/c/three.bin", "a/b/two.txt", "a/one.bin"]);
});

Deno.test("push and pull: what the source lacks is deleted only with --delete", async () => {
  await using fx = await startServer();
  const src = join(fx.local, "src");
  await writeTree(src);
  assert.equal((await dfos(fx, ["push", "src"])).code, 0);
  await Deno.remove(join(src, "a/one.bin"));
  const kept = await dfos(fx, ["push", "src"]);
  assert.equal(kept.code, 0, kept.stderr);
  assert.ok((await remoteFiles(fx, "src/")).has("src/a/one.bin"), "kept without --delete");
  const deleted = await dfos(fx, ["push", "src", "--delete"]);
  assert.equal(deleted.code, 0, deleted.stderr);
  assert.match(text(deleted.stdout), /1 deleted/);
  assert.ok(!(await remoteFiles(fx, "src/")).has("src/a/one.bin"), "deleted with --delete");

  // Pull: a file gone from the server stays locally without --delete.
  assert.equal((await dfos(fx, ["pull", "src", "copy"])).code, 0);
  const client = await connect(fx);
  await client.remove("src/top.txt");
  await client.close();
  assert.equal((await dfos(fx, ["pull", "src", "copy"])).code, 0);
  assert.ok((await listDir(join(fx.local, "copy"))).includes("top.txt"));
  const pulled = await dfos(fx, ["pull", "src", "copy", "--delete"]);
  assert.equal(pulled.code, 0, pulled.stderr);
  assert.ok(!(await listDir(join(fx.local, "copy"))).includes("top.txt"));
  assert.ok((await listDir(join(fx.local, "copy"))).includes("a"));
});

Deno.test("push: --exclude leaves out matching files and folders, and --delete never deletes them", async () => {
  await using fx = await startServer();
  const src = join(fx.local, "src");
  await writeTree(src);
  await seededFile(join(src, "a/junk.tmp"), 5, 9, Date.UTC(2020, 0, 1));
  await seededFile(join(src, "build/out.o"), 5, 10, Date.UTC(2020, 0, 1));
  const result = await dfos(fx, ["push", "src", "--exclude", "*.tmp", "--exclude", "build"]);
  assert.equal(result.code, 0, result.stderr);
  const names = [...(await remoteFiles(fx, "src/")).keys()];
  assert.ok(!names.includes("src/a/junk.tmp"));
  assert.ok(!names.some((name) => name.startsWith("src/build/")));
  assert.equal(names.length, 4);
  // An excluded remote file survives --delete.
  await storeFile(fx, "src/keep.tmp", new Uint8Array(3));
  const again = await dfos(fx, ["push", "src", "--delete", "--exclude", "*.tmp", "--exclude", "build"]);
  assert.equal(again.code, 0, again.stderr);
  assert.ok((await remoteFiles(fx, "src/")).has("src/keep.tmp"));
});

Deno.test("push and pull: --dry-run prints the plan and changes nothing, here or there", async () => {
  await using fx = await startServer();
  await writeTree(join(fx.local, "src"));
  const push = await dfos(fx, ["push", "src", "--dry-run"]);
  assert.equal(push.code, 0, push.stderr);
  assert.match(text(push.stdout), /^send src\/a\/one\.bin/m);
  assert.equal((await remoteFiles(fx, "")).size, 0);
  assert.deepEqual(await listDir(join(fx.dir, "state")), [], "no state written");

  assert.equal((await dfos(fx, ["push", "src"])).code, 0);
  await storeFile(fx, "src/new.txt", new Uint8Array(4));
  const pull = await dfos(fx, ["pull", "src", "copy", "--dry-run", "--json"]);
  assert.equal(pull.code, 0, pull.stderr);
  const lines = jsonLines(pull.stdout);
  assert.equal(lines.filter((line) => line.action === "send").length, 5);
  assert.deepEqual(await listDir(join(fx.local, "copy")), [], "nothing written locally");

  await Deno.remove(join(fx.local, "src/top.txt"));
  const del = await dfos(fx, ["push", "src", "--dry-run", "--delete"]);
  assert.match(text(del.stdout), /^delete src\/top\.txt$/m);
  assert.ok((await remoteFiles(fx, "src/")).has("src/top.txt"));
});

Deno.test("push: a name the server refuses is reported and skipped, the others are sent, exit 1", async () => {
  await using fx = await startServer();
  const src = join(fx.local, "src");
  await writeTree(src);
  await seededFile(join(src, ".dfos-x"), 3, 20, Date.UTC(2020, 0, 1));
  await seededFile(join(src, "a\\b"), 3, 21, Date.UTC(2020, 0, 1));
  const result = await dfos(fx, ["push", "src"]);
  assert.equal(result.code, 1, result.stderr);
  assert.match(result.stderr, /\.dfos-x.*reserved/);
  assert.match(result.stderr, /a\\\\b.*contains "\\"/);
  const names = [...(await remoteFiles(fx, "src/")).keys()];
  assert.equal(names.length, 4, names.join(", "));
});

Deno.test("push: a symbolic link in DIR is skipped with a warning, its target never read", async () => {
  await using fx = await startServer();
  const src = join(fx.local, "src");
  await writeTree(src);
  const outside = join(fx.dir, "outside");
  await Deno.mkdir(outside);
  const secret = "SECRET-" + crypto.randomUUID();
  await Deno.writeTextFile(join(outside, "secret.txt"), secret);
  await Deno.symlink(join(outside, "secret.txt"), join(src, "link.txt"));
  await Deno.symlink(outside, join(src, "a/linked-folder"));
  const result = await dfos(fx, ["push", "src"]);
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stderr, /link\.txt.*symbolic link/);
  assert.match(result.stderr, /linked-folder.*symbolic link/);
  const names = [...(await remoteFiles(fx, "")).keys()];
  assert.ok(!names.some((name) => name.includes("link")), names.join(", "));
  for await (const name of walkFiles(join(fx.root, "alice"))) {
    assert.ok(!(await Deno.readTextFile(name)).includes(secret), `${name} holds the secret`);
  }
  // Pull does not write through a link in DIR either.
  await storeFile(fx, "src/a/linked-folder/evil.txt", new TextEncoder().encode("x"));
  const pulled = await dfos(fx, ["pull", "src", "src"]);
  assert.equal(pulled.code, 0, pulled.stderr);
  assert.deepEqual(await listDir(outside), ["secret.txt"]);
});

Deno.test("push: a change made on the server by another client between two pushes is noticed, from the changes since", async () => {
  await using fx = await startServer();
  const src = join(fx.local, "src");
  await writeTree(src);
  assert.equal((await dfos(fx, ["push", "src"])).code, 0);
  await storeFile(fx, "src/top.txt", new TextEncoder().encode("changed by someone else"));
  await storeFile(fx, "src/new.txt", new TextEncoder().encode("added by someone else"));
  await storeFile(fx, "elsewhere.txt", new TextEncoder().encode("outside the prefix"));
  const client = await connect(fx);
  await client.remove("src/a/one.bin");
  await client.close();
  const result = await dfos(fx, ["push", "src", "--json", "--delete"]);
  assert.equal(result.code, 0, result.stderr);
  const lines = jsonLines(result.stdout);
  const summary = lines.pop()!;
  assert.equal(summary.listed, false, "the counter moved, and the server said what changed: no listing");
  const did = (action: string) => lines.filter((line) => line.action === action).map((line) => line.name).sort();
  assert.deepEqual(did("send"), ["src/a/one.bin", "src/top.txt"]);
  assert.deepEqual(did("delete"), ["src/new.txt"]);
  assert.deepEqual(await readRemote(fx, "src/top.txt"), await Deno.readFile(join(src, "top.txt")));
  assert.deepEqual(
    [...(await remoteFiles(fx, "src/")).keys()].sort(),
    Object.keys(TREE).map((rel) => `src/${rel}`).sort(),
  );
});

Deno.test("push: a folder moved on the server into the prefix is not in the changes since: the run lists", async () => {
  await using fx = await startServer();
  const src = join(fx.local, "src");
  await writeTree(src);
  assert.equal((await dfos(fx, ["push", "src"])).code, 0);
  await storeFile(fx, "other/x.txt", new TextEncoder().encode("x"));
  const client = await connect(fx);
  await client.move("other", "src/moved");
  await client.close();
  const result = await dfos(fx, ["push", "src", "--json", "--delete"]);
  assert.equal(result.code, 0, result.stderr);
  const lines = jsonLines(result.stdout);
  assert.equal(lines.pop()!.listed, true, "a folder's files are not named in the journal");
  assert.deepEqual(lines.filter((line) => line.action === "delete").map((line) => line.name), ["src/moved/x.txt"]);
});

Deno.test("push: a file with 4 KiB overwritten sends about the edit as a delta of its old chunk, not the chunk", async () => {
  await using fx = await startServer();
  const src = join(fx.local, "src");
  const tree = {
    "small.bin": { bytes: 60_000, mtime: Date.UTC(2020, 0, 1) },
    "mid.bin": { bytes: 300_000, mtime: Date.UTC(2020, 0, 2) },
    "big.bin": { bytes: 3_000_000, mtime: Date.UTC(2020, 0, 3) },
  };
  await writeTree(src, tree);
  assert.equal((await dfos(fx, ["push", "src"])).code, 0);
  for (const [rel, { bytes }] of Object.entries(tree)) {
    const path = join(src, rel);
    const edited = await Deno.readFile(path);
    edited.set(seededBytes(4096, 99), Math.floor(bytes / 2));
    await Deno.writeFile(path, edited);
    await Deno.utime(path, new Date(), new Date(Date.UTC(2021, 0, 1)));
  }
  await using proxy = new CountingProxy(fx.port);
  const before = fx.server.stats.snapshot().bytesIn;
  const result = await dfos(fx, ["push", "src", "--json"], { DFOS_SERVER: proxy.address });
  assert.equal(result.code, 0, result.stderr);
  for (const rel of Object.keys(tree)) {
    assert.deepEqual(await readRemote(fx, `src/${rel}`), await Deno.readFile(join(src, rel)), rel);
  }
  // Sent whole, the three chunks around the edits would be some 200 KB (16-256 KiB each).
  assert.ok(proxy.up < 3 * 12_000, `${proxy.up} bytes sent for three edits of 4 KiB`);
  const received = fx.server.stats.snapshot().bytesIn - before;
  assert.ok(received > 0 && received <= proxy.up, `the server counted ${received} body bytes, the wire ${proxy.up}`);
});

Deno.test("pull: a file with 4 KiB overwritten on the server fetches about the edit as a delta, not its chunk", async () => {
  await using fx = await startServer();
  const src = join(fx.local, "src");
  const tree = {
    "small.bin": { bytes: 60_000, mtime: Date.UTC(2020, 0, 1) },
    "mid.bin": { bytes: 300_000, mtime: Date.UTC(2020, 0, 2) },
    "big.bin": { bytes: 3_000_000, mtime: Date.UTC(2020, 0, 3) },
  };
  await writeTree(src, tree);
  assert.equal((await dfos(fx, ["push", "src"])).code, 0);
  assert.equal((await dfos(fx, ["pull", "src", "copy"])).code, 0);
  for (const [rel, { bytes }] of Object.entries(tree)) {
    const edited = await readRemote(fx, `src/${rel}`);
    edited.set(seededBytes(4096, 98), Math.floor(bytes / 3));
    await storeFile(fx, `src/${rel}`, edited);
  }
  await using proxy = new CountingProxy(fx.port);
  const before = fx.server.stats.snapshot().bytesOut;
  const result = await dfos(fx, ["pull", "src", "copy", "--json"], { DFOS_SERVER: proxy.address });
  assert.equal(result.code, 0, result.stderr);
  for (const rel of Object.keys(tree)) {
    assert.deepEqual(await Deno.readFile(join(fx.local, "copy", rel)), await readRemote(fx, `src/${rel}`), rel);
  }
  // Fetched whole, the three chunks around the edits would be some 200 KB (16-256 KiB each).
  assert.ok(proxy.down < 3 * 12_000, `${proxy.down} bytes fetched for three edits of 4 KiB`);
  const sent = fx.server.stats.snapshot().bytesOut - before;
  assert.ok(sent > 0 && sent <= proxy.down, `the server counted ${sent} body bytes, the wire ${proxy.down}`);
});

Deno.test("push: two pushes of the same tree at once end with every file whole", async () => {
  await using fx = await startServer();
  const src = join(fx.local, "src");
  await writeTree(src, {
    ...TREE,
    "big/1.bin": { bytes: 2_000_000, mtime: Date.UTC(2020, 0, 1) },
    "big/2.bin": { bytes: 1_500_000, mtime: Date.UTC(2020, 0, 2) },
  });
  const results = await Promise.all([dfos(fx, ["push", "src"]), dfos(fx, ["push", "src"])]);
  for (const result of results) assert.equal(result.code, 0, result.stderr);
  for (const rel of [...Object.keys(TREE), "big/1.bin", "big/2.bin"]) {
    assert.deepEqual(await readRemote(fx, `src/${rel}`), await Deno.readFile(join(src, rel)), rel);
  }
});

async function* walkFiles(dir: string): AsyncGenerator<string> {
  for await (const entry of Deno.readDir(dir)) {
    const path = join(dir, entry.name);
    if (entry.isDirectory) yield* walkFiles(path);
    else if (entry.isFile) yield path;
  }
}

/** Writes `size` seeded bytes to `path` (its folders made) and sets its mtime. */
async function seededFile(path: string, size: number, seed: number, mtime: number): Promise<void> {
  await Deno.mkdir(dirname(path), { recursive: true });
  await Deno.writeFile(path, seededBytes(size, seed));
  await Deno.utime(path, new Date(mtime), new Date(mtime));
}

Deno.test("push: --checksum sends a file changed in place with its size and mtime kept; without it, not", async () => {
  await using fx = await startServer();
  const src = join(fx.local, "src");
  await writeTree(src);
  assert.equal((await dfos(fx, ["push", "src"])).code, 0);
  const path = join(src, "a/one.bin");
  const bytes = await Deno.readFile(path);
  bytes[35_000] ^= 0xff;
  await Deno.writeFile(path, bytes);
  await Deno.utime(path, new Date(TREE["a/one.bin"].mtime), new Date(TREE["a/one.bin"].mtime));
  const plain = jsonLines((await dfos(fx, ["push", "src", "--json"])).stdout).pop()!;
  assert.equal(plain.sent, 0, "size and mtime match: not read");
  const checked = await dfos(fx, ["push", "src", "--checksum", "--json"]);
  assert.equal(checked.code, 0, checked.stderr);
  const lines = jsonLines(checked.stdout);
  assert.deepEqual(lines.filter((line) => line.action === "send").map((line) => line.name), ["src/a/one.bin"]);
  assert.deepEqual(await readRemote(fx, "src/a/one.bin"), bytes);
});

Deno.test("push: killed part-way, it leaves each file whole or absent, and running it again finishes", async () => {
  await using fx = await startServer();
  const src = join(fx.local, "src");
  const tree: Record<string, { bytes: number; mtime: number }> = {};
  for (let i = 0; i < 12; i++) tree[`f/${i}.bin`] = { bytes: 1_000_000 + i, mtime: Date.UTC(2020, 0, 1 + i) };
  await writeTree(src, tree);
  // Held part-way by the proxy: some files are stored, the rest never arrives until the client is killed.
  await using proxy = new CountingProxy(fx.port);
  proxy.gate = { direction: "up", after: 4_500_000 };
  const child = spawnCli(["push", "src"], {
    env: { ...fx.envFor("alice"), DFOS_SERVER: proxy.address, XDG_STATE_HOME: join(fx.dir, "state") },
    cwd: fx.local,
  });
  await child.stdin.close();
  await waitFor(
    async () => (await listDir(join(fx.root, "alice", "src", "f"))).some((name) => name.endsWith(".bin")),
    "a first file",
    20_000,
  );
  await waitFor(() => proxy.up >= 4_500_000, "the push to be held", 20_000);
  child.kill("SIGKILL");
  await child.output();
  for (const name of await listDir(join(fx.root, "alice", "src", "f"))) {
    if (!name.endsWith(".bin")) continue;
    assert.deepEqual(await readRemote(fx, `src/f/${name}`), await Deno.readFile(join(src, "f", name)), name);
  }
  // The source changes between the tries: the last file (not sent yet) and the first (sent, or part-way).
  await Deno.writeFile(join(src, "f", "11.bin"), seededBytes(900_000, 77));
  await Deno.writeFile(join(src, "f", "0.bin"), seededBytes(1_100_000, 78));
  const again = await dfos(fx, ["push", "src"]);
  assert.equal(again.code, 0, again.stderr);
  for (const rel of Object.keys(tree)) {
    assert.deepEqual(await readRemote(fx, `src/${rel}`), await Deno.readFile(join(src, rel)), rel);
  }
});

Deno.test("push: on a terminal a progress line shows files, bytes, rate and ETA", async () => {
  await using fx = await startServer();
  await writeTree(join(fx.local, "src"));
  const { code, screen } = await runOnTerminal(["push", "src"], {
    env: { ...fx.envFor("alice"), XDG_STATE_HOME: join(fx.dir, "state") },
    cwd: fx.local,
  });
  assert.equal(code, 0, screen);
  assert.match(screen, /files \d+\/4 +[\d.]+ (B|KiB) \/ 361\.3 KiB +[\d.]+ [KMG]?i?B\/s +ETA /);
  assert.match(screen, /push: 4 sent/);
});

Deno.test("pull: killed part-way, it leaves each file whole or absent, and running it again finishes", async () => {
  await using fx = await startServer();
  const files: Record<string, Uint8Array> = {};
  for (let i = 0; i < 12; i++) {
    files[`f/${i}.bin`] = seededBytes(1_000_000 + i, 100 + i);
    await storeFile(fx, `src/f/${i}.bin`, files[`f/${i}.bin`]);
  }
  // Held part-way by the proxy: some files arrive, the rest never does until the client is killed.
  await using proxy = new CountingProxy(fx.port);
  proxy.gate = { direction: "down", after: 4_500_000 };
  const child = spawnCli(["pull", "src", "copy"], {
    env: { ...fx.envFor("alice"), DFOS_SERVER: proxy.address, XDG_STATE_HOME: join(fx.dir, "state") },
    cwd: fx.local,
  });
  await child.stdin.close();
  const folder = join(fx.local, "copy", "f");
  await waitFor(async () => (await listDir(folder)).some((name) => /^\d+\.bin$/.test(name)), "a first file", 20_000);
  await waitFor(() => proxy.down >= 4_500_000, "the pull to be held", 20_000);
  child.kill("SIGKILL");
  await child.output();
  for (const name of await listDir(folder)) {
    if (/^\d+\.bin$/.test(name)) assert.deepEqual(await Deno.readFile(join(folder, name)), files[`f/${name}`], name);
  }
  // The server's side changes between the tries: a file pulled already (or part-way) and one not yet.
  files["f/0.bin"] = seededBytes(1_100_000, 79);
  files["f/11.bin"] = seededBytes(900_000, 80);
  await storeFile(fx, "src/f/0.bin", files["f/0.bin"]);
  await storeFile(fx, "src/f/11.bin", files["f/11.bin"]);
  const again = await dfos(fx, ["pull", "src", "copy", "--delete"]);
  assert.equal(again.code, 0, again.stderr);
  for (const [rel, bytes] of Object.entries(files)) {
    assert.deepEqual(await Deno.readFile(join(fx.local, "copy", rel)), bytes, rel);
  }
  assert.deepEqual(await listDir(folder), Object.keys(files).map((rel) => rel.slice(2)).sort());
});
