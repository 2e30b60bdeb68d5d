/**
 * Running one client command from the command line: `runOnCommandLine()`
 * gives the command a connection made at its first request (with the
 * connection flags, environment and password prompt of client/options.ts)
 * and closed at the end, standard output and error, a confirmation prompt on
 * a terminal, and interrupts: on SIGINT or SIGTERM during a command, what it
 * registered to undo (a download's temporary file) is undone and the process
 * exits 130 or 143. When the reader of standard output goes away (`| head`),
 * the command stops and ends quietly with success, as `cat` does.
 *
 * @module
 */

import type { ParsedArgs } from "../shared/cli.ts";
import type { CommandIo, CommandRun } from "./command_table.ts";
import { connectOptions, explainConnectError } from "./options.ts";
import { type ConnectOptions, DfosClient, type PasswordPrompt } from "./connection.ts";
import { dropOptionPermissions } from "../shared/permissions.ts";

/**
 * Runs a client command once, over a connection of its own.
 *
 * @param run The command's code.
 * @param args The parsed command line.
 */
export async function runOnCommandLine(run: CommandRun, args: ParsedArgs): Promise<void> {
  const io = new ConsoleIo();
  // The options are read once, at the first connection (the environment and the --ca file are then given up), and
  // every connection of the command uses them: the one it asks for first, held until it ends, and any other it
  // opens (`dfos sync --watch`: a second one to wait on, new ones after the server went away).
  let options: Promise<ConnectOptions> | null = null;
  const connect = async () => {
    options ??= connectOptions(args).then((read) => {
      dropOptionPermissions();
      return { ...read, password: remembered(read.password) };
    });
    const ready = await options;
    try {
      return await DfosClient.connect(ready);
    } catch (error) {
      throw explainConnectError(error, ready.server);
    }
  };
  let connected: Promise<DfosClient> | null = null;
  const client = () => connected ??= connect();
  try {
    await run(args, { client, io, connect });
  } catch (error) {
    // The reader of standard output left (`dfos get x - | head`): what it wanted it has; end quietly, as cat does.
    if (!(error instanceof OutputClosed)) throw error;
  } finally {
    io.dispose();
    await (await (connected as Promise<DfosClient> | null)?.catch(() => null))?.close();
  }
}

/**
 * A password typed at the prompt, kept for the command's next connections
 * (asked again only after a refusal); one from the environment as it is.
 */
function remembered(password: string | PasswordPrompt): string | PasswordPrompt {
  if (typeof password === "string") return password;
  let typed: string | null = null;
  return async (refusal) => {
    if (refusal === null && typed !== null) return typed;
    return typed = await password(refusal);
  };
}

/** Standard output's reader closed its end: the command stops, and the process exits 0 without a word. */
class OutputClosed extends Error {
  constructor(options: ErrorOptions) {
    super("Cannot write to standard output: its reader closed it", options);
    this.name = "OutputClosed";
  }
}

const SIGNAL_EXIT_CODES = { SIGINT: 130, SIGTERM: 143 } as const;

/** Standard output and error, a prompt on the terminal, and the signal handlers while a cleanup is registered. */
class ConsoleIo implements CommandIo {
  readonly interactive = Deno.stdin.isTerminal();
  readonly #cleanups = new Set<() => void>();
  readonly #listeners: [Deno.Signal, () => void][] = [];
  readonly #encoder = new TextEncoder();

  async write(data: Uint8Array | string): Promise<void> {
    const bytes = typeof data === "string" ? this.#encoder.encode(data) : data;
    const writer = Deno.stdout.writable.getWriter();
    try {
      await writer.write(bytes);
    } catch (error) {
      if (error instanceof Deno.errors.BrokenPipe) throw new OutputClosed({ cause: error });
      throw error;
    } finally {
      writer.releaseLock();
    }
  }

  warn(line: string): void {
    console.error(line);
  }

  async confirm(question: string): Promise<boolean> {
    if (!this.interactive) return false;
    Deno.stderr.writeSync(this.#encoder.encode(question));
    const buffer = new Uint8Array(256);
    const read = await Deno.stdin.read(buffer);
    return read !== null && /^\s*y/i.test(new TextDecoder().decode(buffer.subarray(0, read)));
  }

  atInterrupt(cleanup: () => void): () => void {
    this.#cleanups.add(cleanup);
    if (this.#listeners.length === 0) {
      for (const signal of Object.keys(SIGNAL_EXIT_CODES) as (keyof typeof SIGNAL_EXIT_CODES)[]) {
        const listener = () => this.#interrupted(signal);
        Deno.addSignalListener(signal, listener);
        this.#listeners.push([signal, listener]);
      }
    }
    return () => {
      this.#cleanups.delete(cleanup);
      if (this.#cleanups.size === 0) this.#removeListeners();
    };
  }

  #interrupted(signal: keyof typeof SIGNAL_EXIT_CODES): void {
    for (const cleanup of this.#cleanups) {
      try {
        cleanup();
      } catch {
        // the others still run
      }
    }
    Deno.exit(SIGNAL_EXIT_CODES[signal]);
  }

  #removeListeners(): void {
    for (const [signal, listener] of this.#listeners.splice(0)) Deno.removeSignalListener(signal, listener);
  }

  /** Removes the signal handlers. */
  dispose(): void {
    this.#cleanups.clear();
    this.#removeListeners();
  }
}
