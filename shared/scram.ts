/**
 * SCRAM-SHA-256 (RFC 5802 with RFC 7677): the maths and the four messages,
 * shared by the client's and the server's mechanism so that they cannot
 * disagree (the server's stored form of a password is in
 * server/auth/scram_secret.ts). WebCrypto does the hashing: PBKDF2, HMAC and
 * SHA-256.
 *
 * The exchange, in short (`H` is SHA-256, `HMAC` is HMAC-SHA-256):
 *
 *     SaltedPassword  = PBKDF2(SASLprep(password), salt, iterations)
 *     ClientKey       = HMAC(SaltedPassword, "Client Key")
 *     StoredKey       = H(ClientKey)                       (stored by the server)
 *     ServerKey       = HMAC(SaltedPassword, "Server Key") (stored by the server)
 *     AuthMessage     = client-first-bare "," server-first "," client-final-without-proof
 *     ClientProof     = ClientKey XOR HMAC(StoredKey, AuthMessage)
 *     ServerSignature = HMAC(ServerKey, AuthMessage)
 *
 * The server checks the proof by recovering ClientKey and comparing its hash
 * with StoredKey; the client checks ServerSignature, which only someone who
 * holds ServerKey can compute. The password never crosses the wire.
 *
 * Not supported: channel binding (the gs2 header is always `n,,`; a `p=`
 * request is refused), authorization identities other than the user itself,
 * and mandatory extensions (`m=`).
 *
 * @module
 */

import { decodeBase64, encodeBase64 } from "./base64.ts";
import { excerpt } from "./names.ts";

/** The mechanism's SASL name. */
export const SCRAM_SHA_256 = "SCRAM-SHA-256";

/** The fewest iterations dfos accepts, from a server (client side) or in a users file. */
export const MIN_ITERATIONS = 4096;

/** The most iterations dfos accepts: a fake server cannot make the client compute for minutes. */
export const MAX_ITERATIONS = 10_000_000;

/** Random bytes in each side's part of the nonce (base64: 24 characters). */
const NONCE_BYTES = 18;

/** Bytes of a SHA-256 digest: the length of every key, proof and signature. */
export const KEY_BYTES = 32;

/** The gs2 header of a client without channel binding. */
export const GS2_HEADER = "n,,";

const encoder = new TextEncoder();

/** The keys derived from a password: the client needs all three. */
export interface ScramKeys {
  /** `HMAC(SaltedPassword, "Client Key")`. */
  clientKey: Uint8Array;
  /** `H(ClientKey)`. */
  storedKey: Uint8Array;
  /** `HMAC(SaltedPassword, "Server Key")`. */
  serverKey: Uint8Array;
}

/** A parsed client-first message. */
export interface ClientFirst {
  /** The gs2 header as sent, with its two commas (`"n,,"`). */
  gs2Header: string;
  /** The channel binding flag: `"n"`, `"y"`, or `"p=NAME"` (refused by dfos). */
  channelBinding: string;
  /** The authorization identity (`a=`), unescaped; `""` when absent. */
  authzid: string;
  /** The user name (`n=`), unescaped. */
  user: string;
  /** The client's nonce (`r=`). */
  nonce: string;
  /** The message without its gs2 header: the first part of the AuthMessage. */
  bare: string;
}

/** A parsed server-first message. */
export interface ServerFirst {
  /** The client's nonce followed by the server's. */
  nonce: string;
  /** The user's salt. */
  salt: Uint8Array;
  /** PBKDF2 iterations. */
  iterations: number;
}

/** A parsed client-final message. */
export interface ClientFinal {
  /** The channel binding data (`c=`), base64 of the gs2 header without channel binding. */
  channelBinding: string;
  /** Both nonces (`r=`). */
  nonce: string;
  /** The proof (`p=`), 32 bytes. */
  proof: Uint8Array;
  /** The message up to the proof: the last part of the AuthMessage. */
  withoutProof: string;
}

/** A parsed server-final message: the server's signature, or its error. */
export type ServerFinal = { signature: Uint8Array } | { error: string };

/** Non-ASCII spaces (RFC 3454 table C.1.2), mapped to U+0020. U+200B is one, as in PostgreSQL. */
const NON_ASCII_SPACE = /[\u00A0\u1680\u2000-\u200B\u202F\u205F\u3000]/g;

/** "Commonly mapped to nothing" (RFC 3454 table B.1), removed (U+200B is already a space). */
const MAPPED_TO_NOTHING = /[\u00AD\u034F\u1806\u180B-\u180D\u200C\u200D\u2060\uFE00-\uFE0F\uFEFF]/g;

/**
 * Prepares a password as SASLprep (RFC 4013) maps it: non-ASCII spaces
 * become U+0020, the characters "commonly mapped to nothing" are removed,
 * then the text is normalised to NFKC. So `"ﬁ"` and `"fi"`, or a password
 * typed with a no-break space and one with a space, are the same password.
 *
 * The prohibition and bidirectional checks of SASLprep are not applied: a
 * password holding such characters is used as mapped (PostgreSQL, whose
 * format dfos stores, uses such a password unprepared). Both dfos sides
 * prepare the same way, so they always agree. User names are not prepared:
 * the server matches them exactly against the users file, as for PLAIN.
 *
 * @param password The password as typed.
 * @returns The prepared password.
 */
export function saslPrep(password: string): string {
  return password.replace(NON_ASCII_SPACE, " ").replace(MAPPED_TO_NOTHING, "").normalize("NFKC");
}

/**
 * Escapes a name for a SCRAM message (`saslname`): `=` becomes `=3D` and `,`
 * becomes `=2C`.
 *
 * @param name The user name.
 * @returns The escaped name.
 */
export function escapeSaslName(name: string): string {
  return name.replaceAll("=", "=3D").replaceAll(",", "=2C");
}

/**
 * Reverses {@linkcode escapeSaslName}.
 *
 * @param text An escaped name.
 * @returns The name.
 * @throws {SyntaxError} for a `=` not followed by `3D` or `2C`.
 */
export function unescapeSaslName(text: string): string {
  return text.replace(/=(3D|2C|.{0,2})/g, (escape, code: string) => {
    if (code === "3D") return "=";
    if (code === "2C") return ",";
    throw new SyntaxError(`user name has "${excerpt(escape)}": "=" must start "=3D" or "=2C"`);
  });
}

/**
 * Returns a fresh nonce: 18 random bytes in base64 (printable, no comma).
 *
 * @returns 24 characters.
 */
export function makeNonce(): string {
  return encodeBase64(crypto.getRandomValues(new Uint8Array(NONCE_BYTES)));
}

/**
 * Writes the client-first message (without channel binding).
 *
 * @param user The user name (escaped here).
 * @param nonce The client's nonce.
 * @returns `n,,n=USER,r=NONCE`.
 */
export function formatClientFirst(user: string, nonce: string): string {
  return `${GS2_HEADER}n=${escapeSaslName(user)},r=${nonce}`;
}

/**
 * Reads a client-first message.
 *
 * @param text The message.
 * @returns Its parts.
 * @throws {SyntaxError} for a malformed message or a mandatory extension.
 */
export function parseClientFirst(text: string): ClientFirst {
  const [flag, authzid, ...bareParts] = text.split(",");
  if (bareParts.length === 0) throw new SyntaxError('client-first message has no gs2 header ("n,,")');
  if (flag !== "n" && flag !== "y" && !/^p=[A-Za-z0-9.-]+$/.test(flag)) {
    throw new SyntaxError(`client-first message starts with "${excerpt(flag)}", not "n", "y" or "p=NAME"`);
  }
  if (authzid !== "" && !authzid.startsWith("a=")) {
    throw new SyntaxError(`client-first message has "${excerpt(authzid)}" where "a=" or nothing belongs`);
  }
  const bare = bareParts.join(",");
  if (bareParts[0].startsWith("m=")) throw new SyntaxError('client-first message asks for an extension ("m=")');
  const user = attribute(bareParts[0], "n", "client-first message");
  const nonce = attribute(bareParts[1], "r", "client-first message");
  checkNonce(nonce, "client-first message");
  checkExtensions(bareParts.slice(2), "client-first message");
  return {
    gs2Header: `${flag},${authzid},`,
    channelBinding: flag,
    authzid: authzid === "" ? "" : unescapeSaslName(authzid.slice(2)),
    user: unescapeSaslName(user),
    nonce,
    bare,
  };
}

/**
 * Writes the server-first message.
 *
 * @param first The nonce (the client's then the server's), salt and iterations.
 * @returns `r=NONCE,s=SALT,i=ITERATIONS`.
 */
export function formatServerFirst(first: ServerFirst): string {
  return `r=${first.nonce},s=${encodeBase64(first.salt)},i=${first.iterations}`;
}

/**
 * Reads a server-first message.
 *
 * @param text The message.
 * @returns Nonce, salt and iterations.
 * @throws {SyntaxError} for a malformed message or a mandatory extension.
 */
export function parseServerFirst(text: string): ServerFirst {
  const parts = text.split(",");
  if (parts[0].startsWith("m=")) throw new SyntaxError('server-first message asks for an extension ("m=")');
  const nonce = attribute(parts[0], "r", "server-first message");
  checkNonce(nonce, "server-first message");
  const salt = base64Attribute(attribute(parts[1], "s", "server-first message"), "salt");
  if (salt.length === 0) throw new SyntaxError("server-first message has an empty salt");
  const count = attribute(parts[2], "i", "server-first message");
  const iterations = /^[1-9]\d{0,9}$/.test(count) ? Number(count) : NaN;
  if (!Number.isSafeInteger(iterations)) {
    throw new SyntaxError(`server-first message has iteration count "${count}"`);
  }
  checkExtensions(parts.slice(3), "server-first message");
  return { nonce, salt, iterations };
}

/**
 * Writes the client-final message without its proof.
 *
 * @param gs2Header The gs2 header of the client-first message.
 * @param nonce Both nonces, as the server sent them.
 * @returns `c=BASE64(GS2HEADER),r=NONCE`.
 */
export function formatClientFinalWithoutProof(gs2Header: string, nonce: string): string {
  return `c=${encodeBase64(encoder.encode(gs2Header))},r=${nonce}`;
}

/**
 * Reads a client-final message.
 *
 * @param text The message.
 * @returns Its parts.
 * @throws {SyntaxError} for a malformed message.
 */
export function parseClientFinal(text: string): ClientFinal {
  const parts = text.split(",");
  const channelBinding = attribute(parts[0], "c", "client-final message");
  const nonce = attribute(parts[1], "r", "client-final message");
  // Extensions may come between the nonce and the proof, which is always last.
  if (parts.length < 3) throw new SyntaxError('client-final message has no proof ("p=")');
  const proof = base64Attribute(attribute(parts[parts.length - 1], "p", "client-final message"), "proof");
  if (proof.length !== KEY_BYTES) throw new SyntaxError(`client-final message has a proof of ${proof.length} bytes`);
  checkExtensions(parts.slice(2, -1), "client-final message");
  return { channelBinding, nonce, proof, withoutProof: parts.slice(0, -1).join(",") };
}

/**
 * Writes the server-final message.
 *
 * @param signature The server signature.
 * @returns `v=SIGNATURE`.
 */
export function formatServerFinal(signature: Uint8Array): string {
  return `v=${encodeBase64(signature)}`;
}

/**
 * Reads a server-final message.
 *
 * @param text The message.
 * @returns The signature, or the server's error value.
 * @throws {SyntaxError} for a malformed message.
 */
export function parseServerFinal(text: string): ServerFinal {
  const first = text.split(",")[0];
  if (first.startsWith("e=")) return { error: first.slice(2) };
  return { signature: base64Attribute(attribute(first, "v", "server-final message"), "signature") };
}

/**
 * Joins the three messages that both sides sign.
 *
 * @param clientFirstBare The client-first message without its gs2 header.
 * @param serverFirst The server-first message.
 * @param clientFinalWithoutProof The client-final message up to the proof.
 * @returns The AuthMessage.
 */
export function authMessage(clientFirstBare: string, serverFirst: string, clientFinalWithoutProof: string): string {
  return `${clientFirstBare},${serverFirst},${clientFinalWithoutProof}`;
}

/**
 * Derives the keys of a password (SASLprep applied here).
 *
 * @param password The password as typed.
 * @param salt The salt.
 * @param iterations PBKDF2 iterations.
 * @returns ClientKey, StoredKey and ServerKey.
 */
export async function deriveKeys(password: string, salt: Uint8Array, iterations: number): Promise<ScramKeys> {
  const passwordKey = await crypto.subtle.importKey("raw", encoder.encode(saslPrep(password)), "PBKDF2", false, [
    "deriveBits",
  ]);
  const salted = new Uint8Array(
    await crypto.subtle.deriveBits(
      { name: "PBKDF2", hash: "SHA-256", salt: salt.slice(), iterations },
      passwordKey,
      KEY_BYTES * 8,
    ),
  );
  const clientKey = await hmac(salted, "Client Key");
  return { clientKey, storedKey: await sha256(clientKey), serverKey: await hmac(salted, "Server Key") };
}

/**
 * Computes the client's proof.
 *
 * @param keys The client's keys.
 * @param message The AuthMessage.
 * @returns `ClientKey XOR HMAC(StoredKey, AuthMessage)`.
 */
export async function clientProof(
  keys: Pick<ScramKeys, "clientKey" | "storedKey">,
  message: string,
): Promise<Uint8Array> {
  return xor(keys.clientKey, await hmac(keys.storedKey, message));
}

/**
 * Checks a client's proof against the stored key, in constant time.
 *
 * @param storedKey The user's StoredKey.
 * @param message The AuthMessage.
 * @param proof The client's proof.
 * @returns True when `H(proof XOR HMAC(StoredKey, AuthMessage))` is StoredKey.
 */
export async function verifyClientProof(storedKey: Uint8Array, message: string, proof: Uint8Array): Promise<boolean> {
  const signature = await hmac(storedKey, message);
  const clientKey = proof.length === signature.length ? xor(proof, signature) : signature;
  return sameBytes(await sha256(clientKey), storedKey) && proof.length === signature.length;
}

/**
 * Computes the server's signature.
 *
 * @param serverKey The user's ServerKey.
 * @param message The AuthMessage.
 * @returns `HMAC(ServerKey, AuthMessage)`.
 */
export function serverSignature(serverKey: Uint8Array, message: string): Promise<Uint8Array> {
  return hmac(serverKey, message);
}

/**
 * Compares two byte strings in constant time for a given length.
 *
 * @param a One.
 * @param b The other.
 * @returns True when they are equal.
 */
export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  // Every byte is compared, whatever differs first. In plain JavaScript rather than node:crypto's
  // timingSafeEqual, which a client command would pay for at start-up (docs/PERFORMANCE.md, "Start-up").
  if (a.length !== b.length) return false;
  let difference = 0;
  for (let i = 0; i < a.length; i++) difference |= a[i] ^ b[i];
  return difference === 0;
}

/**
 * Returns the value of `name=value`, or throws.
 *
 * @param part One comma-separated part of a message.
 * @param name The attribute expected.
 * @param where The message, for the error.
 */
function attribute(part: string | undefined, name: string, where: string): string {
  if (part === undefined || !part.startsWith(`${name}=`)) {
    throw new SyntaxError(
      `${where} has ${part === undefined ? "nothing" : `"${excerpt(part)}"`} where "${name}=" belongs`,
    );
  }
  return part.slice(name.length + 1);
}

/** A nonce is one or more printable ASCII characters other than ",". */
function checkNonce(nonce: string, where: string): void {
  if (!/^[\x21-\x2b\x2d-\x7e]+$/.test(nonce)) {
    throw new SyntaxError(`${where} has a nonce that is empty or not printable`);
  }
}

/** Extensions (`x=value`) are allowed and ignored; anything else in their place is refused. */
function checkExtensions(parts: string[], where: string): void {
  const bad = parts.find((part) => !/^[A-Za-z]=/.test(part));
  if (bad !== undefined) throw new SyntaxError(`${where} has "${excerpt(bad)}" where an extension ("x=...") belongs`);
}

/**
 * Decodes strict base64 (shared/base64.ts), or throws.
 *
 * @param text The text.
 * @param what What it holds, for the error.
 * @returns The bytes.
 * @throws {SyntaxError} when `text` is not strict base64.
 */
export function base64Attribute(text: string, what: string): Uint8Array {
  const bytes = decodeBase64(text);
  if (bytes === null) throw new SyntaxError(`${what} is not base64: "${text}"`);
  return bytes;
}

async function hmac(key: Uint8Array, data: string): Promise<Uint8Array> {
  const cryptoKey = await crypto.subtle.importKey("raw", key.slice(), { name: "HMAC", hash: "SHA-256" }, false, [
    "sign",
  ]);
  return new Uint8Array(await crypto.subtle.sign("HMAC", cryptoKey, encoder.encode(data)));
}

async function sha256(data: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", data.slice()));
}

function xor(a: Uint8Array, b: Uint8Array): Uint8Array {
  const result = new Uint8Array(a.length);
  for (let i = 0; i < a.length; i++) result[i] = a[i] ^ b[i];
  return result;
}
