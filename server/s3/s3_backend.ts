/**
 * `openS3Backend()`: what `dfos serve --storage s3://BUCKET[/PREFIX]` stores
 * files in: an {@linkcode S3Storage} on the bucket's `ObjectStore`
 * (s3_client.ts), with the cleanup of dead servers' multipart uploads run
 * at start-up and every {@linkcode CLEANUP_INTERVAL_MS}. Its options are
 * plain data, so that they cross into the server's sandbox (server/sandbox.ts),
 * credentials included: the worker reads no environment.
 *
 * The module is loaded only when S3 is asked for (server.ts imports it
 * dynamically): a server on the local disk pays nothing for it.
 *
 * @module
 */

import { openObjectStore, type S3StoreOptions } from "./s3_client.ts";
import { S3Storage } from "./s3_storage.ts";

/** How often a server looks for multipart uploads a dead server left. */
export const CLEANUP_INTERVAL_MS = 10 * 60 * 1000;

/** Where the files are: the store's options (credentials included), and the cleanup's bound. */
export interface S3BackendOptions extends S3StoreOptions {
  /** A multipart upload initiated longer ago than this, and not kept, is a dead server's (default: 24 h). */
  staleUploadMs?: number;
}

/**
 * Opens the storage on the bucket: a first request (the cleanup) checks
 * that the bucket can be reached with the credentials given.
 *
 * @param options The bucket, prefix, endpoint, region, addressing and credentials.
 * @param onCleanupError Told of a later cleanup's failure (to log it).
 * @returns The storage.
 * @throws {Error} When the bucket cannot be reached or used: the message says which and why.
 */
export async function openS3Backend(
  options: S3BackendOptions,
  onCleanupError: (error: unknown) => void,
): Promise<S3Storage> {
  const store = await openObjectStore(options);
  try {
    return await S3Storage.open(store, {
      staleUploadMs: options.staleUploadMs,
      cleanupIntervalMs: CLEANUP_INTERVAL_MS,
      onCleanupError,
    });
  } catch (error) {
    throw new Error(`Cannot use the object store ${store.label}: ${(error as Error).message}`, { cause: error });
  }
}
