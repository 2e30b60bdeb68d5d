/**
 * `readPassword()`: the password from `DFOS_PASSWORD`, else from a prompt on
 * the terminal that does not echo, else a clear failure. Both sides use it:
 * the client commands to log in, `dfos passwd` to set one. The terminal is
 * put back out of raw mode whatever happens; nothing typed is echoed.
 *
 * @module
 */

import { UsageError } from "./cli.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * Returns the password for `user`.
 *
 * @param prompt The prompt to show, e.g. `Password for alice@host:5000: `.
 * @returns The password.
 * @throws {UsageError} when there is no `DFOS_PASSWORD` and standard input is not a terminal.
 */
export async function readPassword(prompt: string): Promise<string> {
  const fromEnv = Deno.env.get("DFOS_PASSWORD");
  if (fromEnv !== undefined) return fromEnv;
  if (!Deno.stdin.isTerminal()) {
    throw new UsageError("No password given: set DFOS_PASSWORD, or run from a terminal to be asked");
  }
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
      if (char === "\x03") throw new UsageError("Password prompt interrupted");
      if (char === "\x7f" || char === "\b") password = password.slice(0, -1);
      else password += char;
    }
  }
}
