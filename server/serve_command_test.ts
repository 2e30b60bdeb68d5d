/**
 * Tests of `dfos serve`'s flag readers.
 *
 * @module
 */
import { deepStrictEqual, strictEqual, throws } from "node:assert/strict";
import { UsageError } from "../shared/cli.ts";
import { durationFlag, metricsFlag } from "./serve_command.ts";

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

Deno.test("metricsFlag reads [HOST:]PORT, loopback without a host, and refuses the rest", () => {
  strictEqual(metricsFlag(undefined), null);
  deepStrictEqual(metricsFlag("9464"), { hostname: "127.0.0.1", port: 9464 });
  deepStrictEqual(metricsFlag(":9464"), { hostname: "127.0.0.1", port: 9464 });
  deepStrictEqual(metricsFlag("0"), { hostname: "127.0.0.1", port: 0 });
  deepStrictEqual(metricsFlag("0.0.0.0:9464"), { hostname: "0.0.0.0", port: 9464 });
  deepStrictEqual(metricsFlag("metrics.example:80"), { hostname: "metrics.example", port: 80 });
  deepStrictEqual(metricsFlag("[::1]:9464"), { hostname: "::1", port: 9464 });
  for (const bad of ["", "host", "127.0.0.1", "::1:9464", "[::1]", "[1.2.3.4]:9", "h:65536", "h:-1", "h:9x", "a b:9"]) {
    throws(() => metricsFlag(bad), UsageError, bad);
  }
  throws(() => metricsFlag(true), UsageError);
});
