/**
 * HAVE and ASSEMBLE pipelined on one connection (client/connection.ts), as
 * push sends several files at once: each call gets its own reply, a refused
 * one among them included, and every file lands whole.
 */

import { deepStrictEqual, ok, rejects, strictEqual } from "node:assert/strict";
import { join } from "node:path";
import { downloadFile } from "../client/chunk_download.ts";
import { memoryChunks } from "../client/local_chunks.ts";
import { concatBytes } from "../shared/concat_bytes.ts";
import { dataStepHeader } from "../shared/recipe.ts";
import { DfosError, Status } from "../shared/status.ts";
import { seededBytes, sha256 } from "./_common.ts";
import { connect, startServer, storeFile } from "./_fixture.ts";

/** A recipe of data steps only: every chunk's bytes. */
async function* allData(bytes: Uint8Array, chunks: { offset: number; length: number }[]): AsyncGenerator<Uint8Array> {
  for (const { offset, length } of chunks) {
    yield dataStepHeader(length);
    yield bytes.subarray(offset, offset + length);
  }
}

Deno.test("pipelined HAVE and ASSEMBLE: replies in order, a refusal among them, every file whole", async () => {
  await using fx = await startServer();
  const client = await connect(fx);
  try {
    const files = await Promise.all([0, 1, 2, 3, 4, 5].map(async (i) => {
      const bytes = seededBytes(40_000 + i * 150_000, 100 + i);
      const { chunks, root } = await memoryChunks(bytes);
      return { name: `p/f${i}.bin`, bytes, chunks, root };
    }));
    const started = files.map((file, i) => {
      // File 2 announces a root its chunks do not have: refused, and only it.
      const root = i === 2 ? "0".repeat(64) : file.root;
      const info = {
        name: file.name,
        size: file.bytes.length,
        mtime: 1_600_000_000_000 + i,
        root,
        chunks: file.chunks.length,
      };
      return client.assemble(info, allData(file.bytes, file.chunks));
    });
    // Asked after file 0's assemble was sent: answered after it was stored.
    const known = client.have(files[0].chunks.map((chunk) => chunk.hash));
    const results = await Promise.allSettled(started);
    deepStrictEqual(await known, files[0].chunks.map(() => true));
    results.forEach((result, i) => {
      if (i === 2) {
        ok(result.status === "rejected", "file 2 is refused");
        ok(result.reason instanceof DfosError && result.reason.code === Status.INTEGRITY, String(result.reason));
      } else {
        ok(result.status === "fulfilled", `file ${i}: ${result.status === "rejected" ? result.reason : ""}`);
        strictEqual(result.value.size, files[i].bytes.length);
      }
    });
    for (const [i, file] of files.entries()) {
      const path = join(fx.root, "alice", file.name);
      if (i === 2) {
        await rejects(Deno.stat(path), Deno.errors.NotFound);
      } else {
        strictEqual(sha256(await Deno.readFile(path)), sha256(file.bytes), file.name);
        strictEqual((await Deno.stat(path)).mtime!.getTime(), 1_600_000_000_000 + i);
      }
    }
    // The connection is still in step: an ordinary request after them.
    strictEqual((await client.stat("p/f5.bin")).size, files[5].bytes.length);
  } finally {
    await client.close();
  }
});

Deno.test("pipelined GETs: each body is its own file's, a missing name among them refused alone", async () => {
  await using fx = await startServer();
  const files = [0, 1, 2, 3].map((i) => ({ name: `g/f${i}.bin`, bytes: seededBytes(10_000 + i * 200_000, 300 + i) }));
  for (const file of files) await storeFile(fx, file.name, file.bytes);
  const client = await connect(fx);
  try {
    const names = [files[0].name, files[1].name, "g/missing.bin", files[2].name, files[3].name];
    const downloads = names.map((name) => client.get(name, { pipelined: true, digest: "sha256" }));
    const bodies: (string | null)[] = [];
    for (const download of downloads) {
      // Read in turn: each body to its end before the next reply is read.
      const got = await download.then((value) => value, () => null);
      if (got === null) {
        bodies.push(null);
        continue;
      }
      const parts: Uint8Array[] = [];
      for await (const chunk of got.body.chunks()) parts.push(chunk.slice());
      bodies.push(sha256(concatBytes(parts)));
    }
    deepStrictEqual(bodies, [
      sha256(files[0].bytes),
      sha256(files[1].bytes),
      null,
      sha256(files[2].bytes),
      sha256(files[3].bytes),
    ]);
    await rejects(downloads[2], (error) => error instanceof DfosError && error.code === Status.NOT_FOUND);
    // A body given up part-way is discarded: the next pipelined reply is still its own.
    const [first, second] = [files[3].name, files[0].name].map((name) => client.get(name, { pipelined: true }));
    const given = await first;
    for await (const _ of given.body.chunks()) break;
    await given.body.discard();
    const taken = await second;
    const parts: Uint8Array[] = [];
    for await (const chunk of taken.body.chunks()) parts.push(chunk.slice());
    strictEqual(sha256(concatBytes(parts)), sha256(files[0].bytes));
  } finally {
    await client.close();
  }
});

Deno.test("pipelined chunk downloads: GROUPS, GROUP-CHUNKS and READ of several files at once, each file whole", async () => {
  await using fx = await startServer();
  const files = [0, 1, 2, 3].map((i) => ({ name: `c/f${i}.bin`, bytes: seededBytes(600_000 + i * 100_000, 400 + i) }));
  for (const file of files) await storeFile(fx, file.name, file.bytes);
  // Old local versions: each differs from the server's in 4 KiB in its middle.
  const paths = files.map((_, i) => join(fx.local, `f${i}.bin`));
  for (const [i, file] of files.entries()) {
    const old = file.bytes.slice();
    old.set(seededBytes(4096, 500 + i), 300_000);
    await Deno.writeFile(paths[i], old);
  }
  const client = await connect(fx);
  try {
    const results = await Promise.allSettled([
      ...files.map((file, i) => downloadFile(client, file.name, paths[i])),
      downloadFile(client, "c/missing.bin", join(fx.local, "missing.bin")),
    ]);
    results.slice(0, 4).forEach((result, i) => {
      ok(result.status === "fulfilled", `file ${i}: ${result.status === "rejected" ? result.reason : ""}`);
      ok(result.value.sent < 300_000, `file ${i}: ${result.value.sent} bytes fetched`);
    });
    const missing = results[4];
    ok(missing.status === "rejected" && missing.reason instanceof DfosError, "the missing file is refused");
    for (const [i, file] of files.entries()) strictEqual(sha256(await Deno.readFile(paths[i])), sha256(file.bytes));
    strictEqual((await client.stat(files[0].name)).size, files[0].bytes.length, "still in step");
  } finally {
    await client.close();
  }
});

Deno.test("pipelined whole-file downloads asked for their root: each root is the server's, computed as written", async () => {
  await using fx = await startServer();
  // Sizes around and past the body's pooled blocks, so a root taken from pieces already given back would differ.
  const files = [0, 1, 2, 3].map((i) => ({ name: `r/f${i}.bin`, bytes: seededBytes(i * 700_000 + 1, 600 + i) }));
  for (const file of files) await storeFile(fx, file.name, file.bytes);
  const client = await connect(fx);
  try {
    const paths = files.map((_, i) => join(fx.local, `r${i}.bin`));
    const moved = await Promise.all(
      files.map((file, i) => downloadFile(client, file.name, paths[i], { pipelined: true, wantRoot: true })),
    );
    for (const [i, file] of files.entries()) {
      strictEqual(sha256(await Deno.readFile(paths[i])), sha256(file.bytes), `file ${i} whole`);
      strictEqual(moved[i].root, (await client.groups(file.name)).root, `file ${i}: the root is the server's`);
      strictEqual(moved[i].root, (await memoryChunks(file.bytes)).root, `file ${i}: the root of its bytes`);
    }
  } finally {
    await client.close();
  }
});
