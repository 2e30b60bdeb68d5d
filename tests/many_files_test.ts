/**
 * End-to-end tests of the many-file commands and the new requests (issue 11,
 * items 4 and 5): put of several files into a folder and the two-argument
 * rule, get of several names and of a folder, rm -r, mv, stat, and get
 * interrupted or to a special file. The real CLI as a subprocess against a
 * real server on port 0.
 *
 * @module
 */

import { deepStrictEqual, match, ok, strictEqual } from "node:assert/strict";
import { join } from "node:path";
import { DfosClient } from "../client/connection.ts";
import { DfosError, Status } from "../shared/status.ts";
import {
  type CliResult,
  type Fixture,
  listDir,
  MAIN,
  randomBytes,
  runCli,
  sha256,
  spawnCli,
  startServer,
  storeFile,
  text,
  USERS,
  waitFor,
} from "./_fixture.ts";

function assertOk(result: CliResult, what: string): void {
  strictEqual(result.code, 0, `${what}: exit code ${result.code}, stderr: ${result.stderr}`);
}

/** The user's stored files, as paths under their folder (no `.dfos-*`). */
async function stored(fx: Fixture, user = "alice"): Promise<string[]> {
  const names: string[] = [];
  async function walk(dir: string, prefix: string): Promise<void> {
    for await (const entry of Deno.readDir(dir)) {
      if (entry.name.startsWith(".dfos-")) continue;
      if (entry.isDirectory) await walk(join(dir, entry.name), `${prefix}${entry.name}/`);
      else names.push(prefix + entry.name);
    }
  }
  await walk(join(fx.root, user), "").catch((error) => {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  });
  return names.sort();
}

Deno.test("dfos put a.pdf b.pdf with both local (a glob's two matches) is refused and uploads nothing", async () => {
  await using fx = await startServer();
  await Deno.writeTextFile(join(fx.local, "a.pdf"), "first");
  await Deno.writeTextFile(join(fx.local, "b.pdf"), "second");
  const result = await runCli(["put", "a.pdf", "b.pdf"], { env: fx.envFor("alice"), cwd: fx.local });
  strictEqual(result.code, 2, result.stderr);
  match(result.stderr, /"b\.pdf" .*local path too/);
  match(result.stderr, /dfos put a\.pdf --as b\.pdf/);
  deepStrictEqual(await stored(fx), []);
});

Deno.test("dfos put LOCAL --as REMOTE stores the one file under REMOTE even where REMOTE is a local path", async () => {
  await using fx = await startServer();
  await Deno.writeTextFile(join(fx.local, "a.pdf"), "first");
  await Deno.writeTextFile(join(fx.local, "b.pdf"), "second");
  const env = fx.envFor("alice");
  const stored1 = await runCli(["put", "a.pdf", "--as", "b.pdf"], { env, cwd: fx.local });
  strictEqual(stored1.code, 0, stored1.stderr);
  strictEqual(await Deno.readTextFile(join(fx.root, "alice", "b.pdf")), "first");
  deepStrictEqual(await stored(fx), ["b.pdf"]);
  const two = await runCli(["put", "a.pdf", "b.pdf", "--as", "c.pdf"], { env, cwd: fx.local });
  strictEqual(two.code, 2, two.stderr);
  match(two.stderr, /--as NAME takes one LOCAL/);
});

Deno.test("dfos put of several files into a remote folder, or the top with /, over one connection", async () => {
  await using fx = await startServer();
  for (const name of ["a.pdf", "b.pdf", "c.txt"]) await Deno.writeTextFile(join(fx.local, name), name);
  const env = fx.envFor("alice");
  assertOk(await runCli(["put", "a.pdf", "b.pdf", "c.txt", "docs/"], { env, cwd: fx.local }), "put into docs/");
  assertOk(await runCli(["put", "a.pdf", "b.pdf", "/"], { env, cwd: fx.local }), "put into /");
  deepStrictEqual(await stored(fx), ["a.pdf", "b.pdf", "docs/a.pdf", "docs/b.pdf", "docs/c.txt"]);
  strictEqual(await Deno.readTextFile(join(fx.root, "alice", "docs", "b.pdf")), "b.pdf");
  // Three or more arguments without a folder last: a usage error, nothing sent.
  const three = await runCli(["put", "a.pdf", "b.pdf", "c.txt"], { env, cwd: fx.local });
  strictEqual(three.code, 2);
  match(three.stderr, /remote folder last/);
  // The operations counted: one connection per command.
  strictEqual(fx.server.stats.snapshot().connections, 2);
});

Deno.test("dfos get of several names into a folder, and get -r of a remote folder", async () => {
  await using fx = await startServer();
  const files: Record<string, Uint8Array> = {
    "photos/a.jpg": randomBytes(3000),
    "photos/trip/b.jpg": randomBytes(5),
    "photos2/c.jpg": randomBytes(7),
    "notes.txt": randomBytes(11),
  };
  for (const [name, bytes] of Object.entries(files)) await storeFile(fx, name, bytes);
  const env = fx.envFor("alice");
  const out = join(fx.local, "out");
  await Deno.mkdir(out);
  assertOk(await runCli(["get", "photos/a.jpg", "notes.txt", out], { env }), "get many");
  deepStrictEqual(await listDir(out), ["a.jpg", "notes.txt"]);
  strictEqual(sha256(await Deno.readFile(join(out, "a.jpg"))), sha256(files["photos/a.jpg"]));
  const missingDir = await runCli(["get", "photos/a.jpg", "notes.txt", join(fx.local, "nope")], { env });
  strictEqual(missingDir.code, 2);
  assertOk(await runCli(["get", "-r", "photos", fx.local], { env }), "get -r");
  deepStrictEqual(await listDir(join(fx.local, "photos")), ["a.jpg", "trip"]);
  strictEqual(
    sha256(await Deno.readFile(join(fx.local, "photos", "trip", "b.jpg"))),
    sha256(files["photos/trip/b.jpg"]),
  );
  strictEqual((await runCli(["get", "-r", "nothing", fx.local], { env })).code, 4);
});

Deno.test("dfos rm -r deletes a folder's files with --force, and refuses on a pipe without it", async () => {
  await using fx = await startServer();
  for (const name of ["old/a", "old/deep/b", "older/c", "keep"]) await storeFile(fx, name, new Uint8Array([1]));
  const env = fx.envFor("alice");
  const refused = await runCli(["rm", "-r", "old"], { env, stdin: "y\n" });
  strictEqual(refused.code, 2);
  match(refused.stderr, /--force/);
  deepStrictEqual(await stored(fx), ["keep", "old/a", "old/deep/b", "older/c"]);
  assertOk(await runCli(["rm", "-r", "--force", "old/"], { env }), "rm -r --force");
  deepStrictEqual(await stored(fx), ["keep", "older/c"]);
  deepStrictEqual(await listDir(join(fx.root, "alice")), [".dfos-partial", "keep", "older"]);
  strictEqual((await runCli(["rm", "-r", "--force", "old"], { env })).code, 4);
});

Deno.test("dfos mv renames a file and a folder prefix, and refuses an existing target or a missing name", async () => {
  await using fx = await startServer();
  for (const name of ["a.txt", "dir/x", "dir/sub/y", "taken"]) {
    await storeFile(fx, name, new TextEncoder().encode(name));
  }
  const env = fx.envFor("alice");
  assertOk(await runCli(["mv", "a.txt", "b/c.txt"], { env }), "mv file");
  assertOk(await runCli(["mv", "dir", "moved/dir2"], { env }), "mv folder");
  deepStrictEqual(await stored(fx), ["b/c.txt", "moved/dir2/sub/y", "moved/dir2/x", "taken"]);
  strictEqual(await Deno.readTextFile(join(fx.root, "alice", "moved", "dir2", "sub", "y")), "dir/sub/y");
  // The emptied folder went with the move.
  deepStrictEqual(await listDir(join(fx.root, "alice")), [".dfos-partial", "b", "moved", "taken"]);
  const onto = await runCli(["mv", "b/c.txt", "taken"], { env });
  strictEqual(onto.code, 1);
  match(onto.stderr, /Cannot move to "taken": it exists/);
  strictEqual(await Deno.readTextFile(join(fx.root, "alice", "taken")), "taken");
  strictEqual((await runCli(["mv", "missing", "other"], { env })).code, 4);
  strictEqual((await runCli(["mv", "moved", "moved/inside"], { env })).code, 1);
  deepStrictEqual(await stored(fx), ["b/c.txt", "moved/dir2/sub/y", "moved/dir2/x", "taken"]);
});

Deno.test("mv out of the user's space, by .. or through a symbolic link, is refused", async () => {
  await using fx = await startServer();
  await storeFile(fx, "a.txt", new TextEncoder().encode("secret"));
  const outside = join(fx.dir, "outside");
  await Deno.mkdir(outside);
  await Deno.writeTextFile(join(outside, "o.txt"), "outside");
  await Deno.symlink(outside, join(fx.root, "alice", "link"));
  const env = fx.envFor("alice");
  const dots = await runCli(["mv", "a.txt", "../bob/a.txt"], { env });
  strictEqual(dots.code, 2);
  const client = await DfosClient.connect({ server: fx.address, user: "alice", password: USERS.alice });
  try {
    for (
      const [from, to, code] of [
        ["a.txt", "../bob/a.txt", Status.BAD_NAME],
        ["a.txt", "link/a.txt", Status.FORBIDDEN],
        ["link/o.txt", "o.txt", Status.FORBIDDEN],
        ["link", "here", Status.FORBIDDEN],
      ] as const
    ) {
      const error = await client.move(from, to).then(() => null, (error) => error);
      ok(error instanceof DfosError, `${from} -> ${to}: ${error}`);
      strictEqual(error.code, code, `${from} -> ${to}: ${error.message}`);
    }
  } finally {
    await client.close();
  }
  deepStrictEqual(await listDir(outside), ["o.txt"]);
  deepStrictEqual(await listDir(join(fx.root, "alice")), [".dfos-partial", "a.txt", "link"]);
});

Deno.test("dfos stat shows size and mtime, and with --sha256 the digest the server computes", async () => {
  await using fx = await startServer();
  const bytes = randomBytes(3 * 1024 * 1024 + 5);
  await storeFile(fx, "big.bin", bytes);
  const env = fx.envFor("alice");
  const plain = await runCli(["stat", "big.bin"], { env });
  assertOk(plain, "stat");
  match(
    text(plain.stdout),
    new RegExp(`^name: +big\\.bin\nsize: +${bytes.length}\nmtime: +\\d{4}-\\d\\d-\\d\\d [\\d:.]+ UTC\n$`),
  );
  const digest = await runCli(["stat", "--sha256", "big.bin"], { env });
  assertOk(digest, "stat --sha256");
  match(text(digest.stdout), new RegExp(`\nsha256: ${sha256(bytes)}\n$`));
  strictEqual((await runCli(["stat", "missing"], { env })).code, 4);
});

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  Deno.test(`dfos get interrupted by ${signal} removes its temporary file and exits ${signal === "SIGINT" ? 130 : 143}`, async () => {
    await using fx = await startServer();
    const client = await DfosClient.connect({ server: fx.address, user: "alice", password: USERS.alice });
    try {
      // A large body, sent in pieces: the download is under way long enough to be interrupted.
      const piece = randomBytes(1024 * 1024);
      await client.put(
        "large.bin",
        (async function* () {
          for (let i = 0; i < 400; i++) yield piece;
        })(),
        { size: 400 * piece.length },
      );
    } finally {
      await client.close();
    }
    // The plain get (a resumable one keeps its partial: tests/resume_test.ts).
    const child = spawnCli(["get", "--no-resume", "large.bin", join(fx.local, "large.bin")], {
      env: fx.envFor("alice"),
    });
    await child.stdin.close();
    await waitFor(
      async () => (await listDir(fx.local)).some((name) => name.endsWith(".dfos-part")),
      "a .dfos-part",
      20_000,
    );
    child.kill(signal);
    const { code } = await child.output();
    strictEqual(code, signal === "SIGINT" ? 130 : 143);
    deepStrictEqual(await listDir(fx.local), []);
  });
}

Deno.test("dfos get to /dev/null and to a FIFO writes to it directly", async () => {
  await using fx = await startServer();
  const bytes = randomBytes(200_000);
  await storeFile(fx, "f.bin", bytes);
  const env = fx.envFor("alice");
  assertOk(await runCli(["get", "f.bin", "/dev/null"], { env }), "get to /dev/null");
  const fifo = join(fx.local, "pipe");
  const mkfifo = await new Deno.Command("mkfifo", { args: [fifo] }).output();
  ok(mkfifo.success);
  const reading = (async () => {
    const file = await Deno.open(fifo, { read: true });
    const chunks: Uint8Array[] = [];
    for await (const chunk of file.readable) chunks.push(chunk);
    const all = new Uint8Array(chunks.reduce((sum, chunk) => sum + chunk.length, 0));
    let at = 0;
    for (const chunk of chunks) {
      all.set(chunk, at);
      at += chunk.length;
    }
    return all;
  })();
  assertOk(await runCli(["get", "f.bin", fifo], { env }), "get to a FIFO");
  strictEqual(sha256(await reading), sha256(bytes));
  deepStrictEqual(await listDir(fx.local), ["pipe"]);
});

/** Runs `dfos ARGS` under a pseudo-terminal (util-linux `script`); types `answer` once `prompt` has appeared. */
async function onTerminal(args: string[], env: Record<string, string>, prompt: string, answer: string) {
  const line = [Deno.execPath(), "run", "-A", MAIN, ...args].map((word) => `'${word}'`).join(" ");
  const child = new Deno.Command("script", {
    args: ["-qec", line, "/dev/null"],
    env: { ...env, PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin", RUST_BACKTRACE: "0", NO_COLOR: "1", TERM: "dumb" },
    clearEnv: true,
    stdin: "piped",
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const writer = child.stdin.getWriter();
  const reader = child.stdout.getReader();
  const decoder = new TextDecoder();
  let screen = "";
  let typed = false;
  while (true) {
    const { value, done } = await reader.read();
    if (done) break;
    screen += decoder.decode(value, { stream: true });
    if (!typed && screen.includes(prompt)) {
      await writer.write(new TextEncoder().encode(`${answer}\r`));
      typed = true;
    }
  }
  await writer.close().catch(() => {});
  return { code: (await child.status).code, screen };
}

Deno.test("dfos rm -r on a terminal says how many files and deletes only on yes", async () => {
  await using fx = await startServer();
  for (const name of ["old/a", "old/deep/b", "keep"]) await storeFile(fx, name, new Uint8Array([1]));
  const env = fx.envFor("alice");
  const no = await onTerminal(["rm", "-r", "old"], env, "[y/N]", "n");
  strictEqual(no.code, 0, no.screen);
  match(no.screen, /Delete 2 files under "old"\? \[y\/N\]/);
  deepStrictEqual(await stored(fx), ["keep", "old/a", "old/deep/b"]);
  const yes = await onTerminal(["rm", "-r", "old"], env, "[y/N]", "y");
  strictEqual(yes.code, 0, yes.screen);
  deepStrictEqual(await stored(fx), ["keep"]);
});

Deno.test("mv leaves file bytes alone but counts the folders it makes and removes against the quota", async () => {
  await using fx = await startServer({ quotaBytes: 3 * 4096, quotaEntries: 100 });
  await storeFile(fx, "a.txt", new Uint8Array(10));
  const client = await DfosClient.connect({ server: fx.address, user: "alice", password: USERS.alice });
  const put = (name: string) =>
    client.put(
      name,
      (async function* () {
        yield new Uint8Array(10);
      })(),
      { size: 10 },
    ).then(() => null, (error) => error);
  try {
    // 1 block used: three new folders would make 4 of 3.
    const deep = await client.move("a.txt", "x/y/z/a.txt").then(() => null, (error) => error);
    ok(deep instanceof DfosError && deep.code === Status.TOO_LARGE, String(deep));
    deepStrictEqual(await stored(fx), ["a.txt"]);
    deepStrictEqual(await listDir(join(fx.root, "alice")), [".dfos-partial", "a.txt"]);
    strictEqual((await client.move("a.txt", "d1/d2/a.txt")).files, 1); // 3 blocks of 3
    strictEqual((await put("b.txt"))?.code, Status.TOO_LARGE);
    await client.move("d1/d2/a.txt", "a.txt"); // its two folders pruned: 1 block of 3
    strictEqual(await put("b.txt"), null);
  } finally {
    await client.close();
  }
});
