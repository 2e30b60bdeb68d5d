/**
 * `syncOnce()`: one two-way run of `dfos sync` over one connection. It scans
 * DIR (client/sync/tree.ts), reads the server's side (client/sync/remote_now.ts),
 * plans against the base (client/sync/three_way.ts), checks the plan
 * against the guards (an empty side, `--max-delete`), then does it:
 *
 * 1. moves (on the server with `move`, here with a rename) and the base's
 *    bookkeeping;
 * 2. deletes: on the server only if the file is still the base's version
 *    (`delete.ifRoot`; a file changed there meanwhile comes down instead: an
 *    edit beats a delete), here only if the file's facts are the planned ones;
 * 3. uploads, pipelined: each committed only if the server's file is still
 *    the base's version, or, for a file new here, only if there is none
 *    (`assemble.ifRoot`); a refusal is a conflict found late;
 * 4. downloads, pipelined: each lands only if the local file is still the one
 *    planned on (checked just before the rename);
 * 5. conflicts: the server's version keeps the name; this side's goes to
 *    `NAME.conflict-...` (client/sync/conflict_name.ts) on both sides.
 *
 * The new base is the old one with each step's outcome; a step that fails or
 * is deferred leaves its file's base entry as it was, so the next run sees
 * it again. The base is saved only at the end: a run interrupted anywhere
 * leaves the old base, and the next run finds the steps already done by
 * their content roots (a file changed "on both sides" to the same root is no
 * conflict), so it neither undoes a delete nor copies anything twice.
 *
 * @module
 */

import { dirname } from "node:path";
import { CommandFailure } from "../../shared/cli.ts";
import { nameProblem } from "../../shared/names.ts";
import { DfosError, Status } from "../../shared/status.ts";
import type { CommandIo } from "../command_table.ts";
import type { DfosClient } from "../connection.ts";
import { loadBase, type LocalFacts, sameFacts, saveBase, type SyncBase, type SyncedFile } from "./base_state.ts";
import { conflictName } from "./conflict_name.ts";
import { connectionLost } from "./connection_lost.ts";
import type { ExcludeMatcher } from "./excludes.ts";
import { joinRemote } from "./flags.ts";
import { InFlight } from "./in_flight.ts";
import { SyncProgress } from "./progress_line.ts";
import { remoteNow } from "./remote_now.ts";
import { SyncRunReport } from "./sync_report.ts";
import { planThreeWay, type RemoteFacts, type SyncStep } from "./three_way.ts";
import { localFacts, scanTree } from "./tree.ts";

/** Files moved at once, pipelined on the one connection. */
const IN_FLIGHT = 8;

/** What a run needs. */
export interface SyncRunOptions {
  /** The logged-in connection (the server has the "sync" feature). */
  client: DfosClient;
  /** DIR as given. */
  dir: string;
  /** PREFIX ("" for the top). */
  prefix: string;
  /** Paths to leave out (`--exclude`). */
  excluded: ExcludeMatcher;
  /** Print the plan only. */
  dryRun: boolean;
  /** JSON lines out. */
  json: boolean;
  /** The most files a run may delete, in percent of those in the base, without asking. */
  maxDelete: number;
  /** This machine's name for conflict copies. */
  host: string;
  /** Output and questions. */
  io: CommandIo;
  /** Where the base is kept, or null for none. */
  statePath: string | null;
  /** The base to start from when the caller holds it (`--watch`); undefined: read from `statePath`. */
  base?: SyncBase | null;
  /** Stops the run between files. */
  signal?: AbortSignal;
}

/** What a run left. */
export interface SyncRunResult {
  /** The new base (null in a dry run that had none). */
  base: SyncBase | null;
  /** Files that could not be synced. */
  failed: string[];
  /** True when the run changed something on either side. */
  changed: boolean;
}

/**
 * Runs once.
 *
 * @param options The run's connection, folders, flags and output.
 * @returns The new base and the failures.
 * @throws {CommandFailure} when a guard stops the run (nothing changed).
 */
export async function syncOnce(options: SyncRunOptions): Promise<SyncRunResult> {
  const { client, dir, prefix, excluded, io } = options;
  const report = new SyncRunReport(io, options);
  const trafficBefore = client.traffic.sent + client.traffic.received;
  const base = options.base !== undefined
    ? options.base
    : options.statePath === null
    ? null
    : await loadBase(options.statePath);

  const scanned = Date.now(); // before the scan: a file changed in the same second after it is "racy" next time
  const tree = await scanTree(dir, excluded);
  const skipped = new Set<string>();
  for (const [rel, what] of tree.others) {
    skipped.add(rel);
    await report.action({ action: "skip", name: joinRemote(prefix, rel), path: rel, reason: `a ${what}` });
  }
  const local = new Map<string, LocalFacts>();
  for (const [rel, file] of tree.files) {
    const problem = nameProblem(joinRemote(prefix, rel));
    if (problem === undefined) local.set(rel, file);
    else {
      skipped.add(rel);
      const reason = `the server cannot take this name: ${problem}`;
      await report.action({ action: "fail", name: joinRemote(prefix, rel), path: rel, error: reason });
    }
  }
  const remote = await remoteNow(client, prefix, base);
  for (const rel of remote.files.keys()) if (excluded(rel)) remote.files.delete(rel);
  const baseFiles = new Map([...(base?.files ?? [])].filter(([rel]) => !excluded(rel)));

  const localPath = (rel: string) => `${dir}/${rel}`;
  const steps = await planThreeWay({
    base: baseFiles,
    local,
    remote: remote.files,
    remoteChanged: remote.changed,
    skipped,
    racyFrom: base?.scanned,
    localRoot: async (rel) => (await (await import("../local_chunks.ts")).localChunks(localPath(rel))).root,
    remoteRoot: async (rel) => {
      try {
        return (await client.groups(joinRemote(prefix, rel))).root;
      } catch (error) {
        if (error instanceof DfosError && error.code === Status.NOT_FOUND) return null;
        throw error;
      }
    },
  });
  guard(steps, baseFiles, local, remote.files, options);

  if (options.dryRun) {
    for (const step of steps) {
      if (step.op === "record" || step.op === "forget") continue;
      await report.action({
        action: step.op,
        name: joinRemote(prefix, step.rel),
        ...("from" in step ? { from: joinRemote(prefix, step.from) } : {}),
      });
    }
    await report.finish(client.traffic.sent + client.traffic.received - trafficBefore);
    return { base, failed: report.summary.failures, changed: false };
  }

  const next = new Map(base?.files ?? []);
  const run = new StepRunner(options, report, next, remote.files);
  await run.all(steps);
  await report.finish(client.traffic.sent + client.traffic.received - trafficBefore);

  // The counter to ask "what changed since" next time: the end's when nobody else changed anything meanwhile,
  // else the start's (the next run then sees this run's own changes again, and knows them by their roots).
  const end = await client.changes();
  const alone = end.epoch === remote.counter.epoch &&
    end.counter - remote.counter.counter === end.mine - remote.counter.mine;
  const counter = alone ? end.counter : remote.counter.counter;
  const newBase: SyncBase = { epoch: remote.counter.epoch, counter, scanned, files: next };
  if (options.statePath !== null) await saveBase(options.statePath, newBase);
  const summary = report.summary;
  const changed = summary.sent + summary.received + summary.deleted + summary.moved + summary.conflicts > 0;
  return { base: newBase, failed: summary.failures, changed };
}

/**
 * Stops a run that would empty a side that the base says held files (an
 * unmounted disk, a wrong PREFIX), or delete more than `--max-delete`
 * percent of the files synced, unless a person at the terminal says yes.
 */
function guard(
  steps: SyncStep[],
  base: ReadonlyMap<string, SyncedFile>,
  local: ReadonlyMap<string, LocalFacts>,
  remote: ReadonlyMap<string, RemoteFacts>,
  options: SyncRunOptions,
): void {
  if (base.size === 0) return;
  const deletes = steps.filter((step) => step.op === "delete-remote" || step.op === "delete-local").length;
  const allowAll = options.maxDelete >= 100;
  const files = `${base.size} file${base.size === 1 ? "" : "s"}`;
  if (!allowAll && local.size === 0) {
    throw new CommandFailure(
      `"${options.dir}" is empty, but the last sync left ${files} there: stopped, nothing changed ` +
        `(is a disk unmounted?). To delete them on the server too, run again with --max-delete 100.`,
      1,
    );
  }
  if (!allowAll && remote.size === 0) {
    const where = options.prefix === "" ? "your space on the server" : `"${options.prefix}" on the server`;
    throw new CommandFailure(
      `${where} is empty, but the last sync left ${files} there: stopped, nothing changed ` +
        `(is PREFIX right?). To delete them here too, run again with --max-delete 100.`,
      1,
    );
  }
  if (deletes * 100 > options.maxDelete * base.size) {
    const percent = Math.ceil((deletes * 100) / base.size);
    throw new CommandFailure(
      `this run would delete ${deletes} of the ${files} synced (${percent}%), more than ` +
        `--max-delete ${options.maxDelete}%: stopped, nothing changed. Run again with --max-delete ${percent} ` +
        `to let it.`,
      1,
    );
  }
}

/** Does the plan's steps, keeping the new base up to date. */
class StepRunner {
  readonly #options: SyncRunOptions;
  readonly #report: SyncRunReport;
  readonly #next: Map<string, SyncedFile>;
  readonly #remote: ReadonlyMap<string, RemoteFacts>;
  #progress = new SyncProgress(0, 0, false);
  readonly #when = new Date();

  constructor(
    options: SyncRunOptions,
    report: SyncRunReport,
    next: Map<string, SyncedFile>,
    remote: ReadonlyMap<string, RemoteFacts>,
  ) {
    this.#options = options;
    this.#report = report;
    this.#next = next;
    this.#remote = remote;
  }

  /** Runs every step, in the order of the module's doc. */
  async all(steps: SyncStep[]): Promise<void> {
    const of = <T extends SyncStep["op"]>(...ops: T[]) =>
      steps.filter((step): step is Extract<SyncStep, { op: T }> => (ops as string[]).includes(step.op));
    const moving = of("upload", "download", "conflict", "copy-local");
    const bytes = moving.reduce((sum, step) => sum + step.size, 0);
    this.#progress = new SyncProgress(moving.length, bytes, !this.#options.json && Deno.stderr.isTerminal());
    try {
      for (const step of of("record")) {
        this.#next.set(step.rel, { root: step.root, local: step.local, remote: step.remote });
      }
      for (const step of of("forget")) this.#next.delete(step.rel);
      for (const step of of("move-remote", "move-local", "copy-local")) {
        await this.#guarded(step, () => this.#move(step));
      }
      const late: SyncStep[] = [];
      for (const step of of("delete-remote", "delete-local")) {
        await this.#guarded(step, async () => {
          const instead = await this.#delete(step);
          if (instead !== null) late.push(instead);
        });
      }
      const conflicts: Extract<SyncStep, { op: "conflict" }>[] = [...of("conflict")];
      const uploads = new InFlight(IN_FLIGHT);
      for (const step of of("upload")) {
        await uploads.start(() =>
          this.#guarded(step, async () => {
            const conflict = await this.#upload(step);
            if (conflict !== null) conflicts.push(conflict);
          })
        );
      }
      await uploads.settle();
      const downloads = new InFlight(IN_FLIGHT);
      for (const step of [...of("download"), ...late] as Extract<SyncStep, { op: "download" }>[]) {
        await downloads.start(() => this.#guarded(step, () => this.#download(step)));
      }
      await downloads.settle();
      for (const step of conflicts) await this.#guarded(step, () => this.#conflict(step));
    } finally {
      this.#progress.done();
    }
  }

  /** Runs one step; a failure that the run survives is reported, the rest (a lost connection) ends the run. */
  async #guarded(step: SyncStep, work: () => Promise<void>): Promise<void> {
    try {
      await work();
    } catch (error) {
      if (connectionLost(error) || this.#options.signal?.aborted) throw error;
      if (error instanceof LocalChange) {
        await this.#report.action({ action: "defer", name: this.#name(step.rel) });
      } else {
        await this.#report.action({ action: "fail", name: this.#name(step.rel), error: (error as Error).message });
      }
    }
  }

  #name(rel: string): string {
    return joinRemote(this.#options.prefix, rel);
  }

  #path(rel: string): string {
    return `${this.#options.dir}/${rel}`;
  }

  /** Throws {@linkcode LocalChange} unless the local file is as planned (`null`: absent). */
  #expect(rel: string, expect: LocalFacts | null): void {
    const now = this.#facts(rel);
    if (expect === null ? now !== null : now === null || !sameFacts(now, expect)) throw new LocalChange(rel);
  }

  #facts(rel: string): LocalFacts | null {
    try {
      const info = Deno.lstatSync(this.#path(rel));
      if (!info.isFile) throw new Error(`Cannot sync "${this.#path(rel)}": it is not a regular file`);
      return localFacts(info);
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return null;
      throw error;
    }
  }

  async #move(step: Extract<SyncStep, { op: "move-remote" | "move-local" | "copy-local" }>): Promise<void> {
    const { client } = this.#options;
    const was = this.#next.get(step.from)!;
    if (step.op === "move-remote") {
      this.#expect(step.rel, step.expect);
      try {
        await client.move(this.#name(step.from), this.#name(step.rel), { ifRoot: step.ifRoot });
      } catch (error) {
        if (!(error instanceof DfosError) || (error.code !== Status.CONFLICT && error.code !== Status.NOT_FOUND)) {
          throw error;
        }
        // The old name changed or went on the server meanwhile: the new one goes up as a new file, and the old one
        // stays in the base, for the next run to bring back (changed there) or drop (gone).
        return await this.#upload({ op: "upload", rel: step.rel, size: step.size, ifRoot: null, expect: step.expect })
          .then(() => {});
      }
      this.#next.delete(step.from);
      this.#next.set(step.rel, { root: step.ifRoot, local: step.expect, remote: was.remote });
      await this.#report.action({ action: "move-remote", name: this.#name(step.rel), from: this.#name(step.from) });
      return;
    }
    this.#expect(step.from, step.expect);
    this.#expect(step.rel, null);
    const to = this.#path(step.rel);
    Deno.mkdirSync(dirname(to), { recursive: true });
    const remote = this.#remote.get(step.rel)!;
    if (step.op === "move-local") {
      Deno.renameSync(this.#path(step.from), to);
      this.#next.delete(step.from);
      removeEmptyFolders(this.#options.dir, step.from);
    } else {
      // A copy of a file here with the server file's content: checked by its root before it takes the name.
      const { partialPath } = await import("../partial_path.ts");
      const { localChunks } = await import("../local_chunks.ts");
      const partial = partialPath(to);
      Deno.copyFileSync(this.#path(step.from), partial);
      if ((await localChunks(partial)).root !== step.root) {
        Deno.removeSync(partial);
        return await this.#download({ op: "download", rel: step.rel, size: step.size, expect: null });
      }
      Deno.utimeSync(partial, new Date(remote.mtime), new Date(remote.mtime));
      this.#expect(step.rel, null);
      Deno.renameSync(partial, to);
      this.#progress.fileDone(step.size);
    }
    const facts = this.#facts(step.rel)!;
    this.#next.set(step.rel, { root: step.root, local: facts, remote });
    await this.#report.action({ action: step.op, name: this.#name(step.rel), from: this.#name(step.from) });
  }

  /** Deletes; returns the download to do instead when the server's file changed meanwhile. */
  async #delete(
    step: Extract<SyncStep, { op: "delete-remote" | "delete-local" }>,
  ): Promise<Extract<SyncStep, { op: "download" }> | null> {
    if (step.op === "delete-local") {
      this.#expect(step.rel, step.expect);
      Deno.removeSync(this.#path(step.rel));
      removeEmptyFolders(this.#options.dir, step.rel);
    } else {
      try {
        await this.#options.client.remove(this.#name(step.rel), { ifRoot: step.ifRoot });
      } catch (error) {
        if (!(error instanceof DfosError)) throw error;
        if (error.code === Status.CONFLICT) return { op: "download", rel: step.rel, size: step.size, expect: null };
        if (error.code !== Status.NOT_FOUND) throw error;
      }
    }
    this.#next.delete(step.rel);
    await this.#report.action({ action: step.op, name: this.#name(step.rel), size: step.size });
    return null;
  }

  /** Uploads; returns the conflict to settle when the server's file is no longer the base's. */
  async #upload(step: Extract<SyncStep, { op: "upload" }>): Promise<Extract<SyncStep, { op: "conflict" }> | null> {
    const { client, signal } = this.#options;
    this.#expect(step.rel, step.expect);
    const { uploadFile } = await import("../chunk_upload.ts");
    let moved;
    try {
      moved = await uploadFile(
        client,
        { path: this.#path(step.rel), size: step.expect.size, mtime: step.expect.mtime },
        this.#name(step.rel),
        {
          ifRoot: step.ifRoot,
          replaces: step.ifRoot !== null,
          signal,
          onProgress: (bytes) => this.#progress.file(bytes),
        },
      );
    } catch (error) {
      this.#expect(step.rel, step.expect); // changed here meanwhile: deferred, whatever the server said
      if (error instanceof DfosError && error.code === Status.CONFLICT) {
        return { op: "conflict", rel: step.rel, size: step.size, expect: step.expect };
      }
      throw error;
    } finally {
      this.#progress.fileDone(step.size);
    }
    this.#next.set(step.rel, {
      root: moved.root!,
      local: step.expect,
      remote: { size: moved.content, mtime: step.expect.mtime },
    });
    await this.#report.action({ action: "upload", name: this.#name(step.rel), size: moved.content, sent: moved.sent });
    return null;
  }

  async #download(step: Extract<SyncStep, { op: "download" }>): Promise<void> {
    const { client, signal } = this.#options;
    const path = this.#path(step.rel);
    this.#expect(step.rel, step.expect);
    Deno.mkdirSync(dirname(path), { recursive: true });
    const { downloadFile, fetchedWhole } = await import("../chunk_download.ts");
    let moved;
    try {
      moved = await downloadFile(client, this.#name(step.rel), path, {
        size: step.size,
        pipelined: fetchedWhole(path, step.size),
        wantRoot: true,
        landing: () => this.#expect(step.rel, step.expect),
        signal,
        onProgress: (bytes) => this.#progress.file(bytes),
      });
    } catch (error) {
      if (error instanceof DfosError && error.code === Status.NOT_FOUND) {
        // Gone on the server meanwhile: nothing to fetch; the next run sees it gone.
        return;
      }
      throw error;
    } finally {
      this.#progress.fileDone(step.size);
    }
    this.#next.set(step.rel, {
      root: moved.root!,
      local: this.#facts(step.rel)!,
      remote: { size: moved.content, mtime: moved.mtime },
    });
    await this.#report.action({
      action: "download",
      name: this.#name(step.rel),
      size: moved.content,
      received: moved.sent,
    });
  }

  /**
   * Keeps both versions: this side's goes to its conflict copy (renamed here, then uploaded as a new file), and the
   * server's takes the name here.
   */
  async #conflict(step: Extract<SyncStep, { op: "conflict" }>): Promise<void> {
    this.#expect(step.rel, step.expect);
    // Found late (an upload refused): the server's file may be gone (an edit beats a delete), or hold this content.
    let theirs: string | null;
    try {
      theirs = (await this.#options.client.groups(this.#name(step.rel))).root;
    } catch (error) {
      if (!(error instanceof DfosError) || error.code !== Status.NOT_FOUND) throw error;
      theirs = null;
    }
    if (theirs === null) {
      const again = await this.#upload({
        op: "upload",
        rel: step.rel,
        size: step.size,
        ifRoot: null,
        expect: step.expect,
      });
      if (again !== null) throw new Error("Cannot upload: the server's file keeps changing; synced next run");
      return;
    }
    const { localChunks } = await import("../local_chunks.ts");
    if ((await localChunks(this.#path(step.rel))).root === theirs) {
      this.#expect(step.rel, step.expect);
      const remote = await this.#options.client.stat(this.#name(step.rel));
      this.#next.set(step.rel, {
        root: theirs,
        local: step.expect,
        remote: { size: remote.size, mtime: remote.mtime },
      });
      return;
    }
    let copy = conflictName(step.rel, this.#when, this.#options.host);
    for (let n = 2; this.#facts(copy) !== null || this.#remote.has(copy); n++) {
      copy = conflictName(step.rel, this.#when, `${this.#options.host}-${n}`);
    }
    Deno.renameSync(this.#path(step.rel), this.#path(copy));
    const facts = this.#facts(copy)!;
    await this.#report.action({ action: "conflict", name: this.#name(step.rel), copy: this.#name(copy) });
    const lost = await this.#upload({ op: "upload", rel: copy, size: facts.size, ifRoot: null, expect: facts });
    if (lost !== null) throw new Error(`Cannot upload the conflict copy "${copy}": the server has a file of that name`);
    await this.#download({ op: "download", rel: step.rel, size: this.#remote.get(step.rel)?.size ?? 0, expect: null });
  }
}

/** A local file changed after the run planned on it: left for the next run. */
class LocalChange extends Error {
  constructor(rel: string) {
    super(`"${rel}" changed here during the run`);
    this.name = "LocalChange";
  }
}

/** Removes the folders a removed or moved file left empty, up to DIR (never DIR itself). */
function removeEmptyFolders(dir: string, rel: string): void {
  for (let slash = rel.lastIndexOf("/"); slash > 0; slash = rel.lastIndexOf("/", slash - 1)) {
    try {
      Deno.removeSync(`${dir}/${rel.slice(0, slash)}`);
    } catch {
      return; // not empty (or not there): the folders above are not either
    }
  }
}
