/**
 * `connectionLost()`: tells a failure of one file, after which push and pull
 * go on with the next, from the loss of the connection, which ends the run.
 *
 * @module
 */

/**
 * True for an error after which no other file can be tried: the connection is gone.
 *
 * @param error What a step threw.
 * @returns True when the run must stop.
 */
export function connectionLost(error: unknown): boolean {
  return error instanceof Deno.errors.ConnectionReset || error instanceof Deno.errors.BrokenPipe ||
    error instanceof Deno.errors.UnexpectedEof ||
    (error instanceof Error && error.name !== "DfosError" && /connection closed/i.test(error.message));
}
