import { strictEqual } from "node:assert/strict";
import { EMPTY_SHA256, encodeKeyPath, SigV4Signer, UNSIGNED_PAYLOAD } from "./sigv4.ts";

const EXAMPLE = {
  accessKeyId: "AKIAIOSFODNN7EXAMPLE",
  secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
  source: "AWS's documentation",
};

Deno.test("SigV4Signer signs AWS's documented S3 GetObject example to its signature", () => {
  const signer = new SigV4Signer(EXAMPLE, "us-east-1");
  const headers = signer.sign({
    method: "GET",
    host: "examplebucket.s3.amazonaws.com",
    path: "/test.txt",
    query: [],
    headers: { Range: "bytes=0-9" },
    payloadHash: EMPTY_SHA256,
    date: new Date("2013-05-24T00:00:00Z"),
  });
  strictEqual(headers["x-amz-date"], "20130524T000000Z");
  strictEqual(
    headers.authorization,
    "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, " +
      "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, " +
      "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
  );
});

Deno.test("SigV4Signer signs AWS's documented ListObjects example (query sorted and encoded)", () => {
  const signer = new SigV4Signer(EXAMPLE, "us-east-1");
  const headers = signer.sign({
    method: "GET",
    host: "examplebucket.s3.amazonaws.com",
    path: "/",
    query: [["prefix", "J"], ["max-keys", "2"]],
    headers: {},
    payloadHash: EMPTY_SHA256,
    date: new Date("2013-05-24T00:00:00Z"),
  });
  strictEqual(
    headers.authorization.split("Signature=")[1],
    "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7",
  );
});

Deno.test("SigV4Signer adds the session token and the payload hash as headers", () => {
  const signer = new SigV4Signer({ ...EXAMPLE, sessionToken: "token" }, "eu-west-1");
  const headers = signer.sign({
    method: "PUT",
    host: "h",
    path: "/b/k",
    query: [],
    headers: {},
    payloadHash: UNSIGNED_PAYLOAD,
  });
  strictEqual(headers["x-amz-security-token"], "token");
  strictEqual(headers["x-amz-content-sha256"], "UNSIGNED-PAYLOAD");
  strictEqual(
    headers.authorization.split(", ")[1],
    "SignedHeaders=host;x-amz-content-sha256;x-amz-date;x-amz-security-token",
  );
});

Deno.test("encodeKeyPath keeps slashes and encodes everything else S3 wants encoded", () => {
  strictEqual(encodeKeyPath("a b/c+d/ü!*'()~._-"), "a%20b/c%2Bd/%C3%BC%21%2A%27%28%29~._-");
});
