/**
 * The `dfos` command line: one entry point for the server and the client.
 * It only picks the subcommand, loads its module (so a command pays the
 * start-up cost of nothing it does not use), parses its flags and maps what
 * it throws to an exit code. Each command drops the permissions it does not
 * need before it runs, and `serve` runs the server in a sandbox of its own
 * (docs/SECURITY.md, "The runtime's permissions").
 *
 *     deno run -A main.ts serve
 *     deno run -A main.ts put report.pdf
 *
 * @module
 */

import { type Command, exitCodeFor, parseCommandArgs, UsageError } from "./shared/cli.ts";
import { dropPermissions } from "./shared/command_permissions.ts";

/** The subcommands, each loaded only when it runs. */
const COMMANDS: Record<string, { summary: string; load: () => Promise<{ command: Command }> }> = {
  serve: { summary: "run the server", load: () => import("./server/serve_command.ts") },
  passwd: {
    summary: "set a user's password in the users file, hashed",
    load: () => import("./server/passwd_command.ts"),
  },
  put: { summary: "upload a file (or standard input)", load: () => import("./client/put.ts") },
  get: { summary: "download a file (or to standard output)", load: () => import("./client/get.ts") },
  peek: { summary: "show the first bytes of a file", load: () => import("./client/peek.ts") },
  rm: { summary: "delete files", load: () => import("./client/rm.ts") },
  ls: { summary: "list files", load: () => import("./client/ls.ts") },
};

const USAGE = `Usage: dfos COMMAND [options]

Commands:
${Object.entries(COMMANDS).map(([name, { summary }]) => `  ${name.padEnd(8)}${summary}`).join("\n")}

Run "dfos COMMAND --help" for a command's options.
Exit codes: 0 success, 1 failure, 2 usage error, 3 authentication failed, 4 remote file not found.`;

/**
 * Runs the command line and returns the exit code. Before a command runs, the
 * process gives up the permissions that command never needs
 * (shared/command_permissions.ts), for good: call it once per process.
 *
 * @param args The arguments after the program name.
 * @returns The exit code.
 */
export async function main(args: string[]): Promise<number> {
  const [name, ...rest] = args;
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    console.log(USAGE);
    return name === undefined ? 2 : 0;
  }
  const entry = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (entry === undefined) {
    console.error(`dfos: unknown command "${name}"\n\n${USAGE}`);
    return 2;
  }
  const { command } = await entry.load();
  const verbose = rest.includes("--verbose") || rest.includes("-v");
  try {
    const parsed = parseCommandArgs(command, rest);
    if (parsed.values.help) {
      console.log(command.usage);
      return 0;
    }
    // Each command gives up what it never needs (shared/command_permissions.ts): put cannot write, ls cannot read.
    dropPermissions(name);
    await command.run(parsed);
    return 0;
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    console.error(`dfos ${name}: ${message}`);
    if (error instanceof UsageError) console.error(`Run "dfos ${name} --help" for usage.`);
    else if (verbose && error instanceof Error) console.error(error.stack);
    return exitCodeFor(error);
  }
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
