/**
 * `Peer`: a client connection driven by hand, for the tests of the server's
 * limits and shutdown: raw bytes out (to trickle a frame), messages in
 * through a `Channel`, and a wait for the server to close.
 *
 * Internal to tests/: nothing here is part of dfos.
 *
 * @module
 */

import { Channel } from "../shared/channel.ts";
import { FrameEncoderStream } from "../shared/frames.ts";
import { encodeMessage, type Message } from "../shared/messages.ts";
import { type Fixture, USERS } from "./_fixture.ts";

/** A HELLO as the real client sends it. */
export const HELLO: Message = { type: "hello", protocol: "dfos", version: 1, agent: "dfos-test/1" };

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
  readonly conn: Deno.TcpConn;
  /** Messages in (and out, for whole frames). */
  readonly channel: Channel;

  private constructor(conn: Deno.TcpConn) {
    this.conn = conn;
    this.channel = new Channel(conn);
  }

  /** Opens a connection to the fixture's server and says nothing. */
  static async open(fx: Fixture): Promise<Peer> {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: fx.port });
    conn.setNoDelay(true);
    return new Peer(conn);
  }

  /** Opens a connection, says HELLO and logs in as `user`. */
  static async login(fx: Fixture, user = "alice"): Promise<Peer> {
    const peer = await Peer.open(fx);
    await peer.channel.send(HELLO);
    await peer.channel.expect("welcome");
    const data = new TextEncoder().encode(`\0${user}\0${USERS[user]}`);
    await peer.channel.send({ type: "auth", mechanism: "PLAIN", data });
    await peer.channel.expect("auth-ok");
    return peer;
  }

  /** Writes raw bytes, all of them. */
  async write(bytes: Uint8Array): Promise<void> {
    for (let offset = 0; offset < bytes.length;) offset += await this.conn.write(bytes.subarray(offset));
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

  /** Closes the connection. */
  close(): void {
    this.channel.abort();
  }
}

function closedByPeer(error: unknown): null {
  if (error instanceof Deno.errors.ConnectionReset || error instanceof Deno.errors.BrokenPipe) return null;
  throw error;
}

/**
 * Encodes one message as the bytes of its frame.
 *
 * @param message The message.
 * @returns The frame's bytes.
 */
export function frameBytes(message: Message): Promise<Uint8Array> {
  return new Response(ReadableStream.from([encodeMessage(message)]).pipeThrough(new FrameEncoderStream())).bytes();
}

/**
 * Joins byte arrays into one.
 *
 * @param parts The pieces, in order.
 * @returns A new array holding them all.
 */
export function concat(parts: Uint8Array[]): Uint8Array {
  const result = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    result.set(part, offset);
    offset += part.length;
  }
  return result;
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
