/**
 * File bodies on the wire: `sendBody()` streams bytes as DATA frames and
 * closes with END (length and digest); `BodyReceiver` takes them back and
 * checks both. Used by the client for PUT and by the server for GET, and the
 * other way round.
 *
 * @module
 */

import type { Channel } from "./channel.ts";
import { type BodyDigest, createDigest } from "./digest.ts";
import { COALESCE_LIMIT, MAX_DATA_PAYLOAD } from "./frames.ts";
import type { DigestAlgorithm } from "./messages.ts";
import { type Bytes, bytesOf, PooledBytes, release } from "./pooled_bytes.ts";
import { transferMemory } from "./transfer_memory.ts";
import { DfosError, Status } from "./status.ts";

/** What a body was: its length and check value. */
export interface BodySummary {
  /** Bytes in the body. */
  size: number;
  /** The check algorithm. */
  algorithm: DigestAlgorithm;
  /** The check value, lower-case hex. */
  digest: string;
}

/** Options for {@linkcode sendBody}. */
export interface SendBodyOptions {
  /**
   * The check algorithm END carries; the receiver must expect the same.
   *
   * @default {"crc32"}
   */
  algorithm?: DigestAlgorithm;
  /** The body's length, if known (a small body's check needs no fast CRC loaded). */
  sizeHint?: number | null;
  /** Called after each DATA frame with the bytes sent so far. */
  onProgress?: (sent: number) => void;
}

/**
 * Sends `chunks` as DATA frames followed by END. If reading the chunks fails,
 * sends ABORT instead of END and rethrows, so the receiver never takes a
 * partial body for a whole one.
 *
 * Chunks are sent as they are (split only above the DATA limit) and must not
 * be changed by the producer after they are yielded; a pooled chunk's hold
 * goes with it to the channel, which releases it once the socket has the bytes.
 *
 * @param channel Where to send.
 * @param chunks The body.
 * @param options Progress reporting.
 * @returns The length and digest that END carried.
 */
export async function sendBody(
  channel: Channel,
  chunks: AsyncIterable<Bytes>,
  options: SendBodyOptions = {},
): Promise<BodySummary> {
  const digest = await createDigest(options.algorithm ?? "crc32", { sizeHint: options.sizeHint });
  const ended = transferMemory.begin();
  try {
    for await (const chunk of chunks) {
      const bytes = bytesOf(chunk);
      if (bytes.length <= MAX_DATA_PAYLOAD) {
        digest.update(bytes);
        // A small piece waits for what follows (the next piece, or END): one socket write for a small body.
        await channel.send({ type: "data", chunk }, { more: bytes.length <= COALESCE_LIMIT });
      } else {
        for (let offset = 0; offset < bytes.length; offset += MAX_DATA_PAYLOAD) {
          const end = Math.min(offset + MAX_DATA_PAYLOAD, bytes.length);
          digest.update(bytes.subarray(offset, end));
          const piece = chunk instanceof PooledBytes ? chunk.hold(offset, end) : bytes.subarray(offset, end);
          await channel.send({ type: "data", chunk: piece }, { more: end - offset <= COALESCE_LIMIT });
        }
        release(chunk); // each piece holds the block itself
      }
      options.onProgress?.(digest.size);
    }
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    await channel.send({ type: "abort", reason: `Sender failed: ${reason}` }).catch(() => {});
    throw error;
  } finally {
    ended();
  }
  const summary = { size: digest.size, algorithm: digest.algorithm, digest: digest.hex() };
  await channel.send({ type: "end", ...summary });
  return summary;
}

/** Options for {@linkcode BodyReceiver}. */
export interface BodyReceiverOptions {
  /**
   * The check algorithm announced before the body; an END naming another is refused.
   *
   * @default {"crc32"}
   */
  algorithm?: DigestAlgorithm;
  /** The length announced before the body; a body of another length is refused. */
  expectedSize?: number | null;
  /** Called after each DATA frame with the bytes received so far. */
  onProgress?: (received: number) => void;
  /**
   * Whether the sender may end the body with an ERROR: a server may (it
   * explains why it stops sending a download), a client may not (it gives up
   * an upload with ABORT), so a server receives with false and an ERROR in an
   * upload is refused as `BAD_REQUEST`, its text never taken as the server's.
   *
   * @default {true}
   */
  senderMayFail?: boolean;
  /**
   * Called once, when the body's frames are all consumed (END or ABORT read,
   * or the channel failed): a pipelined client's next reply may be read.
   */
  onFinished?: () => void;
}

/**
 * Receives one body from a channel. Iterate {@linkcode BodyReceiver.chunks}
 * to take the bytes; the iteration ends normally only after END has arrived
 * and its length and digest match what was received. If the consumer stops
 * early, {@linkcode BodyReceiver.discard} reads and drops the rest so that the
 * next message on the channel is read in turn.
 */
export class BodyReceiver {
  readonly #channel: Channel;
  readonly #options: BodyReceiverOptions;
  #finished = false;
  #summary: BodySummary | null = null;

  /**
   * Prepares to receive a body.
   *
   * @param channel The channel the body arrives on.
   * @param options The announced length and progress reporting.
   */
  constructor(channel: Channel, options: BodyReceiverOptions = {}) {
    this.#channel = channel;
    this.#options = options;
  }

  /** True once END or ABORT has been read: the body's frames are all consumed. */
  get finished(): boolean {
    return this.#finished;
  }

  /** The verified length and digest, once the body was received whole. */
  get summary(): BodySummary | null {
    return this.#summary;
  }

  /**
   * Yields the body's bytes in order, in the pieces they arrived in (a DATA
   * frame may come in several). Throws `DfosError` `INTEGRITY` when the
   * END frame disagrees with the bytes, `ABORTED` when the sender gave up,
   * `BAD_REQUEST` for any other message in the middle of a body (an ERROR
   * too, unless the sender may fail: {@linkcode BodyReceiverOptions.senderMayFail}).
   *
   * Each piece stays valid for good: its receive block is not reused. See
   * {@linkcode BodyReceiver.pieces} for the body path's way, which reuses it.
   */
  async *chunks(): AsyncGenerator<Uint8Array> {
    for await (const piece of this.pieces()) yield bytesOf(piece);
  }

  /**
   * Yields the body's bytes as {@linkcode BodyReceiver.chunks} does, each
   * piece plain or `PooledBytes` (shared/pooled_bytes.ts) that the consumer
   * owns: it releases them (or passes them on, as to `TempFile.write`) once
   * done, and the receive block is then reused. A piece not released costs
   * only the reuse.
   */
  async *pieces(): AsyncGenerator<Bytes> {
    const expected = this.#options.expectedSize ?? null;
    const digest = await createDigest(this.#options.algorithm ?? "crc32", { sizeHint: expected });
    const ended = transferMemory.begin();
    try {
      yield* this.#take(digest, expected);
    } finally {
      ended();
    }
  }

  async *#take(digest: BodyDigest, expected: number | null): AsyncGenerator<Bytes> {
    while (true) {
      const message = await this.#next();
      if (message.type === "data") {
        digest.update(bytesOf(message.chunk));
        if (expected !== null && digest.size > expected) {
          release(message.chunk);
          throw new DfosError(Status.INTEGRITY, `Body is longer than the announced ${expected} bytes`);
        }
        this.#options.onProgress?.(digest.size);
        yield message.chunk;
        continue;
      }
      this.#finish();
      if (message.type === "abort") {
        throw new DfosError(Status.ABORTED, `Transfer aborted by the peer: ${message.reason}`);
      }
      const received = digest.size;
      const value = digest.hex();
      if (message.size !== received || (expected !== null && expected !== received)) {
        throw new DfosError(
          Status.INTEGRITY,
          `Body is incomplete: received ${received} bytes, the sender says ${message.size}` +
            (expected !== null ? ` and announced ${expected}` : ""),
        );
      }
      if (message.algorithm !== digest.algorithm) {
        throw new DfosError(
          Status.INTEGRITY,
          `Body ends with a ${message.algorithm} check, but ${digest.algorithm} was announced`,
        );
      }
      if (message.digest !== value) {
        throw new DfosError(Status.INTEGRITY, `Body is corrupt: ${message.algorithm} check does not match`);
      }
      this.#summary = { size: received, algorithm: digest.algorithm, digest: value };
      return;
    }
  }

  /** Reads and drops the rest of the body, if any is left. */
  async discard(): Promise<void> {
    while (!this.#finished) {
      const message = await this.#next();
      if (message.type === "data") release(message.chunk);
      else this.#finish();
    }
  }

  /** Marks the body's frames all consumed, once. */
  #finish(): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#options.onFinished?.();
  }

  async #next() {
    const message = await this.#channel.receive();
    if (message === null) {
      this.#finish();
      throw new DfosError(Status.ABORTED, "Connection closed in the middle of a body");
    }
    if (message.type === "data" || message.type === "end" || message.type === "abort") return message;
    if (message.type === "error" && this.#options.senderMayFail !== false) {
      this.#finish();
      throw new DfosError(message.code, message.message);
    }
    this.#finish();
    throw new DfosError(Status.BAD_REQUEST, `Unexpected ${message.type} message inside a body`);
  }
}
