/**
 * `configureLogging()`: where the server's log lines go: the console and the
 * performance log file, through LogTape.
 *
 * @module
 */

import { getFileSink } from "@logtape/file";
import { configure, dispose, getConsoleSink, getTextFormatter } from "@logtape/logtape";

/** Options for {@linkcode configureLogging}. */
export interface LoggingOptions {
  /** The performance log file (appended to), or null for none. */
  file: string | null;
  /**
   * Also log to the console.
   *
   * @default {true}
   */
  console?: boolean;
}

/**
 * Sends the `dfos` loggers' records at level info and above to the console
 * and the log file.
 *
 * @param options Where to log.
 * @returns A function that flushes and closes the sinks.
 */
export async function configureLogging(options: LoggingOptions): Promise<() => Promise<void>> {
  // Values are written bare (no quotes around strings); errors with their stack.
  const formatter = getTextFormatter({
    timestamp: "date-time-timezone",
    value: (value) => typeof value === "string" ? value : Deno.inspect(value),
  });
  const sinks: Record<string, ReturnType<typeof getConsoleSink>> = {};
  if (options.console ?? true) sinks.console = getConsoleSink({ formatter });
  if (options.file !== null) {
    sinks.file = getFileSink(options.file, { formatter, bufferSize: 8192, flushInterval: 1000 });
  }
  await configure({
    sinks,
    loggers: [
      { category: ["dfos"], lowestLevel: "info", sinks: Object.keys(sinks) },
      { category: ["logtape", "meta"], lowestLevel: "warning", sinks: Object.keys(sinks) },
    ],
  });
  return dispose;
}
