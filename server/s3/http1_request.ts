/**
 * `http1Request`: one HTTP/1.1 request on a connection of its own
 * (`Deno.connect`, or `Deno.connectTls`), for the S3 requests that send
 * large bodies. Measured against `fetch` on the same engine, a part sent
 * with `conn.write` costs between a third and a fifth of fetch's CPU time
 * per GiB (docs/PERFORMANCE.md, "S3 client"). Reading a large answer this
 * way cost the same CPU as fetch with a BYOB reader, so GetObject stays on
 * fetch, which keeps its connections.
 *
 * The answer is a standard `Response`: its head is read here, its body is a
 * stream of chunks of `readChunkSize` bytes (`Content-Length`), of the
 * sender's chunks (`Transfer-Encoding: chunked`), or to the end of the
 * connection. The connection is closed when the body ends, is cancelled, or
 * fails, and when `signal` aborts; it is never pooled (`Connection: close`),
 * so nothing stays open once the body is done.
 *
 * @module
 */

/** Where to connect. */
export interface Http1Target {
  /** The host name or IP address to connect to. */
  hostname: string;
  /** The port. */
  port: number;
  /** Whether to speak TLS. */
  tls: boolean;
  /** The `Host` header. */
  host: string;
}

/** One request. */
export interface Http1Options {
  /** The method. */
  method: string;
  /** The request target: the encoded path and query. */
  path: string;
  /** Headers to send (lower-case names); `host`, `content-length` and `connection` are added. */
  headers: Record<string, string>;
  /** The body, if any. */
  body?: Uint8Array;
  /** Closes the connection: the request, or the body's stream, fails with its reason. */
  signal?: AbortSignal;
  /** Milliseconds until the answer's head must have arrived. */
  timeoutMs: number;
  /** The size of the body's chunks. */
  readChunkSize: number;
}

/** The longest answer head read. */
const MAX_HEAD = 64 * 1024;

const CRLF_CRLF = [13, 10, 13, 10];

/** Statuses whose answers have no body. */
const NO_BODY = new Set([204, 205, 304]);

/** A connection with the bytes read past what was consumed. */
class Wire {
  readonly conn: Deno.Conn;
  /** Bytes read from the connection and not consumed yet. */
  pending: Uint8Array = new Uint8Array(0);
  #closed = false;

  constructor(conn: Deno.Conn) {
    this.conn = conn;
  }

  /** Closes the connection (once). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.conn.close();
    } catch {
      // Closed already.
    }
  }

  /** Fills `into` from the pending bytes, then the connection; returns how many (short only at the end). */
  async fill(into: Uint8Array): Promise<number> {
    let filled = Math.min(this.pending.byteLength, into.byteLength);
    into.set(this.pending.subarray(0, filled));
    this.pending = this.pending.subarray(filled);
    while (filled < into.byteLength) {
      const read = await this.conn.read(into.subarray(filled));
      if (read === null) break;
      filled += read;
    }
    return filled;
  }

  /** Reads until `\r\n` (not kept); null at the end of the connection. */
  async line(): Promise<string | null> {
    for (;;) {
      const end = indexOf(this.pending, [13, 10]);
      if (end >= 0) {
        const text = new TextDecoder().decode(this.pending.subarray(0, end));
        this.pending = this.pending.subarray(end + 2);
        return text;
      }
      if (this.pending.byteLength > MAX_HEAD) throw new Error("a line of the answer is too long");
      if (!(await this.more())) return null;
    }
  }

  /** Reads more bytes onto the pending ones; false at the end of the connection. */
  async more(): Promise<boolean> {
    const buffer = new Uint8Array(65536);
    const read = await this.conn.read(buffer);
    if (read === null) return false;
    const joined = new Uint8Array(this.pending.byteLength + read);
    joined.set(this.pending);
    joined.set(buffer.subarray(0, read), this.pending.byteLength);
    this.pending = joined;
    return true;
  }
}

function indexOf(bytes: Uint8Array, pattern: number[], from = 0): number {
  outer: for (let i = from; i <= bytes.byteLength - pattern.length; i++) {
    for (let j = 0; j < pattern.length; j++) if (bytes[i + j] !== pattern[j]) continue outer;
    return i;
  }
  return -1;
}

/** Writes all of `bytes`. */
async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let offset = 0; offset < bytes.byteLength;) offset += await conn.write(bytes.subarray(offset));
}

/**
 * Sends one request on a new connection and returns the answer; its body
 * must be read or cancelled (that closes the connection).
 *
 * @param target Where to connect.
 * @param options The request.
 * @returns The answer.
 * @throws {Error} When the connection fails, the answer's head does not come
 * within `timeoutMs` (`no answer in N ms`), or is not HTTP/1.x; the
 * signal's reason when it aborts.
 */
export async function http1Request(target: Http1Target, options: Http1Options): Promise<Response> {
  options.signal?.throwIfAborted();
  const conn = target.tls
    ? await Deno.connectTls({ hostname: target.hostname, port: target.port })
    : await Deno.connect({ hostname: target.hostname, port: target.port });
  if (options.signal?.aborted) {
    conn.close();
    throw options.signal.reason;
  }
  if (!target.tls) (conn as Deno.TcpConn).setNoDelay(true);
  const wire = new Wire(conn);
  let stopped: unknown = null;
  const stop = (reason: unknown) => {
    stopped ??= reason;
    wire.close();
  };
  const onAbort = () => stop(options.signal!.reason);
  options.signal?.addEventListener("abort", onAbort, { once: true });
  const timer = setTimeout(() => stop(new Error(`no answer in ${options.timeoutMs} ms`)), options.timeoutMs);
  let head: { status: number; statusText: string; headers: Headers };
  try {
    const body = options.body;
    let text = `${options.method} ${options.path} HTTP/1.1\r\nhost: ${target.host}\r\n`;
    for (const [name, value] of Object.entries(options.headers)) {
      if (/[\r\n]/.test(name + value)) throw new TypeError(`Cannot send header "${name}": it contains a line break`);
      text += `${name}: ${value}\r\n`;
    }
    if (body !== undefined || options.method === "PUT" || options.method === "POST") {
      text += `content-length: ${body?.byteLength ?? 0}\r\n`;
    }
    text += "connection: close\r\n\r\n";
    const headBytes = new TextEncoder().encode(text);
    let writeError: unknown = null;
    try {
      if (body !== undefined && body.byteLength <= 65536) {
        const joined = new Uint8Array(headBytes.byteLength + body.byteLength);
        joined.set(headBytes);
        joined.set(body, headBytes.byteLength);
        await writeAll(conn, joined);
      } else {
        await writeAll(conn, headBytes);
        if (body !== undefined) await writeAll(conn, body);
      }
    } catch (error) {
      // The engine may answer (403, 400) and close before it has read the body: read its answer.
      writeError = error;
    }
    try {
      head = await readHead(wire);
    } catch (error) {
      throw writeError ?? error;
    }
  } catch (error) {
    clearTimeout(timer);
    options.signal?.removeEventListener("abort", onAbort);
    wire.close();
    throw stopped ?? error;
  }
  clearTimeout(timer);
  const done = () => {
    options.signal?.removeEventListener("abort", onAbort);
    wire.close();
  };
  if (options.method === "HEAD" || NO_BODY.has(head.status) || head.status < 200) {
    done();
    return new Response(null, head);
  }
  const length = head.headers.get("content-length");
  const chunked = /chunked/i.test(head.headers.get("transfer-encoding") ?? "");
  const next = chunked
    ? chunkedReader(wire, options.readChunkSize)
    : lengthReader(wire, length === null ? Infinity : Number(length), options.readChunkSize);
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const chunk = await next();
        if (chunk === null) {
          done();
          controller.close();
        } else {
          controller.enqueue(chunk);
        }
      } catch (error) {
        done();
        controller.error(stopped ?? error);
      }
    },
    cancel() {
      done();
    },
  }, { highWaterMark: 0 });
  return new Response(body, head);
}

/** Reads the status line and the headers. */
async function readHead(wire: Wire): Promise<{ status: number; statusText: string; headers: Headers }> {
  let end = -1;
  while ((end = indexOf(wire.pending, CRLF_CRLF)) < 0) {
    if (wire.pending.byteLength > MAX_HEAD) throw new Error("the answer's head is too long");
    if (!(await wire.more())) throw new Error("the connection closed before an answer");
  }
  const lines = new TextDecoder().decode(wire.pending.subarray(0, end)).split("\r\n");
  wire.pending = wire.pending.subarray(end + 4);
  const status = /^HTTP\/1\.[01] (\d{3})(?: (.*))?$/.exec(lines[0]);
  if (!status) throw new Error(`the answer is not HTTP/1.x: "${lines[0].slice(0, 40)}"`);
  const headers = new Headers();
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(":");
    if (colon > 0) headers.append(line.slice(0, colon).trim(), line.slice(colon + 1).trim());
  }
  if (status[1] === "100") return await readHead(wire);
  return { status: Number(status[1]), statusText: status[2] ?? "", headers };
}

/** A body of `length` bytes (Infinity: to the end of the connection), in chunks of `size`. */
function lengthReader(wire: Wire, length: number, size: number): () => Promise<Uint8Array | null> {
  let left = length;
  return async () => {
    if (left <= 0) return null;
    const chunk = new Uint8Array(Math.min(size, left));
    const filled = await wire.fill(chunk);
    if (filled < chunk.byteLength && left !== Infinity) {
      throw new Error(`the connection closed ${left - filled} bytes before the body's end`);
    }
    left -= filled;
    if (filled === 0) return null;
    return filled < chunk.byteLength ? chunk.subarray(0, filled) : chunk;
  };
}

/** A `Transfer-Encoding: chunked` body, in the sender's chunks (at most `size` bytes each). */
function chunkedReader(wire: Wire, size: number): () => Promise<Uint8Array | null> {
  let ended = false;
  /** Bytes left in the current chunk. */
  let left = 0;
  return async () => {
    if (ended) return null;
    if (left === 0) {
      const line = await wire.line();
      if (line === null) throw new Error("the connection closed inside a chunked body");
      left = parseInt(line.split(";")[0].trim(), 16);
      if (Number.isNaN(left)) throw new Error(`a chunk's size is not hexadecimal: "${line.slice(0, 20)}"`);
      if (left === 0) {
        // Trailers, up to an empty line.
        for (let trailer = await wire.line(); trailer !== null && trailer !== ""; trailer = await wire.line()) {
          // Ignored.
        }
        ended = true;
        return null;
      }
    }
    const piece = new Uint8Array(Math.min(left, size));
    if (await wire.fill(piece) < piece.byteLength) throw new Error("the connection closed inside a chunk");
    left -= piece.byteLength;
    if (left === 0 && (await wire.line()) !== "") throw new Error("a chunk does not end in CRLF");
    return piece;
  };
}
