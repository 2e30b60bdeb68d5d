/**
 * Network fuzzing: thousands of mutated sessions, many at a time, against a
 * real `dfos serve` subprocess on port 0. Most log in (SCRAM-SHA-256) and then mix
 * valid requests with corrupt ones: random bytes, bit flips in valid frames,
 * wrong and huge lengths, bodies cut off mid-frame, wrong digests and sizes
 * in END, DATA/END/ABORT outside a body, AUTH and HELLO after login, server
 * messages and unknown types sent to the server, hostile names; the others
 * send garbage or broken handshakes before logging in.
 *
 * Every reply is checked where the protocol fixes it (the session goes on
 * after a refused request, and closes after a broken frame), no reply is
 * ever INTERNAL, and afterwards: the server process is still running and
 * logged no error, no upload temporary is left, every stored file is a body
 * the fuzzer sent whole with a correct END (and every upload confirmed with
 * OK is stored as sent, every refused one is absent), its memory (VmRSS) did
 * not grow past a bound, and the real CLI still does a put/get round trip.
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
import { crc32 } from "node:zlib";
import { scramMechanism } from "../client/auth/scram.ts";
import { Channel } from "../shared/channel.ts";
import { FRAME_HEADER_BYTES, MAX_DATA_PAYLOAD, MAX_FRAME_LENGTH } from "../shared/frames.ts";
import {
  type DigestAlgorithm,
  MAX_CONTROL_LENGTH,
  type Message,
  MESSAGE_CODES,
  type MessageOf,
  type MessageType,
} from "../shared/messages.ts";
import { DfosError, Status, statusName } from "../shared/status.ts";
import { listDir, runCli, sha256, sha256File, spawnCli, USERS, waitFor } from "./_fixture.ts";
import { concat, frameBytes, plain, rawFrame } from "./_peer.ts";

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

/** The longest wait for any one reply, or for the server to close a connection. */
const REPLY_TIMEOUT_MS = 40_000;

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

/** mulberry32: a small, fast, seeded generator of 32-bit values; enough for fuzzing, not for secrets. */
class Random {
  #state: number;

  constructor(seed: number) {
    this.#state = seed >>> 0;
  }

  /** The generator of session `index` of the run seeded `seed`. */
  static forSession(seed: number, index: number): Random {
    return new Random((seed ^ Math.imul(index + 1, 0x9e3779b9)) >>> 0);
  }

  uint32(): number {
    this.#state = (this.#state + 0x6d2b79f5) >>> 0;
    let t = this.#state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  /** An integer from 0 to `n` - 1. */
  below(n: number): number {
    return Math.floor((this.uint32() / 4294967296) * n);
  }

  /** An integer from `min` to `max`, both included. */
  between(min: number, max: number): number {
    return min + this.below(max - min + 1);
  }

  chance(p: number): boolean {
    return this.uint32() / 4294967296 < p;
  }

  pick<T>(items: readonly T[]): T {
    return items[this.below(items.length)];
  }

  /** One of the values, each as likely as its weight. */
  weighted<T>(table: readonly (readonly [number, T])[]): T {
    let roll = (this.uint32() / 4294967296) * table.reduce((sum, [weight]) => sum + weight, 0);
    for (const [weight, value] of table) {
      roll -= weight;
      if (roll < 0) return value;
    }
    return table[table.length - 1][1];
  }

  bytes(length: number): Uint8Array {
    const bytes = new Uint8Array(length);
    const words = new Uint32Array(bytes.buffer, 0, length >>> 2);
    for (let i = 0; i < words.length; i++) words[i] = this.uint32();
    for (let i = words.length * 4; i < length; i++) bytes[i] = this.uint32() & 0xff;
    return bytes;
  }

  hex(digits: number): string {
    let text = "";
    while (text.length < digits) text += this.uint32().toString(16).padStart(8, "0");
    return text.slice(0, digits);
  }
}

/** What the fuzzer sent, to judge what the server stored. */
interface Ledger {
  /** SHA-256 of every body sent whole with a correct END, whatever happened to its frames on the way. */
  sentWhole: Set<string>;
  /** `user/name` of each upload the server confirmed with OK (and the fuzzer did not delete), with its SHA-256. */
  confirmed: Map<string, string>;
  /** `user/name` of uploads the server refused, or that were cut off: nothing may be stored there. */
  refused: Set<string>;
}

/** A check that failed, with what is needed to replay it. */
class FuzzFailure extends Error {
  constructor(message: string) {
    super(message);
    this.name = "FuzzFailure";
  }
}

function fail(message: string): never {
  throw new FuzzFailure(message);
}

function describe(message: Message | null): string {
  if (message === null) return "the connection closed";
  if (message.type === "data") return `DATA of ${message.chunk.length} bytes`;
  if (message.type === "error") return `ERROR ${statusName(message.code)} "${message.message}"`;
  return JSON.stringify(message, (_, value) => value instanceof Uint8Array ? `<${value.length} bytes>` : value);
}

/** Resolves to `promise`'s value, or fails after `ms` (then `onTimeout` runs first). */
async function deadline<T>(promise: Promise<T>, ms: number, what: string, onTimeout: () => void): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      onTimeout();
      reject(new FuzzFailure(`no ${what} within ${ms} ms`));
    }, ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** True for the errors of a connection the server has closed or reset. */
function isGone(error: unknown): boolean {
  return error instanceof Deno.errors.ConnectionReset || error instanceof Deno.errors.BrokenPipe ||
    error instanceof Deno.errors.NotConnected || error instanceof Deno.errors.UnexpectedEof;
}

/** One connection: raw bytes out, decoded messages in. */
class Wire {
  readonly #conn: Deno.TcpConn;
  readonly #channel: Channel;
  /** True once a write failed because the server had closed the connection. */
  gone = false;

  private constructor(conn: Deno.TcpConn) {
    this.#conn = conn;
    this.#channel = new Channel(conn);
  }

  static async open(port: number): Promise<Wire> {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    conn.setNoDelay(true);
    return new Wire(conn);
  }

  /** Writes all of `bytes`, in pieces cut at random; false if the server has closed the connection. */
  async write(bytes: Uint8Array, rng: Random): Promise<boolean> {
    if (this.gone) return false;
    const cuts = rng.chance(0.7) ? [] : Array.from({ length: rng.between(1, 3) }, () => rng.below(bytes.length + 1));
    const points = [0, ...cuts.sort((a, b) => a - b), bytes.length];
    try {
      for (let i = 0; i + 1 < points.length; i++) {
        const piece = bytes.subarray(points[i], points[i + 1]);
        for (let offset = 0; offset < piece.length;) offset += await this.#conn.write(piece.subarray(offset));
      }
      return true;
    } catch (error) {
      if (!isGone(error)) throw error;
      this.gone = true;
      return false;
    }
  }

  /** The next message, or null once the server has closed (or reset) the connection. */
  async receive(): Promise<Message | null> {
    const receiving = this.#channel.receive().catch((error) => {
      if (isGone(error)) return null;
      if (error instanceof DfosError) fail(`the server sent bytes that do not decode: ${error.message}`);
      throw error;
    });
    const message = await deadline(receiving, REPLY_TIMEOUT_MS, "reply", () => this.cut());
    if (message?.type === "error" && message.code === Status.INTERNAL) {
      fail(`the server answered INTERNAL: "${message.message}"`);
    }
    return message;
  }

  /** The next message, which must be of `type`. */
  async expect<T extends MessageType>(type: T, context: string): Promise<MessageOf<T>> {
    const message = await this.receive();
    if (message?.type !== type) fail(`${context}: expected ${type}, got ${describe(message)}`);
    return message as MessageOf<T>;
  }

  /** The next message, which must be an ERROR with `code`. */
  async expectError(code: number, context: string): Promise<void> {
    const message = await this.receive();
    if (message?.type !== "error" || message.code !== code) {
      fail(`${context}: expected ERROR ${statusName(code)}, got ${describe(message)}`);
    }
  }

  /** Ends what this side sends, then reads until the server closes; returns what arrived before. */
  async finish(): Promise<Message[]> {
    try {
      await this.#conn.closeWrite();
    } catch {
      // Closed already.
    }
    const messages: Message[] = [];
    while (true) {
      const message = await this.receive();
      if (message === null) return messages;
      messages.push(message);
    }
  }

  /** Drops the connection at once, mid-whatever. */
  cut(): void {
    this.#channel.abort();
  }
}

/** The check value of a body, as END carries it. */
function digestOf(body: Uint8Array, algorithm: DigestAlgorithm): string {
  if (algorithm === "sha256") return sha256(body);
  return (crc32(body) >>> 0).toString(16).padStart(8, "0");
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

/** What one session works with. */
interface SessionContext {
  index: number;
  rng: Random;
  wire: Wire;
  ledger: Ledger;
  /** Counts of what was done, for the summary. */
  counts: Map<string, number>;
  user: string;
  /** This session's confirmed uploads: name and body. */
  mine: Map<string, Uint8Array>;
  /** The step number, for names. */
  step: number;
  /**
   * True when the last request may have been refused before the server could read it (an unknown type, a
   * malformed or oversize frame): body frames sent right after it would be taken as its body and dropped.
   */
  unread: boolean;
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

function key(ctx: SessionContext, name: string): string {
  return `${ctx.user}/${name}`;
}

/** An action after login: true when the session may go on, false when it ended (the connection is done). */
type Action = (ctx: SessionContext) => Promise<boolean>;

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
    { type: "auth", mechanism: "PLAIN", data: plain(ctx.user, USERS[ctx.user]) },
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
      parts.push(message.chunk.slice());
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

/**
 * After a request refused before it could be read, a listing: body frames sent next are then outside a body, not
 * the refused request's.
 */
async function servedRequest(ctx: SessionContext): Promise<void> {
  if (!ctx.unread) return;
  await ctx.wire.write(frameBytes({ type: "list", prefix: `fz/${ctx.index}/`, after: "" }), ctx.rng);
  await ctx.wire.expect("listing", "list before a frame outside a body");
  ctx.unread = false;
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
];

/** HELLO, then login with SCRAM-SHA-256 as a random user (HELLO and AUTH in one write now and then). */
async function login(ctx: SessionContext): Promise<void> {
  const { rng, wire } = ctx;
  const scram = scramMechanism({ user: ctx.user, password: USERS[ctx.user] });
  const hello = frameBytes({ type: "hello", protocol: "dfos", version: 1, agent: "dfos-fuzz/1" });
  const auth = frameBytes({ type: "auth", mechanism: scram.name, data: await scram.start() });
  if (rng.chance(0.3)) {
    await wire.write(concat([hello, auth]), rng);
    await wire.expect("welcome", "HELLO");
  } else {
    await wire.write(hello, rng);
    const welcome = await wire.expect("welcome", "HELLO");
    if (!welcome.mechanisms.includes(scram.name)) fail(`WELCOME offers no ${scram.name}: ${describe(welcome)}`);
    await wire.write(auth, rng);
  }
  const challenge = await wire.expect("auth-continue", "login");
  await wire.write(frameBytes({ type: "auth-response", data: await scram.step(challenge.data) }), rng);
  const reply = await wire.expect("auth-ok", "login");
  if (reply.user !== ctx.user) fail(`login: AUTH-OK names ${reply.user}`);
  await scram.finish(reply.data);
}

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
];

function count(ctx: SessionContext, what: string): void {
  ctx.counts.set(what, (ctx.counts.get(what) ?? 0) + 1);
}

/** One session: a broken start, or a login and a few actions; then a clean end if it is still open. */
async function runSession(index: number, seed: number, port: number, ledger: Ledger, counts: Map<string, number>) {
  const rng = Random.forSession(seed, index);
  const wire = await Wire.open(port);
  const ctx: SessionContext = {
    index,
    rng,
    wire,
    ledger,
    counts,
    user: rng.pick(Object.keys(USERS)),
    mine: new Map(),
    step: 0,
    unread: false,
  };
  const trail: string[] = [];
  try {
    if (rng.chance(0.12)) {
      const [, name, action] = rng.weighted(BEFORE_LOGIN.map((row) => [row[0], row] as const));
      trail.push(name);
      count(ctx, name);
      await action(ctx);
      return;
    }
    trail.push("login");
    await login(ctx);
    const steps = rng.between(1, 6);
    for (ctx.step = 0; ctx.step < steps; ctx.step++) {
      const [, name, action] = rng.weighted(ACTIONS.map((row) => [row[0], row] as const));
      trail.push(name);
      count(ctx, name);
      if (!await action(ctx)) return;
    }
    trail.push("goodbye");
    const left = await wire.finish();
    if (left.length > 0) fail(`after the last request, the server sent ${left.map(describe).join("; ")}`);
  } catch (error) {
    const why = error instanceof FuzzFailure ? error.message : `${(error as Error)?.stack ?? error}`;
    throw new FuzzFailure(`session ${index} (${trail.join(" > ")}): ${why}`);
  } finally {
    wire.cut();
  }
}

/** A `dfos serve` subprocess on a free port, in a fresh folder, with its log lines at level ERROR collected. */
interface ServeProcess extends AsyncDisposable {
  pid: number;
  port: number;
  root: string;
  dir: string;
  /** True once the process has ended. */
  exited(): boolean;
  /** Log lines at level ERROR (or above). */
  errors: string[];
  /** The server's VmRSS and VmHWM, in bytes. */
  memory(): Promise<{ rss: number; peak: number }>;
  /** The server's CPU time so far (user and system), in seconds. */
  cpuSeconds(): Promise<number>;
}

async function startServeProcess(): Promise<ServeProcess> {
  const dir = await Deno.makeTempDir({ prefix: "dfos_fuzz_" });
  const root = join(dir, "root");
  const users = join(dir, "users.txt");
  await Deno.writeTextFile(users, Object.entries(USERS).map(([user, password]) => `${user}:${password}\n`).join(""));
  const child = spawnCli(
    [
      "serve",
      "--host",
      "127.0.0.1",
      "--port",
      "0",
      "--root",
      root,
      "--users",
      users,
      "--log",
      join(dir, "server.log"),
      "--handshake-timeout",
      `${HANDSHAKE_TIMEOUT_SECONDS}`,
      // Broken logins count against the throttle: off here, so that they neither delay nor lock out the rest.
      "--auth-lockout",
      "0",
    ],
    { cwd: dir },
  );
  await child.stdin.close();
  let port = 0;
  let exited = false;
  const errors: string[] = [];
  const scan = async (stream: ReadableStream<Uint8Array>) => {
    let pending = "";
    for await (const text of stream.pipeThrough(new TextDecoderStream())) {
      const lines = (pending + text).split("\n");
      pending = lines.pop()!;
      for (const line of lines) {
        const serving = /Serving on 127\.0\.0\.1:(\d+)/.exec(line);
        if (serving) port = Number(serving[1]);
        if (/\[(ERR|FTL|ERROR|FATAL)\]/.test(line)) errors.push(line);
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
    exited: () => exited,
    errors,
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
    [Symbol.asyncDispose]: stop,
  };
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
  const queue = only ?? Array.from({ length: sessions }, (_, i) => i);
  const warmUp = Math.floor(queue.length * WARM_UP_SHARE);
  const samples: string[] = [];
  let next = 0;
  let done = 0;
  let warm = null as { rss: number; peak: number } | null;
  const started = performance.now();

  const worker = async () => {
    while (next < queue.length && failures.length < MAX_FAILURES && !server.exited()) {
      const index = queue[next++];
      try {
        await runSession(index, seed, server.port, ledger, counts);
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
  const seconds = (performance.now() - started) / 1000;

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

  const actions = [...counts].sort((a, b) => b[1] - a[1]).map(([name, n]) => `${name} ${n}`).join(", ");
  console.log(
    `network fuzz: ${queue.length} sessions in ${seconds.toFixed(1)} s (${replay}), server CPU ` +
      `${(await server.cpuSeconds()).toFixed(1)} s; ${stored.size} files stored, ${ledger.confirmed.size} confirmed; ` +
      `server VmRSS ${samples.join(", ")}, end ${mib(end.rss)}, peak ${mib(end.peak)}; ${actions}`,
  );
});
