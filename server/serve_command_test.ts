/**
 * Tests of `dfos serve`'s flag readers.
 *
 * @module
 */
import { strictEqual, throws } from "node:assert/strict";
import { UsageError } from "../shared/cli.ts";
import { durationFlag } from "./serve_command.ts";

Deno.test("durationFlag reads seconds and s, m, h, d, and refuses the rest", () => {
  strictEqual(durationFlag(undefined, "partial-ttl", 5), 5);
  strictEqual(durationFlag("90", "partial-ttl", 0), 90_000);
  strictEqual(durationFlag("90s", "partial-ttl", 0), 90_000);
  strictEqual(durationFlag("30m", "partial-ttl", 0), 1_800_000);
  strictEqual(durationFlag("24h", "partial-ttl", 0), 86_400_000);
  strictEqual(durationFlag("1.5d", "partial-ttl", 0), 129_600_000);
  for (const bad of ["", "0", "0.5", "-1h", "1w", "h", "1 h h"]) {
    throws(() => durationFlag(bad, "partial-ttl", 0), UsageError, bad);
  }
});
