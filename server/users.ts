/**
 * `UserFile`: the credentials file, `user:password` lines as in the original
 * project (blank lines and `#` comments allowed). It is re-read whenever it
 * changes on disk, so adding a user needs no restart.
 *
 * @module
 */

import { createHash, timingSafeEqual } from "node:crypto";
import { userProblem } from "../shared/names.ts";

/** Something to tell the operator about the file (a line that was skipped). */
export type UserFileWarning = (message: string) => void;

/** Reads and checks credentials against the users file. */
export class UserFile {
  readonly path: string;
  readonly #warn: UserFileWarning;
  #users = new Map<string, Uint8Array>();
  #stamp = "";

  /**
   * @param path The file of `user:password` lines.
   * @param warn Where to report lines that are skipped.
   */
  constructor(path: string, warn: UserFileWarning = () => {}) {
    this.path = path;
    this.#warn = warn;
  }

  /**
   * Loads the file if it changed since it was last read. A file that cannot
   * be read is an error at the first load; later, the last good copy stays.
   *
   * @returns The number of users.
   */
  async load(): Promise<number> {
    let info: Deno.FileInfo;
    try {
      info = await Deno.stat(this.path);
    } catch (error) {
      if (this.#stamp === "") throw error;
      this.#warn(`Cannot read users file ${this.path}: ${(error as Error).message}; keeping the last copy`);
      return this.#users.size;
    }
    const stamp = `${info.ino}:${info.size}:${info.mtime?.getTime()}:${info.ctime?.getTime()}`;
    if (stamp === this.#stamp) return this.#users.size;
    const text = await Deno.readTextFile(this.path);
    this.#users = this.#parse(text);
    this.#stamp = stamp;
    return this.#users.size;
  }

  /**
   * Checks a user name and password in constant time for a given password
   * length, and takes the same time whether or not the user exists.
   *
   * @param user The user name.
   * @param password The password.
   * @returns True when both match a line of the file.
   */
  async verify(user: string, password: string): Promise<boolean> {
    await this.load();
    const expected = this.#users.get(user);
    const given = digest(password);
    const same = timingSafeEqual(given, expected ?? UNKNOWN_USER);
    return expected !== undefined && same;
  }

  #parse(text: string): Map<string, Uint8Array> {
    const users = new Map<string, Uint8Array>();
    const lines = text.split(/\r?\n/);
    lines.forEach((line, index) => {
      const trimmed = line.trim();
      if (trimmed === "" || trimmed.startsWith("#")) return;
      const where = `${this.path}:${index + 1}`;
      const colon = line.indexOf(":");
      if (colon < 0) {
        this.#warn(`Skipping ${where}: expected "user:password"`);
        return;
      }
      const user = line.slice(0, colon);
      const problem = userProblem(user);
      if (problem) {
        this.#warn(`Skipping ${where}: ${problem}`);
        return;
      }
      if (users.has(user)) this.#warn(`${where}: user "${user}" appears again; the last line wins`);
      users.set(user, digest(line.slice(colon + 1)));
    });
    return users;
  }
}

/** A SHA-256 of the password: compared values then always have the same length. */
function digest(password: string): Uint8Array {
  return createHash("sha256").update(password).digest();
}

const UNKNOWN_USER = digest(crypto.randomUUID());
