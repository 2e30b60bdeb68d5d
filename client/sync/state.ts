/**
 * The local state of push and pull: after a run, the server's change
 * counter as the run left it and the remote side's files (name, size,
 * modification time), so that the next run, finding the counter where it
 * was, need not list the server again.
 *
 * One JSON file per server, user, PREFIX and absolute DIR, named by the
 * SHA-256 of those four, in `$XDG_STATE_HOME/dfos/sync/` (default
 * `~/.local/state/dfos/sync/`): outside the folder synced. Deleting it is
 * always safe (the next run lists). Written to a temporary file and renamed,
 * so a reader finds the old state or the new one.
 *
 * @module
 */

import { join } from "node:path";
import type { FileFacts } from "./plan.ts";

/** What one state file holds. */
export interface SyncState {
  /** The counter's epoch. */
  epoch: string;
  /** The change counter once the run was over. */
  counter: number;
  /** The remote side's files after the run, by path relative to PREFIX. */
  files: Map<string, FileFacts>;
}

/** Bumped when the file's shape changes: a file of another version is ignored. */
const FORMAT = 1;

/**
 * The folder of the state files, from `XDG_STATE_HOME` or `HOME`; null when
 * neither can be read (no permission, as in the shell once it has started).
 *
 * @returns The folder, or null.
 */
export function stateFolder(): string | null {
  try {
    const xdg = Deno.env.get("XDG_STATE_HOME");
    if (xdg) return join(xdg, "dfos", "sync");
    const home = Deno.env.get("HOME");
    return home ? join(home, ".local", "state", "dfos", "sync") : null;
  } catch {
    return null;
  }
}

/**
 * The state file of one pairing of a local folder and a remote prefix.
 *
 * @param folder From {@linkcode stateFolder}.
 * @param key The server's address, the user, PREFIX and DIR as an absolute path; `kind` for a command that keeps
 *   a state of another shape (`"sync"`), absent for push and pull.
 * @returns The file's path.
 */
export async function stateFile(
  folder: string,
  key: { server: string; user: string; prefix: string; dir: string; kind?: string },
): Promise<string> {
  // WebCrypto, not node:crypto, which a command would pay some 15 ms to load at start (docs/PERFORMANCE.md).
  const fields = [key.server, key.user, key.prefix, key.dir];
  const text = new TextEncoder().encode(JSON.stringify(key.kind === undefined ? fields : [key.kind, ...fields]));
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", text));
  const hash = Array.from(digest, (byte) => byte.toString(16).padStart(2, "0")).join("");
  return join(folder, `${hash}.json`);
}

/**
 * The state file of a run, or null when the run keeps none (no state
 * folder or server address to key it by: `syncFlags`' `state` is null).
 *
 * @param state Where states are kept and the server's address, from the flags.
 * @param key The user, PREFIX and DIR as an absolute path.
 * @returns The file's path, or null.
 */
export async function runStateFile(
  state: { folder: string; server: string } | null,
  key: { user: string; prefix: string; dir: string },
): Promise<string | null> {
  return state === null ? null : await stateFile(state.folder, { server: state.server, ...key });
}

/**
 * Reads a state file; a missing, unreadable or malformed one reads as none.
 *
 * @param path The file.
 * @returns The state, or null.
 */
export async function loadState(path: string): Promise<SyncState | null> {
  try {
    const data = JSON.parse(await Deno.readTextFile(path));
    if (data?.format !== FORMAT || typeof data.epoch !== "string" || !Number.isSafeInteger(data.counter)) return null;
    const files = new Map<string, FileFacts>();
    for (const [rel, facts] of Object.entries(data.files as Record<string, unknown>)) {
      if (!Array.isArray(facts) || !facts.every(Number.isSafeInteger)) return null;
      files.set(rel, { size: facts[0], mtime: facts[1] });
    }
    return { epoch: data.epoch, counter: data.counter, files };
  } catch {
    return null;
  }
}

/**
 * Writes a state file (its folder made if needed), atomically.
 *
 * @param path The file.
 * @param state What to keep.
 */
export async function saveState(path: string, state: SyncState): Promise<void> {
  const folder = path.slice(0, path.lastIndexOf("/"));
  await Deno.mkdir(folder, { recursive: true, mode: 0o700 });
  const files: Record<string, [number, number]> = {};
  for (const [rel, facts] of state.files) files[rel] = [facts.size, facts.mtime];
  const temp = `${path}.${crypto.randomUUID()}.tmp`;
  await Deno.writeTextFile(temp, JSON.stringify({ format: FORMAT, epoch: state.epoch, counter: state.counter, files }));
  try {
    await Deno.rename(temp, path);
  } catch (error) {
    await Deno.remove(temp).catch(() => {});
    throw error;
  }
}

/**
 * Deletes a state file, if there is one: the next run lists.
 *
 * @param path The file.
 */
export async function dropState(path: string): Promise<void> {
  await Deno.remove(path).catch(() => {});
}
