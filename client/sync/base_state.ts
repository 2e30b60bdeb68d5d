/**
 * The base of `dfos sync`: what both sides held after the last run, the
 * common ancestor of its three-way comparison. For each file synced: the
 * root of its content (the same on both sides then), the local facts that
 * show a change without reading it (size, mtime, inode, ctime:
 * client/sync/tree.ts) and the server's mtime; and the server's change
 * counter the run saw, from which the next run asks what changed.
 *
 * Kept as push's and pull's state is (client/sync/state.ts): one JSON file
 * per server, user, PREFIX and DIR under `$XDG_STATE_HOME/dfos/sync/`,
 * outside DIR, written to a temporary file and renamed. Its key has its own
 * kind (`"sync"`), so a push or pull of the same pair never reads it. A
 * missing or unreadable base reads as none: the next run merges, deleting
 * nothing.
 *
 * @module
 */

import { dropState } from "./state.ts";

/** A file's facts on the local disk, as the scan gives them. */
export interface LocalFacts {
  size: number;
  mtime: number;
  ino: number;
  ctime: number;
}

/** One file as both sides held it after the last run. */
export interface SyncedFile {
  /** The root of its content (docs/PROTOCOL.md "Root"). */
  root: string;
  /** The local file's facts then. */
  local: LocalFacts;
  /** The server's size and mtime then. */
  remote: { size: number; mtime: number };
}

/** What the last run left. */
export interface SyncBase {
  /** The counter's epoch. */
  epoch: string;
  /** The change counter the next run asks what changed since. */
  counter: number;
  /**
   * When the run that left it began scanning DIR (ms since the epoch). The
   * system gives ctime in whole seconds here, so a file whose ctime is not
   * a second older than this may have changed after the scan without its
   * facts showing it: the next run reads it for its root (git's "racily
   * clean" rule).
   */
  scanned: number;
  /** The files synced, by path relative to DIR (and PREFIX). */
  files: Map<string, SyncedFile>;
}

/** Bumped when the file's shape changes: a base of another format reads as none. */
const FORMAT = 1;

/** A file's entry on disk: root, local size, mtime, inode, ctime, remote size, remote mtime. */
type Row = [string, number, number, number, number, number, number];

/**
 * Reads a base; a missing, unreadable or malformed one reads as none.
 *
 * @param path The state file.
 * @returns The base, or null.
 */
export async function loadBase(path: string): Promise<SyncBase | null> {
  let data;
  try {
    data = JSON.parse(await Deno.readTextFile(path));
  } catch {
    return null;
  }
  if (data?.format !== FORMAT || data.kind !== "sync") return null;
  if (typeof data.epoch !== "string" || !Number.isSafeInteger(data.counter)) return null;
  if (!Number.isSafeInteger(data.scanned)) return null;
  const files = new Map<string, SyncedFile>();
  for (const [rel, row] of Object.entries(data.files as Record<string, unknown>)) {
    if (!validRow(row)) return null;
    const [root, size, mtime, ino, ctime, remoteSize, remoteMtime] = row;
    files.set(rel, { root, local: { size, mtime, ino, ctime }, remote: { size: remoteSize, mtime: remoteMtime } });
  }
  return { epoch: data.epoch, counter: data.counter, scanned: data.scanned, files };
}

function validRow(row: unknown): row is Row {
  return Array.isArray(row) && row.length === 7 && typeof row[0] === "string" && /^[0-9a-f]{64}$/.test(row[0]) &&
    row.slice(1).every(Number.isSafeInteger);
}

/**
 * Writes a base (its folder made if needed), atomically.
 *
 * @param path The state file.
 * @param base What to keep.
 */
export async function saveBase(path: string, base: SyncBase): Promise<void> {
  const folder = path.slice(0, path.lastIndexOf("/"));
  await Deno.mkdir(folder, { recursive: true, mode: 0o700 });
  const files: Record<string, Row> = {};
  for (const [rel, { root, local, remote }] of base.files) {
    files[rel] = [root, local.size, local.mtime, local.ino, local.ctime, remote.size, remote.mtime];
  }
  const temp = `${path}.${crypto.randomUUID()}.tmp`;
  const { epoch, counter, scanned } = base;
  const text = JSON.stringify({ format: FORMAT, kind: "sync", epoch, counter, scanned, files });
  await Deno.writeTextFile(temp, text, { mode: 0o600 });
  try {
    await Deno.rename(temp, path);
  } catch (error) {
    await Deno.remove(temp).catch(() => {});
    throw error;
  }
}

export { dropState as dropBase };

/**
 * True when a local file's facts are those of the base: unchanged since,
 * without reading it.
 *
 * @param now The facts now.
 * @param then The facts in the base.
 * @returns Whether they match.
 */
export function sameFacts(now: LocalFacts, then: LocalFacts): boolean {
  return now.size === then.size && now.mtime === then.mtime && now.ino === then.ino && now.ctime === then.ctime;
}
