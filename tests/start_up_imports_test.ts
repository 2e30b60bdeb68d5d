/**
 * A client command loads at start only what every run of it needs: no
 * `node:crypto` or `node:zlib` in the static import graph of a command's
 * module (each costs some 15-20 ms of a process's start, docs/PERFORMANCE.md
 * "Start-up"); the chunk machinery that needs them is imported when a
 * transfer goes by chunks.
 */

import assert from "node:assert/strict";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { PROJECT_DIR } from "./_common.ts";

interface ModuleInfo {
  specifier: string;
  dependencies?: { specifier: string; isDynamic?: boolean; code?: { specifier?: string } }[];
}

Deno.test("client commands import neither node:crypto nor node:zlib at start", async () => {
  const table = await Deno.readTextFile(join(PROJECT_DIR, "client", "command_table.ts"));
  const commands = [...table.matchAll(/import\("\.\/([a-z_]+\.ts)"\)/g)].map((match) => match[1]);
  assert.ok(commands.includes("push.ts") && commands.includes("put.ts"), `commands found: ${commands}`);
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", join(PROJECT_DIR, "main.ts")],
    cwd: PROJECT_DIR,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.ok(output.success, new TextDecoder().decode(output.stderr));
  const modules = new Map<string, ModuleInfo>();
  for (const module of JSON.parse(new TextDecoder().decode(output.stdout)).modules as ModuleInfo[]) {
    modules.set(module.specifier, module);
  }
  for (const command of commands) {
    const start = new URL(`../client/${command}`, import.meta.url).href;
    assert.ok(modules.has(start), `${command} is in the graph`);
    const seen = new Set<string>();
    const stack = [start];
    const heavy: string[] = [];
    while (stack.length > 0) {
      const specifier = stack.pop()!;
      if (seen.has(specifier)) continue;
      seen.add(specifier);
      for (const dependency of modules.get(specifier)?.dependencies ?? []) {
        if (dependency.isDynamic) continue;
        const target = dependency.code?.specifier ?? dependency.specifier;
        if (target === "node:crypto" || target === "node:zlib") {
          heavy.push(`${target} from ${relative(PROJECT_DIR, fileURLToPath(specifier))}`);
        } else if (target.startsWith("file:")) {
          stack.push(target);
        }
      }
    }
    assert.deepEqual(heavy, [], `client/${command} loads at start: ${heavy.join(", ")}`);
  }
});
