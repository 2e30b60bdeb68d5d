/**
 * Section "clients": many clients at once.
 *
 * - Processes: 32 client processes started together, each putting its own
 *   random 4 MiB file (`deno run -A main.ts put LOCAL NAME`), next to the
 *   rsync daemon doing the same with 32 `rsync` processes (the peers
 *   harness's concurrency row). Wall time from the first spawn to the last
 *   exit; aggregate MB/s over it; every file checked by SHA-256 on the server
 *   side. One untimed warm-up round, then the timed rounds, dfos and rsync
 *   interleaved; medians. Target: dfos's wall at most 1.5x rsync's.
 * - Streams: 64 concurrent puts (16 MiB each) over 64 connections from this
 *   one process (in-process `DfosClient`s, bodies made in memory), next to
 *   one put of 256 MiB over one connection, in the same rounds. Connections
 *   are opened before the clock starts; the time runs from the first put to
 *   the last reply. Every stored file is checked by SHA-256. Target: the
 *   aggregate at least 0.8x the single stream's MB/s.
 *
 * @module
 */

import { join } from "node:path";
import type { DfosClient } from "../client/connection.ts";
import { GeneratedBody } from "./bodies.ts";
import type { DfosServer } from "./dfos_server.ts";
import { sha256File } from "../tests/_common.ts";
import { removeIfPresent, syncFileSystems, writeRandomFile } from "./files.ts";
import { waitForQuiet } from "./machine.ts";
import { createPeer, type DfosPeer, type Peer } from "./peers.ts";
import type { Row } from "./report.ts";
import { messageOf, type SectionContext, type SectionResult, within } from "./section.ts";
import { formatSummary, round, summarize } from "./stats.ts";
import { judge, TARGETS } from "./targets.ts";

const MIB = 1024 * 1024;
/** How long one client process may run. */
const CLIENT_TIMEOUT_MS = 120_000;
/** Before each round, wait up to QUIET_WAIT_MS for the CPUs to be less busy than QUIET_PERCENT. */
const QUIET_PERCENT = 15;
const QUIET_WAIT_MS = 10_000;

/** One timed round of one kind. */
interface Round {
  round: number;
  seconds: number;
  mbps: number;
  /** Clients that failed (exit status, timeout, refused). */
  failed: number;
  /** Files found on the server with the right SHA-256. */
  verified: number;
  busyPercent: number;
}

/** The rounds of one kind and its first failure. */
interface Series {
  what: string;
  /** Transfers per round. */
  transfers: number;
  /** Bytes per round. */
  bytes: number;
  rounds: Round[];
  failures: string[];
  /** The command line of one client process (for the process rounds). */
  command?: string;
}

/** One of the files the client processes put. */
interface LocalFile {
  path: string;
  name: string;
  sha256: string;
}

/**
 * Runs the section.
 *
 * @param context The section's folder, processes and settings.
 * @returns The rows and figures.
 */
export async function clientsSection(context: SectionContext): Promise<SectionResult> {
  const { dir, processes, settings, say } = context;
  const { processes: count, fileMiB, runs, streams, streamMiB, singleMiB } = settings.clients;
  for (const sub of ["data", "srv", "logs"]) await Deno.mkdir(join(dir, sub));
  const peerContext = { dir, processes, timeoutMs: CLIENT_TIMEOUT_MS };
  const dfos = createPeer("dfos", peerContext) as DfosPeer;
  const rsync = createPeer("rsync", peerContext);
  context.defer(async () => await rsync.close?.());

  say(`clients: writing ${count} random files of ${fileMiB} MiB`);
  const files: LocalFile[] = [];
  for (let i = 1; i <= count; i++) {
    const path = join(dir, "data", `c${i}.bin`);
    await writeRandomFile(path, fileMiB);
    files.push({ path, name: `c${i}.bin`, sha256: await sha256File(path) });
  }
  await syncFileSystems();

  const bytes = count * fileMiB * MIB;
  const dfosProcesses = newSeries(`dfos, ${count} processes x ${fileMiB} MiB put`, count, bytes);
  const rsyncProcesses = newSeries(`rsync, ${count} processes x ${fileMiB} MiB put`, count, bytes);
  const single = newSeries(`dfos, 1 connection x ${singleMiB} MiB put`, 1, singleMiB * MIB);
  const aggregate = newSeries(
    `dfos, ${streams} connections x ${streamMiB} MiB put, one process`,
    streams,
    streams * streamMiB * MIB,
  );

  const unavailable = new Set<Peer>();
  for (const [peer, series] of [[dfos, dfosProcesses], [rsync, rsyncProcesses]] as const) {
    try {
      await peer.start();
    } catch (error) {
      series.failures.push(`not available: ${messageOf(error)}`);
      unavailable.add(peer);
    }
  }
  say(`clients: making ${streams} bodies of ${streamMiB} MiB and one of ${singleMiB} MiB in memory`);
  const streamBodies = Array.from({ length: streams }, () => new GeneratedBody(streamMiB * MIB));
  const singleBody = new GeneratedBody(singleMiB * MIB);
  for (const body of [...streamBodies, singleBody]) body.sha256(); // untimed

  for (let round = 0; round <= runs; round++) {
    say(`clients: ${round === 0 ? "warm-up round (untimed)" : `round ${round} of ${runs}`}`);
    for (const [peer, series] of [[dfos, dfosProcesses], [rsync, rsyncProcesses]] as const) {
      context.signal.throwIfAborted();
      if (!unavailable.has(peer)) await processRound(peer, files, series, round, context);
    }
    if (unavailable.has(dfos)) continue;
    for (const [series, bodies] of [[single, [singleBody]], [aggregate, streamBodies]] as const) {
      context.signal.throwIfAborted();
      await streamRound(dfos.server, bodies, series, round, context);
    }
  }
  const all = [dfosProcesses, rsyncProcesses, single, aggregate];
  return {
    rows: rowsOf(dfosProcesses, rsyncProcesses, single, aggregate),
    data: {
      method: {
        processes: "N client processes spawned together, each putting its own random file; wall from the first " +
          "spawn to the last exit; every file sha256-checked on the server side",
        streams: "in-process DfosClients, one connection each, bodies made in memory; connections opened before " +
          "the clock; time from the first put to the last reply; every stored file sha256-checked",
      },
      warmupRounds: 1,
      rsyncLabel: rsync.label,
      series: all.map((series) => {
        const seconds = summarize(series.rounds.map((one) => one.seconds));
        const mbps = summarize(series.rounds.map((one) => one.mbps));
        return {
          what: series.what,
          transfers: series.transfers,
          bytes: series.bytes,
          medianSeconds: seconds && round(seconds.median, 3),
          medianMbps: mbps && round(mbps.median),
          failures: series.failures,
          command: series.command ?? null,
          rounds: series.rounds.map((one) => ({ ...one, seconds: round(one.seconds, 3), mbps: round(one.mbps) })),
        };
      }),
    },
    failures: all.filter((series) => series.failures.length > 0 || series.rounds.length === 0).length,
  };
}

function newSeries(what: string, transfers: number, bytes: number): Series {
  return { what, transfers, bytes, rounds: [], failures: [] };
}

/** One round of N client processes at once; round 0 is the warm-up, checked but not recorded. */
async function processRound(
  peer: Peer,
  files: LocalFile[],
  series: Series,
  round: number,
  context: SectionContext,
): Promise<void> {
  for (const file of files) await removeIfPresent(peer.serverPath(file.name));
  await syncFileSystems();
  const quiet = await waitForQuiet(QUIET_PERCENT, QUIET_WAIT_MS);
  const begun = performance.now();
  const outcomes = await Promise.all(
    files.map((file) =>
      peer.transfer("put", file.path, file.name).then((commands) => {
        series.command ??= commands.map((argv) => argv.join(" ")).join("; ");
        return null;
      }, (error) => messageOf(error))
    ),
  );
  const seconds = (performance.now() - begun) / 1000;
  let verified = 0;
  for (const file of files) {
    const digest = await sha256File(peer.serverPath(file.name)).catch(() => "no file");
    if (digest === file.sha256) verified++;
    await removeIfPresent(peer.serverPath(file.name));
  }
  record(series, round, seconds, outcomes, verified, quiet.percent, context);
}

/** One round of in-process puts at once, one connection each. */
async function streamRound(
  server: DfosServer,
  bodies: readonly GeneratedBody[],
  series: Series,
  round: number,
  context: SectionContext,
): Promise<void> {
  const names = bodies.map((_, index) => `stream-${index}.bin`);
  for (const name of names) await removeIfPresent(server.path(name));
  await syncFileSystems();
  const quiet = await waitForQuiet(QUIET_PERCENT, QUIET_WAIT_MS);
  const clients: DfosClient[] = [];
  let outcomes: (string | null)[];
  let seconds = 0;
  try {
    for (const _ of bodies) clients.push(await server.connect());
    const begun = performance.now();
    const puts = bodies.map((body, index) =>
      clients[index].put(names[index], body.chunks(), { size: body.size }).then(() => null, (error) => messageOf(error))
    );
    outcomes = await within(Promise.all(puts), 30_000 + series.bytes / 1e5, series.what);
    seconds = (performance.now() - begun) / 1000;
  } catch (error) {
    outcomes = [messageOf(error)];
  } finally {
    await Promise.all(clients.map((client) => client.close().catch(() => {})));
  }
  let verified = 0;
  for (const [index, body] of bodies.entries()) {
    const digest = await sha256File(server.path(names[index])).catch(() => "no file");
    if (digest === body.sha256()) verified++;
    await removeIfPresent(server.path(names[index]));
  }
  record(series, round, seconds, outcomes, verified, quiet.percent, context);
}

function record(
  series: Series,
  round: number,
  seconds: number,
  outcomes: (string | null)[],
  verified: number,
  busyPercent: number,
  context: SectionContext,
): void {
  const failed = outcomes.filter((outcome) => outcome !== null);
  for (const failure of failed) if (!series.failures.includes(failure)) series.failures.push(failure);
  if (verified < series.transfers && failed.length === 0) {
    series.failures.push(`${series.transfers - verified} stored file(s) missing or with another sha256`);
  }
  const mbps = seconds > 0 ? series.bytes / seconds / 1e6 : 0;
  context.say(
    `clients: ${series.what}: ${seconds.toFixed(2)} s, ${Math.round(mbps)} MB/s, ` +
      `${verified}/${series.transfers} verified${round === 0 ? ", warm-up" : ""}`,
  );
  if (round === 0) return;
  series.rounds.push({ round, seconds, mbps, failed: failed.length, verified, busyPercent });
}

/** A series' medians, or null when it has no rounds. */
function medians(series: Series) {
  const seconds = summarize(series.rounds.map((one) => one.seconds));
  const mbps = summarize(series.rounds.map((one) => one.mbps));
  return seconds && mbps && { seconds, mbps };
}

function checked(series: Series): string {
  const verified = series.rounds.reduce((sum, one) => sum + one.verified, 0);
  return `${verified}/${series.rounds.length * series.transfers} files sha256-verified`;
}

function rowsOf(dfos: Series, rsync: Series, single: Series, aggregate: Series): Row[] {
  const rows: Row[] = [];
  const ours = medians(dfos);
  const theirs = medians(rsync);
  // a failed or unverified transfer anywhere leaves the target unjudged: MISSED
  const clean = dfos.failures.length === 0 && rsync.failures.length === 0;
  const wallRatio = ours && theirs ? ours.seconds.median / theirs.seconds.median : null;
  for (const [series, figures] of [[dfos, ours], [rsync, theirs]] as const) {
    const notes = [checked(series), ...series.failures];
    if (series === dfos && wallRatio !== null && theirs) {
      notes.unshift(`${wallRatio.toFixed(2)}x rsync's ${theirs.seconds.median.toFixed(2)} s`);
    }
    rows.push({
      section: "clients",
      what: `${series.what}, wall`,
      figure: figures
        ? `${formatSummary(figures.seconds, (value) => value.toFixed(2))} s, ${Math.round(figures.mbps.median)} MB/s`
        : "failed",
      judgement: series === dfos ? judge(TARGETS.clientsWall, clean ? wallRatio : null) : null,
      note: notes.join("; "),
    });
  }
  const one = medians(single);
  const many = medians(aggregate);
  const share = one && many ? many.mbps.median / one.mbps.median : null;
  const streamsClean = single.failures.length === 0 && aggregate.failures.length === 0;
  const notes = [checked(aggregate), ...aggregate.failures];
  if (share !== null && one) notes.unshift(`${share.toFixed(2)}x one stream's ${Math.round(one.mbps.median)} MB/s`);
  rows.push({
    section: "clients",
    what: `${aggregate.what}, aggregate`,
    figure: many ? `${formatSummary(many.mbps, (value) => `${Math.round(value)}`)} MB/s` : "failed",
    judgement: judge(TARGETS.streamsAggregate, streamsClean ? share : null),
    note: notes.join("; "),
  });
  rows.push({
    section: "clients",
    what: single.what,
    figure: one ? `${formatSummary(one.mbps, (value) => `${Math.round(value)}`)} MB/s` : "failed",
    judgement: null,
    note: [checked(single), ...single.failures].join("; "),
  });
  return rows;
}
