/**
 * The dfos benchmark (`deno task bench`): everything issue 4 asks to
 * measure, in one run, each figure next to its target.
 *
 *     deno task bench                               # every section, issue 4's sizes (about 6 minutes here)
 *     deno task bench --only small,idle             # some sections
 *     deno task bench --quick                       # small sizes: a check of the benchmark itself
 *     deno task bench --only transfer --size 256 --runs 5 --peers rsync,dfos
 *
 * Sections (each in its own module, run in this order):
 * - `transfer` (transfer.ts): 1 GiB put and get, one whole client process
 *   each, next to socat, an rsync daemon and sftp.
 * - `memory` (memory.ts): the server's peak RSS while 32 clients put and get
 *   256 MiB files at once, then 64 MiB files.
 * - `clients` (clients.ts): 32 client processes at once next to 32 rsync
 *   processes; 64 concurrent transfers from one process next to one stream.
 * - `idle` (idle.ts): 1,000 authenticated idle connections, the server's RSS
 *   per connection, and a put while they are held.
 * - `small` (small_ops.ts): one whole-process 1 KiB put next to rsync, sftp
 *   and an empty `deno run`; put/peek/rm of 1 KiB over one connection, per second.
 * - `stall` (stall.ts): another user's peeks while a 1 GiB file is put,
 *   replaced and deleted.
 * - `sync` (sync.ts): issue 12's rows: dfos push and pull of a 10,000-file
 *   tree and edits of a 1 GiB file next to the rsync daemon, bytes on the
 *   wire and wall time; a 1 GiB upload killed at 60% and resumed.
 * - `twoway` (twoway.ts): issue 14's rows: `dfos sync` of a 10,000-file
 *   tree between two folders through a server next to Unison through its
 *   socket server, bytes on the wire and wall time; the delay of a change
 *   with `--watch`.
 * - `metrics` (metrics.ts): a Prometheus scrape of `dfos serve --metrics`
 *   with 1,000 connections open, idle and with some putting (issue 13).
 * - `s3` (s3.ts): dfos on an S3 engine (its own, started with
 *   tools/s3/start-s3.sh, unless S3_ENDPOINT names one): 1 GiB put and get
 *   next to the AWS SDK straight to the engine; 32 clients through 1, 2 and
 *   3 servers on one bucket (issue 13).
 *
 * Everything runs on loopback. Each section gets a scratch folder of its own
 * and a process group; after it (also after a failure) every server it
 * started is stopped by its PID and its folder removed. SIGINT or SIGTERM
 * stops the servers, removes the scratch folder and ends with status 130.
 *
 * Prints progress on stderr and one table on stdout (targets.ts: what is
 * MET or MISSED), and writes the table, every section's figures and the
 * machine's facts to the JSON file (`--out`).
 *
 * @module
 */

import { dirname, join } from "node:path";
import { clientsSection } from "./clients.ts";
import { PROJECT_DIR } from "../tests/_common.ts";
import { idleSection } from "./idle.ts";
import { machineFacts } from "./machine.ts";
import { memorySection } from "./memory.ts";
import { metricsSection } from "./metrics.ts";
import { s3Section } from "./s3.ts";
import { ProcessGroup } from "./processes.ts";
import { printTable, type Row, rowJson } from "./report.ts";
import { messageOf, type Section, type SectionId } from "./section.ts";
import { parseSettings, type Settings, USAGE } from "./settings.ts";
import { smallSection } from "./small_ops.ts";
import { stallSection } from "./stall.ts";
import { syncSection } from "./sync.ts";
import { transferSection } from "./transfer.ts";
import { twowaySection } from "./twoway.ts";

/** The sections by name. */
const SECTIONS: Record<SectionId, Section> = {
  transfer: transferSection,
  memory: memorySection,
  clients: clientsSection,
  idle: idleSection,
  small: smallSection,
  stall: stallSection,
  sync: syncSection,
  twoway: twowaySection,
  metrics: metricsSection,
  s3: s3Section,
};

const started = Date.now();

/** A progress line on stderr (stdout carries only the table). */
function say(message: string): void {
  const seconds = Math.round((Date.now() - started) / 1000);
  console.error(`[${String(seconds).padStart(4)}s] ${message}`);
}

/** The section being run: its processes and clean-ups, for the end of the section or Ctrl-C. */
class SectionScope {
  readonly processes = new ProcessGroup();
  readonly #cleanups: (() => Promise<void>)[] = [];
  #closing: Promise<void> | undefined;

  defer(cleanup: () => Promise<void>): void {
    this.#cleanups.push(cleanup);
  }

  /** Stops its processes, then runs its clean-ups, last registered first; once. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      await this.processes.stopAll();
      for (const cleanup of this.#cleanups.reverse()) {
        await cleanup().catch((error) => say(`clean-up failed: ${messageOf(error)}`));
      }
    })();
    return this.#closing;
  }
}

/**
 * Runs the benchmark: each section in turn, then prints the table and
 * writes the JSON. The scratch folder and every process it started are gone
 * when it returns, and also after SIGINT or SIGTERM (which end the program
 * with status 130).
 *
 * @param settings What to measure.
 * @returns How many measurements failed.
 */
export async function bench(settings: Settings): Promise<number> {
  const dir = await Deno.makeTempDir({ prefix: "dfos-bench-" });
  let scope: SectionScope | null = null;
  const stopping = new AbortController();
  const interrupt = () => {
    say("interrupted: stopping the servers and removing the scratch folder");
    stopping.abort();
    (scope?.close() ?? Promise.resolve()).then(() => removeScratch(dir)).finally(() => Deno.exit(130));
  };
  Deno.addSignalListener("SIGINT", interrupt);
  Deno.addSignalListener("SIGTERM", interrupt);
  try {
    say(`scratch folder ${dir}; sections ${settings.sections.join(", ")}${settings.quick ? " (quick)" : ""}`);
    const rows: Row[] = [];
    const sections: Record<string, unknown> = {};
    let failures = 0;
    for (const id of settings.sections) {
      stopping.signal.throwIfAborted();
      const sectionDir = join(dir, id);
      await Deno.mkdir(sectionDir);
      const current = scope = new SectionScope();
      const begun = performance.now();
      say(`section ${id}`);
      try {
        const result = await SECTIONS[id]({
          dir: sectionDir,
          processes: current.processes,
          signal: stopping.signal,
          settings,
          say,
          defer: (cleanup) => current.defer(cleanup),
        });
        rows.push(...result.rows);
        failures += result.failures;
        sections[id] = { seconds: Math.round((performance.now() - begun) / 100) / 10, ...result.data };
      } catch (error) {
        stopping.signal.throwIfAborted();
        say(`section ${id} failed: ${messageOf(error)}`);
        rows.push({
          section: id,
          what: "the whole section",
          figure: "failed",
          judgement: null,
          note: messageOf(error),
        });
        sections[id] = { failure: messageOf(error) };
        failures++;
      } finally {
        await current.close();
        scope = null;
        await removeScratch(sectionDir);
      }
    }
    console.log(`dfos benchmark, ${new Date().toISOString()}${settings.quick ? ", QUICK sizes (not issue 4's)" : ""}`);
    printTable(rows);
    await writeResults(settings, rows, sections, dir);
    return failures;
  } finally {
    Deno.removeSignalListener("SIGINT", interrupt);
    Deno.removeSignalListener("SIGTERM", interrupt);
    await removeScratch(dir);
  }
}

async function writeResults(
  settings: Settings,
  rows: Row[],
  sections: Record<string, unknown>,
  dir: string,
): Promise<void> {
  const report = {
    date: new Date().toISOString(),
    seconds: Math.round((Date.now() - started) / 1000),
    settings,
    machine: await machineFacts(),
    table: rows.map(rowJson),
    sections,
  };
  // no absolute path of this machine in the results: $T for the scratch folder, deno, paths in the repository
  const portable = (_key: string, value: unknown) =>
    typeof value === "string"
      ? value.replaceAll(Deno.execPath(), "deno").replaceAll(dir, "$T").replaceAll(PROJECT_DIR, "")
      : value;
  await Deno.mkdir(dirname(settings.out), { recursive: true });
  await Deno.writeTextFile(settings.out, JSON.stringify(report, portable, 2) + "\n");
  say(`wrote ${settings.out}`);
}

/** Removes a scratch folder; retried, as a process being stopped may still be closing a file in it. */
async function removeScratch(dir: string): Promise<void> {
  for (let attempt = 1;; attempt++) {
    try {
      await Deno.remove(dir, { recursive: true });
      return;
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return;
      if (attempt === 3) {
        console.error(`bench: Cannot remove the scratch folder ${dir}: ${messageOf(error)}`);
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
 *   130 interrupted. A missed target is not an error.
 */
export async function main(args: string[]): Promise<number> {
  let settings: Settings | null;
  try {
    settings = parseSettings(args);
  } catch (error) {
    console.error(`bench: ${messageOf(error)}\n\n${USAGE}`);
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
    console.error(`bench: ${messageOf(error)}`);
    return 1;
  }
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
