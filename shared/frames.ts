/**
 * Length-prefixed binary frames: `FrameEncoderStream` turns frames into
 * bytes, `FrameDecoderStream` turns bytes, split or packed in any way, back
 * into frames.
 *
 * Layout of one frame, all integers big-endian:
 *
 * ```
 * +----------------+--------+----------------------+
 * | length: uint32 | type:8 | payload: length - 1  |
 * +----------------+--------+----------------------+
 * ```
 *
 * `length` counts the type byte and the payload, so it is at least 1.
 *
 * @module
 */

import { type Bytes, bytesOf, PooledBytes, release } from "./pooled_bytes.ts";

/** Bytes before the payload: the 4-byte length and the type byte. */
export const FRAME_HEADER_BYTES = 5;

/** The largest payload of a DATA frame: bodies travel in pieces of this size. */
export const MAX_DATA_PAYLOAD = 1 << 20;

/** The default largest `length` a decoder accepts: one DATA frame. */
export const MAX_FRAME_LENGTH = MAX_DATA_PAYLOAD + 1;

/**
 * Bytes the encoder may hold for the socket before a writer waits: small
 * messages are handed over at once (a request costs no wait for the previous
 * socket write), while a 1 MiB DATA frame still waits for the one before it.
 */
const ENCODER_QUEUE_BYTES = 64 * 1024;

/**
 * Payloads up to this size are copied behind their header into one chunk; a body sends its pieces up to this size
 * together with the message that follows them (they are copied either way).
 */
export const COALESCE_LIMIT = 16 * 1024;

/** One frame: a type byte and its payload. */
export interface Frame {
  /** The message type, 0-255. */
  type: number;
  /**
   * The payload; may be a view into a larger buffer. The decoder passes on
   * `PooledBytes` when it was given them: the frame's consumer releases them.
   */
  payload: Bytes;
  /**
   * Set by the decoder on a frame of a gathered type longer than its
   * `maxGatheredLength`: the frame's `length`. Its payload was read and
   * dropped as it arrived, never held, and `payload` is empty.
   */
  tooLong?: number;
}

/**
 * Encodes frames as bytes. A small frame becomes one chunk; a large one
 * becomes its header followed by the payload itself, never copied. An array
 * of frames is a batch: its small frames (and the header of a large one)
 * share one chunk, so they reach the socket in one write.
 *
 * @example Usage
 * ```ts
 * import { FrameEncoderStream } from "./frames.ts";
 * import { deepStrictEqual } from "node:assert/strict";
 * const bytes = ReadableStream.from([{ type: 1, payload: new Uint8Array([7]) }])
 *   .pipeThrough(new FrameEncoderStream());
 * deepStrictEqual(await Array.fromAsync(bytes), [new Uint8Array([0, 0, 0, 2, 1, 7])]);
 * ```
 */
export class FrameEncoderStream extends TransformStream<Frame | readonly Frame[], Bytes> {
  /** Creates an encoder. */
  constructor() {
    super(
      {
        transform(frames, controller) {
          // A batch of frames leaves as few chunks as it can: small frames side by side in one, so that a
          // reply and a small body go to the socket in one write (docs/PERFORMANCE.md).
          const batch = Array.isArray(frames) ? frames : [frames as Frame];
          let small: Uint8Array[] = [];
          let smallBytes = 0;
          const flushSmall = () => {
            if (small.length === 0) return;
            const bytes = small.length === 1 ? small[0] : new Uint8Array(smallBytes);
            if (small.length > 1) {
              let offset = 0;
              for (const piece of small) {
                bytes.set(piece, offset);
                offset += piece.length;
              }
            }
            controller.enqueue(bytes);
            small = [];
            smallBytes = 0;
          };
          for (const { type, payload } of batch) {
            if (!Number.isInteger(type) || type < 0 || type > 255) {
              throw new RangeError(`Cannot encode frame: type ${type} is not a byte`);
            }
            const length = payload.length + 1;
            if (length > 0xffffffff) {
              throw new RangeError(`Cannot encode frame: payload of ${payload.length} bytes is too long`);
            }
            if (payload.length <= COALESCE_LIMIT) {
              const bytes = new Uint8Array(FRAME_HEADER_BYTES + payload.length);
              writeHeader(bytes, length, type);
              bytes.set(bytesOf(payload), FRAME_HEADER_BYTES);
              release(payload); // copied: a pooled payload's hold goes at once
              small.push(bytes);
              smallBytes += bytes.length;
            } else {
              const header = new Uint8Array(FRAME_HEADER_BYTES);
              writeHeader(header, length, type);
              small.push(header);
              smallBytes += header.length;
              flushSmall();
              // Passed on as it is: a pooled payload's hold goes with it, to whoever writes it out.
              controller.enqueue(payload);
            }
          }
          flushSmall();
        },
      },
      undefined,
      { highWaterMark: ENCODER_QUEUE_BYTES, size: (chunk) => chunk.length },
    );
  }
}

function writeHeader(target: Uint8Array, length: number, type: number): void {
  new DataView(target.buffer, target.byteOffset, FRAME_HEADER_BYTES).setUint32(0, length);
  target[4] = type;
}

/** Options for {@linkcode FrameDecoderStream}. */
export interface FrameDecoderStreamOptions {
  /**
   * The largest frame `length` (type byte plus payload) accepted; a larger
   * one errors the stream before anything is allocated for it. It can be
   * changed later with {@linkcode FrameDecoderStream.maxFrameLength}.
   *
   * @default {MAX_FRAME_LENGTH}
   */
  maxFrameLength?: number;
  /**
   * Frame types whose payload is passed on in pieces, as it arrives, and never
   * gathered into one buffer: each piece is a frame of the same type, and the
   * pieces of one frame come in order. For bodies (DATA), where a frame that
   * spans reads would otherwise cost a copy and a buffer of its own.
   *
   * @default {none}
   */
  streamedTypes?: ReadonlySet<number>;
  /**
   * The largest `length` of a frame of a type not streamed (one that is
   * gathered into one buffer). A longer one, if within `maxFrameLength`, is
   * not an error: its payload is read and dropped as it arrives, without a
   * buffer, and the frame is passed on empty, with
   * {@linkcode Frame.tooLong} set, for the receiver to refuse.
   *
   * @default {maxFrameLength}
   */
  maxGatheredLength?: number;
}

/**
 * Decodes bytes into frames, whatever the chunk boundaries. Payloads that lie
 * inside one input chunk are passed on as views into it (no copy); a payload
 * that spans chunks is copied once into a buffer of its exact size, which is
 * allocated only after its length has been checked.
 *
 * Errors: a length of 0 is a `SyntaxError`; a length above the limit is a
 * `RangeError`; input that ends inside a frame is a `SyntaxError`.
 *
 * @example Usage
 * ```ts
 * import { FrameDecoderStream } from "./frames.ts";
 * import { bytesOf } from "./pooled_bytes.ts";
 * import { deepStrictEqual } from "node:assert/strict";
 * const frames = ReadableStream.from([new Uint8Array([0, 0, 0, 2, 9]), new Uint8Array([42])])
 *   .pipeThrough(new FrameDecoderStream());
 * deepStrictEqual((await Array.fromAsync(frames)).map(({ type, payload }) => [type, [...bytesOf(payload)]]), [[9, [42]]]);
 * ```
 */
export class FrameDecoderStream extends TransformStream<Bytes, Frame> {
  #maxFrameLength: number;
  /** Header bytes gathered so far when a header spans chunks. */
  #header = new Uint8Array(FRAME_HEADER_BYTES);
  #headerFilled = 0;
  /** The current frame's payload length once its header is complete, else null. */
  #payloadLength: number | null = null;
  /** The payload being gathered, when it spans chunks. */
  #payload: Uint8Array | null = null;
  #payloadFilled = 0;
  #type = 0;
  /** The length of the current frame when its payload is being dropped (over the gathered limit), else 0. */
  #dropping = 0;
  readonly #streamedTypes: ReadonlySet<number>;
  readonly #maxGatheredLength: number;

  /**
   * Creates a decoder.
   *
   * @param options The length limit.
   */
  constructor(options: FrameDecoderStreamOptions = {}) {
    super({
      transform: (chunk, controller) => {
        try {
          this.#transform(bytesOf(chunk), chunk instanceof PooledBytes ? chunk : null, controller);
        } finally {
          // Every view passed on is a hold of its own: the chunk's hold can go.
          release(chunk);
        }
      },
      flush: () => {
        if (this.#headerFilled > 0 || this.#payloadLength !== null) {
          throw new SyntaxError("Cannot decode frame: the stream ended inside a frame");
        }
      },
    });
    this.#maxFrameLength = checkLimit(options.maxFrameLength ?? MAX_FRAME_LENGTH);
    this.#streamedTypes = options.streamedTypes ?? new Set();
    this.#maxGatheredLength = checkLimit(options.maxGatheredLength ?? 0xffffffff);
  }

  /** The largest frame length accepted from now on. */
  get maxFrameLength(): number {
    return this.#maxFrameLength;
  }

  set maxFrameLength(value: number) {
    this.#maxFrameLength = checkLimit(value);
  }

  #transform(chunk: Uint8Array, pooled: PooledBytes | null, controller: TransformStreamDefaultController<Frame>): void {
    // A view passed on: a hold of its own when the chunk is pooled.
    const view = (begin: number, end: number): Frame => ({
      type: this.#type,
      payload: pooled ? pooled.hold(begin, end) : chunk.subarray(begin, end),
    });
    let offset = 0;
    while (offset < chunk.length) {
      if (this.#payloadLength === null) {
        offset = this.#readHeader(chunk, offset);
        continue;
      }
      const payloadLength = this.#payloadLength;
      if (this.#dropping > 0) {
        const take = Math.min(payloadLength - this.#payloadFilled, chunk.length - offset);
        this.#payloadFilled += take;
        offset += take;
        if (this.#payloadFilled === payloadLength) {
          controller.enqueue({ type: this.#type, payload: new Uint8Array(0), tooLong: this.#dropping });
          this.#dropping = 0;
          this.#payloadFilled = 0;
          this.#payloadLength = null;
        }
        continue;
      }
      if (this.#streamedTypes.has(this.#type)) {
        // Pass on what this chunk holds of the payload, as a view; the rest comes with the next chunks.
        const take = Math.min(payloadLength - this.#payloadFilled, chunk.length - offset);
        if (take > 0 || payloadLength === 0) {
          controller.enqueue(view(offset, offset + take));
        }
        this.#payloadFilled += take;
        offset += take;
        if (this.#payloadFilled === payloadLength) {
          this.#payloadFilled = 0;
          this.#payloadLength = null;
        }
        continue;
      }
      if (this.#payload === null && chunk.length - offset >= payloadLength) {
        // The whole payload is in this chunk: pass a view, copy nothing.
        controller.enqueue(view(offset, offset + payloadLength));
        offset += payloadLength;
        this.#payloadLength = null;
        continue;
      }
      // The payload spans chunks: gather it, once, into a buffer of its exact size.
      this.#payload ??= new Uint8Array(payloadLength);
      const take = Math.min(payloadLength - this.#payloadFilled, chunk.length - offset);
      this.#payload.set(chunk.subarray(offset, offset + take), this.#payloadFilled);
      this.#payloadFilled += take;
      offset += take;
      if (this.#payloadFilled === payloadLength) {
        controller.enqueue({ type: this.#type, payload: this.#payload });
        this.#payload = null;
        this.#payloadFilled = 0;
        this.#payloadLength = null;
      }
    }
    // A frame with an empty payload is complete as soon as its header is. A streamed one is passed on too, as
    // one empty piece: the receiver must see it (an empty DATA outside a body is a protocol error).
    if (this.#payloadLength === 0) {
      controller.enqueue({ type: this.#type, payload: new Uint8Array(0) });
      this.#payloadLength = null;
    }
  }

  /** Reads (part of) a header from `chunk` at `offset`; checks the length once complete. */
  #readHeader(chunk: Uint8Array, offset: number): number {
    let length: number;
    if (this.#headerFilled === 0 && chunk.length - offset >= FRAME_HEADER_BYTES) {
      length = new DataView(chunk.buffer, chunk.byteOffset + offset, 4).getUint32(0);
      this.#type = chunk[offset + 4];
      offset += FRAME_HEADER_BYTES;
    } else {
      const take = Math.min(FRAME_HEADER_BYTES - this.#headerFilled, chunk.length - offset);
      this.#header.set(chunk.subarray(offset, offset + take), this.#headerFilled);
      this.#headerFilled += take;
      offset += take;
      if (this.#headerFilled < FRAME_HEADER_BYTES) return offset;
      this.#headerFilled = 0;
      length = new DataView(this.#header.buffer).getUint32(0);
      this.#type = this.#header[4];
    }
    if (length === 0) {
      throw new SyntaxError("Cannot decode frame: length is 0");
    }
    if (length > this.#maxFrameLength) {
      throw new RangeError(`Cannot decode frame: length ${length} exceeds the limit of ${this.#maxFrameLength}`);
    }
    this.#payloadLength = length - 1;
    if (length > this.#maxGatheredLength && !this.#streamedTypes.has(this.#type)) this.#dropping = length;
    return offset;
  }
}

function checkLimit(value: number): number {
  if (!Number.isInteger(value) || value < 1 || value > 0xffffffff) {
    throw new RangeError(`Cannot set frame length limit to ${value}: not an integer from 1 to 2^32-1`);
  }
  return value;
}
