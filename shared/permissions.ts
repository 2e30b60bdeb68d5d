/**
 * Giving up Deno permissions for the life of the process:
 * {@linkcode dropPermissions} drops every kind a command never needs, and
 * {@linkcode dropOptionPermissions} what it needed only to read its options.
 * What each command keeps is a column of main.ts's command table.
 *
 * Deno can take back a whole kind of permission at run time
 * (`Deno.permissions.revokeSync({ name })`), but cannot narrow a broad grant
 * to some paths or hosts: so a command keeps or loses each kind whole, and a
 * kind once dropped is gone for good. The network cannot be narrowed to the
 * server's address this way; the server narrows its own in a sandbox
 * (server/sandbox.ts).
 *
 * @example Usage
 * ```ts ignore
 * // ignored: it revokes the permissions of the process that runs the examples
 * import { dropOptionPermissions, dropPermissions } from "./permissions.ts";
 * dropPermissions({ keep: ["net"], untilOptionsRead: ["env", "read"] }); // now: no write, run, ffi, sys or import
 * // ... read DFOS_* and the --ca file ...
 * dropOptionPermissions(); // now: no env and no read either
 * ```
 *
 * @module
 */

/** A kind of Deno permission that can be dropped. */
export type PermissionKind = "read" | "write" | "net" | "env" | "sys" | "run" | "ffi" | "import";

/** Every kind, in the order they are dropped. */
export const PERMISSION_KINDS: readonly PermissionKind[] = [
  "run",
  "ffi",
  "sys",
  "import",
  "env",
  "write",
  "read",
  "net",
];

/** What one command keeps. */
export interface CommandPermissions {
  /** Kinds it keeps to the end. */
  keep: readonly PermissionKind[];
  /** Kinds it keeps only until its connection options are read (env for `DFOS_*`, read for `--ca`). */
  untilOptionsRead: readonly PermissionKind[];
}

/** What {@linkcode dropOptionPermissions} will drop. */
let pending: PermissionKind[] = [];

/**
 * Drops, for the rest of the process, every permission kind a command never
 * needs, and remembers those it needs only while reading its options.
 *
 * @param permissions What the command keeps (its row in main.ts's table).
 * @returns The kinds dropped now.
 */
export function dropPermissions(permissions: CommandPermissions): PermissionKind[] {
  const dropped = PERMISSION_KINDS.filter((kind) => {
    return !permissions.keep.includes(kind) && !permissions.untilOptionsRead.includes(kind);
  });
  revoke(dropped);
  pending = [...permissions.untilOptionsRead];
  return dropped;
}

/**
 * Drops what the command needed only to read its options. Call it once the
 * environment and the `--ca` file have been read; it does nothing unless
 * {@linkcode dropPermissions} ran first.
 *
 * @returns The kinds dropped now.
 */
export function dropOptionPermissions(): PermissionKind[] {
  const dropped = pending;
  pending = [];
  revoke(dropped);
  return dropped;
}

function revoke(kinds: readonly PermissionKind[]): void {
  for (const name of kinds) Deno.permissions.revokeSync({ name });
}
