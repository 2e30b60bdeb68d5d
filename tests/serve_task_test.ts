/**
 * The README's serve command, exactly: `npx -y deno@2.9.6 task serve` with
 * flags, started in the background as a shell would, then a SIGTERM to the
 * PID the shell holds (npm's). The server must take every flag through the
 * task and stop gracefully: its totals line in the log, the port free, no
 * process of it left.
 *
 * @module
 */

import { ok } from "node:assert/strict";
import { join } from "node:path";
import { delay, freePort, PROJECT_DIR, USERS, waitFor } from "./_fixture.ts";

/** The README's serve command, before the flags. */
const README_SERVE = ["npx", "-y", "deno@2.9.6", "task", "serve"];

/** The PIDs of processes whose command line contains `marker`. */
function processesWith(marker: string): number[] {
  const found: number[] = [];
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      const command = Deno.readTextFileSync(`/proc/${entry.name}/cmdline`).split("\0").join(" ");
      if (command.includes(marker)) found.push(Number(entry.name));
    } catch {
      // Gone meanwhile.
    }
  }
  return found;
}

/** True when something listens on 127.0.0.1:`port`. */
async function listening(port: number): Promise<boolean> {
  try {
    (await Deno.connect({ hostname: "127.0.0.1", port })).close();
    return true;
  } catch {
    return false;
  }
}

Deno.test({
  name: "npx -y deno@2.9.6 task serve --port --root ...: takes its flags and a SIGTERM to npx stops it gracefully",
  ignore: Deno.build.os !== "linux",
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "dfos_serve_task_" });
    const root = join(dir, "srv");
    const log = join(dir, "server.log");
    const users = join(dir, "users.txt");
    await Deno.writeTextFile(users, `alice:${USERS.alice}\n`);
    const port = await freePort();
    const flags = ["--port", String(port), "--root", root, "--users", users, "--log", log];
    const child = new Deno.Command(README_SERVE[0], {
      args: [...README_SERVE.slice(1), ...flags],
      cwd: PROJECT_DIR,
      env: { NO_COLOR: "1", RUST_BACKTRACE: "0" },
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
    try {
      await waitFor(async () => await listening(port), `the server to listen on port ${port}`, 60_000);
      ok(processesWith(root).length >= 2, "deno task's launcher and the server run");
      // The server takes its port before it logs anything (server/server.ts): its line may come a moment later.
      const serving = async () => (await Deno.readTextFile(log)).includes(`Serving on 127.0.0.1:${port}`);
      await waitFor(serving, "the server's start-up line", 10_000);
      // What `kill -TERM $!` does: the signal goes to npx (npm exec) alone.
      child.kill("SIGTERM");
      await child.status;
      await waitFor(() => processesWith(root).length === 0, "every process of the server to end", 20_000);
      ok(!await listening(port), `port ${port} is free`);
      const final = await Deno.readTextFile(log);
      ok(/SIGTERM: shutting down/.test(final), final);
      ok(/Shut down\. Totals: /.test(final), final);
    } finally {
      for (const pid of processesWith(root)) Deno.kill(pid, "SIGKILL");
      try {
        child.kill("SIGKILL");
      } catch {
        // It has ended.
      }
      await child.status;
      await delay(0);
      await Deno.remove(dir, { recursive: true });
    }
  },
});
