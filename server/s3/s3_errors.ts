/**
 * How a failed object operation reaches the client: `ObjectStoreError`
 * kinds become `DfosError`s with a message that says what could not be done
 * and why. A store that is unreachable or failing is `INTERNAL` with a
 * message of its own ("the object store ... is unavailable"), so that a
 * client is told plainly that the storage, not its request, failed, with the
 * HTTP status and S3 code in brackets.
 *
 * @module
 */

import { DfosError, Status } from "../../shared/status.ts";
import { ObjectStoreError } from "./object_store.ts";

/**
 * The `DfosError` a failed object operation gives the client.
 *
 * @param error What the operation threw.
 * @param action What could not be done, as `Cannot <action>` ("store \"a\"").
 * @param store The store's label, for the message.
 * @returns The error to throw: `error` itself unless it is an `ObjectStoreError`.
 */
export function storeFailure(error: unknown, action: string, store: string): unknown {
  if (!(error instanceof ObjectStoreError)) return error;
  const details = error.status === 0 ? "no answer" : `HTTP ${error.status}${error.code ? " " + error.code : ""}`;
  switch (error.kind) {
    case "not-found":
      return new DfosError(Status.NOT_FOUND, `Cannot ${action}: it is gone`);
    case "precondition":
    case "conflict":
      return new DfosError(Status.CONFLICT, `Cannot ${action}: it was changed by another request meanwhile`);
    case "unavailable":
      return new DfosError(
        Status.INTERNAL,
        `Cannot ${action}: the object store ${store} is unavailable (${details}); try again`,
      );
    case "refused":
      return new DfosError(Status.INTERNAL, `Cannot ${action}: the object store ${store} refused it (${details})`);
  }
}

/**
 * Runs `step`, an object operation, and throws its failure as
 * {@linkcode storeFailure} maps it.
 *
 * @param action What is done, for the message.
 * @param store The store's label.
 * @param step The operation.
 * @returns What `step` returns.
 */
export async function storeStep<T>(action: string, store: string, step: () => Promise<T>): Promise<T> {
  try {
    return await step();
  } catch (error) {
    throw storeFailure(error, action, store);
  }
}

/**
 * True when `error` is a lost condition (`precondition` or `conflict`).
 *
 * @param error Anything thrown.
 */
export function isLostCondition(error: unknown): boolean {
  return error instanceof ObjectStoreError && (error.kind === "precondition" || error.kind === "conflict");
}
