/**
 * Property-based tests of the frame codec (fast-check): whatever the frames,
 * whatever the bytes and however they are cut into chunks, the streaming
 * decoder agrees with a plain decoder of the whole buffer written here, and
 * fails only with `SyntaxError` or `RangeError`. Run counts and seeds:
 * `_property_params.ts` (`deno task fuzz` for a long run).
 *
 * @module
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import { propertyParameters } from "./_property_params.ts";
import {
  type Frame as WireFrame,
  FRAME_HEADER_BYTES,
  FrameDecoderStream,
  FrameEncoderStream,
  MAX_FRAME_LENGTH,
} from "./frames.ts";
import { bytesOf } from "./pooled_bytes.ts";

/** A frame as these properties see it: plain bytes (no pool is involved here). */
type Frame = WireFrame & { payload: Uint8Array };

function plain(frame: WireFrame): Frame {
  return { ...frame, payload: bytesOf(frame.payload) };
}

/** Type bytes the generators favour, so that frames of a streamed type are common. */
const TYPES = [0x00, 0x01, 0x13, 0x20, 0x21, 0x85, 0xff];

/** What decoding a whole buffer gives: the frames in order, then the error that stopped it, if any. */
interface Decoded {
  frames: Frame[];
  error: "SyntaxError" | "RangeError" | null;
}

/**
 * Decodes a whole buffer the plain way: the model the stream must agree
 * with. A frame of a streamed type yields what is there of its payload even
 * when the input ends inside it (the stream passes pieces on as they come).
 */
function referenceDecode(bytes: Uint8Array, maxFrameLength: number, streamed: ReadonlySet<number>): Decoded {
  const frames: Frame[] = [];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let offset = 0;
  while (offset < bytes.length) {
    if (bytes.length - offset < FRAME_HEADER_BYTES) return { frames, error: "SyntaxError" };
    const length = view.getUint32(offset);
    const type = bytes[offset + 4];
    offset += FRAME_HEADER_BYTES;
    if (length === 0) return { frames, error: "SyntaxError" };
    if (length > maxFrameLength) return { frames, error: "RangeError" };
    const end = offset + length - 1;
    if (end > bytes.length) {
      if (streamed.has(type)) frames.push({ type, payload: bytes.subarray(offset) });
      return { frames, error: "SyntaxError" };
    }
    frames.push({ type, payload: bytes.subarray(offset, end) });
    offset = end;
  }
  return { frames, error: null };
}

/** Encodes frames the plain way: header, then payload. */
function referenceEncode(frames: Frame[]): Uint8Array {
  return concat(frames.map(({ type, payload }) => {
    const bytes = new Uint8Array(FRAME_HEADER_BYTES + payload.length);
    new DataView(bytes.buffer).setUint32(0, payload.length + 1);
    bytes[4] = type;
    bytes.set(payload, FRAME_HEADER_BYTES);
    return bytes;
  }));
}

/**
 * Frames of a streamed type come in pieces that cannot be told apart from
 * whole frames: join each run of one streamed type into one entry, and drop
 * empty ones (an empty streamed frame yields one empty piece, which joins
 * with its neighbours).
 */
function normalize(frames: Frame[], streamed: ReadonlySet<number>): Frame[] {
  const result: Frame[] = [];
  for (const frame of frames) {
    if (!streamed.has(frame.type)) {
      result.push(frame);
      continue;
    }
    if (frame.payload.length === 0) continue;
    const last = result.at(-1);
    if (last !== undefined && last.type === frame.type) {
      result[result.length - 1] = { type: frame.type, payload: concat([last.payload, frame.payload]) };
    } else {
      result.push(frame);
    }
  }
  return result;
}

/**
 * Decodes chunks with a fresh decoder, collecting what it yields and how it
 * fails. Anything thrown but a `SyntaxError` or `RangeError` fails the test.
 */
async function streamDecode(
  chunks: Uint8Array[],
  options: { maxFrameLength?: number; streamedTypes: ReadonlySet<number> },
): Promise<Decoded> {
  const frames: Frame[] = [];
  const reader = ReadableStream.from(chunks).pipeThrough(new FrameDecoderStream(options)).getReader();
  try {
    while (true) {
      const { done, value } = await reader.read();
      if (done) return { frames, error: null };
      frames.push(plain(value));
    }
  } catch (error) {
    if (error instanceof SyntaxError) return { frames, error: "SyntaxError" };
    if (error instanceof RangeError) return { frames, error: "RangeError" };
    throw error;
  }
}

function concat(parts: Uint8Array[]): Uint8Array {
  const bytes = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    bytes.set(part, offset);
    offset += part.length;
  }
  return bytes;
}

/** Bytes 0, 1, 2, ... from `seed` (mod 251): a large payload that is cheap to make and shows a shifted byte. */
function pattern(length: number, seed: number): Uint8Array {
  const bytes = new Uint8Array(length);
  for (let i = 0; i < length; i++) bytes[i] = (i + seed) % 251;
  return bytes;
}

/**
 * Cuts `bytes` at `cuts` (taken modulo its length + 1; repeats make empty
 * chunks). The chunks are views into a larger buffer, at an offset, as the
 * connection's reader hands them out.
 */
function split(bytes: Uint8Array, cuts: number[], padding: number): Uint8Array[] {
  const buffer = new Uint8Array(padding + bytes.length + padding);
  buffer.fill(0xee);
  buffer.set(bytes, padding);
  const inside = buffer.subarray(padding, padding + bytes.length);
  const points = cuts.map((cut) => cut % (bytes.length + 1)).sort((a, b) => a - b);
  const chunks: Uint8Array[] = [];
  let start = 0;
  for (const point of points) {
    chunks.push(inside.subarray(start, point));
    start = point;
  }
  chunks.push(inside.subarray(start));
  return chunks;
}

/** Fails unless two frame lists hold the same types and payload bytes. */
function assertSameFrames(actual: Frame[], expected: Frame[]): void {
  assert.deepStrictEqual(
    actual.map((frame) => ({ type: frame.type, payload: Array.from(frame.payload) })),
    expected.map((frame) => ({ type: frame.type, payload: Array.from(frame.payload) })),
  );
}

/**
 * Fails unless `actual` is a prefix of `expected`: a stream that errors drops
 * frames it had queued but not yet handed out, and the last streamed entry
 * may have got only some of its pieces out.
 */
function assertPrefixFrames(actual: Frame[], expected: Frame[], streamed: ReadonlySet<number>): void {
  assert.ok(actual.length <= expected.length, `${actual.length} frames out, only ${expected.length} in the input`);
  if (actual.length === 0) return;
  const last = actual.length - 1;
  assertSameFrames(actual.slice(0, last), expected.slice(0, last));
  assert.equal(actual[last].type, expected[last].type);
  const payload = Array.from(actual[last].payload);
  const whole = Array.from(expected[last].payload);
  if (streamed.has(actual[last].type)) assert.deepStrictEqual(payload, whole.slice(0, payload.length));
  else assert.deepStrictEqual(payload, whole);
}

const typeByte = fc.oneof(fc.constantFrom(...TYPES), fc.integer({ min: 0, max: 255 }));

/** A payload: mostly small, sometimes above the encoder's 16 KiB coalescing limit. */
const payload = fc.oneof(
  { weight: 8, arbitrary: fc.uint8Array({ maxLength: 64 }) },
  { weight: 1, arbitrary: fc.constant(new Uint8Array(0)) },
  {
    weight: 1,
    arbitrary: fc.tuple(fc.integer({ min: 16 * 1024 - 2, max: 40_000 }), fc.nat(250))
      .map(([length, seed]) => pattern(length, seed)),
  },
);

const frame = fc.record({ type: typeByte, payload });

const streamedTypes = fc.oneof(
  fc.constant(new Set<number>()),
  fc.constant(new Set([0x20])),
  fc.subarray(TYPES).map((types) => new Set(types)),
);

const cuts = fc.oneof(
  { weight: 4, arbitrary: fc.array(fc.nat(), { maxLength: 12 }) },
  // Cuts close together: headers split byte by byte.
  {
    weight: 1,
    arbitrary: fc.tuple(fc.nat(), fc.integer({ min: 1, max: 12 })).map(([at, n]) =>
      [...Array(n).keys()].map((i) => at + i)
    ),
  },
);

Deno.test("FrameDecoderStream decodes what FrameEncoderStream encodes, whatever the frames and the chunking", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(frame, { maxLength: 12 }),
      streamedTypes,
      cuts,
      fc.nat(16),
      fc.boolean(),
      async (frames, streamed, cutPoints, padding, tight) => {
        const encoded = await Array.fromAsync(ReadableStream.from(frames).pipeThrough(new FrameEncoderStream()));
        const bytes = concat(encoded.map(bytesOf));
        assert.deepStrictEqual(bytes, referenceEncode(frames), "the encoder's bytes");
        // A tight limit: the longest frame is exactly at it, and accepted.
        const maxFrameLength = tight ? Math.max(1, ...frames.map((f) => f.payload.length + 1)) : undefined;
        const chunks = split(bytes, cutPoints, padding);
        const decoded = await streamDecode(chunks, { maxFrameLength, streamedTypes: streamed });
        assert.equal(decoded.error, null);
        // A streamed frame's pieces are never empty, but an empty streamed frame is passed on as one empty piece.
        const empties = (list: Frame[]) => list.filter((f) => streamed.has(f.type) && f.payload.length === 0).length;
        assert.equal(empties(decoded.frames), empties(frames), "one empty piece per empty streamed frame, no other");
        assertSameFrames(normalize(decoded.frames, streamed), normalize(frames, streamed));
      },
    ),
    propertyParameters("encode then decode", 300),
  );
});

/** Bytes that are partly frame-like: random runs, whole frames, and bare headers announcing any length. */
const frameLikeBytes = fc.array(
  fc.oneof(
    fc.uint8Array({ maxLength: 24 }),
    frame.filter((f) => f.payload.length <= 64).map((f) => referenceEncode([f])),
    fc.tuple(
      fc.oneof(fc.integer({ min: 0, max: 80 }), fc.integer({ min: 0, max: 0xffffffff })),
      typeByte,
    ).map(([length, type]) => {
      const header = new Uint8Array(FRAME_HEADER_BYTES);
      new DataView(header.buffer).setUint32(0, length);
      header[4] = type;
      return header;
    }),
  ),
  { maxLength: 10 },
).map(concat);

const maxFrameLength = fc.oneof(
  fc.integer({ min: 1, max: 100 }),
  fc.constant(MAX_FRAME_LENGTH),
  fc.integer({ min: 1, max: 0xffffffff }),
);

Deno.test("FrameDecoderStream agrees with a whole-buffer decoder on arbitrary bytes and fails only with SyntaxError or RangeError", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.oneof(frameLikeBytes, fc.uint8Array({ maxLength: 200 })),
      maxFrameLength,
      streamedTypes,
      cuts,
      fc.nat(16),
      async (bytes, limit, streamed, cutPoints, padding) => {
        const expected = referenceDecode(bytes, limit, streamed);
        const decoded = await streamDecode(split(bytes, cutPoints, padding), {
          maxFrameLength: limit,
          streamedTypes: streamed,
        });
        assert.equal(decoded.error, expected.error, "how decoding ends");
        const actual = normalize(decoded.frames, streamed);
        const whole = normalize(expected.frames, streamed);
        if (expected.error === null) assertSameFrames(actual, whole);
        else assertPrefixFrames(actual, whole, streamed);
      },
    ),
    propertyParameters("arbitrary bytes", 500),
  );
});

/** A limit, and a few frames under it to come before the header that breaks it. */
const limitAndFramesUnder = fc.integer({ min: 1, max: 0xfffffffe }).chain((limit) =>
  fc.tuple(
    fc.constant(limit),
    fc.array(fc.record({ type: typeByte, payload: fc.uint8Array({ maxLength: Math.min(64, limit - 1) }) }), {
      maxLength: 3,
    }),
  )
);

Deno.test("FrameDecoderStream refuses a length above its limit as soon as the header is complete", async () => {
  await fc.assert(
    fc.asyncProperty(
      limitAndFramesUnder,
      fc.nat(),
      typeByte,
      streamedTypes,
      cuts,
      async ([limit, before], over, type, streamed, cutPoints) => {
        const length = limit + 1 + (over % (0xffffffff - limit));
        const header = new Uint8Array(FRAME_HEADER_BYTES);
        new DataView(header.buffer).setUint32(0, length);
        header[4] = type;
        // Frames under the limit, then the header; its payload never comes and the input never ends, so a
        // decoder that waited for the payload (or allocated for it) would not refuse before the last write.
        const bytes = concat([referenceEncode(before), header]);
        const decoder = new FrameDecoderStream({ maxFrameLength: limit, streamedTypes: streamed });
        const writer = decoder.writable.getWriter();
        const reader = decoder.readable.getReader();
        // Settles with what ended the reading, so that an early failure is reported by the assertions below.
        const readingEnded = (async () => {
          while (!(await reader.read()).done) {
            // The frames before the header: checked by the other properties.
          }
        })().then(() => null, (error: unknown) => error);
        const chunks = split(bytes, cutPoints, 0).filter((chunk) => chunk.length > 0);
        for (let i = 0; i < chunks.length; i++) {
          const writing = writer.write(chunks[i]);
          if (i < chunks.length - 1) {
            await writing;
          } else {
            await assert.rejects(writing, RangeError, "the write that completes the header");
          }
        }
        const ended = await readingEnded;
        assert.ok(ended instanceof RangeError, `the reader saw ${ended}`);
      },
    ),
    propertyParameters("length above the limit", 300),
  );
});
