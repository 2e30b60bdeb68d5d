/**
 * The remote side of a push or pull: the files under PREFIX, taken from the
 * last run's state when the server's change counter has not moved since
 * (one `changes` round trip); when it has, from the state and the changes
 * since, which the same round trip asks for (the server answers them when
 * its journal reaches back that far); else listed. And, at the end, whether
 * the state may be kept: only when nobody but this run changed anything
 * meanwhile (the counter moved by exactly this session's own changes).
 *
 * @module
 */

import type { ListEntry } from "../../shared/messages.ts";
import { DfosError, Status } from "../../shared/status.ts";
import type { DfosClient } from "../connection.ts";
import type { FileFacts } from "./plan.ts";
import { usableName } from "./flags.ts";
import { dropState, loadState, saveState } from "./state.ts";

/** The change counter as `changes` gives it. */
export interface Counter {
  epoch: string;
  counter: number;
  mine: number;
}

/** The remote side at the start of a run. */
export interface RemoteStart {
  /** The counter at the start, or null for a server without one. */
  counter: Counter | null;
  /** The files under PREFIX, by path relative to it. */
  files: Map<string, FileFacts>;
  /** True when they were listed, false when taken from the state. */
  listed: boolean;
}

/**
 * Reads the counter, then the state or the listing.
 *
 * @param client The connection.
 * @param prefix PREFIX ("" for the top of the user's space).
 * @param statePath The state file, or null for none.
 * @returns The remote side.
 */
export async function remoteStart(client: DfosClient, prefix: string, statePath: string | null): Promise<RemoteStart> {
  const from = prefix === "" ? "" : `${prefix}/`;
  const state = client.chunks && statePath !== null ? await loadState(statePath) : null;
  const since = state === null ? undefined : { epoch: state.epoch, counter: state.counter, prefix: from };
  const counter = await readCounter(client, since);
  if (counter !== null && state !== null && state.epoch === counter.epoch) {
    if (state.counter === counter.counter) return { counter, files: state.files, listed: false };
    if (counter.changed !== undefined && counter.gone !== undefined) {
      // The state, brought up to date with the changes since.
      const files = new Map(state.files);
      for (const name of counter.gone) files.delete(name.slice(from.length));
      for (const entry of counter.changed) {
        if (!usableName(entry.name, from)) continue;
        files.set(entry.name.slice(from.length), { size: entry.size, mtime: entry.mtime });
      }
      return { counter, files, listed: false };
    }
  }
  const files = new Map<string, FileFacts>();
  for await (const entry of client.list(from)) {
    if (!usableName(entry.name, from)) continue;
    files.set(entry.name.slice(from.length), { size: entry.size, mtime: entry.mtime });
  }
  return { counter, files, listed: true };
}

/**
 * Keeps the remote side for the next run when nobody else changed anything
 * during this one; otherwise removes the state (the next run lists). A run
 * that took the remote side from the state and changed nothing there leaves
 * the state as it is, without asking: if another client changed something
 * meanwhile, the counter no longer matches the state's and the next run
 * lists.
 *
 * @param client The connection.
 * @param start The counter at the start; null to keep no state (the server has no counter, or the run
 * does not know the remote side for sure).
 * @param files The remote side as this run left it.
 * @param statePath The state file, or null for none.
 * @param options `untouched`: the start came from the state and this run changed nothing on the server.
 */
export async function remoteEnd(
  client: DfosClient,
  start: Counter | null,
  files: Map<string, FileFacts>,
  statePath: string | null,
  options: { untouched?: boolean } = {},
): Promise<void> {
  if (statePath === null) return;
  if (start === null) return await dropState(statePath);
  if (options.untouched) return;
  const end = await readCounter(client);
  if (end !== null && end.epoch === start.epoch && end.counter - start.counter === end.mine - start.mine) {
    await saveState(statePath, { epoch: end.epoch, counter: end.counter, files });
  } else {
    await dropState(statePath);
  }
}

/**
 * The counter, or null for a server that has none (it has no chunk requests,
 * `changes` among them); with the changes since the state's counter when the
 * server can answer them.
 */
async function readCounter(
  client: DfosClient,
  since?: { epoch: string; counter: number; prefix: string },
): Promise<(Counter & { changed?: ListEntry[]; gone?: string[] }) | null> {
  if (!client.chunks) return null;
  try {
    return await client.changes(since);
  } catch (error) {
    if (error instanceof DfosError && error.code === Status.UNSUPPORTED) return null;
    throw error;
  }
}
