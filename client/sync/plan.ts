/**
 * `planSync()`: what a push or a pull does, file by file, from what each side
 * holds: send what the target lacks or holds in another version, delete (only
 * when asked) what the source lacks, leave the rest. A file is unchanged when
 * its size and modification time (milliseconds) match on both sides, without
 * reading it; with `--checksum`, when its size and contents match. The same
 * code plans both directions: for a push the source is the local folder, for
 * a pull the server.
 *
 * @module
 */

/** A file's facts on one side. */
export interface FileFacts {
  /** Size in bytes. */
  size: number;
  /** Modification time, milliseconds since the Unix epoch. */
  mtime: number;
}

/** One step of the plan; `rel` is the path relative to DIR (and to PREFIX), `/`-separated. */
export type PlannedAction =
  | { action: "send"; rel: string; size: number; mtime: number }
  | { action: "delete"; rel: string; size: number }
  | { action: "unchanged"; rel: string; size: number }
  | { action: "skip"; rel: string; reason: string };

/** What {@linkcode planSync} works from. */
export interface PlanInput {
  /** The source's files, by relative path. */
  source: ReadonlyMap<string, FileFacts>;
  /** The target's files, by relative path. */
  target: ReadonlyMap<string, FileFacts>;
  /** Source paths that cannot be synced, with the reason: reported, never sent, and never deleted on the target. */
  skipped: ReadonlyMap<string, string>;
  /** Delete what the source lacks (`--delete`). */
  delete: boolean;
  /**
   * Compares contents (`--checksum`): called only for files of the same size
   * on both sides; true when they are the same.
   */
  sameContent?: (rel: string) => Promise<boolean>;
}

/**
 * Plans the run.
 *
 * @param input Both sides, what is skipped, the flags.
 * @returns The actions: skips, then deletes, then the rest, each sorted by path. Deletes come
 * before sends so that a file may take the place of a folder the source no longer has.
 *
 * @example Usage
 * ```ts
 * import assert from "node:assert/strict";
 * import { planSync } from "./plan.ts";
 * const plan = await planSync({
 *   source: new Map([["a", { size: 1, mtime: 5 }], ["b", { size: 2, mtime: 5 }]]),
 *   target: new Map([["a", { size: 1, mtime: 5 }], ["c", { size: 3, mtime: 5 }]]),
 *   skipped: new Map(),
 *   delete: true,
 * });
 * assert.deepEqual(plan.map((step) => `${step.action} ${step.rel}`), ["delete c", "unchanged a", "send b"]);
 * ```
 */
export async function planSync(input: PlanInput): Promise<PlannedAction[]> {
  const skips: PlannedAction[] = [...input.skipped].sort(byKey).map(([rel, reason]) => ({
    action: "skip",
    rel,
    reason,
  }));
  const steps: PlannedAction[] = [];
  for (const [rel, facts] of [...input.source].sort(byKey)) {
    if (input.skipped.has(rel) || underSkipped(rel, input.skipped)) continue;
    const there = input.target.get(rel);
    let same = there !== undefined && there.size === facts.size;
    if (same) same = input.sameContent ? await input.sameContent(rel) : there!.mtime === facts.mtime;
    steps.push(
      same
        ? { action: "unchanged", rel, size: facts.size }
        : { action: "send", rel, size: facts.size, mtime: facts.mtime },
    );
  }
  const deletes: PlannedAction[] = [];
  if (input.delete) {
    for (const [rel, facts] of [...input.target].sort(byKey)) {
      if (input.source.has(rel) || input.skipped.has(rel) || underSkipped(rel, input.skipped)) continue;
      deletes.push({ action: "delete", rel, size: facts.size });
    }
  }
  return [...skips, ...deletes, ...steps];
}

/** True when a folder of `rel` is skipped (a link to a folder): nothing under it is sent or deleted. */
function underSkipped(rel: string, skipped: ReadonlyMap<string, string>): boolean {
  for (let slash = rel.indexOf("/"); slash !== -1; slash = rel.indexOf("/", slash + 1)) {
    if (skipped.has(rel.slice(0, slash))) return true;
  }
  return false;
}

function byKey<T>(a: [string, T], b: [string, T]): number {
  return a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0;
}
