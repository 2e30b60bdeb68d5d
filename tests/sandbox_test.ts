/**
 * The runtime's wall (docs/SECURITY.md): `dfos serve` runs the server in a
 * Worker that holds only what the server needs, and each client command
 * gives up the permissions it does not need.
 *
 * - The sandbox itself: `serveInSandbox()` starts a probe in place of the
 *   server, with the permissions it computes for a server; Deno refuses the
 *   probe every read, write, address and kind outside them (`NotCapable`).
 * - The permission set of `deno task serve` in deno.json: read, write and
 *   net whole (any flag goes through the task) and the memory figures, no
 *   other kind; `dfos serve` works with exactly that set, and its sandbox is
 *   still narrowed to its own paths and address.
 * - The real `dfos serve` in its sandbox: a round trip, the start-up errors,
 *   and a clear error when the process lacks what the sandbox needs.
 * - Clients: `put` cannot write, `peek`, `rm` and `ls` cannot read or write,
 *   none can read the environment after its options or run anything.
 *
 * @module
 */

import { deepStrictEqual, match, ok, strictEqual } from "node:assert/strict";
import { join } from "node:path";
import { configure, type LogRecord, reset } from "@logtape/logtape";
import { SANDBOX_WORKER, sandboxPermissions, serveInSandbox } from "../server/sandbox.ts";
import {
  freePort,
  MAIN,
  makeCertificate,
  PROJECT_DIR,
  randomBytes,
  runCli,
  sha256,
  sha256File,
  startServer,
  text,
  USERS,
  watchServe,
} from "./_fixture.ts";

const PROBE = new URL("./_sandbox_probe.ts", import.meta.url);
const PERMISSIONS_PROBE = new URL("./_permissions_probe.ts", import.meta.url).pathname;

/** deno.json, as far as these tests read it. */
interface Config {
  tasks: Record<string, string>;
  unstable?: string[];
  permissions: Record<string, Record<string, string[] | boolean>>;
}

async function readConfig(): Promise<Config> {
  return JSON.parse(await Deno.readTextFile(join(PROJECT_DIR, "deno.json")));
}

/** A temporary folder with a storage root (alice's file, a link leading out of it), a users file and a log. */
async function serverDir(): Promise<{ dir: string; root: string; users: string; log: string } & AsyncDisposable> {
  const dir = await Deno.makeTempDir({ prefix: "dfos_sandbox_" });
  const root = join(dir, "root");
  const users = join(dir, "users.txt");
  await Deno.mkdir(join(root, "alice"), { recursive: true });
  await Deno.writeTextFile(join(root, "alice", "in.txt"), "inside");
  await Deno.writeTextFile(join(dir, "outside.txt"), "outside");
  await Deno.symlink(join(dir, "outside.txt"), join(root, "alice", "link-outside"));
  await Deno.writeTextFile(users, Object.entries(USERS).map(([user, password]) => `${user}:${password}\n`).join(""));
  return {
    dir,
    root,
    users,
    log: join(dir, "server.log"),
    [Symbol.asyncDispose]: () => Deno.remove(dir, { recursive: true }),
  };
}

Deno.test("serveInSandbox() gives the server its root, users file and address, and Deno refuses it the rest", async () => {
  await using fx = await serverDir();
  const records: LogRecord[] = [];
  await configure({
    sinks: { memory: (record) => records.push(record) },
    loggers: [
      { category: ["dfos"], lowestLevel: "info", sinks: ["memory"] },
      { category: ["logtape", "meta"], lowestLevel: "warning", sinks: ["memory"] },
    ],
  });
  try {
    const server = await serveInSandbox(
      { hostname: "127.0.0.1", port: 0, root: fx.root, users: fx.users },
      { entry: PROBE },
    );
    await server.shutdown();
    deepStrictEqual(server.permissions, {
      read: [fx.root, fx.users],
      write: [fx.root],
      net: ["127.0.0.1:0"],
      sys: ["systemMemoryInfo"],
      env: false,
      run: false,
      ffi: false,
      import: false,
    });
  } finally {
    await reset();
  }
  strictEqual(records.length, 1, records.map((record) => record.message.join("")).join("\n"));
  deepStrictEqual(records[0].category, ["dfos", "probe"]);
  const outcomes = JSON.parse(String(records[0].message[0]));
  deepStrictEqual(outcomes, {
    "read a file in the root": "ok",
    "write a file in the root": "ok",
    "read the users file": "ok",
    "write the users file": "NotCapable",
    "read a file beside the root": "NotCapable",
    "write a file beside the root": "NotCapable",
    "list the folder above the root": "NotCapable",
    "read /etc/passwd": "NotCapable",
    // Deno checks the path as written: a link inside the root is followed. Our own checks refuse it (wall 2).
    "read through a symbolic link in the root that leads outside": "ok",
    "listen on its own address": "ok",
    "listen on another port": "NotCapable",
    "connect to another port": "NotCapable",
    "read an environment variable": "NotCapable",
    "run a program": "NotCapable",
    "load a native library": "NotCapable",
    "read the system's memory figures": "ok",
    "read the host name": "NotCapable",
    "import a remote module":
      'TypeError: Requires import access to "example.invalid:443", run again with the --allow-import flag',
  });
  strictEqual(await Deno.readTextFile(join(fx.root, "alice", "new.txt")), "new");
  strictEqual(await Deno.readTextFile(fx.users), Object.entries(USERS).map(([u, p]) => `${u}:${p}\n`).join(""));
});

Deno.test("sandboxPermissions() lists the storage root by its real path too, and an IPv6 host in brackets", async () => {
  await using fx = await serverDir();
  const link = join(fx.dir, "root-link");
  await Deno.symlink(fx.root, link);
  const permissions = sandboxPermissions({ hostname: "::1", port: 7000, root: join(link, "new"), users: fx.users });
  deepStrictEqual(permissions.read, [join(link, "new"), join(fx.root, "new"), fx.users]);
  deepStrictEqual(permissions.write, [join(link, "new"), join(fx.root, "new")]);
  deepStrictEqual(permissions.net, ["[::1]:7000"]);
});

Deno.test("deno.json: deno task serve runs dfos serve under the serve permission set: read, write, net and sys memory", async () => {
  const config = await readConfig();
  // The task's launcher (tools/serve_task.ts) relays signals and runs main.ts serve under the set.
  match(config.tasks.serve, /^deno run (--quiet )?--no-prompt --allow-all tools\/serve_task\.ts$/);
  const launcher = await Deno.readTextFile(join(PROJECT_DIR, "tools", "serve_task.ts"));
  match(launcher, /"--permission-set=serve", main, "serve"/);
  ok(config.unstable?.includes("worker-options"), "deno.json enables worker-options");
  match(config.tasks.compile, / --unstable-worker-options /);
  match(config.tasks.compile, / --include server\/sandbox_worker\.ts /);
  strictEqual(join(PROJECT_DIR, "server", "sandbox_worker.ts"), SANDBOX_WORKER.pathname);
  // Any --host, --port, --root, --users, --log or --tls-* goes through the task: the process holds those kinds whole
  // and nothing else; the sandbox narrows the server to its own paths and address.
  deepStrictEqual(config.permissions.serve, { net: true, read: true, write: true, sys: ["systemMemoryInfo"] });
});

/** Starts `main.ts serve` on 127.0.0.1, port 0, with the given `deno run` flags, and waits until it listens. */
async function startServe(fx: { dir: string; root: string; users: string; log: string }, denoFlags: string[]) {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      ...denoFlags,
      MAIN,
      "serve",
      ...["--host", "127.0.0.1", "--port", "0", "--root", fx.root, "--users", fx.users, "--log", fx.log],
    ],
    cwd: fx.dir,
    env: { RUST_BACKTRACE: "0", NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  return { child, ...await watchServe(child) };
}

Deno.test("dfos serve runs with exactly the permission set of deno task serve and serves a round trip", async () => {
  await using fx = await serverDir();
  // deno task serve's set, as flags.
  const set = (await readConfig()).permissions.serve;
  const flag = (kind: string) =>
    set[kind] === true ? `--allow-${kind}` : `--allow-${kind}=${(set[kind] as string[]).join(",")}`;
  const serve = await startServe(fx, ["--no-prompt", ...["net", "read", "write", "sys"].map(flag)]);
  try {
    const env = { DFOS_SERVER: `127.0.0.1:${serve.port}`, DFOS_USER: "alice", DFOS_PASSWORD: USERS.alice };
    const data = randomBytes(2 * 1024 * 1024 + 3);
    const local = join(fx.dir, "up.bin");
    await Deno.writeFile(local, data);
    const put = await runCli(["put", local, "sandboxed/up.bin"], { env });
    strictEqual(put.code, 0, put.stderr);
    const get = await runCli(["get", "sandboxed/up.bin", "-"], { env });
    strictEqual(get.code, 0, get.stderr);
    strictEqual(sha256(get.stdout), sha256(data));
    strictEqual(await sha256File(join(fx.root, "alice", "sandboxed", "up.bin")), sha256(data));
    // Our own checks refuse the link planted in alice's folder, before the runtime would have let it through.
    const link = await runCli(["get", "link-outside", "-"], { env });
    strictEqual(link.code, 1, link.stderr);
  } finally {
    serve.child.kill("SIGTERM");
  }
  const { status, stderr } = await serve.ended;
  strictEqual(status.code, 0, serve.output() + stderr);
  const log = await Deno.readTextFile(fx.log);
  const sandbox = `Sandbox: net 127.0.0.1:0; read ${fx.root}, ${fx.users}; write ${fx.root}; sys systemMemoryInfo; ` +
    "nothing else\n";
  ok(log.includes(sandbox), log);

  match(log, /Shut down\. Totals: .*RSS [\d.]+ MiB; system memory \d+ of \d+ MiB used/);
});

Deno.test("dfos serve without a permission its sandbox needs says which, and exits 1", async () => {
  await using fx = await serverDir();
  const output = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--no-prompt",
      "--allow-net=127.0.0.1:1",
      `--allow-read=${fx.root},${fx.users},${PROJECT_DIR}`,
      `--allow-write=${fx.root},${fx.log}`,
      MAIN,
      "serve",
      ...["--host", "127.0.0.1", "--port", "0", "--root", fx.root, "--users", fx.users, "--log", fx.log],
    ],
    cwd: fx.dir,
    env: { RUST_BACKTRACE: "0", NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  strictEqual(output.code, 1, text(output.stderr));
  strictEqual(
    text(output.stderr),
    "dfos serve: Cannot start the server: this process was not given --allow-net=127.0.0.1:0, which the server needs\n",
  );
});

Deno.test("dfos serve in its sandbox still reports an unreadable users file and a port in use, with exit 1", async () => {
  await using fx = await serverDir();
  const common = ["--host", "127.0.0.1", "--root", fx.root, "--log", fx.log];
  const missing = await runCli(["serve", ...common, "--port", "0", "--users", join(fx.dir, "missing.txt")], {
    cwd: fx.dir,
  });
  strictEqual(missing.code, 1, missing.stderr);
  match(missing.stderr, /^dfos serve: Cannot read users file ".*missing\.txt": No such file or directory/m);

  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  const busy = await runCli(["serve", ...common, "--port", `${port}`, "--users", fx.users], { cwd: fx.dir });
  strictEqual(busy.code, 1, busy.stderr);
  match(busy.stderr, new RegExp(`^dfos serve: Cannot listen on 127\\.0\\.0\\.1:${port}: Address already in use`, "m"));
});

Deno.test("dfos serve in its sandbox stops on SIGINT and exits 0", async () => {
  await using fx = await serverDir();
  const serve = await startServe(fx, ["-A"]);
  serve.child.kill("SIGINT");
  const { status, stderr } = await serve.ended;
  strictEqual(status.code, 0, serve.output() + stderr);
  match(serve.output(), /SIGINT: shutting down/);
  match(serve.output(), /Shut down\. Totals: /);
});

/** Runs the permissions probe as `dfos COMMAND` would drop them. */
async function probeCommand(command: string, dir: string, port: number) {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", PERMISSIONS_PROBE, command, dir, `${port}`],
    env: { RUST_BACKTRACE: "0", NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1", DFOS_USER: "alice" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  strictEqual(output.code, 0, text(output.stderr));
  return JSON.parse(text(output.stdout));
}

Deno.test("client commands keep only what they need: put reads, get reads and writes, peek, rm and ls neither", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dfos_permissions_" });
  try {
    await Deno.writeTextFile(join(dir, "local.txt"), "local");
    const port = freePort();
    const never = {
      "read an environment variable": "NotCapable",
      "connect": "ConnectionRefused",
      "run a program": "NotCapable",
      "load a native library": "NotCapable",
      "read the system's memory figures": "NotCapable",
    };
    const whileReadingOptions = { "read an environment variable": "ok", "read a local file": "ok" };
    const expected: Record<string, Record<string, string>> = {
      put: { "read a local file": "ok", "write a local file": "NotCapable", ...never },
      get: { "read a local file": "ok", "write a local file": "ok", ...never },
      peek: { "read a local file": "NotCapable", "write a local file": "NotCapable", ...never },
      rm: { "read a local file": "NotCapable", "write a local file": "NotCapable", ...never },
      ls: { "read a local file": "NotCapable", "write a local file": "NotCapable", ...never },
    };
    for (const [command, afterwards] of Object.entries(expected)) {
      const outcome = await probeCommand(command, dir, port);
      deepStrictEqual(outcome, { whileReadingOptions, afterwards }, command);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("dfos ls --ca reads its CA file before it drops read access, and lists over TLS", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dfos_permissions_" });
  try {
    const certificate = await makeCertificate(dir, "server");
    await using fx = await startServer({ tls: { cert: certificate.cert, key: certificate.key } });
    const env = { ...fx.envFor("alice"), DFOS_SERVER: `localhost:${fx.port}` };
    const put = await runCli(["put", "--ca", certificate.certFile, "-", "a.txt"], { env, stdin: "a" });
    strictEqual(put.code, 0, put.stderr);
    const ls = await runCli(["ls", "--ca", certificate.certFile], { env });
    strictEqual(ls.code, 0, ls.stderr);
    match(text(ls.stdout), /^\s*1 {2}\d{4}-\d\d-\d\d \d\d:\d\d UTC {2}a\.txt\n$/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("dfos get to a file and peek to standard output work with their permissions dropped", async () => {
  await using fx = await startServer();
  const env = fx.envFor("bob");
  const put = await runCli(["put", "-", "b.txt"], { env, stdin: "bee" });
  strictEqual(put.code, 0, put.stderr);
  const target = join(fx.local, "b.txt");
  const get = await runCli(["get", "b.txt", target], { env });
  strictEqual(get.code, 0, get.stderr);
  strictEqual(await Deno.readTextFile(target), "bee");
  const peek = await runCli(["peek", "b.txt"], { env });
  strictEqual(peek.code, 0, peek.stderr);
  strictEqual(text(peek.stdout), "bee");
});
