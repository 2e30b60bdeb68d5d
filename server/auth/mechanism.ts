/**
 * The server's side of an authentication mechanism. A mechanism runs an
 * exchange of opaque messages: the client's AUTH carries the first, each
 * AUTH_CONTINUE / AUTH_RESPONSE pair one more, and AUTH_OK (with the server's
 * final message) or an AUTH_FAILED error ends it. PLAIN takes one step; a
 * challenge-response mechanism such as SCRAM takes two, through the same
 * frames.
 *
 * @module
 */

/** The result of one step of an exchange. */
export type AuthStep =
  | { kind: "continue"; data: Uint8Array }
  | { kind: "success"; user: string; data: Uint8Array }
  | { kind: "failure" };

/** One authentication attempt in progress. */
export interface AuthExchange {
  /**
   * Takes the client's next message.
   *
   * @param data The client's message.
   * @returns What to answer.
   */
  step(data: Uint8Array): Promise<AuthStep>;
}

/** A mechanism the server offers, by its SASL name. */
export interface AuthMechanism {
  /** The name sent in WELCOME and AUTH, e.g. `"PLAIN"`. */
  readonly name: string;
  /**
   * True when the client sends the password itself (PLAIN), which must then
   * travel over TLS only; false when the password never crosses the wire
   * (SCRAM). Nothing reads it yet: it is where refusing such a mechanism on a
   * connection without TLS hooks in.
   */
  readonly sendsPassword: boolean;
  /** Starts one attempt. */
  start(): AuthExchange;
}
