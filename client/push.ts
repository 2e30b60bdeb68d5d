/**
 * `dfos push DIR [PREFIX]`: makes PREFIX on the server match the local folder
 * DIR, over one connection (usage in client/command_table.ts). The folder is
 * scanned without reading files (client/sync/tree.ts), the server's side is
 * taken from the last run's state or listed (client/sync/remote_view.ts), the
 * plan made (client/sync/plan.ts), and each file to send goes up by the chunk
 * upload, which sends only the chunks the server lacks and sets the file's
 * modification time. A file that fails is reported and the run goes on; the
 * exit code is 1 when any did.
 *
 * @module
 */

import { basename, resolve } from "node:path";
import { CommandFailure, type ParsedArgs, UsageError } from "../shared/cli.ts";
import { nameProblem, printableName } from "../shared/names.ts";
import { DfosError, Status } from "../shared/status.ts";
import type { CommandContext } from "./command_table.ts";
import { connectionLost } from "./sync/connection_lost.ts";
import { InFlight } from "./sync/in_flight.ts";
import { joinRemote, remotePrefix, syncFlags } from "./sync/flags.ts";
import { type FileFacts, planSync } from "./sync/plan.ts";
import { SyncProgress } from "./sync/progress_line.ts";
import { remoteEnd, remoteStart } from "./sync/remote_view.ts";
import { SyncReport } from "./sync/report.ts";
import { runStateFile } from "./sync/state.ts";
import { scanTree } from "./sync/tree.ts";

/** Files sent at once, pipelined on the one connection: enough to keep the server busy between them. */
const IN_FLIGHT = 8;

/** Runs `push` once. */
export async function run({ values, positionals }: ParsedArgs, { client, io, signal }: CommandContext): Promise<void> {
  if (positionals.length < 1 || positionals.length > 2) throw new UsageError("push takes DIR [PREFIX]");
  const dir = positionals[0];
  const absolute = resolve(dir);
  const prefix = remotePrefix(positionals[1] ?? basename(absolute));
  const info = await Deno.stat(dir).catch((error) => {
    throw new UsageError(`Cannot push "${dir}": ${(error as Error).message}`);
  });
  if (!info.isDirectory) throw new UsageError(`Cannot push "${dir}": it is not a folder`);
  const flags = syncFlags(values);
  const report = new SyncReport("push", io, flags);

  const tree = await scanTree(dir, flags.excluded);
  const skipped = new Map<string, string>();
  for (const [rel, what] of tree.others) skipped.set(rel, `a ${what}, not followed`);
  const source = new Map<string, FileFacts>();
  let refused = 0;
  for (const [rel, file] of tree.files) {
    const problem = nameProblem(joinRemote(prefix, rel));
    if (problem !== undefined) {
      skipped.set(rel, `the server cannot take this name: ${problem}`);
      refused++;
    } else source.set(rel, file);
  }

  const connection = await client();
  const statePath = await runStateFile(flags.state, { user: connection.user, prefix, dir: absolute });
  const start = await remoteStart(connection, prefix, statePath);
  report.summary.listed = start.listed;
  const target = new Map([...start.files].filter(([rel]) => !flags.excluded(rel)));
  const plan = await planSync({
    source,
    target,
    skipped,
    delete: flags.delete,
    sameContent: flags.checksum
      ? async (rel) =>
        (await import("./sync/same_content.ts")).sameContent(
          connection,
          tree.files.get(rel)!.path,
          joinRemote(prefix, rel),
        )
      : undefined,
  });

  const view = new Map(start.files);
  const sends = plan.filter((step) => step.action === "send");
  const progress = new SyncProgress(
    flags.dryRun ? 0 : sends.length,
    sends.reduce((sum, step) => sum + step.size, 0),
  );
  // Files go up pipelined on the one connection: up to IN_FLIGHT at once (client/connection.ts), each read and
  // chunked while the server stores the ones before it. Any other request (a delete) waits until they are done.
  // A plain put (a server without the chunk requests) is not pipelined.
  const inFlight = new InFlight(connection.chunks ? IN_FLIGHT : 1);
  const sendFile = async (rel: string, name: string) => {
    const file = tree.files.get(rel)!;
    try {
      const { uploadFile } = await import("./chunk_upload.ts");
      const moved = await uploadFile(connection, file, name, {
        onProgress: (bytes) => progress.file(bytes),
        signal,
        replaces: start.files.has(rel),
      });
      view.set(rel, { size: file.size, mtime: file.mtime });
      await report.action({
        action: "send",
        name,
        size: file.size,
        mtime: file.mtime,
        sent: moved.sent,
        reused: moved.reused,
        resumed: moved.resumed,
      });
    } catch (error) {
      if (connectionLost(error) || signal?.aborted) throw error;
      view.delete(rel); // old or new: unknown, so the next run compares again
      await report.action({
        action: "fail",
        name,
        error: `Cannot upload "${file.path}": ${(error as Error).message}`,
      });
    } finally {
      progress.fileDone(file.size);
    }
  };
  try {
    for (const step of plan) {
      const name = joinRemote(prefix, step.rel);
      if (step.action === "skip") {
        await report.action({ action: "skip", name, path: step.rel, reason: step.reason });
      } else if (step.action === "unchanged") {
        await report.action({ action: "unchanged", name, size: step.size });
      } else if (flags.dryRun) {
        await report.action({ action: step.action, name, size: step.size });
      } else if (step.action === "delete") {
        await inFlight.settle();
        try {
          await connection.remove(name);
          view.delete(step.rel);
          await report.action({ action: "delete", name, size: step.size });
        } catch (error) {
          if (connectionLost(error)) throw error;
          if (error instanceof DfosError && error.code === Status.NOT_FOUND) {
            view.delete(step.rel);
            await report.action({ action: "delete", name, size: step.size });
          } else {
            await report.action({ action: "fail", name, error: (error as Error).message });
          }
        }
      } else {
        await inFlight.start(() => sendFile(step.rel, name));
      }
    }
    await inFlight.settle();
  } finally {
    progress.done();
  }
  // After a failure the remote side is not known for sure: no state, the next run lists.
  const known = report.summary.failed === 0 ? start.counter : null;
  const untouched = !start.listed && report.summary.sent === 0 && report.summary.deleted === 0;
  if (!flags.dryRun) await remoteEnd(connection, known, view, statePath, { untouched });
  await report.finish(connection.traffic.sent + connection.traffic.received);
  const failed = report.summary.failed + refused;
  if (failed > 0) {
    throw new CommandFailure(`${failed} file${failed === 1 ? "" : "s"} of "${printableName(dir)}" not pushed`, 1);
  }
}
