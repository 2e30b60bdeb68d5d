/**
 * The S3 client over TLS: a TLS proxy (certificate from a CA of the test's
 * own) in front of the real engine, and an S3ObjectStore on its `https://`
 * endpoint in a process that trusts the CA by `DENO_CERT`, as an operator
 * with a private CA would run dfos. Small requests go through fetch, the
 * large put on a TLS connection of its own (http1_request.ts).
 *
 * @module
 */

import { ok, strictEqual } from "node:assert/strict";
import { makeCertificate } from "./_common.ts";
import { s3Test, tellS3Ignored } from "./_s3.ts";

tellS3Ignored("tests/s3_tls_test.ts");

s3Test(
  "S3ObjectStore over TLS (a private CA given by DENO_CERT) puts and gets small and large bodies",
  async (bucket) => {
    const dir = await Deno.makeTempDir({ prefix: "dfos-s3-tls-" });
    const engine = new URL(bucket.engine.endpoint);
    const ca = await makeCertificate(dir, "ca", { ca: true });
    const cert = await makeCertificate(dir, "s3", { issuer: ca, names: ["DNS:localhost"] });
    const listener = Deno.listenTls({ hostname: "127.0.0.1", port: 0, cert: cert.cert, key: cert.key });
    const pipes: Promise<unknown>[] = [];
    const accepting = (async () => {
      for await (const tls of listener) {
        const plain = await Deno.connect({ hostname: engine.hostname, port: Number(engine.port) });
        pipes.push(Promise.allSettled([tls.readable.pipeTo(plain.writable), plain.readable.pipeTo(tls.writable)]));
      }
    })();
    try {
      const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
        args: ["run", "--allow-all", new URL("./_s3_tls_probe.ts", import.meta.url).pathname],
        env: {
          DENO_CERT: ca.certFile,
          PROBE_ENDPOINT: `https://localhost:${listener.addr.port}`,
          PROBE_BUCKET: bucket.name,
          RUST_BACKTRACE: "0",
          NO_COLOR: "1",
        },
        stdout: "piped",
        stderr: "piped",
      }).output();
      const said = new TextDecoder().decode(stdout) + new TextDecoder().decode(stderr);
      strictEqual(code, 0, said);
      ok(said.includes(`ok 100 ${3 << 20}`), said);
    } finally {
      listener.close();
      await accepting.catch(() => {});
      await Promise.all(pipes);
      await Deno.remove(dir, { recursive: true });
    }
  },
);
