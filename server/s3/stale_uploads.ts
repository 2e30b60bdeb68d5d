/**
 * `abortStaleUploads()`: the cleanup of multipart uploads that a server left
 * behind when it was killed mid-upload. Such an upload is invisible (no
 * object until completion) but its parts take room in the store until it is
 * aborted.
 *
 * Several servers share the bucket, and a multipart upload carries no mark
 * of its server, so the cleanup must not take an upload still alive on
 * another server for a dead one. It aborts only uploads that are
 * - initiated more than `olderThanMs` ago (default
 *   {@linkcode STALE_UPLOAD_MS}): longer than any upload is expected to run,
 *   so an upload through a live server is never cut short unless it lasts
 *   that long (docs/SECURITY.md); and
 * - not referred to by a kept upload's record (taken up or not): those go
 *   with the sweep of kept uploads (`--partial-ttl`) instead;
 * - not this storage's own uploads in progress.
 *
 * @module
 */

import type { ObjectStore } from "./object_store.ts";
import type { S3KeptUploads } from "./s3_kept_uploads.ts";
import { storeStep } from "./s3_errors.ts";

/** A multipart upload initiated longer ago than this is taken for a dead server's, by default. */
export const STALE_UPLOAD_MS = 24 * 60 * 60 * 1000;

/** Options of {@linkcode abortStaleUploads}. */
export interface StaleUploadOptions {
  /** Uploads initiated longer ago than this may be aborted. */
  olderThanMs: number;
  /** Ids of this storage's own uploads in progress: never aborted. */
  own: Set<string>;
}

/**
 * Aborts the stale multipart uploads in the bucket.
 *
 * @param store The bucket.
 * @param kept The kept uploads (whose multipart uploads stay).
 * @param options The age bound and the uploads in progress here.
 * @returns How many were aborted.
 */
export async function abortStaleUploads(
  store: ObjectStore,
  kept: S3KeptUploads,
  options: StaleUploadOptions,
): Promise<number> {
  const before = Date.now() - options.olderThanMs;
  const uploads = await storeStep("list multipart uploads", store.label, () => store.listMultipartUploads(""));
  const stale = uploads.filter((upload) => upload.initiated < before && !options.own.has(upload.uploadId));
  if (stale.length === 0) return 0;
  const keptIds = await kept.uploadIds();
  let aborted = 0;
  for (const upload of stale) {
    if (keptIds.has(upload.uploadId)) continue;
    await storeStep(
      "abort a stale multipart upload",
      store.label,
      () => store.abortMultipart(upload.key, upload.uploadId),
    );
    aborted++;
  }
  return aborted;
}
