/**
 * The two-way section's sums (bench/twoway.ts): a case's figure is every
 * run of it added up, and a failed run is named by its side, so a table row
 * can never show a partial sum as if the case had run whole.
 *
 * @module
 */

import { deepStrictEqual } from "node:assert/strict";
import { combineRuns } from "../bench/twoway.ts";

Deno.test("combineRuns() adds up the bytes and wall times of a case's runs", () => {
  const outcome = combineRuns([
    { side: "A", outcome: { run: { up: 1000, down: 20, seconds: 0.5 } } },
    { side: "B", outcome: { run: { up: 30, down: 900, seconds: 0.25 } } },
    { side: "A", outcome: { run: { up: 5, down: 6, seconds: 0.125 } } },
  ]);
  deepStrictEqual(outcome, { run: { up: 1035, down: 926, seconds: 0.875 }, note: "A 0.50 s + B 0.25 s + A 0.13 s" });
});

Deno.test("combineRuns() gives the first failure, named by its run and side, not a partial sum", () => {
  const outcome = combineRuns([
    { side: "A", outcome: { run: { up: 1000, down: 20, seconds: 0.5 } } },
    { side: "B", outcome: { failed: "exited with status 1" } },
  ]);
  deepStrictEqual(outcome, { failed: "run 2 (B): exited with status 1" });
});

Deno.test("combineRuns() says pending for a tool this build lacks, and failed for no run at all", () => {
  deepStrictEqual(combineRuns([], 'this build has no "dfos sync"'), { pending: 'this build has no "dfos sync"' });
  deepStrictEqual(combineRuns([]), { failed: "no run" });
});
