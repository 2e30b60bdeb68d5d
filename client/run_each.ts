/**
 * `runEach()`: runs one step per item of a many-file command (put, get, rm,
 * stat) over one connection, trying every item: a refusal by the server or
 * a local failure is reported and the next item goes on; a lost connection
 * ends the command.
 *
 * @module
 */

import { CommandFailure, exitCodeFor } from "../shared/cli.ts";
import { printableName } from "../shared/names.ts";
import type { CommandIo } from "./command_table.ts";

/** Options for {@linkcode runEach}. */
export interface RunEachOptions<T> {
  /** How an item is named in a report. */
  label: (item: T) => string;
  /** The end of the summary line, after "N of M": "files could not be deleted". */
  failed: string;
  /**
   * Report a lone item's failure and sum it up as for many; otherwise a
   * lone item's error is thrown as it is.
   *
   * @default {false}
   */
  reportOne?: boolean;
}

/**
 * Runs `step` for each item in turn. Each failure is reported on `io` and,
 * at the end, a `CommandFailure` with the first failure's exit code is
 * thrown.
 *
 * @param command The command's name, for the reports.
 * @param items The items.
 * @param io Where failures are reported.
 * @param step What to do with one item.
 * @param options How items are named and failures summed up.
 */
export async function runEach<T>(
  command: string,
  items: readonly T[],
  io: CommandIo,
  step: (item: T) => Promise<void>,
  options: RunEachOptions<T>,
): Promise<void> {
  if (items.length === 1 && !options.reportOne) return await step(items[0]);
  const failures: unknown[] = [];
  for (const item of items) {
    try {
      await step(item);
    } catch (error) {
      if (connectionLost(error)) throw error;
      io.warn(`dfos ${command}: ${printableName(options.label(item))}: ${(error as Error).message}`);
      failures.push(error);
    }
  }
  if (failures.length > 0) {
    throw new CommandFailure(`${failures.length} of ${items.length} ${options.failed}`, exitCodeFor(failures[0]));
  }
}

/** True for an error that means the connection is gone: the next item could not be tried. */
function connectionLost(error: unknown): boolean {
  return error instanceof Deno.errors.ConnectionReset || error instanceof Deno.errors.BrokenPipe ||
    error instanceof Deno.errors.UnexpectedEof ||
    (error instanceof Error && /connection closed|Connection closed/i.test(error.message) &&
      error.name !== "DfosError");
}
