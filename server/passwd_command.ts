/**
 * `dfos passwd USER [--users FILE]`: sets a user's password in the server's
 * users file, stored hashed (`SCRAM-SHA-256$...`, the form PostgreSQL uses:
 * a fresh 16-byte salt, 4096 PBKDF2 iterations unless `--iterations` says
 * otherwise). The user's line is replaced where it was, or added at the end;
 * every other byte of the file is kept. The new file is written beside the
 * old one and renamed over it, with the old one's permissions, so a server
 * reading it sees the old file or the new one, never half of either.
 *
 * @module
 */

import { basename, dirname, join } from "node:path";
import { readPassword } from "../shared/password_prompt.ts";
import { type Command, integerFlag, UsageError } from "../shared/cli.ts";
import { printableName } from "../shared/names.ts";
import { TempFile } from "../shared/temp_file.ts";
import { MAX_ITERATIONS, MIN_ITERATIONS } from "../shared/scram.ts";
import { DEFAULT_ITERATIONS, formatSecret, makeSecret } from "./auth/scram_secret.ts";
import { parseUserLine, usersFileUserProblem } from "./users.ts";

/** The users file used when `--users` names none (as for `dfos serve`). */
const DEFAULT_USERS_FILE = "id_passwd.txt";

/**
 * The start of a line that marks a users file as the project's sample (the
 * tracked `id_passwd.txt`): `dfos passwd` edits such a file only when
 * `--users` names it.
 */
export const SAMPLE_MARK = "# Sample users for trying dfos out";

/** The permissions of a users file that `dfos passwd` creates. */
const NEW_FILE_MODE = 0o600;

/** The `passwd` subcommand. */
export const command: Command = {
  usage: `Usage: dfos passwd USER [options]

Sets USER's password in the users file, stored hashed (SCRAM-SHA-256, as
PostgreSQL stores it: the server never learns the password). USER's line is
replaced where it is, or added at the end; every other line and comment is
kept as it is. The file is replaced atomically and keeps its permissions (a
new file is made readable by its owner only); a running server picks the
change up at the next login. USER must be a name the server reads from the
file: one folder name, no ":", not starting with "." or "#".

The project's sample users file (./${DEFAULT_USERS_FILE} with its line
"${SAMPLE_MARK}...") is edited only when --users names it: give a
real server a users file of its own, "dfos passwd USER --users FILE" and
"dfos serve --users FILE".

      --users FILE         the users file (default ./${DEFAULT_USERS_FILE}, unless it is the sample)
      --iterations N       PBKDF2 iterations, ${MIN_ITERATIONS} to ${MAX_ITERATIONS} (default ${DEFAULT_ITERATIONS}, as PostgreSQL;
                           each login costs the client this many, and so does each
                           offline guess of someone who steals the file)
  password                 env DFOS_PASSWORD, else asked twice without echo on a terminal
  -v, --verbose            show error details
  -h, --help               show this help`,
  options: {
    users: { type: "string" },
    iterations: { type: "string" },
  },
  async run({ values, positionals }) {
    if (positionals.length !== 1) {
      throw new UsageError(`passwd takes one USER, got ${positionals.length === 0 ? "none" : positionals.length}`);
    }
    const user = positionals[0];
    const problem = usersFileUserProblem(user);
    if (problem) throw new UsageError(`Cannot use "${printableName(user)}" as a user name: ${problem}`);
    const path = (values.users as string | undefined) ?? DEFAULT_USERS_FILE;
    if (values.users === undefined && await isSample(path)) {
      throw new UsageError(
        `Cannot edit "${path}" without --users: it is the sample users file; give your server a users file of ` +
          `its own ("dfos passwd ${user} --users FILE", then "dfos serve --users FILE"), or name this one ` +
          `("--users ${path}") to edit it anyway`,
      );
    }
    const iterations = integerFlag(values.iterations, "iterations", DEFAULT_ITERATIONS, [
      MIN_ITERATIONS,
      MAX_ITERATIONS,
    ]);
    const password = await newPassword(user);
    const line = `${user}:${formatSecret(await makeSecret(password, iterations))}`;
    const added = await setUserLine(path, user, line);
    console.log(added ? `Added "${user}" to ${path}` : `Changed the password of "${user}" in ${path}`);
  },
};

/** True when `path` is a users file marked as the sample ({@linkcode SAMPLE_MARK}); false when missing. */
async function isSample(path: string): Promise<boolean> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
  return text.split(/\r?\n/).some((line) => line.startsWith(SAMPLE_MARK));
}

/**
 * Reads the new password: from `DFOS_PASSWORD`, or typed twice on a terminal.
 *
 * @param user The user, for the prompt.
 * @returns The password.
 * @throws {Error} when the two typed passwords differ or the password is empty.
 */
async function newPassword(user: string): Promise<string> {
  const prompting = Deno.env.get("DFOS_PASSWORD") === undefined && Deno.stdin.isTerminal();
  const password = await readPassword(`New password for ${user}: `);
  if (prompting && await readPassword(`Retype the new password for ${user}: `) !== password) {
    throw new Error("Cannot set the password: the two passwords typed differ");
  }
  if (password === "") throw new Error("Cannot set the password: it is empty");
  return password;
}

/**
 * Puts `line` in the users file for `user`: in place of the user's first
 * line (its other lines are dropped, since only one can be in effect), or at
 * the end. Every other byte is kept: other lines, comments, blank lines,
 * line endings, a missing final newline.
 *
 * @param path The users file; created (mode 0600) if missing.
 * @param user The user.
 * @param line The new line, without a line ending.
 * @returns True when the user was added, false when replaced.
 */
export async function setUserLine(path: string, user: string, line: string): Promise<boolean> {
  let target = path;
  let old = new Uint8Array(0);
  let mode = NEW_FILE_MODE;
  try {
    target = await Deno.realPath(path); // through a symbolic link: replace the file, not the link
    old = await Deno.readFile(target);
    mode = (await Deno.stat(target)).mode! & 0o7777;
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  const { bytes, added } = withUserLine(old, user, line);
  await replaceFile(target, bytes, mode);
  return added;
}

/**
 * Returns the users file `file` with `user`'s line set to `line` (see
 * {@linkcode setUserLine}). Lines are matched as the server reads them.
 *
 * @param file The file's bytes.
 * @param user The user.
 * @param line The new line, without a line ending.
 * @returns The new bytes, and whether the user was added rather than replaced.
 */
export function withUserLine(file: Uint8Array, user: string, line: string): { bytes: Uint8Array; added: boolean } {
  const newLine = encoder.encode(line);
  const pieces: Uint8Array[] = [];
  let replaced = false;
  let crlf: boolean | null = null; // the file's line ending, from its first line
  let start = 0;
  while (start < file.length) {
    const newline = file.indexOf(0x0a, start);
    const end = newline < 0 ? file.length : newline + 1; // the line with its ending
    let bodyEnd = newline < 0 ? file.length : newline;
    if (newline >= 0 && bodyEnd > start && file[bodyEnd - 1] === 0x0d) bodyEnd--;
    const body = file.subarray(start, bodyEnd);
    if (newline >= 0) crlf ??= bodyEnd < newline;
    if (userOf(body) !== user) {
      pieces.push(file.subarray(start, end));
    } else if (!replaced) {
      pieces.push(newLine, file.subarray(start + body.length, end)); // the new line, the old ending
      replaced = true;
    }
    start = end;
  }
  if (!replaced) {
    const ending = encoder.encode(crlf ? "\r\n" : "\n");
    if (file.length > 0 && file[file.length - 1] !== 0x0a) pieces.push(ending);
    pieces.push(newLine, ending);
  }
  const bytes = new Uint8Array(pieces.reduce((sum, piece) => sum + piece.length, 0));
  let offset = 0;
  for (const piece of pieces) {
    bytes.set(piece, offset);
    offset += piece.length;
  }
  return { bytes, added: !replaced };
}

/** The user a line is for, as the server reads it; null for a comment, a blank line or a line it skips. */
function userOf(line: Uint8Array): string | null {
  try {
    return parseUserLine(decoder.decode(line))?.user ?? null;
  } catch {
    return null;
  }
}

/**
 * Replaces `path` with `bytes` atomically, through a {@linkcode TempFile} in
 * the same folder: written, flushed, given `mode`, then renamed over it.
 */
async function replaceFile(path: string, bytes: Uint8Array, mode: number): Promise<void> {
  let temp: TempFile | null = null;
  try {
    temp = await TempFile.create(join(dirname(path), `.${basename(path)}.dfos-passwd-${crypto.randomUUID()}`), {
      mode: NEW_FILE_MODE,
      writeBehind: false,
    });
    await temp.write(bytes);
    await temp.close(true);
    await Deno.chmod(temp.path, mode); // exactly the old mode, whatever the umask
    await temp.moveTo(path);
  } catch (error) {
    await temp?.remove();
    throw new Error(`Cannot write users file ${path}: ${(error as Error).message}`, { cause: error });
  }
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();
