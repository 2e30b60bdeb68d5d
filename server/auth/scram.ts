/**
 * SCRAM-SHA-256 (RFC 5802, RFC 7677) on the server, in two steps:
 *
 * 1. AUTH carries client-first (`n,,n=USER,r=CNONCE`); the server answers
 *    AUTH_CONTINUE with server-first (`r=CNONCE+SNONCE,s=SALT,i=ITERATIONS`).
 * 2. AUTH_RESPONSE carries client-final (`c=biws,r=NONCE,p=PROOF`); the
 *    server checks the proof against the user's StoredKey and answers AUTH_OK
 *    with server-final (`v=SIGNATURE`), or fails (ERROR `AUTH_FAILED`).
 *
 * An unknown user gets the same two steps with a made-up salt and keys
 * (`UserFile.lookup`), so nothing but the final failure, identical to a wrong
 * password's, tells it apart. A user removed from the users file, or whose
 * password changed, between the two steps fails too. A malformed message, a
 * channel binding request (`p=`) or another authorization identity is refused
 * as a protocol error, whatever the user: that says nothing about who exists.
 *
 * @module
 */

import { encodeBase64 } from "../../shared/base64.ts";
import {
  authMessage,
  formatServerFinal,
  formatServerFirst,
  makeNonce,
  parseClientFinal,
  parseClientFirst,
  SCRAM_SHA_256,
  serverSignature,
  verifyClientProof,
} from "../../shared/scram.ts";
import { excerpt } from "../../shared/names.ts";
import { DfosError, Status } from "../../shared/status.ts";
import type { UserFile } from "../users.ts";
import type { AuthExchange, AuthMechanism, AuthStep } from "./mechanism.ts";

/** Options for {@linkcode ScramMechanism}. */
export interface ScramMechanismOptions {
  /**
   * Makes the server's part of each nonce (tests pass a fixed one to replay
   * the RFC 7677 example).
   *
   * @default {makeNonce}
   */
  serverNonce?: () => string;
}

/** The SCRAM-SHA-256 mechanism, checking against a users file. */
export class ScramMechanism implements AuthMechanism {
  readonly name = SCRAM_SHA_256;
  readonly sendsPassword = false;
  readonly #users: UserFile;
  readonly #serverNonce: () => string;

  /**
   * @param users The credentials to check against.
   * @param options The nonce maker.
   */
  constructor(users: UserFile, options: ScramMechanismOptions = {}) {
    this.#users = users;
    this.#serverNonce = options.serverNonce ?? makeNonce;
  }

  start(): AuthExchange {
    return new ScramExchange(this.#users, this.#serverNonce());
  }
}

/** One attempt: client-first, then client-final. */
class ScramExchange implements AuthExchange {
  readonly #users: UserFile;
  readonly #serverNonce: string;
  /** What the second step needs from the first; null before it. */
  #first: {
    user: string;
    known: boolean;
    credential: string;
    gs2Header: string;
    nonce: string;
    bare: string;
    serverFirst: string;
    storedKey: Uint8Array;
    serverKey: Uint8Array;
  } | null = null;
  #done = false;

  constructor(users: UserFile, serverNonce: string) {
    this.#users = users;
    this.#serverNonce = serverNonce;
  }

  step(data: Uint8Array): Promise<AuthStep> {
    if (this.#done) return Promise.reject(refusal("the exchange is over"));
    return this.#first === null ? this.#clientFirst(data) : this.#clientFinal(data);
  }

  async #clientFirst(data: Uint8Array): Promise<AuthStep> {
    const text = utf8(data);
    let first;
    try {
      first = parseClientFirst(text);
    } catch (error) {
      throw refusal((error as Error).message);
    }
    if (first.channelBinding.startsWith("p=")) {
      throw new DfosError(
        Status.UNSUPPORTED,
        `Cannot log in with ${SCRAM_SHA_256}: channel binding ("${excerpt(first.channelBinding)}") is not supported; ` +
          'start with "n,,"',
      );
    }
    if (first.authzid !== "" && first.authzid !== first.user) {
      throw refusal(
        `logging in as one user ("${excerpt(first.user)}") for another ("${excerpt(first.authzid)}") is not supported`,
      );
    }
    const { secret, known, credential } = await this.#users.lookup(first.user);
    const nonce = first.nonce + this.#serverNonce;
    const serverFirst = formatServerFirst({ nonce, salt: secret.salt, iterations: secret.iterations });
    this.#first = {
      user: first.user,
      known,
      credential,
      gs2Header: first.gs2Header,
      nonce,
      bare: first.bare,
      serverFirst,
      storedKey: secret.storedKey,
      serverKey: secret.serverKey,
    };
    return { kind: "continue", data: encoder.encode(serverFirst), user: first.user };
  }

  async #clientFinal(data: Uint8Array): Promise<AuthStep> {
    this.#done = true;
    const first = this.#first!;
    const text = utf8(data);
    let final;
    try {
      final = parseClientFinal(text);
    } catch (error) {
      throw refusal((error as Error).message);
    }
    if (final.channelBinding !== encodeBase64(encoder.encode(first.gs2Header))) {
      throw refusal('client-final message has channel binding data ("c=") that does not match its gs2 header');
    }
    if (final.nonce !== first.nonce) throw refusal("client-final message has another nonce than the server's");
    const message = authMessage(first.bare, first.serverFirst, final.withoutProof);
    // Both computed whatever the outcome: a made-up user costs what a real one does.
    const valid = await verifyClientProof(first.storedKey, message, final.proof);
    const signature = await serverSignature(first.serverKey, message);
    if (!valid || !first.known) return { kind: "failure", user: first.user };
    // The file is looked at again: a user removed or changed since the challenge no longer logs in.
    if (!await this.#users.holds(first.user, first.credential, 0)) return { kind: "failure", user: first.user };
    const { user, credential } = first;
    return { kind: "success", user, data: encoder.encode(formatServerFinal(signature)), credential };
  }
}

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

function utf8(data: Uint8Array): string {
  try {
    return decoder.decode(data);
  } catch {
    throw refusal("message is not UTF-8");
  }
}

function refusal(detail: string): DfosError {
  return new DfosError(Status.BAD_REQUEST, `Cannot log in with ${SCRAM_SHA_256}: ${detail}`);
}
