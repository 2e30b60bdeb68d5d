/**
 * PLAIN (RFC 4616) on the server: one step, the password checked against the
 * users file in constant time (hashed lines too: the password is derived
 * with the line's salt and iterations, in the turn of the process's bounded
 * PBKDF2 queue, `KEY_DERIVATIONS`). The password crosses the wire, so the
 * server offers PLAIN on TLS connections only (`sendsPassword`).
 *
 * @module
 */

import { decodePlain } from "../../shared/sasl_plain.ts";
import type { UserFile } from "../users.ts";
import type { AuthExchange, AuthMechanism, AuthStep } from "./mechanism.ts";

/** The PLAIN mechanism, checking against a users file. */
export class PlainMechanism implements AuthMechanism {
  readonly name = "PLAIN";
  readonly sendsPassword = true;
  readonly #users: UserFile;

  /** @param users The credentials to check against. */
  constructor(users: UserFile) {
    this.#users = users;
  }

  start(): AuthExchange {
    return {
      step: async (data, signal): Promise<AuthStep> => {
        const credentials = decodePlain(data);
        if (credentials === null) return { kind: "failure" };
        const credential = await this.#users.verify(credentials.user, credentials.password, signal);
        return credential !== null
          ? { kind: "success", user: credentials.user, data: new Uint8Array(0), credential }
          : { kind: "failure", user: credentials.user };
      },
    };
  }
}
