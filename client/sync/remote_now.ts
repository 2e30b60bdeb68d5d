/**
 * `remoteNow()`: the server's side of a `dfos sync` run: its files under
 * PREFIX, and which of them changed since the base. With a base of the
 * counter's epoch, one `changes` round trip answers both (the counter has
 * not moved: the base's files; it has: the base brought up to date with the
 * names the journal gives); otherwise the prefix is listed and compared
 * with the base by size and mtime.
 *
 * A name the server sends is used only if it is under PREFIX and keeps the
 * naming rules (shared/names.ts: no `..`, no empty segment): a server that
 * sends another cannot make the client write outside DIR.
 *
 * @module
 */

import type { DfosClient } from "../connection.ts";
import type { SyncBase } from "./base_state.ts";
import { usableName } from "./flags.ts";
import type { RemoteFacts } from "./three_way.ts";

/** The server's side now. */
export interface RemoteNow {
  /** The counter at the start of the run. */
  counter: { epoch: string; counter: number; mine: number };
  /** Its files under PREFIX, by relative path. */
  files: Map<string, RemoteFacts>;
  /** The paths changed since the base. */
  changed: Set<string>;
  /** True when the prefix was listed. */
  listed: boolean;
}

/**
 * Reads the server's side.
 *
 * @param client The connection (with the "sync" feature).
 * @param prefix PREFIX ("" for the top).
 * @param base The last run's base, or null.
 * @returns The files and what changed.
 */
export async function remoteNow(client: DfosClient, prefix: string, base: SyncBase | null): Promise<RemoteNow> {
  const from = prefix === "" ? "" : `${prefix}/`;
  const since = base === null ? undefined : { epoch: base.epoch, counter: base.counter, prefix: from };
  const reply = await client.changes(since);
  const counter = { epoch: reply.epoch, counter: reply.counter, mine: reply.mine };
  const baseFiles = () => new Map([...base!.files].map(([rel, file]) => [rel, file.remote]));
  if (base !== null && base.epoch === reply.epoch) {
    if (base.counter === reply.counter) return { counter, files: baseFiles(), changed: new Set(), listed: false };
    if (reply.changed !== undefined && reply.gone !== undefined) {
      const files = baseFiles();
      const changed = new Set<string>();
      for (const name of reply.gone) {
        if (!usableName(name, from)) continue;
        const rel = name.slice(from.length);
        files.delete(rel);
        changed.add(rel);
      }
      for (const entry of reply.changed) {
        if (!usableName(entry.name, from)) continue;
        const rel = entry.name.slice(from.length);
        files.set(rel, { size: entry.size, mtime: entry.mtime });
        changed.add(rel);
      }
      return { counter, files, changed, listed: false };
    }
  }
  const files = new Map<string, RemoteFacts>();
  const changed = new Set<string>();
  for await (const entry of client.list(from)) {
    if (!usableName(entry.name, from)) continue;
    const rel = entry.name.slice(from.length);
    files.set(rel, { size: entry.size, mtime: entry.mtime });
    const was = base?.files.get(rel)?.remote;
    if (was === undefined || was.size !== entry.size || was.mtime !== entry.mtime) changed.add(rel);
  }
  return { counter, files, changed, listed: true };
}
