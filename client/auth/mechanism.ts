/**
 * The client's side of an authentication mechanism (see
 * server/auth/mechanism.ts for the exchange).
 *
 * @module
 */

/** One login attempt, from the client's side. */
export interface ClientMechanism {
  /** The mechanism's name, as offered in WELCOME. */
  readonly name: string;
  /**
   * True when the password itself is sent (PLAIN), which must then travel
   * over TLS only; false when it never crosses the wire (SCRAM). The client
   * never uses such a mechanism on a connection without TLS.
   */
  readonly sendsPassword: boolean;
  /** Returns the first message, sent in AUTH. */
  start(): Promise<Uint8Array>;
  /**
   * Answers a server challenge (AUTH_CONTINUE) with the next message (AUTH_RESPONSE).
   *
   * @param challenge The server's message.
   */
  step(challenge: Uint8Array): Promise<Uint8Array>;
  /**
   * Checks the server's final message (AUTH_OK); throws if the server is not
   * who it claims to be.
   *
   * @param data The server's final message.
   */
  finish(data: Uint8Array): Promise<void>;
}
