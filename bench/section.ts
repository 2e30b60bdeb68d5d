/**
 * What a section of the benchmark is: a function from its context (a scratch
 * folder of its own, a process group, the settings) to table rows and JSON
 * figures. The driver (`bench.ts`) runs the sections in turn and cleans up
 * after each; this module also holds what they share: the section names and
 * a deadline for work that must not hang the run.
 *
 * @module
 */

import type { ProcessGroup } from "./processes.ts";
import type { Row } from "./report.ts";
import type { Settings } from "./settings.ts";

/** The sections, in the order a full run measures them. */
export const SECTION_IDS = [
  "transfer",
  "memory",
  "clients",
  "idle",
  "small",
  "stall",
  "sync",
  "twoway",
  "metrics",
  "s3",
] as const;

/** One of {@linkcode SECTION_IDS}. */
export type SectionId = typeof SECTION_IDS[number];

/** What a section is given. */
export interface SectionContext {
  /** A scratch folder of its own, removed after the section. */
  dir: string;
  /** Where it starts servers and clients; every one is stopped after the section. */
  processes: ProcessGroup;
  /** Aborted on SIGINT or SIGTERM: start nothing new. */
  signal: AbortSignal;
  /** The whole run's settings. */
  settings: Settings;
  /** Writes a progress line on stderr. */
  say(message: string): void;
  /**
   * Registers clean-up for the end of the section (also after a failure or
   * Ctrl-C), run after its processes are stopped, last registered first.
   */
  defer(cleanup: () => Promise<void>): void;
}

/** What a section gives back. */
export interface SectionResult {
  /** Its lines of the table. */
  rows: Row[];
  /** Its figures for the JSON. */
  data: Record<string, unknown>;
  /** How many of its measurements failed (a failed one is also a row). */
  failures: number;
}

/** A section of the benchmark. */
export type Section = (context: SectionContext) => Promise<SectionResult>;

/**
 * Waits for `work`, but at most `ms`: past that, throws. The work itself goes
 * on until the section's clean-up stops the servers it talks to; its eventual
 * failure is then ignored.
 *
 * @param work What to wait for.
 * @param ms The limit in milliseconds.
 * @param what What the work is, for the message.
 * @returns What the work resolved to.
 */
export async function within<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms / 1000} s`)), ms);
  });
  try {
    return await Promise.race([work, late]);
  } finally {
    clearTimeout(timer);
    work.catch(() => {});
  }
}

/**
 * The message of anything thrown.
 *
 * @param error What was thrown.
 * @returns Its message.
 */
export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
