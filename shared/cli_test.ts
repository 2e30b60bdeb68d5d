import { deepStrictEqual, ok, rejects, strictEqual, throws } from "node:assert/strict";
import type { ParseArgsOptionsConfig } from "node:util";
import {
  byteSizeFlag,
  CommandFailure,
  exitCodeFor,
  integerFlag,
  parseCommandArgs,
  parsePlainArgs,
  secondsFlag,
  UsageError,
} from "./cli.ts";
import { DfosError, Status } from "./status.ts";

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

Deno.test("integerFlag() reads whole numbers in range and refuses anything else as a usage error", () => {
  strictEqual(integerFlag(undefined, "port", 5000, [0, 65535]), 5000);
  strictEqual(integerFlag("0", "port", 5000, [0, 65535]), 0);
  for (const bad of ["-1", "65536", "1.5", "x", "", "1e3"]) {
    throws(() => integerFlag(bad, "port", 5000, [0, 65535]), UsageError, bad);
  }
});

Deno.test("exitCodeFor() maps usage, login, missing-file and reported failures to their exit codes", () => {
  strictEqual(exitCodeFor(new UsageError("bad flag")), 2);
  strictEqual(exitCodeFor(new DfosError(Status.AUTH_FAILED, "no")), 3);
  strictEqual(exitCodeFor(new DfosError(Status.NOT_FOUND, "no")), 4);
  strictEqual(exitCodeFor(new DfosError(Status.INTEGRITY, "no")), 1);
  strictEqual(exitCodeFor(new CommandFailure("2 of 3 files could not be deleted", 4)), 4);
  strictEqual(exitCodeFor(new Error("anything else")), 1);
});

Deno.test("byteSizeFlag() reads bytes with K, M, G and T as powers of 1024", () => {
  strictEqual(byteSizeFlag(undefined, "quota", 7), 7);
  strictEqual(byteSizeFlag("0", "quota", 7), 0);
  strictEqual(byteSizeFlag("4096", "quota", 7), 4096);
  strictEqual(byteSizeFlag("512K", "quota", 7), 512 * 1024);
  strictEqual(byteSizeFlag("10M", "quota", 7), 10 * 1024 * 1024);
  strictEqual(byteSizeFlag("2g", "quota", 7), 2 * 1024 ** 3);
  strictEqual(byteSizeFlag("1T", "quota", 7), 1024 ** 4);
  strictEqual(byteSizeFlag("1.5K", "quota", 7), 1536);
  strictEqual(byteSizeFlag("10MiB", "quota", 7), 10 * 1024 * 1024);
  strictEqual(byteSizeFlag("10MB", "quota", 7), 10 * 1024 * 1024);
  strictEqual(byteSizeFlag("100B", "quota", 7), 100);
});

Deno.test("byteSizeFlag() refuses what is not a size in range, naming the flag and the value", () => {
  for (const bad of ["-1", "x", "", "1.5", "10X", "1e3", " 1K", "K", "1K2", "8T", true]) {
    throws(
      () => byteSizeFlag(bad, "max-file-size", 7, [0, 4 * 1024 ** 4]),
      (error) =>
        error instanceof UsageError &&
        error.message === `--max-file-size takes a size in bytes from 0 to ${4 * 1024 ** 4} ("4096", or with K, M, ` +
            `G or T: "512K", "10M", "2G"), not "${bad}"`,
      String(bad),
    );
  }
  throws(
    () => byteSizeFlag("2x", "quota", 7),
    (error) =>
      error instanceof UsageError &&
      error.message === '--quota takes a size in bytes ("4096", or with K, M, G or T: "512K", "10M", "2G"), not "2x"',
  );
  throws(() => byteSizeFlag("1023", "max-frame", 7, [1024, 65536]), UsageError);
  throws(() => byteSizeFlag("65K", "max-frame", 7, [1024, 65536]), UsageError);
  strictEqual(byteSizeFlag("64K", "max-frame", 7, [1024, 65536]), 65536);
});

Deno.test("parsePlainArgs() reads what it accepts exactly as node:util parseArgs does", async () => {
  const { parseArgs } = await import("node:util");
  const fc = (await import("fast-check")).default;
  const options: ParseArgsOptionsConfig = {
    help: { type: "boolean", short: "h" },
    verbose: { type: "boolean", short: "v" },
    server: { type: "string", short: "s" },
    user: { type: "string", short: "u" },
    tls: { type: "boolean" },
    ca: { type: "string" },
  };
  const token = fc.oneof(
    fc.constantFrom("-", "--", "-h", "-v", "-s", "-u", "-x", "-hv", "-sHOST", "--help", "--verbose", "--tls", "--ca"),
    fc.constantFrom("--server", "--user", "--server=a:1", "--user=", "--tls=1", "--colour", "--no-tls", "--=x", "-5"),
    fc.constantFrom("--__proto__", "--constructor", "a", "b.txt", "", "=", "x=y"),
    fc.string({ maxLength: 4 }),
  );
  let plainCount = 0;
  fc.assert(
    fc.property(fc.array(token, { maxLength: 6 }), (args) => {
      const plain = parsePlainArgs(options, args);
      if (plain === null) return;
      plainCount++;
      const node = parseArgs({ args, options, allowPositionals: true, strict: true });
      deepStrictEqual(plain, { values: node.values, positionals: node.positionals });
    }),
    { numRuns: 2000 },
  );
  ok(plainCount > 100, `only ${plainCount} command lines were plain`);
});

Deno.test("parseCommandArgs() gives node:util parseArgs's message for what is not plain", async () => {
  const command = { usage: "", options: { server: { type: "string" as const, short: "s" } }, run: async () => {} };
  deepStrictEqual(await parseCommandArgs(command, ["-s", "a:1", "x", "-"]), {
    values: Object.assign(Object.create(null), { server: "a:1" }),
    positionals: ["x", "-"],
  });
  deepStrictEqual((await parseCommandArgs(command, ["--", "-s"])).positionals, ["-s"]);
  await rejects(
    parseCommandArgs(command, ["--colour"]),
    (error) => error instanceof UsageError && error.message === "Unknown option '--colour'",
  );
  await rejects(
    parseCommandArgs(command, ["--server"]),
    (error) => error instanceof UsageError && error.message === "Option '-s, --server <value>' argument missing",
  );
});
