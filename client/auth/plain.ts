/**
 * PLAIN (RFC 4616) on the client: the user name and password in one message.
 * The password crosses the wire, so the client uses PLAIN only on a TLS
 * connection, and only when the server does not offer SCRAM-SHA-256.
 *
 * @module
 */

import { encodePlain, type PlainCredentials } from "../../shared/sasl_plain.ts";
import { DfosError, Status } from "../../shared/status.ts";
import type { ClientMechanism } from "./mechanism.ts";

/**
 * Creates a PLAIN login attempt.
 *
 * @param credentials The user and password.
 * @returns The mechanism, ready to start.
 */
export function plainMechanism(credentials: PlainCredentials): ClientMechanism {
  return {
    name: "PLAIN",
    sendsPassword: true,
    start: () => Promise.resolve(encodePlain(credentials)),
    step: () => Promise.reject(new DfosError(Status.BAD_REQUEST, "PLAIN takes no challenge, but the server sent one")),
    finish: () => Promise.resolve(),
  };
}
