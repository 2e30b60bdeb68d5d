/**
 * Property-based tests of the message codec (fast-check): every valid
 * message of every type survives `encodeMessage` then `decodeMessage`, and
 * any frame at all (random bytes, arbitrary JSON, valid messages with fields
 * dropped, added, retyped or bit-flipped) either decodes to a well-formed
 * message or is refused with a `DfosError`: `BAD_REQUEST`, or the documented
 * `UNSUPPORTED` (unknown type byte or digest algorithm) and `TOO_LARGE`
 * (payload over its limit). Never a `TypeError` or anything else. Run counts
 * and seeds: `_property_params.ts` (`deno task fuzz` for a long run).
 *
 * @module
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import { propertyParameters } from "./_property_params.ts";
import { type Frame, MAX_DATA_PAYLOAD } from "./frames.ts";
import {
  decodeMessage,
  DIGEST_ALGORITHMS,
  encodeMessage,
  type FieldKind,
  MAX_CONTROL_LENGTH,
  type Message,
  MESSAGE_CODES,
  MESSAGE_FIELDS,
  type MessageType,
} from "./messages.ts";
import { DfosError, isStatusCode, Status } from "./status.ts";
import { bytesOf } from "./pooled_bytes.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

const MESSAGE_TYPES = Object.keys(MESSAGE_CODES) as MessageType[];
const TYPES_BY_CODE = new Map(MESSAGE_TYPES.map((type) => [MESSAGE_CODES[type], type]));

/** Any string: any code point, ASCII, lone surrogates, and now and then one too long for a control frame. */
const anyString = fc.oneof(
  { weight: 4, arbitrary: fc.string({ maxLength: 12 }) },
  { weight: 4, arbitrary: fc.string({ unit: "binary", maxLength: 12 }) },
  {
    weight: 2,
    arbitrary: fc.array(fc.integer({ min: 0, max: 0xffff }), { maxLength: 8 })
      .map((units) => String.fromCharCode(...units)),
  },
  {
    weight: 1,
    arbitrary: fc.integer({ min: MAX_CONTROL_LENGTH - 64, max: MAX_CONTROL_LENGTH + 64 }).map((n) => "x".repeat(n)),
  },
);

const size = fc.oneof(fc.nat(1000), fc.maxSafeNat(), fc.constant(Number.MAX_SAFE_INTEGER));

/** A valid value of each field kind. */
const VALUES: Record<FieldKind, fc.Arbitrary<unknown>> = {
  "string": anyString,
  "string?": fc.option(anyString, { nil: null }),
  "size": size,
  "size?": fc.option(size, { nil: null }),
  "bytes": fc.uint8Array({ maxLength: 40 }),
  "strings": fc.array(anyString, { maxLength: 4 }),
  "entries": fc.array(fc.record({ name: anyString, size, mtime: size }, { noNullPrototype: true }), { maxLength: 4 }),
  "code": fc.constantFrom(...Object.values(Status)),
  "algorithm": fc.constantFrom(...DIGEST_ALGORITHMS),
  "algorithm?": fc.option(fc.constantFrom(...DIGEST_ALGORITHMS), { nil: null }),
};

/** A valid message of `type`, every field drawn from its kind. */
function messageOf(type: MessageType): fc.Arbitrary<Message> {
  if (type === "data") {
    return fc.oneof(
      { weight: 20, arbitrary: fc.uint8Array({ maxLength: 64 }) },
      {
        weight: 1,
        arbitrary: fc.integer({ min: MAX_DATA_PAYLOAD - 2, max: MAX_DATA_PAYLOAD + 2 }).map((n) => new Uint8Array(n)),
      },
    ).map((chunk) => ({ type, chunk }));
  }
  const fields: Record<string, fc.Arbitrary<unknown>> = {};
  for (const [field, kind] of Object.entries(MESSAGE_FIELDS[type])) fields[field] = VALUES[kind];
  return fc.record(fields, { noNullPrototype: true }).map((values) => ({ type, ...values }) as Message);
}

const anyMessage = fc.constantFrom(...MESSAGE_TYPES).chain(messageOf);

/** A valid control message (not DATA) as its frame. */
const controlFrame = anyMessage.filter((message) => message.type !== "data").map(encodeMessage);

/** A key that is not a field of any message, or one that is (of another message, or `type`). */
const anyKey = fc.oneof(
  fc.constantFrom("__proto__", "constructor", "toString", "hasOwnProperty", "type", "name", "size", "data", "code"),
  fc.string({ maxLength: 6 }),
);

/** A valid message's JSON with a field dropped, added, or given another value (any JSON, or another kind's). */
const mutatedJson = fc.tuple(
  controlFrame,
  fc.array(
    fc.tuple(
      fc.constantFrom("drop", "add", "replace"),
      fc.nat(),
      anyKey,
      fc.oneof(fc.jsonValue({ maxDepth: 2 }), fc.constantFrom(...Object.values(VALUES)).chain((value) => value)),
    ),
    { minLength: 1, maxLength: 3 },
  ),
).map(([frame, edits]): Frame => {
  const json: Record<string, unknown> = JSON.parse(decoder.decode(bytesOf(frame.payload)));
  for (const [edit, index, key, value] of edits) {
    const keys = Object.keys(json);
    const existing = keys.length > 0 ? keys[index % keys.length] : key;
    const plain = value instanceof Uint8Array ? Array.from(value) : value;
    if (edit === "drop") delete json[existing];
    else if (edit === "replace") json[existing] = plain;
    // An own property even for "__proto__", as JSON.parse makes it.
    else Object.defineProperty(json, key, { value: plain, enumerable: true, writable: true, configurable: true });
  }
  return { type: frame.type, payload: encoder.encode(JSON.stringify(json)) };
});

/** A valid payload with bits flipped, cut off or with bytes inserted. */
const mutatedBytes = fc.tuple(
  controlFrame,
  fc.array(fc.tuple(fc.constantFrom("flip", "cut", "insert"), fc.nat(), fc.integer({ min: 0, max: 255 })), {
    minLength: 1,
    maxLength: 4,
  }),
).map(([frame, edits]): Frame => {
  let bytes = Array.from(bytesOf(frame.payload));
  for (const [edit, index, byte] of edits) {
    const at = index % (bytes.length + 1);
    if (edit === "flip" && at < bytes.length) bytes[at] ^= 1 << (byte % 8);
    else if (edit === "cut") bytes = bytes.slice(0, at);
    else if (edit === "insert") bytes.splice(at, 0, byte);
  }
  return { type: frame.type, payload: new Uint8Array(bytes) };
});

/** A valid payload with its numbers spelled another way JSON allows (`0` as `-0`, `5` as `5.0`, `5e0` or `50e-1`). */
const respelledNumbers = fc.tuple(controlFrame, fc.constantFrom("-0", ".0", "e0", "E+0", "0e-1")).map(
  ([frame, spelling]): Frame => {
    const text = decoder.decode(bytesOf(frame.payload)).replace(/(?<=[:,[])(\d+)(?=[,\]}])/g, (digits) => {
      if (spelling === "-0") return digits === "0" ? "-0" : digits;
      return spelling === "0e-1" ? `${digits}0e-1` : digits + spelling;
    });
    return { type: frame.type, payload: encoder.encode(text) };
  },
);

/** JSON-like text from tokens that parse in surprising ways. */
const tokenText = fc.array(
  fc.constantFrom(
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    '"name"',
    '"size"',
    '"data"',
    '"__proto__"',
    '"a"',
    '"\\ud800"',
    '"\\u0000"',
    '"===="',
    '"AA=="',
    "-0",
    "0",
    "1e400",
    "-1",
    "1.5",
    "9007199254740993",
    "null",
    "true",
    " ",
  ),
  { maxLength: 16 },
).map((tokens) => encoder.encode(tokens.join("")));

const typeByte = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...Object.values(MESSAGE_CODES)) },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: 255 }) },
);

/** A frame: a valid message damaged (under its own type byte), or any payload under any type byte. */
const anyFrame: fc.Arbitrary<Frame> = fc.oneof(
  mutatedJson,
  mutatedBytes,
  respelledNumbers,
  fc.record({
    type: typeByte,
    payload: fc.oneof(
      fc.uint8Array({ maxLength: 80 }),
      fc.jsonValue({ maxDepth: 3 }).map((value) => encoder.encode(JSON.stringify(value))),
      tokenText,
      fc.oneof(mutatedJson, mutatedBytes, respelledNumbers, anyMessage.map(encodeMessage)).map((frame) =>
        frame.payload
      ),
    ),
  }),
);

/** Fails unless `value` is a valid value of `kind`, checked here independently of messages.ts. */
function assertKind(kind: FieldKind, value: unknown, where: string): void {
  const isSize = (v: unknown) => typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
  const ok = {
    "string": () => typeof value === "string",
    "string?": () => value === null || typeof value === "string",
    "size": () => isSize(value),
    "size?": () => value === null || isSize(value),
    "bytes": () => value instanceof Uint8Array,
    "strings": () => Array.isArray(value) && value.every((item) => typeof item === "string"),
    "entries": () =>
      Array.isArray(value) &&
      value.every((entry) =>
        typeof entry === "object" && entry !== null && !Array.isArray(entry) &&
        Object.keys(entry).sort().join() === "mtime,name,size" && typeof entry.name === "string" &&
        isSize(entry.size) && isSize(entry.mtime)
      ),
    "code": () => typeof value === "number" && isStatusCode(value),
    "algorithm": () => (DIGEST_ALGORITHMS as readonly unknown[]).includes(value),
    "algorithm?": () => value === null || (DIGEST_ALGORITHMS as readonly unknown[]).includes(value),
  }[kind]();
  assert.ok(ok, `${where} is not a valid ${kind}: ${Deno.inspect(value)}`);
}

/** Fails unless `message` is exactly the shape of the message its frame's type byte names. */
function assertWellFormed(message: Message, frame: Frame): void {
  const type = TYPES_BY_CODE.get(frame.type);
  assert.equal(message.type, type, "the message's type is the frame's");
  assert.equal(Object.getPrototypeOf(message), Object.prototype);
  if (message.type === "data") {
    assert.ok(message.chunk === frame.payload, "DATA's chunk is the payload itself");
    assert.deepStrictEqual(Object.keys(message).sort(), ["chunk", "type"]);
    return;
  }
  const fields = MESSAGE_FIELDS[message.type];
  assert.deepStrictEqual(Object.keys(message).sort(), ["type", ...Object.keys(fields)].sort());
  for (const [field, kind] of Object.entries(fields)) {
    assertKind(kind, (message as unknown as Record<string, unknown>)[field], `${message.type}.${field}`);
  }
}

Deno.test("encodeMessage then decodeMessage gives back any valid message, or TOO_LARGE past the limit", async () => {
  await fc.assert(
    fc.property(anyMessage, (message) => {
      const frame = encodeMessage(message);
      assert.equal(frame.type, MESSAGE_CODES[message.type]);
      const tooLarge = message.type === "data"
        ? frame.payload.length > MAX_DATA_PAYLOAD
        : frame.payload.length + 1 > MAX_CONTROL_LENGTH;
      if (tooLarge) {
        assert.throws(
          () => decodeMessage(frame),
          (error) => error instanceof DfosError && error.code === Status.TOO_LARGE,
        );
        return;
      }
      const decoded = decodeMessage(frame);
      assert.deepStrictEqual(decoded, message);
      assertWellFormed(decoded, frame);
    }),
    propertyParameters("round trip", 500),
  );
});

Deno.test("decodeMessage takes the fields of a message in any order", async () => {
  await fc.assert(
    fc.property(
      anyMessage.filter((message) => message.type !== "data"),
      fc.array(fc.nat()),
      (message, order) => {
        const frame = encodeMessage(message);
        if (frame.payload.length + 1 > MAX_CONTROL_LENGTH) return;
        const entries = Object.entries(JSON.parse(decoder.decode(bytesOf(frame.payload))));
        const shuffled = entries.map((entry, i) => ({ entry, key: order[i] ?? i })).sort((a, b) => a.key - b.key);
        const json = JSON.stringify(Object.fromEntries(shuffled.map(({ entry }) => entry)));
        assert.deepStrictEqual(decodeMessage({ type: frame.type, payload: encoder.encode(json) }), message);
      },
    ),
    propertyParameters("field order", 200),
  );
});

Deno.test("decodeMessage turns any frame into a well-formed message or a DfosError, never anything else", async () => {
  await fc.assert(
    fc.property(anyFrame, (frame) => {
      const type = TYPES_BY_CODE.get(frame.type);
      let message: Message;
      try {
        message = decodeMessage(frame);
      } catch (error) {
        assert.ok(error instanceof DfosError, `threw ${Deno.inspect(error)}, not a DfosError`);
        if (type === undefined) {
          assert.equal(error.code, Status.UNSUPPORTED, error.message);
        } else if (type === "data" || frame.payload.length + 1 > MAX_CONTROL_LENGTH) {
          assert.equal(error.code, Status.TOO_LARGE, error.message);
        } else if (error.code === Status.UNSUPPORTED) {
          const kinds: string[] = Object.values(MESSAGE_FIELDS[type]);
          assert.ok(kinds.includes("algorithm") || kinds.includes("algorithm?"), error.message);
          assert.match(error.message, /digest algorithm/);
        } else {
          assert.equal(error.code, Status.BAD_REQUEST, error.message);
        }
        return;
      }
      assert.ok(type !== undefined, "an unknown type byte decoded");
      assertWellFormed(message, frame);
      // What decoded encodes to bytes that decode and encode to the same bytes again (a fixed point: an unknown
      // error code has become INTERNAL already, and -0 is written as 0).
      const encoded = encodeMessage(message);
      assert.deepStrictEqual(encodeMessage(decodeMessage(encoded)).payload, encoded.payload);
    }),
    propertyParameters("any frame", 2000),
  );
});
