import assert from "node:assert/strict";
import { parseServerAddress } from "./connection.ts";

Deno.test("parseServerAddress reads host:port, a bare host and [IPv6]:port", () => {
  assert.deepEqual(parseServerAddress("127.0.0.1:5000"), { hostname: "127.0.0.1", port: 5000 });
  assert.deepEqual(parseServerAddress("files.example"), { hostname: "files.example", port: 5000 });
  assert.deepEqual(parseServerAddress("[::1]:6000"), { hostname: "::1", port: 6000 });
});

Deno.test("parseServerAddress refuses a port out of range or garbage", () => {
  for (const bad of ["host:0", "host:70000", "host:", ":5000", "a:b:c", "", "[::1"]) {
    assert.throws(() => parseServerAddress(bad), TypeError, bad);
  }
});
