/**
 * `SyncRunReport`: what a `dfos sync` run tells. As text: conflicts,
 * failures and skips on standard error as they happen, the plan with
 * `--dry-run`, then one summary line (sent, received, deleted, moved,
 * conflicts, failed; bytes on the wire). With `--json`: one object a line
 * for each action (`{"action": "upload" | "download" | "delete-remote" |
 * "delete-local" | "move-remote" | "move-local" | "copy-local" | "conflict" |
 * "defer" | "skip" | "fail", "name": ...}`), then the summary
 * (`"action": "summary"`).
 *
 * @module
 */

import { printableName } from "../../shared/names.ts";
import type { CommandIo } from "../command_table.ts";
import { formatBytes } from "../progress.ts";

/** The counts of one run. */
export interface SyncRunSummary {
  /** Files uploaded. */
  sent: number;
  /** Files downloaded (or copied here from a file with the same content). */
  received: number;
  /** Files deleted, on either side. */
  deleted: number;
  /** Files moved, on either side, as the other side moved them. */
  moved: number;
  /** Files changed on both sides: each kept twice. */
  conflicts: number;
  /** Files left for the next run: changed here while this one ran. */
  deferred: number;
  /** Paths skipped (links, special files, names the server cannot take). */
  skipped: number;
  /** Files that could not be synced. */
  failed: number;
  /** The names of those. */
  failures: string[];
  /** Bytes that crossed the connection, both ways. */
  wire: number;
}

/** One action: its kind, the remote name, and facts. */
export interface SyncRunAction {
  action:
    | "upload"
    | "download"
    | "delete-remote"
    | "delete-local"
    | "move-remote"
    | "move-local"
    | "copy-local"
    | "conflict"
    | "defer"
    | "skip"
    | "fail";
  name: string;
  [fact: string]: unknown;
}

/** Reports one run. */
export class SyncRunReport {
  readonly #io: CommandIo;
  readonly #json: boolean;
  readonly #dryRun: boolean;
  readonly summary: SyncRunSummary = {
    sent: 0,
    received: 0,
    deleted: 0,
    moved: 0,
    conflicts: 0,
    deferred: 0,
    skipped: 0,
    failed: 0,
    failures: [],
    wire: 0,
  };
  #told: Promise<void> = Promise.resolve();

  /**
   * @param io Where to write.
   * @param options `json`, `dryRun`.
   */
  constructor(io: CommandIo, options: { json: boolean; dryRun: boolean }) {
    this.#io = io;
    this.#json = options.json;
    this.#dryRun = options.dryRun;
  }

  /**
   * Counts and tells one action, in the order of the calls.
   *
   * @param action What happened (in a dry run: would).
   */
  action(action: SyncRunAction): Promise<void> {
    const summary = this.summary;
    const kind = action.action;
    if (kind === "upload") summary.sent++;
    else if (kind === "download" || kind === "copy-local") summary.received++;
    else if (kind === "delete-remote" || kind === "delete-local") summary.deleted++;
    else if (kind === "move-remote" || kind === "move-local") summary.moved++;
    else if (kind === "conflict") summary.conflicts++;
    else if (kind === "defer") summary.deferred++;
    else if (kind === "skip") summary.skipped++;
    else {
      summary.failed++;
      summary.failures.push(action.name);
    }
    let line: string | null = null;
    const name = printableName(action.name);
    if (this.#json) line = `${JSON.stringify(action)}\n`;
    else if (kind === "skip") this.#io.warn(`dfos sync: skipped ${name}: ${action.reason}`);
    else if (kind === "fail") this.#io.warn(`dfos sync: ${name}: ${action.error}`);
    else if (kind === "defer") this.#io.warn(`dfos sync: ${name} changed here during the run: synced next run`);
    else if (kind === "conflict" && !this.#dryRun) {
      this.#io.warn(
        `dfos sync: conflict: ${name} changed on both sides; the server's version keeps the name, this one is ` +
          `kept as ${printableName(action.copy as string)}`,
      );
    } else if (this.#dryRun) {
      const from = typeof action.from === "string" ? ` (from ${printableName(action.from)})` : "";
      line = `${kind} ${name}${from}\n`;
    }
    if (line === null) return Promise.resolve();
    const text = line;
    const told = this.#told.then(() => this.#io.write(text));
    this.#told = told.catch(() => {});
    return told;
  }

  /**
   * Writes the summary.
   *
   * @param wire Bytes that crossed the connection.
   */
  async finish(wire: number): Promise<void> {
    const summary = this.summary;
    summary.wire = wire;
    await this.#told;
    if (this.#json) {
      return await this.#io.write(`${JSON.stringify({ action: "summary", dryRun: this.#dryRun, ...summary })}\n`);
    }
    const would = this.#dryRun ? "would be " : "";
    const parts = [
      `${summary.sent} ${would}sent`,
      `${summary.received} ${would}received`,
      `${summary.deleted} ${would}deleted`,
    ];
    if (summary.moved > 0) parts.push(`${summary.moved} ${would}moved`);
    parts.push(`${summary.conflicts} conflict${summary.conflicts === 1 ? "" : "s"}`);
    if (summary.deferred > 0) parts.push(`${summary.deferred} left for the next run`);
    if (summary.skipped > 0) parts.push(`${summary.skipped} skipped`);
    if (summary.failed > 0) parts.push(`${summary.failed} failed`);
    await this.#io.write(`sync: ${parts.join(", ")}; ${formatBytes(wire)} on the wire\n`);
  }
}
