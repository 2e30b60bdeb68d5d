/**
 * A stand-in for the server's worker (server/sandbox_worker.ts), for
 * tests/sandbox_test.ts: started by `serveInSandbox()` with the very
 * permissions it computes for the server, it tries what the server must be
 * able to do and what it must not, and reports each outcome (`"ok"`,
 * `"NotCapable"`, or another error's name and message) as one log record under `["dfos", "probe"]`, then says it
 * listens and waits to be shut down, as the server would.
 *
 * Internal to tests/: nothing here is part of dfos.
 *
 * @module
 */

import { dirname, join } from "node:path";
import type { FromSandbox, ToSandbox } from "../server/sandbox.ts";

/** A port the probe tries to listen on and connect to, other than its own. */
const OTHER_PORT = 65_432;

interface WorkerScope {
  postMessage(message: FromSandbox): void;
  onmessage: ((event: MessageEvent<ToSandbox>) => void) | null;
}

const scope = globalThis as unknown as WorkerScope;

scope.onmessage = async (event) => {
  const message = event.data;
  if (message.type === "start") {
    const { root, users, hostname = "0.0.0.0", port = 5000 } = message.options;
    const outcomes = await probe(root, users, hostname, port);
    scope.postMessage({
      type: "log",
      record: {
        category: ["dfos", "probe"],
        level: "info",
        message: [JSON.stringify(outcomes)],
        rawMessage: "{}",
        timestamp: Date.now(),
        properties: {},
      },
    });
    scope.postMessage({ type: "listening", addr: { transport: "tcp", hostname, port }, tls: false });
    const stopped = new Int32Array(message.stopped);
    scope.onmessage = () => {
      Atomics.store(stopped, 0, 1);
      Atomics.notify(stopped, 0);
      scope.postMessage({ type: "finished" });
    };
  }
};

/** Tries each thing; the test says which must work. */
async function probe(root: string, users: string, hostname: string, port: number): Promise<Record<string, string>> {
  const outside = join(dirname(root), "outside.txt");
  const checks: Record<string, () => unknown> = {
    "read a file in the root": () => Deno.readTextFileSync(join(root, "alice", "in.txt")),
    "write a file in the root": () => Deno.writeTextFileSync(join(root, "alice", "new.txt"), "new"),
    "read the users file": () => Deno.readTextFileSync(users),
    "write the users file": () => Deno.writeTextFileSync(users, "mallory:x\n", { append: true }),
    "read a file beside the root": () => Deno.readTextFileSync(outside),
    "write a file beside the root": () => Deno.writeTextFileSync(join(dirname(root), "new.txt"), "new"),
    "list the folder above the root": () => [...Deno.readDirSync(dirname(root))],
    "read /etc/passwd": () => Deno.readTextFileSync("/etc/passwd"),
    "read through a symbolic link in the root that leads outside": () => {
      return Deno.readTextFileSync(join(root, "alice", "link-outside"));
    },
    "listen on its own address": () => Deno.listen({ hostname, port }).close(),
    "listen on another port": () => Deno.listen({ hostname, port: OTHER_PORT }).close(),
    "connect to another port": async () => (await Deno.connect({ hostname: "127.0.0.1", port: OTHER_PORT })).close(),
    "read an environment variable": () => Deno.env.get("PATH"),
    "run a program": () => new Deno.Command("true").outputSync(),
    "load a native library": () => Deno.dlopen("libc.so.6", {}).close(),
    "read the system's memory figures": () => Deno.systemMemoryInfo(),
    "read the host name": () => Deno.hostname(),
    "import a remote module": () => import(["https://example.invalid", "probe.ts"].join("/")),
  };
  const outcomes: Record<string, string> = {};
  for (const [what, check] of Object.entries(checks)) {
    try {
      await check();
      outcomes[what] = "ok";
    } catch (error) {
      // NotCapable is Deno's refusal; anything else is told with its message (a refused import is a TypeError).
      outcomes[what] = error instanceof Deno.errors.NotCapable
        ? "NotCapable"
        : `${(error as Error).name}: ${(error as Error).message.split("\n")[0]}`;
    }
  }
  return outcomes;
}
