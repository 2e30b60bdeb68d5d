/**
 * The typed messages of the dfos protocol and their encoding into frames.
 *
 * Each message is one frame. The frame's type byte says which message it is;
 * DATA carries raw bytes, every other message a UTF-8 JSON object whose
 * fields are checked exactly: a missing, mistyped or unknown field is a
 * protocol error. {@linkcode REPLIES} says which replies each request may
 * get. docs/PROTOCOL.md lists the same tables; a test compares them.
 *
 * @module
 */

import { decodeBase64, encodeBase64 } from "./base64.ts";
import { type Frame, MAX_DATA_PAYLOAD } from "./frames.ts";
import { excerpt } from "./names.ts";
import { type Bytes, bytesOf } from "./pooled_bytes.ts";
import { DfosError, isStatusCode, Status, type StatusCode } from "./status.ts";

/** The protocol version this code speaks. */
export const PROTOCOL_VERSION = 1;

/** The largest frame length accepted for any message but DATA: the type byte and a payload of at most 65,535 bytes. */
export const MAX_CONTROL_LENGTH = 64 * 1024;

/** Check algorithms a body's END frame may name (shared/digest.ts says what each is for). */
export const DIGEST_ALGORITHMS = ["crc32", "sha256"] as const;

/** A digest algorithm's name. */
export type DigestAlgorithm = typeof DIGEST_ALGORITHMS[number];

/** One file in a listing. */
export interface ListEntry {
  /** The remote name. */
  name: string;
  /** Size in bytes. */
  size: number;
  /** Modification time, milliseconds since the Unix epoch. */
  mtime: number;
}

/**
 * Every message, by its `type`. A DATA chunk is plain bytes or `PooledBytes`
 * (shared/pooled_bytes.ts), whose hold goes with the message to its consumer.
 */
export type Message =
  | { type: "hello"; protocol: "dfos"; version: number; agent: string; features?: string[] }
  | { type: "welcome"; version: number; agent: string; mechanisms: string[]; features?: string[] }
  | { type: "auth"; mechanism: string; data: Uint8Array }
  | { type: "auth-continue"; data: Uint8Array }
  | { type: "auth-response"; data: Uint8Array }
  | { type: "auth-ok"; user: string; data: Uint8Array; held?: number }
  | { type: "put"; name: string; size: number | null; digest: DigestAlgorithm }
  | { type: "get"; name: string; limit: number | null; digest: DigestAlgorithm }
  | { type: "delete"; name: string; ifRoot?: string }
  | { type: "list"; prefix: string; after: string }
  | { type: "move"; from: string; to: string; ifRoot?: string }
  | { type: "stat"; name: string; digest: DigestAlgorithm | null }
  | { type: "changes"; since?: number; epoch?: string; prefix?: string }
  | { type: "have"; keys: Uint8Array; name?: string; root?: string }
  | {
    type: "assemble";
    name: string;
    size: number;
    mtime: number;
    root: string;
    chunks: number;
    base?: string;
    ifRoot?: string | null;
  }
  | { type: "groups"; name: string }
  | { type: "group-chunks"; name: string; version: string; first: number; count: number }
  | { type: "read"; name: string; version: string; ranges: Uint8Array }
  | { type: "sums"; name: string; version: string; block: number; ranges: Uint8Array }
  | { type: "delta"; name: string; version: string; block: number; ranges: Uint8Array; bases: Uint8Array }
  | { type: "watch"; epoch: string; since: number; prefix: string; wait: number }
  | { type: "data"; chunk: Bytes }
  | { type: "end"; size: number; algorithm: DigestAlgorithm; digest: string }
  | { type: "abort"; reason: string }
  | { type: "file"; name: string; size: number; mtime: number }
  | { type: "ok"; name: string; size: number }
  | { type: "listing"; entries: ListEntry[]; next: string | null }
  | { type: "moved"; from: string; to: string; files: number }
  | { type: "info"; name: string; size: number; mtime: number; digest: string | null }
  | { type: "counter"; epoch: string; counter: number; mine: number; changed?: ListEntry[]; gone?: string[] }
  | { type: "known"; bits: Uint8Array }
  | { type: "sum-list"; count: number }
  | { type: "delta-list"; count: number }
  | {
    type: "group-list";
    name: string;
    size: number;
    mtime: number;
    version: string;
    root: string;
    count: number;
  }
  | { type: "chunk-list"; count: number }
  | { type: "error"; code: StatusCode; message: string };

/** A message's `type`. */
export type MessageType = Message["type"];

/** The message whose `type` is `T`. */
export type MessageOf<T extends MessageType> = Extract<Message, { type: T }>;

/** Frame type byte of each message. These numbers are part of the protocol. */
export const MESSAGE_CODES: Readonly<Record<MessageType, number>> = {
  "hello": 0x01,
  "auth": 0x02,
  "auth-response": 0x03,
  "put": 0x10,
  "get": 0x11,
  "delete": 0x12,
  "list": 0x13,
  "move": 0x14,
  "stat": 0x15,
  "changes": 0x16,
  "have": 0x17,
  "assemble": 0x18,
  "groups": 0x19,
  "group-chunks": 0x1a,
  "read": 0x1b,
  "sums": 0x1c,
  "delta": 0x1d,
  "watch": 0x1e,
  "data": 0x20,
  "end": 0x21,
  "abort": 0x22,
  "welcome": 0x81,
  "auth-continue": 0x82,
  "auth-ok": 0x83,
  "ok": 0x84,
  "error": 0x85,
  "file": 0x86,
  "listing": 0x87,
  "moved": 0x88,
  "info": 0x89,
  "counter": 0x8a,
  "known": 0x8b,
  "group-list": 0x8c,
  "chunk-list": 0x8d,
  "sum-list": 0x8e,
  "delta-list": 0x8f,
};

/** The messages a client sends that the server answers. */
export type RequestType =
  | "hello"
  | "auth"
  | "auth-response"
  | "put"
  | "get"
  | "delete"
  | "list"
  | "move"
  | "stat"
  | "changes"
  | "have"
  | "assemble"
  | "groups"
  | "group-chunks"
  | "read"
  | "sums"
  | "delta"
  | "watch";

/** What a request may be answered with: {@linkcode REPLIES}. */
export interface Replies {
  /** The messages that answer it when it succeeds. */
  replies: readonly MessageType[];
  /** The status codes of an ERROR that may answer it instead, by name; `"any"` for any code. */
  errors: readonly (keyof typeof Status)[] | "any";
}

/**
 * The replies each request may get: the client waits for exactly these
 * (client/connection.ts), and docs/PROTOCOL.md's "answered by" column says
 * the same (a test compares them). DATA, END and ABORT are parts of a body
 * and get no answer of their own.
 */
export const REPLIES = {
  "hello": { replies: ["welcome"], errors: ["VERSION", "BAD_REQUEST"] },
  // BUSY: the user's per-user cap is reached (in place of auth-ok).
  "auth": { replies: ["auth-continue", "auth-ok"], errors: ["AUTH_FAILED", "BAD_REQUEST", "UNSUPPORTED", "BUSY"] },
  "auth-response": {
    replies: ["auth-continue", "auth-ok"],
    errors: ["AUTH_FAILED", "BAD_REQUEST", "UNSUPPORTED", "AUTH_REQUIRED", "BUSY"],
  },
  "put": { replies: ["ok"], errors: "any" },
  "get": { replies: ["file"], errors: "any" },
  "delete": { replies: ["ok"], errors: "any" },
  "list": { replies: ["listing"], errors: "any" },
  "move": { replies: ["moved"], errors: "any" },
  "stat": { replies: ["info"], errors: "any" },
  "changes": { replies: ["counter"], errors: "any" },
  "have": { replies: ["known"], errors: "any" },
  "assemble": { replies: ["ok"], errors: "any" },
  "groups": { replies: ["group-list"], errors: "any" },
  "group-chunks": { replies: ["chunk-list"], errors: "any" },
  "read": { replies: ["file"], errors: "any" },
  "sums": { replies: ["sum-list"], errors: "any" },
  "delta": { replies: ["delta-list"], errors: "any" },
  "watch": { replies: ["counter"], errors: "any" },
} as const satisfies Readonly<Record<RequestType, Replies>>;

const TYPES_BY_CODE = new Map<number, MessageType>(
  Object.entries(MESSAGE_CODES).map(([type, code]) => [code, type as MessageType]),
);

/** Field kinds the JSON messages use. */
export type FieldKind =
  | "string"
  | "string?"
  | "size"
  | "size?"
  | "bytes"
  | "strings"
  | "entries"
  | "code"
  | "algorithm"
  | "algorithm?";

/** The JSON fields of every message but DATA, in wire order, with their kinds. */
export const MESSAGE_FIELDS: Readonly<Record<Exclude<MessageType, "data">, Readonly<Record<string, FieldKind>>>> = {
  "hello": { protocol: "string", version: "size", agent: "string" },
  "welcome": { version: "size", agent: "string", mechanisms: "strings" },
  "auth": { mechanism: "string", data: "bytes" },
  "auth-continue": { data: "bytes" },
  "auth-response": { data: "bytes" },
  "auth-ok": { user: "string", data: "bytes" },
  "put": { name: "string", size: "size?", digest: "algorithm" },
  "get": { name: "string", limit: "size?", digest: "algorithm" },
  "delete": { name: "string" },
  "list": { prefix: "string", after: "string" },
  "move": { from: "string", to: "string" },
  "stat": { name: "string", digest: "algorithm?" },
  "changes": {},
  "have": { keys: "bytes" },
  "assemble": { name: "string", size: "size", mtime: "size", root: "string", chunks: "size" },
  "groups": { name: "string" },
  "group-chunks": { name: "string", version: "string", first: "size", count: "size" },
  "read": { name: "string", version: "string", ranges: "bytes" },
  "sums": { name: "string", version: "string", block: "size", ranges: "bytes" },
  "delta": { name: "string", version: "string", block: "size", ranges: "bytes", bases: "bytes" },
  "watch": { epoch: "string", since: "size", prefix: "string", wait: "size" },
  "end": { size: "size", algorithm: "algorithm", digest: "string" },
  "abort": { reason: "string" },
  "file": { name: "string", size: "size", mtime: "size" },
  "ok": { name: "string", size: "size" },
  "listing": { entries: "entries", next: "string?" },
  "moved": { from: "string", to: "string", files: "size" },
  "info": { name: "string", size: "size", mtime: "size", digest: "string?" },
  "error": { code: "code", message: "string" },
  "counter": { epoch: "string", counter: "size", mine: "size" },
  "known": { bits: "bytes" },
  "group-list": { name: "string", size: "size", mtime: "size", version: "string", root: "string", count: "size" },
  "chunk-list": { count: "size" },
  "sum-list": { count: "size" },
  "delta-list": { count: "size" },
};

/**
 * Fields a message may carry or leave out, added to the protocol after its
 * first version: a peer that does not know one never receives it. A client
 * lists the features it understands in HELLO's `features` (absent: none),
 * and the server sends such a field only to a client that listed it.
 *
 * - `hello.features`: `"held"`, the client understands `auth-ok.held`.
 * - `auth-ok.held`: milliseconds the server held this answer after failed
 *   logins from the client's address or on the user name (absent: not held).
 * - `welcome.features`: sent to a client that listed `"chunks"`: the features
 *   of that list the server has (today `"chunks"`: the chunk requests,
 *   `changes` to `read`, docs/PROTOCOL.md "Chunks").
 * - `have.name`, `have.root`: the upload the keys are asked for; a kept
 *   upload's chunks are then known only to the upload of that name and root
 *   (the one that can continue it).
 * - `welcome.features` `"deltas"`: sent to a client that listed it: the
 *   server has `sums` and the recipe's patch step (docs/PROTOCOL.md
 *   "Deltas"). `assemble.base`: the version of the file of that name the
 *   recipe's patch steps copy from.
 * - `changes.since`, `changes.epoch`, `changes.prefix`: the counter the
 *   client saw, and the names it cares about; `counter.changed` and
 *   `counter.gone` answer them (only to a `changes` that carried `since`,
 *   and only when the server can say): the files under the prefix changed
 *   since, with their facts now, and the names changed that are gone.
 * - `welcome.features` `"sync"`: sent to a client that listed it: the server
 *   takes the conditions below and answers `watch` (docs/PROTOCOL.md "Sync").
 *   `assemble.ifRoot`: store only if the file's content now has this root
 *   (null: only if there is no file of that name); `delete.ifRoot`,
 *   `move.ifRoot`: remove or move only a file whose content has this root.
 *   Otherwise `CONFLICT`, and nothing changes.
 */
export const OPTIONAL_FIELDS: Readonly<
  Partial<Record<Exclude<MessageType, "data">, Readonly<Record<string, FieldKind>>>>
> = {
  "hello": { features: "strings" },
  "auth-ok": { held: "size" },
  "welcome": { features: "strings" },
  "have": { name: "string", root: "string" },
  "assemble": { base: "string", ifRoot: "string?" },
  "delete": { ifRoot: "string" },
  "move": { ifRoot: "string" },
  "changes": { since: "size", epoch: "string", prefix: "string" },
  "counter": { changed: "entries", gone: "strings" },
};

/** The HELLO feature that asks for `auth-ok.held`. */
export const FEATURE_HELD = "held";

/** The HELLO feature that asks whether the server has the chunk requests; its WELCOME then lists it in `features`. */
export const FEATURE_CHUNKS = "chunks";

/** The HELLO feature that asks whether the server has the delta requests (`sums`, the patch step). */
export const FEATURE_DELTAS = "deltas";

/** The HELLO feature that asks whether the server takes `ifRoot` conditions and answers `watch` (`dfos sync`). */
export const FEATURE_SYNC = "sync";

/** The most keys one HAVE may ask about (32 bytes each). */
export const MAX_HAVE_KEYS = 1024;

/** The most ranges one READ may ask for (12 bytes each). */
export const MAX_READ_RANGES = 2048;

/** The longest a WATCH is held, in milliseconds: a longer `wait` is cut to this (the server may cut it more). */
export const MAX_WATCH_MS = 60_000;

/** The most old bytes one `sums` may cover, all its ranges together (and the bases of one `delta`). */
export const MAX_SUMS_BYTES = 16 * 1024 * 1024;

/** The most new bytes one `delta` may describe, all its ranges together: the server rolls a sum over each byte. */
export const MAX_DELTA_BYTES = 8 * 1024 * 1024;

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/**
 * Encodes a message as a frame.
 *
 * @param message The message.
 * @returns The frame; for DATA its payload is the chunk itself.
 */
export function encodeMessage(message: Message): Frame {
  const type = MESSAGE_CODES[message.type];
  if (message.type === "data") return { type, payload: message.chunk };
  const fields = MESSAGE_FIELDS[message.type];
  const json: Record<string, unknown> = {};
  for (const [field, kind] of Object.entries(fields)) {
    const value = (message as unknown as Record<string, unknown>)[field];
    json[field] = kind === "bytes" ? encodeBase64(value as Uint8Array) : value;
  }
  for (const field of Object.keys(OPTIONAL_FIELDS[message.type] ?? {})) {
    const value = (message as unknown as Record<string, unknown>)[field];
    if (value !== undefined) json[field] = value;
  }
  return { type, payload: encoder.encode(JSON.stringify(json)) };
}

/**
 * Decodes a frame into a message, checking every field.
 *
 * @param frame The frame.
 * @returns The message.
 * @throws {DfosError} `UNSUPPORTED` for an unknown type byte, `BAD_REQUEST`
 * for a payload that is not the message's exact JSON shape, `TOO_LARGE` for a
 * DATA payload above {@linkcode MAX_DATA_PAYLOAD} or a control payload above
 * {@linkcode MAX_CONTROL_LENGTH}.
 */
export function decodeMessage(frame: Frame): Message {
  const type = TYPES_BY_CODE.get(frame.type);
  if (type === undefined) {
    throw new DfosError(Status.UNSUPPORTED, `Cannot decode message: unknown type 0x${hex(frame.type)}`);
  }
  if (type === "data") {
    if (frame.payload.length > MAX_DATA_PAYLOAD) {
      throw new DfosError(
        Status.TOO_LARGE,
        `Cannot decode DATA: ${frame.payload.length} bytes exceeds ${MAX_DATA_PAYLOAD}`,
      );
    }
    return { type, chunk: frame.payload };
  }
  if (frame.payload.length + 1 > MAX_CONTROL_LENGTH) {
    throw new DfosError(
      Status.TOO_LARGE,
      `Cannot decode ${type}: ${frame.payload.length} bytes exceeds ${MAX_CONTROL_LENGTH}`,
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(decoder.decode(bytesOf(frame.payload)));
  } catch {
    throw badShape(type, "payload is not UTF-8 JSON");
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw badShape(type, "payload is not a JSON object");
  }
  const fields = MESSAGE_FIELDS[type];
  const optional = OPTIONAL_FIELDS[type] ?? {};
  const record = json as Record<string, unknown>;
  for (const key of Object.keys(record)) {
    if (!Object.hasOwn(fields, key) && !Object.hasOwn(optional, key)) {
      throw badShape(type, `unknown field "${excerpt(key)}"`);
    }
  }
  const message: Record<string, unknown> = { type };
  for (const [field, kind] of Object.entries(fields)) {
    if (!Object.hasOwn(record, field)) throw badShape(type, `field "${field}" is missing`);
    message[field] = checkField(type, field, kind, record[field]);
  }
  for (const [field, kind] of Object.entries(optional)) {
    if (Object.hasOwn(record, field)) message[field] = checkField(type, field, kind, record[field]);
  }
  return message as Message;
}

function checkField(type: MessageType, field: string, kind: FieldKind, value: unknown): unknown {
  switch (kind) {
    case "string":
      if (typeof value === "string") return value;
      break;
    case "string?":
      if (value === null || typeof value === "string") return value;
      break;
    case "size":
      if (isSize(value)) return value;
      break;
    case "size?":
      if (value === null || isSize(value)) return value;
      break;
    case "code":
      if (typeof value === "number" && isStatusCode(value)) return value;
      if (typeof value === "number" && Number.isInteger(value)) return Status.INTERNAL;
      break;
    case "strings":
      if (Array.isArray(value) && value.every((item) => typeof item === "string")) return value;
      break;
    case "bytes":
      if (typeof value === "string") {
        const bytes = decodeBase64(value);
        if (bytes !== null) return bytes;
      }
      break;
    case "algorithm?":
      if (value === null) return value;
      // falls through: a named algorithm is checked as one
    case "algorithm":
      if (typeof value === "string" && (DIGEST_ALGORITHMS as readonly string[]).includes(value)) return value;
      if (typeof value === "string") {
        throw new DfosError(
          Status.UNSUPPORTED,
          `Cannot check body: digest algorithm "${excerpt(value)}" is not supported`,
        );
      }
      break;
    case "entries":
      if (Array.isArray(value) && value.every(isListEntry)) return value;
      break;
  }
  throw badShape(type, `field "${field}" is not a valid ${kind.replace("?", " or null")}`);
}

function isSize(value: unknown): value is number {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 0;
}

function isListEntry(value: unknown): value is ListEntry {
  if (typeof value !== "object" || value === null) return false;
  const entry = value as Record<string, unknown>;
  return Object.keys(entry).length === 3 && typeof entry.name === "string" &&
    isSize(entry.size) && isSize(entry.mtime);
}

function badShape(type: MessageType, detail: string): DfosError {
  return new DfosError(Status.BAD_REQUEST, `Cannot decode ${type}: ${detail}`);
}

function hex(byte: number): string {
  return byte.toString(16).padStart(2, "0");
}
