/**
 * `closeQuietly()`: closes a connection or file that may be closed already,
 * for the paths that give a resource up (a refusal, a timeout, a failed
 * handshake) and have nothing to say if it is gone. Any other error from
 * `close()` is swallowed too: the caller is abandoning the resource.
 *
 * @module
 */

/**
 * Closes `resource`, ignoring that it is closed already.
 *
 * @param resource A connection, file or anything else with `close()`.
 *
 * @example Usage
 * ```ts
 * import assert from "node:assert/strict";
 * import { closeQuietly } from "./close_quietly.ts";
 * const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
 * closeQuietly(listener);
 * closeQuietly(listener); // closed already: nothing thrown
 * assert.throws(() => listener.close(), Deno.errors.BadResource);
 * ```
 */
export function closeQuietly(resource: { close(): void }): void {
  try {
    resource.close();
  } catch {
    // Closed already.
  }
}
