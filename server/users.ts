/**
 * `UserFile`: the credentials file. Each line is one of
 *
 *     user:password                                                  (in clear, as in the original project)
 *     user:SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>  (hashed, as PostgreSQL stores it)
 *
 * with blank lines and `#` comments allowed. `dfos passwd` writes the hashed
 * form, from which the server checks a login without ever knowing the
 * password. Each line in clear is warned about once; the server derives its
 * SCRAM keys itself when the file is loaded, with the salt it would make up
 * for an unknown user of that name. The file is re-read whenever it changes on
 * disk, so adding a user needs no restart.
 *
 * An unknown user gets a made-up entry (salt and keys from an HMAC of the
 * name with a key drawn at random per process, the usual iteration count), so
 * a login as an unknown user runs the same steps, takes the same time and
 * fails the same way as a wrong password.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { userProblem } from "../shared/names.ts";
import {
  DEFAULT_ITERATIONS,
  deriveKeys,
  isStoredSecret,
  parseSecret,
  SALT_BYTES,
  sameBytes,
  type ScramSecret,
} from "../shared/scram.ts";

/** Something to tell the operator about the file (a line that was skipped, a password in clear). */
export type UserFileWarning = (message: string) => void;

/** The stored password of a user, or the made-up one of an unknown user. */
export interface UserSecret {
  /** What a SCRAM exchange checks against. */
  secret: ScramSecret;
  /** False for a made-up entry: a login must fail whatever the client proves. */
  known: boolean;
}

/** One line of the users file, split at its first colon. */
export interface UserLine {
  /** Everything before the first colon. */
  user: string;
  /** Everything after it: a password in clear, or a stored `SCRAM-SHA-256$...` secret. */
  value: string;
}

/**
 * Splits a line of the users file at its first colon, as the server reads it.
 *
 * @param line One line, without its line ending.
 * @returns The user and value, or null for a blank line or a `#` comment.
 * @throws {SyntaxError} for a line without a colon.
 */
export function parseUserLine(line: string): UserLine | null {
  const trimmed = line.trim();
  if (trimmed === "" || trimmed.startsWith("#")) return null;
  const colon = line.indexOf(":");
  if (colon < 0) throw new SyntaxError('expected "user:password"');
  return { user: line.slice(0, colon), value: line.slice(colon + 1) };
}

/** What one reading of the file holds, before the lines in clear are derived. */
interface Parsed {
  secrets: Map<string, ScramSecret>;
  clear: Map<string, string>;
}

/** Reads and checks credentials against the users file. */
export class UserFile {
  readonly path: string;
  readonly #warn: UserFileWarning;
  #users = new Map<string, ScramSecret>();
  #stamp = "";
  #loading: Promise<number> | null = null;
  /** Iterations of made-up entries and of lines in clear: those most used in the file. */
  #iterations = DEFAULT_ITERATIONS;
  /** Keys derived from lines in clear, by a digest of user, password and iterations; kept across reloads. */
  #derived = new Map<string, ScramSecret>();
  /** Digests of the lines in clear already warned about: one warning each, not one per reload. */
  #warned = new Set<string>();
  /** The HMAC key that makes up unknown users' entries, drawn once per `UserFile`. */
  #mockKey: Promise<CryptoKey> | null = null;

  /**
   * @param path The users file.
   * @param warn Where to report lines that are skipped and passwords in clear.
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
  load(): Promise<number> {
    this.#loading ??= this.#reload().finally(() => this.#loading = null);
    return this.#loading;
  }

  /**
   * Returns what a SCRAM exchange for `user` checks against: the user's
   * stored secret, or a made-up one (stable for the name while the server
   * runs) with `known: false`. Both take the same work.
   *
   * @param user The user name, as the client sent it.
   * @returns The secret, and whether the user exists.
   */
  async lookup(user: string): Promise<UserSecret> {
    await this.load();
    const madeUp = await this.#madeUp(user); // made for every name, so a known one costs the same
    const secret = this.#users.get(user);
    return secret === undefined ? { secret: madeUp, known: false } : { secret, known: true };
  }

  /**
   * Checks a user name and password (for PLAIN): the password is derived
   * with the user's salt and iterations and its StoredKey compared in
   * constant time. An unknown user is checked against a made-up entry, so the
   * work and the answer are the same as for a wrong password.
   *
   * @param user The user name.
   * @param password The password (SASLprep applied, as in SCRAM).
   * @returns True when both match a line of the file.
   */
  async verify(user: string, password: string): Promise<boolean> {
    const { secret, known } = await this.lookup(user);
    const { storedKey } = await deriveKeys(password, secret.salt, secret.iterations);
    return sameBytes(storedKey, secret.storedKey) && known;
  }

  async #reload(): Promise<number> {
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
    const { secrets, clear } = this.#parse(await Deno.readTextFile(this.path));
    const iterations = mostUsed([...secrets.values()].map((secret) => secret.iterations)) ?? DEFAULT_ITERATIONS;
    const derived = new Map<string, ScramSecret>();
    const users = new Map(secrets);
    // Derived now rather than at a user's first login, which would then be slower than an unknown user's.
    await Promise.all([...clear].map(async ([user, password]) => {
      const id = digest(`${iterations}\0${user}\0${password}`);
      const secret = this.#derived.get(id) ?? await this.#fromClear(user, password, iterations);
      derived.set(id, secret);
      users.set(user, secret);
    }));
    this.#users = users;
    this.#derived = derived;
    this.#iterations = iterations;
    this.#stamp = stamp;
    return users.size;
  }

  #parse(text: string): Parsed {
    const secrets = new Map<string, ScramSecret>();
    const clear = new Map<string, string>();
    text.split(/\r?\n/).forEach((line, index) => {
      const where = `${this.path}:${index + 1}`;
      let parsed: UserLine | null;
      try {
        parsed = parseUserLine(line);
      } catch (error) {
        this.#warn(`Skipping ${where}: ${(error as Error).message}`);
        return;
      }
      if (parsed === null) return;
      const { user, value } = parsed;
      const problem = userProblem(user);
      if (problem) {
        this.#warn(`Skipping ${where}: ${problem}`);
        return;
      }
      let secret: ScramSecret | null = null;
      if (isStoredSecret(value)) {
        try {
          secret = parseSecret(value);
        } catch (error) {
          this.#warn(`Skipping ${where}: ${(error as Error).message}`);
          return;
        }
      }
      if (secrets.has(user) || clear.has(user)) {
        this.#warn(`${where}: user "${user}" appears again; the last line wins`);
      }
      secrets.delete(user);
      clear.delete(user);
      if (secret !== null) {
        secrets.set(user, secret);
        return;
      }
      clear.set(user, value);
      const id = digest(`${user}\0${value}`);
      if (!this.#warned.has(id)) {
        this.#warned.add(id);
        this.#warn(
          `${where}: the password of "${user}" is stored in clear; ` +
            `"dfos passwd ${user} --users ${this.path}" stores it hashed`,
        );
      }
    });
    return { secrets, clear };
  }

  /** The secret of a line in clear: the made-up salt of its name, so that it looks like any other. */
  async #fromClear(user: string, password: string, iterations: number): Promise<ScramSecret> {
    const { salt } = await this.#madeUp(user);
    const { storedKey, serverKey } = await deriveKeys(password, salt, iterations);
    return { iterations, salt, storedKey, serverKey };
  }

  async #madeUp(user: string): Promise<ScramSecret> {
    this.#mockKey ??= crypto.subtle.generateKey({ name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
    const key = await this.#mockKey;
    const [salt, storedKey, serverKey] = await Promise.all(
      ["salt", "stored-key", "server-key"].map(async (label) =>
        new Uint8Array(await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(`${label}\0${user}`)))
      ),
    );
    return { iterations: this.#iterations, salt: salt.subarray(0, SALT_BYTES), storedKey, serverKey };
  }
}

/** A hex SHA-256, to remember a line without keeping its password. */
function digest(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

/** The value that occurs most often (the larger one on a tie), or undefined for none. */
function mostUsed(values: number[]): number | undefined {
  const counts = new Map<number, number>();
  for (const value of values) counts.set(value, (counts.get(value) ?? 0) + 1);
  let best: number | undefined;
  for (const [value, count] of counts) {
    const bestCount = best === undefined ? 0 : counts.get(best)!;
    if (count > bestCount || (count === bestCount && value > best!)) best = value;
  }
  return best;
}
