/**
 * The README's recipe for a localhost TLS test ("A localhost TLS test"),
 * run as written, so that the README stays true: its openssl commands in a
 * fresh folder holding a copy of the sample users file, its `dfos serve`
 * line started there, then each `dfos ls` line, which must list over TLS.
 * The one change is the port: the server gets a free one (`--port`), and the
 * `ls` lines name it in place of 5000.
 *
 * @module
 */

import { match, ok, strictEqual } from "node:assert/strict";
import { join } from "node:path";
import { freePort, MAIN, PROJECT_DIR } from "./_fixture.ts";

const HEADING = "#### A localhost TLS test";

/** The recipe's commands: its fenced block after the heading, continuation lines joined. */
async function recipe(): Promise<string[]> {
  const readme = await Deno.readTextFile(join(PROJECT_DIR, "README.md"));
  const start = readme.indexOf(HEADING);
  ok(start >= 0, `README.md has no "${HEADING}"`);
  const block = /```\n([\s\S]*?)```/.exec(readme.slice(start));
  ok(block !== null, "the recipe has a fenced block");
  return block[1].replace(/\\\n\s*/g, "").split("\n").filter((line) => line.trim() !== "");
}

/** A shell running `line` in `dir`, with `dfos` the project's command line (as `deno run -A main.ts`). */
function shell(line: string, dir: string, env: Record<string, string> = {}): Deno.Command {
  return new Deno.Command("sh", {
    args: ["-c", `dfos() { exec "$DFOS_DENO" run -A "$DFOS_MAIN" "$@"; }; exec 2>&1; ${line}`],
    cwd: dir,
    env: { DFOS_DENO: Deno.execPath(), DFOS_MAIN: MAIN, NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1", ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "null",
  });
}

Deno.test("the README's localhost TLS recipe makes certificates a TLS server and a client accept", async () => {
  const lines = await recipe();
  const serveLines = lines.filter((line) => line.startsWith("dfos serve "));
  const clientLines = lines.filter((line) => line.startsWith("dfos ") && !line.startsWith("dfos serve "));
  const setup = lines.filter((line) => !line.startsWith("dfos "));
  strictEqual(serveLines.length, 1, "one serve line");
  ok(clientLines.length > 0 && setup.length > 0, lines.join("\n"));
  const dir = await Deno.makeTempDir({ prefix: "dfos_recipe_" });
  try {
    await Deno.copyFile(join(PROJECT_DIR, "id_passwd.txt"), join(dir, "id_passwd.txt"));
    for (const line of setup) {
      const output = await shell(line, dir).output();
      strictEqual(output.code, 0, `${line}\n${new TextDecoder().decode(output.stdout)}`);
    }
    const port = freePort();
    const server = shell(`${serveLines[0].replace(/\s+#.*$/, "")} --port ${port}`, dir).spawn();
    const reader = server.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let said = "";
    try {
      while (!said.includes("Serving TLS on")) {
        const { value, done } = await reader.read();
        ok(!done, `the server stopped: ${said}`);
        said += value;
      }
      // The README's user, as its "export DFOS_USER=alice DFOS_PASSWORD=wonderland" line sets it.
      const env = { DFOS_USER: "alice", DFOS_PASSWORD: "wonderland" };
      for (const line of clientLines) {
        const command = line.replaceAll(":5000", `:${port}`);
        ok(command !== line, `${line} names port 5000`);
        const output = await shell(command, dir, env).output();
        strictEqual(output.code, 0, `${command}\n${new TextDecoder().decode(output.stdout)}`);
      }
    } finally {
      server.kill("SIGTERM");
      const rest = (async () => {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) return;
          said += value;
        }
      })();
      const status = await server.status;
      await rest;
      strictEqual(status.code, 0, said);
    }
    match(said, /Serving TLS on 127\.0\.0\.1:\d+/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
