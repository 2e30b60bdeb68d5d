/**
 * `dfos sync DIR PREFIX`: keeps the local folder DIR and PREFIX on the
 * server alike both ways (usage in client/command_table.ts). One run
 * (client/sync/sync_run.ts) brings each side every change of the other since
 * the last run, keeping both versions of a file changed on both; with
 * `--watch` (client/sync/watch_loop.ts) it runs again whenever either side
 * changes, until Ctrl-C. The base of the three-way comparison is kept
 * outside DIR (client/sync/base_state.ts).
 *
 * @module
 */

import { join, resolve } from "node:path";
import { CommandFailure, type ParsedArgs, UsageError } from "../shared/cli.ts";
import { printableName } from "../shared/names.ts";
import type { CommandContext } from "./command_table.ts";
import type { DfosClient } from "./connection.ts";
import { hostLabel } from "./sync/conflict_name.ts";
import { remotePrefix, syncFlags } from "./sync/flags.ts";
import { stateFile } from "./sync/state.ts";
import { syncOnce, type SyncRunOptions } from "./sync/sync_run.ts";

/** `--max-delete` when not given: a run that would delete more than half the files synced stops. */
export const DEFAULT_MAX_DELETE = 50;

/** Runs `sync` once, or until stopped with `--watch`. */
export async function run(args: ParsedArgs, { client, io, signal, connect }: CommandContext): Promise<void> {
  const { values, positionals } = args;
  if (positionals.length !== 2) throw new UsageError("sync takes DIR PREFIX");
  const dir = positionals[0];
  const prefix = remotePrefix(positionals[1]);
  const info = await Deno.stat(dir).catch((error) => {
    if (error instanceof Deno.errors.NotFound) return null;
    throw new UsageError(`Cannot sync "${dir}": ${(error as Error).message}`);
  });
  if (info !== null && !info.isDirectory) throw new UsageError(`Cannot sync "${dir}": it is not a folder`);
  const maxDelete = percent(values["max-delete"]);
  const watch = values.watch === true;
  if (watch && values["dry-run"] === true) throw new UsageError("--watch and --dry-run do not go together");
  if (watch && connect === undefined) throw new UsageError("sync --watch runs from the command line, not the shell");
  const flags = syncFlags(values);
  const host = hostLabel(hostname());

  const connection = await client();
  if (!connection.sync) {
    throw new CommandFailure(
      `Cannot sync: the server (${printableName(connection.serverAgent)}) does not take two-way sync; ` +
        `use push or pull`,
      1,
    );
  }
  if (info === null && !flags.dryRun) await Deno.mkdir(dir, { recursive: true });
  const statePath = flags.state === null ? null : await stateFile(flags.state.folder, {
    server: flags.state.server,
    user: connection.user,
    prefix,
    dir: resolve(dir),
    kind: "sync",
  });
  const options = (client: DfosClient, base?: SyncRunOptions["base"], stop = signal): SyncRunOptions => ({
    client,
    dir: join(dir, "."),
    prefix,
    excluded: flags.excluded,
    dryRun: flags.dryRun,
    json: flags.json,
    maxDelete,
    host,
    io,
    statePath,
    base,
    signal: stop,
  });
  if (!watch) {
    const { failed } = await syncOnce(options(connection));
    if (failed.length > 0) {
      const names = failed.slice(0, 10).map(printableName).join(", ") + (failed.length > 10 ? ", ..." : "");
      throw new CommandFailure(`${failed.length} file${failed.length === 1 ? "" : "s"} not synced: ${names}`, 1);
    }
    return;
  }
  const { watchLoop } = await import("./sync/watch_loop.ts");
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  try {
    await watchLoop({
      dir: join(dir, "."),
      prefix,
      excluded: flags.excluded,
      first: connection,
      connect: connect!,
      run: (client, base) => syncOnce(options(client, base, stop.signal)),
      io,
      signal: stop.signal,
    });
  } finally {
    Deno.removeSignalListener("SIGINT", onSignal);
    Deno.removeSignalListener("SIGTERM", onSignal);
  }
}

/** `--max-delete PERCENT`: 0 to 100, a `%` allowed. */
function percent(value: unknown): number {
  if (value === undefined) return DEFAULT_MAX_DELETE;
  const typed = String(value).trim().replace(/%$/, "");
  if (!/^\d+(\.\d+)?$/.test(typed) || Number(typed) > 100) {
    throw new UsageError(`--max-delete takes a percentage from 0 to 100, not "${value}"`);
  }
  return Number(typed);
}

/**
 * The machine's name for conflict copies: `DFOS_HOST`, else the host name,
 * read while the command may (its `env` and `sys` permissions go with the
 * options); null when neither can be read.
 */
function hostname(): string | null {
  try {
    return Deno.env.get("DFOS_HOST") || Deno.hostname();
  } catch {
    return null;
  }
}
