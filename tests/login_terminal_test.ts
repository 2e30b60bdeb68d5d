/**
 * Logging in from a real terminal (a pseudo-terminal from util-linux
 * `script`, as in tests/terminal_test.ts): the client connects and says HELLO
 * before it asks for the password, asks again on the same connection after a
 * wrong one, exits 130 on Ctrl-C at the prompt, says when the server held its
 * answer, and sends what was typed again on a new connection when the server
 * gave up waiting while the prompt was up.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { match, ok, strictEqual } from "node:assert/strict";
import type { LoginThrottleOptions } from "../server/throttle.ts";
import { freePort, memoryLog, startServer, USERS } from "./_fixture.ts";
import { occurrences, runOnTerminal } from "./_terminal.ts";
import { Peer } from "./_peer.ts";

const PROMPT = "Password for";

/**
 * Runs `dfos ARGS` under a pseudo-terminal and types `inputs[i]` once the
 * password prompt has appeared for the (i+1)-th time.
 *
 * @returns The exit code, what the terminal showed, and how many prompts appeared.
 */
async function onTerminal(args: string[], env: Record<string, string>, inputs: string[], typeDelayMs = 300) {
  const answers = inputs.map((type) => ({ after: PROMPT, type }));
  const { code, screen } = await runOnTerminal(args, { env, answers, typeDelayMs, closeAfterLast: true });
  return { code, screen, prompts: occurrences(screen, PROMPT) };
}

Deno.test("login on a terminal: a wrong password is asked again on the same connection", async () => {
  await using fx = await startServer();
  const env = { DFOS_SERVER: fx.address, DFOS_USER: "alice" };
  const run = await onTerminal(["ls"], env, ["not-it\r", `${USERS.alice}\r`]);
  strictEqual(run.code, 0, run.screen);
  strictEqual(run.prompts, 2, run.screen);
  match(run.screen, /Authentication failed: unknown user or wrong password \(2 attempts left\)/);
  ok(!run.screen.includes("not-it") && !run.screen.includes(USERS.alice), `a password was echoed: ${run.screen}`);
  strictEqual(fx.server.stats.snapshot().connections, 1, "one connection for both attempts");
});

Deno.test("login on a terminal: three wrong passwords end with exit code 3, asked three times", async () => {
  await using fx = await startServer();
  const env = { DFOS_SERVER: fx.address, DFOS_USER: "alice" };
  const run = await onTerminal(["ls"], env, ["one\r", "two\r", "three\r"]);
  strictEqual(run.code, 3, run.screen);
  strictEqual(run.prompts, 3, run.screen);
  match(run.screen, /wrong password; closing the connection/);
  strictEqual(fx.server.stats.snapshot().connections, 1, "one connection for the three attempts");
});

Deno.test("login on a terminal: with the server down there is no prompt, and the error says why", async () => {
  const port = await freePort();
  const run = await onTerminal(["ls"], { DFOS_SERVER: `127.0.0.1:${port}`, DFOS_USER: "alice" }, [
    "typed-for-nothing\r",
  ]);
  strictEqual(run.prompts, 0, run.screen);
  strictEqual(run.code, 1, run.screen);
  match(run.screen, new RegExp(`Cannot connect to 127\\.0\\.0\\.1:${port}: connection refused`));
});

Deno.test("login on a terminal: Ctrl-C at the password prompt exits 130 without a usage hint", async () => {
  await using fx = await startServer();
  const run = await onTerminal(["ls"], { DFOS_SERVER: fx.address, DFOS_USER: "alice" }, ["\x03"]);
  strictEqual(run.code, 130, run.screen);
  ok(!run.screen.includes("--help"), run.screen);
});

/** 2 free failures, then 200 ms, 400 ms; no lockout within the test. */
const SMALL: LoginThrottleOptions = {
  freeFailures: 2,
  delayBaseMs: 200,
  delayMaxMs: 400,
  lockoutFailures: 50,
  lockoutMs: 60_000,
};

Deno.test("login on a terminal: a login the server held after failed logins says so", async () => {
  await using log = await memoryLog();
  await using fx = await startServer({ log: getLogger(["dfos-test", "server"]), loginThrottle: SMALL });
  for (let i = 0; i < 3; i++) {
    const peer = await Peer.open(fx);
    await peer.hello();
    strictEqual((await peer.scram("alice", `wrong-${i}`)).type, "error");
    peer.abort();
  }
  const run = await onTerminal(["ls"], { DFOS_SERVER: fx.address, DFOS_USER: "alice" }, [`${USERS.alice}\r`]);
  strictEqual(run.code, 0, run.screen);
  const held = /Login answer held (\d+) ms by the server after failed logins/.exec(run.screen);
  ok(held !== null, run.screen);
  ok(log.lines().some((line) => line.includes(`answer held ${held[1]} ms`)), log.lines().join("\n"));
});

Deno.test("login on a terminal: a password typed after the server's handshake timeout is sent on a new connection", async () => {
  await using fx = await startServer({ handshakeTimeoutMs: 500 });
  const env = { DFOS_SERVER: fx.address, DFOS_USER: "alice" };
  const run = await onTerminal(["ls"], env, [`${USERS.alice}\r`], 1_500);
  strictEqual(run.code, 0, run.screen);
  strictEqual(run.prompts, 1, run.screen);
  strictEqual(fx.server.stats.snapshot().connections, 2, "the second connection logged in without asking");
});
