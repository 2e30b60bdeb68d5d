/**
 * Exposure, tried from a real other address: a network namespace joined to
 * this one by a veth pair (addresses 10.77.N.1 here and 10.77.N.2 there).
 * Needs root and `ip` (iproute2); skipped with a message otherwise.
 *
 * - `dfos serve` on its default host cannot be reached from the namespace.
 * - On `--host 0.0.0.0`, a user whose password is stored in clear is refused
 *   from the namespace (AUTH_FAILED saying to hash it, exit 3) and accepted
 *   from loopback; a hashed user logs in from both; the server warns at start.
 *
 * @module
 */

import { match, ok, strictEqual } from "node:assert/strict";
import { join } from "node:path";
import { freePort, MAIN, runCli, waitForPort } from "./_fixture.ts";

/** Runs `ip ARGS`; throws with its error output when it fails. */
async function ip(...args: string[]): Promise<void> {
  const output = await new Deno.Command("ip", { args, stdout: "null", stderr: "piped" }).output();
  if (!output.success) throw new Error(`ip ${args.join(" ")}: ${new TextDecoder().decode(output.stderr)}`);
}

/** Why the test cannot run here, or null. */
async function missing(): Promise<string | null> {
  if (Deno.build.os !== "linux") return "not Linux";
  if (Deno.uid() !== 0) return "not root (a network namespace needs root)";
  try {
    await new Deno.Command("ip", { args: ["-V"], stdout: "null", stderr: "null" }).output();
  } catch {
    return '"ip" (iproute2) is not installed';
  }
  return null;
}

/** A namespace with a veth pair to this one; removed on dispose. */
async function otherHost(): Promise<{ here: string; there: string; ns: string } & AsyncDisposable> {
  const id = crypto.getRandomValues(new Uint8Array(2));
  const tag = [...id].map((byte) => byte.toString(16).padStart(2, "0")).join("");
  const ns = `dfos_${tag}`;
  const subnet = `10.77.${id[0]}`;
  await ip("netns", "add", ns);
  const dispose = async () => {
    await ip("link", "del", `dfa${tag}`).catch(() => {});
    await ip("netns", "del", ns).catch(() => {});
  };
  try {
    await ip("link", "add", `dfa${tag}`, "type", "veth", "peer", "name", `dfb${tag}`);
    await ip("link", "set", `dfb${tag}`, "netns", ns);
    await ip("addr", "add", `${subnet}.1/24`, "dev", `dfa${tag}`);
    await ip("link", "set", `dfa${tag}`, "up");
    await ip("netns", "exec", ns, "ip", "addr", "add", `${subnet}.2/24`, "dev", `dfb${tag}`);
    await ip("netns", "exec", ns, "ip", "link", "set", `dfb${tag}`, "up");
    await ip("netns", "exec", ns, "ip", "link", "set", "lo", "up");
  } catch (error) {
    await dispose();
    throw error;
  }
  return { here: `${subnet}.1`, there: `${subnet}.2`, ns, [Symbol.asyncDispose]: dispose };
}

/** Runs the CLI in the namespace `ns`. */
async function cliThere(ns: string, args: string[], env: Record<string, string>) {
  const output = await new Deno.Command("ip", {
    args: ["netns", "exec", ns, Deno.execPath(), "run", "-A", MAIN, ...args],
    env: { ...env, NO_COLOR: "1", RUST_BACKTRACE: "0", DENO_NO_UPDATE_CHECK: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  return {
    code: output.code,
    stdout: new TextDecoder().decode(output.stdout),
    stderr: new TextDecoder().decode(output.stderr),
  };
}

/** Starts `dfos serve` on a free port with `flags` and a users file of `lines`; resolves once it accepts on loopback. */
async function startServe(flags: string[], lines: string) {
  const port = freePort();
  const dir = await Deno.makeTempDir({ prefix: "dfos_net_" });
  const users = join(dir, "users.txt");
  const log = join(dir, "server.log");
  await Deno.writeTextFile(users, lines);
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      MAIN,
      "serve",
      "--port",
      String(port),
      "--root",
      join(dir, "root"),
      "--users",
      users,
      "--log",
      log,
      ...flags,
    ],
    env: { NO_COLOR: "1", RUST_BACKTRACE: "0" },
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  const stop = async () => {
    child.kill("SIGTERM");
    await child.status;
    await Deno.remove(dir, { recursive: true });
  };
  try {
    await waitForPort(port, "dfos serve to listen", 15_000);
  } catch (error) {
    await stop();
    throw error;
  }
  return { port, users, log, [Symbol.asyncDispose]: stop };
}

const why = await missing();
if (why !== null) console.log(`network_test.ts skipped: ${why}`);

Deno.test({
  name: "dfos serve on its default host cannot be reached from another address",
  ignore: why !== null,
  async fn() {
    await using other = await otherHost();
    // No --host: the default.
    await using serve = await startServe([], "alice:wonderland\n");
    const port = serve.port;
    {
      const env = { DFOS_SERVER: `${other.here}:${port}`, DFOS_USER: "alice", DFOS_PASSWORD: "wonderland" };
      const there = await cliThere(other.ns, ["ls"], env);
      strictEqual(there.code, 1, there.stderr);
      match(there.stderr, /refused|Connection/i);
      const here = await runCli(["ls"], { env: { ...env, DFOS_SERVER: `127.0.0.1:${port}` } });
      strictEqual(here.code, 0, here.stderr);
    }
  },
});

Deno.test({
  name: "dfos serve --host 0.0.0.0 accepts a password stored in clear from loopback only, a hashed one from anywhere",
  ignore: why !== null,
  async fn() {
    await using other = await otherHost();
    // bob hashed, as dfos passwd writes him; alice in clear.
    await using serve = await startServe(["--host", "0.0.0.0"], "alice:wonderland\nbob:x\n");
    const passwd = await runCli(["passwd", "bob", "--users", serve.users], { env: { DFOS_PASSWORD: "builder-0" } });
    strictEqual(passwd.code, 0, passwd.stderr);
    {
      const server = `${other.here}:${serve.port}`;
      const alice = await cliThere(other.ns, ["ls"], {
        DFOS_SERVER: server,
        DFOS_USER: "alice",
        DFOS_PASSWORD: "wonderland",
      });
      strictEqual(alice.code, 3, alice.stderr);
      match(alice.stderr, /stored in clear on the server.*dfos passwd alice/);
      const bob = await cliThere(other.ns, ["ls"], {
        DFOS_SERVER: server,
        DFOS_USER: "bob",
        DFOS_PASSWORD: "builder-0",
      });
      strictEqual(bob.code, 0, bob.stderr);
      const local = await runCli(["ls"], {
        env: { DFOS_SERVER: `127.0.0.1:${serve.port}`, DFOS_USER: "alice", DFOS_PASSWORD: "wonderland" },
      });
      strictEqual(local.code, 0, local.stderr);
      const text = await Deno.readTextFile(serve.log);
      ok(/Listening on 0\.0\.0\.0, beyond this host, with passwords stored in clear for "alice"/.test(text), text);
      ok(
        text.includes(`Login of "alice" from ${other.there}:`) || text.includes(`Login of alice from ${other.there}:`),
        text,
      );
    }
  },
});
