/**
 * `SyncReport`: what a push or pull tells, as it goes and at the end. As
 * text: warnings and failures on standard error, by name; with `--dry-run`
 * the plan, one line an action; at the end a summary line (files sent,
 * deleted, unchanged, skipped, failed; bytes on the wire against bytes of
 * content). With `--json`: one JSON object a line for each action
 * (`{"action":"send"|"delete"|"unchanged"|"skip"|"fail","name":...}`), then
 * the summary object (`"action":"summary"`).
 *
 * @module
 */

import { printableName } from "../../shared/names.ts";
import type { CommandIo } from "../command_table.ts";
import { formatBytes } from "../progress.ts";

/** The counts at the end of a run. */
export interface SyncSummary {
  /** Files sent (uploaded by push, downloaded by pull). */
  sent: number;
  /** Files deleted on the target. */
  deleted: number;
  /** Files left as they were. */
  unchanged: number;
  /** Paths skipped (links, special files, names the server cannot take). */
  skipped: number;
  /** Files that failed. */
  failed: number;
  /** Bytes of the files sent. */
  content: number;
  /** Bytes that crossed the connection, both ways. */
  wire: number;
  /** True when the remote side was listed (false: taken from the last run's state). */
  listed: boolean;
}

/** One action to report: its kind, its remote name, and facts (size, local path, bytes moved...). */
export interface ReportedAction {
  action: "send" | "delete" | "unchanged" | "skip" | "fail";
  name: string;
  [fact: string]: unknown;
}

/** Reports one run. */
export class SyncReport {
  readonly #command: string;
  readonly #io: CommandIo;
  readonly #json: boolean;
  readonly #dryRun: boolean;
  readonly summary: SyncSummary = {
    sent: 0,
    deleted: 0,
    unchanged: 0,
    skipped: 0,
    failed: 0,
    content: 0,
    wire: 0,
    listed: true,
  };

  /** Settles once the last action told has been written. */
  #told: Promise<void> = Promise.resolve();

  /**
   * @param command "push" or "pull".
   * @param io Where to write.
   * @param options `json`, `dryRun`.
   */
  constructor(command: string, io: CommandIo, options: { json: boolean; dryRun: boolean }) {
    this.#command = command;
    this.#io = io;
    this.#json = options.json;
    this.#dryRun = options.dryRun;
  }

  /**
   * Counts and tells one action: with --json as an object; as text, skips
   * and failures as warnings, the plan's lines in a dry run.
   *
   * Lines go out in the order of the calls, one at a time (push tells of
   * files sent at once).
   *
   * @param action What happened (or, in a dry run, would).
   */
  action(action: ReportedAction): Promise<void> {
    const summary = this.summary;
    if (action.action === "send") {
      summary.sent++;
      summary.content += (action.size as number) ?? 0;
    } else if (action.action === "delete") summary.deleted++;
    else if (action.action === "unchanged") summary.unchanged++;
    else if (action.action === "skip") summary.skipped++;
    else summary.failed++;
    let line: string | null = null;
    if (this.#json) {
      line = `${JSON.stringify(action)}\n`;
    } else {
      const name = printableName(action.name);
      if (action.action === "skip") this.#io.warn(`dfos ${this.#command}: skipped ${name}: ${action.reason}`);
      else if (action.action === "fail") this.#io.warn(`dfos ${this.#command}: ${name}: ${action.error}`);
      else if (this.#dryRun && action.action !== "unchanged") {
        const size = action.action === "send" ? ` (${formatBytes(action.size as number)})` : "";
        line = `${action.action} ${name}${size}\n`;
      }
    }
    if (line === null) return Promise.resolve(); // nothing to write: 10,000 unchanged files cost no writes
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
    if (this.#json) {
      return await this.#io.write(`${JSON.stringify({ action: "summary", dryRun: this.#dryRun, ...summary })}\n`);
    }
    const verb = this.#dryRun ? "would send" : "sent";
    const parts = [
      `${summary.sent} ${verb}`,
      `${summary.deleted} ${this.#dryRun ? "would delete" : "deleted"}`,
      `${summary.unchanged} unchanged`,
    ];
    if (summary.skipped > 0) parts.push(`${summary.skipped} skipped`);
    if (summary.failed > 0) parts.push(`${summary.failed} failed`);
    await this.#io.write(
      `${this.#command}: ${parts.join(", ")}; ${formatBytes(summary.wire)} on the wire for ` +
        `${formatBytes(summary.content)} of content\n`,
    );
  }
}
