/**
 * What `deno task install` runs: puts a `dfos` command in `~/.local/bin` that
 * works on its own, whatever happens to npm's cache or to this checkout.
 *
 * - The Deno binary running this is copied to `~/.local/share/dfos/deno`
 *   (from npx it lives in npm's cache, which `npm cache clean` or removing
 *   `~/.npm/_npx` takes away).
 * - The program is copied, not linked: `main.ts`, `client/`, `server/`,
 *   `shared/`, `deno.json` and `deno.lock` go to `~/.local/share/dfos/app/`.
 *   Moving or deleting the checkout does not break the command; run the task
 *   again to install a newer checkout.
 * - Its npm dependencies are fetched into `~/.local/share/dfos/cache/` (its
 *   own `DENO_DIR`), checked against the lock file.
 * - `~/.local/bin/dfos` is a shell script that `exec`s that Deno on that copy
 *   (so signals reach `dfos serve` itself).
 *
 * `DFOS_INSTALL_HOME` (default `$HOME/.local`) changes where all of it goes.
 *
 *     npx -y deno@2.9.6 task install
 *
 * @module
 */

import { fileURLToPath } from "node:url";
import { join } from "node:path";

/** What is copied from the checkout: the program and its configuration. */
const PROGRAM = ["main.ts", "deno.json", "deno.lock", "client", "server", "shared"];

/**
 * Installs dfos and returns the lines to print.
 *
 * @param prefix Where `bin/` and `share/dfos/` go (`~/.local`).
 * @returns What was installed, where, and how to reach it.
 */
export async function install(prefix: string): Promise<string[]> {
  const checkout = fileURLToPath(new URL("..", import.meta.url));
  const home = join(prefix, "share", "dfos");
  const bin = join(prefix, "bin");
  const app = join(home, "app");
  const deno = join(home, "deno");
  const cache = join(home, "cache");
  await Deno.mkdir(bin, { recursive: true });
  await Deno.mkdir(home, { recursive: true });
  // Replace, never write into, a binary that may be running: copy beside it, then rename.
  await Deno.copyFile(Deno.execPath(), `${deno}.new`);
  await Deno.chmod(`${deno}.new`, 0o755);
  await Deno.rename(`${deno}.new`, deno);
  await Deno.remove(`${app}.new`, { recursive: true }).catch(() => {});
  await Deno.mkdir(`${app}.new`);
  for (const name of PROGRAM) await copy(join(checkout, name), join(`${app}.new`, name));
  await Deno.remove(app, { recursive: true }).catch(() => {});
  await Deno.rename(`${app}.new`, app);
  const cached = await new Deno.Command(deno, {
    args: ["install", "--quiet", `--config=${join(app, "deno.json")}`, "--entrypoint", join(app, "main.ts")],
    env: { DENO_DIR: cache, DENO_NO_UPDATE_CHECK: "1" },
    stdout: "inherit",
    stderr: "inherit",
  }).output();
  if (!cached.success) throw new Error(`Cannot fetch the npm dependencies of dfos into "${cache}"`);
  const script = `#!/bin/sh
# dfos, installed by "deno task install" from ${checkout} (a copy of it: run the task again to update)
DENO_DIR='${cache}' DENO_NO_UPDATE_CHECK=1 exec '${deno}' run --quiet --allow-all --config='${
    join(app, "deno.json")
  }' '${join(app, "main.ts")}' "$@"
`;
  const command = join(bin, "dfos");
  await Deno.writeTextFile(`${command}.new`, script, { mode: 0o755 });
  await Deno.chmod(`${command}.new`, 0o755);
  await Deno.rename(`${command}.new`, command);
  const lines = [`Installed dfos in ${command} (Deno and the program in ${home})`];
  const path = (Deno.env.get("PATH") ?? "").split(":");
  if (!path.includes(bin)) {
    lines.push(
      `${bin} is not on your PATH: add it with`,
      `    echo 'export PATH="${bin}:$PATH"' >> ~/.profile && . ~/.profile`,
    );
  }
  lines.push(`Try: dfos --version`);
  return lines;
}

/** Copies a file or a folder (recursively), leaving out test files. */
async function copy(from: string, to: string): Promise<void> {
  const info = await Deno.stat(from);
  if (info.isFile) return await Deno.copyFile(from, to);
  await Deno.mkdir(to);
  for await (const entry of Deno.readDir(from)) {
    if (entry.isFile && entry.name.endsWith("_test.ts")) continue;
    await copy(join(from, entry.name), join(to, entry.name));
  }
}

if (import.meta.main) {
  const home = Deno.env.get("HOME");
  const prefix = Deno.env.get("DFOS_INSTALL_HOME") ?? (home === undefined ? undefined : join(home, ".local"));
  if (prefix === undefined) {
    console.error("dfos install: HOME is not set: set it, or DFOS_INSTALL_HOME");
    Deno.exit(1);
  }
  try {
    console.log((await install(prefix)).join("\n"));
  } catch (error) {
    console.error(`dfos install: ${(error as Error).message}`);
    Deno.exit(1);
  }
}
