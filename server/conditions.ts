/**
 * `versionCondition`: the conditions of `dfos sync` (docs/PROTOCOL.md
 * "Sync") turned from what the client names, a content root, into what the
 * storage checks, a version (`CommitOptions.ifVersion` and its kin,
 * server/storage.ts).
 *
 * A client knows a file by its root (the SHA-256 of its chunk hashes,
 * shared/chunk_groups.ts `rootOf`); the storage knows it by its version. The
 * root of the file's current content is looked up (its stored chunk list, or
 * one computed from its bytes, server/chunk_lists.ts): another root is
 * refused at once (`CONFLICT`), the same root gives the version it was read
 * from, which the storage compares again in the step that makes the change,
 * so that a change in between still refuses it.
 *
 * @module
 */

import { rootOf } from "../shared/chunk_groups.ts";
import { excerpt } from "../shared/names.ts";
import { DfosError, Status } from "../shared/status.ts";
import { chunkListOf } from "./chunk_lists.ts";
import { changedOnServer, type Storage } from "./storage.ts";

/** What a condition is on. */
export interface Condition {
  /** The file's owner. */
  user: string;
  /** The remote name the change is to. */
  name: string;
  /**
   * The root the client last saw the file with; null: the client saw no file
   * of that name; undefined: no condition.
   */
  ifRoot: string | null | undefined;
  /**
   * What the change is, as `Cannot <action> "name"`: `store` (a file that is
   * gone is a change: `CONFLICT`), `remove` or `move` (a file that is gone
   * is `NOT_FOUND`, as without a condition).
   */
  action: "store" | "remove" | "move";
}

/** A content root as the protocol writes it: a SHA-256 in lower-case hex. */
const ROOT = /^[0-9a-f]{64}$/;

/**
 * The version the storage is to find the file at for the change to be made:
 * the current one when the file's content has the root `ifRoot`, null for
 * `ifRoot` null (refused at once when there is a file), undefined with no
 * condition.
 *
 * @param storage Where the user's files are.
 * @param condition The user, the name, the root and the change.
 * @returns The `ifVersion` to pass to the storage.
 * @throws {DfosError} `CONFLICT` "changed on the server since it was read"
 * when the file is not the one the client saw; `BAD_REQUEST` for a root
 * that is not one.
 */
export function versionCondition(
  storage: Storage,
  condition: Condition & { ifRoot: string | undefined },
): Promise<string | undefined>;
export function versionCondition(storage: Storage, condition: Condition): Promise<string | null | undefined>;
export async function versionCondition(storage: Storage, condition: Condition): Promise<string | null | undefined> {
  const { user, name, ifRoot, action } = condition;
  if (ifRoot === undefined) return undefined;
  if (ifRoot === null) {
    if (await storage.stat(user, name) !== null) throw changedOnServer(action, name);
    return null;
  }
  if (!ROOT.test(ifRoot)) {
    throw new DfosError(
      Status.BAD_REQUEST,
      `Cannot ${action} "${excerpt(name)}": ifRoot "${excerpt(ifRoot)}" is not a root (64 lower-case hex digits)`,
    );
  }
  let handle;
  try {
    handle = await storage.openRead(user, name);
  } catch (error) {
    // Gone since the client saw it: for a store, that is a change like any other.
    if (action === "store" && error instanceof DfosError && error.code === Status.NOT_FOUND) {
      throw changedOnServer(action, name);
    }
    throw error;
  }
  try {
    if (rootOf(await chunkListOf(storage, user, handle)) !== ifRoot) throw changedOnServer(action, name);
    return handle.info.version;
  } finally {
    handle.close();
  }
}
