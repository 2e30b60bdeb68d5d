import assert from "node:assert/strict";
import { join } from "node:path";
import { fileChunks } from "./file_chunks.ts";
import { MAX_DATA_PAYLOAD } from "./frames.ts";

const SIZE = 3 * MAX_DATA_PAYLOAD + 123;
const bytes = new Uint8Array(SIZE).map((_, i) => (i * 7) % 256);

async function withFile(fn: (file: Deno.FsFile) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir();
  const path = join(dir, "f");
  await Deno.writeFile(path, bytes);
  const file = await Deno.open(path);
  try {
    await fn(file);
  } finally {
    file.close();
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("fileChunks yields the whole file in chunks of at most one DATA payload, none reused while held", async () => {
  await withFile(async (file) => {
    const chunks: Uint8Array[] = [];
    for await (const chunk of fileChunks(file)) chunks.push(chunk.bytes);
    assert.deepEqual(chunks.map((chunk) => chunk.length), [MAX_DATA_PAYLOAD, MAX_DATA_PAYLOAD, MAX_DATA_PAYLOAD, 123]);
    assert.equal(new Set(chunks.map((chunk) => chunk.buffer)).size, chunks.length, "no buffer is reused");
    const whole = new Uint8Array(SIZE);
    let offset = 0;
    for (const chunk of chunks) {
      whole.set(chunk, offset);
      offset += chunk.length;
    }
    assert.deepEqual(whole, bytes);
  });
});

Deno.test("fileChunks without read-ahead yields the same chunks, each read in turn", async () => {
  await withFile(async (file) => {
    const chunks: Uint8Array[] = [];
    for await (const chunk of fileChunks(file, { readAhead: false })) {
      chunks.push(chunk.bytes.slice());
      chunk.release();
    }
    assert.deepEqual(chunks.map((chunk) => chunk.length), [MAX_DATA_PAYLOAD, MAX_DATA_PAYLOAD, MAX_DATA_PAYLOAD, 123]);
    const whole = new Uint8Array(SIZE);
    let offset = 0;
    for (const chunk of chunks) {
      whole.set(chunk, offset);
      offset += chunk.length;
    }
    assert.deepEqual(whole, bytes);
  });
});

Deno.test("fileChunks stops at the limit", async () => {
  await withFile(async (file) => {
    let total = 0;
    for await (const chunk of fileChunks(file, { limit: MAX_DATA_PAYLOAD + 5 })) total += chunk.length;
    assert.equal(total, MAX_DATA_PAYLOAD + 5);
  });
});

Deno.test("fileChunks lets its caller stop early without a read left running", async () => {
  // The ops sanitizer fails this test if the read-ahead is still pending when the file is closed.
  await withFile(async (file) => {
    for await (const chunk of fileChunks(file)) {
      assert.equal(chunk.length, MAX_DATA_PAYLOAD);
      break;
    }
  });
});

Deno.test("fileChunks reads into a chunk's block again once its hold is given back", async () => {
  await withFile(async (file) => {
    const buffers: ArrayBufferLike[] = [];
    const whole: number[] = [];
    for await (const chunk of fileChunks(file)) {
      buffers.push(chunk.bytes.buffer);
      whole.push(...chunk.bytes.subarray(0, 16));
      // As the channel does once the socket has taken the bytes.
      chunk.release();
    }
    assert.ok(new Set(buffers).size < buffers.length, "a block was read into again");
    assert.equal(whole.length, 16 * 4);
    for (let i = 0; i < 3; i++) {
      assert.deepEqual(whole.slice(16 * i, 16 * i + 16), [
        ...bytes.subarray(i * MAX_DATA_PAYLOAD, i * MAX_DATA_PAYLOAD + 16),
      ]);
    }
  });
});
