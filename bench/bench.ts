/**
 * The dfos throughput benchmark: how fast one whole `dfos put` or `dfos get`
 * process moves one large file over loopback, next to what a user would
 * otherwise pick: socat raw TCP (the limit of the wire), an rsync daemon, and
 * optionally OpenSSH sftp.
 *
 *     deno task bench                              # 1024 MiB, 3 runs, socat,rsync,dfos
 *     deno task bench --size 64 --runs 2           # a quick check
 *     deno task bench --peers socat,rsync,sftp,dfos --runs 5 --out /tmp/bench.json
 *
 * The method is that of the peers harness (`shared/bench/peers/run.sh`, beside
 * this checkout):
 * - One random file of SIZE MiB in a fresh temp dir (removed at the end, also
 *   on failure or Ctrl-C). Every server binds 127.0.0.1 on a free port and is
 *   stopped by its PID at the end.
 * - Each direction is measured apart: put = client -> server, get = server ->
 *   client. A timed run is one whole client process, from its spawn until the
 *   transfer is complete on both ends (for socat, until its one-shot listener
 *   has exited too). A client is killed after 120 s.
 * - One untimed warm-up run per peer and direction, then RUNS rounds,
 *   interleaved (round 1 of every peer, then round 2, ...), so that a slow
 *   spell of the machine lands on several peers once, not on one peer thrice.
 * - Before each run: the previous copies are removed, `sync`, the source is
 *   read once into the page cache (for a get, the server's copy is a hard link
 *   to the source: no fresh data to write back), and the benchmark waits up to
 *   20 s for the CPUs to be quiet. After each run, the destination's SHA-256
 *   must equal the source's; a mismatch marks that peer and direction failed.
 *
 * It prints one table: median MB/s [min-max] (MB = 10^6 bytes, over wall
 * time), and for dfos its ratio to socat and to rsync in the same run; and it
 * writes the same figures, with the machine's facts, to `--out` as JSON.
 *
 * @module
 */

import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { readIntoCache, removeIfPresent, sha256File, syncFileSystems, writeRandomFile } from "./files.ts";
import { type MachineFacts, machineFacts, waitForQuiet } from "./machine.ts";
import { createPeer, type Direction, DIRECTIONS, type Peer, PEER_IDS, type PeerId, SOCAT_BUFFER } from "./peers.ts";
import { ProcessGroup } from "./processes.ts";

/** The repository root (with a trailing slash). */
const REPO = fileURLToPath(new URL("..", import.meta.url));
/** Where the results go unless `--out` says otherwise. */
const DEFAULT_OUT = join(REPO, "bench", "results", "latest.json");
/** The peers a plain `deno task bench` measures. */
const DEFAULT_PEERS: PeerId[] = ["socat", "rsync", "dfos"];
/** Peers whose median is the yardstick for dfos's ratios. */
const YARDSTICKS: PeerId[] = ["socat", "rsync"];
/** The name of the test file on every server. */
const FILE_NAME = "big.bin";
/** How long one client process may run. */
const CLIENT_TIMEOUT_MS = 120_000;
/** Before each run, wait up to QUIET_WAIT_MS for the CPUs to be less busy than QUIET_PERCENT. */
const QUIET_PERCENT = 15;
const QUIET_WAIT_MS = 20_000;
const MIB = 1024 * 1024;

const USAGE = `Usage: deno task bench [options]

Measures one whole client process moving one random file over loopback, put
(client -> server) and get (server -> client) apart, for dfos and its peers.

      --size MIB     size of the test file in MiB (default 1024)
      --runs N       timed runs per peer and direction, after one warm-up (default 3)
      --peers LIST   comma-separated, from ${PEER_IDS.join(", ")} (default ${DEFAULT_PEERS.join(",")})
      --out FILE     the results as JSON (default bench/results/latest.json)
  -h, --help         show this help`;

/** What one benchmark run is asked to do. */
export interface Settings {
  /** The test file's size in MiB. */
  sizeMiB: number;
  /** Timed runs per peer and direction. */
  runs: number;
  /** The peers, in the order each round runs them. */
  peers: PeerId[];
  /** Where the JSON results go. */
  out: string;
}

/** One timed run. */
interface Run {
  round: number;
  seconds: number;
  mbps: number;
  /** CPU use by others just before the run, in percent. */
  busyPercent: number;
  quiet: boolean;
}

/** Everything measured for one peer in one direction. */
interface Series {
  peer: Peer;
  direction: Direction;
  runs: Run[];
  /** Why the peer failed in this direction (no more runs are made), or null. */
  failure: string | null;
  /** The command lines of its first run. */
  commands: string[][] | null;
}

/** The test file. */
interface Source {
  path: string;
  bytes: number;
  sha256: string;
}

/** Median, lowest and highest MB/s of a series. */
interface Summary {
  median: number;
  min: number;
  max: number;
}

const started = Date.now();

/** A progress line on stderr (stdout carries only the table). */
function say(message: string): void {
  const seconds = Math.round((Date.now() - started) / 1000);
  console.error(`[${String(seconds).padStart(4)}s] ${message}`);
}

/**
 * Parses the command line.
 *
 * @param args The arguments after the script's name.
 * @returns The settings, or null when help was asked for.
 */
export function parseSettings(args: string[]): Settings | null {
  const { values } = parseArgs({
    args,
    options: {
      size: { type: "string", default: "1024" },
      runs: { type: "string", default: "3" },
      peers: { type: "string", default: DEFAULT_PEERS.join(",") },
      out: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) return null;
  const peers = values.peers.split(",").map((peer) => peer.trim()).filter((peer) => peer !== "");
  for (const peer of peers) {
    if (!(PEER_IDS as readonly string[]).includes(peer)) {
      throw new RangeError(`Cannot use peer "${peer}": known peers are ${PEER_IDS.join(", ")}`);
    }
  }
  if (peers.length === 0) throw new RangeError("Cannot run without peers: --peers is empty");
  return {
    sizeMiB: positiveInteger(values.size, "--size"),
    runs: positiveInteger(values.runs, "--runs"),
    // in the order of PEER_IDS, each once
    peers: PEER_IDS.filter((id) => peers.includes(id)),
    out: values.out === undefined ? DEFAULT_OUT : resolve(values.out),
  };
}

function positiveInteger(text: string, flag: string): number {
  const value = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(value) || value < 1) {
    throw new RangeError(`Cannot use ${flag} "${text}": not a positive integer`);
  }
  return value;
}

/**
 * Runs the benchmark: makes the test file, starts the peers, measures,
 * prints the table and writes the JSON. The scratch folder and every process
 * it started are gone when it returns, and also after SIGINT or SIGTERM
 * (which end the program with status 130).
 *
 * @param settings What to measure.
 * @returns How many of the peer-and-direction measurements failed.
 */
export async function bench(settings: Settings): Promise<number> {
  const dir = await Deno.makeTempDir({ prefix: "dfos-bench-" });
  const processes = new ProcessGroup();
  const peers: Peer[] = [];
  let cleaning: Promise<void> | undefined;
  const cleanup = () =>
    cleaning ??= (async () => {
      await processes.stopAll();
      for (const peer of peers) await peer.close?.();
      await removeScratch(dir);
    })();
  const stopping = new AbortController();
  const interrupt = () => {
    say("interrupted: stopping the servers and removing the scratch folder");
    stopping.abort();
    cleanup().finally(() => Deno.exit(130));
  };
  Deno.addSignalListener("SIGINT", interrupt);
  Deno.addSignalListener("SIGTERM", interrupt);
  try {
    for (const sub of ["data", "client", "srv", "logs"]) await Deno.mkdir(join(dir, sub));
    const context = { dir, processes, timeoutMs: CLIENT_TIMEOUT_MS };
    for (const id of settings.peers) peers.push(createPeer(id, context));
    const series = await measure(settings, { dir, peers, signal: stopping.signal });
    printTable(settings, series);
    await writeResults(settings, series, dir);
    return series.filter((one) => summarize(one) === null).length;
  } finally {
    Deno.removeSignalListener("SIGINT", interrupt);
    Deno.removeSignalListener("SIGTERM", interrupt);
    await cleanup();
  }
}

/** What {@linkcode measure} works with. */
interface Workspace {
  /** The scratch folder. */
  dir: string;
  /** The peers, not started yet. */
  peers: Peer[];
  /** Aborted on SIGINT or SIGTERM: no further run starts. */
  signal: AbortSignal;
}

/** Makes the test file, starts the peers and runs the warm-up round and the timed rounds. */
async function measure(settings: Settings, { dir, peers, signal }: Workspace): Promise<Series[]> {
  say(`scratch folder ${dir}; writing a ${settings.sizeMiB} MiB random file`);
  const path = join(dir, "data", FILE_NAME);
  await writeRandomFile(path, settings.sizeMiB);
  await syncFileSystems();
  const source: Source = { path, bytes: settings.sizeMiB * MIB, sha256: await sha256File(path) };

  const series: Series[] = [];
  for (const peer of peers) {
    signal.throwIfAborted();
    let failure: string | null = null;
    try {
      await peer.start();
    } catch (error) {
      failure = `not available: ${(error as Error).message}`;
      say(`${peer.id}: ${failure}`);
    }
    for (const direction of DIRECTIONS) series.push({ peer, direction, runs: [], failure, commands: null });
  }

  for (let round = 0; round <= settings.runs; round++) {
    say(round === 0 ? "warm-up round (untimed)" : `round ${round} of ${settings.runs}`);
    for (const one of series) {
      signal.throwIfAborted();
      if (one.failure === null) await measureOnce(one, round, { source, dir, signal });
    }
  }
  return series;
}

/**
 * One run of one peer in one direction; round 0 is the warm-up, checked but
 * not recorded. A failure is recorded in the series.
 */
async function measureOnce(
  series: Series,
  round: number,
  { source, dir, signal }: { source: Source; dir: string; signal: AbortSignal },
): Promise<void> {
  const { peer, direction } = series;
  const which = round === 0 ? "the warm-up run" : `run ${round}`;
  const serverPath = peer.serverPath(FILE_NAME);
  const clientPath = join(dir, "client", FILE_NAME);
  const destination = direction === "put" ? serverPath : clientPath;
  try {
    await removeIfPresent(serverPath);
    await removeIfPresent(clientPath);
    if (direction === "get") await Deno.link(source.path, serverPath);
    await syncFileSystems();
    await readIntoCache(source.path);
    const quiet = await waitForQuiet(QUIET_PERCENT, QUIET_WAIT_MS);
    if (!quiet.quiet) say(`machine busy: ${quiet.percent}% CPU used before ${peer.id} ${direction}`);
    await peer.prepare?.(direction, FILE_NAME);

    const start = performance.now();
    const commands = await peer.transfer(direction, direction === "put" ? source.path : clientPath, FILE_NAME);
    const seconds = (performance.now() - start) / 1000;

    const digest = await sha256File(destination).catch((error) => {
      if (error instanceof Deno.errors.NotFound) return "no file";
      throw error;
    });
    signal.throwIfAborted();
    if (digest !== source.sha256) {
      series.failure = digest === "no file"
        ? `no file at the destination after ${which}`
        : `sha256 mismatch after ${which}`;
      say(`${peer.id} ${direction}: ${series.failure}`);
      return;
    }
    const mbps = source.bytes / seconds / 1e6;
    say(`${peer.id} ${direction}: ${Math.round(mbps)} MB/s (${seconds.toFixed(2)} s)${round === 0 ? ", warm-up" : ""}`);
    if (round === 0) return;
    series.commands ??= commands;
    series.runs.push({ round, seconds, mbps, busyPercent: quiet.percent, quiet: quiet.quiet });
  } catch (error) {
    signal.throwIfAborted();
    series.failure = `${which} failed: ${(error as Error).message}`;
    say(`${peer.id} ${direction}: ${series.failure}`);
  } finally {
    await removeIfPresent(serverPath);
    await removeIfPresent(clientPath);
  }
}

function summarize(series: Series): Summary | null {
  if (series.failure !== null || series.runs.length === 0) return null;
  const values = series.runs.map((run) => run.mbps).sort((a, b) => a - b);
  const middle = Math.floor(values.length / 2);
  const median = values.length % 2 === 1 ? values[middle] : (values[middle - 1] + values[middle]) / 2;
  return { median, min: values[0], max: values[values.length - 1] };
}

/** dfos's median over each yardstick's median in the same direction (only for dfos). */
function ratios(series: Series, all: Series[]): Partial<Record<PeerId, number>> {
  const result: Partial<Record<PeerId, number>> = {};
  const own = summarize(series);
  if (series.peer.id !== "dfos" || own === null) return result;
  for (const id of YARDSTICKS) {
    const other = all.find((one) => one.peer.id === id && one.direction === series.direction);
    const theirs = other === undefined ? null : summarize(other);
    if (theirs !== null) result[id] = own.median / theirs.median;
  }
  return result;
}

function printTable(settings: Settings, all: Series[]): void {
  const rows = all.map((series) => {
    const summary = summarize(series);
    if (summary === null) return [series.peer.id, series.direction, "failed", series.failure ?? "no runs"];
    const figure = `${Math.round(summary.median)} MB/s [${Math.round(summary.min)}-${Math.round(summary.max)}]`;
    const notes = Object.entries(ratios(series, all)).map(([id, ratio]) => `${ratio.toFixed(2)}x ${id}`);
    const busy = series.runs.filter((run) => !run.quiet).length;
    if (busy > 0) notes.push(`(${busy} of ${series.runs.length} runs began on a busy machine)`);
    return [series.peer.id, series.direction, figure, notes.join("  ")];
  });
  const widths = [0, 1, 2].map((column) => Math.max(...rows.map((row) => row[column].length)));
  console.log(
    `${settings.sizeMiB} MiB, ${settings.runs} timed run${
      settings.runs === 1 ? "" : "s"
    } after 1 warm-up, interleaved; ` +
      "median MB/s [min-max], MB = 10^6 bytes over wall time",
  );
  for (const row of rows) {
    console.log(row.map((cell, column) => column < 3 ? cell.padEnd(widths[column]) : cell).join("  ").trimEnd());
  }
}

async function writeResults(settings: Settings, all: Series[], dir: string): Promise<void> {
  const machine: MachineFacts = await machineFacts();
  const round1 = (value: number) => Math.round(value * 10) / 10;
  const report = {
    date: new Date().toISOString(),
    unit: "MB/s = 10^6 bytes per second of wall time; one whole client process per run",
    settings: {
      sizeMiB: settings.sizeMiB,
      runs: settings.runs,
      warmupRuns: 1,
      peers: settings.peers,
      clientTimeoutSeconds: CLIENT_TIMEOUT_MS / 1000,
      quietPercent: QUIET_PERCENT,
      quietWaitSeconds: QUIET_WAIT_MS / 1000,
      socatBufferBytes: SOCAT_BUFFER,
    },
    machine,
    results: all.map((series) => {
      const summary = summarize(series);
      const versus = ratios(series, all);
      return {
        peer: series.peer.id,
        label: series.peer.label,
        servers: series.peer.servers.map((argv) => argv.map((arg) => portable(arg, dir)).join(" ")),
        direction: series.direction,
        status: summary === null ? "failed" : "ok",
        failure: series.failure,
        median: summary && round1(summary.median),
        min: summary && round1(summary.min),
        max: summary && round1(summary.max),
        ratio: Object.fromEntries(Object.entries(versus).map(([id, ratio]) => [id, Math.round(ratio * 100) / 100])),
        runs: series.runs.map((run) => ({
          round: run.round,
          seconds: Math.round(run.seconds * 1000) / 1000,
          mbps: round1(run.mbps),
          busyPercent: run.busyPercent,
        })),
        commands: series.commands?.map((argv) => argv.map((arg) => portable(arg, dir)).join(" ")) ?? null,
      };
    }),
  };
  await Deno.mkdir(dirname(settings.out), { recursive: true });
  await Deno.writeTextFile(settings.out, JSON.stringify(report, null, 2) + "\n");
  say(`wrote ${settings.out}`);
}

/** A command-line argument with this machine's paths replaced: `$T` for the scratch folder, `deno`, `main.ts`. */
function portable(arg: string, dir: string): string {
  return arg.replaceAll(Deno.execPath(), "deno").replaceAll(dir, "$T").replaceAll(REPO, "");
}

/** Removes the scratch folder; retried, as a process being stopped may still be closing a file in it. */
async function removeScratch(dir: string): Promise<void> {
  for (let attempt = 1;; attempt++) {
    try {
      await Deno.remove(dir, { recursive: true });
      return;
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return;
      if (attempt === 3) {
        console.error(`bench: Cannot remove the scratch folder ${dir}: ${(error as Error).message}`);
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
}

/**
 * The command line: parses the flags and runs the benchmark.
 *
 * @param args The arguments after the script's name.
 * @returns The exit code: 0 done, 1 error or a failed measurement (shown in the table), 2 usage error,
 *   130 interrupted.
 */
export async function main(args: string[]): Promise<number> {
  let settings: Settings | null;
  try {
    settings = parseSettings(args);
  } catch (error) {
    console.error(`bench: ${(error as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (settings === null) {
    console.log(USAGE);
    return 0;
  }
  try {
    const failed = await bench(settings);
    if (failed > 0) console.error(`bench: ${failed} measurement${failed === 1 ? "" : "s"} failed (see the table)`);
    return failed > 0 ? 1 : 0;
  } catch (error) {
    if (error instanceof DOMException && error.name === "AbortError") return 130;
    console.error(`bench: ${(error as Error).message}`);
    return 1;
  }
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
