/**
 * `Channel`: typed messages over one connection. It puts the frame codec
 * streams between the connection and the message codec, and is what both the
 * server's session and the client's connection talk through.
 *
 * @module
 */

import { closeQuietly } from "./close_quietly.ts";
import { connReadable } from "./conn_readable.ts";
import { type Frame, FrameDecoderStream, FrameEncoderStream } from "./frames.ts";
import {
  decodeMessage,
  encodeMessage,
  MAX_CONTROL_LENGTH,
  type Message,
  MESSAGE_CODES,
  type MessageOf,
  type MessageType,
} from "./messages.ts";
import { printableText } from "./names.ts";
import { type Bytes, bytesOf, release } from "./pooled_bytes.ts";
import { DfosError, Status } from "./status.ts";

/** Options for {@linkcode Channel}. */
export interface ChannelOptions {
  /**
   * The largest frame accepted at first; see {@linkcode Channel.maxFrameLength}.
   *
   * @default {MAX_FRAME_LENGTH}
   */
  maxFrameLength?: number;
  /**
   * The largest frame of any type but DATA accepted; see
   * {@linkcode Channel.maxControlLength}.
   *
   * @default {MAX_CONTROL_LENGTH}
   */
  maxControlLength?: number;
}

/**
 * Sends and receives messages on a connection, one frame each.
 *
 * Receive errors are `DfosError`s: a frame that cannot be decoded or is too
 * long leaves the channel unusable (the caller should say why and close); a
 * well-framed message of the wrong shape does not.
 */
export class Channel {
  readonly #conn: Deno.Conn;
  readonly #decoder: FrameDecoderStream;
  readonly #reader: ReadableStreamDefaultReader<Frame>;
  readonly #writer: WritableStreamDefaultWriter<Frame | readonly Frame[]>;
  /** Frames sent with `more`, waiting for the next send. */
  #held: Frame[] = [];
  readonly #piped: Promise<void>;
  #closed = false;
  #broken = false;
  #maxControlLength: number;
  #received = 0;
  #sent = 0;
  /** Bytes read from and written to the connection (TCP payload, or TLS records' plaintext). */
  readonly #bytes = { received: 0, sent: 0 };

  /**
   * Wraps a connection.
   *
   * @param conn The connection; the channel owns it from now on.
   * @param options The initial frame limit.
   */
  constructor(conn: Deno.Conn, options: ChannelOptions = {}) {
    this.#conn = conn;
    this.#maxControlLength = options.maxControlLength ?? MAX_CONTROL_LENGTH;
    // Body bytes are passed on as they arrive, never gathered into whole frames (no copy, no extra buffer).
    this.#decoder = new FrameDecoderStream({
      maxFrameLength: options.maxFrameLength,
      streamedTypes: new Set([MESSAGE_CODES.data]),
      // A control frame over the protocol's limit is dropped as it arrives, never held: refused below.
      maxGatheredLength: MAX_CONTROL_LENGTH,
    });
    const counted = {
      read: async (buffer: Uint8Array) => {
        const n = await conn.read(buffer);
        if (n !== null) this.#bytes.received += n;
        return n;
      },
    };
    this.#reader = connReadable(counted).pipeThrough(this.#decoder).getReader();
    const encoder = new FrameEncoderStream();
    this.#writer = encoder.writable.getWriter();
    this.#piped = writeAll(encoder.readable, conn, this.#bytes);
    // The failure surfaces to whoever writes next; it must not go unhandled here.
    this.#piped.catch(() => {});
  }

  /** The largest frame length accepted from now on. */
  get maxFrameLength(): number {
    return this.#decoder.maxFrameLength;
  }

  set maxFrameLength(value: number) {
    this.#decoder.maxFrameLength = value;
  }

  /**
   * The largest frame of any type but DATA (type byte and payload) accepted
   * from now on: a longer one is refused with `TOO_LARGE` once it has
   * arrived, and the channel stays usable. The protocol's own limit,
   * `MAX_CONTROL_LENGTH`, applies whatever this says; a frame longer than
   * {@linkcode Channel.maxFrameLength} is refused before it is read.
   */
  get maxControlLength(): number {
    return this.#maxControlLength;
  }

  set maxControlLength(value: number) {
    this.#maxControlLength = value;
  }

  /**
   * Messages received so far (a DATA frame may arrive as several pieces, each
   * counted) and sent (counted once taken by the socket's queue, which waits
   * while the peer does not read). A transfer that stalls stops changing them.
   */
  get traffic(): { received: number; sent: number } {
    return { received: this.#received, sent: this.#sent };
  }

  /** Bytes received from the connection and written to it so far, frames' headers and bodies included. */
  get bytes(): { received: number; sent: number } {
    return { ...this.#bytes };
  }

  /**
   * True once the incoming bytes stopped being frames (or ended): nothing
   * more can be received, and the connection should be closed.
   */
  get broken(): boolean {
    return this.#broken;
  }

  /**
   * Receives the next message.
   *
   * @returns The message, or null when the peer closed the connection between frames.
   * @throws {DfosError} `BAD_REQUEST`/`TOO_LARGE` for bytes that are not frames
   * or not a message; the connection's own errors pass through.
   */
  async receive(): Promise<Message | null> {
    let result: ReadableStreamReadResult<Frame>;
    try {
      result = await this.#reader.read();
    } catch (error) {
      this.#broken = true;
      if (error instanceof RangeError) throw new DfosError(Status.TOO_LARGE, error.message);
      if (error instanceof SyntaxError) throw new DfosError(Status.BAD_REQUEST, error.message);
      throw error;
    }
    if (result.done) {
      this.#broken = true;
      return null;
    }
    const frame = result.value;
    this.#received++;
    let message: Message;
    try {
      // Only a lower limit than the protocol's: decodeMessage applies that one itself.
      const limit = Math.min(this.#maxControlLength, MAX_CONTROL_LENGTH);
      const length = frame.tooLong ?? frame.payload.length + 1;
      if (frame.type !== MESSAGE_CODES.data && length > limit) {
        throw new DfosError(Status.TOO_LARGE, `Cannot decode frame: length ${length} exceeds the limit of ${limit}`);
      }
      message = decodeMessage(frame);
    } catch (error) {
      release(frame.payload);
      throw error;
    }
    // A body's bytes go on with their hold, to the receiver (see BodyReceiver); anything else is parsed by now.
    if (message.type !== "data") release(frame.payload);
    return message;
  }

  /**
   * Receives the next message and checks its type.
   *
   * @param types The types expected here.
   * @returns The message.
   * @throws {DfosError} the peer's ERROR as a `DfosError` with its code;
   * `BAD_REQUEST` for any other unexpected message or the connection closing.
   */
  async expect<T extends MessageType>(...types: T[]): Promise<MessageOf<T>> {
    const message = await this.receive();
    if (message === null) {
      throw new DfosError(Status.BAD_REQUEST, "Connection closed by the peer");
    }
    if ((types as MessageType[]).includes(message.type)) return message as MessageOf<T>;
    // The peer's text, printed or logged as the reason: escaped if it holds anything raw (a server's ESC, a newline).
    if (message.type === "error") throw new DfosError(message.code, printableText(message.message));
    throw new DfosError(Status.BAD_REQUEST, `Unexpected ${message.type} message (expected ${types.join(" or ")})`);
  }

  /**
   * Sends a message. Resolves once the frame is queued behind the socket's
   * backpressure; a DATA chunk must not be changed until then. A pooled
   * DATA chunk's hold goes with it: the channel releases it once the socket
   * has taken its bytes.
   *
   * With `more`, the frame is held (a DATA chunk must not change until the
   * next send) and goes out with the next message sent without it, in the
   * same socket write: for a reply followed at once by its
   * body, and a small body's last piece followed by END. Without it, a small
   * write after a small write can wait for the peer's delayed ACK (about 40
   * ms) where Nagle's algorithm is on, as on Deno's TLS connections.
   *
   * @param message The message.
   * @param options `more`: another message follows at once.
   */
  async send(message: Message, options: { more?: boolean } = {}): Promise<void> {
    const frame = encodeMessage(message);
    if (options.more) {
      this.#held.push(frame);
      return;
    }
    if (this.#held.length === 0) {
      await this.#writer.write(frame);
      this.#sent++;
      return;
    }
    const batch = [...this.#held, frame];
    this.#held = [];
    await this.#writer.write(batch);
    this.#sent += batch.length;
  }

  /** Flushes what was sent, then closes the connection. Safe to call twice. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    try {
      if (this.#held.length > 0) await this.#writer.write(this.#held.splice(0));
      await this.#writer.close();
      await this.#piped;
      // On TLS this sends close_notify, which `close()` alone may not get out before the process exits: the
      // peer then sees a clean end, not a cut connection. On TCP it is the FIN that `close()` would send.
      await this.#conn.closeWrite();
    } catch {
      // The peer went away first; nothing left to flush.
    }
    this.abort();
  }

  /** Closes the connection at once, dropping anything unsent. Safe to call twice. */
  abort(): void {
    this.#closed = true;
    closeQuietly(this.#conn);
    this.#reader.cancel().catch(() => {});
    this.#writer.abort().catch(() => {});
  }
}

/**
 * Writes the encoder's chunks to the connection, each in full, and then
 * releases a pooled one (a file piece: `fileChunks`), so its block is read
 * into again only once the socket has taken its bytes. Leaves the connection
 * open at the end. A write error cancels the encoder, which fails the next send.
 */
async function writeAll(chunks: ReadableStream<Bytes>, conn: Deno.Conn, counted: { sent: number }): Promise<void> {
  const reader = chunks.getReader();
  try {
    while (true) {
      const { done, value } = await reader.read();
      if (done) return;
      const bytes = bytesOf(value);
      for (let offset = 0; offset < bytes.length;) offset += await conn.write(bytes.subarray(offset));
      counted.sent += bytes.length;
      release(value);
    }
  } catch (error) {
    await reader.cancel(error).catch(() => {});
    throw error;
  }
}
