/**
 * The machine the benchmark runs on: its facts for the results file, and
 * how busy its CPUs are, so that a timed run can wait for a quiet moment.
 *
 * @module
 */

import { delay } from "../tests/_common.ts";

/** What the results file records about the machine. */
export interface MachineFacts {
  /** `Deno.version`: deno, v8, typescript. */
  deno: typeof Deno.version;
  /** Logical CPUs (`navigator.hardwareConcurrency`). */
  nproc: number;
  /** The CPU model, from /proc/cpuinfo (null where unreadable). */
  cpu: string | null;
  /** `Deno.osRelease()`. */
  kernel: string;
  /** Total memory in bytes (`Deno.systemMemoryInfo()`). */
  memoryBytes: number;
  /** The benchmark process's open-file limit (`ulimit -n`), soft and hard; null where unreadable. */
  openFiles: OpenFilesLimit | null;
}

/** A process's limit on open files (`ulimit -n`). */
export interface OpenFilesLimit {
  /** The limit in force (`ulimit -n`); null for unlimited. */
  soft: number | null;
  /** What the process may raise it to (`ulimit -Hn`); null for unlimited. */
  hard: number | null;
}

/** How busy the machine was before a timed run. */
export interface Quiet {
  /** True when CPU use fell below the threshold within the wait. */
  quiet: boolean;
  /** The CPU use seen last, in percent of all CPUs. */
  percent: number;
}

/**
 * The machine's facts.
 *
 * @returns Deno's version, CPU count and model, kernel release, total memory.
 */
export async function machineFacts(): Promise<MachineFacts> {
  let cpu: string | null = null;
  try {
    const line = (await Deno.readTextFile("/proc/cpuinfo")).split("\n").find((l) => l.startsWith("model name"));
    cpu = line?.split(":")[1]?.trim() ?? null;
  } catch {
    // not Linux, or not readable: leave it out
  }
  return {
    deno: Deno.version,
    nproc: navigator.hardwareConcurrency,
    cpu,
    kernel: Deno.osRelease(),
    memoryBytes: Deno.systemMemoryInfo().total,
    openFiles: await openFilesLimit("self"),
  };
}

/**
 * A process's open-file limit, from /proc/PID/limits.
 *
 * @param pid The process, or "self".
 * @returns Its soft and hard limit, or null where unreadable.
 */
export async function openFilesLimit(pid: number | "self"): Promise<OpenFilesLimit | null> {
  try {
    const line = (await Deno.readTextFile(`/proc/${pid}/limits`)).split("\n").find((l) =>
      l.startsWith("Max open files")
    );
    const [soft, hard] = line?.slice("Max open files".length).trim().split(/\s+/) ?? [];
    if (soft === undefined || hard === undefined) return null;
    const value = (text: string) => text === "unlimited" ? null : Number(text);
    return { soft: value(soft), hard: value(hard) };
  } catch {
    return null;
  }
}

/**
 * Waits (up to `maxWaitMs`) until the machine's CPU use, measured over
 * 250 ms while the benchmark itself is idle, is below `maxPercent`.
 *
 * @param maxPercent The threshold, in percent of all CPUs.
 * @param maxWaitMs How long to wait at most.
 * @returns Whether it got quiet, and the CPU use seen last.
 */
export async function waitForQuiet(maxPercent: number, maxWaitMs: number): Promise<Quiet> {
  const deadline = Date.now() + maxWaitMs;
  for (;;) {
    const percent = await busyPercent(250);
    if (percent < maxPercent) return { quiet: true, percent };
    if (Date.now() >= deadline) return { quiet: false, percent };
    await delay(750);
  }
}

/** The share of CPU time spent working (user, nice, system, irq, softirq) over `ms`, from /proc/stat. */
async function busyPercent(ms: number): Promise<number> {
  const before = await cpuTicks();
  await delay(ms);
  const after = await cpuTicks();
  const total = after.total - before.total;
  return total > 0 ? Math.round((100 * (after.busy - before.busy)) / total) : 0;
}

async function cpuTicks(): Promise<{ busy: number; total: number }> {
  const line = (await Deno.readTextFile("/proc/stat")).split("\n")[0];
  // cpu user nice system idle iowait irq softirq steal ...
  const [user, nice, system, idle, iowait, irq, softirq, steal] = line.trim().split(/\s+/).slice(1).map(Number);
  const busy = user + nice + system + irq + softirq;
  return { busy, total: busy + idle + iowait + (steal || 0) };
}
