import assert from "node:assert/strict";
import {
  type Frame,
  FRAME_HEADER_BYTES,
  FrameDecoderStream,
  FrameEncoderStream,
  MAX_DATA_PAYLOAD,
  MAX_FRAME_LENGTH,
} from "./frames.ts";
import { bytesOf } from "./pooled_bytes.ts";

/** A frame as these tests give and see it: plain bytes (no pool is involved here). */
type PlainFrame = Frame & { payload: Uint8Array };

/** Bytes 0, 1, 2, ... (mod 251), so a shifted or swapped byte shows. */
function pattern(length: number, seed = 0): Uint8Array {
  const bytes = new Uint8Array(length);
  for (let i = 0; i < length; i++) bytes[i] = (i + seed) % 251;
  return bytes;
}

function concat(chunks: Uint8Array[]): Uint8Array {
  const bytes = new Uint8Array(chunks.reduce((sum, chunk) => sum + chunk.length, 0));
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.length;
  }
  return bytes;
}

/** A frame header by hand: `length` then `type`. */
function header(length: number, type: number): Uint8Array {
  const bytes = new Uint8Array(FRAME_HEADER_BYTES);
  new DataView(bytes.buffer).setUint32(0, length);
  bytes[4] = type;
  return bytes;
}

async function encode(frames: PlainFrame[]): Promise<Uint8Array[]> {
  return (await Array.fromAsync(ReadableStream.from(frames).pipeThrough(new FrameEncoderStream()))).map(bytesOf);
}

async function decode(chunks: Uint8Array[], decoder = new FrameDecoderStream()): Promise<PlainFrame[]> {
  return (await Array.fromAsync(ReadableStream.from(chunks).pipeThrough(decoder))).map(plain);
}

function plain(frame: Frame): PlainFrame {
  return { ...frame, payload: bytesOf(frame.payload) };
}

/** Compares bytes without printing megabytes on a mismatch. */
function assertBytes(actual: Uint8Array, expected: Uint8Array, context = ""): void {
  assert.equal(actual.length, expected.length, `length ${context}`);
  const at = actual.findIndex((byte, i) => byte !== expected[i]);
  assert.equal(at, -1, `first differing byte ${context}`);
}

/** Compares frames by type and payload bytes (not by buffer). */
function assertFrames(actual: PlainFrame[], expected: PlainFrame[], context = ""): void {
  assert.equal(actual.length, expected.length, `frame count ${context}`);
  for (let i = 0; i < expected.length; i++) {
    assert.equal(actual[i].type, expected[i].type, `type of frame ${i} ${context}`);
    assertBytes(actual[i].payload, expected[i].payload, `of frame ${i} ${context}`);
  }
}

/** Rejects if `promise` has not settled within `ms`, and leaves no timer behind. */
async function within<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`Did not settle within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Several frames of different types and sizes, around the interesting edges. */
const SEQUENCE: PlainFrame[] = [
  { type: 0x01, payload: new Uint8Array(0) },
  { type: 0xff, payload: pattern(1, 7) },
  { type: 0x20, payload: pattern(4, 3) },
  { type: 0x00, payload: pattern(5, 11) },
  { type: 0x85, payload: pattern(6, 13) },
  { type: 0x21, payload: new Uint8Array(0) },
  { type: 0x13, payload: pattern(200, 17) },
];

Deno.test("FrameEncoderStream and FrameDecoderStream round trip payloads of every size class", async () => {
  const sizes = [0, 1, 2, 4, 5, 16 * 1024 - 1, 16 * 1024, 16 * 1024 + 1, 65536, MAX_DATA_PAYLOAD];
  for (const size of sizes) {
    const frame = { type: 0x20, payload: pattern(size, size) };
    const decoded = await decode(await encode([frame]));
    assertFrames(decoded, [frame], `(payload of ${size} bytes)`);
  }
});

Deno.test("FrameEncoderStream writes the length (type byte plus payload) big-endian, then the type", async () => {
  const chunks = await encode([{ type: 0x85, payload: new Uint8Array([0xaa, 0xbb]) }]);
  assert.deepEqual(concat(chunks), new Uint8Array([0, 0, 0, 3, 0x85, 0xaa, 0xbb]));
  const empty = await encode([{ type: 7, payload: new Uint8Array(0) }]);
  assert.deepEqual(concat(empty), new Uint8Array([0, 0, 0, 1, 7]));
});

Deno.test("FrameEncoderStream coalesces a payload up to 16 KiB into one chunk", async () => {
  const payload = pattern(16 * 1024);
  const chunks = await encode([{ type: 1, payload }]);
  assert.equal(chunks.length, 1);
  assert.equal(chunks[0].length, FRAME_HEADER_BYTES + payload.length);
});

Deno.test("FrameEncoderStream passes a payload above 16 KiB on as is, after its own header", async () => {
  const payload = pattern(16 * 1024 + 1);
  const chunks = await encode([{ type: 1, payload }]);
  assert.equal(chunks.length, 2);
  assert.deepEqual(chunks[0], header(payload.length + 1, 1));
  assert.ok(chunks[1] === payload, "the payload should be the very same array, not a copy");
});

Deno.test("FrameEncoderStream puts a batch's small frames side by side in one chunk, around large payloads", async () => {
  const small = [pattern(3, 1), pattern(100, 2), pattern(16 * 1024, 3)];
  const large = pattern(16 * 1024 + 1, 4);
  const batch: PlainFrame[] = [
    { type: 1, payload: small[0] },
    { type: 2, payload: small[1] },
    { type: 3, payload: large },
    { type: 4, payload: small[2] },
  ];
  const chunks = (await Array.fromAsync(ReadableStream.from([batch]).pipeThrough(new FrameEncoderStream()))).map(
    bytesOf,
  );
  assert.equal(chunks.length, 3, "small frames and the large one's header / the large payload / the small frame after");
  assert.ok(chunks[1] === large, "a large payload in a batch is not copied either");
  assertBytes(
    concat(chunks),
    concat([
      header(4, 1),
      small[0],
      header(101, 2),
      small[1],
      header(large.length + 1, 3),
      large,
      header(16 * 1024 + 1, 4),
      small[2],
    ]),
  );
  assertFrames(await decode(chunks), batch);
});

Deno.test("FrameEncoderStream rejects a type that is not a byte", async () => {
  for (const type of [-1, 256, 1.5, NaN]) {
    await assert.rejects(encode([{ type, payload: new Uint8Array(1) }]), RangeError, `type ${type}`);
  }
});

Deno.test("FrameDecoderStream decodes the same frames whatever the 2-way split of the bytes", async () => {
  const bytes = concat(await encode(SEQUENCE));
  for (let cut = 0; cut <= bytes.length; cut++) {
    const decoded = await decode([bytes.subarray(0, cut), bytes.subarray(cut)]);
    assertFrames(decoded, SEQUENCE, `(split at ${cut} of ${bytes.length})`);
  }
});

Deno.test("FrameDecoderStream decodes the same frames when fed one byte per chunk", async () => {
  const bytes = concat(await encode(SEQUENCE));
  const chunks = Array.from(bytes, (_, i) => bytes.subarray(i, i + 1));
  assertFrames(await decode(chunks), SEQUENCE);
});

Deno.test("FrameDecoderStream decodes the same frames when fed every 3-way split around a large frame", async () => {
  // A large frame between two small ones: cut once in the first header or payload and once in the large one.
  const frames = [SEQUENCE[2], { type: 0x20, payload: pattern(70_000, 5) }, SEQUENCE[4]];
  const bytes = concat(await encode(frames));
  const firstCuts = [0, 1, 4, 5, 6, 8, 9, 10, 13];
  const secondCuts = [14, 15, 17, 18, 19, 100, 65_536, bytes.length - 12, bytes.length - 11, bytes.length - 1];
  for (const a of firstCuts) {
    for (const b of secondCuts) {
      const decoded = await decode([bytes.subarray(0, a), bytes.subarray(a, b), bytes.subarray(b)]);
      assertFrames(decoded, frames, `(cuts at ${a} and ${b})`);
    }
  }
});

Deno.test("FrameDecoderStream decodes many frames packed in one chunk", async () => {
  const frames: PlainFrame[] = [];
  for (let i = 0; i < 2000; i++) frames.push({ type: i % 256, payload: pattern(i % 37, i) });
  const bytes = concat(await encode(frames));
  assertFrames(await decode([bytes]), frames);
});

Deno.test("FrameDecoderStream ignores empty chunks", async () => {
  const bytes = concat(await encode(SEQUENCE));
  const empty = new Uint8Array(0);
  const decoded = await decode([empty, bytes.subarray(0, 3), empty, bytes.subarray(3), empty]);
  assertFrames(decoded, SEQUENCE);
});

Deno.test("FrameDecoderStream rejects a length of 0 as a SyntaxError", async () => {
  await assert.rejects(decode([header(0, 1)]), SyntaxError);
  // The same when the header arrives in pieces, and after a good frame.
  const good = concat(await encode([SEQUENCE[1]]));
  await assert.rejects(decode([good, header(0, 1).subarray(0, 2), header(0, 1).subarray(2)]), SyntaxError);
});

Deno.test("FrameDecoderStream rejects a length above the limit as a RangeError", async () => {
  await assert.rejects(decode([header(MAX_FRAME_LENGTH + 1, 0x20)]), RangeError);
  await assert.rejects(
    decode([header(11, 1), pattern(10)], new FrameDecoderStream({ maxFrameLength: 10 })),
    RangeError,
  );
  // Exactly at the limit is accepted.
  const atLimit = await decode([header(10, 1), pattern(9)], new FrameDecoderStream({ maxFrameLength: 10 }));
  assertFrames(atLimit, [{ type: 1, payload: pattern(9) }]);
});

Deno.test("FrameDecoderStream rejects a header announcing 0xFFFFFFFF at once, without waiting for the payload", async () => {
  // The source never ends: a decoder that waited for (or allocated) the payload would not settle.
  for (const split of [false, true]) {
    const bytes = header(0xffffffff, 0x20);
    const chunks = split ? Array.from(bytes, (_, i) => bytes.subarray(i, i + 1)) : [bytes];
    const source = new ReadableStream<Uint8Array>({
      start(controller) {
        for (const chunk of chunks) controller.enqueue(chunk);
      },
    });
    const reader = source.pipeThrough(new FrameDecoderStream()).getReader();
    await assert.rejects(within(reader.read(), 2000), RangeError, `header split: ${split}`);
  }
});

Deno.test("FrameDecoderStream rejects input that ends inside a header as a SyntaxError at flush", async () => {
  const bytes = concat(await encode(SEQUENCE));
  for (const missing of [1, 2, 4]) {
    // The last frame's header, cut short: append only part of a further header.
    const truncated = concat([bytes, header(3, 1).subarray(0, FRAME_HEADER_BYTES - missing)]);
    await assert.rejects(decode([truncated]), SyntaxError, `${missing} header bytes missing`);
  }
});

Deno.test("FrameDecoderStream rejects input that ends inside a payload as a SyntaxError at flush", async () => {
  await assert.rejects(decode([header(4, 1)]), SyntaxError, "no payload byte");
  await assert.rejects(decode([header(4, 1), new Uint8Array([1, 2])]), SyntaxError, "part of the payload");
  await assert.rejects(decode([concat([header(4, 1), new Uint8Array([1, 2])])]), SyntaxError, "in one chunk");
});

Deno.test("FrameDecoderStream emits the frames before the error when the input is cut short", async () => {
  const good = concat(await encode(SEQUENCE.slice(0, 3)));
  const reader = ReadableStream.from([good, header(9, 1)]).pipeThrough(new FrameDecoderStream()).getReader();
  for (let i = 0; i < 3; i++) {
    const { value } = await reader.read();
    assert.equal(value?.type, SEQUENCE[i].type);
  }
  await assert.rejects(reader.read(), SyntaxError);
});

Deno.test("FrameDecoderStream applies a changed maxFrameLength to the next header", async () => {
  const decoder = new FrameDecoderStream();
  assert.equal(decoder.maxFrameLength, MAX_FRAME_LENGTH);
  const writer = decoder.writable.getWriter();
  const reader = decoder.readable.getReader();
  const frame = concat(await encode([{ type: 2, payload: pattern(99) }]));

  // Accepted under the default limit.
  const [first] = await Promise.all([reader.read(), writer.write(frame)]);
  assert.equal(first.value?.payload.length, 99);

  // Lowered below the frame's length: the same frame is now refused.
  decoder.maxFrameLength = 99;
  assert.equal(decoder.maxFrameLength, 99);
  const [second, written] = await Promise.allSettled([reader.read(), writer.write(frame)]);
  assert.equal(second.status, "rejected");
  assert.ok(second.reason instanceof RangeError, String(second.reason));
  assert.equal(written.status, "rejected");
});

Deno.test("FrameDecoderStream accepts a larger frame once maxFrameLength is raised", async () => {
  const decoder = new FrameDecoderStream({ maxFrameLength: 10 });
  const writer = decoder.writable.getWriter();
  const reader = decoder.readable.getReader();
  const small = concat(await encode([{ type: 1, payload: pattern(9) }]));
  const large = concat(await encode([{ type: 2, payload: pattern(1000) }]));
  const [first] = await Promise.all([reader.read(), writer.write(small)]);
  assert.equal(first.value?.payload.length, 9);
  decoder.maxFrameLength = 1001;
  const [second] = await Promise.all([reader.read(), writer.write(large)]);
  assert.equal(second.value?.payload.length, 1000);
  await Promise.all([writer.close(), reader.read()]);
});

Deno.test("FrameDecoderStream refuses a limit that is not an integer from 1 to 2^32-1", () => {
  for (const value of [0, -1, 1.5, NaN, Infinity, 2 ** 32]) {
    assert.throws(() => new FrameDecoderStream({ maxFrameLength: value }), RangeError, `constructor, ${value}`);
    const decoder = new FrameDecoderStream();
    assert.throws(() => (decoder.maxFrameLength = value), RangeError, `setter, ${value}`);
    assert.equal(decoder.maxFrameLength, MAX_FRAME_LENGTH);
  }
  assert.equal(new FrameDecoderStream({ maxFrameLength: 2 ** 32 - 1 }).maxFrameLength, 2 ** 32 - 1);
});

Deno.test("FrameDecoderStream passes payloads that lie inside one input chunk as views, not copies", async () => {
  const chunk = concat(await encode(SEQUENCE));
  const decoded = await decode([chunk]);
  assert.equal(decoded.length, SEQUENCE.length);
  let offset = 0;
  for (const frame of decoded) {
    offset += FRAME_HEADER_BYTES;
    assert.ok(frame.payload.buffer === chunk.buffer, "payload should share the input chunk's buffer");
    assert.equal(frame.payload.byteOffset, chunk.byteOffset + offset);
    offset += frame.payload.length;
  }
  // A payload after its header in the same chunk, behind a partial frame from an earlier chunk.
  const bytes = concat(await encode([SEQUENCE[2], SEQUENCE[6]]));
  const second = bytes.subarray(4);
  const [, last] = await decode([bytes.subarray(0, 4), second]);
  assert.ok(last.payload.buffer === second.buffer, "payload should share the second chunk's buffer");
});

Deno.test("FrameDecoderStream passes a payload that fills the chunk after its header's chunk as a view", async () => {
  // FrameEncoderStream sends a large payload as its own chunk right after a 5-byte header chunk,
  // so this is the common case for DATA frames; the payload lies inside one input chunk.
  const payload = pattern(MAX_DATA_PAYLOAD);
  const [large] = await decode([header(payload.length + 1, 0x20), payload]);
  assertBytes(large.payload, payload);
  assert.ok(large.payload.buffer === payload.buffer, "payload was copied instead of passed on as a view");
});

Deno.test("FrameDecoderStream copies a payload that spans chunks into a buffer of its exact size", async () => {
  const bytes = concat(await encode([{ type: 3, payload: pattern(1000) }]));
  const [frame] = await decode([bytes.subarray(0, 500), bytes.subarray(500)]);
  assertBytes(frame.payload, pattern(1000));
  assert.notEqual(frame.payload.buffer, bytes.buffer);
  assert.equal(frame.payload.buffer.byteLength, 1000);
});

Deno.test("FrameDecoderStream passes streamed types on in pieces as they arrive, never gathered", async () => {
  const payload = new Uint8Array(1000).map((_, i) => i % 251);
  const bytes = concat(await encode([{ type: 0x20, payload }, { type: 1, payload: new Uint8Array([9, 9]) }]));
  // Cut inside the DATA payload twice, and inside the next header.
  const cuts = [0, 3, 300, 700, bytes.length - 4, bytes.length];
  const chunks = cuts.slice(1).map((end, i) => bytes.slice(cuts[i], end));
  const frames = (await Array.fromAsync(
    ReadableStream.from(chunks).pipeThrough(new FrameDecoderStream({ streamedTypes: new Set([0x20]) })),
  )).map(plain);
  const pieces = frames.filter((frame) => frame.type === 0x20);
  assert.ok(pieces.length >= 3, `expected several pieces, got ${pieces.length}`);
  assert.deepEqual(concat(pieces.map((piece) => piece.payload)), payload);
  assert.ok(
    pieces.every((piece) => chunks.some((chunk) => chunk.buffer === piece.payload.buffer)),
    "views, not copies",
  );
  assert.deepEqual(frames.at(-1), { type: 1, payload: new Uint8Array([9, 9]) }, "the next frame is whole");
});

Deno.test("FrameDecoderStream still checks a streamed frame's length before passing any of it", async () => {
  const header = new Uint8Array([0xff, 0xff, 0xff, 0xff, 0x20]);
  const stream = ReadableStream.from([header]).pipeThrough(
    new FrameDecoderStream({ streamedTypes: new Set([0x20]) }),
  );
  await assert.rejects(Array.fromAsync(stream), RangeError);
});

Deno.test("FrameDecoderStream passes an empty frame of a streamed type on as one empty piece", async () => {
  const bytes = concat([header(1, 0x20), header(1, 0x20), header(3, 0x20), pattern(2)]);
  for (const chunks of [[bytes], [...bytes].map((byte) => new Uint8Array([byte]))]) {
    const frames = await decode(chunks, new FrameDecoderStream({ streamedTypes: new Set([0x20]) }));
    const pieces = frames.map((frame) => frame.payload.length);
    assert.deepEqual(pieces.slice(0, 2), [0, 0], "one empty piece per empty frame");
    assert.equal(pieces.slice(2).reduce((sum, n) => sum + n, 0), 2);
    assert.ok(pieces.slice(2).every((n) => n > 0), "a non-empty frame's pieces are never empty");
  }
});

Deno.test("FrameDecoderStream drops a gathered frame over maxGatheredLength as it arrives, and passes it on empty", async () => {
  // A 1 MiB control frame sent in 4 KiB pieces, then a small one: nothing of the large one is held.
  const large = pattern(MAX_DATA_PAYLOAD);
  const bytes = concat([header(large.length + 1, 3), large, header(3, 4), pattern(2)]);
  const chunks: Uint8Array[] = [];
  for (let offset = 0; offset < bytes.length; offset += 4096) chunks.push(bytes.subarray(offset, offset + 4096));
  const options = { maxGatheredLength: 64 * 1024, streamedTypes: new Set([0x20]) };
  const frames = await decode(chunks, new FrameDecoderStream(options));
  assert.deepEqual(frames, [
    { type: 3, payload: new Uint8Array(0), tooLong: large.length + 1 },
    { type: 4, payload: pattern(2) },
  ]);
  // Streamed types are not gathered, so the limit is not theirs; a frame at the limit is gathered as before.
  const data = concat([header(70_001, 0x20), pattern(70_000), header(64 * 1024, 5), pattern(64 * 1024 - 1)]);
  const passed = await decode([data.subarray(0, 100), data.subarray(100)], new FrameDecoderStream(options));
  assert.equal(passed.filter((frame) => frame.type === 0x20).reduce((sum, f) => sum + f.payload.length, 0), 70_000);
  assertBytes(passed.at(-1)!.payload, pattern(64 * 1024 - 1));
  assert.equal(passed.at(-1)!.tooLong, undefined);
});
