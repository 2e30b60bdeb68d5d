/**
 * What each `dfos` command may do, and `dropPermissions()`, which gives up
 * the rest for the life of the process: a client command asks only for what
 * it needs, whatever the process was started with (`deno run -A`, or the
 * compiled binary's flags).
 *
 * Deno can take back a whole kind of permission at run time
 * (`Deno.permissions.revokeSync({ name })`), but cannot narrow a broad grant
 * to some paths or hosts: so a command keeps or loses each kind whole.
 * `put` keeps read (the file it sends), `get` read and write (the file it
 * saves, through a temporary file and a rename, which Deno counts as both),
 * `peek`, `rm` and `ls` keep nothing but the network. Every command keeps
 * the environment and read access (for a `--ca` file) only until its
 * connection options are read, then drops them ({@linkcode dropOptionPermissions}).
 * None keeps subprocesses, FFI, system information or remote imports.
 * The network cannot be narrowed to the server's address this way; the
 * server narrows its own in a sandbox (server/sandbox.ts).
 *
 * @example Usage
 * ```ts ignore
 * import { dropOptionPermissions, dropPermissions } from "./command_permissions.ts";
 * dropPermissions("ls"); // now: no write, run, ffi, sys or import
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

/** The permissions of each command; a command not listed keeps all it was given. */
export const COMMAND_PERMISSIONS: Readonly<Record<string, CommandPermissions>> = {
  put: { keep: ["read", "net"], untilOptionsRead: ["env"] },
  get: { keep: ["read", "write", "net"], untilOptionsRead: ["env"] },
  peek: { keep: ["net"], untilOptionsRead: ["env", "read"] },
  rm: { keep: ["net"], untilOptionsRead: ["env", "read"] },
  ls: { keep: ["net"], untilOptionsRead: ["env", "read"] },
  // The users file (and its temporary beside it), and DFOS_PASSWORD.
  passwd: { keep: ["read", "write", "env"], untilOptionsRead: [] },
  // The process around the server's sandbox: it grants the worker its part of these, and reads the TLS files and
  // writes the log itself.
  serve: { keep: ["read", "write", "net", "sys"], untilOptionsRead: [] },
};

/** What {@linkcode dropOptionPermissions} will drop. */
let pending: PermissionKind[] = [];

/**
 * Drops, for the rest of the process, every permission kind `command` never
 * needs, and remembers those it needs only while reading its options.
 *
 * @param command The command's name (`put`, `ls`, ...).
 * @returns The kinds dropped now.
 */
export function dropPermissions(command: string): PermissionKind[] {
  const permissions = Object.hasOwn(COMMAND_PERMISSIONS, command) ? COMMAND_PERMISSIONS[command] : undefined;
  if (permissions === undefined) return [];
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
