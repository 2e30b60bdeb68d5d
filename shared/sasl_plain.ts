/**
 * The PLAIN mechanism's single message (RFC 4616): `authzid NUL authcid NUL
 * passwd`, UTF-8. Both sides use these two functions, so they cannot disagree.
 *
 * @module
 */

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/** A user name and password. */
export interface PlainCredentials {
  /** The user to log in as. */
  user: string;
  /** The password. */
  password: string;
}

/**
 * Encodes credentials as a PLAIN message with an empty authorization identity.
 *
 * @param credentials The user and password.
 * @returns The message bytes.
 */
export function encodePlain(credentials: PlainCredentials): Uint8Array {
  return encoder.encode(`\0${credentials.user}\0${credentials.password}`);
}

/**
 * Decodes a PLAIN message. An authorization identity other than empty or the
 * user itself is refused, as are NUL bytes inside the fields.
 *
 * @param bytes The message.
 * @returns The credentials, or null when the message is malformed.
 */
export function decodePlain(bytes: Uint8Array): PlainCredentials | null {
  let text: string;
  try {
    text = decoder.decode(bytes);
  } catch {
    return null;
  }
  const parts = text.split("\0");
  if (parts.length !== 3) return null;
  const [authzid, user, password] = parts;
  if (user === "" || (authzid !== "" && authzid !== user)) return null;
  return { user, password };
}
