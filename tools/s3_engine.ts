/**
 * A real S3 engine for tests and benchmarks: Ceph RGW on loopback, started by
 * tools/s3/start-s3.sh (a copy of shared/s3/start-s3.sh: about 7 s; it
 * apt-installs ceph-mon, ceph-osd and radosgw where they are missing and this
 * runs as root), stopped by its state dir, and taken down and up again on
 * the same port and data (`switchS3Engine`). Signals that arrive while it
 * starts are passed to the script, which then removes what it started.
 *
 * @module
 */

import { fileURLToPath } from "node:url";
import { watchLaunchChain } from "./launch_chain.ts";

/** The script that starts and stops the engine. */
export const START_S3 = fileURLToPath(new URL("./s3/start-s3.sh", import.meta.url));

/** The Debian packages start-s3.sh needs for Ceph. */
const PACKAGES = ["ceph-mon", "ceph-osd", "radosgw"];

/** The signals passed on to what runs (and that end the run). */
const RELAYED: Deno.Signal[] = ["SIGINT", "SIGTERM", "SIGHUP"];

/** A running engine. */
export interface S3Engine {
  /** Its `S3_*` variables, as start-s3.sh printed them. */
  env: Record<string, string>;
  /** Its state dir, which stops it. */
  stateDir: string;
}

/** Says something on stderr, marked as the engine's starter's. */
function say(message: string): void {
  console.error(`s3 engine: ${message}`);
}

/**
 * Runs a child with the signals passed on to it, and returns its exit code
 * (128 + the signal's number when a signal ended it).
 */
export async function runRelayed(child: Deno.ChildProcess, onSignal: (signal: Deno.Signal) => void): Promise<number> {
  const relays = RELAYED.map((signal) => {
    const relay = () => {
      onSignal(signal);
      try {
        child.kill(signal);
      } catch {
        // It has ended already.
      }
    };
    Deno.addSignalListener(signal, relay);
    return { signal, relay };
  });
  const unwatch = watchLaunchChain((why) => {
    say(`${why}: stopping`);
    onSignal("SIGTERM");
    try {
      child.kill("SIGTERM");
    } catch {
      // It has ended already.
    }
  });
  try {
    const status = await child.status;
    return status.signal === null ? status.code : 128 + signalNumber(status.signal);
  } finally {
    unwatch();
    for (const { signal, relay } of relays) Deno.removeSignalListener(signal, relay);
  }
}

function signalNumber(signal: Deno.Signal): number {
  return ({ SIGHUP: 1, SIGINT: 2, SIGKILL: 9, SIGTERM: 15 } as Record<string, number>)[signal] ?? 0;
}

/** Whether every Debian package is installed (dpkg-query); false without dpkg. */
async function installed(packages: string[]): Promise<boolean> {
  try {
    const { stdout } = await new Deno.Command("dpkg-query", {
      args: ["-W", "-f=${Status}\n", ...packages],
      stdout: "piped",
      stderr: "null",
    }).output();
    const lines = new TextDecoder().decode(stdout).trim().split("\n");
    return lines.length === packages.length && lines.every((line) => line.endsWith("ok installed"));
  } catch {
    return false;
  }
}

/**
 * Parses start-s3.sh's `export NAME=value` lines (values bare or in single
 * quotes).
 *
 * @example Usage
 * ```ts
 * import { parseExports } from "./s3_engine.ts";
 * const env = parseExports("export S3_ENDPOINT=http://127.0.0.1:1\nexport S3_SECRET_KEY='abc'\n");
 * if (env.S3_SECRET_KEY !== "abc" || env.S3_ENDPOINT !== "http://127.0.0.1:1") throw new Error("not parsed");
 * ```
 *
 * @param text The script's stdout.
 * @returns The variables.
 */
export function parseExports(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const match = /^export ([A-Z_][A-Z0-9_]*)=(?:'([^']*)'|(\S*))$/.exec(line.trim());
    if (match) env[match[1]] = match[2] ?? match[3];
  }
  return env;
}

/**
 * Starts the engine, or returns why it could not (its messages are on
 * stderr already), or "interrupted".
 */
export async function startS3Engine(): Promise<S3Engine | string> {
  if (Deno.build.os !== "linux") return `start-s3.sh runs on Linux only, not on ${Deno.build.os}`;
  const env: Record<string, string> = {};
  if (Deno.uid() !== 0 && !(await installed(PACKAGES))) {
    // apt-get needs root: say what is missing instead of trying.
    env.START_S3_NO_INSTALL = "1";
  }
  const started = performance.now();
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command("bash", { args: [START_S3], env, stdin: "null", stdout: "piped", stderr: "inherit" })
      .spawn();
  } catch (error) {
    return `cannot run bash ${START_S3}: ${(error as Error).message}`;
  }
  let interrupted = false;
  const output = new Response(child.stdout).text();
  const code = await runRelayed(child, () => interrupted = true);
  const exports = parseExports(await output);
  if (interrupted || code !== 0 || !exports.S3_ENDPOINT || !exports.S3_STATE_DIR) {
    // A start interrupted after it printed its exports leaves a running engine: stop it.
    if (exports.S3_STATE_DIR) {
      await ignoringSignals(() => stopS3Engine({ env: exports, stateDir: exports.S3_STATE_DIR }));
    }
    return interrupted ? "interrupted" : `start-s3.sh failed (exit ${code}; its messages are above)`;
  }
  say(
    `S3 engine ${exports.S3_ENGINE ?? ""} on ${exports.S3_ENDPOINT}, started in ${
      ((performance.now() - started) / 1000).toFixed(1)
    } s (state ${exports.S3_STATE_DIR})`,
  );
  return { env: exports, stateDir: exports.S3_STATE_DIR };
}

/** Stops the engine by its state dir (start-s3.sh signals only the PIDs whose command line names it). */
export async function stopS3Engine(engine: S3Engine): Promise<void> {
  const { code } = await new Deno.Command("bash", {
    args: [START_S3, "stop", engine.stateDir],
    stdin: "null",
    stdout: "inherit",
    stderr: "inherit",
  }).output();
  if (code !== 0) say(`stopping the S3 engine failed (exit ${code}); state dir ${engine.stateDir}`);
}

/**
 * Takes the engine down (its daemons stopped, its state dir, port and data
 * kept) or brings it up again on the same port and data, as `start-s3.sh down`
 * and `up` do: for tests of a store that goes away mid-transfer and comes
 * back.
 *
 * @param engine The engine.
 * @param action `down` or `up` (which waits until a signed round trip works).
 * @throws {Error} When the script fails (its messages are on stderr).
 */
export async function switchS3Engine(engine: S3Engine, action: "down" | "up"): Promise<void> {
  const { code } = await new Deno.Command("bash", {
    args: [START_S3, action, engine.stateDir],
    stdin: "null",
    stdout: "null",
    stderr: "inherit",
  }).output();
  if (code !== 0) throw new Error(`Cannot take the S3 engine ${action}: start-s3.sh ${action} failed (exit ${code})`);
}

/** Runs `fn` with the relayed signals ignored: a second Ctrl-C must not leave the engine running. */
export async function ignoringSignals(fn: () => Promise<void>): Promise<void> {
  const ignore = () => say("stopping the S3 engine; please wait");
  for (const signal of RELAYED) Deno.addSignalListener(signal, ignore);
  try {
    await fn();
  } finally {
    for (const signal of RELAYED) Deno.removeSignalListener(signal, ignore);
  }
}
