/**
 * `deno task test`'s runner (tools/test_task.ts) as a subprocess: where the
 * S3 engine cannot start it says so and runs the tests with the S3 ones
 * skipped, or failing under DFOS_REQUIRE_S3=1; with S3_ENDPOINT set it
 * starts nothing. (Its start and stop of a real engine is what every S3
 * test in a `deno task test` run stands on.)
 *
 * @module
 */

import { match, ok, strictEqual } from "node:assert/strict";
import { PROJECT_DIR } from "./_common.ts";

const TASK = `${PROJECT_DIR}tools/test_task.ts`;
const S3_TEST = "tests/s3_object_store_test.ts";

/** Runs the task with `args` and the environment less S3_* and DFOS_REQUIRE_S3, plus `env`. */
async function runTask(args: string[], env: Record<string, string>): Promise<{ code: number; output: string }> {
  const base = Object.fromEntries(
    Object.entries(Deno.env.toObject()).filter(([name]) => !name.startsWith("S3_") && name !== "DFOS_REQUIRE_S3"),
  );
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", TASK, ...args],
    cwd: PROJECT_DIR,
    clearEnv: true,
    env: { ...base, NO_COLOR: "1", RUST_BACKTRACE: "0", ...env },
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code, output: new TextDecoder().decode(stdout) + new TextDecoder().decode(stderr) };
}

Deno.test("test task: an engine that cannot start is said, and the S3 tests are skipped", async () => {
  const { code, output } = await runTask([S3_TEST, "--filter", "wrong secret is refused"], { START_S3_ENGINE: "none" });
  strictEqual(code, 0, output);
  match(output, /test task: no S3 engine: start-s3.sh failed .*; the S3 tests are skipped/);
  match(output, /S3 tests skipped: S3_ENDPOINT, S3_ACCESS_KEY and S3_SECRET_KEY are not set/);
  match(output, /0 passed \| 0 failed \| 1 ignored/);
});

Deno.test("test task: with DFOS_REQUIRE_S3=1 and no engine the S3 tests fail", async () => {
  const { code, output } = await runTask([S3_TEST, "--filter", "wrong secret is refused"], {
    START_S3_ENGINE: "none",
    DFOS_REQUIRE_S3: "1",
  });
  ok(code !== 0, output);
  match(output, /the S3 tests will fail \(DFOS_REQUIRE_S3=1\)/);
  match(output, /DFOS_REQUIRE_S3=1 but S3_ENDPOINT, S3_ACCESS_KEY or S3_SECRET_KEY is not set/);
  match(output, /0 passed \| 1 failed/);
});

Deno.test("test task: with S3_ENDPOINT set it starts no engine and passes its arguments on", async () => {
  const { code, output } = await runTask([S3_TEST, "--filter", "closed loopback port"], {
    S3_ENDPOINT: "http://127.0.0.1:9",
    START_S3_ENGINE: "none",
  });
  strictEqual(code, 0, output);
  ok(!/start-s3: |s3 engine: |no S3 engine/.test(output), output);
  match(output, /1 passed \| 0 failed \| \d+ filtered out/);
});
