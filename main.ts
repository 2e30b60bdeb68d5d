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
import { type CommandPermissions, dropPermissions } from "./shared/permissions.ts";
import config from "./deno.json" with { type: "json" };
import { CLIENT_COMMANDS, type ClientCommandName } from "./client/command_table.ts";

/** One subcommand: what it does, where it lives, and the permissions it keeps. */
export interface CommandRow {
  /** The line `dfos --help` shows for it. */
  summary: string;
  /** Loads its module (only when it runs). */
  load: () => Promise<{ command: Command }>;
  /**
   * The permission kinds it keeps; the process drops every other kind before
   * the command runs (shared/permissions.ts).
   */
  permissions: CommandPermissions;
}

/**
 * What each client command keeps. Client commands keep the environment, and
 * read access for a `--ca` file, only until their connection options are
 * read: `put` keeps read (the files it sends, and whether a REMOTE is also a
 * local path), `get` read and write (the files it saves, through a temporary
 * file and a rename, which Deno counts as both, and the folders of `-r`),
 * `peek`, `rm`, `mv`, `stat` and `ls` nothing but the network; `push` and
 * `pull` read and write (the folder synced, the state file of
 * client/sync/state.ts), and `sync` the same, with the host name (system
 * information) until the options are read, for its conflict copies. None keeps
 * subprocesses, FFI, system information or remote imports. The commands
 * themselves, their usage and flags, are client/command_table.ts's: a row is
 * needed here for each (the type says so).
 */
const CLIENT_PERMISSIONS: Readonly<Record<ClientCommandName, CommandPermissions>> = {
  put: { keep: ["read", "net"], untilOptionsRead: ["env"] },
  get: { keep: ["read", "write", "net"], untilOptionsRead: ["env"] },
  peek: { keep: ["net"], untilOptionsRead: ["env", "read"] },
  rm: { keep: ["net"], untilOptionsRead: ["env", "read"] },
  mv: { keep: ["net"], untilOptionsRead: ["env", "read"] },
  stat: { keep: ["net"], untilOptionsRead: ["env", "read"] },
  ls: { keep: ["net"], untilOptionsRead: ["env", "read"] },
  push: { keep: ["read", "write", "net"], untilOptionsRead: ["env"] },
  pull: { keep: ["read", "write", "net"], untilOptionsRead: ["env"] },
  sync: { keep: ["read", "write", "net"], untilOptionsRead: ["env", "sys"] },
};

/** The row of a client command: its module and client/command_line.ts, loaded when it runs. */
function clientRow(name: ClientCommandName): CommandRow {
  const { summary, usage, options, load } = CLIENT_COMMANDS[name];
  return {
    summary,
    permissions: CLIENT_PERMISSIONS[name],
    load: async () => {
      const [{ run }, { runOnCommandLine }] = await Promise.all([load(), import("./client/command_line.ts")]);
      return { command: { usage, options, run: (args) => runOnCommandLine(run, args) } };
    },
  };
}

/** The subcommands: the server's, then the client's (client/command_table.ts). */
export const COMMANDS: Readonly<Record<string, CommandRow>> = {
  serve: {
    summary: "run the server",
    load: () => import("./server/serve_command.ts"),
    // The process around the server's sandbox: it grants the worker its part of these, and reads the TLS files
    // and writes the log itself; the environment only until an S3 bucket's credentials are read (AWS_*).
    permissions: { keep: ["read", "write", "net", "sys"], untilOptionsRead: ["env"] },
  },
  passwd: {
    summary: "set a user's password in the users file, hashed",
    load: () => import("./server/passwd_command.ts"),
    // The users file (and its temporary beside it), and DFOS_PASSWORD.
    permissions: { keep: ["read", "write", "env"], untilOptionsRead: [] },
  },
  ...Object.fromEntries(
    (Object.keys(CLIENT_COMMANDS) as ClientCommandName[]).map((name) => [name, clientRow(name)]),
  ),
  shell: {
    summary: "log in once and run commands at a prompt (or from a batch file)",
    load: () => import("./client/shell/shell_command.ts"),
    // What every client command keeps between them: the files put reads and get writes (lcd, lls, the history
    // file too), the network; the environment only until the options (and the history's place) are read.
    permissions: { keep: ["read", "write", "net"], untilOptionsRead: ["env"] },
  },
};

const USAGE = `Usage: dfos COMMAND [options]

Commands:
${Object.entries(COMMANDS).map(([name, { summary }]) => `  ${name.padEnd(8)}${summary}`).join("\n")}

Run "dfos help COMMAND" (or "dfos COMMAND --help") for a command's options,
"dfos --version" for the version.
Exit codes: 0 success, 1 failure, 2 usage error, 3 authentication failed, 4 remote file not found.`;

/**
 * Runs the command line and returns the exit code. Before a command runs, the
 * process gives up the permissions that command never needs (its row in
 * {@linkcode COMMANDS}), for good: call it once per process.
 *
 * @param args The arguments after the program name.
 * @returns The exit code.
 */
export async function main(args: string[]): Promise<number> {
  const [name, ...rest] = args;
  if (name === "help" && rest.length > 0) return await help(rest);
  // A person at a terminal gets the shell; a script that forgot its command, the usage and exit code 2.
  if (name === undefined && Deno.stdin.isTerminal()) return await main(["shell"]);
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    console.log(USAGE);
    return name === undefined ? 2 : 0;
  }
  if (name === "--version" || name === "-V") {
    console.log(`dfos ${config.version}`);
    return 0;
  }
  const entry = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (entry === undefined) {
    console.error(`dfos: unknown command "${name}"\n\n${USAGE}`);
    return 2;
  }
  const { command } = await entry.load();
  const verbose = rest.includes("--verbose") || rest.includes("-v");
  try {
    const parsed = await parseCommandArgs(command, rest);
    if (parsed.values.help) {
      console.log(command.usage);
      return 0;
    }
    // Each command gives up what it never needs (its row above): put cannot write, ls cannot read.
    dropPermissions(entry.permissions);
    await command.run(parsed);
    return 0;
  } catch (error) {
    // The server gone mid-write shows as the OS's EPIPE/ECONNRESET: said as when it is seen mid-read.
    const gone = error instanceof Deno.errors.BrokenPipe || error instanceof Deno.errors.ConnectionReset;
    const message = gone ? "Connection closed by the peer" : error instanceof Error ? error.message : String(error);
    console.error(`dfos ${name}: ${message}`);
    if (error instanceof UsageError) console.error(`Run "dfos ${name} --help" for usage.`);
    else if (verbose && error instanceof Error) console.error(error.stack);
    return exitCodeFor(error);
  }
}

/** `dfos help COMMAND`: the text of `dfos COMMAND --help`, exit 0; an unknown or second name is a usage error. */
async function help(names: string[]): Promise<number> {
  const [name] = names;
  if (names.length > 1 || !Object.hasOwn(COMMANDS, name)) {
    const what = names.length > 1 ? `help takes one COMMAND, got ${names.length}` : `unknown command "${name}"`;
    console.error(`dfos: ${what}\n\n${USAGE}`);
    return 2;
  }
  const { command } = await COMMANDS[name].load();
  console.log(command.usage);
  return 0;
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
