/**
 * `remoteName()`: a remote name as typed on the command line, normalised to
 * NFC and checked against the naming rules before anything is sent.
 *
 * @module
 */

import { UsageError } from "../shared/cli.ts";
import { nameProblem, printableName } from "../shared/names.ts";

/**
 * Returns the name in Unicode NFC, or throws a `UsageError` that says what
 * is wrong with it.
 *
 * @param name The name as typed.
 * @returns The name to send.
 */
export function remoteName(name: string): string {
  const normalized = name.normalize("NFC");
  const problem = nameProblem(normalized);
  if (problem) throw new UsageError(`Cannot use remote name "${printableName(name)}": ${problem}`);
  return normalized;
}

/**
 * Returns the last segment of a path, local (`/` or the platform's
 * separator) or remote.
 *
 * @param path A path.
 * @returns Its base name.
 */
export function baseName(path: string): string {
  const trimmed = path.replace(/[\\/]+$/, "");
  return trimmed.slice(Math.max(trimmed.lastIndexOf("/"), trimmed.lastIndexOf("\\")) + 1);
}
