/**
 * The benchmark's one table: a row per figure, each with its target and
 * verdict where issue 4 sets one, what the JSON keeps of each row, and how
 * figures write bytes.
 *
 * @module
 */

import { round } from "./stats.ts";
import type { Judgement } from "./targets.ts";

/** One line of the table. */
export interface Row {
  /** The section that measured it. */
  section: string;
  /** What was measured. */
  what: string;
  /** The figure as printed (value, unit, spread, ratio). */
  figure: string;
  /** The figure judged against its target, or null for a figure without one. */
  judgement: Judgement | null;
  /** Anything the reader should know: method, integrity checks, a busy machine, a failure. */
  note?: string;
}

const HEADER = ["section", "what", "figure", "target", "verdict", "note"];

/**
 * Prints the table on standard output: one line per row, columns aligned,
 * the note last and never cut.
 *
 * @param rows The rows, in order.
 */
export function printTable(rows: readonly Row[]): void {
  const cells = [
    HEADER,
    ...rows.map((row) => [
      row.section,
      row.what,
      row.figure,
      row.judgement?.target ?? "-",
      row.judgement?.verdict ?? "",
      row.note ?? "",
    ]),
  ];
  const widths = HEADER.map((_, column) => Math.max(...cells.map((line) => line[column].length)));
  for (const line of cells) {
    console.log(
      line.map((cell, column) => column < HEADER.length - 1 ? cell.padEnd(widths[column]) : cell).join("  ")
        .trimEnd(),
    );
  }
  const judged = rows.filter((row) => row.judgement !== null);
  const met = judged.filter((row) => row.judgement?.verdict === "MET").length;
  console.log(`targets: ${met} of ${judged.length} met`);
}

/**
 * A row as the JSON keeps it.
 *
 * @param row The row.
 * @returns A plain object.
 */
export function rowJson(row: Row): Record<string, unknown> {
  return {
    section: row.section,
    what: row.what,
    figure: row.figure,
    target: row.judgement?.target ?? null,
    verdict: row.judgement?.verdict ?? null,
    value: row.judgement?.value == null ? null : round(row.judgement.value, 3),
    note: row.note ?? null,
  };
}

/**
 * Bytes in decimal units (B under 10 kB).
 *
 * @param bytes How many.
 * @returns The text, e.g. `856 B`, `678.4 kB`, `1495.8 MB`.
 */
export function mb(bytes: number): string {
  if (bytes < 10_000) return `${Math.round(bytes).toLocaleString("en-US")} B`;
  if (bytes < 10_000_000) return `${(bytes / 1000).toFixed(1)} kB`;
  return `${(bytes / 1e6).toFixed(1)} MB`;
}
