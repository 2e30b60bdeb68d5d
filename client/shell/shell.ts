/**
 * `dfos shell`: many commands over one logged-in connection, as sftp's
 * prompt offers them. `runShell()` logs in once (asking for the user and the
 * password when they are not given), then reads commands: at a prompt with
 * line editing, completion and history on a terminal, or from a batch file
 * (`-b FILE`) or standard input when it is not a terminal.
 *
 * The client commands are client/command_table.ts's rows, parsed with the
 * same `parseCommandArgs` and run by the same modules as on the command
 * line; only their remote names are read against the remote folder first
 * (client/shell/arguments.ts). The shell's own commands are `cd`, `pwd`,
 * `lcd`, `lls`, `lpwd`, `help` and `exit`.
 *
 * Ctrl-C while a command runs stops it and returns to the prompt: an upload
 * stops its body (the server then discards what it received; the previous
 * version stays), and a command that does not stop by itself within a
 * moment has its connection closed and what it registered to undo (a
 * download's temporary file) undone; the next command logs in again.
 *
 * @module
 */

import { join } from "node:path";
import {
  CommandFailure,
  ExitCode,
  exitCodeFor,
  parseCommandArgs,
  type ParsedArgs,
  UsageError,
} from "../../shared/cli.ts";
import { printableName } from "../../shared/names.ts";
import { INTERRUPTED_EXIT_CODE } from "../../shared/password_prompt.ts";
import { dropOptionPermissions } from "../../shared/permissions.ts";
import { DfosError, Status } from "../../shared/status.ts";
import { CLIENT_COMMANDS, type ClientCommandName, type CommandIo } from "../command_table.ts";
import { connectOptions } from "../options.ts";
import { resolveRemote, shellPositionals } from "./arguments.ts";
import { complete, RemoteListing } from "./completion.ts";
import { History, historyPath } from "./history.ts";
import { INTERRUPTED, TerminalLineReader } from "./line_editor.ts";
import { connectionLost, ShellConnection } from "./shell_connection.ts";
import { splitWords } from "./words.ts";

/** The shell's own commands: usage and summary. */
const SHELL_COMMANDS: Readonly<Record<string, { usage: string; summary: string }>> = {
  cd: { usage: "cd [FOLDER]", summary: 'change the remote folder (".." goes up, none or "/" the top)' },
  pwd: { usage: "pwd", summary: "show the remote folder" },
  lcd: { usage: "lcd [FOLDER]", summary: "change the local folder (none: your home)" },
  lls: { usage: "lls [FOLDER]", summary: "list a local folder" },
  lpwd: { usage: "lpwd", summary: "show the local folder" },
  help: { usage: "help [COMMAND]", summary: "list the commands, or show one's usage" },
  exit: { usage: "exit", summary: "leave the shell (also Ctrl-D)" },
};

/** Client commands that change remote names: the completion listing is read again after them. */
const CHANGES_NAMES = new Set(["put", "rm", "mv", "push"]);

/** Flags of the shell's connection that a command inside it cannot change. */
const CONNECTION_FLAGS = ["server", "user", "tls", "ca"];

/** How long a command may take to stop by itself after Ctrl-C before its connection is closed. */
const STOP_GRACE_MS = 500;

/** A command running, and how to interrupt it. */
interface Running {
  controller: AbortController;
  cleanups: Set<() => void>;
  interrupted: boolean;
  settled: boolean;
}

/**
 * Runs the shell until `exit`, Ctrl-D or the end of the batch.
 *
 * @param args The parsed `dfos shell` command line: connection flags, `--batch FILE`.
 * @throws {CommandFailure} in batch mode, with the exit code of the command that failed.
 */
export async function runShell(args: ParsedArgs): Promise<void> {
  const batchFile = args.values.batch as string | undefined;
  const terminal = Deno.stdin.isTerminal();
  const interactive = batchFile === undefined && terminal;
  const reader = new TerminalLineReader();
  let user = (args.values.user as string | undefined) ?? Deno.env.get("DFOS_USER");
  if (!user && terminal) {
    const typed = await reader.readLine("User: ", { history: [], endOnInterrupt: true });
    if (typed === INTERRUPTED) throw new CommandFailure("Interrupted at the user prompt", INTERRUPTED_EXIT_CODE);
    user = typed?.trim();
  }
  if (!user) throw new UsageError("No user given: use --user NAME or set DFOS_USER");
  const history = await History.load(interactive ? historyPath() : null);
  const home = Deno.env.get("HOME") ?? null;
  const options = await connectOptions({ ...args, values: { ...args.values, user } });
  // DFOS_*, HOME and the history's place are read: the environment goes (main.ts, shared/permissions.ts).
  dropOptionPermissions();
  const shell = new Shell(new ShellConnection(options), { interactive, home, reader });
  try {
    await shell.connection.client();
    if (interactive) await shell.interact(reader, history);
    else await shell.runBatch(batchFile === undefined ? stdinLines() : fileLines(batchFile));
  } finally {
    shell.dispose();
    await shell.connection.close();
  }
}

/** The shell's state: the connection, the remote folder, the command running. */
class Shell {
  readonly connection: ShellConnection;
  readonly #interactive: boolean;
  readonly #home: string | null;
  readonly #listing: RemoteListing;
  readonly #io: ShellIo;
  /** The remote folder: "" for the top, else "a/b". */
  #folder = "";
  #running: Running | null = null;
  readonly #onInterrupt = () => this.#interrupt();
  readonly #onTerminate = () => {
    if (this.#running !== null) runCleanups(this.#running);
    Deno.exit(143);
  };

  constructor(
    connection: ShellConnection,
    options: { interactive: boolean; home: string | null; reader: TerminalLineReader },
  ) {
    this.connection = connection;
    this.#interactive = options.interactive;
    this.#home = options.home;
    this.#listing = new RemoteListing(() => connection.client(), () => connection.drop());
    this.#io = new ShellIo(options.interactive, options.reader, () => this.#running);
    Deno.addSignalListener("SIGINT", this.#onInterrupt);
    Deno.addSignalListener("SIGTERM", this.#onTerminate);
  }

  /** The prompt: `user@server:/folder> `. */
  get prompt(): string {
    return `${printableName(this.connection.user)}@${this.connection.server}:/${printableName(this.#folder)}> `;
  }

  /** Reads commands at the prompt until `exit` or Ctrl-D. */
  async interact(reader: TerminalLineReader, history: History): Promise<void> {
    const commands = [...Object.keys(CLIENT_COMMANDS), ...Object.keys(SHELL_COMMANDS)].sort();
    console.log(
      `Logged in to ${this.connection.server} as ${printableName(this.connection.user)}. "help" lists the commands.`,
    );
    while (true) {
      const line = await reader.readLine(this.prompt, {
        history: history.lines,
        complete: (before) =>
          complete(before, {
            commands,
            options: (name) =>
              Object.hasOwn(CLIENT_COMMANDS, name) ? CLIENT_COMMANDS[name as ClientCommandName].options : null,
            remoteFolder: this.#folder,
            remoteChildren: (folder) => this.#listing.children(folder),
          }),
      });
      if (line === null || line === INTERRUPTED) return;
      await history.add(line.trim());
      const result = await this.execute(line);
      if (result === "exit") return;
    }
  }

  /**
   * Runs commands in order, each echoed after the prompt as sftp's batch
   * mode does; stops at the first failure, unless its line starts with "-".
   *
   * @throws {CommandFailure} with the failing command's exit code.
   */
  async runBatch(lines: AsyncIterable<string>): Promise<void> {
    let number = 0;
    for await (const raw of lines) {
      number++;
      const line = raw.trim();
      if (line === "" || line.startsWith("#")) continue;
      const tolerant = line.startsWith("-");
      const command = tolerant ? line.slice(1) : line;
      await this.#io.write(`${this.prompt}${line}\n`);
      const result = await this.execute(command);
      if (result === "exit") return;
      if (result !== 0 && !tolerant) {
        throw new CommandFailure(`Stopped at line ${number} ("${printableName(line)}"), exit code ${result}`, result);
      }
    }
  }

  /**
   * Runs one command line.
   *
   * @returns Its exit code, or "exit".
   */
  async execute(line: string): Promise<number | "exit"> {
    let words: string[];
    try {
      words = splitWords(line);
    } catch (error) {
      this.#io.warn(`dfos: ${(error as Error).message}`);
      return ExitCode.USAGE;
    }
    if (words.length === 0) return 0;
    const [name, ...rest] = words;
    if (name === "exit" || name === "quit" || name === "bye") return "exit";
    try {
      if (Object.hasOwn(SHELL_COMMANDS, name)) await this.#builtin(name, rest);
      else if (Object.hasOwn(CLIENT_COMMANDS, name)) await this.#clientCommand(name as ClientCommandName, rest);
      else throw new UsageError(`Unknown command "${printableName(name)}": "help" lists the commands`);
      return 0;
    } catch (error) {
      if (error instanceof DOMException && error.name === "AbortError" || isInterrupted(error)) {
        this.#io.warn("Interrupted");
        return INTERRUPTED_EXIT_CODE;
      }
      this.#io.warn(`dfos ${printableName(name)}: ${(error as Error).message}`);
      if (error instanceof UsageError && Object.hasOwn(CLIENT_COMMANDS, name)) {
        this.#io.warn(`"help ${name}" shows its usage.`);
      } else if ((rest.includes("--verbose") || rest.includes("-v")) && error instanceof Error) {
        this.#io.warn(error.stack ?? "");
      }
      return exitCodeFor(error);
    }
  }

  /**
   * `put LOCAL REMOTE` in the shell: REMOTE is checked against local paths
   * as typed (not as read against the remote folder), then given as `--as`
   * from the top; a `--as` typed is read against the remote folder too.
   */
  async #putAs(values: ParsedArgs["values"], typed: string[]): Promise<[ParsedArgs["values"], string[]]> {
    if (typeof values.as === "string") return [{ ...values, as: resolveRemote(this.#folder, values.as) }, typed];
    if (typed.length !== 2 || typed[1] === "-" || typed[1].endsWith("/")) return [values, typed];
    const remote = resolveRemote(this.#folder, typed[1]);
    if (remote.endsWith("/")) return [values, typed];
    const { refuseLocalRemote } = await import("../put.ts");
    await refuseLocalRemote(typed[0], typed[1]);
    return [{ ...values, as: remote }, [typed[0]]];
  }

  async #clientCommand(name: ClientCommandName, rest: string[]): Promise<void> {
    const row = CLIENT_COMMANDS[name];
    const parsed = await parseCommandArgs(row, rest);
    if (parsed.values.help) return await this.#io.write(`${row.usage}\n`);
    const fixed = CONNECTION_FLAGS.filter((flag) => parsed.values[flag] !== undefined);
    if (fixed.length > 0) {
      throw new UsageError(`--${fixed[0]} is set for the whole shell, when "dfos shell" starts`);
    }
    let { values, positionals: typed } = parsed;
    if (name === "put") [values, typed] = await this.#putAs(values, typed);
    const positionals = values.as === undefined ? shellPositionals(name, typed, values, this.#folder) : typed;
    const { run } = await row.load();
    const once = () =>
      this.#run((signal) =>
        run({ values, positionals }, {
          client: () => this.connection.client(),
          io: this.#io,
          signal,
        })
      );
    const reused = this.connection.open;
    try {
      await once();
    } catch (error) {
      if (!connectionLost(error)) throw error;
      this.connection.drop();
      // Closed by the server while the shell waited (its idle timeout): nothing of this command was done.
      if (!reused) throw error;
      this.#io.warn("The server closed the connection; logging in again");
      await once();
    } finally {
      if (CHANGES_NAMES.has(name)) this.#listing.invalidate();
    }
  }

  /** Runs a command with Ctrl-C wired to it. */
  async #run(command: (signal: AbortSignal) => Promise<void>): Promise<void> {
    const running: Running = {
      controller: new AbortController(),
      cleanups: new Set(),
      interrupted: false,
      settled: false,
    };
    this.#running = running;
    try {
      await command(running.controller.signal);
      if (running.interrupted) throw new DOMException("Interrupted", "AbortError");
    } catch (error) {
      if (running.interrupted) throw new DOMException("Interrupted", "AbortError");
      throw error;
    } finally {
      running.settled = true;
      this.#running = null;
    }
  }

  #interrupt(): void {
    const running = this.#running;
    if (running === null) {
      if (!this.#interactive) Deno.exit(INTERRUPTED_EXIT_CODE);
      return;
    }
    if (running.interrupted) return;
    running.interrupted = true;
    running.controller.abort(new DOMException("Interrupted", "AbortError"));
    setTimeout(() => {
      if (running.settled) return;
      // It did not stop by itself (a download, a listing): its connection goes, and what it left behind.
      runCleanups(running);
      this.connection.drop();
    }, STOP_GRACE_MS);
  }

  async #builtin(name: string, rest: string[]): Promise<void> {
    if (rest.length > 1 || (rest.length === 1 && ["pwd", "lpwd"].includes(name))) {
      throw new UsageError(`Usage: ${SHELL_COMMANDS[name].usage}`);
    }
    const [arg] = rest;
    switch (name) {
      case "pwd":
        return await this.#io.write(`/${printableName(this.#folder)}\n`);
      case "lpwd":
        return await this.#io.write(`${Deno.cwd()}\n`);
      case "cd":
        return await this.#cd(arg);
      case "lcd": {
        const target = arg ?? this.#home;
        if (target === null) throw new UsageError("lcd needs a FOLDER: HOME is not set");
        try {
          Deno.chdir(target);
        } catch (error) {
          throw new Error(`Cannot change to "${target}": ${(error as Error).message.replace(/:.*$/s, "")}`);
        }
        return;
      }
      case "lls":
        return await this.#io.write(await localListing(arg ?? "."));
      case "help":
        return await this.#io.write(helpText(arg));
    }
  }

  async #cd(arg: string | undefined): Promise<void> {
    const target = resolveRemote(this.#folder, arg ?? "/").replace(/\/$/, "");
    if (target !== "") {
      let names: string[] = [];
      await this.#run(async () => {
        names = await this.#listing.children(target);
      });
      if (names.length === 0) {
        throw new DfosError(Status.NOT_FOUND, `Cannot change to "${printableName(target)}": no files under it`);
      }
    }
    this.#folder = target;
  }

  /** Removes the signal handlers. */
  dispose(): void {
    Deno.removeSignalListener("SIGINT", this.#onInterrupt);
    Deno.removeSignalListener("SIGTERM", this.#onTerminate);
  }
}

function isInterrupted(error: unknown): boolean {
  return error instanceof CommandFailure && error.exitCode === INTERRUPTED_EXIT_CODE;
}

function runCleanups(running: Running): void {
  for (const cleanup of running.cleanups) {
    try {
      cleanup();
    } catch {
      // the others still run
    }
  }
  running.cleanups.clear();
}

/** `help`, or `help COMMAND`. */
function helpText(command: string | undefined): string {
  if (command === undefined) {
    const rows = [
      ...Object.entries(CLIENT_COMMANDS).map(([name, row]) => [name, row.summary]),
      ...Object.entries(SHELL_COMMANDS).map(([name, row]) => [name, row.summary]),
    ];
    return `Commands:\n${rows.map(([name, summary]) => `  ${name.padEnd(6)}${summary}`).join("\n")}\n` +
      `Remote names are read from the remote folder ("cd"), local paths from the local one ("lcd").\n` +
      `"help COMMAND" shows a command's usage and flags.\n`;
  }
  if (Object.hasOwn(CLIENT_COMMANDS, command)) return `${CLIENT_COMMANDS[command as ClientCommandName].usage}\n`;
  if (Object.hasOwn(SHELL_COMMANDS, command)) {
    const { usage, summary } = SHELL_COMMANDS[command];
    return `Usage: ${usage}\n\n${summary[0].toUpperCase()}${summary.slice(1)}.\n`;
  }
  throw new UsageError(`Unknown command "${printableName(command)}": "help" lists the commands`);
}

/** `lls`: a local folder's entries, sorted, as `ls` shows remote files (size, time in UTC, name; folders end in "/"). */
async function localListing(dir: string): Promise<string> {
  const rows: { name: string; size: number; mtime: Date | null }[] = [];
  try {
    for await (const entry of Deno.readDir(dir)) {
      const info = await Deno.stat(join(dir, entry.name)).catch(() => null);
      rows.push({
        name: info?.isDirectory ? `${entry.name}/` : entry.name,
        size: info?.size ?? 0,
        mtime: info?.mtime ?? null,
      });
    }
  } catch (error) {
    throw new Error(`Cannot list "${dir}": ${(error as Error).message.replace(/:.*$/s, "")}`);
  }
  rows.sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
  const width = Math.max(1, ...rows.map((row) => String(row.size).length));
  return rows.map(({ name, size, mtime }) => {
    const time = mtime === null ? "".padEnd(16) : mtime.toISOString().slice(0, 16).replace("T", " ");
    return `${String(size).padStart(width)}  ${time}  ${printableName(name)}\n`;
  }).join("");
}

/** Output, prompts and interrupts for commands run in the shell. */
class ShellIo implements CommandIo {
  readonly interactive: boolean;
  readonly #reader: TerminalLineReader;
  readonly #running: () => Running | null;
  readonly #encoder = new TextEncoder();

  constructor(interactive: boolean, reader: TerminalLineReader, running: () => Running | null) {
    this.interactive = interactive;
    this.#reader = reader;
    this.#running = running;
  }

  async write(data: Uint8Array | string): Promise<void> {
    const bytes = typeof data === "string" ? this.#encoder.encode(data) : data;
    const writer = Deno.stdout.writable.getWriter();
    try {
      await writer.write(bytes);
    } finally {
      writer.releaseLock();
    }
  }

  warn(line: string): void {
    console.error(line);
  }

  async confirm(question: string): Promise<boolean> {
    if (!this.interactive) return false;
    // Through the prompt's reader: a question given up with Ctrl-C leaves its read to the next prompt.
    const answer = await this.#reader.readAnswer(question, this.#running()?.controller.signal);
    return answer !== null && /^\s*y/i.test(answer);
  }

  atInterrupt(cleanup: () => void): () => void {
    const running = this.#running();
    running?.cleanups.add(cleanup);
    return () => running?.cleanups.delete(cleanup);
  }
}

/** The lines of a batch file. */
async function* fileLines(path: string): AsyncGenerator<string> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    throw new UsageError(`Cannot read the batch file "${path}": ${(error as Error).message.replace(/:.*$/s, "")}`);
  }
  yield* text.split("\n");
}

/** The lines of standard input, as they arrive. */
async function* stdinLines(): AsyncGenerator<string> {
  let pending = "";
  for await (const text of Deno.stdin.readable.pipeThrough(new TextDecoderStream())) {
    pending += text;
    const lines = pending.split("\n");
    pending = lines.pop()!;
    yield* lines;
  }
  if (pending !== "") yield pending;
}
