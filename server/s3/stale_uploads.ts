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
 *   {@linkcode STALE_UPLOAD_MS}), and with no part written since then
 *   either (ListParts): an upload alive on another server writes a part
 *   every 8 MiB, so only one that moved nothing for that long is taken for
 *   dead, however long it has been running (docs/SECURITY.md); and
 * - not referred to by a kept upload's record (taken up or not): those go
 *   with the sweep of kept uploads (`--partial-ttl`) instead;
 * - not this storage's own uploads in progress.
 *
 * @module
 */

import { type ObjectStore, ObjectStoreError } from "./object_store.ts";
import type { S3KeptUploads } from "./s3_kept_uploads.ts";
import { storeFailure, storeStep } from "./s3_errors.ts";

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
    if (await lastActivity(store, upload.key, upload.uploadId) >= before) continue; // still moving
    await storeStep(
      "abort a stale multipart upload",
      store.label,
      () => store.abortMultipart(upload.key, upload.uploadId),
    );
    aborted++;
  }
  return aborted;
}

/** When the multipart upload last took a part (0 for none); gone already: now, so that it is left alone. */
async function lastActivity(store: ObjectStore, key: string, uploadId: string): Promise<number> {
  try {
    const parts = await store.listParts(key, uploadId);
    return parts.reduce((latest, part) => Math.max(latest, part.lastModified ?? 0), 0);
  } catch (error) {
    if (error instanceof ObjectStoreError && error.kind === "not-found") return Date.now();
    throw storeFailure(error, "list the parts of a stale multipart upload", store.label);
  }
}
