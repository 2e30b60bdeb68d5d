/**
 * `dfos pull PREFIX [DIR]`: makes the local folder DIR match PREFIX on the
 * server, over one connection (usage in client/command_table.ts). The
 * server's side is taken from the last run's state or listed
 * (client/sync/remote_view.ts), the folder scanned without reading files
 * (client/sync/tree.ts), the plan made (client/sync/plan.ts), and each file
 * to fetch comes down by the chunk download, which moves only the chunks the
 * local copy lacks, lands atomically and sets the modification time.
 * Symbolic links and special files in DIR are skipped and never written
 * through. A file that fails is reported and the run goes on; the exit code
 * is 1 when any did.
 *
 * @module
 */

import { dirname, join, resolve } from "node:path";
import { CommandFailure, type ParsedArgs, UsageError } from "../shared/cli.ts";
import { nameProblem, printableName } from "../shared/names.ts";
import type { CommandContext } from "./command_table.ts";
import { InFlight } from "./sync/in_flight.ts";
import { connectionLost } from "./sync/connection_lost.ts";
import { joinRemote, remotePrefix, syncFlags } from "./sync/flags.ts";
import { type FileFacts, planSync } from "./sync/plan.ts";
import { SyncProgress } from "./sync/progress_line.ts";
import { remoteEnd, remoteStart } from "./sync/remote_view.ts";
import { SyncReport } from "./sync/report.ts";
import { runStateFile } from "./sync/state.ts";
import { scanTree } from "./sync/tree.ts";

/** Files fetched at once, pipelined on the one connection. */
const IN_FLIGHT = 8;

/** Runs `pull` once. */
export async function run({ values, positionals }: ParsedArgs, { client, io, signal }: CommandContext): Promise<void> {
  if (positionals.length < 1 || positionals.length > 2) throw new UsageError("pull takes PREFIX [DIR]");
  const prefix = remotePrefix(positionals[0]);
  const dir = positionals[1] ?? prefix.slice(prefix.lastIndexOf("/") + 1);
  if (dir === "") throw new UsageError("pull of the top folder needs a DIR");
  const absolute = resolve(dir);
  const info = await Deno.stat(dir).catch((error) => {
    if (error instanceof Deno.errors.NotFound) return null;
    throw new UsageError(`Cannot pull into "${dir}": ${(error as Error).message}`);
  });
  if (info !== null && !info.isDirectory) throw new UsageError(`Cannot pull into "${dir}": it is not a folder`);
  const flags = syncFlags(values);
  const report = new SyncReport("pull", io, flags);

  const tree = await scanTree(dir, flags.excluded);
  const skipped = new Map<string, string>();
  for (const [rel, what] of tree.others) skipped.set(rel, `a ${what} here, not written through`);
  const target = new Map<string, FileFacts>();
  for (const [rel, file] of tree.files) {
    // A local file that could not be on the server is left alone, even with --delete.
    if (nameProblem(joinRemote(prefix, rel)) !== undefined) continue;
    target.set(rel, file);
  }

  const connection = await client();
  const statePath = await runStateFile(flags.state, { user: connection.user, prefix, dir: absolute });
  const start = await remoteStart(connection, prefix, statePath);
  report.summary.listed = start.listed;
  const source = new Map([...start.files].filter(([rel]) => !flags.excluded(rel)));
  // A relative path's segments are names the rules allow (no "", "." or ".."): joined as they are, not normalized
  // again for each of 10,000 files.
  const base = join(dir, ".");
  const localPath = (rel: string) => `${base}/${rel}`;
  const plan = await planSync({
    source,
    target,
    skipped,
    delete: flags.delete,
    sameContent: flags.checksum
      ? async (rel) =>
        (await import("./sync/same_content.ts")).sameContent(connection, localPath(rel), joinRemote(prefix, rel))
      : undefined,
  });

  const sends = plan.filter((step) => step.action === "send");
  const progress = new SyncProgress(
    flags.dryRun ? 0 : sends.length,
    sends.reduce((sum, step) => sum + step.size, 0),
  );
  // Files come down pipelined on the one connection, up to IN_FLIGHT at once: small new ones and ones under a
  // chunk by one GET each, the others by the chunk requests (GROUPS, GROUP-CHUNKS, READ), which are pipelined too.
  const inFlight = new InFlight(IN_FLIGHT);
  const fetchFile = async (name: string, path: string, size: number, pipelined: boolean) => {
    try {
      Deno.mkdirSync(dirname(path), { recursive: true });
      const { downloadFile } = await import("./chunk_download.ts");
      const moved = await downloadFile(connection, name, path, {
        onProgress: (bytes) => progress.file(bytes),
        signal,
        size,
        pipelined,
      });
      await report.action({
        action: "send",
        name,
        path,
        size: moved.content,
        mtime: moved.mtime,
        sent: moved.sent,
        reused: moved.reused,
        resumed: moved.resumed,
      });
    } catch (error) {
      if (connectionLost(error) || signal?.aborted) throw error;
      await report.action({ action: "fail", name, path, error: (error as Error).message });
    } finally {
      progress.fileDone(size);
    }
  };
  try {
    for (const step of plan) {
      const name = joinRemote(prefix, step.rel);
      const path = localPath(step.rel);
      if (step.action === "skip") {
        await report.action({ action: "skip", name, path, reason: step.reason });
      } else if (step.action === "unchanged") {
        await report.action({ action: "unchanged", name, path, size: step.size });
      } else if (flags.dryRun) {
        await report.action({ action: step.action, name, path, size: step.size });
      } else if (step.action === "delete") {
        try {
          await Deno.remove(path);
          await report.action({ action: "delete", name, path, size: step.size });
        } catch (error) {
          if (error instanceof Deno.errors.NotFound) {
            await report.action({ action: "delete", name, path, size: step.size });
          } else {
            await report.action({
              action: "fail",
              name,
              path,
              error: `Cannot delete "${path}": ${(error as Error).message}`,
            });
          }
        }
      } else if (connection.chunks) {
        const { fetchedWhole } = await import("./chunk_download.ts");
        const whole = fetchedWhole(path, step.size);
        await inFlight.start(() => fetchFile(name, path, step.size, whole));
      } else {
        await fetchFile(name, path, step.size, false); // plain GETs, one at a time
      }
    }
    await inFlight.settle();
  } finally {
    progress.done();
  }
  // The remote side as listed is still the server's: a pull changes nothing there.
  // A pull changes nothing on the server.
  if (!flags.dryRun) await remoteEnd(connection, start.counter, start.files, statePath, { untouched: !start.listed });
  await report.finish(connection.traffic.sent + connection.traffic.received);
  const { failed } = report.summary;
  if (failed > 0) {
    throw new CommandFailure(`${failed} file${failed === 1 ? "" : "s"} of "${printableName(prefix)}" not pulled`, 1);
  }
}
