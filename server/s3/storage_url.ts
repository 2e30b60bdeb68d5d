/**
 * `parseStorageUrl()`: the bucket and key prefix of `dfos serve --storage
 * s3://BUCKET[/PREFIX]`, in a module of its own so that reading the flag
 * loads nothing of the S3 backend.
 *
 * @module
 */

import { UsageError } from "../../shared/cli.ts";

/**
 * Reads `--storage s3://BUCKET[/PREFIX]`: the bucket and the key prefix
 * (without a trailing "/").
 *
 * @param value The flag's text.
 * @returns The bucket and prefix.
 *
 * @example Usage
 * ```ts
 * import { parseStorageUrl } from "./storage_url.ts";
 * import { deepStrictEqual } from "node:assert/strict";
 * deepStrictEqual(parseStorageUrl("s3://files/dfos/"), { bucket: "files", prefix: "dfos" });
 * ```
 */
export function parseStorageUrl(value: string): { bucket: string; prefix: string } {
  const match = /^s3:\/\/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:\/(.*))?$/.exec(value);
  if (match === null) {
    throw new UsageError(`--storage takes s3://BUCKET or s3://BUCKET/PREFIX (a valid bucket name), not "${value}"`);
  }
  const prefix = (match[2] ?? "").replace(/\/+$/, "");
  if (prefix.split("/").some((segment) => segment === "" || segment === "." || segment === "..") && prefix !== "") {
    throw new UsageError(`--storage: the prefix "${prefix}" has an empty, "." or ".." segment`);
  }
  return { bucket: match[1], prefix };
}
