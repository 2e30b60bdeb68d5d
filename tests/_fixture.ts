/**
 * What the end-to-end tests share: a real server started in-process on port 0
 * in a fresh temporary folder (`startServer()`, TLS with `tls`), the real
 * `dfos` command line run as a subprocess (`runCli()`, `spawnCli()`); and,
 * passed on from tests/_common.ts (shared with the benchmark), TLS
 * certificates made with openssl, random data, SHA-256 and free ports.
 *
 * Internal to tests/: nothing here is part of dfos.
 *
 * @module
 */

import { configure, type LogRecord, reset } from "@logtape/logtape";
import { join } from "node:path";
import { DfosClient } from "../client/connection.ts";
import { serve, type ServeOptions, type Server } from "../server/server.ts";
import { delay, MAIN } from "./_common.ts";

export {
  type Certificate,
  type CertificateOptions,
  delay,
  freePort,
  MAIN,
  makeCertificate,
  PROJECT_DIR,
  randomBytes,
  sha256,
  sha256File,
  text,
} from "./_common.ts";

/** The users every fixture server knows, with their passwords. */
export const USERS: Readonly<Record<string, string>> = {
  alice: "apple",
  bob: "banana",
  carol: "pass:word:with:colons",
};

/** A running server and its folders. */
export interface Fixture extends AsyncDisposable {
  /** The server itself. */
  server: Server;
  /** The port it listens on (127.0.0.1). */
  port: number;
  /** `127.0.0.1:PORT`, for `DFOS_SERVER` and `DfosClient.connect`. */
  address: string;
  /** The storage root: users' files are in `ROOT/<user>/`. */
  root: string;
  /** The temporary folder holding everything; removed by `shutdown()`. */
  dir: string;
  /** A folder for the tests' local files (inside `dir`). */
  local: string;
  /** The users file the server reads (re-read when it changes). */
  users: string;
  /** The environment that makes the CLI talk to this server as `user`. */
  envFor(user: string, password?: string): Record<string, string>;
  /** Stops the server and removes the temporary folder. Safe to call twice. */
  shutdown(): Promise<void>;
}

/**
 * Starts a server on 127.0.0.1, port 0, in a fresh temporary folder with a
 * users file listing {@linkcode USERS}.
 *
 * @param options More options for `serve()` (limits, timeouts, a logger, a TLS certificate).
 * @returns The fixture; call `shutdown()` (or `await using`) when done.
 */
export async function startServer(
  options: Omit<ServeOptions, "hostname" | "port" | "root" | "users"> = {},
): Promise<Fixture> {
  const dir = await Deno.makeTempDir({ prefix: "dfos_test_" });
  const root = join(dir, "root");
  const local = join(dir, "local");
  const users = join(dir, "users.txt");
  await Deno.mkdir(local);
  await Deno.writeTextFile(
    users,
    "# test users\n" + Object.entries(USERS).map(([user, password]) => `${user}:${password}\n`).join(""),
  );
  let server: Server;
  try {
    server = await serve({ ...options, hostname: "127.0.0.1", port: 0, root, users });
  } catch (error) {
    await Deno.remove(dir, { recursive: true });
    throw error;
  }
  const port = server.addr.port;
  const address = `127.0.0.1:${port}`;
  let stopped: Promise<void> | null = null;
  const shutdown = () => {
    stopped ??= (async () => {
      await server.shutdown();
      await Deno.remove(dir, { recursive: true });
    })();
    return stopped;
  };
  return {
    server,
    port,
    address,
    root,
    dir,
    local,
    users,
    envFor: (user, password = USERS[user]) => ({
      DFOS_SERVER: address,
      DFOS_USER: user,
      DFOS_PASSWORD: password,
    }),
    shutdown,
    [Symbol.asyncDispose]: shutdown,
  };
}

/** Options for {@linkcode runCli} and {@linkcode spawnCli}. */
export interface CliOptions {
  /** Standard input; without it the child's standard input is /dev/null. */
  stdin?: Uint8Array | string;
  /**
   * Variables set for the child (undefined leaves one unset). The child does
   * not inherit the test's environment, apart from what Deno itself needs.
   */
  env?: Record<string, string | undefined>;
  /** The child's working folder. */
  cwd?: string;
}

/** How a CLI run ended. */
export interface CliResult {
  /** The exit code. */
  code: number;
  /** Standard output, raw. */
  stdout: Uint8Array;
  /** Standard error, as text. */
  stderr: string;
}

/** Variables passed through to the child so that Deno finds its cache and tools. */
const PASS_THROUGH = ["PATH", "HOME", "DENO_DIR", "XDG_CACHE_HOME", "TMPDIR", "NPM_CONFIG_REGISTRY"];

function childEnv(env: Record<string, string | undefined> = {}): Record<string, string> {
  const result: Record<string, string> = {};
  for (const name of PASS_THROUGH) {
    const value = Deno.env.get(name);
    if (value !== undefined) result[name] = value;
  }
  result.RUST_BACKTRACE = "0";
  result.NO_COLOR = "1";
  result.DENO_NO_UPDATE_CHECK = "1";
  for (const [name, value] of Object.entries(env)) {
    if (value === undefined) delete result[name];
    else result[name] = value;
  }
  return result;
}

/**
 * Starts `deno run -A main.ts ARGS...` with standard input, output and error
 * piped. The caller owns the child: it must close `stdin` and await
 * `output()` or `status`.
 *
 * @param args The arguments after `main.ts`.
 * @param options Environment and working folder (`stdin` is ignored: write to `child.stdin`).
 * @returns The child process.
 */
export function spawnCli(args: string[], options: Omit<CliOptions, "stdin"> = {}): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, ...args],
    env: childEnv(options.env),
    clearEnv: true,
    cwd: options.cwd,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

/**
 * Runs the real `dfos` command line as a subprocess and waits for it.
 *
 * @param args The arguments after `main.ts` (`["put", "a.txt"]`).
 * @param options Standard input, environment, working folder.
 * @returns The exit code, raw standard output and standard error text.
 */
export async function runCli(args: string[], options: CliOptions = {}): Promise<CliResult> {
  const command = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, ...args],
    env: childEnv(options.env),
    clearEnv: true,
    cwd: options.cwd,
    stdin: options.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  });
  const child = command.spawn();
  let feeding: Promise<void> = Promise.resolve();
  if (options.stdin !== undefined) {
    const bytes = typeof options.stdin === "string" ? new TextEncoder().encode(options.stdin) : options.stdin;
    feeding = (async () => {
      const writer = child.stdin.getWriter();
      try {
        await writer.write(bytes);
        await writer.close();
      } catch {
        // The child exited without reading everything; its exit code tells the story.
      }
    })();
  }
  const [output] = await Promise.all([child.output(), feeding]);
  return { code: output.code, stdout: output.stdout, stderr: new TextDecoder().decode(output.stderr) };
}

/**
 * Lists the names in a folder, sorted; an absent folder lists as empty.
 *
 * @param dir The folder.
 * @returns The entry names.
 */
export async function listDir(dir: string): Promise<string[]> {
  const names: string[] = [];
  try {
    for await (const entry of Deno.readDir(dir)) names.push(entry.name);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return [];
    throw error;
  }
  return names.sort();
}

/**
 * Waits until `check` returns true, polling every 20 ms, for at most `timeoutMs`.
 *
 * @param check The condition.
 * @param what What is awaited, for the error message.
 * @param timeoutMs The longest wait.
 * @throws {Error} when the condition is still false at the deadline.
 */
export async function waitFor(check: () => Promise<boolean> | boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await check())) {
    if (performance.now() > deadline) throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`);
    await delay(20);
  }
}

/**
 * Waits until something accepts TCP connections on a loopback port.
 *
 * @param port The port on 127.0.0.1.
 * @param what What is waited for, for the error.
 * @param timeoutMs The longest wait.
 */
export function waitForPort(port: number, what: string, timeoutMs: number): Promise<void> {
  return waitFor(
    async () => {
      try {
        (await Deno.connect({ hostname: "127.0.0.1", port })).close();
        return true;
      } catch {
        return false;
      }
    },
    what,
    timeoutMs,
  );
}

/** Collects the `dfos-test` loggers' lines in memory, for one test (`await using log = await memoryLog()`). */
export async function memoryLog(): Promise<{ lines: () => string[]; [Symbol.asyncDispose]: () => Promise<void> }> {
  const records: LogRecord[] = [];
  await configure({
    reset: true,
    sinks: { memory: (record) => records.push(record) },
    loggers: [
      { category: ["dfos-test"], lowestLevel: "info", sinks: ["memory"] },
      { category: ["logtape", "meta"], lowestLevel: "warning", sinks: ["memory"] },
    ],
  });
  return {
    lines: () => records.map((record) => record.message.map(String).join("")),
    [Symbol.asyncDispose]: reset,
  };
}

/** A `dfos serve` subprocess in a fresh temporary folder, from {@linkcode spawnServe}. */
export interface SpawnedServe {
  /** The process: standard input closed, output piped and not yet read. */
  child: Deno.ChildProcess;
  /** The temporary folder holding the rest; the caller removes it. */
  dir: string;
  /** The storage root, `DIR/root`. */
  root: string;
  /** The users file, `DIR/users.txt`. */
  users: string;
  /** The log file, `DIR/server.log`. */
  log: string;
}

/**
 * Starts the real `dfos serve` on 127.0.0.1, port 0, in a fresh temporary
 * folder with a users file of `users`, its storage root and log inside it.
 *
 * @param flags More flags for `serve`.
 * @param options The folder's name prefix and the users file's users.
 * @returns The process and its folder (read its port with {@linkcode watchServe}).
 */
export async function spawnServe(
  flags: string[],
  options: { prefix?: string; users?: Readonly<Record<string, string>> } = {},
): Promise<SpawnedServe> {
  const dir = await Deno.makeTempDir({ prefix: options.prefix ?? "dfos_serve_" });
  const root = join(dir, "root");
  const users = join(dir, "users.txt");
  const log = join(dir, "server.log");
  const lines = Object.entries(options.users ?? USERS).map(([user, password]) => `${user}:${password}\n`);
  await Deno.writeTextFile(users, lines.join(""));
  const address = ["--host", "127.0.0.1", "--port", "0"];
  const child = spawnCli(["serve", ...address, "--root", root, "--users", users, "--log", log, ...flags], { cwd: dir });
  await child.stdin.close();
  return { child, dir, root, users, log };
}

/** What {@linkcode watchServe} reports of a `dfos serve` subprocess. */
export interface ServeWatch {
  /** The port it listens on. */
  port: number;
  /** Everything it printed on standard output so far. */
  output(): string;
  /** Resolves once it has ended and its output is read: its status and standard error. */
  ended: Promise<{ status: Deno.CommandStatus; stderr: string }>;
}

/**
 * Reads a `dfos serve` subprocess's output (listening on 127.0.0.1) and waits
 * until it says its port. If it does not within `timeoutMs`, kills it and
 * throws with what it printed.
 *
 * @param child The process, with piped standard output and error.
 * @param timeoutMs How long to wait for the "Serving on" line.
 */
export async function watchServe(child: Deno.ChildProcess, timeoutMs = 15_000): Promise<ServeWatch> {
  let stdout = "";
  const reading = (async () => {
    for await (const text of child.stdout.pipeThrough(new TextDecoderStream())) stdout += text;
  })();
  const stderrText = new Response(child.stderr).text();
  const ended = Promise.all([child.status, reading, stderrText]).then(([status, , stderr]) => ({ status, stderr }));
  let port = 0;
  try {
    await waitFor(
      () => {
        const found = /Serving on 127\.0\.0\.1:(\d+)/.exec(stdout);
        if (found) port = Number(found[1]);
        return found !== null;
      },
      "dfos serve to listen",
      timeoutMs,
    );
  } catch (error) {
    try {
      child.kill("SIGKILL");
    } catch {
      // It has ended already.
    }
    const { stderr } = await ended;
    throw new Error(`${(error as Error).message}\n${stdout}${stderr}`);
  }
  return { port, output: () => stdout, ended };
}

/** An in-process client logged in to the server at `fx.address` as `user` (plaintext, SCRAM), with its test password. */
export function connect(fx: { address: string }, user = "alice"): Promise<DfosClient> {
  return DfosClient.connect({ server: fx.address, user, password: USERS[user] });
}

/**
 * Stores a file for `user` through an in-process client (faster than a CLI
 * run for a test's set-up).
 */
export async function storeFile(
  fx: { address: string },
  name: string,
  bytes: Uint8Array,
  user = "alice",
): Promise<void> {
  const client = await connect(fx, user);
  try {
    await client.put(
      name,
      (async function* () {
        yield bytes;
      })(),
      { size: bytes.length },
    );
  } finally {
    await client.close();
  }
}
