/**
 * A process's memory as Linux counts it (`/proc/PID/status`): resident set
 * now (VmRSS) and its peak so far (VmHWM), and a sampler that polls VmRSS
 * while a measurement runs.
 *
 * @module
 */

import { delay } from "../tests/_common.ts";

/** How often {@linkcode RssSampler} reads VmRSS. */
export const SAMPLE_INTERVAL_MS = 50;

/** What /proc/PID/status says about a process's memory, in bytes. */
export interface ProcessMemory {
  /** Resident set size now (VmRSS). */
  rss: number;
  /** The highest resident set size since the process started (VmHWM). */
  peak: number;
}

/**
 * Reads a process's memory figures.
 *
 * @param pid The process.
 * @returns VmRSS and VmHWM in bytes.
 * @throws {Error} when the process is gone or the fields are missing.
 */
export async function processMemory(pid: number): Promise<ProcessMemory> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  return { rss: statusField(status, "VmRSS", pid), peak: statusField(status, "VmHWM", pid) };
}

function statusField(status: string, field: string, pid: number): number {
  const match = new RegExp(`^${field}:\\s+(\\d+) kB$`, "m").exec(status);
  if (!match) throw new Error(`Cannot read ${field} of process ${pid}: not in /proc/${pid}/status`);
  return Number(match[1]) * 1024;
}

/**
 * Polls a process's VmRSS every {@linkcode SAMPLE_INTERVAL_MS} until
 * stopped, keeping the highest value (a cross-check of VmHWM, and the only
 * peak for a process that did not start fresh).
 */
export class RssSampler {
  readonly #pid: number;
  #highest = 0;
  #samples = 0;
  #running = true;
  readonly #loop: Promise<void>;

  /**
   * Starts sampling.
   *
   * @param pid The process.
   */
  constructor(pid: number) {
    this.#pid = pid;
    this.#loop = this.#run();
  }

  async #run(): Promise<void> {
    while (this.#running) {
      try {
        const { rss } = await processMemory(this.#pid);
        this.#highest = Math.max(this.#highest, rss);
        this.#samples++;
      } catch {
        return; // the process is gone
      }
      await delay(SAMPLE_INTERVAL_MS);
    }
  }

  /**
   * Stops sampling.
   *
   * @returns The highest VmRSS seen, in bytes, and how many samples were taken.
   */
  async stop(): Promise<{ highest: number; samples: number }> {
    this.#running = false;
    await this.#loop;
    return { highest: this.#highest, samples: this.#samples };
  }
}
