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
import { excerpt, nameProblem } from "../shared/names.ts";
import { DfosError, Status } from "../shared/status.ts";
import type { Quota } from "./quota.ts";
import type { OperationKind } from "./stats.ts";
import type { ReadHandle, Storage, Upload } from "./storage.ts";

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
  /** The server's limits. */
  limits: RequestLimits;
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

/** Entries at most per LISTING page by default, whatever their size. */
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
    async handle({ message, user, storage, body, limits }) {
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
        // Each piece's receive block is reused once written (or queued, held, by the upload): see Upload.write.
        for await (const chunk of body!.chunks({ recycle: true })) {
          received += chunk.length;
          allowance.receive(received); // an upload of unknown size is cut the moment it goes over
          await upload.write(chunk);
        }
        // The last check of the quota: the file actually replaced and the folders created, in the same step as the rename.
        const info = await upload.commit({ admit: (change) => allowance.admit(change) });
        allowance.committed();
        return { message: { type: "ok", name: info.name, size: info.size }, bytesIn: info.size };
      } catch (error) {
        allowance.release(); // at once: another upload of the user's may need the bytes before the file is gone
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
    async handle({ message, user, storage, limits }) {
      await limits.quota.ready(user); // the user's usage is counted before it changes
      const info = await storage.remove(user, message.name);
      limits.quota.removed(user, info);
      return { message: { type: "ok", name: info.name, size: info.size } };
    },
  },
  list: {
    body: false,
    writes: false,
    kind: () => "ls",
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
};

/** Returns true when `type` names a row of {@linkcode HANDLERS}. */
export function isRequestType(type: string): type is RequestType {
  return Object.hasOwn(HANDLERS, type);
}
