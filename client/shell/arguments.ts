/**
 * Remote names in the shell: relative to the remote folder that `cd` set
 * (`resolveRemote()`: `..` goes up, never above the top; a leading `/`
 * starts from the top), and which arguments of a command are remote names
 * and which are local paths (`argumentKind()`, `shellPositionals()`). Local
 * paths need nothing here: `lcd` changes the process's working folder.
 *
 * A command the shell does not know here (one added to the command table
 * later) takes all its arguments as remote names.
 *
 * @module
 */

import { UsageError } from "../../shared/cli.ts";

/** What an argument names. */
export type ArgumentKind = "remote" | "local";

/**
 * Resolves a remote name typed in the shell against the remote folder.
 * A name that ends in `/`, `.` or `..` names a folder: the result ends in
 * `/` ("/" alone for the top).
 *
 * @param folder The remote folder ("" for the top, else "a/b").
 * @param name The name as typed.
 * @returns The name from the top.
 * @throws {UsageError} for a name that goes above the top.
 */
export function resolveRemote(folder: string, name: string): string {
  const parts = name.startsWith("/") || folder === "" ? [] : folder.split("/");
  const segments = name.split("/");
  for (const segment of segments) {
    if (segment === "" || segment === ".") continue;
    if (segment === "..") {
      if (parts.length === 0) throw new UsageError(`Cannot use "${name}": it goes above the top folder`);
      parts.pop();
    } else {
      parts.push(segment);
    }
  }
  const last = segments[segments.length - 1];
  const isFolder = last === "" || last === "." || last === "..";
  const path = parts.join("/");
  if (!isFolder) return path;
  return path === "" ? "/" : `${path}/`;
}

/**
 * The kind of a command's positional argument when completing: remote for
 * get's first, pull's first, push's after the first, ls, cd, peek, rm, mv, stat and
 * any other; local for put's, get's and pull's after the first, push's first, lcd and lls.
 *
 * @param command The command.
 * @param index The argument's place among the positionals.
 * @returns Its kind, or null for none to complete.
 */
export function argumentKind(command: string, index: number): ArgumentKind | "command" | null {
  switch (command) {
    case "put":
    case "lcd":
    case "lls":
      return "local";
    case "get":
    case "pull":
      return index === 0 ? "remote" : "local";
    case "push":
      return index === 0 ? "local" : "remote";
    case "help":
      return index === 0 ? "command" : null;
    case "pwd":
    case "lpwd":
    case "exit":
    case "quit":
      return null;
    default:
      return "remote";
  }
}

/**
 * Rewrites a client command's positionals for the command line's rules:
 * every remote name resolved against the remote folder, and where the
 * command would take a local base name as the remote name (`put FILE`), the
 * remote folder given explicitly.
 *
 * @param command The command.
 * @param positionals Its positionals as typed.
 * @param values Its flags.
 * @param folder The remote folder ("" for the top).
 * @returns The positionals to run it with.
 */
export function shellPositionals(
  command: string,
  positionals: string[],
  values: Record<string, string | boolean | undefined>,
  folder: string,
): string[] {
  const remote = (name: string) => resolveRemote(folder, name);
  const n = positionals.length;
  switch (command) {
    case "put":
      if (n === 0) return positionals;
      if (n === 1) return positionals[0] === "-" || folder === "" ? positionals : [positionals[0], `${folder}/`];
      return [...positionals.slice(0, -1), remote(positionals[n - 1])];
    case "get":
      if (n === 0) return positionals;
      if (values.recursive || n <= 2) return [remote(positionals[0]), ...positionals.slice(1)];
      return [...positionals.slice(0, -1).map(remote), positionals[n - 1]];
    case "push":
      return [...positionals.slice(0, 1), ...positionals.slice(1).map(remote)];
    case "pull":
      return [...positionals.slice(0, 1).map(remote), ...positionals.slice(1)];
    case "ls": {
      const prefix = n === 0 ? (folder === "" ? "" : `${folder}/`) : remote(positionals[0]);
      return [prefix === "/" ? "" : prefix, ...positionals.slice(1)];
    }
    default:
      return positionals.map(remote);
  }
}
