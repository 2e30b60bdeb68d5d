/**
 * `errorReply()`: the one place where anything thrown while serving a request
 * becomes an ERROR message. Only `DfosError` messages reach the client; any
 * other error is reported as INTERNAL and its details go to the server's log.
 * A message is printable and at most `MAX_ERROR_CHARS` long, whatever text of
 * the client's it quotes, so an ERROR always fits in its frame.
 * Also what a session needs to tell what happened before it answers or
 * logs: a full disk or another storage error, a connection that is already
 * gone (nobody left to answer), and a TLS client at a plaintext port.
 *
 * @module
 */

import type { MessageOf } from "../shared/messages.ts";
import { printableText } from "../shared/names.ts";
import { DfosError, Status, statusName } from "../shared/status.ts";

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
  /**
   * The failure's label for the totals (`ServerStats.failure`): the status
   * name of a refusal, `STORAGE` for an error of the disk, `INTERNAL` for
   * anything else (a bug).
   */
  label: string;
}

/**
 * Maps a thrown value to the ERROR message the client sees.
 *
 * @param error Anything thrown.
 * @returns The reply.
 */
export function errorReply(error: unknown): ErrorReply {
  if (error instanceof DfosError) {
    const label = statusName(error.code);
    return { message: { type: "error", code: error.code, message: fitted(error.message) }, unexpected: false, label };
  }
  if (isNoSpace(error)) {
    return {
      message: { type: "error", code: Status.INTERNAL, message: "The server has no space left to store the file" },
      unexpected: true,
      label: "STORAGE",
    };
  }
  return {
    message: { type: "error", code: Status.INTERNAL, message: "Internal server error (details are in the server log)" },
    unexpected: true,
    label: isStorageError(error) ? "STORAGE" : "INTERNAL",
  };
}

/**
 * True for an error of the operating system that is not the connection's:
 * a file or folder that could not be read or written (`EIO`, `EACCES`,
 * `ENOSPC`, ...). Its message names what failed; a stack trace adds nothing.
 */
export function isStorageError(error: unknown): boolean {
  // A sandbox's refusal is a bug of the server's, not the storage's.
  if (isConnectionLoss(error) || !(error instanceof Error) || error instanceof Deno.errors.NotCapable) return false;
  return isNoSpace(error) || /\(os error \d+\)/.test(error.message) ||
    Object.values(Deno.errors).some((kind) => error instanceof kind);
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

/**
 * True for the error of a connection the peer reset or closed under us:
 * nobody is left to answer. That includes a peer that hung up inside a frame
 * (`FrameDecoderStream`'s "the stream ended inside a frame", which the channel
 * reports as `BAD_REQUEST`: a client killed mid-upload) or inside a body
 * (`BodyReceiver`'s "Connection closed in the middle of a body").
 */
export function isConnectionLoss(error: unknown): boolean {
  if (error instanceof DfosError) {
    return (error.code === Status.BAD_REQUEST && /the stream ended inside a frame/.test(error.message)) ||
      (error.code === Status.ABORTED && /^Connection closed in the middle of a body/.test(error.message));
  }
  return error instanceof Deno.errors.ConnectionReset || error instanceof Deno.errors.BrokenPipe ||
    error instanceof Deno.errors.BadResource || error instanceof Deno.errors.Interrupted ||
    error instanceof Deno.errors.UnexpectedEof || error instanceof Deno.errors.ConnectionAborted;
}

/**
 * True for the error of a first frame whose length is the start of a TLS
 * record of a handshake (bytes 0x16 0x03: a ClientHello): a TLS client at a
 * plaintext port. Its 4 bytes read as a length of 369 MB or so, which the
 * frame decoder refuses from the header (`TOO_LARGE`), before reading on.
 */
export function isTlsClientHello(error: unknown): boolean {
  if (!(error instanceof DfosError) || error.code !== Status.TOO_LARGE) return false;
  const length = /^Cannot decode frame: length (\d+) exceeds/.exec(error.message);
  return length !== null && Math.floor(Number(length[1]) / 0x10000) === 0x1603;
}
