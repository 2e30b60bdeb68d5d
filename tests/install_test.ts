/**
 * `npx -y deno@2.9.6 task install` in a fresh HOME (a temporary folder), as
 * the README says: then `dfos --version`, `dfos serve` starting and serving
 * `dfos ls`, and its graceful stop on a SIGTERM; after npm's cache in that
 * HOME is removed, as `npm cache clean` would.
 *
 * @module
 */

import { match, ok, strictEqual } from "node:assert/strict";
import { join } from "node:path";
import { freePort, PROJECT_DIR, USERS, waitFor } from "./_fixture.ts";

/** Runs a command to its end with a bound on its time, and returns its code and output. */
async function run(command: string, args: string[], env: Record<string, string>, timeoutMs: number) {
  const child = new Deno.Command(command, {
    args,
    env,
    cwd: PROJECT_DIR,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  })
    .spawn();
  const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
  const output = await child.output();
  clearTimeout(timer);
  const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
  return { code: output.code, stdout: decode(output.stdout), stderr: decode(output.stderr) };
}

Deno.test({
  name: "deno task install puts a dfos in ~/.local/bin that runs, serves and lists without npm's cache",
  ignore: Deno.build.os !== "linux",
  async fn() {
    const home = await Deno.makeTempDir({ prefix: "dfos_home_" });
    const env = { HOME: home, PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin", NO_COLOR: "1", RUST_BACKTRACE: "0" };
    let server: Deno.ChildProcess | null = null;
    try {
      const installed = await run("npx", ["-y", "deno@2.9.6", "task", "install"], env, 240_000);
      strictEqual(installed.code, 0, installed.stdout + installed.stderr);
      const dfos = join(home, ".local", "bin", "dfos");
      match(installed.stdout, new RegExp(`Installed dfos in ${dfos}`));
      match(installed.stdout, /is not on your PATH: add it with/);
      // What `npm cache clean` and removing ~/.npm/_npx take away.
      await Deno.remove(join(home, ".npm"), { recursive: true }).catch(() => {});

      const version = await run(dfos, ["--version"], env, 30_000);
      strictEqual(version.code, 0, version.stderr);
      match(version.stdout, /^dfos \d+\.\d+\.\d+\n$/);

      const users = join(home, "users.txt");
      const log = join(home, "server.log");
      await Deno.writeTextFile(users, `alice:${USERS.alice}\n`);
      await Deno.mkdir(join(home, "root", "alice"), { recursive: true });
      await Deno.writeTextFile(join(home, "root", "alice", "hello.txt"), "hi\n");
      const port = freePort();
      server = new Deno.Command(dfos, {
        args: ["serve", "--port", String(port), "--root", join(home, "root"), "--users", users, "--log", log],
        env,
        cwd: home,
        stdin: "null",
        stdout: "null",
        stderr: "null",
      }).spawn();
      await waitFor(
        async () => (await Deno.readTextFile(log).catch(() => "")).includes("Serving on"),
        "dfos serve",
        30_000,
      );
      const listed = await run(dfos, ["ls"], {
        ...env,
        DFOS_SERVER: `127.0.0.1:${port}`,
        DFOS_USER: "alice",
        DFOS_PASSWORD: USERS.alice,
      }, 30_000);
      strictEqual(listed.code, 0, listed.stderr);
      match(listed.stdout, /hello\.txt/);
      server.kill("SIGTERM");
      const status = await server.status;
      server = null;
      strictEqual(status.code, 0);
      ok((await Deno.readTextFile(log)).includes("Shut down. Totals: "));
    } finally {
      if (server !== null) {
        server.kill("SIGKILL");
        await server.status;
      }
      await Deno.remove(home, { recursive: true });
    }
  },
});
