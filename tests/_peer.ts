/**
 * `Peer`: the client connection driven by hand. Everything it sends goes
 * straight to the socket with `conn.write`, in order, so it can send what no
 * real client would (a trickled frame, garbage, a frame cut short); what it
 * receives is decoded by a `Channel`. Plus the small helpers the end-to-end
 * tests share.
 *
 * Internal to tests/: nothing here is part of dfos.
 *
 * @module
 */

import { concatBytes } from "../shared/concat_bytes.ts";
import { deepStrictEqual, ok, strictEqual } from "node:assert/strict";
import { scramMechanism } from "../client/auth/scram.ts";
import { Channel } from "../shared/channel.ts";
import { FRAME_HEADER_BYTES } from "../shared/frames.ts";
import { encodeMessage, type Message, type MessageOf, type MessageType } from "../shared/messages.ts";
import { type Fixture, sha256, USERS } from "./_fixture.ts";
import { bytesOf } from "../shared/pooled_bytes.ts";

const MiB = 1024 * 1024;

/** A HELLO as the real client sends it. */
export const HELLO: MessageOf<"hello"> = { type: "hello", protocol: "dfos", version: 1, agent: "dfos-test/1" };

/** What came before the server closed a connection, and when the close came (`performance.now()`). */
export interface Closed {
  /** The messages received before the close. */
  messages: Message[];
  /** When the close was seen. */
  at: number;
}

/** A connection driven by hand. */
export class Peer {
  /** The socket. */
  readonly conn: Deno.TcpConn | Deno.TlsConn;
  /** Messages in (and out, through the real encoder, where a test wants that). */
  readonly channel: Channel;
  /** True for a TLS connection ({@linkcode Peer.openTls}). */
  readonly tls: boolean;

  private constructor(conn: Deno.TcpConn | Deno.TlsConn, tls = false) {
    this.conn = conn;
    this.channel = new Channel(conn);
    this.tls = tls;
  }

  /** Opens a connection to the fixture's server and says nothing. */
  static async open(fx: Pick<Fixture, "port">): Promise<Peer> {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: fx.port });
    conn.setNoDelay(true); // each frame is a write of its own: do not wait for ACKs between them
    return new Peer(conn);
  }

  /**
   * Opens a TLS connection to the fixture's TLS server (as `127.0.0.1`),
   * trusting `caCert`, and runs the TLS handshake; says nothing.
   */
  static async openTls(fx: Fixture, caCert: string): Promise<Peer> {
    const conn = await Deno.connectTls({ hostname: "127.0.0.1", port: fx.port, caCerts: [caCert] });
    await conn.handshake();
    return new Peer(conn, true);
  }

  /**
   * Tries a SCRAM-SHA-256 login as `user` with `password` (after HELLO), as
   * the real client does, and returns how it ended: AUTH-OK (whose signature
   * is checked) or the ERROR.
   */
  async scram(user: string, password: string): Promise<MessageOf<"auth-ok"> | MessageOf<"error">> {
    const scram = scramMechanism({ user, password });
    await this.send({ type: "auth", mechanism: scram.name, data: await scram.start() });
    const challenge = await this.expect("auth-continue", "error");
    if (challenge.type === "error") return challenge;
    await this.send({ type: "auth-response", data: await scram.step(challenge.data) });
    const end = await this.expect("auth-ok", "error");
    if (end.type === "auth-ok") await scram.finish(end.data);
    return end;
  }

  /**
   * Opens a connection, says HELLO and logs in as `user` with SCRAM-SHA-256
   * (as the real client does), checking WELCOME, AUTH-OK and the server's signature.
   */
  static async login(fx: Fixture, user = "alice"): Promise<Peer> {
    const peer = await Peer.open(fx);
    await peer.hello();
    const scram = scramMechanism({ user, password: USERS[user] });
    await peer.send({ type: "auth", mechanism: scram.name, data: await scram.start() });
    const challenge = await peer.expect("auth-continue");
    await peer.send({ type: "auth-response", data: await scram.step(challenge.data) });
    const ok = await peer.expect("auth-ok");
    strictEqual(ok.user, user);
    await scram.finish(ok.data);
    return peer;
  }

  /** Writes raw bytes, all of them. */
  async write(bytes: Uint8Array): Promise<void> {
    for (let offset = 0; offset < bytes.length;) offset += await this.conn.write(bytes.subarray(offset));
  }

  /** Writes one message as the bytes of its frame. */
  send(message: Message): Promise<void> {
    return this.write(frameBytes(message));
  }

  /**
   * Says HELLO with `version`; for version 1, expects a WELCOME offering
   * SCRAM-SHA-256, and PLAIN after it on TLS only.
   */
  async hello(version = 1): Promise<void> {
    await this.send({ ...HELLO, version });
    const offered = this.tls ? ["SCRAM-SHA-256", "PLAIN"] : ["SCRAM-SHA-256"];
    if (version === 1) deepStrictEqual((await this.expect("welcome")).mechanisms, offered);
  }

  /** The next message, which must be of one of `types` (an ERROR fails with its text). */
  async expect<T extends MessageType>(...types: T[]): Promise<MessageOf<T>> {
    const message = await this.channel.receive();
    ok(message !== null, `expected ${types.join(" or ")}, the connection was closed`);
    if (!(types as string[]).includes(message.type)) {
      const shown = message.type === "data" ? `DATA of ${message.chunk.length} bytes` : JSON.stringify(message);
      throw new Error(`Expected ${types.join(" or ")}, got ${shown}`);
    }
    return message as MessageOf<T>;
  }

  /** The next message, which must be an ERROR with `code`; returns its text. */
  async expectError(code: number): Promise<string> {
    const error = await this.expect("error");
    strictEqual(error.code, code, `error ${error.code} "${error.message}", expected code ${code}`);
    return error.message;
  }

  /**
   * Reads until the server closes the connection. Fails if it stays open for `timeoutMs`.
   *
   * @returns What arrived before the close, and when the close came.
   */
  async untilClosed(timeoutMs = 3000): Promise<Closed> {
    const messages: Message[] = [];
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<"timeout">((resolve) => timer = setTimeout(() => resolve("timeout"), timeoutMs));
    try {
      while (true) {
        const next = await Promise.race([this.channel.receive().catch(closedByPeer), timeout]);
        if (next === "timeout") throw new Error(`The server kept the connection open for ${timeoutMs} ms`);
        if (next === null) return { messages, at: performance.now() };
        messages.push(next);
      }
    } finally {
      clearTimeout(timer);
    }
  }

  /** Uploads `body` under `name` whole, correctly, and expects OK. */
  async put(name: string, body: Uint8Array): Promise<void> {
    await this.send({ type: "put", name, size: body.length, digest: "sha256" });
    await this.sendBody(body);
    const reply = await this.expect("ok");
    deepStrictEqual(reply, { type: "ok", name, size: body.length });
  }

  /** Sends DATA frames (1 MiB each at most) and a correct END. */
  async sendBody(body: Uint8Array): Promise<void> {
    for (let offset = 0; offset < body.length; offset += MiB) {
      await this.send({ type: "data", chunk: body.subarray(offset, offset + MiB) });
    }
    await this.send({ type: "end", size: body.length, algorithm: "sha256", digest: sha256(body) });
  }

  /** Downloads `name` and checks its END; returns the bytes. */
  async get(name: string): Promise<Uint8Array> {
    await this.send({ type: "get", name, limit: null, digest: "sha256" });
    const file = await this.expect("file");
    const parts: Uint8Array[] = [];
    while (true) {
      const message = await this.expect("data", "end");
      if (message.type === "end") {
        const body = concat(parts);
        strictEqual(message.size, file.size);
        strictEqual(body.length, file.size);
        strictEqual(message.digest, sha256(body));
        return body;
      }
      parts.push(bytesOf(message.chunk).slice());
    }
  }

  /** Lists all of the user's names (one page). */
  async names(): Promise<string[]> {
    await this.send({ type: "list", prefix: "", after: "" });
    const listing = await this.expect("listing");
    strictEqual(listing.next, null);
    return listing.entries.map((entry) => entry.name);
  }

  /** Closes at once, without a goodbye. */
  abort(): void {
    this.channel.abort();
  }
}

/** A connection the peer reset counts as closed. */
function closedByPeer(error: unknown): null {
  if (error instanceof Deno.errors.ConnectionReset || error instanceof Deno.errors.BrokenPipe) return null;
  throw error;
}

/**
 * The data of a PLAIN AUTH.
 *
 * @param user The user name.
 * @param password The password.
 * @returns `\0user\0password`, encoded.
 */
export function plain(user: string, password: string): Uint8Array {
  return new TextEncoder().encode(`\0${user}\0${password}`);
}

/**
 * Encodes one message as the bytes of its frame.
 *
 * @param message The message.
 * @returns The frame's bytes.
 */
export function frameBytes(message: Message): Uint8Array {
  const { type, payload } = encodeMessage(message);
  return rawFrame(type, bytesOf(payload));
}

/**
 * Makes a frame with any type byte and payload.
 *
 * @param type The type byte.
 * @param payload The payload.
 * @returns The frame's bytes.
 */
export function rawFrame(type: number, payload: Uint8Array): Uint8Array {
  const bytes = new Uint8Array(FRAME_HEADER_BYTES + payload.length);
  new DataView(bytes.buffer).setUint32(0, payload.length + 1);
  bytes[4] = type;
  bytes.set(payload, FRAME_HEADER_BYTES);
  return bytes;
}

/**
 * Joins byte arrays into one.
 *
 * @param parts The pieces, in order.
 * @returns A new array holding them all.
 */
export function concat(parts: Uint8Array[]): Uint8Array {
  return concatBytes(parts);
}

/**
 * Yields `bytes` as one chunk: a body for `DfosClient.put`.
 *
 * @param bytes The body.
 */
export async function* once(bytes: Uint8Array): AsyncGenerator<Uint8Array> {
  yield bytes;
}

/** A body whose second half is sent only once `release()` is called: an upload held in flight. */
export interface GatedBody {
  /** The body for `DfosClient.put`. */
  chunks: AsyncGenerator<Uint8Array>;
  /** Lets the second half go. */
  release(): void;
}

/**
 * Makes a body of two halves with a gate between them.
 *
 * @param body The whole body.
 * @returns The chunks and the gate's key.
 */
export function gatedBody(body: Uint8Array): GatedBody {
  let release!: () => void;
  const gate = new Promise<void>((resolve) => release = resolve);
  const half = Math.floor(body.length / 2);
  async function* chunks(): AsyncGenerator<Uint8Array> {
    yield body.subarray(0, half);
    await gate;
    yield body.subarray(half);
  }
  return { chunks: chunks(), release };
}
