/**
 * `put --resume` and `get --resume` end to end: a real server, the real CLI
 * as a subprocess, talking through a counting proxy on loopback that measures
 * the bytes each way (and can stop forwarding part-way, so that a client is
 * killed mid-transfer at a known point). Each case asserts on the bytes moved,
 * so a whole-file put or get fails it.
 *
 * @module
 */

import { ok, strictEqual } from "node:assert/strict";
import { join } from "node:path";
import { seededBytes } from "./_common.ts";
import { connect, type Fixture, runCli, sha256, spawnCli, startServer, storeFile, waitFor } from "./_fixture.ts";
import { partialPath } from "../client/chunk_download.ts";
import { CountingProxy } from "./_proxy.ts";
import { concatBytes } from "../shared/concat_bytes.ts";
import { localChunkList } from "../client/local_chunks.ts";
import { RESUME_FROM_BYTES } from "../client/command_table.ts";

const MiB = 1024 * 1024;

/** The server's copy of alice's file. */
async function stored(fx: Fixture, name: string): Promise<string> {
  return sha256(await Deno.readFile(join(fx.root, "alice", name)));
}

/** The CLI run as alice through the proxy, which must succeed. */
async function cli(fx: Fixture, proxy: CountingProxy, args: string[]): Promise<void> {
  const result = await runCli(args, { env: fx.envFor("alice"), cwd: fx.local });
  strictEqual(result.code, 0, `dfos ${args.join(" ")}: ${result.stderr}`);
  void proxy;
}

async function withSetup(test: (fx: Fixture, proxy: CountingProxy) => Promise<void>): Promise<void> {
  await using fx = await startServer();
  await using proxy = new CountingProxy(fx.port);
  await test({ ...fx, envFor: (user: string) => ({ ...fx.envFor(user), DFOS_SERVER: proxy.address }) }, proxy);
}

/** Starts the CLI, waits until `ready`, kills it (SIGKILL) and waits for it to end. */
async function killPartWay(fx: Fixture, args: string[], ready: () => Promise<boolean> | boolean): Promise<void> {
  const child = spawnCli(args, { env: fx.envFor("alice"), cwd: fx.local });
  child.stdin.close();
  const output = child.output();
  try {
    await waitFor(ready, "the transfer to get part-way", 60_000);
  } finally {
    try {
      child.kill("SIGKILL");
    } catch {
      // ended already
    }
  }
  const { code } = await output;
  ok(code !== 0, "the client was killed, not done");
}

/** True once the server knows (HAVE) the first chunk of the local file: it kept what an interrupted upload sent. */
async function serverHasStart(fx: Fixture, path: string): Promise<boolean> {
  const { entries } = await localChunkList(path);
  const client = await connect({ address: fx.address });
  try {
    return (await client.have([entries[0].hash]))[0];
  } finally {
    await client.close();
  }
}

Deno.test("put --resume killed part-way: the next try sends only the rest, and the file arrives whole", async () => {
  await withSetup(async (fx, proxy) => {
    const bytes = seededBytes(24 * MiB, 1);
    await Deno.writeFile(join(fx.local, "big.bin"), bytes);
    proxy.gate = { direction: "up", after: 12 * MiB };
    await killPartWay(fx, ["put", "--resume", "big.bin"], () => proxy.up >= 12 * MiB);
    await waitFor(
      () => serverHasStart(fx, join(fx.local, "big.bin")),
      "the server to keep the interrupted upload",
      20_000,
    );
    proxy.reset();
    await cli(fx, proxy, ["put", "--resume", "big.bin"]);
    strictEqual(await stored(fx, "big.bin"), sha256(bytes));
    ok(proxy.up < 14 * MiB, `the second try sent ${proxy.up} bytes of ${24 * MiB}`);
    ok(proxy.up > 8 * MiB, `the second try sent ${proxy.up} bytes: the rest must go`);
  });
});

Deno.test("put --resume of a source changed between tries stores the new content whole", async () => {
  await withSetup(async (fx, proxy) => {
    const first = seededBytes(24 * MiB, 2);
    await Deno.writeFile(join(fx.local, "big.bin"), first);
    proxy.gate = { direction: "up", after: 12 * MiB };
    await killPartWay(fx, ["put", "--resume", "big.bin"], () => proxy.up >= 12 * MiB);
    await waitFor(
      () => serverHasStart(fx, join(fx.local, "big.bin")),
      "the server to keep the interrupted upload",
      20_000,
    );
    const second = first.slice();
    second.set(seededBytes(MiB, 3), 2 * MiB); // inside the part already sent
    second.set(seededBytes(MiB, 4), 20 * MiB); // and in the rest
    await Deno.writeFile(join(fx.local, "big.bin"), second);
    proxy.reset();
    await cli(fx, proxy, ["put", "--resume", "big.bin"]);
    strictEqual(await stored(fx, "big.bin"), sha256(second));
    // A changed source starts over (the kept upload was of the old root): the new content once, no try wasted on
    // the old try's chunks, which HAVE does not offer to another root (docs/PROTOCOL.md "Chunks").
    ok(proxy.up > 24 * MiB, `the second try sent ${proxy.up} bytes: the new content must go whole`);
    ok(proxy.up < 25 * MiB, `the second try sent ${proxy.up} bytes`);
  });
});

Deno.test("get --resume killed part-way: the partial stays, the next try fetches only the rest", async () => {
  await withSetup(async (fx, proxy) => {
    const bytes = seededBytes(24 * MiB, 5);
    await storeFile({ address: fx.address }, "big.bin", bytes);
    const target = join(fx.local, "big.bin");
    proxy.gate = { direction: "down", after: 12 * MiB };
    await killPartWay(fx, ["get", "--resume", "big.bin"], async () => {
      const info = await Deno.stat(partialPath(target)).catch(() => null);
      return info !== null && info.size >= 4 * MiB;
    });
    ok((await Deno.stat(partialPath(target))).size >= 4 * MiB, "the partial is kept beside the target");
    proxy.reset();
    await cli(fx, proxy, ["get", "--resume", "big.bin"]);
    strictEqual(sha256(await Deno.readFile(target)), sha256(bytes));
    ok(proxy.down < 21 * MiB, `the second try fetched ${proxy.down} bytes of ${24 * MiB}`);
    strictEqual(await Deno.stat(partialPath(target)).then(() => true, () => false), false, "the partial is gone");
  });
});

Deno.test("get of a new file of 64 MiB, no flag: killed part-way, its partial stays and the next get takes it up", async () => {
  await withSetup(async (fx, proxy) => {
    const bytes = seededBytes(RESUME_FROM_BYTES, 8);
    await storeFile({ address: fx.address }, "big.bin", bytes);
    const target = join(fx.local, "big.bin");
    proxy.gate = { direction: "down", after: 40 * MiB };
    await killPartWay(fx, ["get", "big.bin"], async () => {
      const info = await Deno.stat(partialPath(target)).catch(() => null);
      return info !== null && info.size >= 16 * MiB;
    });
    proxy.reset();
    await cli(fx, proxy, ["get", "big.bin"]);
    strictEqual(sha256(await Deno.readFile(target)), sha256(bytes));
    ok(proxy.down < 50 * MiB, `the second try fetched ${proxy.down} bytes of ${64 * MiB}`);
  });
});

Deno.test("put below 4 GiB, no flag: a plain put, which moves the whole file again", async () => {
  await withSetup(async (fx, proxy) => {
    const bytes = seededBytes(8 * MiB, 9);
    await storeFile({ address: fx.address }, "f.bin", bytes);
    await Deno.writeFile(join(fx.local, "f.bin"), bytes);
    proxy.reset();
    await cli(fx, proxy, ["put", "f.bin"]);
    ok(proxy.up > 8 * MiB, `a plain put sent ${proxy.up} bytes`);
    proxy.reset();
    await cli(fx, proxy, ["put", "--resume", "f.bin"]);
    ok(proxy.up < MiB, `put --resume of the same content sent ${proxy.up} bytes`);
  });
});

Deno.test("get --resume of a file changed on the server between tries gives the new content whole", async () => {
  await withSetup(async (fx, proxy) => {
    const first = seededBytes(24 * MiB, 6);
    await storeFile({ address: fx.address }, "big.bin", first);
    const target = join(fx.local, "big.bin");
    proxy.gate = { direction: "down", after: 12 * MiB };
    await killPartWay(fx, ["get", "--resume", "big.bin"], async () => {
      const info = await Deno.stat(partialPath(target)).catch(() => null);
      return info !== null && info.size >= 4 * MiB;
    });
    const second = first.slice();
    second.set(seededBytes(MiB, 7), MiB);
    await storeFile({ address: fx.address }, "big.bin", second);
    proxy.reset();
    await cli(fx, proxy, ["get", "--resume", "big.bin"]);
    strictEqual(sha256(await Deno.readFile(target)), sha256(second));
  });
});

/** The edits the delta cases make to an 8 MiB file. */
const EDITS: Record<string, (bytes: Uint8Array) => Uint8Array> = {
  "1 MiB appended": (bytes) => concatBytes([bytes, seededBytes(MiB, 11)]),
  "4 KiB overwritten": (bytes) => {
    const edited = bytes.slice();
    edited.set(seededBytes(4096, 12), 5 * MiB);
    return edited;
  },
  "100 bytes inserted near the start": (bytes) =>
    concatBytes([bytes.subarray(0, 1000), seededBytes(100, 13), bytes.subarray(1000)]),
};

for (const [edit, apply] of Object.entries(EDITS)) {
  Deno.test(`put --resume of a file with ${edit} sends a small part of it`, async () => {
    await withSetup(async (fx, proxy) => {
      const old = seededBytes(8 * MiB, 10);
      await storeFile({ address: fx.address }, "f.bin", old);
      const edited = apply(old);
      await Deno.writeFile(join(fx.local, "f.bin"), edited);
      proxy.reset();
      const before = fx.server.stats.snapshot().bytesIn;
      await cli(fx, proxy, ["put", "--resume", "f.bin"]);
      strictEqual(await stored(fx, "f.bin"), sha256(edited));
      const limit = edit.startsWith("1 MiB") ? 2 * MiB : MiB;
      ok(proxy.up < limit, `sent ${proxy.up} bytes for ${edited.length}`);
      // The server's own count of body bytes received agrees.
      const received = fx.server.stats.snapshot().bytesIn - before;
      ok(received > 0 && received <= proxy.up, `the server counted ${received} body bytes, the wire ${proxy.up}`);
    });
  });

  Deno.test(`get --resume over a local file that lacks ${edit} fetches a small part of it`, async () => {
    await withSetup(async (fx, proxy) => {
      const old = seededBytes(8 * MiB, 10);
      const edited = apply(old);
      await storeFile({ address: fx.address }, "f.bin", edited);
      const target = join(fx.local, "f.bin");
      await Deno.writeFile(target, old);
      proxy.reset();
      const before = fx.server.stats.snapshot().bytesOut;
      await cli(fx, proxy, ["get", "--resume", "f.bin"]);
      strictEqual(sha256(await Deno.readFile(target)), sha256(edited));
      const limit = edit.startsWith("1 MiB") ? 2 * MiB : MiB;
      ok(proxy.down < limit, `fetched ${proxy.down} bytes for ${edited.length}`);
      // The server's own count of body bytes sent agrees.
      const sent = fx.server.stats.snapshot().bytesOut - before;
      ok(sent > 0 && sent <= proxy.down, `the server counted ${sent} body bytes, the wire ${proxy.down}`);
    });
  });
}

Deno.test("put --resume of a renamed copy moves almost nothing; the mtime goes with it", async () => {
  await withSetup(async (fx, proxy) => {
    const bytes = seededBytes(8 * MiB, 20);
    await storeFile({ address: fx.address }, "a.bin", bytes);
    const local = join(fx.local, "b.bin");
    await Deno.writeFile(local, bytes);
    const mtime = new Date(Date.UTC(2020, 0, 2, 3, 4, 5));
    await Deno.utime(local, mtime, mtime);
    proxy.reset();
    await cli(fx, proxy, ["put", "--resume", "b.bin"]);
    strictEqual(await stored(fx, "b.bin"), sha256(bytes));
    ok(proxy.up < 256 * 1024, `sent ${proxy.up} bytes for ${bytes.length}`);
    const client = await connect({ address: fx.address });
    try {
      strictEqual((await client.stat("b.bin")).mtime, mtime.getTime());
    } finally {
      await client.close();
    }
  });
});

Deno.test("get --resume sets the server's mtime and a plain get of a small file still works", async () => {
  await withSetup(async (fx, proxy) => {
    const bytes = seededBytes(300 * 1024, 21);
    await storeFile({ address: fx.address }, "s.bin", bytes);
    await cli(fx, proxy, ["get", "--resume", "s.bin"]);
    const client = await connect({ address: fx.address });
    let mtime: number;
    try {
      mtime = (await client.stat("s.bin")).mtime;
    } finally {
      await client.close();
    }
    const info = await Deno.stat(join(fx.local, "s.bin"));
    strictEqual(info.mtime?.getTime(), mtime);
    strictEqual(sha256(await Deno.readFile(join(fx.local, "s.bin"))), sha256(bytes));
    await cli(fx, proxy, ["get", "--force", "s.bin", "plain.bin"]);
    strictEqual(sha256(await Deno.readFile(join(fx.local, "plain.bin"))), sha256(bytes));
  });
});
