/**
 * Run as `deno run -A tests/_permissions_probe.ts COMMAND DIR`: gives up the
 * permissions of `dfos COMMAND` as main.ts and client/options.ts do
 * (the command's row in main.ts), then tries what a client might, and prints
 * one JSON object: each attempt's outcome (`"ok"` or the error's name), before
 * and after the options are read. For tests/sandbox_test.ts.
 *
 * Internal to tests/: nothing here is part of dfos.
 *
 * @module
 */

import { join } from "node:path";
import { COMMANDS } from "../main.ts";
import { dropOptionPermissions, dropPermissions } from "../shared/permissions.ts";

const [command, dir] = Deno.args;

async function attempt(check: () => unknown): Promise<string> {
  try {
    await check();
    return "ok";
  } catch (error) {
    return error instanceof Error ? error.name : String(error);
  }
}

/** What is tried after the options are read. */
const CHECKS: Record<string, () => unknown> = {
  "read a local file": () => Deno.readTextFileSync(join(dir, "local.txt")),
  "write a local file": () => Deno.writeTextFileSync(join(dir, "written.txt"), "x"),
  "read an environment variable": () => Deno.env.get("PATH"),
  // Refused by the kernel (nothing listens there) when the network is allowed, by Deno when it is not.
  "connect": async () => (await Deno.connect({ hostname: "127.0.0.1", port: Number(Deno.args[2]) })).close(),
  "run a program": () => new Deno.Command("true").outputSync(),
  "load a native library": () => Deno.dlopen("libc.so.6", {}).close(),
  "read the system's memory figures": () => Deno.systemMemoryInfo(),
};

dropPermissions(COMMANDS[command].permissions);
const whileReadingOptions = {
  "read an environment variable": await attempt(() => Deno.env.get("DFOS_USER")),
  "read a local file": await attempt(() => Deno.readTextFileSync(join(dir, "local.txt"))),
};
dropOptionPermissions();
const afterwards: Record<string, string> = {};
for (const [what, check] of Object.entries(CHECKS)) afterwards[what] = await attempt(check);
console.log(JSON.stringify({ whileReadingOptions, afterwards }));
