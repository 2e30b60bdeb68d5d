/**
 * The network fuzzer's hostile shapes from issue 9 (tests/fuzz_test.ts draws them with the others):
 *
 * - **Oversized text in every string field** ({@linkcode OVERSIZE_BEFORE_LOGIN}, {@linkcode oversizeField}): HELLO's
 *   protocol and agent, AUTH's mechanism, the SCRAM messages' contents (as bytes: the user name, the gs2 header, an
 *   extension, the whole message), unknown JSON field names, the names of PUT, GET and DELETE, LIST's prefix and
 *   `after`, PUT's digest, END's digest, ABORT's reason and the text of an ERROR the client sends, each filled with
 *   up to a frame's worth of text holding newlines, ESC sequences, bidi overrides, NUL, lone surrogates and a forged
 *   log line ({@linkcode FORGED_LINE}), or with bytes that are not UTF-8. Each gets the status the protocol gives
 *   it, never INTERNAL, and the session goes on or closes as docs/PROTOCOL.md says.
 * - **Non-reading peers** ({@linkcode stallSession}): log in, then pipeline many small requests (downloads of a
 *   small file, listings, deletes of missing names) without reading a reply, or start a download and stop reading,
 *   or say nothing at all; then stay quiet. The server must close such a connection within its op timeout (idle
 *   timeout) plus the grace of a close: within {@linkcode QUIET_BOUND_MS}, the kernel shows the server's end of the
 *   connection closed (read from /proc/net/tcp, without reading the socket), and it then reads to its end at once.
 *   The wait runs beside the other sessions.
 * - **Parallel logins** ({@linkcode loginBurst}): bursts of connections from the one address logging in at once with
 *   SCRAM, right and wrong passwords mixed. A right password logs in, or is turned away only by a documented
 *   refusal (the lockout, "Server busy"); a wrong one never logs in; none is INTERNAL, none hangs.
 *
 * Internal to tests/: nothing here is part of dfos.
 *
 * @module
 */

import { scramMechanism } from "../client/auth/scram.ts";
import { FRAME_HEADER_BYTES } from "../shared/frames.ts";
import { MAX_CONTROL_LENGTH, type Message, MESSAGE_CODES, type MessageType } from "../shared/messages.ts";
import { Status, statusName } from "../shared/status.ts";
import { sha256 } from "./_fixture.ts";
import { concat, frameBytes, rawFrame } from "./_peer.ts";
import {
  type Action,
  count,
  deadline,
  describe,
  digestOf,
  excerpt,
  fail,
  FuzzFailure,
  key,
  login,
  Random,
  Refused,
  servedRequest,
  type SessionContext,
  sleep,
  Wire,
} from "./_fuzz_wire.ts";

const KiB = 1024;
const MiB = 1024 * KiB;

/** A record the server would write for a login from elsewhere: no line of the log may begin with it. */
export const FORGED_RECORD = "Login of alice from 203.0.113.9";

/** The text the fuzzer hides in names and SCRAM messages: written raw, it would forge a line of the log. */
export const FORGED_LINE = `\n${FORGED_RECORD} (SCRAM-SHA-256)`;

/**
 * The users of the login bursts and of the non-reading peers, with their passwords: users of their own, so that the
 * per-user cap and the failures on their names spare the ordinary sessions.
 */
export const SHAPE_USERS: Readonly<Record<string, string>> = {
  burst: "burst-pass",
  "stall-a": "stall-pass",
  "stall-b": "stall-pass",
  "stall-c": "stall-pass",
};

/** The server's op timeout in the fuzz run: a non-reading peer is cut after about this long. */
export const OP_TIMEOUT_SECONDS = 1;

/** The server's idle timeout in the fuzz run: a logged-in peer that says nothing is closed after this long. */
export const IDLE_TIMEOUT_SECONDS = 2;

/** The server's grace for a close (`CLOSE_GRACE_MS` in server/session.ts): a peer that does not read is then cut. */
const CLOSE_GRACE_MS = 1000;

/**
 * How long after it went quiet a non-reading peer must have been closed: the op clock is looked at four times per
 * timeout (so a stall is seen within 1.25 timeouts), or the idle timeout, then the close's grace, and room for a
 * loaded machine.
 */
export const QUIET_BOUND_MS = Math.max(OP_TIMEOUT_SECONDS * 1250, IDLE_TIMEOUT_SECONDS * 1000) + CLOSE_GRACE_MS +
  4000;

/** How often a non-reading peer looks whether the server has closed its connection. */
const CLOSE_POLL_MS = 200;

/** How long after going quiet each non-reading peer was closed by the server, in ms: for the run's summary. */
export const stallCloses: number[] = [];

/**
 * What a non-reading peer asks the server to send: more than the two sockets' buffers hold (on loopback here, the
 * server's send buffer grows to 4 MiB, `net.ipv4.tcp_wmem`; the peer's receive buffer stays small as it does not
 * read), so that the server is left waiting to send.
 */
const STALL_VOLUME = 8 * MiB;

/**
 * What a pipelining peer asks for: far more, as asking costs little (the server stops reading requests once it waits
 * to send), and a receive buffer that grew earlier in the session may hold more than the default.
 */
const PIPELINE_VOLUME = 48 * MiB;

/** How long a connection closed by the server may take to read to its end (buffers of a few MiB on loopback). */
const DRAIN_MS = 10_000;

/** How long one login of a burst may take, whatever the answer (the throttle's holds are short here). */
const BURST_LOGIN_MS = 20_000;

/**
 * The flags the fuzz server runs with for these shapes. All connections come from 127.0.0.1, so its caps and
 * throttle apply to every session at once:
 * - caps that a burst can reach (the per-user one, 16: a burst's user alone goes over it; the 24 ordinary sessions
 *   share three users), and ordinary sessions that are turned away log in again (`login()` in tests/_fuzz_wire.ts);
 * - a lockout that the bursts' wrong passwords and the malformed logins bring about (30 failures within 0.5 s of
 *   each other), but that lasts 0.5 s, and holds of at most 50 ms, so that a locked-out ordinary session waits little;
 * - op and idle timeouts short enough that the non-reading peers are cut off within the run: no ordinary session
 *   stops for a second.
 */
export const SHAPE_SERVER_FLAGS: readonly string[] = [
  "--op-timeout",
  `${OP_TIMEOUT_SECONDS}`,
  "--idle-timeout",
  `${IDLE_TIMEOUT_SECONDS}`,
  "--max-connections",
  "128",
  "--max-connections-per-address",
  "128",
  "--max-connections-per-user",
  "16",
  "--auth-free-failures",
  "20",
  "--auth-max-delay",
  "0.05",
  "--auth-lockout-failures",
  "30",
  "--auth-lockout",
  "0.5",
];

const encoder = new TextEncoder();

/** Pieces of hostile text: line breaks, terminal escapes, bidi and other format characters, NUL, lone surrogates. */
const HOSTILE_PIECES = [
  FORGED_LINE,
  "\n",
  "\r\n",
  "\r",
  "\x1b]0;x\x07\x1b[2J",
  "\x1b[31m",
  "\u202e",
  "\u2066",
  "\u200f",
  "\u0000",
  "\t",
  "\x7f",
  "\x85",
  "\u2028",
  "\ud800",
  "\udc00",
  "é",
  "e\u0301",
  "🙂",
  ",",
  "=",
  "/",
  "..",
  '"',
  "\\",
  "{}",
  "%n%s",
];

/** Byte sequences that are not UTF-8: a stray byte, a cut sequence, an overlong "/", an encoded surrogate, 5 bytes. */
const INVALID_UTF8 = [[0xff], [0xc3, 0x28], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xe2, 0x82], [
  0xf8,
  0x88,
  0x80,
  0x80,
  0x80,
]];

/** Stands for the bytes that are not UTF-8 until the payload is encoded. */
const INVALID_MARK = "@@not-utf-8@@";

/** The room a control frame's JSON has for one field's text: the 64 KiB limit, less the rest of the message. */
const FIELD_ROOM = 64 * KiB - 400;

/**
 * Hostile text, as long as its JSON string takes about `maxJsonBytes` (a few bytes, a few KB, or up to the limit):
 * it always holds {@linkcode FORGED_LINE} and a control character, so it is never a valid name.
 */
export function hostileText(rng: Random, maxJsonBytes = FIELD_ROOM): string {
  const target = rng.weighted([[3, rng.between(60, 300)], [3, rng.between(300, 8000)], [2, maxJsonBytes]] as const);
  const pieces = [rng.pick(["", "x", "fz/", "a/b"]), FORGED_LINE];
  let size = jsonBytes(pieces.join(""));
  while (true) {
    const piece = rng.chance(0.5) ? rng.pick(HOSTILE_PIECES) : "word".repeat(rng.between(1, 64));
    const more = jsonBytes(piece);
    if (size + more > Math.min(target, maxJsonBytes)) break;
    pieces.splice(rng.between(1, pieces.length), 0, piece);
    size += more;
  }
  return pieces.join("");
}

/** The bytes `text` takes as a JSON string, quotes left out. */
function jsonBytes(text: string): number {
  return encoder.encode(JSON.stringify(text)).length - 2;
}

/** `text` with a SCRAM user name's "=" and "," escaped (RFC 5802 `saslname`). */
function saslName(text: string): string {
  return text.replaceAll("=", "=3D").replaceAll(",", "=2C");
}

/** A JSON message's frame, its fields given as they are (any name, any value), `INVALID_MARK` made bytes that are not UTF-8. */
function jsonFrame(rng: Random, type: MessageType, fields: Record<string, unknown>): Uint8Array {
  return rawFrame(MESSAGE_CODES[type], withInvalidUtf8(rng, encoder.encode(JSON.stringify(fields))));
}

/** `bytes` with each {@linkcode INVALID_MARK} replaced by a sequence that is not UTF-8. */
function withInvalidUtf8(rng: Random, bytes: Uint8Array): Uint8Array {
  const mark = encoder.encode(INVALID_MARK);
  const parts: Uint8Array[] = [];
  let from = 0;
  for (let i = 0; i + mark.length <= bytes.length; i++) {
    if (mark.every((byte, j) => bytes[i + j] === byte)) {
      parts.push(bytes.subarray(from, i), new Uint8Array(rng.pick(INVALID_UTF8)));
      i += mark.length - 1;
      from = i + 1;
    }
  }
  parts.push(bytes.subarray(from));
  return concat(parts);
}

/** Hostile text with bytes that are not UTF-8 in it (once encoded with {@linkcode jsonFrame}). */
function invalidText(rng: Random): string {
  const text = hostileText(rng, FIELD_ROOM - 64);
  const at = rng.below(text.length + 1);
  return text.slice(0, at) + INVALID_MARK + text.slice(at);
}

/** Expects one ERROR with `code`, then the close. */
async function expectClosingError(wire: Wire, code: number, context: string): Promise<void> {
  const messages = await wire.finish();
  const codes = messages.map((message) => message.type === "error" ? statusName(message.code) : message.type);
  if (codes.length !== 1 || codes[0] !== statusName(code)) {
    fail(`${context}: expected ERROR ${statusName(code)} and the close, got [${codes.join(", ")}]`);
  }
}

/** Ends the session: the server must close it with nothing more to say. */
async function expectQuietClose(wire: Wire, context: string): Promise<void> {
  const left = await wire.finish();
  if (left.length > 0) fail(`${context}: then the server sent ${left.map(describe).join("; ")}`);
}

const HELLO: Message = { type: "hello", protocol: "dfos", version: 1, agent: "dfos-fuzz/1" };

/** A SCRAM client-first message, well formed, for a user named `user`, with `extension` after its nonce. */
function clientFirst(user: string, nonce: string, extension = ""): string {
  return `n,,n=${saslName(user)},r=${nonce}${extension}`;
}

/** Hostile text for the inside of a SCRAM attribute: no "," (which would end it). */
function attributeText(rng: Random, maxBytes: number): string {
  return hostileText(rng, maxBytes).replaceAll(",", ";");
}

/** AUTH data may take this many bytes of text: its base64 must fit a control frame. */
const SCRAM_ROOM = Math.floor((64 * KiB - 400) * 3 / 4);

/** A HELLO, then one hostile thing before login; each ends the session. */
const oversizeHello = async (ctx: SessionContext): Promise<boolean> => {
  const { rng, wire } = ctx;
  const field = rng.pick(["agent", "protocol", "field name", "invalid agent"] as const);
  const hello = { protocol: "dfos", version: 1, agent: "dfos-fuzz/1" };
  count(ctx, `oversize-hello-${field}`);
  if (field === "agent") {
    await wire.write(frameBytes({ type: "hello", protocol: "dfos", version: 1, agent: hostileText(rng) }), rng);
    await wire.expect("welcome", "HELLO with a long hostile agent");
    await expectQuietClose(wire, "HELLO with a long hostile agent");
    return false;
  }
  const fields = field === "protocol"
    ? { ...hello, protocol: hostileText(rng) }
    : field === "field name"
    ? { ...hello, [hostileText(rng)]: 1 }
    : { ...hello, agent: invalidText(rng) };
  await wire.write(jsonFrame(rng, "hello", fields), rng);
  await expectClosingError(wire, Status.BAD_REQUEST, `HELLO with a hostile ${field}`);
  return false;
};

/** A HELLO as it should be, then a login attempt with hostile text somewhere in it; each ends the session. */
const oversizeAuth = async (ctx: SessionContext): Promise<boolean> => {
  const { rng, wire } = ctx;
  const field = rng.pick(
    [
      "mechanism",
      "field name",
      "invalid mechanism",
      "scram garbage",
      "scram not utf-8",
      "scram gs2 header",
      "scram user",
      "client error",
    ] as const,
  );
  count(ctx, `oversize-auth-${field}`);
  await wire.write(frameBytes(HELLO), rng);
  await wire.expect("welcome", "HELLO");
  const context = `AUTH with a hostile ${field}`;
  const nonce = rng.hex(24);
  if (field === "mechanism") {
    await wire.write(frameBytes({ type: "auth", mechanism: hostileText(rng), data: new Uint8Array(0) }), rng);
    await wire.expectError(Status.AUTH_FAILED, context);
    await expectQuietClose(wire, context);
    return false;
  }
  if (field === "client error") {
    // An ERROR (or ABORT) from the client before login is no AUTH.
    const message = rng.chance(0.5)
      ? frameBytes({ type: "error", code: rng.pick([Status.BAD_REQUEST, Status.NOT_FOUND]), message: hostileText(rng) })
      : frameBytes({ type: "abort", reason: hostileText(rng) });
    await wire.write(message, rng);
    await expectClosingError(wire, Status.AUTH_REQUIRED, context);
    return false;
  }
  if (field === "field name" || field === "invalid mechanism") {
    const fields = field === "field name"
      ? { mechanism: "SCRAM-SHA-256", data: "", [hostileText(rng)]: 1 }
      : { mechanism: invalidText(rng), data: "" };
    await wire.write(jsonFrame(rng, "auth", fields), rng);
    await expectClosingError(wire, Status.BAD_REQUEST, context);
    return false;
  }
  if (field !== "scram user") {
    let data: Uint8Array;
    if (field === "scram garbage") data = encoder.encode(hostileText(rng, SCRAM_ROOM));
    else if (field === "scram gs2 header") {
      data = encoder.encode(`n${attributeText(rng, SCRAM_ROOM - 64)},,n=x,r=${nonce}`);
    } else data = withInvalidUtf8(rng, encoder.encode(clientFirst(attributeText(rng, SCRAM_ROOM - 64), INVALID_MARK)));
    await wire.write(frameBytes({ type: "auth", mechanism: "SCRAM-SHA-256", data }), rng);
    await expectClosingError(wire, Status.BAD_REQUEST, context);
    return false;
  }
  // A well-formed client-first for a hostile user name (or with a hostile extension): the server challenges it as
  // any unknown user, then refuses its client-final, well formed or not.
  const user = rng.chance(0.8) ? attributeText(rng, SCRAM_ROOM / 2) : "nobody";
  const extension = rng.chance(0.3) ? `,x=${attributeText(rng, SCRAM_ROOM / 2 - 64)}` : "";
  const first = encoder.encode(clientFirst(user, nonce, extension));
  await wire.write(frameBytes({ type: "auth", mechanism: "SCRAM-SHA-256", data: first }), rng);
  const challenge = await wire.expect("auth-continue", `${context}: client-first`);
  const serverNonce = /^r=([^,]+),/.exec(new TextDecoder().decode(challenge.data))?.[1];
  if (serverNonce === undefined || !serverNonce.startsWith(nonce)) {
    fail(`${context}: the challenge ${describe(challenge)} does not carry the nonce`);
  }
  const final = rng.pick(["wrong proof", "garbage", "not utf-8", "field name"] as const);
  count(ctx, `oversize-auth-scram-final-${final}`);
  const proof = rng.bytes(32).toBase64();
  if (final === "wrong proof") {
    const text = `c=biws,r=${serverNonce},x=${attributeText(rng, SCRAM_ROOM - 200)},p=${proof}`;
    await wire.write(frameBytes({ type: "auth-response", data: encoder.encode(text) }), rng);
    await wire.expectError(Status.AUTH_FAILED, `${context}: client-final with a wrong proof`);
    await expectQuietClose(wire, context);
    return false;
  }
  if (final === "field name") {
    await wire.write(jsonFrame(rng, "auth-response", { data: "", [hostileText(rng)]: 1 }), rng);
  } else {
    const text = final === "garbage"
      ? encoder.encode(hostileText(rng, SCRAM_ROOM))
      : withInvalidUtf8(rng, encoder.encode(`c=biws,r=${serverNonce},x=${INVALID_MARK},p=${proof}`));
    await wire.write(frameBytes({ type: "auth-response", data: text }), rng);
  }
  await expectClosingError(wire, Status.BAD_REQUEST, `${context}: client-final that is ${final}`);
  return false;
};

/** The pre-login shapes with oversized text, by weight, as rows of the fuzzer's table of pre-login actions. */
export const OVERSIZE_BEFORE_LOGIN: readonly (readonly [number, string, (ctx: SessionContext) => Promise<boolean>])[] =
  [
    [0.7, "oversize-hello", oversizeHello],
    [1.3, "oversize-auth", oversizeAuth],
  ];

/**
 * After login: one string field of one request filled with hostile text (or bytes that are not UTF-8), or an unknown
 * field named with it. Each is refused with the status the protocol gives it, and the session goes on, but for an
 * ABORT outside a body, which closes it.
 */
export const oversizeField: Action = async (ctx) => {
  const { rng, wire } = ctx;
  const field = rng.pick(
    [
      "put name",
      "get name",
      "delete name",
      "list prefix",
      "list after",
      "put digest",
      "field name",
      "not utf-8",
      "end digest",
      "abort reason",
      "error in body",
      "error",
      "abort",
      "hello agent",
      "auth mechanism",
    ] as const,
  );
  count(ctx, `oversize-${field.replace(" ", "-")}`);
  const context = `a request with a hostile ${field}`;
  const name = `fz/${ctx.index}/${ctx.step}-o-${rng.hex(8)}`;
  const body = rng.bytes(rng.between(0, 2000));
  const data = body.length > 0 ? [frameBytes({ type: "data", chunk: body })] : [];
  const end = frameBytes({ type: "end", size: body.length, algorithm: "crc32", digest: digestOf(body, "crc32") });
  // A field as long as hostile text gets, or filled up so that its frame is exactly as long as a control frame may be.
  const filled = (build: (text: string) => Uint8Array): Uint8Array => {
    const text = hostileText(rng);
    const frame = build(text);
    const room = MAX_CONTROL_LENGTH - 1 - (frame.length - FRAME_HEADER_BYTES);
    return room > 0 && rng.chance(0.3) ? build(text + "w".repeat(room)) : frame;
  };
  let bytes: Uint8Array;
  let code: number | "listing" = Status.BAD_REQUEST;
  switch (field) {
    case "put name": {
      // The body is sent anyway, as a client would: the server drops it.
      const put = filled((text) => frameBytes({ type: "put", name: text, size: body.length, digest: "crc32" }));
      bytes = concat([put, ...data, end]);
      code = Status.BAD_NAME;
      break;
    }
    case "get name":
      bytes = filled((text) => frameBytes({ type: "get", name: text, limit: null, digest: "crc32" }));
      code = Status.BAD_NAME;
      break;
    case "delete name":
      bytes = filled((text) => frameBytes({ type: "delete", name: text }));
      code = Status.BAD_NAME;
      break;
    case "list prefix":
      bytes = filled((text) => frameBytes({ type: "list", prefix: text, after: "" }));
      code = "listing";
      break;
    case "list after":
      bytes = frameBytes({ type: "list", prefix: `fz/${ctx.index}/`, after: hostileText(rng) });
      code = "listing";
      break;
    case "put digest":
      bytes = filled((text) => jsonFrame(rng, "put", { name, size: 0, digest: text }));
      code = Status.UNSUPPORTED;
      break;
    case "field name": {
      const type = rng.pick(["put", "get", "delete", "list"] as const);
      const fields = {
        put: { name, size: 0, digest: "crc32" },
        get: { name, limit: null, digest: "crc32" },
        delete: { name },
        list: { prefix: "", after: "" },
      }[type];
      bytes = filled((text) => jsonFrame(rng, type, { ...fields, [text]: 1 }));
      break;
    }
    case "not utf-8": {
      const type = rng.pick(["put", "get", "delete", "list"] as const);
      const text = invalidText(rng);
      const fields = {
        put: { name: text, size: 0, digest: "crc32" },
        get: { name: text, limit: null, digest: "crc32" },
        delete: { name: text },
        list: { prefix: text, after: "" },
      }[type];
      bytes = jsonFrame(rng, type, fields);
      break;
    }
    case "end digest":
    case "abort reason":
    case "error in body": {
      const put = frameBytes({ type: "put", name, size: null, digest: "crc32" });
      const last = field === "end digest"
        ? frameBytes({ type: "end", size: body.length, algorithm: "crc32", digest: hostileText(rng) })
        : field === "abort reason"
        ? frameBytes({ type: "abort", reason: hostileText(rng) })
        : frameBytes({
          type: "error",
          code: rng.pick([Status.BAD_REQUEST, Status.INTEGRITY]),
          message: hostileText(rng),
        });
      ctx.ledger.refused.add(key(ctx, name));
      bytes = concat([put, ...data, last]);
      code = field === "end digest" ? Status.INTEGRITY : field === "abort reason" ? Status.ABORTED : Status.BAD_REQUEST;
      break;
    }
    case "error":
      bytes = frameBytes({ type: "error", code: Status.NOT_FOUND, message: hostileText(rng) });
      break;
    case "abort":
      await servedRequest(ctx);
      await wire.write(frameBytes({ type: "abort", reason: hostileText(rng) }), rng);
      await expectClosingError(wire, Status.BAD_REQUEST, context);
      return false;
    case "hello agent":
      bytes = frameBytes({ type: "hello", protocol: "dfos", version: 1, agent: hostileText(rng) });
      break;
    case "auth mechanism":
      bytes = frameBytes({ type: "auth", mechanism: hostileText(rng), data: rng.bytes(16) });
      break;
  }
  try {
    await wire.write(bytes, rng);
    if (code === "listing") {
      const listing = await wire.expect("listing", context);
      if (field === "list prefix" && listing.entries.length > 0) {
        fail(`${context}: ${listing.entries.length} names start with a prefix that holds a control character`);
      }
    } else {
      await wire.expectError(code, context);
      // Refused, perhaps before it could be read (the server then takes body frames that follow as its own).
      ctx.unread = true;
    }
  } catch (error) {
    if (error instanceof FuzzFailure && !error.message.startsWith(context)) {
      error.message = `${context}: ${error.message}`;
    }
    throw error;
  }
  return true;
};

/**
 * A peer that logs in (as its own user) and stops reading: it pipelines many small requests without reading a
 * reply, or starts a download and stops, or says nothing; then it is quiet. The server must close it within
 * {@linkcode QUIET_BOUND_MS}: the check runs beside the other sessions ({@linkcode SessionContext.background}).
 */
export async function stallSession(ctx: SessionContext): Promise<void> {
  const { rng } = ctx;
  // One of three users of their own: the per-user cap is not what is tried here.
  ctx.user = rng.pick(["stall-a", "stall-b", "stall-c"]);
  ctx.password = SHAPE_USERS[ctx.user];
  const how = rng.weighted([[2, "replies"], [2, "mixed"], [2, "download"], [1, "idle"]] as const);
  count(ctx, `stall-${how}`);
  await login(ctx);
  const { wire } = ctx;
  const folder = `fz/${ctx.index}/`;
  const long = `fz/long-names/`;
  let requests = 0;
  if (how === "download") {
    const name = await putStallFile(ctx, `${folder}big`, rng.between(STALL_VOLUME, STALL_VOLUME + 2 * MiB));
    await wire.write(frameBytes({ type: "get", name, limit: null, digest: "crc32" }), rng);
    await wire.expect("file", "the non-reading peer's download");
    for (let i = rng.below(8); i > 0; i--) await wire.receive(); // a few pieces of the body, at most
    requests = 1;
  } else if (how !== "idle") {
    // Replies without a body ("replies": listings, deletes of missing names) or with small ones ("mixed": downloads
    // of a small file too), enough to fill both sockets' buffers. A listing is a page of ~64 KiB: the folder listed
    // holds names as long as names may be (made once per user).
    await putLongNames(ctx, long);
    const small = how === "mixed" ? await putStallFile(ctx, `${folder}small`, rng.between(1, 16 * KiB)) : null;
    const pipeline: Uint8Array[] = [];
    for (let volume = 0; volume < PIPELINE_VOLUME; requests++) {
      const what = rng.weighted([[3, "list"], [1, "delete"], [small === null ? 0 : 2, "get"]] as const);
      if (what === "list") {
        pipeline.push(frameBytes({ type: "list", prefix: long, after: "" }));
        volume += 60 * KiB;
      } else if (what === "delete") {
        pipeline.push(frameBytes({ type: "delete", name: `${folder}missing-${requests}` }));
      } else {
        pipeline.push(frameBytes({ type: "get", name: small!, limit: null, digest: "crc32" }));
        volume += 16 * KiB;
      }
    }
    await wire.write(concat(pipeline), rng);
  }
  // Each request served may be logged (a performance line of a logged-in user's own work): the uploads, and as many
  // requests as fill the buffers before the server waits (most replies are 16 KiB or more).
  const served = Math.min(requests, 1000) + (how === "download" ? 1 : LONG_NAMES);
  ctx.counts.set(STALL_REQUESTS, (ctx.counts.get(STALL_REQUESTS) ?? 0) + served);
  const quiet = performance.now();
  ctx.background((async () => {
    const context = `a peer that stopped reading (${how}, ${requests} requests)`;
    while (!await wire.closedByServer()) {
      if (performance.now() - quiet > QUIET_BOUND_MS) {
        fail(`${context}: still open ${QUIET_BOUND_MS} ms after it went quiet`);
      }
      await sleep(CLOSE_POLL_MS);
    }
    stallCloses.push(performance.now() - quiet);
    const drained = await wire.drain(DRAIN_MS);
    if (how === "idle") {
      if (drained.replies !== 0 || drained.closing === null) {
        fail(`${context}: expected ERROR BAD_REQUEST (idle) and the close, got ${drained.replies} other replies`);
      }
    } else {
      // Cut off mid-reply (the op timeout), or every reply fitted in the sockets' buffers and the idle timeout closed it.
      count(ctx, drained.replies < requests ? "stall-cut" : "stall-all-sent");
    }
  })());
}

/** Uploads `size` random bytes as `name` for a non-reading peer, whole; returns the name. */
async function putStallFile(ctx: SessionContext, name: string, size: number): Promise<string> {
  const body = ctx.rng.bytes(size);
  const frames: Uint8Array[] = [frameBytes({ type: "put", name, size, digest: "crc32" })];
  for (let offset = 0; offset < size; offset += MiB) {
    frames.push(frameBytes({ type: "data", chunk: body.subarray(offset, offset + MiB) }));
  }
  frames.push(frameBytes({ type: "end", size, algorithm: "crc32", digest: digestOf(body, "crc32") }));
  ctx.ledger.sentWhole.add(sha256(body));
  await ctx.wire.write(concat(frames), ctx.rng);
  await ctx.wire.expect("ok", `the non-reading peer's upload of ${size} bytes`);
  ctx.ledger.confirmed.set(key(ctx, name), sha256(body));
  return name;
}

/** The count (in the run's counts) of the requests the non-reading peers sent, uploads included. */
export const STALL_REQUESTS = "stall-requests";

/** Names per folder of a non-reading peer: a listing page of them is about 64 KiB. */
const LONG_NAMES = 230;

/** The users (by server port) whose folder of long names is made, or being made. */
const longNamesMade = new Set<string>();

/** Empty files under `folder` whose names are 240 bytes long, uploaded in one write, once per user and server. */
async function putLongNames(ctx: SessionContext, folder: string): Promise<void> {
  if (longNamesMade.has(`${ctx.port}/${ctx.user}`)) return;
  longNamesMade.add(`${ctx.port}/${ctx.user}`);
  const empty = new Uint8Array(0);
  const end = frameBytes({ type: "end", size: 0, algorithm: "crc32", digest: digestOf(empty, "crc32") });
  const names = Array.from({ length: LONG_NAMES }, (_, i) => `${folder}${i}-`.padEnd(240, "x"));
  await ctx.wire.write(
    concat(names.flatMap((name) => [frameBytes({ type: "put", name, size: 0, digest: "crc32" }), end])),
    ctx.rng,
  );
  ctx.ledger.sentWhole.add(sha256(empty));
  for (const name of names) {
    await ctx.wire.expect("ok", "the non-reading peer's upload of an empty file");
    ctx.ledger.confirmed.set(key(ctx, name), sha256(empty));
  }
}

/** How one login of a burst ended. */
type BurstOutcome = "ok" | "failed" | "busy" | "locked-out";

/**
 * A burst of connections logging in at once from the one address, with SCRAM, right and wrong passwords mixed
 * (as the burst user, or as users that do not exist, one named with a forged log line).
 */
export async function loginBurst(ctx: SessionContext): Promise<void> {
  const { rng } = ctx;
  const size = rng.between(6, 32);
  const wrongShare = rng.pick([0, 0.3, 0.7, 1]);
  const members = Array.from({ length: size }, (_, i) => {
    const memberRng = new Random(rng.uint32());
    const right = !memberRng.chance(wrongShare);
    const user = right ? "burst" : memberRng.pick(["burst", "burst", `nobody-${memberRng.hex(6)}`, `x${FORGED_LINE}`]);
    const password = right ? SHAPE_USERS.burst : `wrong-${memberRng.hex(8)}`;
    return { i, rng: memberRng, right, user, password };
  });
  const outcomes = await Promise.all(members.map(async (member) => {
    const wire = await Wire.open(ctx.port);
    const what = `burst login ${member.i} of ${size} (${member.right ? "right" : "wrong"} password for ` +
      `${JSON.stringify(excerpt(member.user))})`;
    try {
      return await deadline(burstLogin(wire, member), BURST_LOGIN_MS, `end of ${what}`, () => wire.cut());
    } catch (error) {
      if (error instanceof Error) error.message = `${what}: ${error.message}`;
      throw error;
    } finally {
      wire.cut();
    }
  }));
  for (const outcome of outcomes) count(ctx, `burst-${outcome}`);
}

async function burstLogin(
  wire: Wire,
  member: { rng: Random; right: boolean; user: string; password: string },
): Promise<BurstOutcome> {
  const scram = scramMechanism({ user: member.user, password: member.password });
  try {
    const hello = frameBytes(HELLO);
    const auth = frameBytes({ type: "auth", mechanism: scram.name, data: await scram.start() });
    await wire.write(concat([hello, auth]), member.rng);
    await wire.expect("welcome", "HELLO");
    const challenge = await wire.expect("auth-continue", "login");
    await wire.write(frameBytes({ type: "auth-response", data: await scram.step(challenge.data) }), member.rng);
    const reply = await wire.receive();
    if (reply?.type === "auth-ok") {
      if (!member.right) fail(`a wrong password logged in: ${describe(reply)}`);
      await scram.finish(reply.data);
      await wire.write(frameBytes({ type: "list", prefix: "", after: "" }), member.rng);
      await wire.expect("listing", "LIST after a burst login");
      await expectQuietClose(wire, "a burst login");
      return "ok";
    }
    if (reply?.type === "error" && reply.code === Status.AUTH_FAILED) {
      if (member.right) fail(`a right password was refused: ${describe(reply)}`);
      return "failed";
    }
    return fail(`expected AUTH-OK or AUTH_FAILED, got ${describe(reply)}`);
  } catch (error) {
    if (error instanceof Refused) return error.kind;
    throw error;
  }
}
