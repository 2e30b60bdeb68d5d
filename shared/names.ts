/**
 * The rules for remote file names and user names, in one place for both
 * sides: the client checks before it connects, the server before it touches
 * the disk. And how any text a peer sent is printed: escaped
 * (`printableName`), or cut to an escaped excerpt (`excerpt`).
 *
 * A remote name is relative and `/`-separated, like an object key: `a.txt`,
 * `notes/2026/today.txt`.
 *
 * @module
 */

/** The longest remote name, in UTF-8 bytes. */
export const MAX_NAME_BYTES = 1024;

/** The longest single segment of a name, in UTF-8 bytes (most file systems' limit). */
export const MAX_SEGMENT_BYTES = 255;

/** The longest user name, in UTF-8 bytes. */
export const MAX_USER_BYTES = 64;

/**
 * Segments starting with this are the server's own (temporary files); no name
 * may use them, in any case: on a case-insensitive file system (FAT, or ext4
 * with casefold) `.DFOS-partial` is the server's `.dfos-partial`.
 */
export const RESERVED_PREFIX = ".dfos-";

const encoder = new TextEncoder();
// C0 controls, DEL and C1 controls: they have no business in a file name and
// can carry terminal escape sequences.
// deno-lint-ignore no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

/**
 * Says what is wrong with a remote name, or returns undefined when it is
 * acceptable.
 *
 * @param name The name as given.
 * @param maxBytes The longest name allowed, in UTF-8 bytes: a server may be
 * set to allow less than {@linkcode MAX_NAME_BYTES}, never more.
 * @returns A phrase such as `segment ".." is not allowed`, or undefined.
 *
 * @example Usage
 * ```ts
 * import assert from "node:assert/strict";
 * import { nameProblem } from "./names.ts";
 * assert.equal(nameProblem("notes/today.txt"), undefined);
 * assert.notEqual(nameProblem("../etc/passwd"), undefined);
 * ```
 */
export function nameProblem(name: string, maxBytes: number = MAX_NAME_BYTES): string | undefined {
  if (name.length === 0) return "name is empty";
  if (!name.isWellFormed()) return "name is not valid Unicode";
  if (CONTROL.test(name)) return "name contains a control character";
  const limit = Math.min(maxBytes, MAX_NAME_BYTES);
  if (utf8Length(name) > limit) return `name is longer than ${limit} bytes`;
  if (name.includes("\\")) return 'name contains "\\" (use "/" between folders)';
  if (name.startsWith("/")) return 'name is absolute (it starts with "/")';
  if (name.normalize("NFC") !== name) return "name is not in Unicode normal form C";
  for (const segment of name.split("/")) {
    const problem = segmentProblem(segment);
    if (problem) return problem;
  }
  return undefined;
}

/** A well-formed string's length in UTF-8 bytes, counted without encoding it (push checks every local name). */
export function utf8Length(text: string): number {
  let bytes = text.length;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x80) continue;
    if (code < 0x800) {
      bytes += 1;
    } else if (code >= 0xd800 && code <= 0xdbff) {
      bytes += 2; // a surrogate pair: 2 units, 4 bytes
      i++;
    } else {
      bytes += 2;
    }
  }
  return bytes;
}

function segmentProblem(segment: string): string | undefined {
  if (segment === "") return 'name has an empty segment ("//" or a "/" at the end)';
  if (segment === "." || segment === "..") return `segment "${segment}" is not allowed`;
  if (isReserved(segment)) return `segments starting with "${RESERVED_PREFIX}" are reserved`;
  if (utf8Length(segment) > MAX_SEGMENT_BYTES) {
    return `a segment is longer than ${MAX_SEGMENT_BYTES} bytes`;
  }
  return undefined;
}

/**
 * Returns true when a segment starts with {@linkcode RESERVED_PREFIX} in any
 * case: `.DFOS-partial`, `.Dfos-x`, and `.dfo\u017f-x` (long s, which case
 * folding makes an "s"). The server skips such entries in listings and usage
 * counts as its own.
 *
 * @param segment One segment of a name, or a file name on disk.
 * @returns True for a reserved segment.
 *
 * @example Usage
 * ```ts
 * import assert from "node:assert/strict";
 * import { isReserved } from "./names.ts";
 * assert.ok(isReserved(".DFOS-partial"));
 * assert.ok(!isReserved("dfos-partial"));
 * ```
 */
export function isReserved(segment: string): boolean {
  // Upper then lower case: folds "\u017f" (long s) to "s" and "\u212a" (Kelvin) to "k", as file systems fold them.
  return segment.slice(0, 2 * RESERVED_PREFIX.length).toUpperCase().toLowerCase().startsWith(RESERVED_PREFIX);
}

/**
 * Says what is wrong with a user name, or returns undefined when it is
 * acceptable. A user name is one segment of a remote name (it names the
 * user's folder), does not start with ".", contains no ":" and is at most
 * {@linkcode MAX_USER_BYTES} bytes.
 *
 * @param user The user name.
 * @returns A phrase, or undefined.
 */
export function userProblem(user: string): string | undefined {
  if (user.includes("/")) return 'user name contains "/"';
  if (user.includes(":")) return 'user name contains ":"';
  if (user.startsWith(".")) return 'user name starts with "."';
  if (encoder.encode(user).length > MAX_USER_BYTES) return `user name is longer than ${MAX_USER_BYTES} bytes`;
  return nameProblem(user)?.replace(/^name/, "user name");
}

/**
 * What {@linkcode printableName} escapes: C0, DEL, C1, "\\", the bidi and
 * line-breaking format characters, and lone surrogates (half of a character,
 * which an encoder turns into U+FFFD). With the `u` flag a surrogate pair is
 * one character and stays.
 */
const UNPRINTABLE =
  // deno-lint-ignore no-control-regex
  /[\u0000-\u001f\u007f-\u009f\\\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]/gu;

/** The same characters without "\\": text holding none of them is printed as it is by {@linkcode printableText}. */
// deno-lint-ignore no-control-regex
const RAW = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]/u;

/**
 * Returns text safe to print on a terminal or write as one line of a log:
 * control characters and backslashes are written as escapes (`\x1b`, `\\`),
 * and so are the invisible characters that reorder or break a line of text
 * (bidirectional marks, embeddings, overrides and isolates; line and
 * paragraph separators: `\u202e`), which could make one name read as another
 * ("Trojan Source"), and lone surrogates. This is dfos's one escaping
 * function: `ls` prints names through it, the log every value of a record
 * (server/log_format.ts), the client every message a server sends
 * ({@linkcode printableText}), and {@linkcode excerpt} cuts text with it.
 *
 * @param name Any string: a name, or any other text a peer sent.
 * @returns The printable form: no newline, carriage return, C0, C1, DEL or bidi control.
 *
 * @example Usage
 * ```ts
 * import assert from "node:assert/strict";
 * import { printableName } from "./names.ts";
 * assert.equal(printableName("a\nb\x1b[2J"), "a\\x0ab\\x1b[2J");
 * ```
 */
export function printableName(name: string): string {
  return name.replace(UNPRINTABLE, (char) => {
    if (char === "\\") return "\\\\";
    const code = char.charCodeAt(0);
    if (code > 0xff) return `\\u${code.toString(16).padStart(4, "0")}`;
    return `\\x${code.toString(16).padStart(2, "0")}`;
  });
}

/**
 * {@linkcode printableName} for text that may already hold its escapes (a
 * message that quotes a name escaped before): text with nothing to escape but
 * backslashes is returned as it is, anything else goes through
 * `printableName` whole. Either way the result has no character that
 * `printableName` would escape other than backslashes.
 *
 * @param text Any string.
 * @returns `text`, or `printableName(text)`.
 *
 * @example Usage
 * ```ts
 * import assert from "node:assert/strict";
 * import { printableText } from "./names.ts";
 * assert.equal(printableText('name "a\\x1b" refused'), 'name "a\\x1b" refused');
 * assert.equal(printableText("a\nb"), "a\\x0ab");
 * ```
 */
export function printableText(text: string): string {
  return RAW.test(text) ? printableName(text) : text;
}

/** How many characters of a peer's text {@linkcode excerpt} shows by default. */
export const EXCERPT_CHARS = 100;

/**
 * Cuts text a peer sent to a short printable excerpt, for a log line or an
 * error message: at most `maxChars` characters once escaped
 * ({@linkcode printableName}), never half an escape or half a character, then
 * `... (N more characters)` when anything was cut (N counts UTF-16 code units
 * of the original). Only what is shown is read: a 60 KB text costs what 100
 * characters do.
 *
 * @param text Any string.
 * @param maxChars The longest excerpt, before the note of what was cut.
 * @returns The excerpt.
 *
 * @example Usage
 * ```ts
 * import assert from "node:assert/strict";
 * import { excerpt } from "./names.ts";
 * assert.equal(excerpt("x".repeat(60_000), 3), "xxx... (59997 more characters)");
 * assert.equal(excerpt("a\nb"), "a\\x0ab");
 * ```
 */
export function excerpt(text: string, maxChars: number = EXCERPT_CHARS): string {
  let shown = "";
  let used = 0;
  for (const char of text) {
    const piece = printableName(char);
    if (shown.length + piece.length > maxChars) break;
    shown += piece;
    used += char.length;
  }
  return used === text.length ? shown : `${shown}... (${text.length - used} more characters)`;
}
