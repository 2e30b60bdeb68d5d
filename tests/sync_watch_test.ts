/**
 * `dfos sync --watch` end to end: two watching clients (real command lines,
 * each with its own folder, state and host name) on one real `dfos serve`
 * subprocess, which is restarted in between; and runs killed part-way that
 * the next run finishes.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { delay, seededBytes, sha256File } from "./_common.ts";
import { CountingProxy } from "./_proxy.ts";
import { listDir, runCli, spawnCli, startServer, text, USERS, waitFor, watchServe } from "./_fixture.ts";

/** A `dfos serve` subprocess on a fixed port and root, so that it can be stopped and started again. */
class Server {
  readonly dir: string;
  port = 0;
  #child: Deno.ChildProcess | null = null;
  #ended: Promise<unknown> | null = null;

  constructor(dir: string) {
    this.dir = dir;
  }

  async start(): Promise<void> {
    const users = join(this.dir, "users.txt");
    await Deno.writeTextFile(users, Object.entries(USERS).map(([user, password]) => `${user}:${password}\n`).join(""));
    const flags = ["serve", "--host", "127.0.0.1", "--port", String(this.port), "--root", join(this.dir, "root")];
    const child = spawnCli([...flags, "--users", users, "--log", join(this.dir, "server.log")], { cwd: this.dir });
    await child.stdin.close();
    const watch = await watchServe(child);
    this.port = watch.port;
    this.#child = child;
    this.#ended = watch.ended;
  }

  async stop(): Promise<void> {
    this.#child?.kill("SIGTERM");
    await this.#ended;
    this.#child = null;
  }
}

interface Watcher {
  dir: string;
  env: Record<string, string>;
  child: Deno.ChildProcess;
  output: Promise<[string, string]>;
}

function startWatcher(name: string, base: string, port: number): Watcher {
  const dir = join(base, name);
  Deno.mkdirSync(dir, { recursive: true });
  const env = {
    DFOS_SERVER: `127.0.0.1:${port}`,
    DFOS_USER: "alice",
    DFOS_PASSWORD: USERS.alice,
    XDG_STATE_HOME: join(base, `state-${name}`),
    DFOS_HOST: `host${name}`,
  };
  const child = spawnCli(["sync", dir, "shared", "--watch"], { env });
  child.stdin.close();
  const output = Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text()]);
  return { dir, env, child, output };
}

async function stopWatcher(watcher: Watcher): Promise<{ code: number; stderr: string }> {
  watcher.child.kill("SIGINT");
  const [status, [, stderr]] = await Promise.all([watcher.child.status, watcher.output]);
  return { code: status.code, stderr };
}

async function arrives(dir: string, rel: string, content: string, what: string): Promise<void> {
  await waitFor(
    async () => (await Deno.readTextFile(join(dir, rel)).catch(() => null)) === content,
    what,
    10_000,
  );
}

Deno.test({
  name: "sync --watch: two clients converge within seconds of a change on either side, across a server restart",
  sanitizeResources: false, // the watchers' pipes are read to their end by their output promises
  async fn() {
    const base = await Deno.makeTempDir({ prefix: "dfos_watch_" });
    const server = new Server(base);
    await server.start();
    const a = startWatcher("A", base, server.port);
    const b = startWatcher("B", base, server.port);
    try {
      await delay(300); // both watching
      await Deno.writeTextFile(join(a.dir, "from-a.txt"), "hello from A");
      await arrives(b.dir, "from-a.txt", "hello from A", "A's new file in B");
      await Deno.writeTextFile(join(b.dir, "from-a.txt"), "B edited it");
      await arrives(a.dir, "from-a.txt", "B edited it", "B's edit in A");

      // An editor's save: the new content in a temporary file, renamed over the old one.
      await Deno.writeTextFile(join(a.dir, ".from-a.txt.tmp"), "saved through a rename");
      await Deno.rename(join(a.dir, ".from-a.txt.tmp"), join(a.dir, "from-a.txt"));
      await arrives(b.dir, "from-a.txt", "saved through a rename", "the renamed save in B");

      await server.stop();
      await Deno.writeTextFile(join(a.dir, "while-down.txt"), "written while the server was down");
      await delay(500);
      await server.start();
      await arrives(b.dir, "while-down.txt", "written while the server was down", "a change made while down, in B");
      await Deno.remove(join(b.dir, "from-a.txt"));
      await waitFor(async () => !(await listDir(a.dir)).includes("from-a.txt"), "B's delete in A", 10_000);
      await delay(500);
      assert.deepEqual(await listDir(a.dir), ["while-down.txt"]);
      assert.deepEqual(await listDir(b.dir), ["while-down.txt"]);
    } finally {
      const [stoppedA, stoppedB] = await Promise.all([stopWatcher(a), stopWatcher(b)]);
      await server.stop();
      await Deno.remove(base, { recursive: true });
      assert.equal(stoppedA.code, 0, stoppedA.stderr);
      assert.equal(stoppedB.code, 0, stoppedB.stderr);
    }
  },
});

Deno.test("sync: a run killed at several points continues cleanly, with nothing resurrected", async () => {
  await using fx = await startServer();
  await using proxy = new CountingProxy(fx.port);
  const env = (name: string) => ({
    ...fx.envFor("alice"),
    DFOS_SERVER: proxy.address,
    XDG_STATE_HOME: join(fx.dir, `state-${name}`),
    DFOS_HOST: `host${name}`,
  });
  const a = join(fx.local, "A");
  const b = join(fx.local, "B");
  await Deno.mkdir(a);
  for (let i = 0; i < 4; i++) await Deno.writeTextFile(join(a, `old${i}.txt`), `old ${i}`);
  const first = await runCli(["sync", a, "shared"], { env: env("A") });
  assert.equal(first.code, 0, first.stderr);
  const firstB = await runCli(["sync", b, "shared"], { env: env("B") });
  assert.equal(firstB.code, 0, firstB.stderr);
  // A deletes one old file and gains 24 new ones of 256 KiB: 6 MiB to send.
  await Deno.remove(join(a, "old0.txt"));
  for (let i = 0; i < 24; i++) await Deno.writeFile(join(a, `new${i}.bin`), seededBytes(256 * 1024, i));
  const total = 24 * 256 * 1024;
  for (const [who, dir, fraction] of [["A", a, 0.1], ["A", a, 0.5], ["B", b, 0.3], ["B", b, 0.8]] as const) {
    proxy.reset();
    const child = spawnCli(["sync", dir, "shared"], { env: env(who) });
    await child.stdin.close();
    const output = Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text()]);
    const deadline = Date.now() + 20_000;
    let ended = false;
    while (!ended && proxy.up + proxy.down <= total * fraction && Date.now() < deadline) {
      ended = await Promise.race([child.status.then(() => true), delay(5).then(() => false)]);
    }
    if (!ended) child.kill("SIGKILL");
    await child.status;
    await output;
    // Every file here is whole or absent: no half-written file takes a name.
    for (const rel of await listDir(dir)) {
      if (rel.startsWith("new")) {
        const i = Number(/new(\d+)/.exec(rel)![1]);
        assert.deepEqual(await Deno.readFile(join(dir, rel)), seededBytes(256 * 1024, i), `${who}: ${rel} whole`);
      }
    }
    if (who === "A") {
      // B's turn comes after A's last killed run: A finishes first.
      if (fraction === 0.5) {
        const done = await runCli(["sync", a, "shared", "--json"], { env: env("A") });
        assert.equal(done.code, 0, done.stderr);
      }
    }
  }
  const done = await runCli(["sync", b, "shared"], { env: env("B") });
  assert.equal(done.code, 0, done.stderr);
  const again = await runCli(["sync", a, "shared", "--json"], { env: env("A") });
  const summary = JSON.parse(text(again.stdout).trim().split("\n").pop()!);
  assert.deepEqual([summary.sent, summary.received, summary.deleted, summary.conflicts], [0, 0, 0, 0]);
  const names = (await listDir(b)).sort();
  assert.deepEqual(names, (await listDir(a)).sort());
  assert.ok(!names.includes("old0.txt"), "the deleted file did not come back");
  assert.equal(names.length, 27);
  for (const rel of names) assert.equal(await sha256File(join(a, rel)), await sha256File(join(b, rel)), rel);
});
