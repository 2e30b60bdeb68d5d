/**
 * `dfos shell` in batch mode (`-b FILE`, or commands on standard input when
 * it is not a terminal), run as a subprocess: each line echoed after the
 * prompt, the first failure stops it with its exit code unless the line
 * starts with "-", remote names read against `cd`'s folder, and a
 * connection the server closed for idleness made again without asking.
 * `dfos` alone on a pipe still prints the usage, exit code 2.
 *
 * @module
 */

import { deepEqual, equal, match, ok } from "node:assert/strict";
import { join } from "node:path";
import { delay, runCli, spawnCli, startServer, text } from "./_fixture.ts";

Deno.test("dfos shell batch: a missing file stops it with exit code 4, as the command line", async () => {
  await using fx = await startServer();
  await Deno.writeTextFile(join(fx.local, "a.txt"), "alpha");
  const run = await runCli(["shell"], {
    env: fx.envFor("alice"),
    cwd: fx.local,
    stdin: "put a.txt\nget missing.txt\nput a.txt copy.txt\n",
  });
  equal(run.code, 4, run.stderr);
  const out = text(run.stdout);
  match(out, new RegExp(`alice@${fx.address.replaceAll(".", "\\.")}:/> put a\\.txt\n`));
  match(out, /:\/> get missing\.txt\n/);
  ok(!out.includes("copy.txt"), "the line after the failure did not run");
  match(run.stderr, /dfos get: Cannot find "missing\.txt"/);
  match(run.stderr, /Stopped at line 2 \("get missing\.txt"\), exit code 4/);
  deepEqual((await listUser(fx.root)).sort(), ["a.txt"]);
});

Deno.test("dfos shell batch: a line starting with - goes on after a failure; -b reads a file; cd and .. work", async () => {
  await using fx = await startServer();
  await Deno.writeTextFile(join(fx.local, "a.txt"), "alpha");
  const batch = join(fx.dir, "batch.txt");
  await Deno.writeTextFile(
    batch,
    "# a comment\nput a.txt docs/\n-get missing.txt\ncd docs\npwd\nmv a.txt ../b.txt\ncd ..\nls\n-cd ../..\nstat b.txt\n",
  );
  const run = await runCli(["shell", "-b", batch], { env: fx.envFor("alice"), cwd: fx.local });
  equal(run.code, 0, run.stderr);
  const out = text(run.stdout);
  match(out, /:\/docs> pwd\n\/docs\n/);
  match(out, /^\s*5 {2}\S+ \S+ UTC {2}b\.txt$/m);
  match(out, /name: {3}b\.txt\n/);
  match(run.stderr, /dfos get: Cannot find "missing\.txt"/);
  match(run.stderr, /dfos cd: Cannot use "\.\.\/\.\.": it goes above the top folder/);
  deepEqual(await listUser(fx.root), ["b.txt"]);
});

Deno.test("dfos shell batch: put LOCAL REMOTE in a remote folder checks REMOTE as typed, not as a local path under it", async () => {
  await using fx = await startServer();
  await Deno.writeTextFile(join(fx.local, "a.txt"), "alpha");
  // A local docs/b.txt: the remote name docs/b.txt, read against the shell's folder, is also a local path; b.txt is not.
  await Deno.mkdir(join(fx.local, "docs"));
  await Deno.writeTextFile(join(fx.local, "docs", "b.txt"), "local");
  await Deno.writeTextFile(join(fx.local, "c.txt"), "gamma");
  const run = await runCli(["shell"], {
    env: fx.envFor("alice"),
    cwd: fx.local,
    stdin: "put a.txt docs/first.txt\ncd docs\nput a.txt b.txt\nput a.txt --as ../top.txt\n-put a.txt c.txt\n",
  });
  equal(run.code, 0, run.stderr);
  equal(await Deno.readTextFile(join(fx.root, "alice", "docs", "b.txt")), "alpha");
  equal(await Deno.readTextFile(join(fx.root, "alice", "top.txt")), "alpha");
  // c.txt is a local path as typed: refused as on the command line.
  match(run.stderr, /"c\.txt" is a remote name or a second file to upload: it is a local path too/);
  deepEqual(await listUser(fx.root), ["docs/", "top.txt"]);
});

Deno.test("dfos shell batch: a connection closed by the server's idle timeout is made again without asking", async () => {
  await using fx = await startServer({ idleTimeoutMs: 300 });
  await Deno.writeTextFile(join(fx.local, "a.txt"), "alpha");
  const child = spawnCli(["shell"], { env: fx.envFor("alice"), cwd: fx.local });
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode("put a.txt\n"));
  await delay(1_200); // well past the idle timeout
  await writer.write(new TextEncoder().encode("stat a.txt\n"));
  await writer.close();
  const { code, stdout, stderr } = await child.output();
  const errors = new TextDecoder().decode(stderr);
  equal(code, 0, errors);
  match(text(stdout), /size: {3}5\n/);
  match(errors, /The server closed the connection; logging in again/);
  equal(fx.server.stats.snapshot().connections, 2);
});

Deno.test("dfos alone on a pipe prints the usage, exit code 2", async () => {
  const run = await runCli([], { stdin: "" });
  equal(run.code, 2);
  match(text(run.stdout), /^Usage: dfos COMMAND/);
  match(text(run.stdout), /shell {3}log in once/);
});

/** alice's files on the server (top level, no hidden ones). */
async function listUser(root: string): Promise<string[]> {
  const names: string[] = [];
  for await (const entry of Deno.readDir(join(root, "alice"))) {
    if (!entry.name.startsWith(".")) names.push(entry.isDirectory ? `${entry.name}/` : entry.name);
  }
  return names.sort();
}
