/**
 * The flags and arguments push and pull share: `--delete`, `--dry-run`,
 * `--checksum`, `--exclude` (repeatable), `--json`; PREFIX as typed
 * (`"/"` for the top of the user's space); and what keys the run's state
 * (the server's address, read while the environment still can be).
 *
 * @module
 */

import { DEFAULT_SERVER } from "../../shared/defaults.ts";
import type { ParsedArgs } from "../../shared/cli.ts";
import { nameProblem } from "../../shared/names.ts";
import { remoteName } from "../remote_name.ts";
import { type ExcludeMatcher, excludeMatcher } from "./excludes.ts";
import { stateFolder } from "./state.ts";

/** What the flags ask for. */
export interface SyncFlags {
  /** Delete what the source lacks. */
  delete: boolean;
  /** Print the plan only. */
  dryRun: boolean;
  /** Compare contents rather than size and time. */
  checksum: boolean;
  /** JSON lines out. */
  json: boolean;
  /** The `--exclude` patterns, compiled. */
  excluded: ExcludeMatcher;
  /** Where the state files are, with the server's address for their key; null: no state kept. */
  state: { folder: string; server: string } | null;
}

/**
 * Reads the flags (and, for the state's key, `--server` or `DFOS_SERVER`).
 * Call it before the connection is asked for: the environment is given up then.
 *
 * @param values The parsed flags.
 * @returns What they ask for.
 */
export function syncFlags(values: ParsedArgs["values"]): SyncFlags {
  const excludes = values.exclude;
  const patterns = Array.isArray(excludes) ? excludes as string[] : typeof excludes === "string" ? [excludes] : [];
  const folder = stateFolder();
  let server = values.server as string | undefined;
  try {
    server ??= Deno.env.get("DFOS_SERVER") ?? DEFAULT_SERVER;
  } catch {
    server = undefined;
  }
  return {
    delete: values.delete === true,
    dryRun: values["dry-run"] === true,
    checksum: values.checksum === true,
    json: values.json === true,
    excluded: excludeMatcher(patterns),
    state: folder !== null && server !== undefined ? { folder, server } : null,
  };
}

/**
 * PREFIX as typed: `""` for the top (`/`), else a remote name without a
 * trailing `/`, checked.
 *
 * @param typed The argument.
 * @returns The prefix, "" for the top.
 */
export function remotePrefix(typed: string): string {
  const trimmed = typed.replace(/\/+$/, "");
  return trimmed === "" ? "" : remoteName(trimmed);
}

/**
 * The remote name of a path relative to DIR.
 *
 * @param prefix PREFIX ("" for the top).
 * @param rel The relative path.
 * @returns PREFIX/rel.
 */
export function joinRemote(prefix: string, rel: string): string {
  return prefix === "" ? rel : `${prefix}/${rel}`;
}

/**
 * True for a name the server sent that a run may use: under the prefix
 * (`from`: PREFIX and a `/`, or "" for the top) and keeping the naming rules
 * (no `..`, no empty segment), so that a server that sends another cannot
 * make the client write outside DIR.
 *
 * @param name The remote name.
 * @param from The prefix with its `/`.
 * @returns Whether to use it.
 */
export function usableName(name: string, from: string): boolean {
  return name.startsWith(from) && name.length > from.length && nameProblem(name) === undefined;
}
