/**
 * `S3Events`: where the S3 modules report what only they see, for the
 * metrics (`Storage.observe`, server/storage.ts): a conditional write lost to
 * another writer (`conflict`), a multipart upload open on this server and
 * its end (`multipartOpened`, `multipartClosed`). Until the server gives its
 * `StorageEvents` (or with none, as in a test of the storage alone) a report
 * goes nowhere; a report never throws, whatever the events do.
 *
 * @example Usage
 * ```ts
 * import { S3Events } from "./s3_events.ts";
 * import { strictEqual } from "node:assert/strict";
 * const events = new S3Events();
 * let conflicts = 0;
 * events.conflict(); // not observed yet: nowhere
 * events.observe({ conflict: () => conflicts++, multipartOpened() {}, multipartClosed() {} });
 * events.conflict();
 * strictEqual(conflicts, 1);
 * ```
 *
 * @module
 */

import type { StorageEvents } from "../storage.ts";

/** The S3 backend's reports, passed on to the events the server observes it with. */
export class S3Events implements StorageEvents {
  #events: StorageEvents | null = null;

  /**
   * Sends the reports from now on to `events`.
   *
   * @param events The server's events.
   */
  observe(events: StorageEvents): void {
    this.#events = events;
  }

  /** A conditional write was refused: another writer changed the object first. */
  conflict(): void {
    try {
      this.#events?.conflict();
    } catch {
      // a count never fails the storage
    }
  }

  /** A multipart upload is open on this server (created, or a kept one taken up). */
  multipartOpened(): void {
    try {
      this.#events?.multipartOpened();
    } catch {
      // a count never fails the storage
    }
  }

  /** A multipart upload open on this server was completed, aborted or kept for a later try. */
  multipartClosed(): void {
    try {
      this.#events?.multipartClosed();
    } catch {
      // a count never fails the storage
    }
  }
}
