/**
 * `S3WireCounter`: a TCP proxy on loopback in front of the S3 engine that
 * passes every byte through unchanged (signatures stay valid: the `Host`
 * the servers signed is the one the engine gets) and reads the HTTP/1.1 on
 * the wire as it goes: each request's method and whether it carried
 * `If-Match` or `If-None-Match`, and each answer's status and S3 error code,
 * paired in order on each connection (keep-alive, bodies by
 * `Content-Length` or chunked, HEAD answers without one). It counts what the
 * engine answered to the conditional writes (PUT, POST): refused as a lost
 * condition (by `errorKind`, the client's own reading of an S3 error:
 * 412, 409, or Ceph's 500 to a lost `If-Match`), or not. It is the truth,
 * seen from outside the servers, of how many conditional writes the engine
 * refused.
 *
 * Internal to tests/: nothing here is part of dfos.
 *
 * @module
 */

import { errorKind } from "../server/s3/s3_client.ts";

/** What the engine answered, as seen on the wire. */
export interface WireCounts {
  /** Conditional writes (PUT or POST with `If-Match` or `If-None-Match`) answered. */
  conditionalWrites: number;
  /** Of those, the ones refused as a lost condition. */
  lostConditions: number;
  /** Conditional reads (GET, HEAD) refused as a lost condition: not writes. */
  lostReads: number;
  /** Every request answered. */
  answered: number;
}

/** A request seen going up, waiting for its answer. */
interface Sent {
  method: string;
  conditional: boolean;
}

/** How a message's body ends. */
type BodyMode = { kind: "none" } | { kind: "length"; bytes: number } | { kind: "chunked" } | { kind: "close" };

const CRLF = new Uint8Array([13, 10]);
const CRLF_CRLF = new Uint8Array([13, 10, 13, 10]);

/** The index of `needle` in `haystack`, or -1. */
function indexOf(haystack: Uint8Array, needle: Uint8Array): number {
  outer: for (let i = 0; i + needle.length <= haystack.length; i++) {
    for (let j = 0; j < needle.length; j++) if (haystack[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

/** A head's start line and its headers (names lower-case). */
function parseHead(text: string): { start: string; headers: Map<string, string> } {
  const [start, ...lines] = text.split("\r\n");
  const headers = new Map<string, string>();
  for (const line of lines) {
    const colon = line.indexOf(":");
    if (colon > 0) headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
  }
  return { start, headers };
}

/** How a message with these headers carries its body. */
function bodyMode(headers: Map<string, string>, otherwise: BodyMode): BodyMode {
  if (/chunked/i.test(headers.get("transfer-encoding") ?? "")) return { kind: "chunked" };
  const length = headers.get("content-length");
  if (length !== undefined) return Number(length) > 0 ? { kind: "length", bytes: Number(length) } : { kind: "none" };
  return otherwise;
}

/**
 * Reads a stream of HTTP/1.1 messages one piece at a time: calls `onHead`
 * with each head (which says how its body ends), `onBody` with its body's
 * bytes, `onEnd` at its end.
 */
class MessageReader {
  #pending = new Uint8Array(0);
  #state: "head" | "length" | "chunk-size" | "chunk-data" | "chunk-end" | "trailers" | "close" = "head";
  #left = 0;
  readonly #onHead: (head: string) => BodyMode;
  readonly #onBody: (bytes: Uint8Array) => void;
  readonly #onEnd: () => void;

  constructor(onHead: (head: string) => BodyMode, onBody: (bytes: Uint8Array) => void, onEnd: () => void) {
    this.#onHead = onHead;
    this.#onBody = onBody;
    this.#onEnd = onEnd;
  }

  /** Reads more bytes of the stream. */
  feed(bytes: Uint8Array): void {
    const joined = new Uint8Array(this.#pending.length + bytes.length);
    joined.set(this.#pending);
    joined.set(bytes, this.#pending.length);
    this.#pending = joined;
    while (this.#step());
  }

  /** The stream ended: a body read to the end of the connection ends too. */
  close(): void {
    if (this.#state === "close") this.#onEnd();
    this.#state = "head";
  }

  /** Takes what it can of the pending bytes; false when it needs more. */
  #step(): boolean {
    const pending = this.#pending;
    switch (this.#state) {
      case "head": {
        const end = indexOf(pending, CRLF_CRLF);
        if (end < 0) return false;
        const mode = this.#onHead(new TextDecoder().decode(pending.subarray(0, end)));
        this.#pending = pending.subarray(end + 4);
        if (mode.kind === "none") this.#onEnd();
        else if (mode.kind === "length") [this.#state, this.#left] = ["length", mode.bytes];
        else if (mode.kind === "chunked") this.#state = "chunk-size";
        else this.#state = "close";
        return true;
      }
      case "length":
      case "chunk-data": {
        if (pending.length === 0) return false;
        const taken = Math.min(this.#left, pending.length);
        this.#onBody(pending.subarray(0, taken));
        this.#pending = pending.subarray(taken);
        this.#left -= taken;
        if (this.#left > 0) return false;
        if (this.#state === "length") {
          this.#state = "head";
          this.#onEnd();
        } else {
          this.#state = "chunk-end";
        }
        return true;
      }
      case "chunk-end": {
        if (pending.length < 2) return false;
        this.#pending = pending.subarray(2);
        this.#state = "chunk-size";
        return true;
      }
      case "chunk-size": {
        const end = indexOf(pending, CRLF);
        if (end < 0) return false;
        const size = parseInt(new TextDecoder().decode(pending.subarray(0, end)).split(";")[0].trim(), 16);
        this.#pending = pending.subarray(end + 2);
        if (!(size > 0)) this.#state = "trailers";
        else [this.#state, this.#left] = ["chunk-data", size];
        return true;
      }
      case "trailers": {
        const end = indexOf(pending, CRLF);
        if (end < 0) return false;
        this.#pending = pending.subarray(end + 2);
        if (end === 0) {
          this.#state = "head";
          this.#onEnd();
        }
        return true;
      }
      case "close":
        if (pending.length > 0) this.#onBody(pending);
        this.#pending = new Uint8Array(0);
        return false;
    }
  }
}

/** A proxy to the S3 engine that counts its answers to conditional writes. */
export class S3WireCounter implements AsyncDisposable {
  readonly #listener: Deno.TcpListener;
  readonly #target: { hostname: string; port: number };
  readonly #conns = new Set<Deno.Conn>();
  readonly #pumps = new Set<Promise<void>>();
  readonly #accepting: Promise<void>;
  readonly #counts: WireCounts = { conditionalWrites: 0, lostConditions: 0, lostReads: 0, answered: 0 };
  /** Failures of the proxy's own reading of the wire (the test must see none). */
  readonly troubles: string[] = [];

  /** @param endpoint The engine's `http://HOST:PORT`. */
  constructor(endpoint: string) {
    const url = new URL(endpoint);
    this.#target = { hostname: url.hostname, port: Number(url.port || 80) };
    this.#listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    this.#accepting = this.#accept();
  }

  /** The endpoint to give the servers instead of the engine's. */
  get endpoint(): string {
    return `http://127.0.0.1:${this.#listener.addr.port}`;
  }

  /** The counts so far. */
  get counts(): WireCounts {
    return { ...this.#counts };
  }

  async #accept(): Promise<void> {
    try {
      for await (const client of this.#listener) {
        let server: Deno.Conn;
        try {
          server = await Deno.connect(this.#target);
        } catch (error) {
          this.troubles.push(`connect: ${error}`);
          client.close();
          continue;
        }
        this.#conns.add(client);
        this.#conns.add(server);
        const sent: Sent[] = [];
        const up = new MessageReader(
          (head) => {
            const { start, headers } = parseHead(head);
            const method = start.split(" ")[0];
            sent.push({ method, conditional: headers.has("if-match") || headers.has("if-none-match") });
            return bodyMode(headers, { kind: "none" });
          },
          () => {},
          () => {},
        );
        const down = this.#answers(sent);
        const pair = Promise.all([this.#pump(client, server, up), this.#pump(server, client, down)]).then(() => {
          this.#conns.delete(client);
          this.#conns.delete(server);
        });
        this.#pumps.add(pair);
        pair.finally(() => this.#pumps.delete(pair));
      }
    } catch {
      // the listener closed
    }
  }

  /** The reader of one connection's answers, each paired with the request `sent` first. */
  #answers(sent: Sent[]): MessageReader {
    let answer: { request: Sent; status: number; body: string } | null = null;
    return new MessageReader(
      (head) => {
        const { start, headers } = parseHead(head);
        const status = Number(start.split(" ")[1]);
        if (status >= 100 && status < 200) return { kind: "none" }; // an interim answer: the request waits on
        const request = sent.shift();
        if (request === undefined) {
          this.troubles.push(`an answer ${status} to no request`);
          return { kind: "close" };
        }
        answer = { request, status, body: "" };
        if (request.method === "HEAD" || status === 204 || status === 304) return { kind: "none" };
        return bodyMode(headers, { kind: "close" });
      },
      (bytes) => {
        if (answer !== null && answer.status >= 400 && answer.body.length < 65536) {
          answer.body += new TextDecoder().decode(bytes);
        }
      },
      () => {
        if (answer === null) return; // the end of an interim answer
        const { request, status, body } = answer;
        answer = null;
        this.#counts.answered++;
        if (!request.conditional) return;
        const code = /<Code>([^<]*)<\/Code>/.exec(body)?.[1] ?? "";
        const kind = status >= 300 ? errorKind(status, code, true) : null;
        const lost = kind === "precondition" || kind === "conflict";
        if (request.method === "PUT" || request.method === "POST") {
          this.#counts.conditionalWrites++;
          if (lost) this.#counts.lostConditions++;
        } else if (lost) {
          this.#counts.lostReads++;
        }
      },
    );
  }

  async #pump(from: Deno.Conn, to: Deno.Conn, reader: MessageReader): Promise<void> {
    const buffer = new Uint8Array(64 * 1024);
    try {
      while (true) {
        const n = await from.read(buffer);
        if (n === null) break;
        // Read before it is passed on: a request is known before its answer can come.
        try {
          reader.feed(buffer.subarray(0, n));
        } catch (error) {
          this.troubles.push(`reading the wire: ${error}`);
        }
        let at = 0;
        while (at < n) at += await to.write(buffer.subarray(at, n));
      }
    } catch {
      // the other side went away
    }
    reader.close();
    for (const conn of [from, to]) {
      try {
        conn.close();
      } catch {
        // closed by the other pump
      }
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.#listener.close();
    await this.#accepting;
    for (const conn of this.#conns) {
      try {
        conn.close();
      } catch {
        // closed already
      }
    }
    await Promise.all(this.#pumps);
  }
}
