/**
 * `partialPath()`: where a resumable download to a local file keeps what it
 * has received so far. Apart from client/chunk_download.ts so that `get` can
 * look for a partial without loading the chunk machinery (and `node:crypto`)
 * at start.
 *
 * @module
 */

import { basename, dirname, join } from "node:path";

/**
 * The partial file of a resumable download to `path`: hidden, beside it.
 *
 * @param path The target.
 * @returns `DIR/.NAME.dfos-partial`.
 */
export function partialPath(path: string): string {
  return join(dirname(path), `.${basename(path)}.dfos-partial`);
}
