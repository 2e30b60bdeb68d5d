/**
 * The server under load tells the truth: 100 clients at once each get back
 * exactly what they put, and the log carries one line per transfer, one per
 * connection and a totals line every interval, never a line per chunk.
 *
 * @module
 */

import { deepStrictEqual, match, ok, strictEqual } from "node:assert/strict";
import { join } from "node:path";
import { getLogger } from "@logtape/logtape";
import { DfosClient } from "../client/connection.ts";
import { memoryLog, randomBytes, sha256, sha256File, startServer, USERS, waitFor } from "./_fixture.ts";
import { concat, once } from "./_peer.ts";

Deno.test("100 concurrent clients each get back exactly what they put, and the log adds up", async () => {
  await using log = await memoryLog();
  await using fx = await startServer({ log: getLogger(["dfos-test", "server"]), statsIntervalMs: 100 });
  const users = ["alice", "bob", "carol"];
  const results = await Promise.all(Array.from({ length: 100 }, async (_, i) => {
    const user = users[i % users.length];
    const body = randomBytes(1000 + i * 7919);
    const name = `load/client-${i}.bin`;
    const client = await DfosClient.connect({ server: fx.address, user, password: USERS[user] });
    try {
      const sent = await client.put(name, once(body), { size: body.length });
      strictEqual(sent.size, body.length);
      const download = await client.get(name);
      strictEqual(download.file.size, body.length);
      const parts: Uint8Array[] = [];
      for await (const chunk of download.body.chunks()) parts.push(chunk.slice());
      const got = concat(parts);
      // Every byte, not only the digest.
      strictEqual(got.length, body.length);
      ok(got.every((byte, index) => byte === body[index]), `${name}: the bytes differ`);
      return { user, name, size: body.length, digest: sha256(body) };
    } finally {
      await client.close();
    }
  }));
  for (const { user, name, digest } of results) strictEqual(await sha256File(join(fx.root, user, name)), digest);
  const totals = fx.server.stats.snapshot();
  strictEqual(totals.connections, 100);
  strictEqual(totals.operations.put, 100);
  strictEqual(totals.operations.get, 100);
  const bytes = results.reduce((sum, result) => sum + result.size, 0);
  strictEqual(totals.bytesIn, bytes);
  strictEqual(totals.bytesOut, bytes);
  deepStrictEqual(totals.failures, {});

  // A totals line every interval; then one at shutdown that adds everything up.
  await waitFor(() => log.lines().filter((line) => line.startsWith("Totals: ")).length >= 2, "two totals lines", 3000);
  await waitFor(() => fx.server.stats.snapshot().activeConnections === 0, "every connection to be closed");
  await fx.server.shutdown();
  const lines = log.lines();
  const last = lines.at(-1)!;
  match(
    last,
    new RegExp(
      `^Shut down\\. Totals: 100 connections \\(0 active, peak \\d+\\); operations put 100, get 100, peek 0, rm 0, ls 0, mv 0, stat 0, changes 0, have 0, push 0, groups 0, read 0, watch 0; aborted none; ` +
        `${bytes} bytes in, ${bytes} bytes out; failures none; CPU [\\d.]+ s user, [\\d.]+ s system, [\\d.]+% of one core ` +
        `over the last [\\d.]+ s; RSS [\\d.]+ MiB; system memory \\d+ of \\d+ MiB used; ` +
        `transfer memory: 0 bodies moving, pieces of 1024 KiB, 0\\.0 MiB queued for the disk, [\\d.]+ MiB free in ` +
        `the pool; V8 heap [\\d.]+ MiB, external [\\d.]+ MiB$`,
    ),
  );
  // Per transfer and per connection: one line each, with their figures.
  strictEqual(
    lines.filter((line) => /^put user=\w+ name=load\/client-\d+\.bin bytes=\d+ duration=/.test(line)).length,
    100,
  );
  strictEqual(
    lines.filter((line) => /^get user=\w+ name=load\/client-\d+\.bin bytes=\d+ duration=/.test(line)).length,
    100,
  );
  const closed = lines.filter((line) =>
    / closed: user \w+, [\d.]+ s, 2 operations, \d+ bytes in, \d+ bytes out$/.test(line)
  );
  strictEqual(closed.length, 100);
});

Deno.test("a transfer of many chunks logs one line, not one per chunk", async () => {
  await using log = await memoryLog();
  await using fx = await startServer({ log: getLogger(["dfos-test", "server"]), statsIntervalMs: 0 });
  const client = await DfosClient.connect({ server: fx.address, user: "alice", password: USERS.alice });
  const before = log.lines().length;
  const body = randomBytes(24 * 1024 * 1024);
  await client.put("big.bin", once(body), { size: body.length });
  const download = await client.get("big.bin");
  for await (const _chunk of download.body.chunks()) {
    // Read and drop: 24 DATA frames or more.
  }
  const during = log.lines().slice(before);
  deepStrictEqual(during.map((line) => line.split(" ")[0]), ["put", "get"]);
  await client.close();
});
