/**
 * The CLI on a real terminal: a pseudo-terminal from util-linux `script`
 * (`bsdutils`, part of every Debian), so that standard input is a terminal
 * as when a person types.
 *
 * @module
 */

import { ok, strictEqual } from "node:assert/strict";
import { MAIN, startServer, USERS } from "./_fixture.ts";

const decoder = new TextDecoder();

/** Runs `dfos ARGS` under a pseudo-terminal; types `password` once the prompt has appeared. */
async function onTerminal(args: string[], env: Record<string, string>, password: string) {
  const line = [Deno.execPath(), "run", "-A", MAIN, ...args].map((word) => `'${word}'`).join(" ");
  const child = new Deno.Command("script", {
    args: ["-qec", line, "/dev/null"],
    env: { ...env, PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin", RUST_BACKTRACE: "0", NO_COLOR: "1", TERM: "dumb" },
    clearEnv: true,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  let screen = "";
  const reader = child.stdout.getReader();
  const deadline = Date.now() + 20_000;
  let typed = false;
  while (Date.now() < deadline) {
    const { value, done } = await reader.read();
    if (done) break;
    screen += decoder.decode(value, { stream: true });
    if (!typed && screen.includes("Password for")) {
      // Give the client a moment to switch the terminal to raw mode after printing the prompt.
      await new Promise((resolve) => setTimeout(resolve, 300));
      await writer.write(new TextEncoder().encode(`${password}\r`));
      await writer.close();
      typed = true;
    }
  }
  reader.releaseLock();
  if (!typed) await writer.close().catch(() => {});
  const status = await child.status;
  await child.stderr.cancel();
  return { code: status.code, screen };
}

Deno.test("dfos asks for the password on a terminal without echoing it", async () => {
  await using fx = await startServer();
  const env = { DFOS_SERVER: fx.address, DFOS_USER: "alice" };
  const right = await onTerminal(["ls"], env, USERS.alice);
  ok(right.screen.includes(`Password for alice@${fx.address}: `), right.screen);
  ok(!right.screen.includes(USERS.alice), `the password was echoed: ${JSON.stringify(right.screen)}`);
  strictEqual(right.code, 0, right.screen);
  // A wrong password is asked again: tests/login_terminal_test.ts.
});
