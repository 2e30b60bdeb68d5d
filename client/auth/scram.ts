/**
 * SCRAM-SHA-256 (RFC 5802, RFC 7677) on the client: the password never
 * crosses the wire, and the server must prove, with its final signature, that
 * it holds the user's ServerKey. A server that does not (a fake one) is
 * refused, whatever it answers: a wrong signature, no signature, or an AUTH_OK
 * before any challenge.
 *
 * The client also refuses a server-first message whose nonce does not extend
 * its own, and an iteration count outside 4096..10,000,000 (a fake server
 * cannot make offline guessing cheap, nor keep the client busy for minutes).
 *
 * @module
 */

import {
  authMessage,
  clientProof,
  deriveKeys,
  formatClientFinalWithoutProof,
  formatClientFirst,
  GS2_HEADER,
  makeNonce,
  MAX_ITERATIONS,
  MIN_ITERATIONS,
  parseServerFinal,
  parseServerFirst,
  sameBytes,
  SCRAM_SHA_256,
  serverSignature,
} from "../../shared/scram.ts";
import { encodeBase64 } from "../../shared/base64.ts";
import { DfosError, Status } from "../../shared/status.ts";
import type { ClientMechanism } from "./mechanism.ts";

/** The user and password to log in with. */
export interface ScramCredentials {
  /** The user name (escaped on the wire as RFC 5802 says). */
  user: string;
  /** The password (SASLprep applied before hashing). */
  password: string;
}

/** Options for {@linkcode scramMechanism}. */
export interface ScramClientOptions {
  /**
   * The client's nonce (tests pass a fixed one to replay the RFC 7677 example).
   *
   * @default {makeNonce()}
   */
  nonce?: string;
}

/**
 * Creates a SCRAM-SHA-256 login attempt.
 *
 * @example Usage
 * ```ts
 * import assert from "node:assert/strict";
 * import { scramMechanism } from "./scram.ts";
 * const mechanism = scramMechanism({ user: "user", password: "pencil" }, { nonce: "rOprNGfwEbeRWgbNEkqO" });
 * const first = new TextDecoder().decode(await mechanism.start());
 * assert.equal(first, "n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
 * ```
 *
 * @param credentials The user and password.
 * @param options A fixed nonce, for tests.
 * @returns The mechanism, ready to start.
 */
export function scramMechanism(credentials: ScramCredentials, options: ScramClientOptions = {}): ClientMechanism {
  return new ScramClient(credentials, options.nonce ?? makeNonce());
}

class ScramClient implements ClientMechanism {
  readonly name = SCRAM_SHA_256;
  readonly sendsPassword = false;
  readonly #credentials: ScramCredentials;
  readonly #nonce: string;
  #bare = "";
  /** The signature the server must send, once the challenge has been answered. */
  #expected: Uint8Array | null = null;

  constructor(credentials: ScramCredentials, nonce: string) {
    this.#credentials = credentials;
    this.#nonce = nonce;
  }

  start(): Promise<Uint8Array> {
    const first = formatClientFirst(this.#credentials.user, this.#nonce);
    this.#bare = first.slice(GS2_HEADER.length);
    return Promise.resolve(encoder.encode(first));
  }

  async step(challenge: Uint8Array): Promise<Uint8Array> {
    if (this.#expected !== null) throw refusal("the server sent a second challenge");
    const serverFirst = decoder.decode(challenge);
    let parsed;
    try {
      parsed = parseServerFirst(serverFirst);
    } catch (error) {
      throw refusal((error as Error).message);
    }
    const { nonce, salt, iterations } = parsed;
    if (!nonce.startsWith(this.#nonce) || nonce.length === this.#nonce.length) {
      throw refusal("the server's nonce does not extend the client's");
    }
    if (iterations < MIN_ITERATIONS || iterations > MAX_ITERATIONS) {
      throw refusal(`the server asks for ${iterations} iterations; dfos takes ${MIN_ITERATIONS} to ${MAX_ITERATIONS}`);
    }
    const keys = await deriveKeys(this.#credentials.password, salt, iterations);
    const withoutProof = formatClientFinalWithoutProof(GS2_HEADER, nonce);
    const message = authMessage(this.#bare, serverFirst, withoutProof);
    const proof = await clientProof(keys, message);
    this.#expected = await serverSignature(keys.serverKey, message);
    return encoder.encode(`${withoutProof},p=${encodeBase64(proof)}`);
  }

  finish(data: Uint8Array): Promise<void> {
    if (this.#expected === null) {
      return Promise.reject(
        refusal("the server accepted the login without a challenge, so it cannot be the server it claims to be"),
      );
    }
    let final;
    try {
      final = parseServerFinal(decoder.decode(data));
    } catch (error) {
      return Promise.reject(refusal((error as Error).message));
    }
    if ("error" in final) return Promise.reject(refusal(`the server answered "e=${final.error}"`));
    if (!sameBytes(final.signature, this.#expected)) {
      return Promise.reject(
        refusal(
          "the server's signature is wrong: it does not know the password, so it is not the server it claims to be",
        ),
      );
    }
    return Promise.resolve();
  }
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function refusal(detail: string): DfosError {
  return new DfosError(Status.BAD_REQUEST, `Cannot log in with ${SCRAM_SHA_256}: ${detail}`);
}
