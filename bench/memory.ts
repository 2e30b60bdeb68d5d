/**
 * Section "memory": the server's peak RSS while many clients move large
 * files at once. For each file size (256 MiB, then 64 MiB), a fresh server
 * process; 32 in-process clients, each on its own connection, each put its
 * own file and then get it back, all at once; every body that comes back is
 * checked against the SHA-256 of what was sent. The peak is the server's
 * VmHWM at the end (the kernel's own high-water mark of the resident set,
 * which a fresh process per size makes that run's), cross-checked by polling
 * VmRSS every 50 ms. Targets: at most 160 MiB for each size, and the two
 * peaks the same (memory does not grow with file size).
 *
 * @module
 */

import { join } from "node:path";
import { GeneratedBody, sha256Of } from "./bodies.ts";
import { DfosServer } from "./dfos_server.ts";
import { RssSampler } from "./process_memory.ts";
import type { Row } from "./report.ts";
import { messageOf, type SectionContext, type SectionResult, within } from "./section.ts";
import { round } from "./stats.ts";
import { judge, TARGETS } from "./targets.ts";

const MIB = 1024 * 1024;
/** The round trips of one size must end within this, plus a second per 100 MB moved. */
const BASE_TIMEOUT_MS = 30_000;

/** What one file size gave. */
interface SizeRun {
  sizeMiB: number;
  clients: number;
  /** The server's VmHWM at the end, in bytes; null if the run failed before. */
  peakBytes: number | null;
  /** The highest VmRSS polled during the round trips. */
  sampledPeakBytes: number | null;
  /** VmRSS just before the round trips. */
  startBytes: number | null;
  /** From the first put to the last verified get. */
  seconds: number | null;
  /** Round trips whose body came back with the SHA-256 sent. */
  verified: number;
  /** Why the others failed (or the whole run), distinct messages. */
  failures: string[];
}

/**
 * Runs the section.
 *
 * @param context The section's folder, processes and settings.
 * @returns The rows and figures.
 */
export async function memorySection(context: SectionContext): Promise<SectionResult> {
  const { clients, sizesMiB } = context.settings.memory;
  const runs: SizeRun[] = [];
  for (const sizeMiB of sizesMiB) {
    context.signal.throwIfAborted();
    runs.push(await measureSize(sizeMiB, clients, context));
  }
  return {
    rows: rowsOf(runs),
    data: {
      method: "one fresh server per size; N in-process clients at once, each on its own connection, " +
        "put a generated file then get it back, sha256 checked; peak = the server's VmHWM at the end",
      sampleIntervalMs: 50,
      runs: runs.map((run) => ({
        ...run,
        peakMiB: run.peakBytes === null ? null : round(run.peakBytes / MIB),
        sampledPeakMiB: run.sampledPeakBytes === null ? null : round(run.sampledPeakBytes / MIB),
        startMiB: run.startBytes === null ? null : round(run.startBytes / MIB),
        seconds: run.seconds === null ? null : round(run.seconds, 2),
      })),
    },
    failures: runs.filter((run) => run.peakBytes === null || run.verified < run.clients).length,
  };
}

async function measureSize(sizeMiB: number, clients: number, context: SectionContext): Promise<SizeRun> {
  const { processes, say } = context;
  const run: SizeRun = {
    sizeMiB,
    clients,
    peakBytes: null,
    sampledPeakBytes: null,
    startBytes: null,
    seconds: null,
    verified: 0,
    failures: [],
  };
  const dir = join(context.dir, `${sizeMiB}-mib`);
  await Deno.mkdir(dir);
  let server: DfosServer | null = null;
  try {
    server = await DfosServer.start({ dir, processes });
    const running = server;
    say(`memory: ${clients} clients x ${sizeMiB} MiB, put then get, on a fresh server (pid ${running.pid})`);
    const bodies = Array.from({ length: clients }, () => new GeneratedBody(sizeMiB * MIB));
    run.startBytes = (await running.memory()).rss;
    const sampler = new RssSampler(running.pid);
    const begun = performance.now();
    const timeoutMs = BASE_TIMEOUT_MS + (2 * clients * sizeMiB * MIB) / 1e5;
    let outcomes: (string | null)[];
    try {
      outcomes = await within(
        Promise.all(bodies.map((body, index) => roundTrip(running, body, `memory-${index}.bin`))),
        timeoutMs,
        `${clients} round trips of ${sizeMiB} MiB`,
      );
    } finally {
      run.sampledPeakBytes = (await sampler.stop()).highest;
    }
    run.seconds = (performance.now() - begun) / 1000;
    run.peakBytes = (await running.memory()).peak;
    run.verified = outcomes.filter((outcome) => outcome === null).length;
    run.failures = [...new Set(outcomes.filter((outcome) => outcome !== null))];
    say(
      `memory: ${sizeMiB} MiB: server peak ${(run.peakBytes / MIB).toFixed(1)} MiB, ` +
        `${run.verified}/${clients} verified, ${run.seconds.toFixed(1)} s`,
    );
  } catch (error) {
    context.signal.throwIfAborted();
    run.failures.push(messageOf(error));
    say(`memory: ${sizeMiB} MiB failed: ${messageOf(error)}`);
  } finally {
    await server?.stop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
  return run;
}

/** One client: connect, put the body, get it back and compare digests. Null when all went well, else why not. */
async function roundTrip(server: DfosServer, body: GeneratedBody, name: string): Promise<string | null> {
  try {
    const client = await server.connect();
    try {
      await client.put(name, body.chunks(), { size: body.size });
      const download = await client.get(name);
      const back = await sha256Of(download.body.chunks());
      if (back.size !== body.size) return `got ${back.size} bytes back instead of ${body.size}`;
      if (back.sha256 !== body.sha256()) return "sha256 of the body that came back differs from the one sent";
      return null;
    } finally {
      await client.close();
    }
  } catch (error) {
    return messageOf(error);
  }
}

function rowsOf(runs: SizeRun[]): Row[] {
  const rows: Row[] = runs.map((run) => {
    const what = `server peak RSS, ${run.clients} clients x ${run.sizeMiB} MiB put+get`;
    if (run.peakBytes === null || run.seconds === null) {
      return {
        section: "memory",
        what,
        figure: "failed",
        judgement: judge(TARGETS.peakRss, null),
        note: run.failures.join("; "),
      };
    }
    const moved = 2 * run.clients * run.sizeMiB * MIB;
    const notes = [
      `${run.verified}/${run.clients} round trips sha256-verified`,
      `${run.seconds.toFixed(1)} s, ${Math.round(moved / run.seconds / 1e6)} MB/s`,
      `polled max ${((run.sampledPeakBytes ?? 0) / MIB).toFixed(1)} MiB, at start ${
        ((run.startBytes ?? 0) / MIB).toFixed(1)
      } MiB`,
      ...run.failures,
    ];
    const peakMiB = run.peakBytes / MIB;
    // a transfer that failed does not count as a low peak
    const judged = run.verified === run.clients ? peakMiB : null;
    return {
      section: "memory",
      what,
      figure: `${peakMiB.toFixed(1)} MiB (VmHWM)`,
      judgement: judge(TARGETS.peakRss, judged),
      note: notes.join("; "),
    };
  });
  if (runs.length >= 2) {
    const peaks = runs.map((run) => run.peakBytes);
    const what = `peak RSS, ${runs.map((run) => `${run.sizeMiB}`).join(" vs ")} MiB files`;
    if (peaks.some((peak) => peak === null)) {
      rows.push({ section: "memory", what, figure: "not measured", judgement: judge(TARGETS.flatRss, null) });
    } else {
      const values = peaks as number[];
      const ratio = Math.max(...values) / Math.min(...values);
      rows.push({
        section: "memory",
        what,
        figure: `${ratio.toFixed(2)}x (${values.map((peak) => (peak / MIB).toFixed(1)).join(" vs ")} MiB)`,
        judgement: judge(TARGETS.flatRss, ratio),
        note: "larger peak over smaller",
      });
    }
  }
  return rows;
}
