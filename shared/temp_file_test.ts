import assert from "node:assert/strict";
import { join } from "node:path";
import { BLOCK_BYTES, transferMemory, WRITE_BEHIND_TOTAL_BYTES } from "./transfer_memory.ts";
import { TempFile, WRITE_BEHIND_BYTES } from "./temp_file.ts";

function chunk(size: number, seed: number): Uint8Array {
  return new Uint8Array(size).map((_, i) => (i * 31 + seed) % 256);
}

Deno.test("TempFile keeps the order of queued writes beyond the write-behind limit", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const chunks = Array.from({ length: 3 * WRITE_BEHIND_BYTES / (1 << 20) + 3 }, (_, i) => chunk((1 << 20) - i, i));
    const temp = await TempFile.create(join(dir, "t.part"));
    for (const piece of chunks) await temp.write(piece);
    const total = chunks.reduce((sum, piece) => sum + piece.length, 0);
    assert.equal((await temp.stat()).size, total, "stat waits for the queue");
    await temp.moveTo(join(dir, "final"));
    const written = await Deno.readFile(join(dir, "final"));
    let offset = 0;
    for (const piece of chunks) {
      assert.deepEqual(written.subarray(offset, offset + piece.length), piece);
      offset += piece.length;
    }
    assert.deepEqual(
      [...Deno.readDirSync(dir)].map((entry) => entry.name),
      ["final"],
      "the temporary name is gone",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("TempFile.remove waits for queued writes and leaves nothing behind", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const temp = await TempFile.create(join(dir, "t.part"));
    for (let i = 0; i < 6; i++) await temp.write(chunk(1 << 20, i));
    await temp.remove();
    await temp.remove();
    assert.deepEqual([...Deno.readDirSync(dir)], []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("TempFile.create refuses an existing path, even a symbolic link", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.symlink("/etc/hostname", join(dir, "link"));
    await assert.rejects(TempFile.create(join(dir, "link")), Deno.errors.AlreadyExists);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("TempFile.write() takes pooled bytes' hold and releases it only once they are written", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const temp = await TempFile.create(join(dir, "t.part"));
    const expected: Uint8Array[] = [];
    for (let i = 0; i < 12; i++) {
      // Like the body path: pooled bytes handed to write() with their hold, and the next block taken (and
      // scribbled over) at once: a block still queued must not be lent again.
      const block = transferMemory.take(1 << 20);
      block.bytes.set(chunk(1 << 20, i));
      expected.push(block.bytes.slice());
      await temp.write(block);
      const next = transferMemory.take(1 << 20);
      next.bytes.fill(0xee);
      next.release();
    }
    await temp.moveTo(join(dir, "final"));
    const written = await Deno.readFile(join(dir, "final"));
    for (let i = 0; i < expected.length; i++) {
      // A byte-wise comparison: assert.deepEqual's message for two differing 1 MiB arrays takes minutes.
      const piece = written.subarray(i << 20, (i + 1) << 20);
      assert.ok(piece.length === expected[i].length && piece.every((byte, j) => byte === expected[i][j]), `piece ${i}`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("TempFile without write-behind has every chunk written by the time write() returns", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = join(dir, "t.part");
    const temp = await TempFile.create(path, { writeBehind: false });
    let size = 0;
    for (let i = 0; i < 4; i++) {
      await temp.write(chunk(1 << 20, i));
      size += 1 << 20;
      assert.equal(Deno.statSync(path).size, size, "nothing is left queued");
    }
    await temp.moveTo(join(dir, "final"));
    assert.equal(Deno.statSync(join(dir, "final")).size, size);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("TempFile.write() joins pieces that lie side by side in one block, and releases each once written", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const temp = await TempFile.create(join(dir, "t.part"));
    const end = transferMemory.begin(); // a body is moving: the pool keeps the block once it is free
    const block = transferMemory.take(BLOCK_BYTES);
    block.bytes.set(chunk(BLOCK_BYTES, 3));
    const expected = block.bytes.slice();
    // Four views one behind the other, as a receive block's pieces arrive; the block's own hold goes at once.
    const quarter = BLOCK_BYTES / 4;
    for (let i = 0; i < 4; i++) await temp.write(block.hold(i * quarter, (i + 1) * quarter));
    block.release();
    const free = transferMemory.snapshot().freeBytes;
    await temp.moveTo(join(dir, "final"));
    assert.equal(
      transferMemory.snapshot().freeBytes,
      free + BLOCK_BYTES,
      "the block is free once every piece is written",
    );
    end();
    const written = await Deno.readFile(join(dir, "final"));
    assert.ok(written.length === expected.length && written.every((byte, i) => byte === expected[i]));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("TempFile.write() keeps every file's queued bytes together within the write-behind total", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const files = await Promise.all(Array.from({ length: 24 }, (_, i) => TempFile.create(join(dir, `${i}.part`))));
    let most = 0;
    await Promise.all(files.map(async (temp, i) => {
      for (let j = 0; j < 4; j++) {
        await temp.write(chunk(1 << 20, i + j));
        most = Math.max(most, transferMemory.snapshot().queuedBytes);
      }
      await temp.close();
    }));
    assert.ok(most <= WRITE_BEHIND_TOTAL_BYTES, `${most} bytes queued at once`);
    assert.equal(transferMemory.snapshot().queuedBytes, 0);
    for (let i = 0; i < files.length; i++) assert.equal(Deno.statSync(join(dir, `${i}.part`)).size, 4 << 20);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
