/**
 * `conflictName()`: where `dfos sync` keeps the losing version of a file
 * changed on both sides: `NAME.conflict-YYYYMMDD-HHMMSS-HOST.EXT` beside it
 * (the time in UTC, HOST the machine whose version it is), so that it sorts
 * next to the file and keeps its extension for the programs that open it.
 *
 * @module
 */

/**
 * The conflict copy's path.
 *
 * @param rel The file's path, `/`-separated.
 * @param when When the conflict was found.
 * @param host The machine's name, as {@linkcode hostLabel} gives it.
 * @returns The copy's path in the same folder.
 *
 * @example Usage
 * ```ts
 * import assert from "node:assert/strict";
 * import { conflictName } from "./conflict_name.ts";
 * const when = new Date(Date.UTC(2026, 11, 5, 9, 3, 7));
 * assert.equal(conflictName("docs/plan.txt", when, "lap"), "docs/plan.conflict-20261205-090307-lap.txt");
 * assert.equal(conflictName("Makefile", when, "lap"), "Makefile.conflict-20261205-090307-lap");
 * assert.equal(conflictName(".bashrc", when, "lap"), ".bashrc.conflict-20261205-090307-lap");
 * ```
 */
export function conflictName(rel: string, when: Date, host: string): string {
  const slash = rel.lastIndexOf("/");
  const folder = rel.slice(0, slash + 1);
  const name = rel.slice(slash + 1);
  const dot = name.lastIndexOf(".");
  const extension = dot > 0 && name.length - dot <= 16 ? name.slice(dot) : "";
  const stem = name.slice(0, name.length - extension.length);
  const pad = (value: number) => String(value).padStart(2, "0");
  const stamp = `${when.getUTCFullYear()}${pad(when.getUTCMonth() + 1)}${pad(when.getUTCDate())}-` +
    `${pad(when.getUTCHours())}${pad(when.getUTCMinutes())}${pad(when.getUTCSeconds())}`;
  return `${folder}${stem}.conflict-${stamp}-${host}${extension}`;
}

/**
 * The machine's name as a conflict copy carries it: letters, digits, `-`
 * and `_` (anything else becomes `-`), at most 32 of them; `host` when it
 * cannot be read.
 *
 * @param name The host name (`Deno.hostname()`), or null when unknown.
 * @returns The label.
 */
export function hostLabel(name: string | null): string {
  const label = (name ?? "").split(".")[0].replace(/[^A-Za-z0-9_-]/g, "-").slice(0, 32);
  return label === "" ? "host" : label;
}
