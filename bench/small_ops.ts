/**
 * Section "small": small operations.
 *
 * - One whole `dfos put` of a 1 KiB file, from process start to exit, next
 *   to the rsync daemon's (`--sockopts=TCP_NODELAY`: rsync sends its
 *   handshake in small writes) and sftp's (`-o
 *   KexAlgorithms=curve25519-sha256`: OpenSSH 9's default key exchange costs
 *   more), as the peers harness measures them: 2 untimed warm-up rounds,
 *   then 20 timed rounds, the peers interleaved; every stored file checked by
 *   SHA-256; in each round also an empty `deno run` (a script that does
 *   nothing), the floor of any Deno command. Target: dfos's median at most
 *   twice the empty run's (issue 10).
 * - The rate of small operations over one connection with the in-process
 *   client: put, peek (a get limited to 1024 bytes) and rm of 1 KiB files,
 *   each peek compared with what was put. After a warm-up, 3 runs, each of 3
 *   s or 3,000 operations, whichever comes first. Target: at least 2,000
 *   operations per second.
 *
 * @module
 */

import { join } from "node:path";
import type { DfosClient } from "../client/connection.ts";
import { oneChunk } from "./bodies.ts";
import { sha256File } from "../tests/_common.ts";
import { removeIfPresent } from "./files.ts";
import { waitForQuiet } from "./machine.ts";
import { createPeer, type DfosPeer, type Peer } from "./peers.ts";
import type { Row } from "./report.ts";
import { messageOf, type SectionContext, type SectionResult, within } from "./section.ts";
import { formatSummary, round, summarize } from "./stats.ts";
import { judge, TARGETS } from "./targets.ts";

/** How long one client process may run. */
const CLIENT_TIMEOUT_MS = 30_000;
/** Before each round, wait up to QUIET_WAIT_MS for the CPUs to be less busy than QUIET_PERCENT. */
const QUIET_PERCENT = 15;
const QUIET_WAIT_MS = 5_000;
/** Put/peek/rm cycles before the timed runs of the operation loop. */
const WARMUP_CYCLES = 100;
/** The size of each small file. */
const SMALL_BYTES = 1024;

/** The whole-process puts of one peer. */
interface PutSeries {
  peer: Peer;
  milliseconds: number[];
  verified: number;
  failure: string | null;
  /** The command lines of its first timed put. */
  commands: string[][] | null;
}

/** One timed run of the operation loop. */
interface OpsRun {
  operations: number;
  seconds: number;
  perSecond: number;
}

/**
 * Runs the section.
 *
 * @param context The section's folder, processes and settings.
 * @returns The rows and figures.
 */
export async function smallSection(context: SectionContext): Promise<SectionResult> {
  const { dir, processes, settings, say } = context;
  const { runs, warmups, opsRuns, opsSeconds, opsLimit } = settings.small;
  for (const sub of ["data", "srv", "logs"]) await Deno.mkdir(join(dir, sub));
  const peerContext = { dir, processes, timeoutMs: CLIENT_TIMEOUT_MS };
  const dfos = createPeer("dfos", peerContext) as DfosPeer;
  const peers: Peer[] = [
    dfos,
    createPeer("rsync", peerContext, { clientArgs: ["--sockopts=TCP_NODELAY"] }),
    createPeer("sftp", peerContext, { clientArgs: ["-o", "KexAlgorithms=curve25519-sha256"] }),
  ];
  for (const peer of peers) context.defer(async () => await peer.close?.());
  const empty = join(dir, "data", "empty.ts");
  await Deno.writeTextFile(empty, "\n");
  const emptyRuns: number[] = [];
  const local = join(dir, "data", "small-1k.bin");
  await Deno.writeFile(local, crypto.getRandomValues(new Uint8Array(SMALL_BYTES)));
  const sha256 = await sha256File(local);

  const series: PutSeries[] = [];
  for (const peer of peers) {
    const one: PutSeries = { peer, milliseconds: [], verified: 0, failure: null, commands: null };
    try {
      await peer.start();
    } catch (error) {
      one.failure = `not available: ${messageOf(error)}`;
    }
    series.push(one);
  }
  say(`small: 1 KiB put as a whole process, ${warmups} warm-up and ${runs} timed rounds`);
  for (let round = 1 - warmups; round <= runs; round++) {
    await waitForQuiet(QUIET_PERCENT, QUIET_WAIT_MS);
    for (const one of series) {
      context.signal.throwIfAborted();
      if (one.failure === null) await putOnce(one, local, sha256, round >= 1);
    }
    const begun = performance.now();
    await new Deno.Command(Deno.execPath(), { args: ["run", empty], stdin: "null", stdout: "null" }).output();
    if (round >= 1) emptyRuns.push(performance.now() - begun);
  }
  for (const one of series) {
    const summary = summarize(one.milliseconds);
    say(`small: ${one.peer.id} 1 KiB put: ${summary ? `${summary.median.toFixed(1)} ms` : one.failure}`);
  }

  let ops: { runs: OpsRun[]; failure: string | null } = { runs: [], failure: "dfos not available" };
  if (series[0].failure === null) {
    say(`small: put/peek/rm over one connection, ${opsRuns} runs of ${opsSeconds} s or ${opsLimit} operations`);
    const client = await dfos.server.connect();
    try {
      ops = await within(operationRuns(client, settings.small), 60_000 + opsRuns * opsSeconds * 1000, "the operations");
    } catch (error) {
      ops = { runs: [], failure: messageOf(error) };
    } finally {
      await client.close().catch(() => {});
    }
  }
  return {
    rows: rowsOf(series, ops, runs, emptyRuns),
    data: {
      putRuns: runs,
      emptyDenoRunMs: emptyRuns.map((value) => round(value)),
      putWarmups: warmups,
      puts: series.map((one) => {
        const summary = summarize(one.milliseconds);
        return {
          peer: one.peer.id,
          label: one.peer.label,
          medianMs: summary && round(summary.median),
          minMs: summary && round(summary.min),
          maxMs: summary && round(summary.max),
          verified: one.verified,
          failure: one.failure,
          milliseconds: one.milliseconds.map((value) => round(value)),
          servers: one.peer.servers.map((argv) => argv.join(" ")),
          commands: one.commands?.map((argv) => argv.join(" ")) ?? null,
        };
      }),
      operations: {
        method: "one in-process client, one connection: put 1 KiB, peek 1024 bytes (compared), rm; " +
          `each run ${opsSeconds} s or ${opsLimit} operations, after ${WARMUP_CYCLES} untimed cycles`,
        failure: ops.failure,
        runs: ops.runs.map((run) => ({ ...run, seconds: round(run.seconds, 3), perSecond: round(run.perSecond) })),
      },
    },
    failures: series.filter((one) => one.failure !== null).length + (ops.failure === null ? 0 : 1),
  };
}

/** One whole-process 1 KiB put, checked; recorded unless it is a warm-up. */
async function putOnce(one: PutSeries, local: string, sha256: string, timed: boolean): Promise<void> {
  const name = "small-1k.bin";
  const stored = one.peer.serverPath(name);
  try {
    await removeIfPresent(stored);
    const begun = performance.now();
    const commands = await one.peer.transfer("put", local, name);
    const milliseconds = performance.now() - begun;
    if ((await sha256File(stored).catch(() => "no file")) !== sha256) {
      one.failure = "the stored file is missing or has another sha256";
      return;
    }
    if (!timed) return;
    one.commands ??= commands;
    one.milliseconds.push(milliseconds);
    one.verified++;
  } catch (error) {
    one.failure = messageOf(error);
  } finally {
    await removeIfPresent(stored);
  }
}

/** The warm-up cycles, then the timed runs of put/peek/rm over one connection. */
async function operationRuns(
  client: DfosClient,
  settings: { opsRuns: number; opsSeconds: number; opsLimit: number },
): Promise<{ runs: OpsRun[]; failure: string | null }> {
  const data = crypto.getRandomValues(new Uint8Array(SMALL_BYTES));
  let cycle = 0;
  for (; cycle < WARMUP_CYCLES; cycle++) await putPeekRemove(client, `warm-${cycle}.bin`, data);
  const runs: OpsRun[] = [];
  for (let run = 0; run < settings.opsRuns; run++) {
    let operations = 0;
    const begun = performance.now();
    const deadline = begun + settings.opsSeconds * 1000;
    while (operations + 3 <= settings.opsLimit && performance.now() < deadline) {
      await putPeekRemove(client, `op-${cycle++}.bin`, data);
      operations += 3;
    }
    const seconds = (performance.now() - begun) / 1000;
    runs.push({ operations, seconds, perSecond: operations / seconds });
  }
  return { runs, failure: null };
}

async function putPeekRemove(client: DfosClient, name: string, data: Uint8Array): Promise<void> {
  await client.put(name, oneChunk(data), { size: data.length });
  const download = await client.get(name, { limit: SMALL_BYTES });
  const parts: Uint8Array[] = [];
  for await (const chunk of download.body.chunks()) parts.push(chunk);
  const back = parts.length === 1 ? parts[0] : concat(parts);
  if (back.length !== data.length || !back.every((byte, index) => byte === data[index])) {
    throw new Error(`Peek of "${name}" returned other bytes than were put`);
  }
  await client.remove(name);
}

function concat(parts: Uint8Array[]): Uint8Array {
  const whole = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    whole.set(part, offset);
    offset += part.length;
  }
  return whole;
}

function rowsOf(
  series: PutSeries[],
  ops: { runs: OpsRun[]; failure: string | null },
  runs: number,
  emptyRuns: number[],
): Row[] {
  const rows: Row[] = [];
  const rsync = series.find((one) => one.peer.id === "rsync");
  const rsyncMedian = rsync && rsync.failure === null ? summarize(rsync.milliseconds)?.median ?? null : null;
  const empty = summarize(emptyRuns);
  for (const one of series) {
    const summary = one.failure === null ? summarize(one.milliseconds) : null;
    const isDfos = one.peer.id === "dfos";
    const ratio = isDfos && summary && empty ? summary.median / empty.median : null;
    const notes = [`${one.verified}/${runs} sha256-verified`, one.peer.label];
    if (isDfos && summary && rsyncMedian !== null) {
      notes.unshift(`${(summary.median / rsyncMedian).toFixed(2)}x rsync's ${rsyncMedian.toFixed(1)} ms`);
    }
    if (ratio !== null && empty) {
      notes.unshift(`${ratio.toFixed(2)}x an empty deno run's ${empty.median.toFixed(1)} ms`);
    }
    if (one.failure !== null) notes.unshift(one.failure);
    rows.push({
      section: "small",
      what: `${one.peer.id} put 1 KiB, whole process`,
      figure: summary ? `${formatSummary(summary, (value) => value.toFixed(1))} ms` : "failed",
      judgement: isDfos ? judge(TARGETS.smallPut, ratio) : null,
      note: notes.join("; "),
    });
  }
  rows.push({
    section: "small",
    what: "empty deno run, whole process",
    figure: empty ? `${formatSummary(empty, (value) => value.toFixed(1))} ms` : "not measured",
    judgement: null,
    note: "deno run of a script that does nothing: the floor of a Deno command",
  });
  const rate = summarize(ops.runs.map((run) => run.perSecond));
  rows.push({
    section: "small",
    what: "put+peek+rm of 1 KiB, one connection",
    figure: rate && ops.failure === null
      ? `${formatSummary(rate, (value) => Math.round(value).toLocaleString("en-US"))} ops/s`
      : "failed",
    judgement: judge(TARGETS.smallOps, ops.failure === null ? rate?.median ?? null : null),
    note: ops.failure ?? `median of ${ops.runs.length} runs; every peek compared with what was put`,
  });
  return rows;
}
