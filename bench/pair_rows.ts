/**
 * The two rows of the table a sync case gets when dfos and another tool
 * (rsync, Unison) did the same thing in the same run: bytes on the wire,
 * then wall time, each with the ratio dfos / the other tool and its target.
 *
 * @module
 */

import type { Outcome } from "./relayed_run.ts";
import { mb, type Row } from "./report.ts";
import { judge, type Target } from "./targets.ts";

/** The other tool in a case: its name in the table and what it did. */
export interface Peer {
  /** As the figure names it: "rsync", "unison". */
  name: string;
  /** Its outcome. */
  outcome: Outcome;
}

/** The targets of a case's two rows; a row without one is shown unjudged. */
export interface PairTargets {
  /** The bytes row's target, tested on the ratio dfos / peer, or on dfos's own bytes. */
  bytes?: { target: Target; on: "ratio" | "dfos" };
  /** The wall row's target, tested on the ratio dfos / peer. */
  wall?: Target;
}

/**
 * The table's two rows for one case: bytes on the wire, then wall time.
 *
 * @param section The section's name.
 * @param what The case.
 * @param peer The other tool.
 * @param dfos What dfos did.
 * @param targets The rows' targets.
 * @returns The two rows.
 */
export function pairRows(section: string, what: string, peer: Peer, dfos: Outcome, targets: PairTargets): Row[] {
  const p = "run" in peer.outcome ? peer.outcome.run : null;
  const d = "run" in dfos ? dfos.run : null;
  const ratio = (a: number | undefined, b: number | undefined) =>
    a === undefined || b === undefined || b === 0 ? null : a / b;
  const bytesRatio = ratio(d ? d.up + d.down : undefined, p ? p.up + p.down : undefined);
  const wallRatio = ratio(d?.seconds, p?.seconds);
  const bytes = targets.bytes;
  const name = peer.name;
  const note = [describe(name, peer.outcome), describe("dfos", dfos)].filter((text) => text !== "").join("; ");
  return [
    {
      section,
      what: `${what}: bytes on the wire`,
      figure:
        `dfos ${d ? mb(d.up + d.down) : outcomeWord(dfos)}, ${name} ${
          p ? mb(p.up + p.down) : outcomeWord(peer.outcome)
        }` + (bytesRatio === null ? "" : ` (${bytesRatio.toFixed(3)}x)`),
      judgement: bytes === undefined
        ? null
        : judge(bytes.target, bytes.on === "ratio" ? bytesRatio : d ? d.up + d.down : null),
      note: note || (d && p ? `sent/received: dfos ${mb(d.up)}/${mb(d.down)}, ${name} ${mb(p.up)}/${mb(p.down)}` : ""),
    },
    {
      section,
      what: `${what}: wall time`,
      figure:
        `dfos ${d ? `${d.seconds.toFixed(2)} s` : outcomeWord(dfos)}, ${name} ${
          p ? `${p.seconds.toFixed(2)} s` : outcomeWord(peer.outcome)
        }` + (wallRatio === null ? "" : ` (${wallRatio.toFixed(2)}x)`),
      judgement: targets.wall === undefined ? null : judge(targets.wall, wallRatio),
    },
  ];
}

/**
 * The word a figure shows in place of a run.
 *
 * @param outcome An outcome without a run.
 * @returns "pending" or "failed".
 */
export function outcomeWord(outcome: Outcome): string {
  return "pending" in outcome ? "pending" : "failed";
}

/**
 * What a note says of an outcome: why it is pending or failed, or its own note.
 *
 * @param tool The tool's name.
 * @param outcome Its outcome.
 * @returns The text, or "" when there is nothing to say.
 */
export function describe(tool: string, outcome: Outcome): string {
  if ("pending" in outcome) return `${tool} pending: ${outcome.pending}`;
  if ("failed" in outcome) return `${tool} failed: ${outcome.failed}`;
  return outcome.note ? `${tool}: ${outcome.note}` : "";
}
