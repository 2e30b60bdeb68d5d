/**
 * `configureLogging()`: where the server's log lines go: the console and the
 * performance log file, through LogTape. Both are bounded and never block:
 * each line is formatted by `formatLogRecord()` (server/log_format.ts: every
 * value escaped, every value and line cut to a cap) and written
 * asynchronously by a `LogWriter` (server/log_writer.ts) from a byte queue of
 * bounded size; what does not fit is dropped and counted in the
 * `LogCounters`, and a line says how many once there is room. A console that
 * is read slowly (a pipe, an SSH session) costs lines, not memory or time.
 * Records of the {@linkcode FILE_ONLY_CATEGORY} logger go to the file alone:
 * a fatal error that the command line prints on standard error anyway.
 *
 * @module
 */

import { configure, dispose } from "@logtape/logtape";
import { LogCounters } from "./log_counters.ts";
import { DEFAULT_MAX_QUEUED_BYTES, LogWriter } from "./log_writer.ts";

/** Options for {@linkcode configureLogging}. */
export interface LoggingOptions {
  /** The performance log file (appended to), or null for none. */
  file: string | null;
  /**
   * Also log to the console (standard output).
   *
   * @default {true}
   */
  console?: boolean;
  /**
   * Where to count the records dropped: pass the same counters to
   * `serveInSandbox()` so that the totals line says what the log lost.
   *
   * @default {new LogCounters()}
   */
  counters?: LogCounters;
  /**
   * The most bytes waiting for the console.
   *
   * @default {DEFAULT_MAX_QUEUED_BYTES} (1 MiB)
   */
  consoleQueueBytes?: number;
  /**
   * The most bytes waiting for the file.
   *
   * @default {FILE_QUEUE_BYTES} (4 MiB)
   */
  fileQueueBytes?: number;
}

/** The category of a logger whose records go to the log file only, not the console. */
export const FILE_ONLY_CATEGORY: readonly string[] = ["dfos", "server", "fatal"];

/** The default bound on bytes waiting for the log file. */
export const FILE_QUEUE_BYTES = 4 * 1024 * 1024;

/**
 * Sends the `dfos` loggers' records at level info and above to the console
 * and the log file.
 *
 * @param options Where to log.
 * @returns A function that writes what is queued (for up to 2 s per sink; the rest is given up) and closes the sinks.
 * @throws {Deno.errors.PermissionDenied} and the like when the log file cannot be opened.
 */
export async function configureLogging(options: LoggingOptions): Promise<() => Promise<void>> {
  const counters = options.counters ?? new LogCounters();
  const sinks: Record<string, LogWriter["sink"]> = {};
  let file: Deno.FsFile | null = null;
  if (options.console ?? true) {
    const writer = new LogWriter(Deno.stdout, {
      cause: "console slow",
      counters,
      maxQueuedBytes: options.consoleQueueBytes ?? DEFAULT_MAX_QUEUED_BYTES,
    });
    sinks.console = writer.sink;
  }
  if (options.file !== null) {
    file = await Deno.open(options.file, { write: true, append: true, create: true });
    const writer = new LogWriter(file, {
      cause: "file slow",
      counters,
      maxQueuedBytes: options.fileQueueBytes ?? FILE_QUEUE_BYTES,
    });
    sinks.file = writer.sink;
  }
  await configure({
    sinks,
    loggers: [
      { category: ["dfos"], lowestLevel: "info", sinks: Object.keys(sinks) },
      {
        category: [...FILE_ONLY_CATEGORY],
        lowestLevel: "info",
        sinks: file === null ? [] : ["file"],
        parentSinks: "override",
      },
      { category: ["logtape", "meta"], lowestLevel: "warning", sinks: Object.keys(sinks) },
    ],
  });
  return async () => {
    await dispose();
    try {
      file?.close();
    } catch {
      // A write given up at the deadline may still hold it; the process is ending.
    }
  };
}
