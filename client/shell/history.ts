/**
 * The shell's history across sessions: one line per command entered, in
 * `$XDG_STATE_HOME/dfos/history` (else `~/.local/state/dfos/history`), mode
 * 0600, at most {@linkcode HISTORY_LIMIT} lines (the oldest go first). Only
 * lines typed at the shell's prompt are kept: a password is read by another
 * prompt and never reaches it. A history that cannot be read or written is
 * not an error: the shell works without it.
 *
 * @module
 */

import { dirname, join } from "node:path";

/** Lines kept. */
export const HISTORY_LIMIT = 1000;

/**
 * The history file's path from the environment, or null without a home.
 *
 * @returns The path.
 */
export function historyPath(): string | null {
  const state = Deno.env.get("XDG_STATE_HOME");
  if (state) return join(state, "dfos", "history");
  const home = Deno.env.get("HOME");
  return home ? join(home, ".local", "state", "dfos", "history") : null;
}

/** The lines entered at the shell's prompt, oldest first, kept in a file. */
export class History {
  readonly #path: string | null;
  readonly #lines: string[];

  private constructor(path: string | null, lines: string[]) {
    this.#path = path;
    this.#lines = lines;
  }

  /**
   * Reads the history file (none: an empty history).
   *
   * @param path The file, or null to keep the history in memory only.
   * @returns The history.
   */
  static async load(path: string | null): Promise<History> {
    let lines: string[] = [];
    if (path !== null) {
      try {
        lines = (await Deno.readTextFile(path)).split("\n").filter((line) => line !== "");
      } catch {
        // none yet, or unreadable: start empty
      }
    }
    return new History(path, lines.slice(-HISTORY_LIMIT));
  }

  /** The lines, oldest first. */
  get lines(): readonly string[] {
    return this.#lines;
  }

  /**
   * Adds a line (not an empty one, nor the same as the last) and writes the file.
   *
   * @param line The line entered.
   */
  async add(line: string): Promise<void> {
    if (line.trim() === "" || line.includes("\n") || this.#lines.at(-1) === line) return;
    this.#lines.push(line);
    if (this.#lines.length > HISTORY_LIMIT) this.#lines.splice(0, this.#lines.length - HISTORY_LIMIT);
    if (this.#path === null) return;
    try {
      await Deno.mkdir(dirname(this.#path), { recursive: true, mode: 0o700 });
      await Deno.writeTextFile(this.#path, this.#lines.join("\n") + "\n", { mode: 0o600 });
      await Deno.chmod(this.#path, 0o600); // mode applies only when the file is created
    } catch {
      // the shell goes on without a saved history
    }
  }
}
