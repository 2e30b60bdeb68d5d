/**
 * `errorReply()`: the one place where anything thrown while serving a request
 * becomes an ERROR message. Only `DfosError` messages reach the client; any
 * other error is reported as INTERNAL and its details go to the server's log.
 * A message is printable and at most `MAX_ERROR_CHARS` long, whatever text of
 * the client's it quotes, so an ERROR always fits in its frame.
 * Also the two tests a session needs before it answers: a full disk, and a
 * connection that is already gone (nobody left to answer).
 *
 * @module
 */

import type { MessageOf } from "../shared/messages.ts";
import { printableText } from "../shared/names.ts";
import { DfosError, Status } from "../shared/status.ts";

/**
 * The longest ERROR message, in UTF-16 code units: as JSON (6 bytes for an
 * escaped control at most) it stays far inside a 64 KiB frame.
 */
export const MAX_ERROR_CHARS = 4000;

/** An ERROR message, and whether the error was unexpected (worth logging with details). */
export interface ErrorReply {
  /** The message to send. */
  message: MessageOf<"error">;
  /** True for errors that are not refusals: bugs, disk failures. */
  unexpected: boolean;
}

/**
 * Maps a thrown value to the ERROR message the client sees.
 *
 * @param error Anything thrown.
 * @returns The reply.
 */
export function errorReply(error: unknown): ErrorReply {
  if (error instanceof DfosError) {
    return { message: { type: "error", code: error.code, message: fitted(error.message) }, unexpected: false };
  }
  if (isNoSpace(error)) {
    return {
      message: { type: "error", code: Status.INTERNAL, message: "The server has no space left to store the file" },
      unexpected: true,
    };
  }
  return {
    message: { type: "error", code: Status.INTERNAL, message: "Internal server error (details are in the server log)" },
    unexpected: true,
  };
}

/** True for the error of a write that found the disk full (`ENOSPC`). */
export function isNoSpace(error: unknown): boolean {
  return error instanceof Error && /ENOSPC|No space left/i.test(error.message);
}

/** The message, printable, cut to {@linkcode MAX_ERROR_CHARS} (never inside a character) with a note of what was cut. */
function fitted(message: string): string {
  const text = printableText(message);
  if (text.length <= MAX_ERROR_CHARS) return text;
  let end = MAX_ERROR_CHARS;
  if (/[\ud800-\udbff]/.test(text[end - 1])) end--; // not half a surrogate pair
  return `${text.slice(0, end)}... (${text.length - end} more characters)`;
}

/** True for the error of a connection the peer reset or closed under us: nobody is left to answer. */
export function isConnectionLoss(error: unknown): boolean {
  return error instanceof Deno.errors.ConnectionReset || error instanceof Deno.errors.BrokenPipe ||
    error instanceof Deno.errors.BadResource || error instanceof Deno.errors.Interrupted ||
    error instanceof Deno.errors.UnexpectedEof;
}
