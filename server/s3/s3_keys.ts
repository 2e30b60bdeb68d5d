/**
 * `S3Keys`: where each thing dfos keeps lies in the bucket, in one place.
 * Keys are relative to the store's prefix (the `ObjectStore` adds it).
 *
 * - A user's file `name` is the object `<user>/<name>`: a plain object that
 *   any S3 tool shows as it is.
 * - The server's own records of a user's files are under `<user>/.dfos-*`
 *   (`.dfos-chunks/`, `.dfos-kept/`, `.dfos-leases/`, `.dfos-changes`): no
 *   request can name them, since shared/names.ts refuses every `.dfos-*`
 *   segment, and listings and usage leave them out.
 * - Nothing is kept outside the users' prefixes; a user name cannot start
 *   with "." (`userProblem`), so `.dfos-*` at the top is free for the server
 *   should it need a global record.
 *
 * Metadata objects are named by a hash of the name they describe
 * (`hashName`), so no user's name ever becomes part of a metadata key.
 *
 * @module
 */

import { RESERVED_PREFIX, userProblem } from "../../shared/names.ts";
import { DfosError, Status } from "../../shared/status.ts";
import { hashName } from "../meta_files.ts";

/** Under each user's prefix: the stored chunk lists. */
export const CHUNKS = `${RESERVED_PREFIX}chunks/`;
/** Under each user's prefix: the kept uploads' state objects. */
export const KEPT = `${RESERVED_PREFIX}kept/`;
/** Under each user's prefix: the commit leases of large uploads. */
export const LEASES = `${RESERVED_PREFIX}leases/`;
/** Under each user's prefix: the change counter. */
export const CHANGES = `${RESERVED_PREFIX}changes`;

/**
 * The key after which a listing of `<user>/` skips every metadata key: each
 * of ours is `<user>/.dfos-` followed by an ASCII character, below U+10FFFF.
 */
const PAST_METADATA = `${RESERVED_PREFIX}\u{10FFFF}`;

/**
 * Refuses a bad user name (`BAD_NAME`): one that could reach outside its
 * prefix or into the server's own keys.
 *
 * @param user The user.
 * @returns The user's prefix, `<user>/`.
 */
export function userPrefix(user: string): string {
  const problem = userProblem(user);
  if (problem) throw new DfosError(Status.BAD_NAME, `Cannot use user "${user}": ${problem}`);
  return `${user}/`;
}

/**
 * The key of the user's file `name` (checked by the caller).
 *
 * @param user The user.
 * @param name The remote name.
 */
export function fileKey(user: string, name: string): string {
  return userPrefix(user) + name;
}

/**
 * The key of the stored chunk list of `name`.
 *
 * @param user The user.
 * @param name The remote name.
 */
export function chunkListKey(user: string, name: string): string {
  return userPrefix(user) + CHUNKS + hashName(name);
}

/**
 * The key of a kept upload's state: a hash of its name, then of its key.
 *
 * @param user The user.
 * @param name The remote name.
 * @param key The key the upload was begun with.
 */
export function keptKey(user: string, name: string, key: string): string {
  return keptNamePrefix(user, name) + hashName(key).slice(0, 32);
}

/**
 * The prefix of every kept upload of `name`, whatever its key.
 *
 * @param user The user.
 * @param name The remote name.
 */
export function keptNamePrefix(user: string, name: string): string {
  return userPrefix(user) + KEPT + hashName(name) + ".";
}

/**
 * The key of the commit lease of `name`.
 *
 * @param user The user.
 * @param name The remote name.
 */
export function leaseKey(user: string, name: string): string {
  return userPrefix(user) + LEASES + hashName(name);
}

/**
 * The key of the user's change counter.
 *
 * @param user The user.
 */
export function counterKey(user: string): string {
  return userPrefix(user) + CHANGES;
}

/**
 * True when `key`, under the user's prefix, is one of the server's own.
 *
 * @param prefix The user's prefix.
 * @param key An object key under it.
 */
export function isMetadataKey(prefix: string, key: string): boolean {
  return key.startsWith(prefix + RESERVED_PREFIX);
}

/**
 * Where a listing of the user's files goes on once it reaches a metadata key.
 *
 * @param prefix The user's prefix.
 */
export function pastMetadata(prefix: string): string {
  return prefix + PAST_METADATA;
}
