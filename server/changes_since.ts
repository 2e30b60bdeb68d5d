/**
 * `changesSince()`: what a `changes` request that names the counter its
 * client saw is answered besides the counter: the files under its prefix
 * changed since, with their facts now, and the names changed that are gone
 * (docs/PROTOCOL.md, "The change counter"). The storage's journal gives the
 * names (`Storage.changedNames`), each is looked up, and the answer is left
 * out (the client lists instead) when the storage cannot say or the answer
 * would not fit one control frame. `counterReply()` is the whole COUNTER
 * that answers a `watch` (server/watch.ts), as the `changes` row builds it.
 *
 * @module
 */

import type { ListEntry, MessageOf } from "../shared/messages.ts";
import { MAX_CONTROL_LENGTH } from "../shared/messages.ts";
import type { ChangeCounter, Storage } from "./storage.ts";

/** Names answered at most; past this a listing costs about as much. */
export const MAX_CHANGED_NAMES = 1000;

/** Room kept free in the COUNTER frame for the JSON around the names. */
const SLACK_BYTES = 512;

const encoder = new TextEncoder();

/**
 * The changes since `since` under `prefix`, or null when they cannot be
 * answered (the caller then answers the counter alone).
 *
 * @param storage The storage.
 * @param user The user.
 * @param since The counter the client saw.
 * @param prefix The names it cares about ("" for all).
 * @returns The files changed, with their facts, and the names gone; or null.
 */
export async function changesSince(
  storage: Storage,
  user: string,
  since: ChangeCounter,
  prefix: string,
): Promise<{ changed: ListEntry[]; gone: string[] } | null> {
  const names = await storage.changedNames(user, since, prefix);
  if (names === null || names.length > MAX_CHANGED_NAMES) return null;
  const changed: ListEntry[] = [];
  const gone: string[] = [];
  let bytes = SLACK_BYTES;
  for (const name of names) {
    const info = await storage.stat(user, name);
    if (info === null) gone.push(name);
    else changed.push({ name, size: info.size, mtime: info.mtime });
    bytes += encoder.encode(JSON.stringify(name)).length + 48;
    if (bytes > MAX_CONTROL_LENGTH) return null;
  }
  return { changed, gone };
}

/**
 * The COUNTER that answers a `watch`, as a `changes` is answered: the user's counter
 * now, the session's own changes, and, when the request named the counter
 * its client saw, the changes since when they can be said.
 *
 * @param storage The storage.
 * @param user The user.
 * @param request The session's own changes (`mine`), and the counter the client saw with its prefix, if it named one.
 * @returns The reply.
 */
export async function counterReply(
  storage: Storage,
  user: string,
  request: { mine: number; since?: ChangeCounter; prefix: string },
): Promise<MessageOf<"counter">> {
  const { epoch, counter } = await storage.changes(user);
  const reply = { type: "counter", epoch, counter, mine: request.mine } as const;
  if (request.since === undefined) return reply;
  const changes = await changesSince(storage, user, request.since, request.prefix);
  return changes === null ? reply : { ...reply, ...changes };
}
