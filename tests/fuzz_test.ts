/**
 * Network fuzzing: thousands of mutated sessions, many at a time, against a
 * real `dfos serve` subprocess on port 0. Most log in (SCRAM-SHA-256) and then mix
 * valid requests with corrupt ones: random bytes, bit flips in valid frames,
 * wrong and huge lengths, bodies cut off mid-frame, wrong digests and sizes
 * in END, DATA/END/ABORT outside a body, AUTH and HELLO after login, server
 * messages and unknown types sent to the server, hostile names, and every
 * string field filled with up to a frame's worth of hostile text; the others
 * send garbage, broken handshakes or hostile text before logging in, stop
 * reading their replies (the server must cut them off at its op or idle
 * timeout), or log in dozens at once with right and wrong passwords
 * (tests/_fuzz_shapes.ts says what each of these shapes checks).
 *
 * Every reply is checked where the protocol fixes it (the session goes on
 * after a refused request, and closes after a broken frame), no reply is
 * ever INTERNAL, and afterwards: the server process is still running and
 * logged no error, no upload temporary is left, every stored file is a body
 * the fuzzer sent whole with a correct END (and every upload confirmed with
 * OK is stored as sent, every refused one is absent), its memory (VmRSS) did
 * not grow past a bound, the real CLI still does a put/get round trip, it
 * stops on SIGTERM with exit code 0, and its log is bounded in size, holds
 * one record a line (no line forged from client text), and no raw control
 * character reached the log or the console.
 *
 * All sessions come from 127.0.0.1, so the server's caps and login throttle
 * are set for the run (`SHAPE_SERVER_FLAGS`): a session turned away before
 * login by a documented refusal ("Server busy", a lockout) ends there, and an
 * ordinary one logs in again.
 *
 * Each session draws from its own mulberry32 generator, seeded from the run's
 * seed and its number, so a failure reported as "session N" replays alone:
 *
 *     FUZZ_SEED=<seed> FUZZ_ONLY=N deno test --allow-all tests/fuzz_test.ts
 *
 * Environment: `FUZZ=1` (`deno task fuzz`) runs 20,000 sessions from a
 * random seed; `FUZZ_SEED`, `FUZZ_SESSIONS` and `FUZZ_ONLY` (comma-separated
 * session numbers) override either mode.
 *
 * @module
 */

import { ok, strictEqual } from "node:assert/strict";
import { join, relative } from "node:path";
import { FRAME_HEADER_BYTES, MAX_DATA_PAYLOAD, MAX_FRAME_LENGTH } from "../shared/frames.ts";
import {
  type DigestAlgorithm,
  MAX_CONTROL_LENGTH,
  type Message,
  MESSAGE_CODES,
  type MessageOf,
} from "../shared/messages.ts";
import { Status, statusName } from "../shared/status.ts";
import { listDir, runCli, sha256, sha256File, spawnServe, USERS, waitFor } from "./_fixture.ts";
import {
  FORGED_RECORD,
  loginBurst,
  OVERSIZE_BEFORE_LOGIN,
  oversizeField,
  SHAPE_SERVER_FLAGS,
  SHAPE_USERS,
  STALL_REQUESTS,
  stallCloses,
  stallSession,
} from "./_fuzz_shapes.ts";
import {
  type Action,
  count,
  describe,
  digestOf,
  excerpt,
  fail,
  FuzzFailure,
  key,
  type Ledger,
  login,
  Random,
  Refused,
  servedRequest,
  type SessionContext,
  Wire,
} from "./_fuzz_wire.ts";
import { concat, frameBytes, plain, rawFrame } from "./_peer.ts";
import { bytesOf } from "../shared/pooled_bytes.ts";

const MiB = 1024 * 1024;

/** The seed of the short run, when `FUZZ_SEED` does not say. */
const FIXED_SEED = 0x0df05eed;

/** Sessions in the short run (`deno task test`) and in the long one (`deno task fuzz`). */
const SHORT_SESSIONS = 1500;
const LONG_SESSIONS = 20_000;

/** Sessions in flight at once. */
const CONCURRENCY = 24;

/**
 * The share of the sessions run before the server's memory is first read. Its VmRSS climbs for the first few
 * thousand sessions (V8's heap, the allocator and the receive-block pool settle at the working set of 24 sessions
 * with bodies up to 2 MiB: 150-180 MiB here), then stays flat (20,000 sessions: +11 MiB after the first third).
 */
const WARM_UP_SHARE = 1 / 3;

/**
 * How far the server's VmRSS may grow from after the warm-up to the end. The short run's climb after its first
 * third was 25-50 MiB here; a leak of 128 KiB per session shows as about +190 MiB, and 16 KiB per session in the
 * long run as about +210 MiB.
 */
const RSS_GROWTH_LIMIT = 96 * MiB;

/** Fewer sessions than this say nothing about memory: the check is skipped (a replay of a few sessions). */
const MIN_SESSIONS_FOR_MEMORY = 300;

/**
 * The server's own handshake timeout here. It is not what is fuzzed, and the default 10 s can expire on a
 * machine whose disk stalls the server's synchronous file calls (seen while other jobs wrote gigabytes).
 */
const HANDSHAKE_TIMEOUT_SECONDS = 30;

/**
 * How large the server's log may grow per session, on average: a session logs a handful of records of a few hundred
 * bytes (its connection, login, requests, close); 2 KiB each is generous. A record that quotes a client's 60 KB of
 * text whole goes far past it.
 */
const LOG_BYTES_PER_SESSION = 2 * 1024;

/**
 * How large the log may grow per request of the non-reading peers, which send hundreds each: one line of a few
 * hundred bytes with a name of up to 255 bytes.
 */
const LOG_BYTES_PER_REQUEST = 512;

/** The log's start and end (sandbox, listening, totals), and room for a replay of a few sessions. */
const LOG_BASE_BYTES = 64 * 1024;

/** How long the server may take to stop on SIGTERM once the fuzzing is over (nothing is in flight). */
const SHUTDOWN_TIMEOUT_MS = 20_000;

/** Failures after which no new session is started. */
const MAX_FAILURES = 20;

const encoder = new TextEncoder();

/** Type bytes that name no message. */
const UNKNOWN_TYPES = Array.from({ length: 256 }, (_, i) => i).filter((type) =>
  !Object.values(MESSAGE_CODES).includes(type)
);

/** Names the server must refuse with BAD_NAME: traversal, absolute, empty segments, reserved, control, not NFC. */
const BAD_NAMES = [
  "../escape",
  "a/../../escape",
  "/etc/passwd",
  "a//b",
  "a/",
  "",
  ".",
  "..",
  "a\\b",
  "nul\u0000byte",
  "esc\u001b[31mape",
  ".dfos-partial/x",
  "a/.dfos-partial",
  ".dfos-x",
  "e\u0301",
  "x".repeat(256),
];

interface Settings {
  seed: number;
  sessions: number;
  only: number[] | null;
  long: boolean;
}

function settings(): Settings {
  const long = Deno.env.get("FUZZ") === "1";
  const seedText = Deno.env.get("FUZZ_SEED");
  const sessionsText = Deno.env.get("FUZZ_SESSIONS");
  const onlyText = Deno.env.get("FUZZ_ONLY");
  const seed = seedText !== undefined
    ? integerFromEnv("FUZZ_SEED", seedText) >>> 0
    : long
    ? crypto.getRandomValues(new Uint32Array(1))[0]
    : FIXED_SEED;
  const sessions = sessionsText !== undefined
    ? integerFromEnv("FUZZ_SESSIONS", sessionsText)
    : long
    ? LONG_SESSIONS
    : SHORT_SESSIONS;
  const only = onlyText?.split(",").map((item) => integerFromEnv("FUZZ_ONLY", item.trim())) ?? null;
  return { seed, sessions, only, long };
}

function integerFromEnv(name: string, text: string): number {
  const value = Number(text);
  if (text === "" || !Number.isSafeInteger(value)) {
    throw new RangeError(`Cannot read ${name}: "${text}" is not an integer`);
  }
  return value;
}

/** A body: empty, small, medium, now and then large. */
function randomBody(rng: Random): Uint8Array {
  const size = rng.weighted(
    [
      [2, 0],
      [10, rng.between(1, 256)],
      [6, rng.between(257, 64 * 1024)],
      [1.5, rng.between(64 * 1024, 400_000)],
      [0.2, rng.between(MiB - 8, 2 * MiB + 8)],
    ] as const,
  );
  return rng.bytes(size);
}

/** A body as DATA frames: one, or cut at random (empty frames included now and then), each at most 1 MiB. */
function dataFrames(rng: Random, body: Uint8Array): Uint8Array[] {
  const frames: Uint8Array[] = [];
  let offset = 0;
  const pieces = rng.weighted([[5, 1], [3, rng.between(2, 4)], [1, rng.between(5, 12)]] as const);
  while (offset < body.length) {
    const left = body.length - offset;
    const take = Math.min(MAX_DATA_PAYLOAD, frames.length + 1 >= pieces ? left : rng.between(1, left));
    frames.push(frameBytes({ type: "data", chunk: body.subarray(offset, offset + take) }));
    offset += take;
    if (rng.chance(0.03)) frames.push(frameBytes({ type: "data", chunk: new Uint8Array(0) }));
  }
  return frames;
}

/** A frame header announcing `length`. */
function header(length: number, type: number): Uint8Array {
  const bytes = new Uint8Array(FRAME_HEADER_BYTES);
  new DataView(bytes.buffer).setUint32(0, length);
  bytes[4] = type;
  return bytes;
}

/** A put: the request, its body's frames and its END, as separate pieces to mix up. */
interface PutPlan {
  name: string;
  body: Uint8Array;
  algorithm: DigestAlgorithm;
  put: Uint8Array;
  data: Uint8Array[];
  end: MessageOf<"end">;
}

function planPut(ctx: SessionContext, options: { name?: string; announce?: "exact" | "none" } = {}): PutPlan {
  const { rng } = ctx;
  const name = options.name ?? `fz/${ctx.index}/${ctx.step}-${rng.hex(8)}`;
  const body = randomBody(rng);
  const algorithm = rng.pick(["crc32", "sha256"] as const);
  const announce = options.announce ?? (rng.chance(0.8) ? "exact" : "none");
  return {
    name,
    body,
    algorithm,
    put: frameBytes({ type: "put", name, size: announce === "exact" ? body.length : null, digest: algorithm }),
    data: dataFrames(rng, body),
    end: { type: "end", size: body.length, algorithm, digest: digestOf(body, algorithm) },
  };
}

/** A whole, correct upload: OK with its size, and the file is then stored as sent. */
const putValid: Action = async (ctx) => {
  const plan = planPut(ctx);
  ctx.ledger.sentWhole.add(sha256(plan.body));
  await ctx.wire.write(concat([plan.put, ...plan.data, frameBytes(plan.end)]), ctx.rng);
  const reply = await ctx.wire.expect("ok", `put of ${plan.body.length} bytes`);
  if (reply.name !== plan.name || reply.size !== plan.body.length) fail(`put: OK says ${describe(reply)}`);
  ctx.ledger.confirmed.set(key(ctx, plan.name), sha256(plan.body));
  ctx.mine.set(plan.name, plan.body);
  return true;
};

/** An upload whose END or announced size disagrees with the body: INTEGRITY, and nothing stored. */
const putBroken: Action = async (ctx) => {
  const { rng } = ctx;
  const plan = planPut(ctx, { announce: "exact" });
  const how = rng.pick(["digest", "end size", "announced size", "algorithm"] as const);
  let put = plan.put;
  const end = { ...plan.end };
  if (how === "digest") {
    const at = rng.below(end.digest.length);
    const digit = end.digest[at];
    const other = "0123456789abcdef".replace(digit, "")[rng.below(15)];
    end.digest = end.digest.slice(0, at) + other + end.digest.slice(at + 1);
  } else if (how === "end size") {
    end.size = Math.max(0, plan.body.length + rng.pick([-1, 1, rng.between(2, 5000)]));
    if (end.size === plan.body.length) end.size++;
  } else if (how === "announced size") {
    let size = Math.max(0, plan.body.length + rng.pick([-1, 1, -rng.between(2, 5000), rng.between(2, 5000)]));
    if (size === plan.body.length) size++;
    put = frameBytes({ type: "put", name: plan.name, size, digest: plan.algorithm });
  } else {
    end.algorithm = plan.algorithm === "crc32" ? "sha256" : "crc32";
    end.digest = digestOf(plan.body, end.algorithm);
  }
  ctx.ledger.refused.add(key(ctx, plan.name));
  await ctx.wire.write(concat([put, ...plan.data, frameBytes(end)]), ctx.rng);
  await ctx.wire.expectError(Status.INTEGRITY, `put with a wrong ${how}`);
  return true;
};

/** An upload given up with ABORT: ABORTED, and nothing stored. */
const putAborted: Action = async (ctx) => {
  const plan = planPut(ctx);
  const sent = plan.data.slice(0, ctx.rng.below(plan.data.length + 1));
  ctx.ledger.refused.add(key(ctx, plan.name));
  const abort = frameBytes({ type: "abort", reason: "fuzz: sender gave up" });
  await ctx.wire.write(concat([plan.put, ...sent, abort]), ctx.rng);
  await ctx.wire.expectError(Status.ABORTED, "put ended with ABORT");
  return true;
};

/** An upload to a name the rules refuse, body and all: BAD_NAME, the body is dropped, the session goes on. */
const putBadName: Action = async (ctx) => {
  const plan = planPut(ctx, { name: ctx.rng.pick(BAD_NAMES) });
  await ctx.wire.write(concat([plan.put, ...plan.data, frameBytes(plan.end)]), ctx.rng);
  await ctx.wire.expectError(Status.BAD_NAME, `put to ${JSON.stringify(plan.name)}`);
  return true;
};

/** A frame of a type no message has: UNSUPPORTED, and the session goes on. */
const unknownType: Action = async (ctx) => {
  const { rng } = ctx;
  await ctx.wire.write(rawFrame(rng.pick(UNKNOWN_TYPES), rng.bytes(rng.between(0, 64))), rng);
  await ctx.wire.expectError(Status.UNSUPPORTED, "unknown type");
  ctx.unread = true;
  return true;
};

/** HELLO, AUTH, or a message only the server sends, after login: BAD_REQUEST, and the session goes on. */
const outOfPlace: Action = async (ctx) => {
  const { rng } = ctx;
  const message: Message = rng.pick<Message>([
    { type: "hello", protocol: "dfos", version: 1, agent: "fuzz" },
    { type: "auth", mechanism: "PLAIN", data: plain(ctx.user, ctx.password) },
    { type: "auth-response", data: rng.bytes(8) },
    { type: "welcome", version: 1, agent: "fuzz", mechanisms: ["PLAIN"] },
    { type: "ok", name: "a", size: 1 },
    { type: "file", name: "a", size: 1, mtime: 0 },
    { type: "listing", entries: [], next: null },
    { type: "error", code: Status.NOT_FOUND, message: "fuzz" },
    { type: "auth-ok", user: ctx.user, data: new Uint8Array(0) },
    { type: "auth-continue", data: rng.bytes(4) },
  ]);
  await ctx.wire.write(frameBytes(message), rng);
  await ctx.wire.expectError(Status.BAD_REQUEST, `${message.type} after login`);
  return true;
};

/**
 * A request frame whose payload is not the request: BAD_REQUEST (UNSUPPORTED for an unknown digest). A put is
 * followed by its body now and then, as a client sends it: the server drops it and the session goes on.
 */
const malformedRequest: Action = async (ctx) => {
  const { rng } = ctx;
  const type = rng.pick(["put", "get", "delete", "list"] as const);
  const kind = rng.pick(["garbage", "missing", "extra", "wrong type", "digest"] as const);
  let payload: Uint8Array;
  let code: number = Status.BAD_REQUEST;
  if (kind === "garbage") {
    payload = concat([encoder.encode(rng.pick(["x", "{", "\u0000", "[", "{}}"])), rng.bytes(rng.between(0, 40))]);
  } else if (kind === "missing") {
    payload = encoder.encode(type === "list" ? '{"prefix":""}' : "{}");
  } else if (kind === "extra") {
    const fields = { put: '"name":"a","size":1,"digest":"crc32"', get: '"name":"a","limit":null,"digest":"crc32"' };
    const base = type === "put" || type === "get"
      ? fields[type]
      : type === "delete"
      ? '"name":"a"'
      : '"prefix":"","after":""';
    payload = encoder.encode(`{${base},"${rng.pick(["x", "__proto__", "type", "force"])}":1}`);
  } else if (kind === "wrong type") {
    payload = encoder.encode(type === "list" ? '{"prefix":1,"after":""}' : '{"name":["a"]}');
  } else if (type === "put" || type === "get") {
    const field = type === "put" ? '"size":1' : '"limit":null';
    payload = encoder.encode(`{"name":"a",${field},"digest":"${rng.pick(["md5", "CRC32", "", "sha1"])}"}`);
    code = Status.UNSUPPORTED;
  } else {
    payload = encoder.encode("null");
  }
  const body = type === "put" && rng.chance(0.5) ? refusedBody(rng) : null;
  await ctx.wire.write(concat([rawFrame(MESSAGE_CODES[type], payload), ...body ?? []]), rng);
  await ctx.wire.expectError(code, `${type} with a payload that is ${kind}${body ? ", and a body" : ""}`);
  ctx.unread = body === null;
  return true;
};

/** A control frame over the 64 KiB control limit but under the frame limit: TOO_LARGE, and the session goes on. */
const oversizeControl: Action = async (ctx) => {
  const { rng } = ctx;
  const length = rng.chance(0.9)
    ? rng.between(MAX_CONTROL_LENGTH, MAX_CONTROL_LENGTH + 4096)
    : rng.between(MAX_CONTROL_LENGTH, MAX_FRAME_LENGTH - 1);
  const type = rng.pick([MESSAGE_CODES.list, MESSAGE_CODES.put, MESSAGE_CODES.end, MESSAGE_CODES.hello]);
  const body = type === MESSAGE_CODES.put && rng.chance(0.5) ? refusedBody(rng) : null;
  await ctx.wire.write(concat([rawFrame(type, rng.bytes(length)), ...body ?? []]), rng);
  await ctx.wire.expectError(Status.TOO_LARGE, `control frame of ${length + 1} bytes${body ? ", and a body" : ""}`);
  ctx.unread = body === null;
  return true;
};

/** A download of this session's own file (whole or a preview), or of one that does not exist. */
const getFile: Action = async (ctx) => {
  const { rng } = ctx;
  const names = [...ctx.mine.keys()];
  if (names.length === 0 || rng.chance(0.15)) {
    const name = `fz/${ctx.index}/missing-${rng.hex(8)}`;
    await ctx.wire.write(frameBytes({ type: "get", name, limit: null, digest: "crc32" }), rng);
    await ctx.wire.expectError(Status.NOT_FOUND, "get of a missing file");
    return true;
  }
  const name = rng.pick(names);
  const body = ctx.mine.get(name)!;
  const limit = rng.chance(0.7) ? null : rng.between(0, body.length + 10);
  const algorithm = rng.pick(["crc32", "sha256"] as const);
  await ctx.wire.write(frameBytes({ type: "get", name, limit, digest: algorithm }), rng);
  const expected = body.subarray(0, limit ?? body.length);
  const file = await ctx.wire.expect("file", `get of ${name}`);
  if (file.size !== expected.length) fail(`get of ${name}: FILE says ${file.size} bytes, expected ${expected.length}`);
  const parts: Uint8Array[] = [];
  while (true) {
    const message = await ctx.wire.receive();
    if (message?.type === "data") {
      parts.push(bytesOf(message.chunk).slice());
      continue;
    }
    if (message?.type !== "end") fail(`get of ${name}: expected DATA or END, got ${describe(message)}`);
    const received = concat(parts);
    if (sha256(received) !== sha256(expected)) fail(`get of ${name}: the body differs from what was put`);
    if (message.size !== expected.length || message.digest !== digestOf(expected, algorithm)) {
      fail(`get of ${name}: END says ${describe(message)}`);
    }
    return true;
  }
};

/** A listing of this session's folder: every file it put (and did not delete) is there. */
const listFiles: Action = async (ctx) => {
  const prefix = `fz/${ctx.index}/`;
  await ctx.wire.write(frameBytes({ type: "list", prefix, after: "" }), ctx.rng);
  const listing = await ctx.wire.expect("listing", "list");
  const listed = new Map(listing.entries.map((entry) => [entry.name, entry.size]));
  for (const [name, body] of ctx.mine) {
    if (listed.get(name) !== body.length) fail(`list: ${name} (${body.length} bytes) is not listed as such`);
  }
  return true;
};

/** A delete of this session's own file: OK, and it is gone. */
const deleteFile: Action = async (ctx) => {
  const names = [...ctx.mine.keys()];
  if (names.length === 0) return listFiles(ctx);
  const name = ctx.rng.pick(names);
  await ctx.wire.write(frameBytes({ type: "delete", name }), ctx.rng);
  const reply = await ctx.wire.expect("ok", `delete of ${name}`);
  if (reply.name !== name) fail(`delete: OK says ${describe(reply)}`);
  ctx.mine.delete(name);
  ctx.ledger.confirmed.delete(key(ctx, name));
  ctx.ledger.refused.add(key(ctx, name));
  return true;
};

/** Several requests in one write: each answered, in order. */
const pipelined: Action = async (ctx) => {
  const { rng } = ctx;
  const count = rng.between(2, 5);
  const frames: Uint8Array[] = [];
  const expected: number[] = [];
  for (let i = 0; i < count; i++) {
    if (rng.chance(0.5)) {
      frames.push(frameBytes({ type: "list", prefix: `fz/${ctx.index}/`, after: "" }));
      expected.push(0);
    } else {
      frames.push(rawFrame(rng.pick(UNKNOWN_TYPES), rng.bytes(rng.between(0, 16))));
      expected.push(Status.UNSUPPORTED);
    }
  }
  await ctx.wire.write(concat(frames), rng);
  for (const code of expected) {
    if (code === 0) await ctx.wire.expect("listing", "pipelined list");
    else await ctx.wire.expectError(code, "pipelined unknown type");
  }
  ctx.unread = expected[expected.length - 1] !== 0;
  return true;
};

/** DATA, END or ABORT outside a body: BAD_REQUEST, then the server closes. */
const outsideBody: Action = async (ctx) => {
  await servedRequest(ctx);
  const { rng } = ctx;
  const message = rng.pick<Message>([
    { type: "data", chunk: rng.bytes(rng.between(1, 300)) },
    { type: "end", size: 0, algorithm: "crc32", digest: "00000000" },
    { type: "abort", reason: "fuzz" },
  ]);
  await ctx.wire.write(frameBytes(message), rng);
  await expectClosingError(ctx, Status.BAD_REQUEST, `${message.type} outside a body`);
  return false;
};

/**
 * An empty DATA frame outside a body (found by this fuzzer: the decoder once passed no piece for it, so the session
 * never saw it): refused like any other DATA outside a body, and the request behind it is never served.
 */
const emptyDataOutsideBody: Action = async (ctx) => {
  await servedRequest(ctx);
  const list = frameBytes({ type: "list", prefix: `fz/${ctx.index}/`, after: "" });
  await ctx.wire.write(concat([frameBytes({ type: "data", chunk: new Uint8Array(0) }), list]), ctx.rng);
  await expectClosingError(ctx, Status.BAD_REQUEST, "data outside a body");
  return false;
};

/** A header announcing more than the frame limit: TOO_LARGE at once, then the server closes. */
const hugeLength: Action = async (ctx) => {
  const { rng } = ctx;
  const length = rng.chance(0.3) ? 0xffffffff : rng.between(MAX_FRAME_LENGTH + 1, 0xffffffff);
  await ctx.wire.write(header(length, rng.pick([MESSAGE_CODES.data, MESSAGE_CODES.put, rng.below(256)])), rng);
  await expectClosingError(ctx, Status.TOO_LARGE, `a header announcing ${length} bytes`);
  return false;
};

/** A header announcing 0 bytes: BAD_REQUEST, then the server closes. */
const zeroLength: Action = async (ctx) => {
  await ctx.wire.write(header(0, ctx.rng.below(256)), ctx.rng);
  await expectClosingError(ctx, Status.BAD_REQUEST, "a header announcing 0 bytes");
  return false;
};

/** The body of a put refused before it could be read, as a client sends it: a few DATA frames, then END or ABORT. */
function refusedBody(rng: Random): Uint8Array[] {
  const body = rng.bytes(rng.between(0, 3000));
  const end: Message = rng.chance(0.8)
    ? { type: "end", size: body.length, algorithm: "crc32", digest: digestOf(body, "crc32") }
    : { type: "abort", reason: "fuzz: refused" };
  return [...dataFrames(rng, body), frameBytes(end)];
}

/** Expects one ERROR with `code`, then the close. */
async function expectClosingError(ctx: SessionContext, code: number, context: string): Promise<void> {
  const messages = await ctx.wire.finish();
  const codes = messages.map((message) => message.type === "error" ? statusName(message.code) : message.type);
  if (codes.length !== 1 || codes[0] !== statusName(code)) {
    fail(`${context}: expected ERROR ${statusName(code)} and the close, got [${codes.join(", ")}]`);
  }
}

/** Random bytes: whatever the server makes of them, it closes once they end. */
const randomBytes: Action = async (ctx) => {
  await ctx.wire.write(ctx.rng.bytes(ctx.rng.between(1, 600)), ctx.rng);
  await ctx.wire.finish();
  return false;
};

/** A valid upload with bits flipped or bytes overwritten anywhere: headers, JSON, body, END. */
const flippedUpload: Action = async (ctx) => {
  const { rng } = ctx;
  const plan = planPut(ctx);
  // Sent whole with a correct END: if a flip spared the body and END (say it hit the name), it may be stored.
  ctx.ledger.sentWhole.add(sha256(plan.body));
  const bytes = concat([plan.put, ...plan.data, frameBytes(plan.end)]);
  const flips = rng.between(1, 4);
  for (let i = 0; i < flips; i++) {
    // Aim at the headers and JSON as often as at the body.
    const at = rng.chance(0.5) ? rng.below(bytes.length) : rng.pick([
      rng.below(plan.put.length),
      bytes.length - rng.between(1, frameBytes(plan.end).length),
      plan.put.length + rng.below(FRAME_HEADER_BYTES),
    ]);
    if (rng.chance(0.7)) bytes[at] ^= 1 << rng.below(8);
    else bytes[at] = rng.below(256);
  }
  await ctx.wire.write(bytes, rng);
  await ctx.wire.finish();
  return false;
};

/** A valid frame whose length field lies, by a little or a lot, followed by more bytes or not. */
const wrongLength: Action = async (ctx) => {
  const { rng } = ctx;
  const plan = planPut(ctx);
  ctx.ledger.sentWhole.add(sha256(plan.body));
  const frame = rng.pick([plan.put, plan.data[0] ?? plan.put, frameBytes(plan.end)]).slice();
  const view = new DataView(frame.buffer);
  const length = view.getUint32(0);
  const lie = rng.chance(0.7)
    ? Math.max(1, length + rng.pick([-1, 1, -rng.between(2, 16), rng.between(2, 16)]))
    : rng.between(1, MAX_FRAME_LENGTH);
  view.setUint32(0, lie);
  const after = rng.weighted([[1, []], [1, plan.data], [1, [rng.bytes(rng.between(1, 200))]]] as const);
  await ctx.wire.write(concat([frame, ...after]), rng);
  await ctx.wire.finish();
  return false;
};

/** An upload cut off mid-body: the connection dropped, or ended, inside a frame. Nothing is stored. */
const truncatedUpload: Action = async (ctx) => {
  const { rng } = ctx;
  const plan = planPut(ctx);
  if (plan.body.length === 0) return putValid(ctx);
  const bytes = concat([plan.put, ...plan.data]);
  // Cut after the PUT, anywhere in the body (not after it all: that is a valid body waiting for its END).
  const cut = rng.between(plan.put.length + 1, bytes.length - 1);
  ctx.ledger.refused.add(key(ctx, plan.name));
  await ctx.wire.write(bytes.subarray(0, cut), rng);
  if (rng.chance(0.5)) {
    ctx.wire.cut();
  } else {
    await ctx.wire.finish();
  }
  return false;
};

/** The actions after login, by weight. */
const ACTIONS: readonly (readonly [number, string, Action])[] = [
  [20, "put", putValid],
  [8, "put-broken", putBroken],
  [3, "put-aborted", putAborted],
  [3, "put-bad-name", putBadName],
  [4, "unknown-type", unknownType],
  [4, "out-of-place", outOfPlace],
  [5, "malformed", malformedRequest],
  [1, "oversize-control", oversizeControl],
  [5, "get", getFile],
  [3, "list", listFiles],
  [2, "delete", deleteFile],
  [2, "pipelined", pipelined],
  [2, "outside-body", outsideBody],
  [0.5, "empty-data-outside-body", emptyDataOutsideBody],
  [1.5, "huge-length", hugeLength],
  [0.5, "zero-length", zeroLength],
  [3, "random-bytes", randomBytes],
  [5, "flipped-upload", flippedUpload],
  [3, "wrong-length", wrongLength],
  [4, "truncated-upload", truncatedUpload],
  [1, "oversize-field", oversizeField],
];

/** What a session does before (instead of) logging in; each ends the session. */
const BEFORE_LOGIN: readonly (readonly [number, string, Action])[] = [
  [3, "garbage-first", async (ctx) => {
    const { rng } = ctx;
    const bytes = rng.weighted(
      [
        [3, rng.bytes(rng.between(1, 300))],
        [1, encoder.encode("GET / HTTP/1.1\r\nHost: dfos\r\n\r\n")],
        [1, concat([new Uint8Array([0x16, 0x03, 0x01, 0x02, 0x00, 0x01]), rng.bytes(rng.between(0, 200))])],
        [1, encoder.encode("SSH-2.0-OpenSSH_9.6\r\n")],
      ] as const,
    );
    await ctx.wire.write(bytes, rng);
    await ctx.wire.finish();
    return false;
  }],
  [1, "request-first", async (ctx) => {
    await ctx.wire.write(frameBytes({ type: "list", prefix: "", after: "" }), ctx.rng);
    await expectClosingError(ctx, Status.BAD_REQUEST, "LIST before HELLO");
    return false;
  }],
  [1, "wrong-version", async (ctx) => {
    const version = ctx.rng.pick([0, 2, 99, Number.MAX_SAFE_INTEGER]);
    await ctx.wire.write(frameBytes({ type: "hello", protocol: "dfos", version, agent: "fuzz" }), ctx.rng);
    await expectClosingError(ctx, Status.VERSION, `HELLO version ${version}`);
    return false;
  }],
  [1, "request-before-login", async (ctx) => {
    const hello = frameBytes({ type: "hello", protocol: "dfos", version: 1, agent: "fuzz" });
    const request = frameBytes(ctx.rng.pick<Message>([
      { type: "list", prefix: "", after: "" },
      { type: "put", name: "a", size: 0, digest: "crc32" },
      { type: "delete", name: "a" },
    ]));
    await ctx.wire.write(concat([hello, request]), ctx.rng);
    const messages = await ctx.wire.finish();
    const codes = messages.map((message) => message.type === "error" ? statusName(message.code) : message.type);
    if (codes.join() !== "welcome,AUTH_REQUIRED") fail(`request before login: got [${codes.join(", ")}]`);
    return false;
  }],
  [2, "flipped-hello", async (ctx) => {
    const { rng } = ctx;
    const bytes = frameBytes({ type: "hello", protocol: "dfos", version: 1, agent: "dfos-fuzz/1" }).slice();
    for (let i = rng.between(1, 3); i > 0; i--) bytes[rng.below(bytes.length)] ^= 1 << rng.below(8);
    await ctx.wire.write(bytes, rng);
    await ctx.wire.finish();
    return false;
  }],
  [1, "trickle-cut", async (ctx) => {
    // Part of a HELLO, then the connection dropped.
    const bytes = frameBytes({ type: "hello", protocol: "dfos", version: 1, agent: "dfos-fuzz/1" });
    await ctx.wire.write(bytes.subarray(0, ctx.rng.between(1, bytes.length - 1)), ctx.rng);
    ctx.wire.cut();
    return false;
  }],
  ...OVERSIZE_BEFORE_LOGIN,
];

/** How a session starts, by weight: an ordinary login, something else before it, or a shape of its own. */
const STARTS = [
  [87.4, "login"],
  [12, "before-login"],
  [0.35, "stall"],
  [0.25, "login-burst"],
] as const;

/**
 * The order in which the sessions run: by number; but in a short run, where the 4 s that the server takes to cut off
 * a peer that stops reading are most of the run, those peers go first, so that their timeouts run out while the
 * others go on, not after the last of them. (A long run has them spread out: about 10 at a time.)
 */
function scheduled(seed: number, indexes: number[]): number[] {
  if (indexes.length > SHORT_SESSIONS) return indexes;
  const first = (index: number) => startOf(Random.forSession(seed, index)) === "stall";
  return [...indexes.filter(first), ...indexes.filter((index) => !first(index))];
}

/** A session's first draw: how it starts. */
function startOf(rng: Random): typeof STARTS[number][1] {
  return rng.weighted(STARTS);
}

/** What all sessions of a run share. */
interface Run {
  seed: number;
  port: number;
  ledger: Ledger;
  counts: Map<string, number>;
  /** Checks that outlive their session (see {@linkcode SessionContext.background}); they report failures themselves. */
  background: Promise<void>[];
  failures: string[];
}

/**
 * One session: a broken start, or a login and a few actions (then a clean end if it is still open), or a shape of
 * its own: a peer that stops reading, a burst of logins. A session turned away before login ("Server busy", a
 * lockout) ends there; an ordinary one logs in again.
 */
async function runSession(index: number, run: Run) {
  const rng = Random.forSession(run.seed, index);
  const start = startOf(rng);
  const user = rng.pick(Object.keys(USERS));
  const trail: string[] = [];
  /** True once the connection is left to a check that outlives the session, which closes it. */
  let handedOff = false;
  const ctx: SessionContext = {
    index,
    rng,
    wire: null as unknown as Wire, // opened below, by the start that needs one
    port: run.port,
    ledger: run.ledger,
    counts: run.counts,
    user,
    password: USERS[user],
    mine: new Map(),
    step: 0,
    unread: false,
    background: (check) => {
      handedOff = true;
      const wire = ctx.wire;
      run.background.push(
        check.finally(() => wire.cut()).catch((error) => {
          run.failures.push(failureText(index, trail, error));
        }),
      );
    },
  };
  try {
    trail.push(start);
    if (start === "login-burst") {
      count(ctx, start);
      await loginBurst(ctx);
      return;
    }
    if (start === "stall") {
      ctx.wire = await Wire.open(run.port);
      await stallSession(ctx);
      return;
    }
    ctx.wire = await Wire.open(run.port);
    if (start === "before-login") {
      const [, name, action] = rng.weighted(BEFORE_LOGIN.map((row) => [row[0], row] as const));
      trail.push(name);
      count(ctx, name);
      await action(ctx);
      return;
    }
    await login(ctx);
    const steps = rng.between(1, 6);
    for (ctx.step = 0; ctx.step < steps; ctx.step++) {
      const [, name, action] = rng.weighted(ACTIONS.map((row) => [row[0], row] as const));
      trail.push(name);
      count(ctx, name);
      if (!await action(ctx)) return;
    }
    trail.push("goodbye");
    const left = await ctx.wire.finish();
    if (left.length > 0) fail(`after the last request, the server sent ${left.map(describe).join("; ")}`);
  } catch (error) {
    if (error instanceof Refused) {
      count(ctx, `turned-away-${error.kind}`);
      return;
    }
    throw new FuzzFailure(failureText(index, trail, error));
  } finally {
    if (!handedOff) ctx.wire?.cut();
  }
}

function failureText(index: number, trail: string[], error: unknown): string {
  const why = error instanceof FuzzFailure ? error.message : `${(error as Error)?.stack ?? error}`;
  return `session ${index} (${trail.join(" > ")}): ${why}`;
}

/** A `dfos serve` subprocess on a free port, in a fresh folder, with its console output watched. */
interface ServeProcess extends AsyncDisposable {
  pid: number;
  port: number;
  root: string;
  dir: string;
  /** The log file the server writes. */
  log: string;
  /** True once the process has ended. */
  exited(): boolean;
  /** Log lines at level ERROR (or above). */
  errors: string[];
  /** Console lines (standard output and error) holding a raw control character, as JSON strings, the first few. */
  rawConsoleLines: string[];
  /** The server's VmRSS and VmHWM, in bytes. */
  memory(): Promise<{ rss: number; peak: number }>;
  /** The server's CPU time so far (user and system), in seconds. */
  cpuSeconds(): Promise<number>;
  /** Stops the server with SIGTERM (a graceful shutdown) and waits for its exit, at most `ms`; null if it did not. */
  terminate(ms: number): Promise<Deno.CommandStatus | null>;
}

/** A raw control character in a line of the log or the console: C0 but tab, DEL, C1, bidi overrides and isolates. */
// deno-lint-ignore no-control-regex
const RAW_CONTROL = /[\x00-\x08\x0a-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]/;

/** The start of every line of the log: timestamp, level, category (LogTape's text formatter). */
const RECORD_PREFIX = /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} [+-]\d\d:\d\d \[[A-Z]{3}\] [^ :]+: /;

/** Console lines with a raw control character kept for the failure message. */
const RAW_LINES_KEPT = 5;

async function startServeProcess(): Promise<ServeProcess> {
  const flags = ["--handshake-timeout", `${HANDSHAKE_TIMEOUT_SECONDS}`, ...SHAPE_SERVER_FLAGS];
  const { child, dir, root, log } = await spawnServe(flags, {
    prefix: "dfos_fuzz_",
    users: { ...USERS, ...SHAPE_USERS },
  });
  let port = 0;
  let exited = false;
  const errors: string[] = [];
  const rawConsoleLines: string[] = [];
  const scan = async (stream: ReadableStream<Uint8Array>) => {
    let pending = "";
    for await (const text of stream.pipeThrough(new TextDecoderStream())) {
      const lines = (pending + text).split("\n");
      pending = lines.pop()!;
      for (const line of lines) {
        const serving = /Serving on 127\.0\.0\.1:(\d+)/.exec(line);
        if (serving) port = Number(serving[1]);
        if (/\[(ERR|FTL|ERROR|FATAL)\]/.test(line)) errors.push(excerpt(line));
        if (RAW_CONTROL.test(line) && rawConsoleLines.length < RAW_LINES_KEPT) {
          rawConsoleLines.push(JSON.stringify(excerpt(line)));
        }
      }
    }
  };
  const ended = Promise.all([child.status, scan(child.stdout), scan(child.stderr)]).then(([status]) => {
    exited = true;
    return status;
  });
  const stop = async () => {
    try {
      child.kill("SIGKILL");
    } catch {
      // It has ended already.
    }
    await ended;
    await Deno.remove(dir, { recursive: true });
  };
  try {
    await waitFor(() => port !== 0 || exited, "dfos serve to listen", 30_000);
    if (exited) throw new Error(`dfos serve exited at start: ${errors.join("\n")}`);
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    pid: child.pid,
    port,
    root,
    dir,
    log,
    exited: () => exited,
    errors,
    rawConsoleLines,
    async memory() {
      const status = await Deno.readTextFile(`/proc/${child.pid}/status`);
      const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? NaN) * 1024;
      return { rss: field("VmRSS"), peak: field("VmHWM") };
    },
    async cpuSeconds() {
      // Fields 14 and 15 of /proc/PID/stat, counted after the command name in parentheses; 100 ticks a second.
      const fields = (await Deno.readTextFile(`/proc/${child.pid}/stat`)).split(") ")[1].split(" ");
      return (Number(fields[11]) + Number(fields[12])) / 100;
    },
    async terminate(ms) {
      child.kill("SIGTERM");
      let timer: ReturnType<typeof setTimeout> | undefined;
      const late = new Promise<null>((resolve) => timer = setTimeout(() => resolve(null), ms));
      try {
        return await Promise.race([ended, late]);
      } finally {
        clearTimeout(timer);
      }
    },
    [Symbol.asyncDispose]: stop,
  };
}

/**
 * What is wrong with the server's log: lines that are not whole records (a record broken by a raw line break, or a
 * line forged from client text), raw control characters, records that begin with the forged login
 * ({@linkcode FORGED_RECORD}). The first few of each, as JSON strings.
 */
function logProblems(text: string): string[] {
  const problems: string[] = [];
  const counts = { unprefixed: 0, control: 0, forged: 0 };
  const note = (kind: keyof typeof counts, line: string) => {
    if (counts[kind]++ < RAW_LINES_KEPT) problems.push(`${kind}: ${JSON.stringify(excerpt(line))}`);
  };
  const lines = text.split("\n");
  if (lines.at(-1) === "") lines.pop();
  for (const line of lines) {
    const prefix = RECORD_PREFIX.exec(line);
    if (prefix === null) note("unprefixed", line);
    if (RAW_CONTROL.test(line)) note("control", line);
    const message = prefix === null ? line : line.slice(prefix[0].length);
    if (message.trimStart().startsWith(FORGED_RECORD)) note("forged", line);
  }
  for (const [kind, n] of Object.entries(counts)) {
    if (n > RAW_LINES_KEPT) problems.push(`${kind}: ${n} such lines in all`);
  }
  return problems;
}

/** Every file under `dir`, as paths relative to it. */
async function walk(dir: string, base = dir): Promise<string[]> {
  const files: string[] = [];
  for (const entry of await listDir(dir)) {
    const path = join(dir, entry);
    const info = await Deno.lstat(path);
    if (info.isDirectory) files.push(...await walk(path, base));
    else files.push(relative(base, path));
  }
  return files;
}

/** Upload temporaries left anywhere: files inside a `.dfos-` folder, or named `.dfos-...` or `*.part`. */
function isTemporary(path: string): boolean {
  return path.split("/").some((segment) => segment.startsWith(".dfos-")) || path.endsWith(".part");
}

function mib(bytes: number): string {
  return `${(bytes / MiB).toFixed(1)} MiB`;
}

Deno.test("dfos serve survives thousands of fuzzed sessions: no crash, no temporary or corrupt file, flat memory", async () => {
  const { seed, sessions, only, long } = settings();
  const replay = `FUZZ_SEED=${seed}${only ? ` FUZZ_ONLY=${only.join(",")}` : ""}`;
  const context = `(replay: ${replay} deno test --allow-all tests/fuzz_test.ts)`;
  if (long || only) console.log(`network fuzz: ${only?.length ?? sessions} sessions, ${replay}`);
  await using server = await startServeProcess();
  const ledger: Ledger = { sentWhole: new Set(), confirmed: new Map(), refused: new Set() };
  const counts = new Map<string, number>();
  const failures: string[] = [];
  const queue = scheduled(seed, only ?? Array.from({ length: sessions }, (_, i) => i));
  const warmUp = Math.floor(queue.length * WARM_UP_SHARE);
  const samples: string[] = [];
  let next = 0;
  let done = 0;
  let warm = null as { rss: number; peak: number } | null;
  const started = performance.now();

  const run: Run = { seed, port: server.port, ledger, counts, background: [], failures };

  const worker = async () => {
    while (next < queue.length && failures.length < MAX_FAILURES && !server.exited()) {
      const index = queue[next++];
      try {
        await runSession(index, run);
      } catch (error) {
        failures.push(error instanceof FuzzFailure ? error.message : `session ${index}: ${(error as Error).stack}`);
      }
      done++;
      if (done % Math.max(1, Math.floor(queue.length / 6)) === 0 || done === warmUp) {
        const memory = await server.memory();
        samples.push(`${done}: ${mib(memory.rss)}`);
        if (done === warmUp) warm = memory;
      }
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  // The peers that stopped reading: each is checked once the server should have closed it.
  await Promise.all(run.background);
  const seconds = (performance.now() - started) / 1000;
  const actions = [...counts].sort((a, b) => b[1] - a[1]).map(([name, n]) => `${name} ${n}`).join(", ");
  const closes = stallCloses.length > 0 ? `${Math.round(Math.max(...stallCloses))} ms` : "-";
  console.log(
    `network fuzz: ${queue.length} sessions in ${seconds.toFixed(1)} s (${replay}), server CPU ` +
      `${(await server.cpuSeconds()).toFixed(1)} s; non-reading peers closed within ${closes}; ${actions}`,
  );

  ok(!server.exited(), `the server process ended during the fuzzing ${context}\n${server.errors.join("\n")}`);
  strictEqual(failures.length, 0, `${failures.length} sessions failed ${context}:\n${failures.join("\n")}`);

  // Sessions cut off mid-upload are cleaned up as the server notices; give it a moment.
  let leftovers: string[] = [];
  await waitFor(
    async () => {
      leftovers = (await walk(server.root)).filter(isTemporary);
      return leftovers.length === 0;
    },
    "upload temporaries to be removed",
    10_000,
  ).catch(() => {});
  strictEqual(leftovers.length, 0, `temporaries left behind: ${leftovers.join(", ")} ${context}`);

  // Every stored file is a body sent whole with a correct END; confirmed uploads are there, refused ones are not.
  const stored = new Map<string, string>();
  for (const path of await walk(server.root)) stored.set(path, await sha256File(join(server.root, path)));
  const corrupt = [...stored].filter(([, hash]) => !ledger.sentWhole.has(hash)).map(([path]) => path);
  strictEqual(corrupt.length, 0, `files stored that the fuzzer never sent whole: ${corrupt.join(", ")} ${context}`);
  for (const [path, hash] of ledger.confirmed) {
    strictEqual(stored.get(path), hash, `${path} was confirmed with OK but is not stored as sent ${context}`);
  }
  const present = [...ledger.refused].filter((path) => stored.has(path) && !ledger.confirmed.has(path));
  strictEqual(present.length, 0, `refused or cut-off uploads were stored: ${present.join(", ")} ${context}`);

  strictEqual(server.errors.length, 0, `the server logged errors ${context}:\n${server.errors.join("\n")}`);

  // Memory: what the server holds once the sessions are gone, against what it held after the warm-up.
  await new Promise((resolve) => setTimeout(resolve, 300));
  const end = await server.memory();
  if (warm !== null && queue.length >= MIN_SESSIONS_FOR_MEMORY) {
    ok(
      end.rss <= warm.rss + RSS_GROWTH_LIMIT,
      `server VmRSS grew from ${mib(warm.rss)} after ${warmUp} sessions to ${mib(end.rss)} after ${queue.length} ` +
        `(limit: +${mib(RSS_GROWTH_LIMIT)}; samples ${samples.join(", ")}) ${context}`,
    );
  }

  // A normal client still works: the real CLI puts and gets a file.
  const env = { DFOS_SERVER: `127.0.0.1:${server.port}`, DFOS_USER: "alice", DFOS_PASSWORD: USERS.alice };
  const source = join(server.dir, "after.bin");
  const target = join(server.dir, "after-back.bin");
  const body = new Random(seed).bytes(300_000);
  await Deno.writeFile(source, body);
  const put = await runCli(["put", source, "after-fuzz.bin"], { env });
  strictEqual(put.code, 0, `put after the fuzzing: ${put.stderr}`);
  const get = await runCli(["get", "after-fuzz.bin", target], { env });
  strictEqual(get.code, 0, `get after the fuzzing: ${get.stderr}`);
  strictEqual(await sha256File(target), sha256(body));
  ok(!server.exited(), "the server is still running");

  // The log: bounded, one record a line, nothing raw from the client. Read once the server has stopped (and flushed).
  const status = await server.terminate(SHUTDOWN_TIMEOUT_MS);
  ok(status !== null, `the server did not stop within ${SHUTDOWN_TIMEOUT_MS} ms of SIGTERM ${context}`);
  strictEqual(status.code, 0, `the server's exit code after SIGTERM ${context}`);
  const logBytes = (await Deno.stat(server.log)).size;
  const logLimit = LOG_BASE_BYTES + LOG_BYTES_PER_SESSION * queue.length +
    LOG_BYTES_PER_REQUEST * (counts.get(STALL_REQUESTS) ?? 0);
  const problems = logProblems(await Deno.readTextFile(server.log));

  console.log(
    `network fuzz: ${stored.size} files stored, ${ledger.confirmed.size} confirmed; server VmRSS ` +
      `${samples.join(", ")}, end ${mib(end.rss)}, peak ${mib(end.peak)}; log ${logBytes} bytes`,
  );
  const logFailures = [
    ...(logBytes > logLimit
      ? [
        `the log took ${logBytes} bytes for ${queue.length} sessions (limit: ${logLimit}, with the non-reading peers' requests)`,
      ]
      : []),
    ...problems.map((problem) => `the log has a line that is ${problem}`),
    ...server.rawConsoleLines.map((line) => `the console got a line with a raw control character: ${line}`),
  ];
  strictEqual(logFailures.length, 0, `the log is not as promised ${context}:\n${logFailures.join("\n")}`);
});
