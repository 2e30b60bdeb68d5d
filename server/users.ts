/**
 * `UserFile`: the credentials file. Each line is one of
 *
 *     user:password                                                  (in clear, as in the original project)
 *     user:SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>  (hashed, as PostgreSQL stores it)
 *
 * with blank lines and `#` comments allowed. `dfos passwd` writes the hashed
 * form, from which the server checks a login without ever knowing the
 * password. Each line in clear is warned about once; the server derives its
 * SCRAM keys itself when the file is loaded, with the salt and iteration
 * count it would make up for an unknown user of that name. The file is
 * re-read whenever it changes on disk, so adding a user needs no restart; a
 * session asks {@linkcode UserFile.holds} at each request whether its login
 * still stands (the file is looked at once a second at most), so removing a
 * user or changing a password ends that user's sessions.
 *
 * An unknown user gets a made-up entry, so a login as an unknown user runs
 * the same steps, takes the same time and fails the same way as a wrong
 * password. Everything in it comes from an HMAC of the name under a key drawn
 * at random per process: the salt, the keys, and the shape (iteration count
 * and salt length), drawn from the hashed lines' shapes as often as the file
 * uses each. So the same name gets the same answer while the server runs (a
 * change to the file moves few names to another shape), and a real user whose
 * count differs from the others' is no rarer than an unknown name with it.
 * After a restart every made-up entry is new.
 *
 * All PBKDF2 work (PLAIN logins, lines in clear) runs through one
 * {@linkcode Semaphore} per process, {@linkcode KEY_DERIVATIONS}: however
 * many logins arrive, they take at most its limit of cores.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { userProblem } from "../shared/names.ts";
import { Semaphore } from "./auth/semaphore.ts";
import { encodeBase64 } from "../shared/base64.ts";
import { deriveKeys, sameBytes } from "../shared/scram.ts";
import { DEFAULT_ITERATIONS, isStoredSecret, parseSecret, SALT_BYTES, type ScramSecret } from "./auth/scram_secret.ts";

/** Something to tell the operator about the file (a line that was skipped, a password in clear). */
export type UserFileWarning = (message: string) => void;

/**
 * PBKDF2 derivations run at once, at most, in this process: half the cores
 * (at least one), so that a flood of logins leaves the rest of the server a core.
 */
export const KEY_DERIVATION_LIMIT = Math.max(1, Math.floor((navigator.hardwareConcurrency ?? 2) / 2));

/** The one queue of this process's PBKDF2 work: logins with PLAIN and the keys of lines in clear. */
export const KEY_DERIVATIONS: Semaphore = new Semaphore(KEY_DERIVATION_LIMIT);

/** How long a look at the file stands for {@linkcode UserFile.holds}, in milliseconds. */
export const RECHECK_MS = 1000;

/** The stored password of a user, or the made-up one of an unknown user. */
export interface UserSecret {
  /** What a SCRAM exchange checks against. */
  secret: ScramSecret;
  /** False for a made-up entry: a login must fail whatever the client proves. */
  known: boolean;
  /**
   * Names the user's line as it stands (its stored secret, or a digest of its
   * password in clear); "" for a made-up entry. A login keeps it, and
   * {@linkcode UserFile.holds} tells whether the line still says the same.
   */
  credential: string;
}

/** A user of the file. */
interface Account {
  secret: ScramSecret;
  credential: string;
}

/** What a made-up entry draws from: one shape of a hashed line. */
interface Shape {
  iterations: number;
  saltBytes: number;
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

/**
 * Says why `user` cannot have a line in the users file, or returns undefined:
 * the rule the server applies to each line it reads. The name must be a user
 * name (shared/names.ts `userProblem`: one folder name, no ":", no leading
 * ".") and its line must read back as that user's (a name starting with "#"
 * would make the line a comment). `dfos passwd` checks it before it writes.
 *
 * @param user The user name.
 * @returns A phrase such as `user name contains ":"`, or undefined.
 *
 * @example Usage
 * ```ts
 * import assert from "node:assert/strict";
 * import { usersFileUserProblem } from "./users.ts";
 * assert.equal(usersFileUserProblem("alice"), undefined);
 * assert.notEqual(usersFileUserProblem("#alice"), undefined);
 * ```
 */
export function usersFileUserProblem(user: string): string | undefined {
  const problem = userProblem(user);
  if (problem) return problem;
  if (parseUserLine(`${user}:`)?.user !== user) return 'user name starts with "#" (its line would be a comment)';
  return undefined;
}

/** What one reading of the file holds, before the lines in clear are derived. */
interface Parsed {
  secrets: Map<string, Account>;
  clear: Map<string, string>;
}

/** Reads and checks credentials against the users file. */
export class UserFile {
  readonly path: string;
  readonly #warn: UserFileWarning;
  #users = new Map<string, Account>();
  #stamp = "";
  /** When the file was last looked at (`performance.now()`). */
  #checkedAt = -Infinity;
  #loading: Promise<number> | null = null;
  /**
   * The shapes of made-up entries and lines in clear, with how many hashed
   * lines have each: [shape, cumulative share of the lines up to it].
   */
  #shapes: [Shape, number][] = [[{ iterations: DEFAULT_ITERATIONS, saltBytes: SALT_BYTES }, 1]];
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
    const madeUp = await this.#madeUp(user, this.#shapes); // made for every name, so a known one costs the same
    const account = this.#users.get(user);
    return account === undefined
      ? { secret: madeUp, known: false, credential: "" }
      : { secret: account.secret, known: true, credential: account.credential };
  }

  /**
   * Checks a user name and password (for PLAIN): the password is derived
   * with the user's salt and iterations (in {@linkcode KEY_DERIVATIONS}'
   * turn) and its StoredKey compared in constant time. An unknown user is
   * checked against a made-up entry, so the work and the answer are the same
   * as for a wrong password. A user removed or changed while the password
   * was derived fails.
   *
   * @param user The user name.
   * @param password The password (SASLprep applied, as in SCRAM).
   * @param signal Gives up waiting for a turn (the connection is closing): the promise then rejects.
   * @returns The user's credential ({@linkcode UserSecret.credential}) when both match a line of the file,
   * else null.
   */
  async verify(user: string, password: string, signal?: AbortSignal): Promise<string | null> {
    const { secret, known, credential } = await this.lookup(user);
    const { storedKey } = await KEY_DERIVATIONS.run(
      () => deriveKeys(password, secret.salt, secret.iterations),
      signal,
    );
    const ok = sameBytes(storedKey, secret.storedKey) && known;
    return ok && await this.holds(user, credential, 0) ? credential : null;
  }

  /**
   * Tells whether a login still stands: the user is in the file with the
   * line it logged in with. The file is looked at again (a `stat`, and a
   * reading if it changed) when the last look is older than `maxAgeMs`.
   *
   * @param user The user name.
   * @param credential The credential of the login ({@linkcode UserSecret.credential}).
   * @param maxAgeMs How old a look at the file may be, in milliseconds.
   * @returns False once the user has been removed or its line changed.
   */
  async holds(user: string, credential: string, maxAgeMs: number = RECHECK_MS): Promise<boolean> {
    if (performance.now() - this.#checkedAt >= maxAgeMs) await this.load().catch(() => {});
    return credential !== "" && this.#users.get(user)?.credential === credential;
  }

  async #reload(): Promise<number> {
    let info: Deno.FileInfo;
    this.#checkedAt = performance.now(); // a file that cannot be read is not looked at again sooner either
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
    const shapes = shapesOf([...secrets.values()].map(({ secret }) => secret));
    const derived = new Map<string, ScramSecret>();
    const users = new Map(secrets);
    // Derived now rather than at a user's first login, which would then be slower than an unknown user's.
    await Promise.all([...clear].map(async ([user, password]) => {
      const made = await this.#madeUp(user, shapes);
      const id = digest(`${made.iterations}\0${encodeBase64(made.salt)}\0${user}\0${password}`);
      const secret = this.#derived.get(id) ?? await this.#fromClear(password, made);
      derived.set(id, secret);
      users.set(user, { secret, credential: `clear:${digest(`${user}\0${password}`)}` });
    }));
    this.#users = users;
    this.#derived = derived;
    this.#shapes = shapes;
    this.#stamp = stamp;
    return users.size;
  }

  #parse(text: string): Parsed {
    const secrets = new Map<string, Account>();
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
      const problem = usersFileUserProblem(user);
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
        secrets.set(user, { secret, credential: `hashed:${value}` });
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

  /**
   * The secret of a line in clear: the salt and iteration count its name
   * would get as an unknown user, so that it looks like any other (and the
   * same whether the line is there or not).
   */
  async #fromClear(password: string, made: ScramSecret): Promise<ScramSecret> {
    const { iterations, salt } = made;
    const { storedKey, serverKey } = await KEY_DERIVATIONS.run(() => deriveKeys(password, salt, iterations));
    return { iterations, salt, storedKey, serverKey };
  }

  /** The made-up entry of a name: its shape drawn from `shapes`, salt and keys from HMACs of the name. */
  async #madeUp(user: string, shapes: [Shape, number][]): Promise<ScramSecret> {
    this.#mockKey ??= crypto.subtle.generateKey({ name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
    const key = await this.#mockKey;
    const [draw, salt, storedKey, serverKey] = await Promise.all(
      ["shape", "salt", "stored-key", "server-key"].map(async (label) =>
        new Uint8Array(await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(`${label}\0${user}`)))
      ),
    );
    // A point in [0, 1) from 48 bits of the name's HMAC; the shape whose share of the lines covers it.
    const point = new DataView(draw.buffer).getUint32(0) / 2 ** 32 + new DataView(draw.buffer).getUint16(4) / 2 ** 48;
    const shape = (shapes.find(([, upTo]) => point < upTo) ?? shapes[shapes.length - 1])[0];
    return { iterations: shape.iterations, salt: await saltOf(key, user, salt, shape.saltBytes), storedKey, serverKey };
  }
}

/** A made-up salt of `bytes` bytes: the first HMAC's bytes, then further ones as long as needed. */
async function saltOf(key: CryptoKey, user: string, first: Uint8Array, bytes: number): Promise<Uint8Array> {
  const parts = [first];
  for (let i = 1; parts.length * first.length < bytes; i++) {
    const more = await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(`salt\0${i}\0${user}`));
    parts.push(new Uint8Array(more));
  }
  const salt = new Uint8Array(parts.length * first.length);
  parts.forEach((part, i) => salt.set(part, i * first.length));
  return salt.subarray(0, bytes);
}

/**
 * The shapes of the hashed lines, each with the cumulative share of the
 * lines up to it (in a fixed order, so that a change to the file moves few
 * names); the default shape alone when there is no hashed line.
 */
function shapesOf(secrets: ScramSecret[]): [Shape, number][] {
  if (secrets.length === 0) return [[{ iterations: DEFAULT_ITERATIONS, saltBytes: SALT_BYTES }, 1]];
  const counts = new Map<string, { shape: Shape; count: number }>();
  for (const { iterations, salt } of secrets) {
    const id = `${iterations}:${salt.length}`;
    const entry = counts.get(id) ?? { shape: { iterations, saltBytes: salt.length }, count: 0 };
    entry.count++;
    counts.set(id, entry);
  }
  const sorted = [...counts.values()].sort((a, b) =>
    a.shape.iterations - b.shape.iterations || a.shape.saltBytes - b.shape.saltBytes
  );
  let upTo = 0;
  return sorted.map(({ shape, count }) => [shape, (upTo += count) / secrets.length]);
}

/** A hex SHA-256, to remember a line without keeping its password. */
function digest(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}
