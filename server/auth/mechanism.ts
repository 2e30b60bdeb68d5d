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
  | {
    kind: "continue";
    data: Uint8Array;
    /** The user name the client tried, known or not, once the exchange got that far (for the throttle and the log). */
    user?: string;
  }
  | {
    kind: "success";
    user: string;
    data: Uint8Array;
    /**
     * What the login was checked against (`UserSecret.credential`): the
     * session ends once the user's line no longer says the same.
     */
    credential: string;
  }
  | {
    kind: "failure";
    /** The user name the client tried, known or not, once the exchange got that far (for the throttle and the log). */
    user?: string;
  };

/** One authentication attempt in progress. */
export interface AuthExchange {
  /**
   * Takes the client's next message. A malformed one is refused with a
   * `DfosError` (the session counts it as a failed login).
   *
   * @param data The client's message.
   * @param signal Aborted when the connection is closing: a step waiting for its turn at costly work gives up.
   * @returns What to answer.
   */
  step(data: Uint8Array, signal?: AbortSignal): Promise<AuthStep>;
}

/** A mechanism the server offers, by its SASL name. */
export interface AuthMechanism {
  /** The name sent in WELCOME and AUTH, e.g. `"PLAIN"`. */
  readonly name: string;
  /**
   * True when the client sends the password itself (PLAIN), which must then
   * travel over TLS only; false when the password never crosses the wire
   * (SCRAM). The server neither offers nor accepts such a mechanism on a
   * connection without TLS.
   */
  readonly sendsPassword: boolean;
  /** Starts one attempt. */
  start(): AuthExchange;
}
