/**
 * End-to-end test of the compiled `dfos` binary, built with the flags of the
 * "compile" task in deno.json: its client against a server, and its own
 * server, which must run in its sandbox. `deno compile` needs a `denort` runtime, which
 * cannot be downloaded here: the test runs only when `DENORT_BIN` names one.
 *
 * @module
 */

import { match, ok, strictEqual } from "node:assert/strict";
import { join } from "node:path";
import { PROJECT_DIR, randomBytes, sha256, sha256File, startServer, text, waitFor } from "./_fixture.ts";

const DENORT_BIN = Deno.env.get("DENORT_BIN");

/**
 * The arguments of the "compile" task after `deno`, with its `--output`
 * pointed at `output`.
 */
async function compileArgs(output: string): Promise<string[]> {
  const config = JSON.parse(await Deno.readTextFile(join(PROJECT_DIR, "deno.json")));
  const task: string = config.tasks.compile;
  const words = task.trim().split(/\s+/);
  if (words[0] !== "deno" || words[1] !== "compile") {
    throw new Error(`Cannot use the "compile" task: expected "deno compile ...", got "${task}"`);
  }
  const args = words.slice(1);
  const at = args.findIndex((word) => word === "--output" || word === "-o");
  if (at >= 0) args.splice(at, 2, "--output", output);
  else if (args.some((word) => word.startsWith("--output="))) {
    args.splice(args.findIndex((word) => word.startsWith("--output=")), 1, "--output", output);
  } else args.splice(1, 0, "--output", output);
  return args;
}

async function run(
  command: string,
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const output = await new Deno.Command(command, {
    args,
    cwd: PROJECT_DIR,
    env: { RUST_BACKTRACE: "0", NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1", ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code: output.code, stdout: text(output.stdout), stderr: text(output.stderr) };
}

Deno.test({
  name: DENORT_BIN === undefined
    ? "compiled binary round trip (skipped: set DENORT_BIN to a denort binary)"
    : "compiled binary prints its help, does a put/get round trip and serves from its sandbox",
  ignore: DENORT_BIN === undefined,
  async fn() {
    await using fx = await startServer();
    const binary = join(fx.dir, "dfos");
    const compiled = await run(Deno.execPath(), await compileArgs(binary));
    strictEqual(compiled.code, 0, `deno compile failed: ${compiled.stderr}`);

    const help = await run(binary, ["--help"]);
    strictEqual(help.code, 0, help.stderr);
    match(help.stdout, /^Usage: dfos COMMAND/);
    for (const name of ["serve", "put", "get", "peek", "rm", "ls"]) match(help.stdout, new RegExp(`^  ${name} `, "m"));

    const env = fx.envFor("alice");
    const data = randomBytes(3 * 1024 * 1024 + 7);
    const source = join(fx.local, "up.bin");
    const target = join(fx.local, "down.bin");
    await Deno.writeFile(source, data);
    const put = await run(binary, ["put", source, "compiled/up.bin"], env);
    strictEqual(put.code, 0, put.stderr);
    const get = await run(binary, ["get", "compiled/up.bin", target], env);
    strictEqual(get.code, 0, get.stderr);
    strictEqual(await sha256File(target), sha256(data));
    strictEqual(await sha256File(join(fx.root, "alice", "compiled", "up.bin")), sha256(data));

    // The binary's own server runs in its sandbox: the worker's module is in the binary (--include) and workers may
    // have permissions of their own (--unstable-worker-options).
    const root = join(fx.dir, "compiled-root");
    const log = join(fx.dir, "compiled.log");
    const server = new Deno.Command(binary, {
      args: ["serve", "--host", "127.0.0.1", "--port", "0", "--root", root, "--users", fx.users, "--log", log],
      cwd: fx.dir,
      env: { RUST_BACKTRACE: "0", NO_COLOR: "1" },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    let stdout = "";
    const reading = (async () => {
      for await (const chunk of server.stdout.pipeThrough(new TextDecoderStream())) stdout += chunk;
    })();
    const stderr = new Response(server.stderr).text();
    try {
      await waitFor(() => /Serving on 127\.0\.0\.1:\d+/.test(stdout), "the compiled server to listen", 15_000);
      const sandbox = `Sandbox: net 127.0.0.1:0; read ${root}, ${fx.users}; write ${root}; sys systemMemoryInfo;`;
      ok(stdout.includes(sandbox), stdout);
      const port = /Serving on 127\.0\.0\.1:(\d+)/.exec(stdout)![1];
      const toCompiled = await run(binary, ["put", source, "up.bin"], { ...env, DFOS_SERVER: `127.0.0.1:${port}` });
      strictEqual(toCompiled.code, 0, toCompiled.stderr);
      strictEqual(await sha256File(join(root, "alice", "up.bin")), sha256(data));
    } finally {
      server.kill("SIGTERM");
    }
    const [status] = await Promise.all([server.status, reading, stderr]);
    strictEqual(status.code, 0, stdout + await stderr);
  },
});
