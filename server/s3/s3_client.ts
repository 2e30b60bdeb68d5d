/**
 * `openObjectStore`: an {@linkcode ObjectStore} on a real S3 engine, with
 * dfos's own SigV4 signer (sigv4.ts) and XML reader (s3_xml.ts); requests go
 * through `fetch`, except bodies of 1 MiB or more sent, which go on a
 * connection of their own (http1_request.ts). Chosen over
 * `@aws-sdk/client-s3` and `aws4fetch` by measurement (docs/PERFORMANCE.md,
 * "S3 client"; bench/s3_clients.ts).
 *
 * Nothing stays open between requests that a caller must close: fetch keeps
 * its own pool, and the connections of large bodies close with their answer.
 * No request is retried: a failure is an {@linkcode ObjectStoreError} whose
 * kind tells the caller whether to retry. A private CA for a TLS endpoint is
 * given to Deno the usual way (`DENO_CERT`).
 *
 * Addressing is path-style (`ENDPOINT/BUCKET/KEY`) when asked or when the
 * endpoint is an IP address or `localhost`, else virtual-hosted
 * (`BUCKET.HOST/KEY`). Bodies sent are signed by their SHA-256, except over
 * TLS or loopback, where `UNSIGNED-PAYLOAD` saves the hash (S3 accepts
 * both; `payloadSigning` overrides).
 *
 * What this client does about the engines' quirks (Ceph RGW 16, the engine
 * the tests run on, started by tools/s3/start-s3.sh):
 * - A PUT's or a CompleteMultipartUpload's `If-Match` is sent without the
 *   ETag's quotes (RGW matches only the unquoted form).
 * - CompleteMultipartUpload's answer lacks the ETag on RGW: the object's
 *   facts are read back with a HeadObject.
 * - A request that carried `If-Match` or `If-None-Match` and is answered
 *   500 with no S3 error code or `UnknownError` is a lost race on RGW (the
 *   losers of an `If-Match` race on PutObject mostly get 500 UnknownError,
 *   not 412): kind `precondition`, status and code kept.
 * - RGW answers the completion of an aborted upload 500 InternalError ("This
 *   multipart completion is already in progress"): when ListParts then says
 *   the upload is gone, the error is `not-found`.
 * - An S3 error inside a 200 answer (CopyObject, CompleteMultipartUpload)
 *   is an error.
 * - RGW 16 ignores conditions on CompleteMultipartUpload, on CopyObject's
 *   target and on DeleteObject (see docs/PERFORMANCE.md, "S3 client"): the
 *   caller must not rely on them there; this client sends them anyway, for
 *   engines that honour them.
 * - A copy's condition on its source is sent under S3's name
 *   (`x-amz-copy-source-if-match`) and RGW 16's (`x-amz-copy-if-match`):
 *   RGW honours its own only.
 *
 * @module
 */

import { type AwsCredentials, loadAwsCredentials } from "./aws_credentials.ts";
import type {
  Conditions,
  CopyOptions,
  DeleteOptions,
  GetOptions,
  ListObjectsOptions,
  MultipartInfo,
  ObjectErrorKind,
  ObjectHead,
  ObjectPage,
  ObjectStore,
  PartInfo,
  PutOptions,
} from "./object_store.ts";
import { ObjectStoreError } from "./object_store.ts";
import { completeMultipartXml, xmlBlocks, xmlText } from "./s3_xml.ts";
import { http1Request, type Http1Target } from "./http1_request.ts";
import { EMPTY_SHA256, encodeKeyPath, sha256Hex, SigV4Signer, UNSIGNED_PAYLOAD } from "./sigv4.ts";

/** Options of {@linkcode openObjectStore}. */
export interface S3StoreOptions {
  /** The bucket. */
  bucket: string;
  /** The key prefix every key is under, without a trailing `/` ("" or absent: the whole bucket). */
  prefix?: string;
  /** The engine's URL (`http://127.0.0.1:7480`, `https://s3.eu-west-1.amazonaws.com`). */
  endpoint: string;
  /** The SigV4 region. @default {"us-east-1"} */
  region?: string;
  /** Path-style addressing. @default {true for an IP address or localhost, else false} */
  pathStyle?: boolean;
  /** The access key (default: {@linkcode loadAwsCredentials}). */
  credentials?: AwsCredentials;
  /**
   * `sha256`: bodies signed by their hash; `unsigned`: `UNSIGNED-PAYLOAD`;
   * `auto`: unsigned over TLS or loopback, else sha256.
   * @default {"auto"}
   */
  payloadSigning?: "auto" | "sha256" | "unsigned";
  /** Milliseconds to wait for an answer's headers before the request is abandoned (`unavailable`). @default {60000} */
  timeoutMs?: number;
  /** The size of the chunks a GetObject's body is read in. @default {1048576} */
  readChunkSize?: number;
  /**
   * `auto`: large bodies sent (a PutObject or UploadPart of 1 MiB or more)
   * go over a connection of their own (http1_request.ts: a fifth of fetch's
   * CPU time per GiB), everything else through `fetch` and its pool of
   * connections (a GetObject's body costs the same CPU either way, and
   * fetch keeps its connection); `fetch`: everything through `fetch`.
   * @default {"auto"}
   */
  transport?: "auto" | "fetch";
}

/** From this size on, a body sent goes over a connection of its own (with transport `auto`). */
export const LARGE_BODY = 1 << 20;

/** A request to the engine. */
export interface S3Request {
  /** The HTTP method. */
  method: "GET" | "HEAD" | "PUT" | "POST" | "DELETE";
  /** The object's full key (prefix included), or undefined for the bucket itself. */
  key?: string;
  /** Query name/value pairs (a flag such as `uploads` has value ""). */
  query?: [string, string][];
  /** Headers to send (signed). */
  headers?: Record<string, string>;
  /** The body. */
  body?: Uint8Array | string;
  /** The operation's name for messages (`PutObject`). */
  operation: string;
  /** Stops the request (and the answer's body). */
  signal?: AbortSignal;
}

/**
 * Signs and sends requests to one bucket of an engine, and turns failures
 * into {@linkcode ObjectStoreError}s. The layer under
 * {@linkcode S3ObjectStore}; tests use it for bucket operations.
 */
export class S3Connection {
  /** The bucket. */
  readonly bucket: string;
  #signer: SigV4Signer;
  #origin: string;
  #host: string;
  #basePath: string;
  #unsigned: boolean;
  #timeoutMs: number;
  #readChunkSize: number;
  #ownConnections: boolean;
  #target: Http1Target;

  /**
   * @param options Where and how (bucket, endpoint, region, addressing, signing).
   * @param credentials The access key.
   */
  constructor(options: S3StoreOptions, credentials: AwsCredentials) {
    const url = new URL(options.endpoint);
    if (url.protocol !== "http:" && url.protocol !== "https:") {
      throw new TypeError(`Cannot use S3 endpoint "${options.endpoint}": not an http or https URL`);
    }
    const ipOrLocal = /^(\d+\.\d+\.\d+\.\d+|\[[0-9a-f:.]+\]|localhost)$/i.test(url.hostname);
    const pathStyle = options.pathStyle ?? ipOrLocal;
    const loopback = /^(127\.\d+\.\d+\.\d+|\[::1\]|localhost)$/i.test(url.hostname);
    const signing = options.payloadSigning ?? "auto";
    this.bucket = options.bucket;
    this.#unsigned = signing === "unsigned" || (signing === "auto" && (url.protocol === "https:" || loopback));
    this.#signer = new SigV4Signer(credentials, options.region ?? "us-east-1");
    const base = url.pathname.replace(/\/+$/, "");
    if (pathStyle) {
      this.#origin = url.origin;
      this.#host = url.host;
      this.#basePath = `${base}/${encodeKeyPath(options.bucket)}`;
    } else {
      this.#origin = `${url.protocol}//${options.bucket}.${url.host}`;
      this.#host = `${options.bucket}.${url.host}`;
      this.#basePath = base;
    }
    this.#timeoutMs = options.timeoutMs ?? 60_000;
    this.#readChunkSize = options.readChunkSize ?? 1 << 20;
    this.#ownConnections = (options.transport ?? "auto") === "auto";
    const origin = new URL(this.#origin);
    this.#target = {
      hostname: origin.hostname.replace(/^\[|\]$/g, ""),
      port: Number(origin.port) || (origin.protocol === "https:" ? 443 : 80),
      tls: origin.protocol === "https:",
      host: this.#host,
    };
  }

  /**
   * Whether a request goes over a connection of its own (see
   * {@linkcode S3StoreOptions.transport}).
   *
   * @param request The request.
   * @returns True for a connection of its own, false for fetch's.
   */
  ownConnection(request: S3Request): boolean {
    const body = request.body;
    return this.#ownConnections && typeof body === "object" && body.byteLength >= LARGE_BODY;
  }

  /**
   * Sends one signed request and returns the answer, whatever its status;
   * only a request that got no answer throws (`unavailable`).
   *
   * @param request What to send.
   * @returns The engine's answer (its body to be read or cancelled).
   */
  async send(request: S3Request): Promise<Response> {
    const path = request.key === undefined ? `${this.#basePath}/` : `${this.#basePath}/${encodeKeyPath(request.key)}`;
    const query = request.query ?? [];
    const headers = { ...request.headers };
    const body = typeof request.body === "string" ? new TextEncoder().encode(request.body) : request.body;
    const payloadHash = body === undefined || body.byteLength === 0
      ? EMPTY_SHA256
      : this.#unsigned
      ? UNSIGNED_PAYLOAD
      : sha256Hex(body);
    Object.assign(
      headers,
      this.#signer.sign({ method: request.method, host: this.#host, path, query, headers, payloadHash }),
    );
    const search = query.length === 0 ? "" : "?" +
      query.map(([name, value]) => value === "" ? encodeQuery(name) : `${encodeQuery(name)}=${encodeQuery(value)}`)
        .join("&");
    if (this.ownConnection(request)) {
      try {
        return await http1Request(this.#target, {
          method: request.method,
          path: path + search,
          headers,
          body,
          signal: request.signal,
          timeoutMs: this.#timeoutMs,
          readChunkSize: this.#readChunkSize,
        });
      } catch (error) {
        if (request.signal?.aborted) throw request.signal.reason;
        throw new ObjectStoreError(
          error instanceof TypeError ? "refused" : "unavailable",
          `Cannot ${request.operation} ${this.#what(request)}: ${describeFetchError(error)}`,
          { cause: error },
        );
      }
    }
    const abort = new AbortController();
    const onAbort = () => abort.abort(request.signal?.reason);
    request.signal?.addEventListener("abort", onAbort, { once: true });
    const timer = setTimeout(() => abort.abort(new Error(`no answer in ${this.#timeoutMs} ms`)), this.#timeoutMs);
    try {
      return await fetch(this.#origin + path + search, {
        method: request.method,
        headers,
        body: body as BodyInit | undefined,
        signal: abort.signal,
      });
    } catch (error) {
      if (request.signal?.aborted) throw request.signal.reason;
      const why = abort.signal.aborted ? (abort.signal.reason as Error).message : describeFetchError(error);
      throw new ObjectStoreError("unavailable", `Cannot ${request.operation} ${this.#what(request)}: ${why}`, {
        cause: error,
      });
    } finally {
      clearTimeout(timer);
      request.signal?.removeEventListener("abort", onAbort);
    }
  }

  /**
   * Sends a request and returns its answer when it is a 2xx (body unread);
   * anything else is read and thrown as an {@linkcode ObjectStoreError}.
   *
   * @param request What to send.
   * @returns The successful answer.
   */
  async request(request: S3Request): Promise<Response> {
    const response = await this.send(request);
    if (response.ok) return response;
    throw await this.failure(request, response);
  }

  /**
   * Sends a request and returns its answer's text when it is a 2xx and has
   * no S3 `<Error>` (CopyObject and CompleteMultipartUpload can fail inside
   * a 200).
   *
   * @param request What to send.
   * @returns The body's text.
   */
  async requestText(request: S3Request): Promise<string> {
    const response = await this.request(request);
    const text = await response.text();
    if (/^\s*(<\?xml[^>]*\?>\s*)?<Error>/.test(text)) {
      throw this.#error(request, response.status, xmlText(text, "Code") ?? "", xmlText(text, "Message") ?? "");
    }
    return text;
  }

  /**
   * Reads a failed answer's S3 error (its body is consumed) and returns the
   * error to throw.
   *
   * @param request The request that failed.
   * @param response Its answer (not 2xx).
   * @returns The error.
   */
  async failure(request: S3Request, response: Response): Promise<ObjectStoreError> {
    const text = request.method === "HEAD" ? (await response.body?.cancel(), "") : await response.text();
    return this.#error(request, response.status, xmlText(text, "Code") ?? "", xmlText(text, "Message") ?? "");
  }

  #error(request: S3Request, status: number, code: string, message: string): ObjectStoreError {
    const conditional = Object.keys(request.headers ?? {}).some((name) =>
      /^(x-amz-copy-(source-)?)?if-(none-)?match$/i.test(name)
    );
    const kind = errorKind(status, code, conditional);
    const said = [status === 200 ? "" : String(status), code, message].filter((part) => part !== "").join(" ");
    return new ObjectStoreError(
      kind,
      `Cannot ${request.operation} ${this.#what(request)}: ${said || "no reason given"}`,
      {
        status,
        code,
      },
    );
  }

  #what(request: S3Request): string {
    return request.key === undefined ? `bucket "${this.bucket}"` : `"${this.bucket}/${request.key}"`;
  }
}

/** Query encoding for the URL: as SigV4's, so the engine computes the same canonical query. */
function encodeQuery(text: string): string {
  return encodeURIComponent(text).replace(/[!'()*]/g, (c) => "%" + c.charCodeAt(0).toString(16).toUpperCase());
}

/** A fetch failure's reason, with its cause (`Connection refused`) where there is one. */
function describeFetchError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = error.cause instanceof Error ? error.cause.message : "";
  return cause && !error.message.includes(cause) ? `${error.message}: ${cause}` : error.message;
}

/**
 * Which {@linkcode ObjectErrorKind} an S3 error is.
 *
 * @param status The HTTP status.
 * @param code S3's error code, or "".
 * @param conditional Whether the request carried `If-Match` or `If-None-Match`.
 * @returns The kind.
 */
export function errorKind(status: number, code: string, conditional: boolean): ObjectErrorKind {
  if (status === 404 || code === "NoSuchKey" || code === "NoSuchUpload") return "not-found";
  if (status === 412 || code === "PreconditionFailed") return "precondition";
  if (status === 409 || code === "ConditionalRequestConflict" || code === "OperationAborted") return "conflict";
  // Ceph RGW 16: the losers of an If-Match race on PutObject mostly get 500 UnknownError instead of 412.
  if (status === 500 && conditional && (code === "" || code === "UnknownError")) {
    return "precondition";
  }
  if (status >= 500 || status === 0 || code === "SlowDown" || code === "RequestTimeout") return "unavailable";
  return "refused";
}

/** An ETag without its quotes (and without a weak `W/`). */
function unquote(etag: string): string {
  return etag.replace(/^W\//, "").replace(/^"(.*)"$/, "$1");
}

/** An ETag with its quotes. */
function quote(etag: string): string {
  return etag.startsWith('"') ? etag : `"${etag}"`;
}

/** The `x-amz-meta-*` headers for some metadata. */
function metadataHeaders(metadata: Record<string, string> | undefined): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(metadata ?? {})) headers[`x-amz-meta-${name.toLowerCase()}`] = value;
  return headers;
}

/** The condition headers of a write (If-Match unquoted: RGW matches only that form). */
function writeConditions(options: Conditions | undefined): Record<string, string> {
  const headers: Record<string, string> = {};
  if (options?.ifMatch !== undefined) headers["if-match"] = unquote(options.ifMatch);
  if (options?.ifNoneMatch !== undefined) headers["if-none-match"] = options.ifNoneMatch;
  return headers;
}

/** An object's facts from a HeadObject's or GetObject's headers. */
function headFrom(key: string, headers: Headers): ObjectHead {
  const metadata: Record<string, string> = {};
  for (const [name, value] of headers) {
    if (name.startsWith("x-amz-meta-")) metadata[name.slice("x-amz-meta-".length)] = value;
  }
  const range = /\/(\d+)$/.exec(headers.get("content-range") ?? "");
  const lastModified = Date.parse(headers.get("last-modified") ?? "");
  return {
    key,
    size: range ? Number(range[1]) : Number(headers.get("content-length") ?? 0),
    etag: headers.get("etag") ?? "",
    lastModified: Number.isNaN(lastModified) ? 0 : lastModified,
    metadata,
  };
}

/** Compares keys in S3's order (UTF-8 bytes; UTF-16 code units differ only for astral against U+E000-U+FFFF). */
function compareKeys(a: string, b: string): number {
  const x = new TextEncoder().encode(a);
  const y = new TextEncoder().encode(b);
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i] - y[i];
  return x.length - y.length;
}

/**
 * The {@linkcode ObjectStore} of one bucket and key prefix on an S3 engine.
 * Keys given to it are relative to the prefix; it adds `PREFIX/` on the way
 * out and strips it from what it lists.
 */
export class S3ObjectStore implements ObjectStore {
  /** `s3://BUCKET/PREFIX`. */
  readonly label: string;
  /** The signed requests underneath. */
  readonly connection: S3Connection;
  #prefix: string;
  #chunkSize: number;

  /**
   * @param options Where and how.
   * @param credentials The access key.
   */
  constructor(options: S3StoreOptions, credentials: AwsCredentials) {
    const prefix = (options.prefix ?? "").replace(/^\/+|\/+$/g, "");
    this.#prefix = prefix === "" ? "" : `${prefix}/`;
    this.label = `s3://${options.bucket}${prefix === "" ? "" : `/${prefix}`}`;
    this.connection = new S3Connection(options, credentials);
    this.#chunkSize = options.readChunkSize ?? 1 << 20;
  }

  async head(key: string): Promise<ObjectHead | null> {
    const request: S3Request = { method: "HEAD", key: this.#prefix + key, operation: "HeadObject" };
    const response = await this.connection.send(request);
    await response.body?.cancel();
    if (response.status === 404) return null;
    if (!response.ok) throw await this.connection.failure(request, response);
    return headFrom(key, response.headers);
  }

  async get(
    key: string,
    options: GetOptions = {},
  ): Promise<{ head: ObjectHead; body: ReadableStream<Uint8Array> } | null> {
    const headers: Record<string, string> = {};
    if (options.ifMatch !== undefined) headers["if-match"] = quote(options.ifMatch);
    const range = options.range;
    if (range !== undefined) {
      if (range.length === 0) {
        // No Range header can ask for nothing: the facts alone, with the same condition.
        const request: S3Request = { method: "HEAD", key: this.#prefix + key, headers, operation: "GetObject" };
        const response = await this.connection.send(request);
        await response.body?.cancel();
        if (response.status === 404) return null;
        if (!response.ok) throw await this.connection.failure(request, response);
        return { head: headFrom(key, response.headers), body: new ReadableStream({ start: (c) => c.close() }) };
      }
      headers.range = `bytes=${range.offset}-${range.offset + range.length - 1}`;
    }
    const request: S3Request = {
      method: "GET",
      key: this.#prefix + key,
      headers,
      operation: "GetObject",
      signal: options.signal,
    };
    const response = await this.connection.send(request);
    if (response.status === 404) {
      const error = await this.connection.failure(request, response);
      if (error.code === "NoSuchKey" || error.code === "") return null;
      throw error;
    }
    if (!response.ok) throw await this.connection.failure(request, response);
    return { head: headFrom(key, response.headers), body: this.#largeChunks(response.body, options.signal) };
  }

  /**
   * The body re-read in chunks of `readChunkSize` (a BYOB read with `min`:
   * one promise per chunk here instead of one per 64 KiB from fetch). An
   * aborted `signal` errors the stream with its reason and frees the body.
   */
  #largeChunks(body: ReadableStream<Uint8Array> | null, signal?: AbortSignal): ReadableStream<Uint8Array> {
    if (body === null) return new ReadableStream({ start: (controller) => controller.close() });
    const reader = body.getReader({ mode: "byob" });
    const size = this.#chunkSize;
    let stopped = false;
    let onAbort = () => {};
    const stop = () => {
      stopped = true;
      signal?.removeEventListener("abort", onAbort);
    };
    return new ReadableStream<Uint8Array>({
      start(controller) {
        onAbort = () => {
          if (stopped) return;
          stop();
          controller.error(signal!.reason);
          reader.cancel(signal!.reason).catch(() => {});
        };
        if (signal?.aborted) onAbort();
        else signal?.addEventListener("abort", onAbort, { once: true });
      },
      async pull(controller) {
        let read: ReadableStreamReadResult<Uint8Array>;
        try {
          read = await reader.read(new Uint8Array(size), { min: size });
        } catch (error) {
          if (stopped) return;
          stop();
          controller.error(error);
          return;
        }
        if (stopped) return;
        if (read.value !== undefined && read.value.byteLength > 0) controller.enqueue(read.value);
        // A read shorter than `min` comes only at the end; the next one says done.
        if (read.done) {
          stop();
          controller.close();
        }
      },
      async cancel(reason) {
        stop();
        await reader.cancel(reason);
      },
    }, { highWaterMark: 0 });
  }

  async put(key: string, body: Uint8Array, options: PutOptions = {}): Promise<string> {
    const response = await this.connection.request({
      method: "PUT",
      key: this.#prefix + key,
      headers: { ...metadataHeaders(options.metadata), ...writeConditions(options) },
      body,
      operation: "PutObject",
    });
    await response.body?.cancel();
    return response.headers.get("etag") ?? "";
  }

  async delete(key: string, options: DeleteOptions = {}): Promise<void> {
    const request: S3Request = {
      method: "DELETE",
      key: this.#prefix + key,
      headers: writeConditions(options),
      operation: "DeleteObject",
    };
    const response = await this.connection.send(request);
    await response.body?.cancel();
    if (response.ok || response.status === 404) return;
    throw await this.connection.failure(request, response);
  }

  async copy(from: string, to: string, options: CopyOptions = {}): Promise<string> {
    const headers: Record<string, string> = {
      "x-amz-copy-source": `/${encodeKeyPath(this.connection.bucket)}/${encodeKeyPath(this.#prefix + from)}`,
      ...writeConditions(options),
    };
    if (options.ifSourceMatch !== undefined) {
      // S3's name, and the one RGW 16 reads (it ignores S3's).
      headers["x-amz-copy-source-if-match"] = quote(options.ifSourceMatch);
      headers["x-amz-copy-if-match"] = quote(options.ifSourceMatch);
    }
    if (options.metadata !== undefined) {
      headers["x-amz-metadata-directive"] = "REPLACE";
      Object.assign(headers, metadataHeaders(options.metadata));
    }
    const text = await this.connection.requestText({
      method: "PUT",
      key: this.#prefix + to,
      headers,
      operation: `CopyObject from "${this.connection.bucket}/${this.#prefix + from}" to`,
    });
    return quote(xmlText(text, "ETag") ?? "");
  }

  async list(prefix: string, options: ListObjectsOptions = {}): Promise<ObjectPage> {
    const query: [string, string][] = [["list-type", "2"], ["prefix", this.#prefix + prefix]];
    if (options.startAfter !== undefined) query.push(["start-after", this.#prefix + options.startAfter]);
    if (options.maxKeys !== undefined) query.push(["max-keys", String(options.maxKeys)]);
    if (options.delimiter !== undefined) query.push(["delimiter", options.delimiter]);
    const text = await this.connection.requestText({ method: "GET", query, operation: `ListObjectsV2 "${prefix}" of` });
    const strip = (key: string) => key.startsWith(this.#prefix) ? key.slice(this.#prefix.length) : key;
    const objects = xmlBlocks(text, "Contents").map((block): ObjectHead => ({
      key: strip(xmlText(block, "Key") ?? ""),
      size: Number(xmlText(block, "Size") ?? 0),
      etag: xmlText(block, "ETag") ?? "",
      lastModified: Date.parse(xmlText(block, "LastModified") ?? "") || 0,
      metadata: {},
    }));
    const prefixes = xmlBlocks(text, "CommonPrefixes").map((block) => strip(xmlText(block, "Prefix") ?? ""));
    let next: string | null = null;
    if (xmlText(text, "IsTruncated") === "true") {
      const lastObject = objects.at(-1)?.key;
      const lastPrefix = prefixes.at(-1);
      // After a common prefix, skip every key under it (they would fold into it again).
      const afterPrefix = lastPrefix === undefined ? undefined : lastPrefix + "\u{10FFFF}";
      next = lastObject === undefined
        ? afterPrefix ?? null
        : afterPrefix === undefined || compareKeys(lastObject, lastPrefix!) > 0
        ? lastObject
        : afterPrefix;
    }
    return { objects, prefixes, next };
  }

  async createMultipart(key: string, options: { metadata?: Record<string, string> } = {}): Promise<string> {
    const text = await this.connection.requestText({
      method: "POST",
      key: this.#prefix + key,
      query: [["uploads", ""]],
      headers: metadataHeaders(options.metadata),
      operation: "CreateMultipartUpload",
    });
    const uploadId = xmlText(text, "UploadId");
    if (!uploadId) {
      throw new ObjectStoreError(
        "unavailable",
        `Cannot CreateMultipartUpload "${this.connection.bucket}/${this.#prefix + key}": the answer has no UploadId`,
        { status: 200 },
      );
    }
    return uploadId;
  }

  async uploadPart(key: string, uploadId: string, partNumber: number, body: Uint8Array): Promise<string> {
    const response = await this.connection.request({
      method: "PUT",
      key: this.#prefix + key,
      query: [["partNumber", String(partNumber)], ["uploadId", uploadId]],
      body,
      operation: `UploadPart ${partNumber} of`,
    });
    await response.body?.cancel();
    return response.headers.get("etag") ?? "";
  }

  async completeMultipart(key: string, uploadId: string, parts: PartInfo[], options?: Conditions): Promise<ObjectHead> {
    try {
      await this.connection.requestText({
        method: "POST",
        key: this.#prefix + key,
        query: [["uploadId", uploadId]],
        headers: { "content-type": "application/xml", ...writeConditions(options) },
        body: completeMultipartXml(parts.map((part) => ({ partNumber: part.partNumber, etag: quote(part.etag) }))),
        operation: "CompleteMultipartUpload",
      });
    } catch (error) {
      // RGW answers the completion of an aborted upload 500 InternalError ("already in progress"): not-found.
      if (error instanceof ObjectStoreError && error.status === 500 && await this.#uploadGone(key, uploadId)) {
        throw new ObjectStoreError("not-found", `${error.message} (the upload does not exist)`, {
          status: 404,
          code: "NoSuchUpload",
          cause: error,
        });
      }
      throw error;
    }
    // RGW answers with an empty ETag: the facts come from the object itself.
    const head = await this.head(key);
    if (head === null) {
      throw new ObjectStoreError(
        "not-found",
        `Cannot CompleteMultipartUpload "${this.connection.bucket}/${
          this.#prefix + key
        }": the object is gone after completion`,
        { status: 404 },
      );
    }
    return head;
  }

  /** Whether a multipart upload is gone (ListParts says not-found). */
  async #uploadGone(key: string, uploadId: string): Promise<boolean> {
    try {
      await this.listParts(key, uploadId);
      return false;
    } catch (error) {
      return error instanceof ObjectStoreError && error.kind === "not-found";
    }
  }

  async abortMultipart(key: string, uploadId: string): Promise<void> {
    const request: S3Request = {
      method: "DELETE",
      key: this.#prefix + key,
      query: [["uploadId", uploadId]],
      operation: "AbortMultipartUpload",
    };
    const response = await this.connection.send(request);
    if (response.ok || response.status === 404) {
      await response.body?.cancel();
      return;
    }
    throw await this.connection.failure(request, response);
  }

  async listParts(key: string, uploadId: string): Promise<PartInfo[]> {
    const parts: PartInfo[] = [];
    let marker = "";
    for (;;) {
      const query: [string, string][] = [["uploadId", uploadId]];
      if (marker !== "") query.push(["part-number-marker", marker]);
      const text = await this.connection.requestText({
        method: "GET",
        key: this.#prefix + key,
        query,
        operation: "ListParts",
      });
      for (const block of xmlBlocks(text, "Part")) {
        parts.push({
          partNumber: Number(xmlText(block, "PartNumber")),
          etag: quote(xmlText(block, "ETag") ?? ""),
          size: Number(xmlText(block, "Size") ?? 0),
          lastModified: Date.parse(xmlText(block, "LastModified") ?? "") || 0,
        });
      }
      const next = xmlText(text, "NextPartNumberMarker") ?? "";
      if (xmlText(text, "IsTruncated") !== "true" || next === "" || next === marker) break;
      marker = next;
    }
    return parts;
  }

  async listMultipartUploads(prefix: string): Promise<MultipartInfo[]> {
    const uploads: MultipartInfo[] = [];
    let keyMarker = "";
    let idMarker = "";
    for (;;) {
      const query: [string, string][] = [["uploads", ""], ["prefix", this.#prefix + prefix]];
      if (keyMarker !== "") query.push(["key-marker", keyMarker], ["upload-id-marker", idMarker]);
      const text = await this.connection.requestText({
        method: "GET",
        query,
        operation: `ListMultipartUploads "${prefix}" of`,
      });
      for (const block of xmlBlocks(text, "Upload")) {
        const key = xmlText(block, "Key") ?? "";
        uploads.push({
          key: key.startsWith(this.#prefix) ? key.slice(this.#prefix.length) : key,
          uploadId: xmlText(block, "UploadId") ?? "",
          initiated: Date.parse(xmlText(block, "Initiated") ?? "") || 0,
        });
      }
      const nextKey = xmlText(text, "NextKeyMarker") ?? "";
      const nextId = xmlText(text, "NextUploadIdMarker") ?? "";
      if (xmlText(text, "IsTruncated") !== "true" || (nextKey === keyMarker && nextId === idMarker)) break;
      keyMarker = nextKey;
      idMarker = nextId;
    }
    return uploads;
  }
}

/**
 * Opens the {@linkcode ObjectStore} of a bucket (and key prefix) on an S3
 * engine. Nothing is sent until the first operation.
 *
 * @example Usage
 * ```ts ignore
 * import { openObjectStore } from "./s3_client.ts";
 * const store = await openObjectStore({ bucket: "dfos", prefix: "files", endpoint: "http://127.0.0.1:7480" });
 * await store.put("hello.txt", new TextEncoder().encode("hello"));
 * ```
 *
 * @param options Bucket, prefix, endpoint, region, addressing, credentials.
 * @returns The store.
 * @throws {Error} When no credentials are given or found, or the endpoint is not an http(s) URL.
 */
export async function openObjectStore(options: S3StoreOptions): Promise<S3ObjectStore> {
  const credentials = options.credentials ?? await loadAwsCredentials();
  return new S3ObjectStore(options, credentials);
}
