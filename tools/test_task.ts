/**
 * What `deno task test` runs: `deno test --doc --allow-all --parallel` with
 * the task's extra arguments, and, unless `S3_ENDPOINT` is set already, a
 * real S3 engine for the S3 tests: Ceph RGW on loopback, started once per
 * run by tools/s3/start-s3.sh (about 7 s; it installs its Debian packages
 * with apt-get where they are missing and this runs as root), its `S3_*`
 * variables passed to the tests, and stopped by its state dir at the end,
 * also after a failure, Ctrl-C, SIGTERM or the loss of the `npx` that
 * launched this (tools/launch_chain.ts).
 *
 * Where the engine cannot start (not Linux, no bash, not root and the
 * packages missing, apt unreachable), it says so and runs the tests without
 * it: the S3 tests are then ignored, or fail when `DFOS_REQUIRE_S3=1` (CI).
 *
 *     deno task test                       # everything, engine included
 *     deno task test tests/s3_object_store_test.ts
 *
 * @module
 */

import { ignoringSignals, runRelayed, type S3Engine, startS3Engine, stopS3Engine } from "./s3_engine.ts";

/** The test command's own arguments (the task's extra ones follow). */
export const TEST_ARGS = ["test", "--doc", "--allow-all", "--parallel"];

/** Says something on stderr, marked as this task's. */
function say(message: string): void {
  console.error(`test task: ${message}`);
}

/**
 * Runs the tests (with an engine, unless one is named already) and returns
 * their exit code.
 *
 * @param args Extra arguments for `deno test`.
 * @returns The exit code.
 */
export async function testTask(args: string[]): Promise<number> {
  let engine: S3Engine | null = null;
  if (!Deno.env.get("S3_ENDPOINT")) {
    const result = await startS3Engine();
    if (result === "interrupted") {
      say("interrupted while the S3 engine started");
      return 130;
    }
    if (typeof result === "string") {
      const then = Deno.env.get("DFOS_REQUIRE_S3") === "1"
        ? "the S3 tests will fail (DFOS_REQUIRE_S3=1)"
        : "the S3 tests are skipped";
      say(`no S3 engine: ${result}; ${then}`);
    } else {
      engine = result;
    }
  }
  try {
    const child = new Deno.Command(Deno.execPath(), {
      args: [...TEST_ARGS, ...args],
      env: engine?.env ?? {},
      stdin: "inherit",
      stdout: "inherit",
      stderr: "inherit",
    }).spawn();
    return await runRelayed(child, () => {});
  } finally {
    if (engine !== null) await ignoringSignals(() => stopS3Engine(engine));
  }
}

if (import.meta.main) {
  Deno.exit(await testTask(Deno.args));
}
