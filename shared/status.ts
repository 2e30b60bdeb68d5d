/**
 * Status codes carried by ERROR frames, their default texts, and `DfosError`,
 * the one error class that crosses the wire.
 *
 * @module
 */

/** Every code an ERROR frame can carry. The numbers are part of the protocol. */
export const Status = {
  /** The request is malformed or arrives out of order. */
  BAD_REQUEST: 1,
  /** The message type or mechanism is not supported by this peer. */
  UNSUPPORTED: 2,
  /** The client speaks a protocol version the server does not. */
  VERSION: 3,
  /** A request other than HELLO or AUTH arrived before login. */
  AUTH_REQUIRED: 4,
  /** Unknown user or wrong password (deliberately the same code), or a login refused after too many failures. */
  AUTH_FAILED: 5,
  /** The named file does not exist. */
  NOT_FOUND: 6,
  /** The remote name breaks the naming rules. */
  BAD_NAME: 7,
  /** The body's length or digest did not match its END frame. */
  INTEGRITY: 8,
  /** A frame, body or value is larger than allowed. */
  TOO_LARGE: 9,
  /** The server is at its connection limit or shutting down. */
  BUSY: 10,
  /** The name is in use by something else (a folder, or a file where a folder is needed). */
  CONFLICT: 11,
  /** The path exists but dfos refuses it (a symbolic link, a special file). */
  FORBIDDEN: 12,
  /** The sender gave up on a body before its END frame. */
  ABORTED: 13,
  /** Anything else; details are in the server's log, not on the wire. */
  INTERNAL: 14,
} as const;

/** A status code number. */
export type StatusCode = typeof Status[keyof typeof Status];

const STATUS_NAMES = new Map<number, string>(
  Object.entries(Status).map(([name, code]) => [code, name]),
);

/** Returns the symbolic name of a status code (`"NOT_FOUND"`), or `"UNKNOWN"`. */
export function statusName(code: number): string {
  return STATUS_NAMES.get(code) ?? "UNKNOWN";
}

/** Returns true when `code` is one of the codes in {@linkcode Status}. */
export function isStatusCode(code: number): code is StatusCode {
  return STATUS_NAMES.has(code);
}

/**
 * A refusal that is meant to be seen by the other side: its message is sent
 * in an ERROR frame as is, with its status code.
 *
 * @example Usage
 * ```ts
 * import assert from "node:assert/strict";
 * import { DfosError, Status } from "./status.ts";
 * const error = new DfosError(Status.NOT_FOUND, 'Cannot read "a.txt": no such file');
 * assert.equal(error.code, Status.NOT_FOUND);
 * ```
 */
export class DfosError extends Error {
  /** The status code sent with the message. */
  readonly code: StatusCode;

  /**
   * Creates a refusal.
   *
   * @param code The status code.
   * @param message One sentence that says what failed and why.
   */
  constructor(code: StatusCode, message: string) {
    super(message);
    this.name = "DfosError";
    this.code = code;
  }
}
