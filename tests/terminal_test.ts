/**
 * The CLI on a real terminal: a pseudo-terminal from util-linux `script`
 * (`bsdutils`, part of every Debian), so that standard input is a terminal
 * as when a person types.
 *
 * @module
 */

import { ok, strictEqual } from "node:assert/strict";
import { startServer, USERS } from "./_fixture.ts";
import { runOnTerminal } from "./_terminal.ts";

/** Runs `dfos ARGS` under a pseudo-terminal; types `password` once the prompt has appeared. */
function onTerminal(args: string[], env: Record<string, string>, password: string) {
  return runOnTerminal(args, {
    env,
    answers: [{ after: "Password for", type: `${password}\r` }],
    closeAfterLast: true,
  });
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
