/**
 * What the network fuzzer's sessions share (tests/fuzz_test.ts, tests/_fuzz_shapes.ts): the seeded generator, one
 * connection as the fuzzer drives it (`Wire`), what a session works with, how it logs in, and how a check fails.
 *
 * Internal to tests/: nothing here is part of dfos.
 *
 * @module
 */

import { crc32 } from "node:zlib";
import { scramMechanism } from "../client/auth/scram.ts";
import { Channel } from "../shared/channel.ts";
import type { DigestAlgorithm, Message, MessageOf, MessageType } from "../shared/messages.ts";
import { DfosError, Status, statusName } from "../shared/status.ts";
import { sha256 } from "./_fixture.ts";
import { concat, frameBytes } from "./_peer.ts";
import { release } from "../shared/pooled_bytes.ts";

/** The longest wait for any one reply, or for the server to close a connection. */
export const REPLY_TIMEOUT_MS = 40_000;

/**
 * How long an ordinary session keeps trying to log in while the server turns it away for a reason that is not its
 * own: every place taken ("Server busy"), or its address locked out by the login bursts' wrong passwords.
 */
const LOGIN_RETRY_MS = 30_000;

/** The state of an open connection in /proc/net/tcp (include/net/tcp_states.h). */
const TCP_ESTABLISHED = "01";

/** The longest wait before logging in again after a lockout. */
const LOCKED_OUT_RETRY_MS = 250;

/** The wait before logging in again after "Server busy". */
const BUSY_RETRY_MS = 50;

/** mulberry32: a small, fast, seeded generator of 32-bit values; enough for fuzzing, not for secrets. */
export class Random {
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
export interface Ledger {
  /** SHA-256 of every body sent whole with a correct END, whatever happened to its frames on the way. */
  sentWhole: Set<string>;
  /** `user/name` of each upload the server confirmed with OK (and the fuzzer did not delete), with its SHA-256. */
  confirmed: Map<string, string>;
  /** `user/name` of uploads the server refused, or that were cut off: nothing may be stored there. */
  refused: Set<string>;
}

/** A check that failed, with what is needed to replay it. */
export class FuzzFailure extends Error {
  constructor(message: string) {
    super(message);
    this.name = "FuzzFailure";
  }
}

export function fail(message: string): never {
  throw new FuzzFailure(message);
}

/**
 * The server turned a connection away before login for a reason the documentation gives and the session did not
 * cause by itself: every place taken (`BUSY` "Server busy: ..."), or the address locked out (`AUTH_FAILED` "...too
 * many failed logins..."), which the login bursts' wrong passwords bring about. The session ends (an ordinary one
 * tries to log in again); it is not a failure.
 */
export class Refused extends Error {
  /** "busy" or "locked-out". */
  readonly kind: "busy" | "locked-out";
  /** The wait the server asked for ("try again in N s"), or a short one. */
  readonly retryMs: number;

  constructor(kind: "busy" | "locked-out", message: string) {
    super(message);
    this.name = "Refused";
    this.kind = kind;
    const seconds = /try again in (\d+) s/.exec(message);
    // A lockout refuses at once, and may end before the whole seconds it announces: look again every so often.
    this.retryMs = seconds ? Math.min(Number(seconds[1]) * 1000, LOCKED_OUT_RETRY_MS) : BUSY_RETRY_MS;
  }
}

/** The refusal that `message` is, for a connection not logged in; null for any other message. */
export function refusalOf(message: Message | null): Refused | null {
  if (message?.type !== "error") return null;
  if (message.code === Status.BUSY && message.message.startsWith("Server busy")) {
    return new Refused("busy", message.message);
  }
  if (message.code === Status.AUTH_FAILED && /too many failed logins/.test(message.message)) {
    return new Refused("locked-out", message.message);
  }
  return null;
}

export function describe(message: Message | null): string {
  if (message === null) return "the connection closed";
  if (message.type === "data") return `DATA of ${message.chunk.length} bytes`;
  if (message.type === "error") return `ERROR ${statusName(message.code)} "${excerpt(message.message)}"`;
  return excerpt(
    JSON.stringify(message, (_, value) => value instanceof Uint8Array ? `<${value.length} bytes>` : value),
  );
}

/** `text` cut to 300 characters, for a failure's message: hostile text can be 60 KB. */
export function excerpt(text: string): string {
  return text.length > 300 ? `${text.slice(0, 300)}... (${text.length} characters)` : text;
}

/** Resolves to `promise`'s value, or fails after `ms` (then `onTimeout` runs first). */
export async function deadline<T>(promise: Promise<T>, ms: number, what: string, onTimeout: () => void): Promise<T> {
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

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** True for the errors of a connection the server has closed or reset. */
export function isGone(error: unknown): boolean {
  return error instanceof Deno.errors.ConnectionReset || error instanceof Deno.errors.BrokenPipe ||
    error instanceof Deno.errors.NotConnected || error instanceof Deno.errors.UnexpectedEof;
}

/** How a connection that stopped reading ended, once it read again: {@linkcode Wire.drain}. */
export interface Drained {
  /** Requests whose reply arrived whole: OK, LISTING, a download's END, or an ERROR but BAD_REQUEST. */
  replies: number;
  /** The ERROR BAD_REQUEST the server closed with (a stalled transfer, an idle connection), if it arrived. */
  closing: Message | null;
}

/** The TCP sockets of this machine (IPv4), as /proc/net/tcp lists them: read at most every 100 ms, for all who ask. */
let sockets: { at: number; table: Promise<string> } | null = null;

function socketTable(): Promise<string> {
  const now = performance.now();
  if (sockets === null || now - sockets.at > 100) sockets = { at: now, table: Deno.readTextFile("/proc/net/tcp") };
  return sockets.table;
}

/** A port of 127.0.0.1 as /proc/net/tcp writes it. */
function loopbackHex(port: number): string {
  return `0100007F:${port.toString(16).toUpperCase().padStart(4, "0")}`;
}

/** One connection: raw bytes out, decoded messages in. */
export class Wire {
  readonly #conn: Deno.TcpConn;
  readonly #channel: Channel;
  /** True once a write failed because the server had closed the connection. */
  gone = false;
  /** True once the server has sent AUTH-OK: a refusal ({@linkcode Refused}) is then no longer one. */
  loggedIn = false;

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

  /**
   * The next message, or null once the server has closed (or reset) the connection.
   *
   * @throws {FuzzFailure} for INTERNAL, bytes that do not decode, or no message within the reply timeout.
   * @throws {Refused} before login, for "Server busy" or a lockout.
   */
  async receive(): Promise<Message | null> {
    const receiving = this.#channel.receive().catch((error) => {
      if (isGone(error)) return null;
      if (error instanceof DfosError) fail(`the server sent bytes that do not decode: ${excerpt(error.message)}`);
      throw error;
    });
    const message = await deadline(receiving, REPLY_TIMEOUT_MS, "reply", () => this.cut());
    if (message?.type === "error" && message.code === Status.INTERNAL) {
      fail(`the server answered INTERNAL: "${excerpt(message.message)}"`);
    }
    if (message?.type === "auth-ok") this.loggedIn = true;
    const refusal = this.loggedIn ? null : refusalOf(message);
    if (refusal !== null) throw refusal;
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

  /**
   * Reads what a connection that stopped reading was sent, until the server closes or resets it: a frame cut short
   * by the close is how such a connection may end, and not a failure. Fails if it is not closed within `ms`.
   */
  async drain(ms: number): Promise<Drained> {
    const drained: Drained = { replies: 0, closing: null };
    const reading = (async () => {
      while (true) {
        let message: Message | null;
        try {
          message = await this.#channel.receive();
        } catch {
          return; // reset, or the stream ended inside a frame: closed either way
        }
        if (message === null) return;
        if (message.type === "data") release(message.chunk);
        if (message.type === "error" && message.code === Status.INTERNAL) {
          fail(`the server answered INTERNAL: "${excerpt(message.message)}"`);
        }
        if (message.type === "error" && message.code === Status.BAD_REQUEST) drained.closing = message;
        else if (message.type !== "file" && message.type !== "data") drained.replies++;
      }
    })();
    await deadline(reading, ms, "close of the connection", () => this.cut());
    return drained;
  }

  /**
   * True once the server has closed its end of the connection, as the kernel says (read from /proc/net/tcp, without
   * reading the socket, so a peer that stopped reading stays stalled while it watches). The server's end is then in
   * FIN_WAIT or TIME_WAIT, or gone. This end may not know yet: while the server's replies wait in its socket's
   * buffer, its FIN waits behind them for this end to read.
   */
  async closedByServer(): Promise<boolean> {
    const server = loopbackHex((this.#conn.remoteAddr as Deno.NetAddr).port);
    const client = loopbackHex((this.#conn.localAddr as Deno.NetAddr).port);
    for (const line of (await socketTable()).split("\n")) {
      const [, localAddress, remoteAddress, state] = line.trim().split(/\s+/);
      // An older connection of the same two ports may linger in TIME_WAIT: only an open one counts.
      if (localAddress === server && remoteAddress === client && state === TCP_ESTABLISHED) return false;
    }
    return true;
  }

  /** Drops the connection at once, mid-whatever. */
  cut(): void {
    this.#channel.abort();
  }
}

/** The check value of a body, as END carries it. */
export function digestOf(body: Uint8Array, algorithm: DigestAlgorithm): string {
  if (algorithm === "sha256") return sha256(body);
  return (crc32(body) >>> 0).toString(16).padStart(8, "0");
}

/** What one session works with. */
export interface SessionContext {
  index: number;
  rng: Random;
  /** The session's connection; a login tried again replaces it. */
  wire: Wire;
  /** The server's port. */
  port: number;
  ledger: Ledger;
  /** Counts of what was done, for the summary. */
  counts: Map<string, number>;
  user: string;
  /** The user's password. */
  password: string;
  /** This session's confirmed uploads: name and body. */
  mine: Map<string, Uint8Array>;
  /** The step number, for names. */
  step: number;
  /**
   * True when the last request may have been refused before the server could read it (an unknown type, a
   * malformed or oversize frame): body frames sent right after it would be taken as its body and dropped.
   */
  unread: boolean;
  /** Runs a check that outlives the session (a connection left to the server's timeouts) beside the others. */
  background(check: Promise<void>): void;
}

/** An action after login: true when the session may go on, false when it ended (the connection is done). */
export type Action = (ctx: SessionContext) => Promise<boolean>;

export function count(ctx: SessionContext, what: string): void {
  ctx.counts.set(what, (ctx.counts.get(what) ?? 0) + 1);
}

export function key(ctx: SessionContext, name: string): string {
  return `${ctx.user}/${name}`;
}

/**
 * HELLO, then login with SCRAM-SHA-256 as the session's user (HELLO and AUTH in one write now and then). Turned away
 * ("Server busy", a lockout), it tries again on a new connection, for up to {@linkcode LOGIN_RETRY_MS}; its choices
 * come from a generator of its own, so the session's draws do not depend on how often that happened.
 */
export async function login(ctx: SessionContext): Promise<void> {
  const rng = new Random(ctx.rng.uint32());
  const started = performance.now();
  while (true) {
    try {
      await loginOnce(ctx, rng);
      return;
    } catch (error) {
      if (!(error instanceof Refused)) throw error;
      count(ctx, `login-${error.kind}`);
      if (performance.now() - started > LOGIN_RETRY_MS) {
        fail(`login: still turned away after ${LOGIN_RETRY_MS} ms: "${error.message}"`);
      }
      ctx.wire.cut();
      await sleep(error.retryMs);
      ctx.wire = await Wire.open(ctx.port);
    }
  }
}

async function loginOnce(ctx: SessionContext, rng: Random): Promise<void> {
  const { wire } = ctx;
  const scram = scramMechanism({ user: ctx.user, password: ctx.password });
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

/**
 * After a request refused before it could be read, a listing: body frames sent next are then outside a body, not
 * the refused request's (the server takes DATA, END or ABORT right after such a refusal as its body, and drops it).
 */
export async function servedRequest(ctx: SessionContext): Promise<void> {
  if (!ctx.unread) return;
  await ctx.wire.write(frameBytes({ type: "list", prefix: `fz/${ctx.index}/`, after: "" }), ctx.rng);
  await ctx.wire.expect("listing", "list before a frame outside a body");
  ctx.unread = false;
}
