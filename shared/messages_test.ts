import assert from "node:assert/strict";
import { MAX_DATA_PAYLOAD } from "./frames.ts";
import {
  decodeMessage,
  encodeMessage,
  MAX_CONTROL_LENGTH,
  type Message,
  MESSAGE_CODES,
  type MessageType,
} from "./messages.ts";
import { DfosError, Status, type StatusCode, statusName } from "./status.ts";
import { bytesOf } from "./pooled_bytes.ts";

const encoder = new TextEncoder();

/** One sample of every message, bytes fields with bytes that base64 pads differently. */
const SAMPLES: { [T in MessageType]: Extract<Message, { type: T }> } = {
  "hello": { type: "hello", protocol: "dfos", version: 1, agent: "dfos-test/1.0" },
  "welcome": { type: "welcome", version: 1, agent: "dfos-server/1.0", mechanisms: ["PLAIN", "SCRAM-SHA-256"] },
  "auth": { type: "auth", mechanism: "PLAIN", data: encoder.encode("\0alice\0secret") },
  "auth-continue": { type: "auth-continue", data: new Uint8Array([0, 255, 128, 1]) },
  "auth-response": { type: "auth-response", data: new Uint8Array([1, 2]) },
  "auth-ok": { type: "auth-ok", user: "alice", data: new Uint8Array(0) },
  "put": { type: "put", name: "notes/today.txt", size: 1234, digest: "sha256" },
  "get": { type: "get", name: "notes/today.txt", limit: null, digest: "sha256" },
  "delete": { type: "delete", name: "old.txt" },
  "list": { type: "list", prefix: "notes/", after: "notes/a.txt" },
  "move": { type: "move", from: "notes", to: "archive/notes" },
  "stat": { type: "stat", name: "a.txt", digest: null },
  "changes": { type: "changes" },
  "have": { type: "have", keys: new Uint8Array(64).fill(3) },
  "assemble": { type: "assemble", name: "big.iso", size: 70_000, mtime: 5, root: "cd".repeat(32), chunks: 2 },
  "groups": { type: "groups", name: "big.iso" },
  "group-chunks": { type: "group-chunks", name: "big.iso", version: "v1", first: 3, count: 2 },
  "read": { type: "read", name: "big.iso", version: "v1", ranges: new Uint8Array(24).fill(1) },
  "sums": { type: "sums", name: "big.iso", version: "v1", block: 1024, ranges: new Uint8Array(12).fill(1) },
  "delta": {
    type: "delta",
    name: "big.iso",
    version: "v1",
    block: 1024,
    ranges: new Uint8Array(12).fill(1),
    bases: new Uint8Array(12).fill(2),
  },
  "watch": { type: "watch", epoch: "e1", since: 7, prefix: "photos/", wait: 30_000 },
  "data": { type: "data", chunk: new Uint8Array([9, 8, 7, 6, 5]) },
  "end": { type: "end", size: 5, algorithm: "sha256", digest: "ab".repeat(32) },
  "abort": { type: "abort", reason: "Sender failed: disk on fire" },
  "file": { type: "file", name: "a.txt", size: 0, mtime: 1_750_000_000_000 },
  "ok": { type: "ok", name: "a.txt", size: Number.MAX_SAFE_INTEGER },
  "listing": {
    type: "listing",
    entries: [{ name: "a.txt", size: 1, mtime: 2 }, { name: "b/c.txt", size: 3, mtime: 4 }],
    next: "b/c.txt",
  },
  "moved": { type: "moved", from: "notes", to: "archive/notes", files: 3 },
  "info": { type: "info", name: "a.txt", size: 3, mtime: 4, digest: "ab".repeat(32) },
  "error": { type: "error", code: Status.NOT_FOUND, message: 'Cannot find "x": no such file' },
  "counter": { type: "counter", epoch: "e1", counter: 7, mine: 2 },
  "known": { type: "known", bits: new Uint8Array([0x80]) },
  "group-list": {
    type: "group-list",
    name: "big.iso",
    size: 70_000,
    mtime: 5,
    version: "v1",
    root: "cd".repeat(32),
    count: 1,
  },
  "chunk-list": { type: "chunk-list", count: 2 },
  "sum-list": { type: "sum-list", count: 3 },
  "delta-list": { type: "delta-list", count: 1 },
};

/** A frame of message `type` whose payload is `json` as text (any text, valid or not). */
function frameOf(type: MessageType, json: string): { type: number; payload: Uint8Array } {
  return { type: MESSAGE_CODES[type], payload: encoder.encode(json) };
}

/** Asserts that decoding throws a `DfosError` with `code`. */
function assertRefused(frame: { type: number; payload: Uint8Array }, code: StatusCode, context: string): void {
  assert.throws(() => decodeMessage(frame), (error: unknown) => {
    assert.ok(error instanceof DfosError, `${context}: expected a DfosError, got ${error}`);
    assert.equal(
      statusName(error.code),
      statusName(code),
      `${context}: wrong status code (message: ${error.message})`,
    );
    return true;
  }, context);
}

Deno.test("MESSAGE_CODES gives every message a distinct type byte", () => {
  const codes = Object.values(MESSAGE_CODES);
  assert.equal(new Set(codes).size, codes.length);
  for (const code of codes) assert.ok(Number.isInteger(code) && code >= 0 && code <= 255);
  assert.deepEqual(Object.keys(SAMPLES).sort(), Object.keys(MESSAGE_CODES).sort());
});

Deno.test("encodeMessage and decodeMessage round trip one sample of every message type", () => {
  for (const type of Object.keys(MESSAGE_CODES) as MessageType[]) {
    const message = SAMPLES[type];
    const frame = encodeMessage(message);
    assert.equal(frame.type, MESSAGE_CODES[type], type);
    assert.deepEqual(decodeMessage(frame), message, type);
  }
});

Deno.test("encodeMessage and decodeMessage round trip bytes fields of every length modulo 3", () => {
  for (let length = 0; length < 12; length++) {
    const data = new Uint8Array(length).map((_, i) => (i * 97 + 200) % 256);
    const message: Message = { type: "auth-continue", data };
    assert.deepEqual(decodeMessage(encodeMessage(message)), message, `${length} bytes`);
  }
});

Deno.test("encodeMessage puts a DATA chunk in the frame as is", () => {
  const chunk = new Uint8Array([1, 2, 3]);
  const frame = encodeMessage({ type: "data", chunk });
  assert.ok(frame.payload === chunk);
  const decoded = decodeMessage(frame);
  assert.ok(decoded.type === "data" && decoded.chunk === chunk);
});

Deno.test("encodeMessage writes control messages as JSON with base64 bytes", () => {
  const frame = encodeMessage({ type: "auth", mechanism: "PLAIN", data: encoder.encode("hi") });
  assert.deepEqual(JSON.parse(new TextDecoder().decode(bytesOf(frame.payload))), { mechanism: "PLAIN", data: "aGk=" });
});

Deno.test("decodeMessage accepts null for the optional size, limit and next fields", () => {
  assert.deepEqual(decodeMessage(frameOf("put", '{"name":"a","size":null,"digest":"sha256"}')), {
    type: "put",
    name: "a",
    size: null,
    digest: "sha256",
  });
  assert.deepEqual(decodeMessage(frameOf("get", '{"name":"a","limit":0,"digest":"sha256"}')), {
    type: "get",
    name: "a",
    limit: 0,
    digest: "sha256",
  });
  assert.deepEqual(
    decodeMessage(frameOf("listing", '{"entries":[],"next":null}')),
    { type: "listing", entries: [], next: null },
  );
});

Deno.test("decodeMessage turns an unknown error code into INTERNAL", () => {
  const decoded = decodeMessage(frameOf("error", '{"code":999,"message":"m"}'));
  assert.deepEqual(decoded, { type: "error", code: Status.INTERNAL, message: "m" });
});

Deno.test("decodeMessage rejects an unknown type byte as UNSUPPORTED", () => {
  const known = new Set(Object.values(MESSAGE_CODES));
  for (let type = 0; type < 256; type++) {
    if (known.has(type)) continue;
    assertRefused({ type, payload: encoder.encode("{}") }, Status.UNSUPPORTED, `type 0x${type.toString(16)}`);
  }
});

Deno.test("decodeMessage rejects a payload that is not UTF-8 JSON as BAD_REQUEST", () => {
  const cases = ["", "{", "not json", "{'name':'a'}", '{"name":"a",}', '{"name":"a"}\u0000'];
  for (const text of cases) assertRefused(frameOf("delete", text), Status.BAD_REQUEST, JSON.stringify(text));
  const invalidUtf8 = new Uint8Array([...encoder.encode('{"name":"'), 0xff, 0xfe, ...encoder.encode('"}')]);
  assertRefused({ type: MESSAGE_CODES.delete, payload: invalidUtf8 }, Status.BAD_REQUEST, "invalid UTF-8");
});

Deno.test("decodeMessage rejects JSON that is not an object as BAD_REQUEST", () => {
  for (const text of ['["a"]', "[]", "null", '"a"', "1", "true"]) {
    assertRefused(frameOf("delete", text), Status.BAD_REQUEST, text);
  }
});

Deno.test("decodeMessage rejects a missing field as BAD_REQUEST", () => {
  assertRefused(frameOf("delete", "{}"), Status.BAD_REQUEST, "delete without name");
  assertRefused(frameOf("put", '{"name":"a"}'), Status.BAD_REQUEST, "put without size");
  assertRefused(frameOf("list", '{"prefix":""}'), Status.BAD_REQUEST, "list without after");
  assertRefused(frameOf("end", '{"size":0,"algorithm":"sha256"}'), Status.BAD_REQUEST, "end without digest");
  assertRefused(frameOf("hello", '{"protocol":"dfos","version":1}'), Status.BAD_REQUEST, "hello without agent");
});

Deno.test("decodeMessage rejects an unknown extra field as BAD_REQUEST", () => {
  assertRefused(frameOf("delete", '{"name":"a","force":true}'), Status.BAD_REQUEST, "extra field");
  assertRefused(frameOf("delete", '{"name":"a","type":"delete"}'), Status.BAD_REQUEST, "type as a field");
  assertRefused(frameOf("delete", '{"name":"a","__proto__":{"x":1}}'), Status.BAD_REQUEST, "__proto__");
  assertRefused(
    frameOf("listing", '{"entries":[{"name":"a","size":1,"mtime":2,"mode":3}],"next":null}'),
    Status.BAD_REQUEST,
    "extra field in a listing entry",
  );
});

Deno.test("decodeMessage rejects a field of the wrong type as BAD_REQUEST", () => {
  const cases: [MessageType, string][] = [
    ["delete", '{"name":5}'],
    ["delete", '{"name":null}'],
    ["delete", '{"name":["a"]}'],
    ["put", '{"name":"a","size":"5"}'],
    ["put", '{"name":"a","size":true}'],
    ["list", '{"prefix":null,"after":""}'],
    ["welcome", '{"version":1,"agent":"s","mechanisms":"PLAIN"}'],
    ["welcome", '{"version":1,"agent":"s","mechanisms":[1]}'],
    ["auth", '{"mechanism":"PLAIN","data":[1,2]}'],
    ["listing", '{"entries":{},"next":null}'],
    ["listing", '{"entries":[],"next":5}'],
    ["listing", '{"entries":[null],"next":null}'],
    ["listing", '{"entries":[{"name":1,"size":1,"mtime":2}],"next":null}'],
    ["listing", '{"entries":[{"name":"a","size":1}],"next":null}'],
    ["error", '{"code":"6","message":"m"}'],
    ["error", '{"code":1.5,"message":"m"}'],
    ["error", '{"code":6,"message":null}'],
  ];
  for (const [type, json] of cases) assertRefused(frameOf(type, json), Status.BAD_REQUEST, `${type} ${json}`);
});

Deno.test("decodeMessage rejects negative, fractional and unsafe sizes as BAD_REQUEST", () => {
  for (const size of ["-1", "1.5", "-0.5", "9007199254740992", "1e300", "1e400"]) {
    assertRefused(frameOf("ok", `{"name":"a","size":${size}}`), Status.BAD_REQUEST, `ok size ${size}`);
    assertRefused(frameOf("put", `{"name":"a","size":${size}}`), Status.BAD_REQUEST, `put size ${size}`);
    assertRefused(frameOf("get", `{"name":"a","limit":${size}}`), Status.BAD_REQUEST, `get limit ${size}`);
    assertRefused(
      frameOf("end", `{"size":${size},"algorithm":"sha256","digest":""}`),
      Status.BAD_REQUEST,
      `end size ${size}`,
    );
    assertRefused(
      frameOf("listing", `{"entries":[{"name":"a","size":${size},"mtime":0}],"next":null}`),
      Status.BAD_REQUEST,
      `entry size ${size}`,
    );
  }
  // The largest safe integer is still a size.
  const largest = decodeMessage(frameOf("ok", `{"name":"a","size":${Number.MAX_SAFE_INTEGER}}`));
  assert.deepEqual(largest, { type: "ok", name: "a", size: Number.MAX_SAFE_INTEGER });
});

Deno.test("decodeMessage rejects bad base64 as BAD_REQUEST", () => {
  for (const data of ["a", "aGk", "aGk=a", "aG k=", "aGk!", "a===", "====", "=aGk", "aGk=\n", "aG-_", "aGk==="]) {
    assertRefused(
      frameOf("auth", JSON.stringify({ mechanism: "PLAIN", data })),
      Status.BAD_REQUEST,
      `base64 ${JSON.stringify(data)}`,
    );
  }
});

Deno.test("decodeMessage rejects an unsupported digest algorithm as UNSUPPORTED", () => {
  for (const algorithm of ["md5", "SHA256", "sha-256", "sha512", ""]) {
    assertRefused(
      frameOf("end", JSON.stringify({ size: 0, algorithm, digest: "00" })),
      Status.UNSUPPORTED,
      `algorithm ${JSON.stringify(algorithm)}`,
    );
  }
});

Deno.test("decodeMessage rejects a control payload over MAX_CONTROL_LENGTH as TOO_LARGE", () => {
  // The frame length (type byte plus payload) may be MAX_CONTROL_LENGTH at most.
  const fill = (payloadBytes: number) => {
    const skeleton = '{"reason":""}';
    return `{"reason":"${"x".repeat(payloadBytes - skeleton.length)}"}`;
  };
  const atLimit = fill(MAX_CONTROL_LENGTH - 1);
  assert.equal(encoder.encode(atLimit).length, MAX_CONTROL_LENGTH - 1);
  const decoded = decodeMessage(frameOf("abort", atLimit));
  assert.equal(decoded.type, "abort");
  assertRefused(frameOf("abort", fill(MAX_CONTROL_LENGTH)), Status.TOO_LARGE, "one byte over");
  // Checked before parsing: even bytes that are not JSON are TOO_LARGE.
  assertRefused(
    { type: MESSAGE_CODES.put, payload: new Uint8Array(MAX_CONTROL_LENGTH * 2) },
    Status.TOO_LARGE,
    "large garbage",
  );
});

Deno.test("decodeMessage rejects a DATA payload over MAX_DATA_PAYLOAD as TOO_LARGE", () => {
  const atLimit = decodeMessage({ type: MESSAGE_CODES.data, payload: new Uint8Array(MAX_DATA_PAYLOAD) });
  assert.ok(atLimit.type === "data" && atLimit.chunk.length === MAX_DATA_PAYLOAD);
  assertRefused(
    { type: MESSAGE_CODES.data, payload: new Uint8Array(MAX_DATA_PAYLOAD + 1) },
    Status.TOO_LARGE,
    "DATA one byte over",
  );
});
