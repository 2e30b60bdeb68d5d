/**
 * `planThreeWay()`: what one `dfos sync` run does, file by file, from three
 * views of each path: the base (both sides after the last run,
 * client/sync/base_state.ts), the local folder now, and the server now with
 * the names it changed since the base (its change journal, or a listing
 * compared with the base).
 *
 * Each side of a path is `same`, `changed`, `deleted`, `new` or `absent`
 * against the base. A change on one side goes to the other; a change on
 * both is compared by content root, and is a conflict only when the roots
 * differ; an edit beats a delete. A local file whose facts (size, mtime,
 * inode, ctime) are the base's is not read; one whose size is the base's but
 * whose other facts moved is read for its root, so that a `touch` is not an
 * edit and an edit that keeps size and mtime still is one. A server name
 * the journal says changed but whose size and mtime are the base's (this
 * client's own change, seen again) is asked for its root.
 *
 * Renames and copies: a path gone on one side and a new one there with the
 * same root (same size first, then the root) is a move on the other side;
 * a new server file with the root of a local file in the base is a local
 * copy. Neither moves file data.
 *
 * The plan is pure: the roots come through callbacks, and nothing is changed.
 *
 * @module
 */

import { type LocalFacts, sameFacts, type SyncedFile } from "./base_state.ts";

/** A server file's facts. */
export interface RemoteFacts {
  size: number;
  mtime: number;
}

/** What {@linkcode planThreeWay} works from. */
export interface ThreeWayInput {
  /** Both sides after the last run (empty for a first run). */
  base: ReadonlyMap<string, SyncedFile>;
  /** The local files now, by path relative to DIR. */
  local: ReadonlyMap<string, LocalFacts>;
  /** The server's files now, by path relative to PREFIX. */
  remote: ReadonlyMap<string, RemoteFacts>;
  /** Paths the server changed since the base (with a base), as its journal or a listing says. */
  remoteChanged: ReadonlySet<string>;
  /**
   * A local file whose facts are the base's but whose ctime is not a second
   * older than this (the last scan's start, ms) is read for its root all the
   * same: ctime comes in whole seconds, so a change in the second after that
   * scan may not show (`SyncBase.scanned`). 0: none.
   */
  racyFrom?: number;
  /** Paths left alone whatever the sides hold (links and special files here, names the server cannot take). */
  skipped: ReadonlySet<string>;
  /** The root of a local file's content now. */
  localRoot(rel: string): Promise<string>;
  /** The root of a server file's content now; null when it is gone. */
  remoteRoot(rel: string): Promise<string | null>;
}

/** One step of the plan. `expect`: the local facts the step was planned on; it is skipped if they moved. */
export type SyncStep =
  | { op: "upload"; rel: string; size: number; ifRoot: string | null; expect: LocalFacts }
  | { op: "download"; rel: string; size: number; expect: LocalFacts | null }
  | { op: "delete-remote"; rel: string; size: number; ifRoot: string }
  | { op: "delete-local"; rel: string; size: number; expect: LocalFacts }
  | { op: "move-remote"; from: string; rel: string; size: number; ifRoot: string; expect: LocalFacts }
  | { op: "move-local"; from: string; rel: string; size: number; root: string; expect: LocalFacts }
  | { op: "copy-local"; from: string; rel: string; size: number; root: string; expect: LocalFacts }
  | { op: "conflict"; rel: string; size: number; expect: LocalFacts }
  | { op: "record"; rel: string; root: string; local: LocalFacts; remote: RemoteFacts }
  | { op: "forget"; rel: string };

type LocalState = "same" | "changed" | "deleted" | "new" | "absent";
type RemoteState = LocalState;

/**
 * Plans the run.
 *
 * @param input The three views and the root callbacks.
 * @returns The steps, sorted by path; unchanged paths have none.
 */
export async function planThreeWay(input: ThreeWayInput): Promise<SyncStep[]> {
  const { base, local, remote } = input;
  const paths = new Set([...base.keys(), ...local.keys(), ...remote.keys()]);
  const steps: SyncStep[] = [];
  const localGone: string[] = [];
  const localNew: string[] = [];
  const remoteGone: string[] = [];
  const remoteNew: string[] = [];
  const localRoots = new Map<string, string>();
  const localRoot = async (rel: string) => {
    let root = localRoots.get(rel);
    if (root === undefined) localRoots.set(rel, root = await input.localRoot(rel));
    return root;
  };
  const remoteRoots = new Map<string, string | null>();
  const remoteRoot = async (rel: string) => {
    if (!remoteRoots.has(rel)) remoteRoots.set(rel, await input.remoteRoot(rel));
    return remoteRoots.get(rel)!;
  };

  for (const rel of [...paths].sort(byPath)) {
    if (input.skipped.has(rel) || underSkipped(rel, input.skipped)) continue;
    const was = base.get(rel);
    const here = local.get(rel);
    const there = remote.get(rel);
    let l: LocalState;
    if (here === undefined) l = was === undefined ? "absent" : "deleted";
    else if (was === undefined) l = "new";
    else if (sameFacts(here, was.local) && !racy(here, input.racyFrom)) l = "same";
    else if (here.size !== was.local.size) l = "changed";
    else if (await localRoot(rel) === was.root) {
      l = "same"; // touched: same content, new facts
      steps.push({ op: "record", rel, root: was.root, local: here, remote: there ?? was.remote });
    } else l = "changed";
    let r: RemoteState;
    if (there === undefined) r = was === undefined ? "absent" : "deleted";
    else if (was === undefined) r = "new";
    else if (!input.remoteChanged.has(rel)) r = "same";
    else if (there.size !== was.remote.size || there.mtime !== was.remote.mtime) r = "changed";
    else r = await remoteRoot(rel) === was.root ? "same" : "changed";

    if (l === "same" && r === "same") continue;
    if (l === "same" && r === "deleted") {
      remoteGone.push(rel);
    } else if (l === "same" || l === "deleted" || l === "absent") {
      if (r === "changed" || r === "new") {
        if (l === "absent") remoteNew.push(rel);
        else steps.push({ op: "download", rel, size: there!.size, expect: here ?? null });
      } else if (l === "deleted" && r === "same") {
        localGone.push(rel);
      } else if (l === "deleted" && r === "deleted") {
        steps.push({ op: "forget", rel });
      }
    } else if (r === "same" || r === "deleted" || r === "absent") {
      // Changed or new here, not there: it goes up; over the base's content, or where there is none (an edit
      // beats a delete).
      if (l === "new" && r === "absent") localNew.push(rel);
      else {
        const ifRoot = r === "same" ? was!.root : null;
        steps.push({ op: "upload", rel, size: here!.size, ifRoot, expect: here! });
      }
    } else {
      // Changed on both sides, or new on both: the same content is no conflict.
      const [mine, theirs] = await Promise.all([localRoot(rel), remoteRoot(rel)]);
      if (theirs === null) steps.push({ op: "upload", rel, size: here!.size, ifRoot: null, expect: here! });
      else if (mine === theirs) steps.push({ op: "record", rel, root: mine, local: here!, remote: there! });
      else steps.push({ op: "conflict", rel, size: here!.size, expect: here! });
    }
  }

  // A file gone here and a new one here with its content: a move on the server.
  const movedAway = new Set<string>();
  for (const rel of localNew) {
    const here = local.get(rel)!;
    let from: string | undefined;
    for (const gone of localGone) {
      const was = base.get(gone)!;
      if (movedAway.has(gone) || was.local.size !== here.size) continue;
      if (await localRoot(rel) === was.root) {
        from = gone;
        break;
      }
    }
    if (from === undefined) {
      steps.push({ op: "upload", rel, size: here.size, ifRoot: null, expect: here });
    } else {
      movedAway.add(from);
      steps.push({ op: "move-remote", from, rel, size: here.size, ifRoot: base.get(from)!.root, expect: here });
    }
  }
  for (const gone of localGone) {
    if (!movedAway.has(gone)) {
      steps.push({ op: "delete-remote", rel: gone, size: base.get(gone)!.local.size, ifRoot: base.get(gone)!.root });
    }
  }

  // A file gone on the server and a new one there with its content: a move here. A new one with the content of a
  // file here that did not change: a copy here.
  const movedHere = new Set<string>();
  for (const rel of remoteNew) {
    const there = remote.get(rel)!;
    let step: SyncStep | undefined;
    const candidates = [...remoteGone.filter((gone) => !movedHere.has(gone)), ...copySources(base, local, there.size)];
    for (const from of candidates) {
      const was = base.get(from)!;
      if (was.remote.size !== there.size) continue;
      const root = await remoteRoot(rel);
      if (root !== was.root) continue;
      const expect = local.get(from)!;
      if (remoteGone.includes(from) && !movedHere.has(from)) {
        movedHere.add(from);
        step = { op: "move-local", from, rel, size: there.size, root, expect };
      } else {
        step = { op: "copy-local", from, rel, size: there.size, root, expect };
      }
      break;
    }
    steps.push(step ?? { op: "download", rel, size: there.size, expect: null });
  }
  for (const gone of remoteGone) {
    if (!movedHere.has(gone)) {
      steps.push({ op: "delete-local", rel: gone, size: local.get(gone)!.size, expect: local.get(gone)! });
    }
  }
  return steps.sort((a, b) => byPath(a.rel, b.rel));
}

/** True when a file's ctime is too near the last scan's start to tell whether it changed after the scan. */
function racy(here: LocalFacts, racyFrom: number | undefined): boolean {
  return racyFrom !== undefined && here.ctime + 1000 > racyFrom;
}

/** Files here unchanged since the base with content of `size`: what a new server file may be a copy of. */
function copySources(
  base: ReadonlyMap<string, SyncedFile>,
  local: ReadonlyMap<string, LocalFacts>,
  size: number,
): string[] {
  const sources: string[] = [];
  for (const [rel, was] of base) {
    const here = local.get(rel);
    if (was.local.size === size && here !== undefined && sameFacts(here, was.local)) sources.push(rel);
    if (sources.length === 4) break; // a few candidates: each costs a root asked of the server at most once
  }
  return sources;
}

/** True when a folder of `rel` is skipped (a link to a folder): nothing under it is synced. */
function underSkipped(rel: string, skipped: ReadonlySet<string>): boolean {
  for (let slash = rel.indexOf("/"); slash !== -1; slash = rel.indexOf("/", slash + 1)) {
    if (skipped.has(rel.slice(0, slash))) return true;
  }
  return false;
}

function byPath(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
