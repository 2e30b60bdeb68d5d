import { deepStrictEqual, throws } from "node:assert/strict";
import { UsageError } from "../../shared/cli.ts";
import { parseStorageUrl } from "./storage_url.ts";

Deno.test("parseStorageUrl() reads the bucket and the prefix, without slashes at its end", () => {
  deepStrictEqual(parseStorageUrl("s3://files"), { bucket: "files", prefix: "" });
  deepStrictEqual(parseStorageUrl("s3://files/"), { bucket: "files", prefix: "" });
  deepStrictEqual(parseStorageUrl("s3://my.files-1/a/b//"), { bucket: "my.files-1", prefix: "a/b" });
});

Deno.test("parseStorageUrl() refuses what is not s3://BUCKET[/PREFIX] as a usage error", () => {
  for (const bad of ["files", "http://files", "s3://", "s3://Files", "s3://a", "s3://files/a//b", "s3://files/../x"]) {
    throws(() => parseStorageUrl(bad), UsageError, bad);
  }
});
