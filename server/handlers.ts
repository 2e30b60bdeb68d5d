/**
 * `HANDLERS`: one row per request message, what it does and what it needs.
 * A handler returns its one reply; the session sends it (and, for a
 * download, the body after it), so "exactly one reply per request" holds by
 * construction.
 *
 * @module
 */

import type { BodyReceiver } from "../shared/body.ts";
import {
  type DigestAlgorithm,
  type ListEntry,
  MAX_CONTROL_LENGTH,
  type Message,
  type MessageOf,
} from "../shared/messages.ts";
import type { OperationKind } from "./stats.ts";
import type { ReadHandle, Storage } from "./storage.ts";

/** What a handler is given. */
export interface Request<T extends RequestType> {
  /** The request message. */
  message: MessageOf<T>;
  /** The authenticated user. */
  user: string;
  /** Where the user's files are. */
  storage: Storage;
  /** The body that follows the request, for rows with `body: true`. */
  body: BodyReceiver | null;
}

/** What a handler answers. */
export interface Reply {
  /** The reply message. */
  message: Message;
  /** A body to send after the message (a download), checked with `algorithm`; the session closes the handle. */
  body?: { handle: ReadHandle; limit: number; algorithm: DigestAlgorithm };
  /** Body bytes received while handling, for the log. */
  bytesIn?: number;
}

/** The requests a logged-in client may send. */
export type RequestType = "put" | "get" | "delete" | "list";

/** One row of the handler table. */
export interface HandlerRow<T extends RequestType> {
  /** Handles one request. */
  handle: (request: Request<T>) => Promise<Reply>;
  /** The request is followed by a body (DATA frames and END). */
  body: boolean;
  /** The request changes stored files (for read-only modes and quotas). */
  writes: boolean;
  /** How the operation is counted and logged. */
  kind: (message: MessageOf<T>) => OperationKind;
}

/** Entries at most per LISTING page, whatever their size. */
export const LIST_PAGE_ENTRIES = 1000;

/** Room kept free in a LISTING frame for the JSON around the entries. */
const LIST_PAGE_SLACK = 256;

const encoder = new TextEncoder();

/** Every request a logged-in client may send, and its handler. */
export const HANDLERS: { [T in RequestType]: HandlerRow<T> } = {
  put: {
    body: true,
    writes: true,
    kind: () => "put",
    async handle({ message, user, storage, body }) {
      const upload = await storage.beginUpload(user, message.name);
      try {
        // Each piece's receive block is reused once written (or queued, held, by the upload): see Upload.write.
        for await (const chunk of body!.chunks({ recycle: true })) await upload.write(chunk);
        const info = await upload.commit();
        return { message: { type: "ok", name: info.name, size: info.size }, bytesIn: info.size };
      } catch (error) {
        await upload.abort();
        throw error;
      }
    },
  },
  get: {
    body: false,
    writes: false,
    kind: (message) => message.limit === null ? "get" : "peek",
    async handle({ message, user, storage }) {
      const handle = await storage.openRead(user, message.name);
      const limit = Math.min(handle.info.size, message.limit ?? Infinity);
      const { name, mtime } = handle.info;
      return {
        message: { type: "file", name, size: limit, mtime },
        body: { handle, limit, algorithm: message.digest },
      };
    },
  },
  delete: {
    body: false,
    writes: true,
    kind: () => "rm",
    async handle({ message, user, storage }) {
      const info = await storage.remove(user, message.name);
      return { message: { type: "ok", name: info.name, size: info.size } };
    },
  },
  list: {
    body: false,
    writes: false,
    kind: () => "ls",
    async handle({ message, user, storage }) {
      const page = await storage.list(user, {
        prefix: message.prefix,
        after: message.after,
        limit: LIST_PAGE_ENTRIES,
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
};

/** Returns true when `type` names a row of {@linkcode HANDLERS}. */
export function isRequestType(type: string): type is RequestType {
  return Object.hasOwn(HANDLERS, type);
}
