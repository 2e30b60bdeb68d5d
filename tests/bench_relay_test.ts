/**
 * The benchmark's counting relay (bench/relay.ts): it forwards both ways
 * unchanged, counts each way, and a cut delivers exactly the bytes asked
 * for and no more.
 *
 * @module
 */

import { deepStrictEqual } from "node:assert/strict";
import { CountingRelay } from "../bench/relay.ts";

/** A server that answers every connection with `reply` and reports what it read. */
function startServer(reply: Uint8Array): { port: number; received: Promise<number>[]; close(): void } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const received: Promise<number>[] = [];
  (async () => {
    for await (const conn of listener) {
      received.push((async () => {
        await conn.write(reply);
        const buffer = new Uint8Array(65536);
        let total = 0;
        try {
          for (;;) {
            const n = await conn.read(buffer);
            if (n === null) break;
            total += n;
          }
        } catch {
          // reset by the relay
        }
        conn.close();
        return total;
      })());
    }
  })().catch(() => {});
  return { port: (listener.addr as Deno.NetAddr).port, received, close: () => listener.close() };
}

async function readAll(conn: Deno.Conn): Promise<number> {
  const buffer = new Uint8Array(65536);
  let total = 0;
  for (;;) {
    const n = await conn.read(buffer).catch(() => null);
    if (n === null) return total;
    total += n;
  }
}

Deno.test("the relay forwards both ways and counts each", async () => {
  const server = startServer(new Uint8Array(12_345).fill(7));
  const relay = CountingRelay.start(server.port);
  try {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: relay.port });
    const reading = readAll(conn);
    const body = new Uint8Array(300_000).fill(1);
    for (let written = 0; written < body.length;) written += await conn.write(body.subarray(written));
    await conn.closeWrite();
    deepStrictEqual(await waitFor(server.received, 0), 300_000);
    deepStrictEqual(await reading, 12_345);
    conn.close();
    deepStrictEqual([relay.up, relay.down, relay.total], [300_000, 12_345, 312_345]);
  } finally {
    await relay.close();
    server.close();
  }
});

Deno.test("a cut delivers exactly the bytes asked for, then the counters start again after a reset", async () => {
  const server = startServer(new Uint8Array(0));
  const relay = CountingRelay.start(server.port);
  try {
    let cutAt = -1;
    let conn: Deno.Conn | null = null;
    relay.cutAt(100_000.6, () => {
      cutAt = relay.up;
      conn?.close();
    });
    conn = await Deno.connect({ hostname: "127.0.0.1", port: relay.port });
    try {
      for (let i = 0; i < 20; i++) await conn.write(new Uint8Array(65536));
      conn.close();
    } catch {
      // closed by the cut
    }
    deepStrictEqual(await waitFor(server.received, 0), 100_000);
    deepStrictEqual(cutAt, 100_000);
    relay.reset();
    deepStrictEqual(relay.up, 0);
    const again = await Deno.connect({ hostname: "127.0.0.1", port: relay.port });
    await again.write(new Uint8Array(5000));
    await again.closeWrite();
    deepStrictEqual(await waitFor(server.received, 1), 5000);
    again.close();
    deepStrictEqual(relay.up, 5000);
  } finally {
    await relay.close();
    server.close();
  }
});

/** The server's count for its `index`th connection, once it has accepted it. */
async function waitFor(received: Promise<number>[], index: number): Promise<number> {
  for (let tries = 0; received[index] === undefined && tries < 500; tries++) {
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return await received[index];
}
