/**
 * The small things a person meets every day (issue 11, item 9), each as the
 * user meets it: `dfos help COMMAND`, `peek --bytes 1K`, `get ... - | head`,
 * `get` asking before it replaces a local file, an empty `ls`, times marked
 * UTC, and `passwd`'s user names and the sample users file. The CLI runs as
 * a subprocess against a real server; where a terminal matters, under a
 * pseudo-terminal from util-linux `script` (as in tests/terminal_test.ts).
 * The TLS explanations are in tests/tls_test.ts, the README's TLS recipe in
 * tests/tls_recipe_test.ts.
 *
 * @module
 */

import { deepStrictEqual, match, ok, strictEqual } from "node:assert/strict";
import { join } from "node:path";
import { SAMPLE_MARK } from "../server/passwd_command.ts";
import { UserFile, usersFileUserProblem } from "../server/users.ts";
import { type Answer, runOnTerminal } from "./_terminal.ts";
import { PROJECT_DIR, randomBytes, runCli, spawnCli, startServer, text } from "./_fixture.ts";

/**
 * Runs `dfos ARGS` under a pseudo-terminal (standard input and output are a
 * terminal), typing each answer once its prompt has appeared.
 *
 * @returns The exit code and what the terminal showed.
 */
async function onTerminal(args: string[], env: Record<string, string>, answers: Answer[] = [], cwd?: string) {
  const { code, screen } = await runOnTerminal(args, { env, answers, cwd });
  return { code, screen: screen.replaceAll("\r\n", "\n") };
}

Deno.test("dfos help COMMAND prints what COMMAND --help prints, and dfos help what dfos --help prints", async () => {
  for (const name of ["put", "get", "passwd", "serve", "ls"]) {
    const help = await runCli(["help", name]);
    const flag = await runCli([name, "--help"]);
    strictEqual(help.code, 0, help.stderr);
    strictEqual(flag.code, 0, flag.stderr);
    strictEqual(text(help.stdout), text(flag.stdout), name);
    match(text(help.stdout), new RegExp(`^Usage: dfos ${name} `));
  }
  const help = await runCli(["help"]);
  const flag = await runCli(["--help"]);
  strictEqual(help.code, 0);
  strictEqual(text(help.stdout), text(flag.stdout));
  match(text(help.stdout), /dfos help COMMAND/);
  const unknown = await runCli(["help", "nope"]);
  strictEqual(unknown.code, 2);
  match(unknown.stderr, /^dfos: unknown command "nope"/);
  const version = await runCli(["--version"]);
  strictEqual(version.code, 0);
  match(text(version.stdout), /^dfos \d+\.\d+\.\d+\n$/);
});

Deno.test("dfos peek --bytes takes K and M (powers of 1024) and plain numbers, and refuses anything else", async () => {
  await using fx = await startServer();
  const body = randomBytes(3000);
  await Deno.writeFile(join(fx.local, "data.bin"), body);
  strictEqual((await runCli(["put", join(fx.local, "data.bin")], { env: fx.envFor("alice") })).code, 0);
  const cases: [string, number][] = [["1K", 1024], ["1k", 1024], ["2KiB", 2048], ["1.5K", 1536], ["100", 100], [
    "0",
    0,
  ], ["1M", 3000]];
  for (const [bytes, length] of cases) {
    const result = await runCli(["peek", "data.bin", "--bytes", bytes], { env: fx.envFor("alice") });
    strictEqual(result.code, 0, `${bytes}: ${result.stderr}`);
    deepStrictEqual(result.stdout, body.subarray(0, length), bytes);
  }
  for (const bytes of ["1x", "K", "1.5", "lots"]) {
    const result = await runCli(["peek", "data.bin", "-n", bytes], { env: fx.envFor("alice") });
    strictEqual(result.code, 2, `${bytes}: ${result.stderr}`);
    match(
      result.stderr,
      new RegExp(`^dfos peek: --bytes takes a size in bytes .*, not "${bytes.replace(".", "\\.")}"`),
    );
  }
});

/**
 * Runs `dfos ARGS` with standard output read by a reader that takes one
 * chunk and closes its end, as `| head` does.
 */
async function readOneChunkAndClose(args: string[], env: Record<string, string>) {
  const child = spawnCli(args, { env });
  await child.stdin.close();
  const reader = child.stdout.getReader();
  const first = await reader.read();
  await reader.cancel();
  const [status, stderr] = await Promise.all([child.status, new Response(child.stderr).text()]);
  return { code: status.code, stderr, first: first.value?.length ?? 0 };
}

Deno.test("get -, peek and ls end quietly with 0 when the reader of their output leaves early (| head)", async () => {
  await using fx = await startServer();
  await Deno.writeFile(join(fx.local, "big.bin"), randomBytes(8 * 1024 * 1024));
  strictEqual((await runCli(["put", join(fx.local, "big.bin")], { env: fx.envFor("alice") })).code, 0);
  // Many entries, more than a pipe holds: the listing's output cannot be written in one go before the reader leaves.
  const folder = join(fx.root, "alice", "many");
  await Deno.mkdir(folder, { recursive: true });
  for (let i = 0; i < 2000; i++) await Deno.writeTextFile(join(folder, `${"n".repeat(100)}-${i}`), "x");
  for (const args of [["get", "big.bin", "-"], ["peek", "big.bin", "--bytes", "8M"], ["ls"]]) {
    const result = await readOneChunkAndClose(args, fx.envFor("alice"));
    ok(result.first > 0, `${args[0]} wrote nothing`);
    strictEqual(result.stderr, "", `${args.join(" ")} said something`);
    strictEqual(result.code, 0, args.join(" "));
  }
});

Deno.test("get on a terminal asks before it replaces a local file; --force and a non-terminal replace", async () => {
  await using fx = await startServer();
  const env = fx.envFor("alice");
  for (const name of ["x", "y"]) {
    await Deno.writeTextFile(join(fx.local, name), `new ${name}`);
    strictEqual((await runCli(["put", join(fx.local, name)], { env })).code, 0);
    await Deno.writeTextFile(join(fx.local, name), `old ${name}`);
  }
  const read = (name: string) => Deno.readTextFile(join(fx.local, name));

  const no = await onTerminal(["get", "x"], env, [{ after: "Replace ./x? [y/N] ", type: "n\r" }], fx.local);
  strictEqual(no.code, 0, no.screen);
  match(no.screen, /dfos get: Kept \.\/x: not replaced/);
  strictEqual(await read("x"), "old x");

  const yes = await onTerminal(["get", "x"], env, [{ after: "Replace ./x? [y/N] ", type: "y\r" }], fx.local);
  strictEqual(yes.code, 0, yes.screen);
  strictEqual(await read("x"), "new x");

  // Many files: one question per file that exists, in order; a missing one is not asked about.
  await Deno.writeTextFile(join(fx.local, "x"), "old x");
  await Deno.mkdir(join(fx.local, "sub"));
  await Deno.writeTextFile(join(fx.local, "sub", "x"), "old x");
  await Deno.writeTextFile(join(fx.local, "sub", "y"), "old y");
  const many = await onTerminal(["get", "x", "y", "sub"], env, [
    { after: "Replace ./sub/x? [y/N] ", type: "y\r" },
    { after: "Replace ./sub/y? [y/N] ", type: "\r" },
  ], fx.local);
  strictEqual(many.code, 0, many.screen);
  strictEqual(await read("sub/x"), "new x");
  strictEqual(await read("sub/y"), "old y");

  // -r: the same question for each file of the folder that exists.
  await Deno.writeTextFile(join(fx.local, "r"), "new r");
  strictEqual((await runCli(["put", join(fx.local, "r"), "dir/"], { env })).code, 0);
  await Deno.mkdir(join(fx.local, "dir"));
  await Deno.writeTextFile(join(fx.local, "dir", "r"), "old r");
  const recursive = await onTerminal(["get", "-r", "dir"], env, [
    { after: "Replace ./dir/r? [y/N] ", type: "y\r" },
  ], fx.local);
  strictEqual(recursive.code, 0, recursive.screen);
  strictEqual(await read("dir/r"), "new r");

  await Deno.writeTextFile(join(fx.local, "x"), "old x");
  const forced = await onTerminal(["get", "x", "--force"], env, [], fx.local);
  strictEqual(forced.code, 0, forced.screen);
  ok(!forced.screen.includes("Replace"), forced.screen);
  strictEqual(await read("x"), "new x");

  // Not a terminal (a script): replaced without a question, as the usage says.
  await Deno.writeTextFile(join(fx.local, "y"), "old y");
  const piped = await runCli(["get", "y"], { env, cwd: fx.local });
  strictEqual(piped.code, 0, piped.stderr);
  strictEqual(piped.stderr, "");
  strictEqual(await read("y"), "new y");
  match(
    text((await runCli(["get", "--help"])).stdout),
    /when standard\ninput is not a terminal \(a script, a pipe\) it is replaced without a\nquestion/,
  );
});

Deno.test("an empty ls says so on a terminal and prints nothing on a pipe", async () => {
  await using fx = await startServer();
  const env = fx.envFor("alice");
  const all = await onTerminal(["ls"], env);
  strictEqual(all.code, 0, all.screen);
  match(all.screen, /^No files\n$/);
  const under = await onTerminal(["ls", "notes/"], env);
  strictEqual(under.code, 0, under.screen);
  strictEqual(under.screen, 'No files under "notes/"\n');
  const piped = await runCli(["ls"], { env });
  strictEqual(piped.code, 0, piped.stderr);
  strictEqual(piped.stdout.length, 0);
  strictEqual(text((await runCli(["ls", "--json"], { env })).stdout), "[]\n");
});

Deno.test("ls and stat mark their times as UTC, and agree", async () => {
  await using fx = await startServer();
  const env = fx.envFor("alice");
  strictEqual((await runCli(["put", "-", "a.txt"], { env, stdin: "hello" })).code, 0);
  const listed = text((await runCli(["ls"], { env })).stdout);
  const row = /^5 {2}(\d{4}-\d\d-\d\d \d\d:\d\d) UTC {2}a\.txt\n$/.exec(listed);
  ok(row !== null, listed);
  const shown = text((await runCli(["stat", "a.txt"], { env })).stdout);
  const mtime = /^mtime: {2}(\d{4}-\d\d-\d\d \d\d:\d\d):\d\d\.\d{3} UTC$/m.exec(shown);
  ok(mtime !== null, shown);
  strictEqual(mtime[1], row[1]);
  const stored = (await Deno.stat(join(fx.root, "alice", "a.txt"))).mtime!;
  strictEqual(row[1], stored.toISOString().slice(0, 16).replace("T", " "));
});

Deno.test("dfos passwd refuses a user name the users file would not give back, by the server's own rule", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dfos_test_" });
  try {
    const users = join(dir, "users.txt");
    await Deno.writeTextFile(users, "alice:apple\n");
    for (const user of ["#bob", " #bob", "a:b", ".x", "a/b"]) {
      const result = await runCli(["passwd", user, "--users", users], { env: { DFOS_PASSWORD: "x" } });
      strictEqual(result.code, 2, `${user}: ${result.stderr}`);
      match(result.stderr, /^dfos passwd: Cannot use ".*" as a user name: user name /, user);
      strictEqual(result.stderr.includes(usersFileUserProblem(user)!), true, result.stderr);
    }
    strictEqual(await Deno.readTextFile(users), "alice:apple\n", "the file is untouched");
    // The rule is the reader's: a line it would skip or read as a comment is a name passwd refuses, and the reverse.
    const names = ["#bob", " #bob", "bob", " bob", "b#b", ".x", "a/b"];
    await Deno.writeTextFile(users, names.map((name) => `${name}:pw\n`).join(""));
    const file = new UserFile(users);
    const count = await file.load();
    strictEqual(count, names.filter((name) => usersFileUserProblem(name) === undefined).length);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("dfos passwd edits the sample users file only when --users names it", async () => {
  const sample = await Deno.readTextFile(join(PROJECT_DIR, "id_passwd.txt"));
  ok(sample.split("\n").some((line) => line.startsWith(SAMPLE_MARK)), "the tracked sample carries the mark");
  const dir = await Deno.makeTempDir({ prefix: "dfos_test_" });
  try {
    const file = join(dir, "id_passwd.txt");
    await Deno.writeTextFile(file, sample);
    const refused = await runCli(["passwd", "carol"], { env: { DFOS_PASSWORD: "x" }, cwd: dir });
    strictEqual(refused.code, 2, refused.stderr);
    match(refused.stderr, /^dfos passwd: Cannot edit "id_passwd\.txt" without --users: it is the sample users file/);
    strictEqual(await Deno.readTextFile(file), sample, "the sample is untouched");
    const named = await runCli(["passwd", "carol", "--users", "id_passwd.txt"], {
      env: { DFOS_PASSWORD: "x" },
      cwd: dir,
    });
    strictEqual(named.code, 0, named.stderr);
    match(await Deno.readTextFile(file), /\ncarol:SCRAM-SHA-256\$/);
    // A users file of one's own (no mark) is the default's to edit.
    await Deno.writeTextFile(file, "alice:apple\n");
    const own = await runCli(["passwd", "carol"], { env: { DFOS_PASSWORD: "x" }, cwd: dir });
    strictEqual(own.code, 0, own.stderr);
    match(await Deno.readTextFile(file), /^alice:apple\ncarol:SCRAM-SHA-256\$/);
    match(text((await runCli(["passwd", "--help"])).stdout), /is edited only when --users names it/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
