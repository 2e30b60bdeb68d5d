import { deepStrictEqual, ok, rejects, strictEqual } from "node:assert/strict";
import { type Http1Options, http1Request, type Http1Target } from "./http1_request.ts";

/** Runs `fn` against a Deno.serve server on port 0 that answers with `handler`. */
async function withServer(
  handler: (request: Request) => Response | Promise<Response>,
  fn: (target: Http1Target) => Promise<void>,
): Promise<void> {
  const abort = new AbortController();
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, signal: abort.signal, onListen() {} }, handler);
  try {
    await fn({ hostname: "127.0.0.1", port: server.addr.port, tls: false, host: `127.0.0.1:${server.addr.port}` });
  } finally {
    abort.abort();
    await server.finished;
  }
}

const options = (extra: Partial<Http1Options>): Http1Options => ({
  method: "GET",
  path: "/",
  headers: {},
  timeoutMs: 5000,
  readChunkSize: 1 << 20,
  ...extra,
});

Deno.test("http1Request sends the body and reads a Content-Length answer in chunks of readChunkSize", async () => {
  const sent = new Uint8Array(3 << 20).map((_, i) => i % 251);
  await withServer(async (request) => {
    const got = new Uint8Array(await request.arrayBuffer());
    return new Response(got, { status: 201, headers: { "x-seen": String(got.byteLength), etag: '"e"' } });
  }, async (target) => {
    const response = await http1Request(target, options({ method: "PUT", path: "/k?a=1", body: sent }));
    strictEqual(response.status, 201);
    strictEqual(response.headers.get("x-seen"), String(sent.byteLength));
    strictEqual(response.headers.get("etag"), '"e"');
    const sizes: number[] = [];
    const parts: Uint8Array[] = [];
    for await (const chunk of response.body!) {
      sizes.push(chunk.byteLength);
      parts.push(chunk);
    }
    deepStrictEqual(sizes, [1 << 20, 1 << 20, 1 << 20]);
    deepStrictEqual(new Uint8Array(await new Blob(parts as BlobPart[]).arrayBuffer()), sent);
  });
});

Deno.test("http1Request reads a chunked answer, a HEAD's and a 204's", async () => {
  await withServer((request) => {
    if (request.method === "HEAD") return new Response(null, { headers: { "x-size": "5" } });
    if (request.method === "DELETE") return new Response(null, { status: 204 });
    const pieces = ["<a>", "hello ", "world", "</a>"];
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        const piece = pieces.shift();
        if (piece === undefined) controller.close();
        else controller.enqueue(new TextEncoder().encode(piece));
      },
    });
    return new Response(body, { status: 404 });
  }, async (target) => {
    const chunked = await http1Request(target, options({}));
    strictEqual(chunked.status, 404);
    strictEqual(chunked.headers.get("transfer-encoding"), "chunked");
    strictEqual(await chunked.text(), "<a>hello world</a>");
    const head = await http1Request(target, options({ method: "HEAD" }));
    strictEqual(head.headers.get("x-size"), "5");
    strictEqual(head.body, null);
    const empty = await http1Request(target, options({ method: "DELETE" }));
    strictEqual(empty.status, 204);
  });
});

Deno.test("http1Request fails when no answer comes in time, and when the signal aborts", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const held: Deno.Conn[] = [];
  const accepting = (async () => {
    for await (const conn of listener) held.push(conn);
  })();
  const target = { hostname: "127.0.0.1", port: listener.addr.port, tls: false, host: "h" };
  try {
    await rejects(http1Request(target, options({ timeoutMs: 200 })), /no answer in 200 ms/);
    const abort = new AbortController();
    const pending = http1Request(target, options({ signal: abort.signal }));
    abort.abort(new Error("stopped"));
    await rejects(pending, /stopped/);
  } finally {
    listener.close();
    await accepting.catch(() => {});
    for (const conn of held) conn.close();
  }
});

Deno.test("http1Request's body fails when the connection closes before Content-Length bytes", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const serving = (async () => {
    const conn = await listener.accept();
    await conn.read(new Uint8Array(4096));
    await conn.write(new TextEncoder().encode("HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nonly ten b"));
    conn.close();
  })();
  try {
    const response = await http1Request(
      { hostname: "127.0.0.1", port: listener.addr.port, tls: false, host: "h" },
      options({}),
    );
    strictEqual(response.status, 200);
    await rejects(response.arrayBuffer(), (error: Error) => {
      ok(/closed 90 bytes before the body's end/.test(error.message), error.message);
      return true;
    });
  } finally {
    await serving;
    listener.close();
  }
});

Deno.test("http1Request refuses a header with a line break (no header injection)", async () => {
  await withServer(() => new Response("never"), async (target) => {
    await rejects(
      http1Request(target, options({ headers: { "x-amz-meta-a": "1\r\nx-evil: 2" } })),
      /Cannot send header "x-amz-meta-a": it contains a line break/,
    );
  });
});

Deno.test("http1Request hands a large chunk of a chunked answer out in pieces of readChunkSize", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const serving = (async () => {
    const conn = await listener.accept();
    await conn.read(new Uint8Array(4096));
    const head = "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n";
    await conn.write(new TextEncoder().encode(`${head}a\r\n0123456789\r\n3;ext=1\r\nabc\r\n0\r\nx-trailer: 1\r\n\r\n`));
    conn.close();
  })();
  try {
    const response = await http1Request(
      { hostname: "127.0.0.1", port: listener.addr.port, tls: false, host: "h" },
      options({ readChunkSize: 4 }),
    );
    const pieces: string[] = [];
    for await (const piece of response.body!) pieces.push(new TextDecoder().decode(piece));
    deepStrictEqual(pieces, ["0123", "4567", "89", "abc"]);
  } finally {
    await serving;
    listener.close();
  }
});
