/**
 * What every subcommand of the `dfos` command line shares: the `Command`
 * shape, argument parsing with `node:util` `parseArgs`, `UsageError`, and the
 * exit codes.
 *
 * Plain command lines (known flags, each value in its own argument or after
 * `=`) are read without `node:util`, whose first import is most of a client
 * command's start-up (docs/PERFORMANCE.md, "Start-up"); anything else goes to
 * `parseArgs` itself, so its rules and messages stay the only ones.
 *
 * @module
 */

import type { ParseArgsOptionsConfig } from "node:util";
import { DfosError, Status } from "./status.ts";

/** Exit codes, as documented in the README. */
export const ExitCode = {
  OK: 0,
  FAILURE: 1,
  USAGE: 2,
  AUTH_FAILED: 3,
  NOT_FOUND: 4,
} as const;

/** A mistake in how the command was called: exit code 2. */
export class UsageError extends Error {
  /** @param message What is wrong, and how to do it right. */
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** A failure already reported in detail, ending the command with a given exit code. */
export class CommandFailure extends Error {
  /** The exit code. */
  readonly exitCode: number;

  /**
   * @param message A summary sentence.
   * @param exitCode The exit code.
   */
  constructor(message: string, exitCode: number) {
    super(message);
    this.name = "CommandFailure";
    this.exitCode = exitCode;
  }
}

/** One subcommand of `dfos`. */
export interface Command {
  /** The usage text printed by `--help` and after a usage error. */
  usage: string;
  /** The flags it takes, beyond `--help` and `--verbose`. */
  options: ParseArgsOptionsConfig;
  /** Runs the command with its parsed flags and positional arguments. */
  run(args: ParsedArgs): Promise<void>;
}

/** Flags and positional arguments, as `parseArgs` returns them. */
export interface ParsedArgs {
  /** Flag values by name. */
  values: Record<string, string | boolean | undefined>;
  /** Positional arguments in order. */
  positionals: string[];
}

/** Flags every subcommand takes. */
export const COMMON_OPTIONS: ParseArgsOptionsConfig = {
  help: { type: "boolean", short: "h" },
  verbose: { type: "boolean", short: "v" },
};

/**
 * Parses a subcommand's arguments strictly: an unknown flag or a missing flag
 * value is a `UsageError`. A lone `-` is a positional argument.
 *
 * @param command The subcommand (its flags: a `Command`, or a row of client/command_table.ts).
 * @param args The arguments after the subcommand's name.
 * @returns The parsed flags and positionals.
 */
export async function parseCommandArgs(command: Pick<Command, "options">, args: string[]): Promise<ParsedArgs> {
  const options = { ...COMMON_OPTIONS, ...command.options };
  const plain = parsePlainArgs(options, args);
  if (plain !== null) return plain;
  const { parseArgs } = await import("node:util");
  try {
    const { values, positionals } = parseArgs({ args, options, allowPositionals: true, strict: true });
    return { values: values as ParsedArgs["values"], positionals };
  } catch (error) {
    throw new UsageError((error as Error).message.replace(/\. To specify.*$/s, ""));
  }
}

/**
 * Reads a command line made only of positionals, known flags, and string
 * values that do not start with `-`, as `parseArgs` (strict, positionals
 * allowed) would; returns null for anything else: an unknown or grouped
 * flag, `--`, a value that is missing or starts with `-`, a boolean given a
 * value, an option with `multiple` or a `default`.
 *
 * @param options The flags the command takes.
 * @param args The arguments after the subcommand's name.
 * @returns The parsed flags and positionals, or null to leave it to `parseArgs`.
 */
export function parsePlainArgs(options: ParseArgsOptionsConfig, args: string[]): ParsedArgs | null {
  const values: ParsedArgs["values"] = Object.create(null);
  const positionals: string[] = [];
  const shorts = new Map<string, string>();
  for (const [name, option] of Object.entries(options)) {
    if (option.multiple || option.default !== undefined) return null;
    if (option.short !== undefined) shorts.set(option.short, name);
  }
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === "-" || !arg.startsWith("-")) {
      positionals.push(arg);
      continue;
    }
    const long = arg.startsWith("--");
    const equals = long ? arg.indexOf("=") : -1;
    const name = long
      ? arg.slice(2, equals === -1 ? undefined : equals)
      : arg.length === 2
      ? shorts.get(arg[1])
      : undefined;
    if (name === undefined || name === "" || !Object.hasOwn(options, name)) return null;
    if (options[name].type === "boolean") {
      if (equals !== -1) return null;
      values[name] = true;
    } else if (equals !== -1) {
      values[name] = arg.slice(equals + 1);
    } else {
      const value = args[i + 1];
      if (value === undefined || value.startsWith("-")) return null;
      values[name] = value;
      i++;
    }
  }
  return { values, positionals };
}

/**
 * Returns the exit code for an error that ended a command.
 *
 * @param error What was thrown.
 * @returns 2 for usage, 3 for a failed login, 4 for a missing remote file, else 1.
 */
export function exitCodeFor(error: unknown): number {
  if (error instanceof UsageError) return ExitCode.USAGE;
  if (error instanceof CommandFailure) return error.exitCode;
  if (error instanceof DfosError) {
    if (error.code === Status.AUTH_FAILED) return ExitCode.AUTH_FAILED;
    if (error.code === Status.NOT_FOUND) return ExitCode.NOT_FOUND;
  }
  return ExitCode.FAILURE;
}

/**
 * Reads a flag that must be a whole number in a range.
 *
 * @param value The flag's text, or undefined when absent.
 * @param flag The flag's name, for the message.
 * @param fallback The value when absent.
 * @param range Smallest and largest allowed.
 * @returns The number.
 */
export function integerFlag(
  value: string | boolean | undefined,
  flag: string,
  fallback: number,
  range: [number, number] = [0, Number.MAX_SAFE_INTEGER],
): number {
  if (value === undefined) return fallback;
  const number = typeof value === "string" && /^\d+$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(number) || number < range[0] || number > range[1]) {
    throw new UsageError(`--${flag} takes a whole number from ${range[0]} to ${range[1]}, not "${value}"`);
  }
  return number;
}

/**
 * Reads a flag that is a number of seconds (a fraction allowed) and returns
 * it in milliseconds.
 *
 * @param value The flag's text, or undefined when absent.
 * @param flag The flag's name, for the message.
 * @param fallbackMs The value when absent, in milliseconds.
 * @returns Milliseconds.
 */
export function secondsFlag(value: string | boolean | undefined, flag: string, fallbackMs: number): number {
  if (value === undefined) return fallbackMs;
  const seconds = typeof value === "string" && /^\d+(\.\d+)?$/.test(value) ? Number(value) : NaN;
  // setTimeout takes at most 2^31 - 1 ms (about 24.8 days).
  if (!Number.isFinite(seconds) || seconds * 1000 > 2 ** 31 - 1) {
    throw new UsageError(`--${flag} takes a number of seconds from 0 to 2147483, not "${value}"`);
  }
  return Math.round(seconds * 1000);
}

/** The multipliers {@linkcode byteSizeFlag} takes: powers of 1024. */
const BYTE_UNITS: Record<string, number> = { "": 1, K: 2 ** 10, M: 2 ** 20, G: 2 ** 30, T: 2 ** 40 };

/**
 * Reads a flag that is a number of bytes: a whole number, or a number (a
 * fraction allowed) followed by `K`, `M`, `G` or `T` for KiB, MiB, GiB or TiB
 * (powers of 1024; upper or lower case, `KiB`/`KB`/`B` spellings too).
 *
 * @param value The flag's text, or undefined when absent.
 * @param flag The flag's name, for the message.
 * @param fallback The value when absent.
 * @param range Smallest and largest allowed, in bytes.
 * @returns The number of bytes, rounded down to a whole byte.
 *
 * @example Usage
 * ```ts
 * import assert from "node:assert/strict";
 * import { byteSizeFlag } from "./cli.ts";
 * assert.equal(byteSizeFlag("10M", "quota", 0), 10 * 1024 * 1024);
 * assert.equal(byteSizeFlag("512", "quota", 0), 512);
 * ```
 */
export function byteSizeFlag(
  value: string | boolean | undefined,
  flag: string,
  fallback: number,
  range: [number, number] = [0, Number.MAX_SAFE_INTEGER],
): number {
  if (value === undefined) return fallback;
  const match = typeof value === "string" ? /^(\d+(?:\.\d+)?)([kmgt]?)(?:i?b)?$/i.exec(value) : null;
  const unit = match ? BYTE_UNITS[match[2].toUpperCase()] : NaN;
  // A fraction needs a unit ("1.5K"); plain bytes are whole.
  const bytes = match && (unit > 1 || !match[1].includes(".")) ? Math.floor(Number(match[1]) * unit) : NaN;
  if (!Number.isSafeInteger(bytes) || bytes < range[0] || bytes > range[1]) {
    const bounds = range[0] === 0 && range[1] === Number.MAX_SAFE_INTEGER ? "" : ` from ${range[0]} to ${range[1]}`;
    throw new UsageError(
      `--${flag} takes a size in bytes${bounds} ("4096", or with K, M, G or T: "512K", "10M", "2G"), not "${value}"`,
    );
  }
  return bytes;
}
