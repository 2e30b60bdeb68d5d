/**
 * `SigV4Signer`: AWS Signature Version 4 for S3 requests sent in headers
 * (`Authorization: AWS4-HMAC-SHA256 ...`), on `node:crypto`'s synchronous
 * HMAC and SHA-256 (2.4 times WebCrypto's one-shot digest here, and no
 * promise per step). The day's signing key is derived once and kept.
 *
 * It signs what it is given and nothing else: the caller passes the exact
 * path (already encoded as it will be sent), the query pairs, the headers it
 * will send and the payload's hash (or `UNSIGNED-PAYLOAD`).
 *
 * @module
 */

import { createHash, createHmac } from "node:crypto";
import type { AwsCredentials } from "./aws_credentials.ts";

/** The payload hash that leaves the body out of the signature (S3 accepts it on any request). */
export const UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD";

/** The SHA-256 of an empty body, hex. */
export const EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/** What {@linkcode SigV4Signer.sign} signs. */
export interface SignInput {
  /** The HTTP method. */
  method: string;
  /** The host header as sent (`127.0.0.1:7480`: with the port unless it is the scheme's default). */
  host: string;
  /** The path as sent, already percent-encoded (see {@linkcode encodeKeyPath}). */
  path: string;
  /** The query, as name/value pairs not yet encoded (a flag such as `uploads` has value ""). */
  query: [string, string][];
  /** Headers that will be sent and must be signed (names any case). */
  headers: Record<string, string>;
  /** The body's SHA-256 in hex, or {@linkcode UNSIGNED_PAYLOAD}. */
  payloadHash: string;
  /** The signing time (default: now). */
  date?: Date;
}

/**
 * Encodes a string as SigV4 and S3 want it in a query or a path segment:
 * everything but `A-Z a-z 0-9 - _ . ~` percent-encoded (RFC 3986), UTF-8.
 *
 * @example Usage
 * ```ts
 * import { uriEncode } from "./sigv4.ts";
 * if (uriEncode("a b+c*") !== "a%20b%2Bc%2A") throw new Error("wrong encoding");
 * ```
 *
 * @param text The text.
 * @returns The encoded text.
 */
export function uriEncode(text: string): string {
  return encodeURIComponent(text).replace(/[!'()*]/g, (c) => "%" + c.charCodeAt(0).toString(16).toUpperCase());
}

/**
 * Encodes an object key for the path: each `/`-separated segment with
 * {@linkcode uriEncode}, the slashes kept.
 *
 * @param key The key.
 * @returns The encoded key.
 */
export function encodeKeyPath(key: string): string {
  return key.split("/").map(uriEncode).join("/");
}

/** Returns the hex SHA-256 of a body. */
export function sha256Hex(body: Uint8Array | string): string {
  return createHash("sha256").update(body).digest("hex");
}

/** Signs S3 requests with one set of credentials, for one region. */
export class SigV4Signer {
  #credentials: AwsCredentials;
  #region: string;
  #service: string;
  #keyDay = "";
  #key: Uint8Array = new Uint8Array();

  /**
   * @param credentials The access key, secret and (optional) session token.
   * @param region The region in the signature's scope (`us-east-1`).
   * @param service The service in the scope (default `s3`).
   */
  constructor(credentials: AwsCredentials, region: string, service = "s3") {
    this.#credentials = credentials;
    this.#region = region;
    this.#service = service;
  }

  /**
   * Returns the headers to add to the request: `x-amz-date`,
   * `x-amz-content-sha256`, `x-amz-security-token` (with a session token)
   * and `authorization`.
   *
   * @param input What is signed.
   * @returns The headers to send besides `input.headers`.
   */
  sign(input: SignInput): Record<string, string> {
    const stamp = (input.date ?? new Date()).toISOString().replace(/[-:]/g, "").replace(/\.\d+/, "");
    const day = stamp.slice(0, 8);
    const added: Record<string, string> = { "x-amz-date": stamp, "x-amz-content-sha256": input.payloadHash };
    if (this.#credentials.sessionToken) added["x-amz-security-token"] = this.#credentials.sessionToken;
    const all = new Map<string, string>();
    all.set("host", input.host);
    for (const [name, value] of Object.entries(input.headers)) {
      all.set(name.toLowerCase(), value.trim().replace(/\s+/g, " "));
    }
    for (const [name, value] of Object.entries(added)) all.set(name, value);
    const names = [...all.keys()].sort();
    const canonicalHeaders = names.map((name) => `${name}:${all.get(name)}\n`).join("");
    const signedHeaders = names.join(";");
    const query = input.query
      .map(([name, value]) => [uriEncode(name), uriEncode(value)])
      .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0))
      .map(([name, value]) => `${name}=${value}`)
      .join("&");
    const canonicalRequest = [
      input.method,
      input.path,
      query,
      canonicalHeaders,
      signedHeaders,
      input.payloadHash,
    ].join("\n");
    const scope = `${day}/${this.#region}/${this.#service}/aws4_request`;
    const stringToSign = `AWS4-HMAC-SHA256\n${stamp}\n${scope}\n${sha256Hex(canonicalRequest)}`;
    const signature = createHmac("sha256", this.#signingKey(day)).update(stringToSign).digest("hex");
    added.authorization =
      `AWS4-HMAC-SHA256 Credential=${this.#credentials.accessKeyId}/${scope}, SignedHeaders=${signedHeaders}, Signature=${signature}`;
    return added;
  }

  /** The day's key: HMAC of the secret through day, region, service and `aws4_request`. */
  #signingKey(day: string): Uint8Array {
    if (this.#keyDay !== day) {
      let key: Uint8Array = new TextEncoder().encode("AWS4" + this.#credentials.secretAccessKey);
      for (const part of [day, this.#region, this.#service, "aws4_request"]) {
        key = createHmac("sha256", key).update(part).digest();
      }
      this.#key = key;
      this.#keyDay = day;
    }
    return this.#key;
  }
}
