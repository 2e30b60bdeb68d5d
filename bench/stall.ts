/**
 * Section "stall": what one user's large files do to another user's small
 * requests on the same server. An in-process client of a second user peeks
 * at a 1 KiB file (a get limited to 1024 bytes), one request at a time,
 * while the first user, as whole `dfos` processes, puts a 1 GiB file (new),
 * puts it again (replacing it) and deletes it. Figures: each phase's longest
 * peek (from request to END) among those that overlapped it, the number
 * answered, and their median; before the phases, the same for a quiet second.
 * Target (issue 10): while the file is replaced, and while it is deleted, no
 * peek waits more than 50 ms.
 *
 * @module
 */

import { join } from "node:path";
import type { DfosClient } from "../client/connection.ts";
import { oneChunk } from "./bodies.ts";
import { BENCH_OTHER_USER, DfosServer } from "./dfos_server.ts";
import { syncFileSystems, writeRandomFile } from "./files.ts";
import type { Row } from "./report.ts";
import { messageOf, type SectionContext, type SectionResult } from "./section.ts";
import { round, summarize } from "./stats.ts";
import { judge, TARGETS } from "./targets.ts";

/** How long one client process may run. */
const CLIENT_TIMEOUT_MS = 120_000;
/** The quiet phase's length. */
const QUIET_MS = 1_000;
/** The peeked file's size. */
const SMALL_BYTES = 1024;

/** One peek: when it was asked and when its END arrived. */
interface Peek {
  start: number;
  end: number;
}

/** One phase's figures. */
interface Phase {
  what: string;
  seconds: number;
  peeks: number;
  longestMs: number | null;
  medianMs: number | null;
  /** Judged against the target. */
  judged: boolean;
}

/**
 * Runs the section.
 *
 * @param context The section's folder, processes and settings.
 * @returns The rows and figures.
 */
export async function stallSection(context: SectionContext): Promise<SectionResult> {
  const { dir, processes, settings, say } = context;
  const sizeMiB = settings.stall.sizeMiB;
  await Deno.mkdir(join(dir, "data"));
  await Deno.mkdir(join(dir, "srv"));
  const server = await DfosServer.start({ dir: join(dir, "srv"), processes });
  say(`stall: writing a ${sizeMiB} MiB random file`);
  const local = join(dir, "data", "large.bin");
  await writeRandomFile(local, sizeMiB);
  await syncFileSystems();

  const pinger = await server.connect(BENCH_OTHER_USER);
  const peeks: Peek[] = [];
  let running = true;
  let failure: string | null = null;
  const phases: Phase[] = [];
  try {
    const data = crypto.getRandomValues(new Uint8Array(SMALL_BYTES));
    await pinger.put("small.bin", oneChunk(data), { size: SMALL_BYTES });
    const pinging = pingLoop(pinger, peeks, () => running).catch((error) => {
      failure = `a peek failed: ${messageOf(error)}`;
    });
    const phase = async (what: string, judged: boolean, work: () => Promise<void>) => {
      context.signal.throwIfAborted();
      const from = performance.now();
      await work();
      const to = performance.now();
      const inside = peeks.filter((peek) => peek.end > from && peek.start < to).map((peek) => peek.end - peek.start);
      const summary = summarize(inside);
      phases.push({
        what,
        seconds: (to - from) / 1000,
        peeks: inside.length,
        longestMs: summary?.max ?? null,
        medianMs: summary?.median ?? null,
        judged,
      });
      say(`stall: ${what}: longest peek ${summary?.max.toFixed(1) ?? "-"} ms, ${inside.length} answered`);
    };
    const cli = async (args: string[]) => {
      const call = server.cli(args);
      const result = await processes.runClient(call.argv, {
        env: call.env,
        cwd: call.cwd,
        timeoutMs: CLIENT_TIMEOUT_MS,
      });
      if (result.code !== 0) {
        throw new Error(`dfos ${args[0]} exited with status ${result.code}: ${result.stderr.trim()}`);
      }
    };
    await phase("quiet", false, () => new Promise((resolve) => setTimeout(resolve, QUIET_MS)));
    await phase(`put of a new ${sizeMiB} MiB file`, false, () => cli(["put", local, "large.bin"]));
    await phase(`put replacing the ${sizeMiB} MiB file`, true, () => cli(["put", local, "large.bin"]));
    await phase(`rm of the ${sizeMiB} MiB file`, true, () => cli(["rm", "large.bin"]));
    running = false;
    await pinging;
  } catch (error) {
    failure ??= messageOf(error);
  } finally {
    running = false;
    await pinger.close().catch(() => {});
  }
  return {
    rows: rowsOf(phases, failure),
    data: {
      method: `another user's in-process client peeks at a ${SMALL_BYTES}-byte file, one request at a time, ` +
        `while dfos put (new), put (replacing) and rm of a ${sizeMiB} MiB file run as whole processes`,
      sizeMiB,
      failure,
      phases: phases.map((one) => ({
        ...one,
        seconds: round(one.seconds, 3),
        longestMs: one.longestMs === null ? null : round(one.longestMs, 1),
        medianMs: one.medianMs === null ? null : round(one.medianMs, 2),
      })),
    },
    failures: failure === null ? 0 : 1,
  };
}

/** Peeks, one at a time, until `more()` says stop; records each. */
async function pingLoop(client: DfosClient, peeks: Peek[], more: () => boolean): Promise<void> {
  while (more()) {
    const start = performance.now();
    const download = await client.get("small.bin", { limit: SMALL_BYTES });
    for await (const _ of download.body.chunks()) {
      // read to END
    }
    peeks.push({ start, end: performance.now() });
  }
}

function rowsOf(phases: Phase[], failure: string | null): Row[] {
  const rows: Row[] = phases.map((phase) => ({
    section: "stall",
    what: `another user's peek during ${phase.what}`,
    figure: phase.longestMs === null ? "no peek answered" : `longest ${phase.longestMs.toFixed(1)} ms`,
    judgement: phase.judged ? judge(TARGETS.peekStall, failure === null ? phase.longestMs : null) : null,
    note: `${phase.peeks} peeks in ${phase.seconds.toFixed(2)} s, median ${phase.medianMs?.toFixed(2) ?? "-"} ms` +
      (failure === null ? "" : `; ${failure}`),
  }));
  // A phase that never ran misses its target in the table rather than leaving it out.
  for (const what of ["replacing", "rm"].slice(phases.filter((phase) => phase.judged).length)) {
    rows.push({
      section: "stall",
      what: `another user's peek during the large file's ${what}`,
      figure: "not measured",
      judgement: judge(TARGETS.peekStall, null),
      note: failure ?? "",
    });
  }
  return rows;
}
