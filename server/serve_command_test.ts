import { strictEqual, throws } from "node:assert/strict";
import { UsageError } from "../shared/cli.ts";
import { secondsFlag } from "./serve_command.ts";

Deno.test("secondsFlag() reads whole and fractional seconds as milliseconds", () => {
  strictEqual(secondsFlag(undefined, "idle-timeout", 300_000), 300_000);
  strictEqual(secondsFlag("10", "idle-timeout", 1), 10_000);
  strictEqual(secondsFlag("0.5", "idle-timeout", 1), 500);
  strictEqual(secondsFlag("0", "idle-timeout", 1), 0);
  strictEqual(secondsFlag("2147483", "idle-timeout", 1), 2_147_483_000);
});

Deno.test("secondsFlag() refuses what is not a number of seconds a timer can wait", () => {
  for (const value of ["-1", "abc", "1e3", ".5", "5.", "", "2147484", true]) {
    throws(
      () => secondsFlag(value, "drain-timeout", 1),
      (error) =>
        error instanceof UsageError &&
        error.message === `--drain-timeout takes a number of seconds from 0 to 2147483, not "${value}"`,
      String(value),
    );
  }
});
