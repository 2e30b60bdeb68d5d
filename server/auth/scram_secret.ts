/**
 * The server's stored form of a password, as PostgreSQL writes it:
 * `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>` (base64), and
 * {@linkcode makeSecret}, which derives one from a password with a fresh
 * salt. Only the server and `dfos passwd` read or write it: the client never
 * sees a stored secret. A parsed secret always has 32-byte keys and an
 * iteration count within the range shared/scram.ts accepts.
 *
 * @example Usage
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatSecret, isStoredSecret, makeSecret, parseSecret } from "./scram_secret.ts";
 * const secret = await makeSecret("pencil");
 * const text = formatSecret(secret);
 * assert.ok(isStoredSecret(text));
 * assert.deepEqual(parseSecret(text), secret);
 * ```
 *
 * @module
 */

import { encodeBase64 } from "../../shared/base64.ts";
import {
  base64Attribute,
  deriveKeys,
  KEY_BYTES,
  MAX_ITERATIONS,
  MIN_ITERATIONS,
  SCRAM_SHA_256,
} from "../../shared/scram.ts";

/**
 * PBKDF2 iterations of a new stored password, of the made-up entry of an
 * unknown user and of a `user:password` line: 4096, the minimum RFC 7677
 * asks for and PostgreSQL's default.
 */
export const DEFAULT_ITERATIONS = 4096;

/** Bytes of salt in a new stored password. */
export const SALT_BYTES = 16;

/** The prefix of a stored password in a users file. */
const SECRET_PREFIX = `${SCRAM_SHA_256}$`;

/** What the server stores for a user: enough to check a proof and sign, not enough to log in. */
export interface ScramSecret {
  /** PBKDF2 iterations. */
  iterations: number;
  /** The salt. */
  salt: Uint8Array;
  /** `H(ClientKey)`. */
  storedKey: Uint8Array;
  /** `HMAC(SaltedPassword, "Server Key")`. */
  serverKey: Uint8Array;
}

/**
 * Makes the stored form of a password, with a fresh random salt.
 *
 * @param password The password as typed.
 * @param iterations PBKDF2 iterations.
 * @returns What the server keeps.
 */
export async function makeSecret(password: string, iterations: number = DEFAULT_ITERATIONS): Promise<ScramSecret> {
  const salt = crypto.getRandomValues(new Uint8Array(SALT_BYTES));
  const { storedKey, serverKey } = await deriveKeys(password, salt, iterations);
  return { iterations, salt, storedKey, serverKey };
}

/**
 * Tells whether a users file value is a stored password rather than a password in clear.
 *
 * @param value What follows `user:` on a line.
 * @returns True when it starts `SCRAM-SHA-256$`.
 */
export function isStoredSecret(value: string): boolean {
  return value.startsWith(SECRET_PREFIX);
}

/**
 * Writes a stored password as PostgreSQL does:
 * `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>` (base64).
 *
 * @param secret What the server keeps.
 * @returns The text.
 */
export function formatSecret(secret: ScramSecret): string {
  return `${SECRET_PREFIX}${secret.iterations}:${encodeBase64(secret.salt)}$${encodeBase64(secret.storedKey)}:${
    encodeBase64(secret.serverKey)
  }`;
}

/**
 * Reads a stored password written by {@linkcode formatSecret} (or PostgreSQL).
 *
 * @param text The text.
 * @returns The secret.
 * @throws {SyntaxError} for a malformed text, a key that is not 32 bytes, or
 * an iteration count outside {@linkcode MIN_ITERATIONS}..{@linkcode MAX_ITERATIONS}.
 */
export function parseSecret(text: string): ScramSecret {
  const match = /^SCRAM-SHA-256\$(\d+):([^$:]+)\$([^$:]+):([^$:]+)$/.exec(text);
  if (!match) {
    throw new SyntaxError(`stored password is not "${SECRET_PREFIX}<iterations>:<salt>$<StoredKey>:<ServerKey>"`);
  }
  const iterations = Number(match[1]);
  if (!Number.isSafeInteger(iterations) || iterations < MIN_ITERATIONS || iterations > MAX_ITERATIONS) {
    throw new SyntaxError(
      `stored password has ${match[1]} iterations: dfos takes ${MIN_ITERATIONS} to ${MAX_ITERATIONS}`,
    );
  }
  const salt = base64Attribute(match[2], "salt");
  const storedKey = base64Attribute(match[3], "StoredKey");
  const serverKey = base64Attribute(match[4], "ServerKey");
  if (storedKey.length !== KEY_BYTES || serverKey.length !== KEY_BYTES) {
    throw new SyntaxError(`stored password has keys of ${storedKey.length} and ${serverKey.length} bytes, not 32`);
  }
  return { iterations, salt, storedKey, serverKey };
}
