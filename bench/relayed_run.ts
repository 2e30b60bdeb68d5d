/**
 * One client process timed through a counting relay (relay.ts), as the
 * sync sections measure every tool: what it sent and received and its wall
 * time, or why there is no figure (it failed, or dfos lacks the command);
 * and the dfos side of it: a CLI command line through the relay and whether
 * this build has a command.
 *
 * @module
 */

import type { CliCall, DfosServer } from "./dfos_server.ts";
import type { CountingRelay } from "./relay.ts";
import type { SectionContext } from "./section.ts";

/** One client process through a relay. */
export interface Run {
  /** Bytes towards the server. */
  up: number;
  /** Bytes towards the client. */
  down: number;
  /** Its wall time in seconds. */
  seconds: number;
}

/** What one tool did in one case: a run, or why there is none. */
export type Outcome = { run: Run; note?: string } | { failed: string } | { pending: string };

/**
 * Runs one client process to its end through `relay` (its counters zeroed
 * first) and times it.
 *
 * @param context The section's processes and signal.
 * @param call The command line (its arguments name the relay's port).
 * @param relay The relay it talks through.
 * @param timeoutMs How long it may run before it is killed.
 * @returns Its bytes and wall time, or why it failed.
 */
export async function runRelayed(
  context: SectionContext,
  call: CliCall,
  relay: CountingRelay,
  timeoutMs: number,
): Promise<Outcome> {
  context.signal.throwIfAborted();
  relay.reset();
  const started = performance.now();
  const result = await context.processes.runClient(call.argv, { env: call.env, cwd: call.cwd, timeoutMs });
  const seconds = (performance.now() - started) / 1000;
  // the relay may still be passing the last bytes of a closing connection
  await new Promise((resolve) => setTimeout(resolve, 50));
  if (result.timedOut) return { failed: `killed after ${timeoutMs / 1000} s` };
  if (result.code !== 0) {
    const last = result.stderr.trim().split("\n").filter((line) => !line.startsWith("    at ")).at(-1) ?? "";
    return { failed: `exited with status ${result.code}${last ? `: ${last}` : ""}` };
  }
  return { run: { up: relay.up, down: relay.down, seconds } };
}

/**
 * Checks a run's result; a mismatch turns it into a failure.
 *
 * @param outcome The run (changed in place).
 * @param differs What differs, or null.
 */
export async function checkOutcome(outcome: Outcome, differs: () => Promise<string | null>): Promise<void> {
  if (!("run" in outcome)) return;
  const difference = await differs();
  if (difference !== null) {
    const failed = `the result differs from the source: ${difference}`;
    Object.assign(outcome, { failed });
    delete (outcome as { run?: Run }).run;
  }
}

/**
 * A dfos client command line against the server, through its relay.
 *
 * @param dfos The server.
 * @param relay The relay in front of it.
 * @param args The subcommand and its arguments.
 * @returns The command line.
 */
export function dfosCall(dfos: DfosServer, relay: CountingRelay, args: string[]): CliCall {
  const call = dfos.cli(args);
  return { ...call, env: { ...call.env, DFOS_SERVER: `127.0.0.1:${relay.port}` } };
}
