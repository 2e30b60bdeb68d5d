/**
 * `readPassword()`: the password from `DFOS_PASSWORD`, else from a prompt on
 * the terminal that does not echo, else a clear failure; `passwordSource()`
 * decides the same without asking yet. Both sides use them: the client
 * commands to log in, `dfos passwd` to set one. The terminal is put back out
 * of raw mode whatever happens; nothing typed is echoed; Ctrl-C at the
 * prompt ends the command with exit code 130, as a shell's interrupt does.
 *
 * @module
 */

import { CommandFailure, UsageError } from "./cli.ts";

/** The exit code of a command interrupted by Ctrl-C (128 + SIGINT), as a shell reports it. */
export const INTERRUPTED_EXIT_CODE = 130;

/** A function that asks for the password; `refusal` is the last attempt's refusal (null the first time), shown first. */
export type AskPassword = (refusal: Error | null) => Promise<string>;

/**
 * The password from `DFOS_PASSWORD`, or, on a terminal, a function that asks
 * for it when called (after a refusal, it prints the refusal first). Nothing
 * is asked here: a client connects first, then asks.
 *
 * @param prompt The prompt to show, e.g. `Password for alice@host:5000: `.
 * @returns The password, or the function that asks for it.
 * @throws {UsageError} when there is no `DFOS_PASSWORD` and standard input is not a terminal.
 */
export function passwordSource(prompt: string): string | AskPassword {
  const fromEnv = Deno.env.get("DFOS_PASSWORD");
  if (fromEnv !== undefined) return fromEnv;
  if (!Deno.stdin.isTerminal()) {
    throw new UsageError("No password given: set DFOS_PASSWORD, or run from a terminal to be asked");
  }
  return (refusal) => {
    if (refusal !== null) Deno.stderr.writeSync(encoder.encode(`${refusal.message}\n`));
    return askOnTerminal(prompt); // DFOS_PASSWORD is read already: the command may have dropped env access since
  };
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * Returns the password for `user`.
 *
 * @param prompt The prompt to show, e.g. `Password for alice@host:5000: `.
 * @returns The password.
 * @throws {UsageError} when there is no `DFOS_PASSWORD` and standard input is not a terminal.
 * @throws {CommandFailure} with exit code 130 for Ctrl-C at the prompt.
 */
export async function readPassword(prompt: string): Promise<string> {
  const fromEnv = Deno.env.get("DFOS_PASSWORD");
  if (fromEnv !== undefined) return fromEnv;
  if (!Deno.stdin.isTerminal()) {
    throw new UsageError("No password given: set DFOS_PASSWORD, or run from a terminal to be asked");
  }
  return await askOnTerminal(prompt);
}

/** Shows `prompt` and reads a line from the terminal without echo. */
async function askOnTerminal(prompt: string): Promise<string> {
  Deno.stderr.writeSync(encoder.encode(prompt));
  Deno.stdin.setRaw(true);
  try {
    return await readHidden();
  } finally {
    Deno.stdin.setRaw(false);
    Deno.stderr.writeSync(encoder.encode("\n"));
  }
}

async function readHidden(): Promise<string> {
  let password = "";
  const buffer = new Uint8Array(64);
  while (true) {
    const n = await Deno.stdin.read(buffer);
    if (n === null) return password;
    for (const char of decoder.decode(buffer.subarray(0, n))) {
      if (char === "\r" || char === "\n" || char === "\x04") return password;
      if (char === "\x03") throw new CommandFailure("Interrupted at the password prompt", INTERRUPTED_EXIT_CODE);
      if (char === "\x7f" || char === "\b") password = password.slice(0, -1);
      else password += char;
    }
  }
}
