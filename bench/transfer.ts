/**
 * Section "transfer": how fast one whole `dfos put` or `dfos get` process
 * moves one large file over loopback, next to what a user would otherwise
 * pick: socat raw TCP (the limit of the wire), an rsync daemon and OpenSSH
 * sftp; the bare Deno copy ("deno-bare", `bare_copy.ts`: what a Deno program
 * reaches here, issue 10's prototype, its ratio to socat shown); dfos with `--verify` ("dfos-verify", SHA-256); and dfos over TLS
 * ("dfos-tls"), the encrypted figure to set beside sftp's. Targets: dfos
 * (plaintext, CRC-32) at least 0.70x socat, ahead of rsync and at least twice
 * sftp, each direction; dfos-verify at least 0.28x socat; dfos-tls has no
 * target, its ratios to dfos and sftp are shown.
 *
 * The method is that of the peers harness (`shared/bench/peers/run.sh`, beside
 * this checkout):
 * - One random file of SIZE MiB. Every server binds 127.0.0.1 on a free port.
 * - Each direction is measured apart: put = client -> server, get = server ->
 *   client. A timed run is one whole client process, from its spawn until the
 *   transfer is complete on both ends (for socat, until its one-shot listener
 *   has exited too). A client is killed after 120 s.
 * - One untimed warm-up run per peer and direction, then RUNS rounds,
 *   interleaved (round 1 of every peer, then round 2, ...), so that a slow
 *   spell of the machine lands on several peers once, not on one peer thrice.
 * - Before each run: the previous copies are removed; for a get, the source is
 *   copied to the server's folder (not hard-linked: dfos serves only files with
 *   one link); `sync` writes everything back; the source is read once into the
 *   page cache, and the benchmark waits up to 20 s for the CPUs to be quiet. After each run, the destination's SHA-256
 *   must equal the source's; a mismatch marks that peer and direction failed.
 *
 * Figures: median MB/s [min-max] (MB = 10^6 bytes, over wall time), and
 * dfos's (and dfos-tls's) ratio to every other peer in the same run.
 *
 * @module
 */

import { join } from "node:path";
import { sha256File } from "../tests/_common.ts";
import { readIntoCache, removeIfPresent, syncFileSystems, writeRandomFile } from "./files.ts";
import { waitForQuiet } from "./machine.ts";
import { createPeer, type Direction, DIRECTIONS, type Peer, type PeerId, SOCAT_BUFFER } from "./peers.ts";
import type { Row } from "./report.ts";
import { messageOf, type SectionContext, type SectionResult } from "./section.ts";
import { formatSummary, round, summarize, type Summary } from "./stats.ts";
import { judge, TARGETS } from "./targets.ts";

/** The name of the test file on every server. */
const FILE_NAME = "big.bin";
/** How long one client process may run. */
const CLIENT_TIMEOUT_MS = 120_000;
/** Before each run, wait up to QUIET_WAIT_MS for the CPUs to be less busy than QUIET_PERCENT. */
const QUIET_PERCENT = 15;
const QUIET_WAIT_MS = 20_000;
const MIB = 1024 * 1024;

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

/**
 * Runs the section: makes the test file, starts the peers, measures.
 *
 * @param context The section's folder, processes and settings.
 * @returns The rows and figures.
 */
export async function transferSection(context: SectionContext): Promise<SectionResult> {
  const { dir, processes, settings, say } = context;
  const { sizeMiB, runs } = settings.transfer;
  for (const sub of ["data", "client", "srv", "logs"]) await Deno.mkdir(join(dir, sub));
  const peers = settings.transfer.peers.map((id) => createPeer(id, { dir, processes, timeoutMs: CLIENT_TIMEOUT_MS }));
  for (const peer of peers) context.defer(async () => await peer.close?.());
  say(`transfer: writing a ${sizeMiB} MiB random file`);
  const path = join(dir, "data", FILE_NAME);
  await writeRandomFile(path, sizeMiB);
  await syncFileSystems();
  const source: Source = { path, bytes: sizeMiB * MIB, sha256: await sha256File(path) };

  const series: Series[] = [];
  for (const peer of peers) {
    context.signal.throwIfAborted();
    let failure: string | null = null;
    try {
      await peer.start();
    } catch (error) {
      failure = `not available: ${messageOf(error)}`;
      say(`transfer: ${peer.id}: ${failure}`);
    }
    for (const direction of DIRECTIONS) series.push({ peer, direction, runs: [], failure, commands: null });
  }
  for (let round = 0; round <= runs; round++) {
    say(`transfer: ${round === 0 ? "warm-up round (untimed)" : `round ${round} of ${runs}`}`);
    for (const one of series) {
      context.signal.throwIfAborted();
      if (one.failure === null) await measureOnce(one, round, source, context);
    }
  }
  return {
    rows: rowsOf(series, sizeMiB),
    data: dataOf(series, settings.transfer),
    failures: series.filter((one) => seriesSummary(one) === null).length,
  };
}

/**
 * One run of one peer in one direction; round 0 is the warm-up, checked but
 * not recorded. A failure is recorded in the series.
 */
async function measureOnce(series: Series, round: number, source: Source, context: SectionContext): Promise<void> {
  const { peer, direction } = series;
  const { dir, say, signal } = context;
  const which = round === 0 ? "the warm-up run" : `run ${round}`;
  const serverPath = peer.serverPath(FILE_NAME);
  const clientPath = join(dir, "client", FILE_NAME);
  const destination = direction === "put" ? serverPath : clientPath;
  try {
    await removeIfPresent(serverPath);
    await removeIfPresent(clientPath);
    if (direction === "get") await Deno.copyFile(source.path, serverPath);
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
    series.failure = `${which} failed: ${messageOf(error)}`;
    say(`${peer.id} ${direction}: ${series.failure}`);
  } finally {
    await removeIfPresent(serverPath);
    await removeIfPresent(clientPath);
  }
}

function seriesSummary(series: Series): Summary | null {
  if (series.failure !== null) return null;
  return summarize(series.runs.map((run) => run.mbps));
}

/**
 * dfos's median over every other peer's median in the same direction (only
 * for dfos and dfos-tls; dfos's own are to the other programs, not to itself over TLS).
 */
function ratios(series: Series, all: Series[]): Partial<Record<PeerId, number>> {
  const result: Partial<Record<PeerId, number>> = {};
  const own = seriesSummary(series);
  if (!series.peer.id.startsWith("dfos") || own === null) return result;
  for (const other of all) {
    if (other.peer.id === series.peer.id || other.direction !== series.direction) continue;
    if (series.peer.id === "dfos" && other.peer.id.startsWith("dfos")) continue;
    const theirs = seriesSummary(other);
    if (theirs !== null) result[other.peer.id] = own.median / theirs.median;
  }
  return result;
}

function rowsOf(all: Series[], sizeMiB: number): Row[] {
  const rows: Row[] = all.map((series) => {
    const what = `${series.peer.id} ${series.direction} ${sizeMiB} MiB`;
    const summary = seriesSummary(series);
    if (summary === null) {
      return { section: "transfer", what, figure: "failed", judgement: null, note: series.failure ?? "no runs" };
    }
    const notes = Object.entries(ratios(series, all)).map(([id, ratio]) => `${ratio.toFixed(2)}x ${id}`);
    const busy = series.runs.filter((run) => !run.quiet).length;
    if (busy > 0) notes.push(`${busy} of ${series.runs.length} runs began on a busy machine`);
    notes.push(series.peer.label);
    return {
      section: "transfer",
      what,
      figure: `${formatSummary(summary, (value) => `${Math.round(value)}`)} MB/s`,
      judgement: null,
      note: notes.join("; "),
    };
  });
  const yardsticks = [
    ["dfos", "socat", TARGETS.nearSocat],
    ["dfos-verify", "socat", TARGETS.verifiedNearSocat],
    ["dfos", "rsync", TARGETS.aheadOfRsync],
    ["dfos", "sftp", TARGETS.twiceSftp],
  ] as const;
  for (const direction of DIRECTIONS) {
    for (const [ourId, id, target] of yardsticks) {
      const dfos = all.find((one) => one.peer.id === ourId && one.direction === direction);
      const other = all.find((one) => one.peer.id === id && one.direction === direction);
      const ours = dfos && seriesSummary(dfos);
      const theirs = other && seriesSummary(other);
      const what = `${ourId} ${direction} / ${id} ${direction}`;
      if (!ours || !theirs) {
        const why: string[] = [];
        if (!dfos) why.push(`${ourId} not in --peers`);
        else if (!ours) why.push(`${ourId} failed`);
        if (!other) why.push(`${id} not in --peers`);
        else if (!theirs) why.push(`${id} failed`);
        rows.push({
          section: "transfer",
          what,
          figure: "not measured",
          judgement: judge(target, null),
          note: why.join("; "),
        });
        continue;
      }
      const ratio = ours.median / theirs.median;
      rows.push({
        section: "transfer",
        what,
        figure: `${ratio.toFixed(2)}x (${Math.round(ours.median)} vs ${Math.round(theirs.median)} MB/s)`,
        judgement: judge(target, ratio),
        note: "medians of the same run",
      });
    }
    // The bare Deno copy: what a Deno program reaches here (against socat), and dfos against it; no targets.
    for (
      const [ourId, id, note] of [
        ["deno-bare", "socat", "the ceiling of a Deno program on this machine; medians of the same run"],
        ["dfos", "deno-bare", "dfos against the bare Deno copy; medians of the same run"],
      ] as const
    ) {
      const ours = all.find((one) => one.peer.id === ourId && one.direction === direction);
      const theirs = all.find((one) => one.peer.id === id && one.direction === direction);
      const oursSummary = ours && seriesSummary(ours);
      const theirsSummary = theirs && seriesSummary(theirs);
      if (!oursSummary || !theirsSummary) continue;
      rows.push({
        section: "transfer",
        what: `${ourId} ${direction} / ${id} ${direction}`,
        figure: `${(oursSummary.median / theirsSummary.median).toFixed(2)}x (${Math.round(oursSummary.median)} vs ${
          Math.round(theirsSummary.median)
        } MB/s)`,
        judgement: null,
        note,
      });
    }
    // Encrypted next to plaintext: no target, the figure issue 10 asks to report.
    const tls = all.find((one) => one.peer.id === "dfos-tls" && one.direction === direction);
    const plain = all.find((one) => one.peer.id === "dfos" && one.direction === direction);
    const plainSummary = plain && seriesSummary(plain);
    if (tls && plainSummary && seriesSummary(tls)) {
      const tlsMedian = seriesSummary(tls)!.median;
      rows.push({
        section: "transfer",
        what: `dfos-tls ${direction} / dfos ${direction}`,
        figure: `${(tlsMedian / plainSummary.median).toFixed(2)}x (${Math.round(tlsMedian)} vs ${
          Math.round(plainSummary.median)
        } MB/s)`,
        judgement: null,
        note: "TLS against plaintext; medians of the same run",
      });
    }
    // Encrypted next to encrypted: no target, but the figure issue 5 asks for.
    const sftp = all.find((one) => one.peer.id === "sftp" && one.direction === direction);
    const tlsSummary = tls && seriesSummary(tls);
    const sftpSummary = sftp && seriesSummary(sftp);
    if (tlsSummary && sftpSummary) {
      rows.push({
        section: "transfer",
        what: `dfos-tls ${direction} / sftp ${direction}`,
        figure: `${(tlsSummary.median / sftpSummary.median).toFixed(2)}x (${Math.round(tlsSummary.median)} vs ${
          Math.round(sftpSummary.median)
        } MB/s)`,
        judgement: null,
        note: "both encrypted; medians of the same run",
      });
    }
  }
  return rows;
}

function dataOf(all: Series[], settings: { sizeMiB: number; runs: number; peers: PeerId[] }) {
  return {
    unit: "MB/s = 10^6 bytes per second of wall time; one whole client process per run",
    settings: {
      ...settings,
      warmupRuns: 1,
      clientTimeoutSeconds: CLIENT_TIMEOUT_MS / 1000,
      quietPercent: QUIET_PERCENT,
      quietWaitSeconds: QUIET_WAIT_MS / 1000,
      socatBufferBytes: SOCAT_BUFFER,
    },
    results: all.map((series) => {
      const summary = seriesSummary(series);
      const versus = ratios(series, all);
      return {
        peer: series.peer.id,
        label: series.peer.label,
        servers: series.peer.servers.map((argv) => argv.join(" ")),
        direction: series.direction,
        status: summary === null ? "failed" : "ok",
        failure: series.failure,
        median: summary && round(summary.median),
        min: summary && round(summary.min),
        max: summary && round(summary.max),
        ratio: Object.fromEntries(Object.entries(versus).map(([id, ratio]) => [id, round(ratio, 2)])),
        runs: series.runs.map((run) => ({
          round: run.round,
          seconds: round(run.seconds, 3),
          mbps: round(run.mbps),
          busyPercent: run.busyPercent,
        })),
        commands: series.commands?.map((argv) => argv.join(" ")) ?? null,
      };
    }),
  };
}
