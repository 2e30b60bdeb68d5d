/**
 * What `deno task serve` runs: `dfos serve` (main.ts) with the task's flags,
 * as a child process under deno.json's `serve` permission set, and a relay
 * for the signals that should stop it. SIGINT, SIGTERM and SIGHUP received
 * here are passed on; and when this was started through `npx`/`npm exec`
 * and npm is gone (npm does not pass a SIGTERM on: tools/launch_chain.ts),
 * the server gets a SIGTERM, so the PID a shell or supervisor holds for the
 * README's command stops the server gracefully. Exits with the server's code.
 *
 * This process runs with every permission (Deno lets only such a process
 * read another's `/proc` entry); it never touches a connection or a file of
 * the server's: the server runs with the set's permissions and narrows
 * itself in its sandbox (server/sandbox.ts).
 *
 *     deno task serve --port 6000 --root /srv/dfos
 *
 * @module
 */

import { fileURLToPath } from "node:url";
import { watchLaunchChain } from "./launch_chain.ts";

/** The signals passed on to the server. */
const RELAYED: Deno.Signal[] = ["SIGINT", "SIGTERM", "SIGHUP"];

/**
 * Runs `main.ts serve ARGS` under the `serve` permission set, passes signals
 * on, and returns its exit code.
 *
 * @param args The flags for `dfos serve`.
 * @returns The server's exit code (128 + the signal's number if a signal ended it).
 */
export async function serveTask(args: string[]): Promise<number> {
  const config = fileURLToPath(new URL("../deno.json", import.meta.url));
  const main = fileURLToPath(new URL("../main.ts", import.meta.url));
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--quiet", "--no-prompt", `--config=${config}`, "--permission-set=serve", main, "serve", ...args],
    stdin: "inherit",
    stdout: "inherit",
    stderr: "inherit",
  }).spawn();
  const relays = RELAYED.map((signal) => {
    const relay = () => {
      try {
        child.kill(signal);
      } catch {
        // It has ended already.
      }
    };
    Deno.addSignalListener(signal, relay);
    return { signal, relay };
  });
  const unwatch = watchLaunchChain(() => {
    try {
      child.kill("SIGTERM");
    } catch {
      // It has ended already.
    }
  });
  const status = await child.status;
  unwatch();
  for (const { signal, relay } of relays) Deno.removeSignalListener(signal, relay);
  return status.signal === null ? status.code : 128 + signalNumber(status.signal);
}

function signalNumber(signal: Deno.Signal): number {
  return ({ SIGHUP: 1, SIGINT: 2, SIGKILL: 9, SIGTERM: 15 } as Record<string, number>)[signal] ?? 0;
}

if (import.meta.main) {
  Deno.exit(await serveTask(Deno.args));
}
