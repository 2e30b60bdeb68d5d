import assert from "node:assert/strict";
import { connReadable } from "./conn_readable.ts";
import type { PooledBytes } from "./pooled_bytes.ts";

/** A fake connection that fills each read with as much as `available` says, and records the room it was given. */
function fakeConn(available: number[]) {
  const rooms: number[] = [];
  let next = 0;
  return {
    rooms,
    read(buffer: Uint8Array): Promise<number | null> {
      rooms.push(buffer.length);
      if (next === available.length) return Promise.resolve(null);
      const n = Math.min(available[next++], buffer.length);
      buffer.fill(next, 0, n);
      return Promise.resolve(n);
    },
  };
}

async function drain(stream: ReadableStream<PooledBytes>): Promise<Uint8Array[]> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of stream) chunks.push(chunk.bytes);
  return chunks;
}

Deno.test("connReadable starts with a small block, so an idle connection holds little", async () => {
  const conn = fakeConn([100]);
  const chunks = await drain(connReadable(conn));
  assert.equal(conn.rooms[0], 16 * 1024);
  assert.deepEqual(chunks.map((chunk) => chunk.length), [100]);
});

Deno.test("connReadable grows its blocks fourfold while reads fill them, up to the largest", async () => {
  const conn = fakeConn(Array(8).fill(Infinity));
  await drain(connReadable(conn, { minBlockSize: 1024, maxBlockSize: 64 * 1024 }));
  assert.deepEqual(conn.rooms.slice(0, 6), [1024, 4096, 16384, 65536, 65536, 65536]);
});

Deno.test("connReadable drops back to small blocks after a small read, and gives its large block back", async () => {
  const conn = fakeConn([Infinity, Infinity, 10, Infinity]);
  await drain(connReadable(conn, { minBlockSize: 1024, maxBlockSize: 64 * 1024 }));
  // 1024 (full) -> 4096 (full) -> 16384 block, only 10 bytes came -> a small block again, not the large one's rest
  assert.deepEqual(conn.rooms.slice(0, 4), [1024, 4096, 16384, 1024]);
});

Deno.test("connReadable hands out views of blocks that are never written again", async () => {
  const conn = fakeConn([300, 300, 300]);
  const chunks = await drain(connReadable(conn, { minBlockSize: 1024 }));
  assert.deepEqual(chunks.map((chunk) => chunk[0]), [1, 2, 3], "each chunk keeps its own bytes");
  assert.ok(chunks.every((chunk) => chunk.every((byte) => byte === chunk[0])));
});

Deno.test("connReadable closes quietly when the connection is closed under a pending read", async () => {
  const conn = { read: () => Promise.reject(new Deno.errors.BadResource("closed")) };
  assert.deepEqual(await drain(connReadable(conn)), []);
});
