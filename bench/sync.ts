/**
 * The `sync` section (issue 12): dfos push, pull and resume next to the
 * rsync daemon (`rsync -a --delete` over `rsync://` on loopback), in the
 * same run, bytes on the wire and wall time of one whole client process:
 *
 * - a tree of 10,000 files (1 KiB to 1 MiB, log-uniform, in 20 folders;
 *   sync_tree.ts): the first push, a push with nothing changed, a push after
 *   1% of the files changed, and the same three as pulls into a new folder
 *   (the pull's changes are made in the source and pushed, untimed, by both);
 * - one 1 GiB file, pushed untimed, then 1 MiB appended, 4 KiB overwritten
 *   in the middle, 100 bytes inserted near the start, each pushed by both;
 * - a 1 GiB upload (`dfos put --resume`, `rsync --partial`) killed when the
 *   relay has forwarded 60% of the file's size (the relay forwards exactly
 *   that much, then holds the rest), then run again: the bytes the second
 *   try sends.
 *
 * Bytes on the wire are counted the same way for both tools: each talks to
 * its server through a counting TCP relay in this process (relay.ts), which
 * sees the TCP payload both ways. Every result is checked: the server's copy
 * (rsync; dfos where its storage keeps plain files) or the pulled folder
 * against the source.
 *
 * The dfos rows need `dfos push`, `dfos pull` and `dfos put --resume`; while
 * a build lacks one, its rows say "pending" and miss their targets.
 *
 * @module
 */

import { join } from "node:path";
import { type CliCall, cliHelp, DfosServer } from "./dfos_server.ts";
import { describe, outcomeWord, pairRows, type PairTargets } from "./pair_rows.ts";
import { RsyncPeer } from "./peers.ts";
import { CountingRelay } from "./relay.ts";
import { checkOutcome, dfosCall, type Outcome, runRelayed } from "./relayed_run.ts";
import { mb, type Row } from "./report.ts";
import { messageOf, type SectionContext, type SectionResult } from "./section.ts";
import { changeSome, insert, makeSettingsTree, overwrite, randomBytes, treesDiffer } from "./sync_tree.ts";
import { judge, TARGETS } from "./targets.ts";
import { PROJECT_DIR } from "../tests/_common.ts";

const MIB = 1 << 20;
const SECTION = "sync";
/** How long one client process may run. */
const CLIENT_TIMEOUT_MS = 20 * 60_000;
/** The share of the file the interrupted upload sends before it is killed. */
const KILL_AT = 0.6;

/** The kinds of case, by the targets they have. */
type Kind = "first-push" | "first-pull" | "unchanged" | "delta";

/** The tools' commands in this run. */
interface Tools {
  rsync: RsyncPeer;
  rsyncRelay: CountingRelay;
  dfos: DfosServer;
  dfosRelay: CountingRelay;
  /** Why the dfos rows cannot run yet, by command (`push`, `pull`, `put --resume`), or absent. */
  pending: Partial<Record<"push" | "pull" | "resume", string>>;
}

/**
 * Runs the section.
 *
 * @param context Its folder, processes and settings.
 * @returns Its rows and figures.
 */
export async function syncSection(context: SectionContext): Promise<SectionResult> {
  const { dir, processes, say } = context;
  const settings = context.settings.sync;
  await requireRsync();
  await Deno.mkdir(join(dir, "logs"), { recursive: true });
  const rsync = new RsyncPeer({ dir: join(dir, "rsync"), processes, timeoutMs: CLIENT_TIMEOUT_MS }, []);
  await Deno.mkdir(join(dir, "rsync", "logs"), { recursive: true });
  await rsync.start();
  await Deno.mkdir(join(dir, "dfos"));
  const dfos = await DfosServer.start({ dir: join(dir, "dfos"), processes });
  const rsyncRelay = CountingRelay.start(rsync.port);
  context.defer(() => rsyncRelay.close());
  const dfosRelay = CountingRelay.start(dfos.port);
  context.defer(() => dfosRelay.close());
  const tools: Tools = { rsync, rsyncRelay, dfos, dfosRelay, pending: await dfosPending() };
  for (const [command, why] of Object.entries(tools.pending)) say(`sync: dfos ${command} pending: ${why}`);

  const rows: Row[] = [];
  const cases: Record<string, unknown>[] = [];
  let failures = 0;
  const record = (what: string, kind: Kind, rsyncOutcome: Outcome, dfosOutcome: Outcome) => {
    rows.push(...caseRows(what, kind, rsyncOutcome, dfosOutcome));
    cases.push({ what, kind, rsync: rsyncOutcome, dfos: dfosOutcome });
    for (const outcome of [rsyncOutcome, dfosOutcome]) if ("failed" in outcome) failures++;
  };
  const runner = new Runner(context, tools);

  // the tree
  say(`sync: making a tree of ${settings.files} files`);
  const { tree, label: treeLabel, facts } = await makeSettingsTree(join(dir, "src"), settings, 12);
  say(`sync: ${treeLabel}`);
  const pushBoth = async (what: string, kind: Kind) => {
    say(`sync: ${what}`);
    const r = await runner.rsync(["-a", "--delete", `${tree.root}/`], "tree/", "push");
    const d = await runner.dfos("push", ["push", "--delete", tree.root, "tree"]);
    await runner.check(r, () => treesDiffer(tree.root, rsync.serverPath("tree")));
    await runner.check(d, () => dfosCopyDiffers(dfos, tree.root, "tree"));
    record(what, kind, r, d);
  };
  await pushBoth(`${treeLabel}: first push`, "first-push");
  await pushBoth("tree: push, nothing changed", "unchanged");
  await changeSome(tree, settings.changedPercent, 1201);
  await pushBoth(`tree: push after ${settings.changedPercent}% of the files changed`, "delta");

  const rsyncPulled = join(dir, "pull-rsync");
  const dfosPulled = join(dir, "pull-dfos");
  const pullBoth = async (what: string, kind: Kind) => {
    say(`sync: ${what}`);
    const r = await runner.rsync(["-a", "--delete"], "tree/", "pull", `${rsyncPulled}/`);
    const d = await runner.dfos("pull", ["pull", "--delete", "tree", dfosPulled]);
    await runner.check(r, () => treesDiffer(tree.root, rsyncPulled));
    await runner.check(d, () => treesDiffer(tree.root, dfosPulled));
    record(what, kind, r, d);
  };
  await pullBoth("tree: first pull into an empty folder", "first-pull");
  await pullBoth("tree: pull, nothing changed", "unchanged");
  await changeSome(tree, settings.changedPercent, 1202);
  say("sync: pushing the next change (untimed)");
  await runner.rsync(["-a", "--delete", `${tree.root}/`], "tree/", "push");
  await runner.dfos("push", ["push", "--delete", tree.root, "tree"]);
  await pullBoth(`tree: pull after ${settings.changedPercent}% of the files changed`, "delta");
  for (const path of [rsyncPulled, dfosPulled, tree.root]) await Deno.remove(path, { recursive: true }).catch(() => {});

  // the large file
  const bigDir = join(dir, "big");
  await Deno.mkdir(bigDir);
  const big = join(bigDir, "big.bin");
  const bigSize = settings.bigMiB * MIB;
  say(`sync: writing a ${settings.bigMiB} MiB file`);
  await writeRandomFile(big, bigSize);
  say("sync: pushing it (untimed)");
  await runner.rsync(["-a", "--delete", `${bigDir}/`], "big/", "push");
  await runner.dfos("push", ["push", "--delete", bigDir, "big"]);
  const bigLabel = `${settings.bigMiB} MiB file`;
  const edits: [string, () => Promise<void>][] = [
    ["append 1 MiB", () => overwrite(big, bigSize, randomBytes(MIB))],
    ["overwrite 4 KiB in the middle", () => overwrite(big, Math.floor(bigSize / 2) + 1234, randomBytes(4096))],
    ["insert 100 B near the start", () => insert(big, 5000, randomBytes(100))],
  ];
  for (const [name, edit] of edits) {
    await edit();
    const what = `${bigLabel}: ${name}`;
    say(`sync: ${what}`);
    const r = await runner.rsync(["-a", "--delete", `${bigDir}/`], "big/", "push");
    const d = await runner.dfos("push", ["push", "--delete", bigDir, "big"]);
    await runner.check(r, () => treesDiffer(bigDir, rsync.serverPath("big")));
    await runner.check(d, () => dfosCopyDiffers(dfos, bigDir, "big"));
    record(what, "delta", r, d);
  }
  await Deno.remove(bigDir, { recursive: true });

  // the interrupted upload
  const resumed = join(dir, "resume.bin");
  await writeRandomFile(resumed, bigSize);
  const missing = bigSize * (1 - KILL_AT);
  say(`sync: ${bigLabel} upload killed at ${KILL_AT * 100}%, then resumed`);
  const rsyncResume = await runner.interrupted(
    "rsync",
    () => rsyncCall(rsync, ["--partial", resumed, rsync.url("resume.bin", rsyncRelay.port)]),
    rsyncRelay,
    bigSize * KILL_AT,
  );
  await runner.check(rsyncResume, () => filesDiffer(resumed, rsync.serverPath("resume.bin")));
  const dfosResume = tools.pending.resume !== undefined ? { pending: tools.pending.resume } : await runner.interrupted(
    "dfos",
    () => dfosCall(dfos, dfosRelay, ["put", "--resume", resumed, "resume.bin"]),
    dfosRelay,
    bigSize * KILL_AT,
  );
  await runner.check(dfosResume, async () => {
    const copy = dfos.path("resume.bin");
    return await exists(copy) ? await filesDiffer(resumed, copy) : null;
  });
  rows.push(
    resumeRow(
      `${bigLabel} upload killed at 60%, resumed: bytes the second try sends`,
      missing,
      rsyncResume,
      dfosResume,
    ),
  );
  cases.push({ what: "resume", missing, rsync: rsyncResume, dfos: dfosResume });
  for (const outcome of [rsyncResume, dfosResume]) if ("failed" in outcome) failures++;

  return {
    rows,
    failures,
    data: {
      method: "one client process per figure; bytes are TCP payload both ways through a counting relay in the " +
        "benchmark process, in front of the rsync daemon and the dfos server alike",
      tree: facts,
      bigBytes: bigSize,
      rsyncServer: rsync.servers,
      dfosServer: dfos.argv,
      cases,
    },
  };
}

/** Runs the two tools' clients through their relays. */
class Runner {
  readonly #context: SectionContext;
  readonly #tools: Tools;

  constructor(context: SectionContext, tools: Tools) {
    this.#context = context;
    this.#tools = tools;
  }

  /**
   * One rsync client process: `rsync ARGS... URL` (push) or `rsync ARGS... URL LOCAL` (pull).
   *
   * @param args The options and, for a push, the source.
   * @param name The path in the daemon's module.
   * @param direction Which way.
   * @param local For a pull, the destination.
   */
  rsync(args: string[], name: string, direction: "push" | "pull", local?: string): Promise<Outcome> {
    const { rsync, rsyncRelay } = this.#tools;
    const url = rsync.url(name, rsyncRelay.port);
    const call = rsyncCall(rsync, direction === "push" ? [...args, url] : [...args, url, local ?? ""]);
    return this.#timed(call, rsyncRelay);
  }

  /**
   * One dfos client process, unless the command is pending.
   *
   * @param command Which command it needs.
   * @param args Its arguments.
   */
  dfos(command: "push" | "pull", args: string[]): Promise<Outcome> {
    const pending = this.#tools.pending[command];
    if (pending !== undefined) return Promise.resolve({ pending });
    return this.#timed(dfosCall(this.#tools.dfos, this.#tools.dfosRelay, args), this.#tools.dfosRelay);
  }

  /**
   * Checks a run's result; a mismatch turns it into a failure.
   *
   * @param outcome The run (changed in place).
   * @param differs What differs, or null.
   */
  check(outcome: Outcome, differs: () => Promise<string | null>): Promise<void> {
    return checkOutcome(outcome, differs);
  }

  /**
   * An upload killed once the relay has forwarded `killAt` bytes towards the
   * server, then run again to its end: the second try's figures.
   *
   * @param tool Which, for messages.
   * @param call Its command line (the same both times).
   * @param relay Its relay.
   * @param killAt Bytes sent before the kill.
   */
  async interrupted(tool: string, call: () => CliCall, relay: CountingRelay, killAt: number): Promise<Outcome> {
    try {
      const first = call();
      relay.reset();
      const child = new Deno.Command(first.argv[0], {
        args: first.argv.slice(1),
        env: first.env,
        cwd: first.cwd,
        stdin: "null",
        stdout: "null",
        stderr: "null",
      }).spawn();
      const kill = () => {
        try {
          child.kill("SIGKILL");
        } catch {
          // it has exited
        }
      };
      this.#context.defer(() => Promise.resolve(kill()));
      let killed = false;
      relay.cutAt(killAt, () => {
        killed = true;
        kill();
      });
      const timer = setTimeout(kill, CLIENT_TIMEOUT_MS);
      const status = await child.status;
      clearTimeout(timer);
      const sentFirst = relay.up;
      if (!killed) return { failed: `${tool}'s first try ended (status ${status.code}) before it was killed` };
      const second = await this.#timed(call(), relay);
      if ("run" in second) second.note = `first try sent ${mb(sentFirst)} before the kill`;
      return second;
    } catch (error) {
      return { failed: messageOf(error) };
    }
  }

  #timed(call: CliCall, relay: CountingRelay): Promise<Outcome> {
    return runRelayed(this.#context, call, relay, CLIENT_TIMEOUT_MS);
  }
}

/** An rsync client command line (its arguments name the daemon through its relay). */
function rsyncCall(rsync: RsyncPeer, args: string[]): CliCall {
  return { argv: ["rsync", ...args], env: rsync.clientEnv, cwd: PROJECT_DIR };
}

/** Throws a clear error when rsync is not installed: every figure of the section is set beside it. */
async function requireRsync(): Promise<void> {
  try {
    const { code } = await new Deno.Command("rsync", { args: ["--version"], stdout: "null", stderr: "null" })
      .output();
    if (code === 0) return;
  } catch {
    // not found
  }
  throw new Error(
    "Cannot run the sync section: rsync is not installed (every figure is set beside the rsync daemon; " +
      "install rsync, e.g. apt-get install rsync, or leave the section out with --only)",
  );
}

/** Which dfos commands this build lacks, each with why. */
async function dfosPending(): Promise<Tools["pending"]> {
  const pending: Tools["pending"] = {};
  for (const command of ["push", "pull"] as const) {
    const help = await cliHelp(command);
    if (help === null) pending[command] = `this build has no "dfos ${command}"`;
  }
  const put = await cliHelp("put");
  if (put === null || !put.includes("--resume")) pending.resume = `this build has no "dfos put --resume"`;
  return pending;
}

/** The dfos server's copy of PREFIX against the source, where its storage keeps plain files (else trusted to the pulls). */
async function dfosCopyDiffers(dfos: DfosServer, source: string, prefix: string): Promise<string | null> {
  const copy = dfos.path(prefix);
  if (!await exists(copy)) return null;
  return await treesDiffer(source, copy);
}

async function filesDiffer(a: string, b: string): Promise<string | null> {
  const { code, stdout } = await new Deno.Command("cmp", { args: [a, b], stdout: "piped", stderr: "piped" }).output();
  return code === 0 ? null : new TextDecoder().decode(stdout).trim() || `cmp exited with status ${code}`;
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

async function writeRandomFile(path: string, size: number): Promise<void> {
  const file = await Deno.open(path, { write: true, create: true, truncate: true });
  try {
    for (let written = 0; written < size;) {
      const piece = randomBytes(Math.min(MIB, size - written));
      for (let done = 0; done < piece.length;) done += await file.write(piece.subarray(done));
      written += piece.length;
    }
  } finally {
    file.close();
  }
}

/** The table's two rows for one case: bytes on the wire, then wall time, with the targets of its kind. */
function caseRows(what: string, kind: Kind, rsync: Outcome, dfos: Outcome): Row[] {
  const targets: PairTargets = kind === "unchanged"
    ? { bytes: { target: TARGETS.syncUnchangedBytes, on: "dfos" }, wall: TARGETS.syncUnchangedWall }
    : kind === "delta"
    ? { bytes: { target: TARGETS.syncDeltaBytes, on: "ratio" }, wall: TARGETS.syncDeltaWall }
    : kind === "first-push"
    ? { wall: TARGETS.syncFirstPushWall }
    : {};
  return pairRows(SECTION, what, { name: "rsync", outcome: rsync }, dfos, targets);
}

/** The resume row: the second try's bytes towards the server over the missing share. */
function resumeRow(what: string, missing: number, rsync: Outcome, dfos: Outcome): Row {
  const r = "run" in rsync ? rsync.run : null;
  const d = "run" in dfos ? dfos.run : null;
  const value = d ? d.up / missing : null;
  return {
    section: SECTION,
    what,
    figure: `dfos ${d ? `${mb(d.up)} (${(d.up / missing).toFixed(3)}x of ${mb(missing)})` : outcomeWord(dfos)}, ` +
      `rsync --partial ${r ? `${mb(r.up)} (${(r.up / missing).toFixed(3)}x)` : outcomeWord(rsync)}`,
    judgement: judge(TARGETS.syncResumeBytes, value),
    note: [describe("rsync", rsync), describe("dfos", dfos)].filter((text) => text !== "").join("; "),
  };
}
