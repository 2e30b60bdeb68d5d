import { strictEqual, throws } from "node:assert/strict";
import { errorKind, S3Connection } from "./s3_client.ts";

Deno.test("errorKind maps S3's answers to what a caller may do", () => {
  strictEqual(errorKind(404, "NoSuchKey", false), "not-found");
  strictEqual(errorKind(404, "NoSuchUpload", true), "not-found");
  strictEqual(errorKind(412, "PreconditionFailed", true), "precondition");
  strictEqual(errorKind(409, "ConditionalRequestConflict", true), "conflict");
  strictEqual(errorKind(409, "OperationAborted", false), "conflict");
  strictEqual(errorKind(400, "EntityTooSmall", false), "refused");
  strictEqual(errorKind(403, "SignatureDoesNotMatch", false), "refused");
  strictEqual(errorKind(416, "InvalidRange", false), "refused");
  strictEqual(errorKind(503, "SlowDown", false), "unavailable");
  strictEqual(errorKind(500, "InternalError", false), "unavailable");
});

Deno.test("errorKind: a 500 to a conditional request is a lost race only without a code or as UnknownError", () => {
  strictEqual(errorKind(500, "UnknownError", true), "precondition");
  strictEqual(errorKind(500, "", true), "precondition");
  strictEqual(errorKind(500, "UnknownError", false), "unavailable");
  strictEqual(errorKind(500, "InternalError", true), "unavailable");
  strictEqual(errorKind(503, "", true), "unavailable");
});

Deno.test("S3Connection refuses an endpoint that is not http or https", () => {
  const credentials = { accessKeyId: "a", secretAccessKey: "s", source: "test" };
  throws(
    () => new S3Connection({ bucket: "b", endpoint: "ftp://127.0.0.1:21" }, credentials),
    /Cannot use S3 endpoint "ftp:\/\/127.0.0.1:21": not an http or https URL/,
  );
});
