/**
 * Run by tests/s3_tls_test.ts in a process of its own (DENO_CERT is read at
 * start-up): puts a small and a large object through an S3ObjectStore on
 * the https endpoint PROBE_ENDPOINT (bucket PROBE_BUCKET), gets them back,
 * and prints `ok <size> <size>` or the error.
 *
 * Internal to tests/: nothing here is part of dfos.
 *
 * @module
 */

import { openObjectStore } from "../server/s3/s3_client.ts";

const store = await openObjectStore({
  bucket: Deno.env.get("PROBE_BUCKET")!,
  endpoint: Deno.env.get("PROBE_ENDPOINT")!,
  pathStyle: true,
  credentials: {
    accessKeyId: Deno.env.get("S3_ACCESS_KEY")!,
    secretAccessKey: Deno.env.get("S3_SECRET_KEY")!,
    source: "test",
  },
});
const sizes: number[] = [];
for (const size of [100, 3 << 20]) {
  const body = new Uint8Array(size).map((_, i) => i % 251);
  await store.put(`tls-${size}`, body);
  const got = await store.get(`tls-${size}`);
  const bytes = new Uint8Array(await new Response(got!.body).arrayBuffer());
  if (bytes.byteLength !== size || bytes.some((byte, i) => byte !== i % 251)) throw new Error(`tls-${size} differs`);
  sizes.push(bytes.byteLength);
}
console.log(`ok ${sizes.join(" ")}`);
