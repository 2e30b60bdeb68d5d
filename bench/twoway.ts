/**
 * The `twoway` section (issue 14): `dfos sync` next to Unison, in the same
 * run, on the same tree, in the same shape: two folders A and B (two
 * laptops) that each sync with one server. dfos: `dfos sync DIR tree`
 * against `dfos serve`. Unison: `unison DIR socket://…//HUB` against one
 * `unison -socket` server, whose folder HUB plays the dfos server's part
 * (Unison's "star" set-up for more than one machine). Those two are judged.
 *
 * Each case is the runs that bring both folders level, one client process
 * each, one after the other, their bytes and wall times added up:
 *
 * - the first sync of a 10,000-file tree (sync_tree.ts) from A to an empty B:
 *   A, then B;
 * - nothing changed: A, then B;
 * - 1% of the files changed in A: A, then B;
 * - 1% changed in A and 1% (other files) in B: A, B, then A again.
 *
 * Beside them, not judged: Unison straight from A to B (B a folder of the
 * socket server), one run per case. It moves each change once, where a
 * server in between moves it twice (up, then down): a different set-up,
 * whose bytes no sync through a server can match.
 *
 * Bytes on the wire are counted the same way for all: every client talks
 * to its server through a counting TCP relay in this process (relay.ts).
 * After each case every tool's A and B must hold the same files, as many as
 * the tree has, with each change made kept.
 *
 * Last, the delay of a change with `dfos sync --watch`: a client watching A
 * and one watching B, a new 64 KiB file written in one (A and B in turn),
 * timed until it is whole in the other (polled every 10 ms). Unison's
 * `-repeat watch` needs `unison-fsmonitor`, which Debian's package lacks;
 * its figure is `-repeat 1` (a whole scan every second), shown without a
 * target.
 *
 * The dfos rows need `dfos sync` (and `--watch`); while a build lacks it,
 * its rows say "pending" and miss their targets.
 *
 * @module
 */

import { join } from "node:path";
import { type CliCall, cliHelp, DfosServer } from "./dfos_server.ts";
import { describe, pairRows } from "./pair_rows.ts";
import type { Server } from "./processes.ts";
import { CountingRelay } from "./relay.ts";
import { dfosCall, type Outcome, type Run, runRelayed } from "./relayed_run.ts";
import { mb, type Row } from "./report.ts";
import { messageOf, type SectionContext, type SectionResult } from "./section.ts";
import type { TreeSettings } from "./settings.ts";
import { formatSummary, round, summarize } from "./stats.ts";
import { changeSome, makeSettingsTree, randomBytes, type Tree, treesDiffer } from "./sync_tree.ts";
import { judge, TARGETS } from "./targets.ts";
import { UNISON_CLIENT_OPTIONS, UnisonServer } from "./unison.ts";
import { delay, sha256File } from "../tests/_common.ts";

const SECTION = "twoway";
/** The remote name of the tree: dfos's prefix, the Unison server's folder. */
const REMOTE = "tree";
/** Chooses the tree's sizes. */
const TREE_SEED = 14;
/** The Unison server's folder that is B for the direct runs. */
const DIRECT_REMOTE = "direct-b";
/** How long one client process may run. */
const CLIENT_TIMEOUT_MS = 10 * 60_000;
/** How long two watching clients get to carry the first change over (they start with a run of their own). */
const WATCH_READY_MS = 180_000;
/** How long one change may take to arrive before its try fails. */
const WATCH_ARRIVAL_MS = 30_000;
/** How often the other folder is looked at. */
const WATCH_POLL_MS = 10;
/** The quiet time after each change has arrived. */
const WATCH_SETTLE_MS = 1_000;
/** The size of each file written while the clients watch. */
const WATCH_FILE_BYTES = 64 * 1024;

/** One of the two folders (laptops). */
export type Side = "A" | "B";

/** One client process of a case: which side ran, and what it did. */
export interface SideRun {
  /** The side. */
  side: Side;
  /** What it did. */
  outcome: Outcome;
}

/** The tools: dfos, Unison in the same star, and Unison straight from A to B (shown beside, not judged). */
type ToolName = "dfos" | "unison" | "unison-direct";

/** One tool in this section: its folders, relay and client command lines. */
interface Tool {
  /** Its name in the table. */
  name: ToolName;
  /** The two folders. */
  dirs: Record<Side, string>;
  /** The relay every one-shot client of it talks through. */
  relay: CountingRelay;
  /** The relays its watching clients talk through (none: it is not watched). */
  watchRelays: CountingRelay[];
  /** True when one run from A syncs both folders (no server in between). */
  direct?: boolean;
  /** Why its one-shot runs cannot run in this build, if so. */
  pending?: string;
  /** Why its watching clients cannot run in this build, if so. */
  watchPending?: string;
  /** One side's one-shot run. */
  once(side: Side): CliCall;
  /** One side's watching client (it runs until stopped), for a tool that is watched. */
  watch?(side: Side): CliCall;
}

/** The tools, started, and what the JSON says of their servers. */
interface Tools {
  /** By name. */
  tools: Record<ToolName, Tool>;
  /** The servers' command lines and Unison's version. */
  facts: Record<string, unknown>;
}

/** A change made in one side's folder, to be found there after the case. */
interface Change {
  /** The path relative to the folder. */
  path: string;
  /** The side it was made in. */
  side: Side;
  /** The SHA-256 of its content just after the change. */
  digest: string;
}

/** What the watching clients did: a delay per change, or why there are none. */
type WatchOutcome =
  | { delays: { from: Side; seconds: number }[]; up: number; down: number }
  | { failed: string }
  | { pending: string };

/**
 * Runs the section.
 *
 * @param context Its folder, processes and settings.
 * @returns Its rows and figures.
 */
export async function twowaySection(context: SectionContext): Promise<SectionResult> {
  const { dir, say } = context;
  const settings = context.settings.twoway;
  await Deno.mkdir(join(dir, "logs"), { recursive: true });
  say(`twoway: making a tree of ${settings.files} files`);
  const { tree, label: treeLabel, facts } = await makeSettingsTree(join(dir, "dfos-a"), settings, TREE_SEED);
  say(`twoway: ${treeLabel}; another for Unison`);
  const { tools, facts: servers } = await startTools(context, tree, settings);

  const rows: Row[] = [];
  const cases: Record<string, unknown>[] = [];
  let failures = 0;
  const changes: Record<ToolName, Map<string, Change>> = {
    dfos: new Map(),
    unison: new Map(),
    "unison-direct": new Map(),
  };
  /** Makes the same changes (files, places, sizes) in every tool's folder of one side. */
  const change = async (side: Side, seed: number, avoid: ReadonlySet<string>) => {
    const files = tree.files.filter((path) => !avoid.has(path));
    // the percent of the whole tree, chosen among the files not avoided
    const percent = settings.changedPercent * tree.files.length / files.length;
    const changed = new Set<string>();
    for (const tool of Object.values(tools)) {
      if (tool.pending !== undefined) continue;
      const root = tool.dirs[side];
      for (const path of await changeSome({ root, files, bytes: 0 }, percent, seed)) {
        changes[tool.name].set(path, { path, side, digest: await sha256File(join(root, path)) });
        changed.add(path);
      }
    }
    return changed;
  };
  const runCase = async (what: string, sides: Side[]) => {
    say(`twoway: ${what}`);
    const outcomes = {} as Record<ToolName, Outcome>;
    const record: Record<string, unknown> = { what, sides };
    for (const tool of [tools.unison, tools["unison-direct"], tools.dfos]) {
      const runs = await runSides(context, tool, tool.direct ? ["A"] : sides);
      let outcome = combineRuns(runs, tool.pending);
      if ("run" in outcome) {
        const difference = await levelDiffers(tool, tree, changes[tool.name]);
        if (difference !== null) outcome = { failed: `A and B are not level after the runs: ${difference}` };
      }
      outcomes[tool.name] = outcome;
      record[tool.name] = { outcome, runs };
      if ("failed" in outcome) failures++;
    }
    const [bytesRow, wallRow] = pairRows(SECTION, what, { name: "unison", outcome: outcomes.unison }, outcomes.dfos, {
      bytes: { target: TARGETS.twowayBytes, on: "ratio" },
      wall: TARGETS.twowayWall,
    });
    const direct = outcomes["unison-direct"];
    const beside = (figure: (run: Run) => string) =>
      "run" in direct ? `unison A-B direct: ${figure(direct.run)}` : describe("unison A-B direct", direct);
    bytesRow.note = [bytesRow.note, beside((run) => mb(run.up + run.down))].filter((text) => text).join("; ");
    wallRow.note = [wallRow.note, beside((run) => `${run.seconds.toFixed(2)} s`)].filter((text) => text).join("; ");
    rows.push(bytesRow, wallRow);
    cases.push(record);
  };

  await runCase(`${treeLabel}: first sync, A to an empty B`, ["A", "B"]);
  await runCase("tree: sync, nothing changed", ["A", "B"]);
  await change("A", 1401, new Set());
  await runCase(`tree: ${settings.changedPercent}% of the files changed in A`, ["A", "B"]);
  const changedInA = await change("A", 1402, new Set());
  await change("B", 1403, changedInA);
  await runCase(`tree: ${settings.changedPercent}% changed in A and ${settings.changedPercent}% in B`, [
    "A",
    "B",
    "A",
  ]);

  // the delay of a change with --watch
  const watches: Partial<Record<ToolName, WatchOutcome>> = {};
  for (const tool of [tools.dfos, tools.unison]) {
    say(`twoway: ${tool.name} watching A and B: ${settings.watchTries} changes`);
    watches[tool.name] = tool.watchPending !== undefined
      ? { pending: tool.watchPending }
      : await watchDelays(context, tool, settings.watchTries);
  }
  rows.push(watchRow(watches.dfos ?? { failed: "not run" }, watches.unison ?? { failed: "not run" }));
  if ("failed" in (watches.dfos ?? {})) failures++;

  return {
    rows,
    failures,
    data: {
      method: "two folders A and B each sync with one server: dfos sync against dfos serve, unison against one " +
        "unison -socket server's folder (the same star); a case is the client runs that bring A and B level, one " +
        "after the other, their bytes and wall times added; bytes are TCP payload both ways through a counting " +
        "relay in the benchmark process, in front of each server. Beside them, not judged: unison from A straight " +
        "to B (B the socket server's folder), one run per case",
      tree: facts,
      ...servers,
      cases,
      watch: { fileBytes: WATCH_FILE_BYTES, pollMs: WATCH_POLL_MS, ...watches },
    },
  };
}

/**
 * Starts the servers (dfos; two Unison socket servers on one folder) and
 * their relays, and lays out each tool's folders: B empty, A the tree (for
 * Unison's star a copy, for the direct runs a tree of the same names and
 * sizes), a state folder per side.
 */
async function startTools(context: SectionContext, tree: Tree, settings: TreeSettings): Promise<Tools> {
  const { dir, processes, say } = context;
  await Deno.mkdir(join(dir, "unison"));
  const unison = await UnisonServer.start({ dir: join(dir, "unison"), processes });
  say(`twoway: ${unison.version}`);
  // B's watching Unison client gets a server of its own: a socket server serves one connection at a time
  const unisonForB = await UnisonServer.start({ dir: join(dir, "unison"), processes });
  await Deno.mkdir(join(dir, "dfos"));
  const dfos = await DfosServer.start({ dir: join(dir, "dfos"), processes });
  const relays = [unison.port, unisonForB.port, dfos.port].map((port) => CountingRelay.start(port));
  for (const relay of relays) context.defer(() => relay.close());
  const [unisonRelay, unisonRelayB, dfosRelay] = relays;

  await copyTree(tree.root, join(dir, "unison-a"));
  // the same names and sizes, other bytes: Unison copies a file it finds on the server (-xferbycopying) instead
  // of sending it, and the star's folder there holds the tree
  await makeSettingsTree(join(dir, "direct-a"), settings, TREE_SEED);
  const folders = ["dfos-b", "dfos-state-a", "dfos-state-b", "unison-b", "unison-home-a", "unison-home-b"];
  for (const folder of [...folders, "direct-home"]) await Deno.mkdir(join(dir, folder));
  await Deno.mkdir(unison.path(REMOTE));
  await Deno.mkdir(unison.path(DIRECT_REMOTE));

  const pending = await dfosPending();
  if (pending.sync !== undefined) say(`twoway: dfos sync pending: ${pending.sync}`);
  else if (pending.watch !== undefined) say(`twoway: dfos sync --watch pending: ${pending.watch}`);
  const dfosSide = (side: Side, extra: string[]): CliCall => {
    const call = dfosCall(dfos, dfosRelay, ["sync", join(dir, `dfos-${side.toLowerCase()}`), REMOTE, ...extra]);
    return { ...call, env: { ...call.env, XDG_STATE_HOME: join(dir, `dfos-state-${side.toLowerCase()}`) } };
  };
  const unisonSide = (side: Side, extra: string[], port = unisonRelay.port): CliCall =>
    unison.client({
      local: join(dir, `unison-${side.toLowerCase()}`),
      remote: REMOTE,
      port,
      home: join(dir, `unison-home-${side.toLowerCase()}`),
      extraArgs: extra,
    });
  const direct = unison.client({
    local: join(dir, "direct-a"),
    remote: DIRECT_REMOTE,
    port: unisonRelay.port,
    home: join(dir, "direct-home"),
  });
  const tools: Record<ToolName, Tool> = {
    dfos: {
      name: "dfos",
      dirs: { A: tree.root, B: join(dir, "dfos-b") },
      relay: dfosRelay,
      watchRelays: [dfosRelay],
      pending: pending.sync,
      watchPending: pending.sync ?? pending.watch,
      once: (side) => dfosSide(side, []),
      watch: (side) => dfosSide(side, ["--watch"]),
    },
    unison: {
      name: "unison",
      dirs: { A: join(dir, "unison-a"), B: join(dir, "unison-b") },
      relay: unisonRelay,
      watchRelays: [unisonRelay, unisonRelayB],
      once: (side) => unisonSide(side, []),
      watch: (side) => unisonSide(side, ["-repeat", "1"], side === "A" ? unisonRelay.port : unisonRelayB.port),
    },
    "unison-direct": {
      name: "unison-direct",
      dirs: { A: join(dir, "direct-a"), B: unison.path(DIRECT_REMOTE) },
      relay: unisonRelay,
      watchRelays: [],
      direct: true,
      once: () => direct,
    },
  };
  return {
    tools,
    facts: {
      unison: {
        version: unison.version,
        servers: [unison.argv, unisonForB.argv],
        clientOptions: UNISON_CLIENT_OPTIONS,
        watch: "-repeat 1 (-repeat watch needs unison-fsmonitor, which Debian's package lacks); B's client " +
          "through a second socket server on the same folder (a socket server serves one connection at a time)",
      },
      dfosServer: dfos.argv,
    },
  };
}

/** Runs one side after another, each one client process; stops at the first that fails. */
async function runSides(context: SectionContext, tool: Tool, sides: Side[]): Promise<SideRun[]> {
  const runs: SideRun[] = [];
  if (tool.pending !== undefined) return runs;
  for (const side of sides) {
    const outcome = await runRelayed(context, tool.once(side), tool.relay, CLIENT_TIMEOUT_MS);
    runs.push({ side, outcome });
    if (!("run" in outcome)) break;
  }
  return runs;
}

/**
 * One outcome for the runs of a case: their bytes and wall times added up,
 * or the first failure, named by its side.
 *
 * @param runs The runs, in order.
 * @param pending Why the tool cannot run in this build, if so.
 * @returns The case's outcome.
 */
export function combineRuns(runs: readonly SideRun[], pending?: string): Outcome {
  if (pending !== undefined) return { pending };
  if (runs.length === 0) return { failed: "no run" };
  const total = { up: 0, down: 0, seconds: 0 };
  for (const [index, { side, outcome }] of runs.entries()) {
    if ("pending" in outcome) return outcome;
    if ("failed" in outcome) return { failed: `run ${index + 1} (${side}): ${outcome.failed}` };
    total.up += outcome.run.up;
    total.down += outcome.run.down;
    total.seconds += outcome.run.seconds;
  }
  return { run: total, note: runs.map(({ side, outcome }) => `${side} ${seconds(outcome)}`).join(" + ") };
}

function seconds(outcome: Outcome): string {
  return "run" in outcome ? `${outcome.run.seconds.toFixed(2)} s` : "-";
}

/** What keeps a tool's A and B from being level: a difference, a wrong count of files, a change lost; or null. */
async function levelDiffers(tool: Tool, tree: Tree, changes: Map<string, Change>) {
  const difference = await treesDiffer(tool.dirs.A, tool.dirs.B);
  if (difference !== null) return difference;
  const count = await countFiles(tool.dirs.A);
  if (count !== tree.files.length) return `${count} files, not ${tree.files.length}`;
  for (const { path, side, digest } of changes.values()) {
    if (await sha256File(join(tool.dirs[side], path)) !== digest) return `the change to ${path} in ${side} was lost`;
  }
  return null;
}

/** Files below a folder, without dfos's `.dfos*` metadata. */
async function countFiles(root: string): Promise<number> {
  let count = 0;
  for await (const entry of Deno.readDir(root)) {
    if (entry.name.startsWith(".dfos")) continue;
    if (entry.isDirectory) count += await countFiles(join(root, entry.name));
    else count++;
  }
  return count;
}

/**
 * Two watching clients, one on A and one on B: after a first change has
 * gone over (untimed, so both are running), new files written in A and B in
 * turn, each timed until it is whole on the other side.
 */
async function watchDelays(context: SectionContext, tool: Tool, tries: number): Promise<WatchOutcome> {
  const watchers: Server[] = [];
  try {
    for (const side of ["A", "B"] as const) {
      const call = tool.watch?.(side);
      if (call === undefined) throw new Error(`Cannot watch with ${tool.name}`);
      watchers.push(context.processes.startServer(`${tool.name} watching ${side}`, call.argv, {
        env: call.env,
        cwd: call.cwd,
        log: join(context.dir, "logs", `${tool.name}-watch-${side.toLowerCase()}.log`),
      }));
    }
    const exited = () => watchers.find((watcher) => watcher.exited)?.name;
    await carryOver(tool, "A", "folder-00/watch-ready.bin", WATCH_READY_MS, exited);
    await delay(WATCH_SETTLE_MS);
    for (const relay of tool.watchRelays) relay.reset();
    const delays: { from: Side; seconds: number }[] = [];
    for (let i = 0; i < tries; i++) {
      context.signal.throwIfAborted();
      const from: Side = i % 2 === 0 ? "A" : "B";
      delays.push({ from, seconds: await carryOver(tool, from, `folder-00/watch-${i}.bin`, WATCH_ARRIVAL_MS, exited) });
      await delay(WATCH_SETTLE_MS);
    }
    const sum = (count: (relay: CountingRelay) => number) =>
      tool.watchRelays.reduce((total, relay) => total + count(relay), 0);
    return { delays, up: sum((relay) => relay.up), down: sum((relay) => relay.down) };
  } catch (error) {
    context.signal.throwIfAborted();
    return { failed: messageOf(error) };
  } finally {
    for (const watcher of watchers) await watcher.stop();
  }
}

/**
 * Writes a new file of random bytes in one side and waits until it is whole
 * in the other.
 *
 * @returns The seconds from just before the write to the first look that found it whole.
 */
async function carryOver(
  tool: Tool,
  from: Side,
  path: string,
  timeoutMs: number,
  exited: () => string | undefined,
): Promise<number> {
  const to: Side = from === "A" ? "B" : "A";
  const bytes = randomBytes(WATCH_FILE_BYTES);
  const target = join(tool.dirs[to], path);
  const started = performance.now();
  await Deno.writeFile(join(tool.dirs[from], path), bytes);
  while (performance.now() - started < timeoutMs) {
    if (await holds(target, bytes)) return (performance.now() - started) / 1000;
    const gone = exited();
    if (gone !== undefined) throw new Error(`${gone} exited`);
    await delay(WATCH_POLL_MS);
  }
  throw new Error(`${path} written in ${from} was not whole in ${to} after ${timeoutMs / 1000} s`);
}

/** Whether a file exists with exactly these bytes. */
async function holds(path: string, bytes: Uint8Array): Promise<boolean> {
  try {
    if ((await Deno.stat(path)).size !== bytes.length) return false;
    const content = await Deno.readFile(path);
    return content.length === bytes.length && content.every((byte, i) => byte === bytes[i]);
  } catch {
    return false;
  }
}

/** The watch row: dfos's median delay against its target, Unison's `-repeat 1` beside it. */
function watchRow(dfos: WatchOutcome, unison: WatchOutcome): Row {
  const text = (outcome: WatchOutcome) => {
    if ("pending" in outcome) return "pending";
    if ("failed" in outcome) return "failed";
    const summary = summarize(outcome.delays.map((each) => each.seconds));
    return summary === null ? "none" : formatSummary(summary, (value) => `${value.toFixed(2)} s`);
  };
  const median = "delays" in dfos ? summarize(dfos.delays.map((each) => each.seconds))?.median ?? null : null;
  const notes = [watchNote("dfos", dfos), watchNote("unison -repeat 1", unison)].filter((note) => note !== "");
  return {
    section: SECTION,
    what: `--watch: a new ${WATCH_FILE_BYTES / 1024} KiB file, write to whole on the other side (median)`,
    figure: `dfos ${text(dfos)}, unison -repeat 1 ${text(unison)}`,
    judgement: judge(TARGETS.twowayWatch, median === null ? null : round(median, 3)),
    note: notes.join("; "),
  };
}

function watchNote(tool: string, outcome: WatchOutcome): string {
  if (!("delays" in outcome)) return describe(tool, outcome);
  const count = outcome.delays.length;
  return `${tool}: ${count} changes, A and B in turn, ${mb((outcome.up + outcome.down) / Math.max(1, count))} ` +
    "on the wire each";
}

/** Why this build cannot run `dfos sync`, or its `--watch`. */
async function dfosPending(): Promise<{ sync?: string; watch?: string }> {
  const help = await cliHelp("sync");
  if (help === null) return { sync: `this build has no "dfos sync"` };
  if (!help.includes("--watch")) return { watch: `this build has no "dfos sync --watch"` };
  return {};
}

/** Copies a tree with its modification times (`cp -a`). */
async function copyTree(from: string, to: string): Promise<void> {
  const { code, stderr } = await new Deno.Command("cp", { args: ["-a", from, to], stdin: "null", stdout: "null" })
    .output();
  if (code !== 0) {
    throw new Error(`Cannot copy the tree: cp exited with status ${code}: ${new TextDecoder().decode(stderr).trim()}`);
  }
}
