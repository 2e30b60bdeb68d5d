/**
 * `HANDLERS`: one row per request message, what it does and what it needs.
 * A row says whether the client sends a body after the request (`receives`:
 * its announced length and check) and whether the reply is followed by a
 * body (`sends`: the handler returns it in `Reply.body`). A handler returns
 * its one reply; the session sends it, and the body after it, so "exactly one
 * reply per request" holds by construction.
 *
 * A new request type is its message in `shared/messages.ts`, one row here
 * (its key is the message type; `RequestType` follows) and its line in
 * docs/PROTOCOL.md: the session serves every row alike. The kinds of
 * operation the server counts and logs are the rows' `kinds`
 * ({@linkcode OPERATION_KINDS}): a new kind is named in its row only.
 *
 * @module
 */

import type { BodyReceiver } from "../shared/body.ts";
import {
  type DigestAlgorithm,
  type ListEntry,
  MAX_CONTROL_LENGTH,
  MAX_HAVE_KEYS,
  MAX_READ_RANGES,
  type Message,
  type MessageOf,
  type MessageType,
} from "../shared/messages.ts";
import {
  bitsOf,
  CHUNK_ENTRY_BYTES,
  decodeRanges,
  encodeChunkEntries,
  encodeGroupEntries,
  splitKeys,
} from "../shared/chunk_list.ts";
import { groupsOf, rootOf } from "../shared/chunk_groups.ts";
import { createDigest } from "../shared/digest.ts";
import { excerpt, nameProblem } from "../shared/names.ts";
import { type Bytes, bytesOf, release } from "../shared/pooled_bytes.ts";
import { DfosError, Status } from "../shared/status.ts";
import { assemble, type ChunkState } from "./assemble.ts";
import { type ChunkSource, SourceCheck } from "./chunk_index.ts";
import { chunkListOf } from "./chunk_lists.ts";
import { changesSince } from "./changes_since.ts";
import { versionCondition } from "./conditions.ts";
import { sumsOf } from "./sums.ts";
import { checkDelta, deltaOf } from "./deltas.ts";
import { SUM_BYTES } from "../shared/block_delta.ts";
import type { Quota } from "./quota.ts";
import type { ReadHandle, Storage, Upload, VersionedInfo } from "./storage.ts";
import { watch } from "./watch.ts";

/** What a handler is given. */
export interface Request<T extends MessageType> {
  /** The request message. */
  message: MessageOf<T>;
  /** The authenticated user. */
  user: string;
  /** Where the user's files are. */
  storage: Storage;
  /**
   * The body the client sends after the request, for a row that
   * `receives` one (null otherwise). Whatever the handler leaves unread is
   * dropped by the session once the reply is sent.
   */
  body: BodyReceiver | null;
  /** The server's limits. */
  limits: RequestLimits;
  /** The chunk indexes and kept uploads' quota holds, shared by the server's sessions. */
  chunks: ChunkState;
  /** The session's own changes: a handler adds one for each change it made to the user's files (`changes.mine`). */
  mine: { changes: number };
  /**
   * Aborted when the request is to be answered at once: the server is
   * draining or closing the connection, or (a row that `waits`) the client
   * sent something more or hung up. Only a request that waits looks at it.
   */
  signal: AbortSignal;
}

/** The server's limits, as the handlers apply them. */
export interface RequestLimits {
  /**
   * The longest name an upload may create, in UTF-8 bytes; at most
   * `MAX_NAME_BYTES`. Files of longer names, stored before the limit was
   * lowered, can still be read, listed and deleted.
   */
  maxNameBytes: number;
  /** Entries at most per LISTING page (it is also cut to fit a control frame). */
  listPageEntries: number;
  /** The per-user quota and the largest file. */
  quota: Quota;
  /** The longest a `watch` is held, in milliseconds (server/watch.ts, `longestWatch`). */
  maxWatchMs: number;
}

/** A body a request announces: what the client will send after it. */
export interface IncomingBody {
  /** Its length, or null when not known in advance; a body of another length is refused. */
  size: number | null;
  /** The check END must carry. */
  algorithm: DigestAlgorithm;
}

/** A body to send after the reply. */
export interface OutgoingBody {
  /** The bytes, in order; pooled ones are released once sent. */
  chunks: AsyncIterable<Bytes>;
  /** Its length, as the reply announced it. */
  size: number;
  /** The check END carries. */
  algorithm: DigestAlgorithm;
  /** Frees what the body is read from; the session calls it once the body is sent or has failed. */
  close(): void;
}

/** What a handler answers. */
export interface Reply {
  /** The reply message. */
  message: Message;
  /** The body that follows the message, for a row that `sends` one. */
  body?: OutgoingBody;
}

/** One row of the handler table. */
export interface HandlerRow<T extends MessageType> {
  /** Handles one request. */
  handle: (request: Request<T>) => Promise<Reply>;
  /** For a request the client follows with a body (DATA frames and END): the body it announces. */
  receives?: (message: MessageOf<T>) => IncomingBody;
  /** True when the reply is followed by a body (`Reply.body`). */
  sends: boolean;
  /**
   * True for a request the server holds until something happens (`watch`):
   * while it is held the session reads on, and anything the client sends
   * (or its hanging up) aborts the request's `signal`.
   */
  waits?: boolean;
  /** The kinds of operation the row counts and logs under (the server's totals show each, 0 too). */
  kinds: readonly string[];
  /** How this request is counted and logged: one of `kinds`. */
  kind: (message: MessageOf<T>) => string;
  /** What the request is about, for the log: a file's name, a listing's prefix. */
  subject: (message: MessageOf<T>) => string;
}

/** Entries at most per LISTING page by default, whatever their size. */
export const LIST_PAGE_ENTRIES = 1000;

/** Room kept free in a LISTING frame for the JSON around the entries. */
const LIST_PAGE_SLACK = 256;

const encoder = new TextEncoder();

/** The rows, each typed by its key: a message type. */
const ROWS = {
  put: {
    receives: (message) => ({ size: message.size, algorithm: message.digest }),
    sends: false,
    kinds: ["put"],
    kind: () => "put",
    subject: (message) => message.name,
    async handle({ message, user, storage, body, limits, mine, chunks }) {
      const problem = nameProblem(message.name, limits.maxNameBytes);
      if (problem) throw new DfosError(Status.BAD_NAME, `Cannot use name "${excerpt(message.name)}": ${problem}`);
      // Refused at once, before any byte is taken, if the announced size does not fit.
      const allowance = await limits.quota.reserve(user, message.name, message.size);
      let upload: Upload;
      try {
        upload = await storage.beginUpload(user, message.name);
      } catch (error) {
        allowance.release();
        throw error;
      }
      try {
        let received = 0;
        // Each piece goes to the upload with its hold: its receive block is reused once written.
        for await (const piece of body!.pieces()) {
          received += piece.length;
          allowance.receive(received); // an upload of unknown size is cut the moment it goes over
          await upload.write(piece);
        }
        // The last check of the quota: the file actually replaced and the folders created, in the same step as the rename.
        const info = await upload.commit({ admit: (change) => allowance.admit(change) });
        allowance.committed();
        mine.changes++;
        chunks.indexes.stored(user, info.name); // its chunks can be copied once indexed
        return { message: { type: "ok", name: info.name, size: info.size } };
      } catch (error) {
        allowance.release(); // at once: another upload of the user's may need the bytes before the file is gone
        await upload.abort();
        throw error;
      }
    },
  },
  get: {
    sends: true,
    kinds: ["get", "peek"],
    kind: (message) => message.limit === null ? "get" : "peek",
    subject: (message) => message.name,
    async handle({ message, user, storage }) {
      const handle = await storage.openRead(user, message.name);
      const limit = Math.min(handle.info.size, message.limit ?? Infinity);
      const { name, mtime } = handle.info;
      return {
        message: { type: "file", name, size: limit, mtime },
        body: { chunks: handle.read(limit), size: limit, algorithm: message.digest, close: () => handle.close() },
      };
    },
  },
  delete: {
    sends: false,
    kinds: ["rm"],
    kind: () => "rm",
    subject: (message) => message.name,
    async handle({ message, user, storage, limits, mine }) {
      await limits.quota.ready(user); // the user's usage is counted before it changes
      const ifVersion = await versionCondition(storage, {
        user,
        name: message.name,
        ifRoot: message.ifRoot,
        action: "remove",
      });
      const info = await storage.remove(user, message.name, { ifVersion });
      limits.quota.removed(user, info);
      mine.changes++;
      return { message: { type: "ok", name: info.name, size: info.size } };
    },
  },
  list: {
    sends: false,
    kinds: ["ls"],
    kind: () => "ls",
    subject: (message) => message.prefix,
    async handle({ message, user, storage, limits }) {
      const page = await storage.list(user, {
        prefix: message.prefix,
        after: message.after,
        limit: limits.listPageEntries,
      });
      // Keep the LISTING frame under the control-frame limit, whatever the names' lengths.
      const entries: ListEntry[] = [];
      let bytes = LIST_PAGE_SLACK;
      for (const entry of page.entries) {
        bytes += encoder.encode(JSON.stringify(entry)).length + 1;
        if (bytes > MAX_CONTROL_LENGTH) break;
        entries.push(entry);
      }
      const cut = entries.length < page.entries.length;
      const next = cut ? entries[entries.length - 1].name : page.next;
      return { message: { type: "listing", entries, next } };
    },
  },
  move: {
    sends: false,
    kinds: ["mv"],
    kind: () => "mv",
    subject: (message) => message.from,
    async handle({ message, user, storage, limits, mine }) {
      await limits.quota.ready(user); // the user's usage is counted before it changes
      const ifVersion = await versionCondition(storage, {
        user,
        name: message.from,
        ifRoot: message.ifRoot,
        action: "move",
      });
      const moved = await storage.rename(user, message.from, message.to, {
        admit: (folders) => limits.quota.admitFolders(user, message.to, folders),
        maxNameBytes: limits.maxNameBytes,
        ifVersion,
      });
      limits.quota.moved(user, moved);
      mine.changes++;
      return { message: { type: "moved", from: moved.from, to: moved.to, files: moved.files } };
    },
  },
  stat: {
    sends: false,
    kinds: ["stat"],
    kind: () => "stat",
    subject: (message) => message.name,
    async handle({ message, user, storage }) {
      if (message.digest === null) {
        const info = await storage.stat(user, message.name);
        if (info === null) {
          throw new DfosError(Status.NOT_FOUND, `Cannot find "${excerpt(message.name)}": no such file`);
        }
        return { message: { type: "info", ...info, digest: null } };
      }
      // The digest of the bytes of one version, read as a download reads them (S3: a stored checksum could answer).
      const handle = await storage.openRead(user, message.name);
      try {
        const digest = await createDigest(message.digest, { sizeHint: handle.info.size });
        for await (const chunk of handle.read()) {
          try {
            digest.update(bytesOf(chunk));
          } finally {
            release(chunk);
          }
        }
        return { message: { type: "info", ...handle.info, digest: digest.hex() } };
      } finally {
        handle.close();
      }
    },
  },
  changes: {
    sends: false,
    kinds: ["changes"],
    kind: () => "changes",
    subject: () => "",
    async handle({ message, user, storage, mine }) {
      const { epoch, counter } = await storage.changes(user);
      const reply = { type: "counter", epoch, counter, mine: mine.changes } as const;
      if (message.since === undefined || message.epoch === undefined) return { message: reply };
      const since = { epoch: message.epoch, counter: message.since };
      const changes = await changesSince(storage, user, since, message.prefix ?? "");
      return { message: changes === null ? reply : { ...reply, ...changes } };
    },
  },
  have: {
    sends: false,
    kinds: ["have"],
    kind: () => "have",
    subject: () => "",
    async handle({ message, user, storage, chunks }) {
      const keys = splitKeys(message.keys);
      if (keys === null || keys.length === 0 || keys.length > MAX_HAVE_KEYS) {
        throw new DfosError(Status.BAD_REQUEST, `Cannot look up chunks: 1 to ${MAX_HAVE_KEYS} keys of 32 bytes`);
      }
      const index = await chunks.indexes.of(user);
      const check = new SourceCheck(storage, user);
      const known: boolean[] = [];
      // A kept upload's chunks serve only the assemble that continues it: for another upload, not known.
      const usable = (source: ChunkSource) =>
        source.kind !== "kept" || message.name === undefined ||
        (source.name === message.name && source.key === message.root);
      for (const key of keys) {
        const source = index.group(key)?.source ?? index.chunk(key);
        known.push(source !== undefined && usable(source) && await check.current(source));
      }
      return { message: { type: "known", bits: bitsOf(known) } };
    },
  },
  assemble: {
    receives: () => ({ size: null, algorithm: "crc32" }),
    sends: false,
    kinds: ["push"],
    kind: () => "push",
    subject: (message) => message.name,
    async handle({ message, user, storage, body, limits, chunks, mine }) {
      const info = await assemble(message, body!, {
        user,
        storage,
        quota: limits.quota,
        maxNameBytes: limits.maxNameBytes,
        ...chunks,
      });
      mine.changes++;
      return { message: { type: "ok", name: info.name, size: info.size } };
    },
  },
  groups: {
    sends: true,
    kinds: ["groups"],
    kind: () => "groups",
    subject: (message) => message.name,
    async handle({ message, user, storage, chunks }) {
      const handle = await storage.openRead(user, message.name);
      try {
        const entries = await chunkListOf(storage, user, handle);
        const groups = groupsOf(entries);
        const { name, size, mtime, version } = handle.info;
        await chunks.indexes.added(user, name, version, entries); // its chunks can be copied from now on
        const bytes = encodeGroupEntries(groups);
        return {
          message: { type: "group-list", name, size, mtime, version, root: rootOf(entries), count: groups.length },
          body: bodyOf(bytes),
        };
      } finally {
        handle.close();
      }
    },
  },
  "group-chunks": {
    sends: true,
    kinds: ["groups"],
    kind: () => "groups",
    subject: (message) => message.name,
    async handle({ message, user, storage }) {
      const handle = await openVersion(storage, user, message.name, message.version);
      try {
        const entries = await chunkListOf(storage, user, handle);
        const groups = groupsOf(entries);
        const { first, count } = message;
        if (count < 1 || first + count > groups.length) {
          throw new DfosError(
            Status.BAD_REQUEST,
            `Cannot list the chunks of "${excerpt(message.name)}": groups ${first} to ${first + count - 1} ` +
              `of ${groups.length}`,
          );
        }
        let from = 0;
        for (let i = 0; i < first; i++) from += groups[i].chunks;
        let to = from;
        for (let i = first; i < first + count; i++) to += groups[i].chunks;
        const bytes = encodeChunkEntries(entries.slice(from, to));
        return { message: { type: "chunk-list", count: bytes.length / CHUNK_ENTRY_BYTES }, body: bodyOf(bytes) };
      } finally {
        handle.close();
      }
    },
  },
  read: {
    sends: true,
    kinds: ["read"],
    kind: () => "read",
    subject: (message) => message.name,
    async handle({ message, user, storage }) {
      const ranges = decodeRanges(message.ranges);
      if (ranges === null || ranges.length === 0 || ranges.length > MAX_READ_RANGES) {
        throw new DfosError(
          Status.BAD_REQUEST,
          `Cannot read "${excerpt(message.name)}": 1 to ${MAX_READ_RANGES} ranges of 12 bytes`,
        );
      }
      const handle = await openVersion(storage, user, message.name, message.version);
      let size = 0;
      for (const range of ranges) {
        if (range.offset + range.length > handle.info.size) {
          handle.close();
          throw new DfosError(
            Status.BAD_REQUEST,
            `Cannot read "${excerpt(message.name)}": the range ${range.offset}+${range.length} ` +
              `is past its ${handle.info.size} bytes`,
          );
        }
        size += range.length;
      }
      async function* chunks(): AsyncGenerator<Bytes> {
        for (const range of ranges!) if (range.length > 0) yield* handle.readRange(range.offset, range.length);
      }
      const { name, mtime } = handle.info;
      return {
        message: { type: "file", name, size, mtime },
        body: { chunks: chunks(), size, algorithm: "crc32", close: () => handle.close() },
      };
    },
  },
  sums: {
    sends: true,
    kinds: ["read"],
    kind: () => "read",
    subject: (message) => message.name,
    async handle({ message, user, storage }) {
      const handle = await openVersion(storage, user, message.name, message.version);
      try {
        const bytes = await sumsOf(message, handle);
        return { message: { type: "sum-list", count: bytes.length / SUM_BYTES }, body: bodyOf(bytes) };
      } finally {
        handle.close();
      }
    },
  },
  delta: {
    receives: () => ({ size: null, algorithm: "crc32" }),
    sends: true,
    kinds: ["read"],
    kind: () => "read",
    subject: (message) => message.name,
    async handle({ message, user, storage, body }) {
      checkDelta(message); // before the file is opened
      const handle = await openVersion(storage, user, message.name, message.version);
      try {
        const bytes = await deltaOf(message, body!, handle);
        return { message: { type: "delta-list", count: decodeRanges(message.ranges)!.length }, body: bodyOf(bytes) };
      } finally {
        handle.close();
      }
    },
  },
  watch: {
    sends: false,
    waits: true,
    kinds: ["watch"],
    kind: () => "watch",
    subject: (message) => message.prefix,
    async handle({ message, user, storage, mine, limits, signal }) {
      const maxWaitMs = limits.maxWatchMs;
      return { message: await watch(message, { storage, user, mine: mine.changes, maxWaitMs, signal }) };
    },
  },
} as const satisfies { [T in MessageType]?: HandlerRow<T> };

/** A reply body of bytes in hand. */
function bodyOf(bytes: Uint8Array): OutgoingBody {
  async function* chunks(): AsyncGenerator<Bytes> {
    if (bytes.length > 0) yield bytes;
  }
  return { chunks: chunks(), size: bytes.length, algorithm: "crc32", close() {} };
}

/** Opens `name` for reading if its version is still `version`; `CONFLICT` "changed since" otherwise. */
async function openVersion(storage: Storage, user: string, name: string, version: string): Promise<ReadHandle> {
  const handle = await storage.openRead(user, name);
  if ((handle.info as VersionedInfo).version !== version) {
    handle.close();
    throw new DfosError(Status.CONFLICT, `Cannot read "${excerpt(name)}": changed since version ${excerpt(version)}`);
  }
  return handle;
}

/** The requests a logged-in client may send: the rows' types. */
export type RequestType = keyof typeof ROWS;

/** A kind of operation the server counts and logs: one of a row's `kinds`. */
export type OperationKind = (typeof ROWS)[RequestType]["kinds"][number];

/** Every kind of operation, in the rows' order, each once (rows may share one: `groups` and `group-chunks`). */
export const OPERATION_KINDS: readonly OperationKind[] = [...new Set(Object.values(ROWS).flatMap((row) => row.kinds))];

/** Every request a logged-in client may send, and its handler. */
export const HANDLERS: { readonly [T in RequestType]: HandlerRow<T> } = ROWS;

/** Returns true when `message` is a request: one with a row in {@linkcode HANDLERS}. */
export function isRequest(message: Message): message is MessageOf<RequestType> {
  return Object.hasOwn(HANDLERS, message.type);
}
