/**
 * `dfos sync` on the S3 backend, with the two clients on different servers
 * sharing one bucket (real Ceph RGW, real `dfos serve` subprocesses, the real
 * command line): one-shot runs carry edits, deletes and conflicts across,
 * and two `--watch` clients converge, one server's change waking the watch
 * held on the other.
 *
 * @module
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { listDir, runCli, spawnCli, text, USERS, waitFor } from "./_fixture.ts";
import { s3Test, type ServedOnBucket, serveOnBucket, tellS3Ignored } from "./_s3.ts";

tellS3Ignored("tests/s3_sync_test.ts");

/** Two servers on the bucket, a folder for each client, and an end that stops them. */
async function twoServers(
  bucket: Parameters<typeof serveOnBucket>[0],
): Promise<{ dir: string; servers: ServedOnBucket[]; stop: () => Promise<void> }> {
  const dir = await Deno.makeTempDir({ prefix: "dfos_s3sync_" });
  await Deno.writeTextFile(join(dir, "users.txt"), `alice:${USERS.alice}\n`);
  const servers: ServedOnBucket[] = [];
  const stop = async () => {
    for (const server of servers) {
      server.child.kill("SIGTERM");
      await server.watch.ended;
    }
    await Deno.remove(dir, { recursive: true });
  };
  try {
    servers.push(await serveOnBucket(bucket, dir, "one"));
    servers.push(await serveOnBucket(bucket, dir, "two"));
  } catch (error) {
    await stop();
    throw error;
  }
  return { dir, servers, stop };
}

function clientEnv(dir: string, server: ServedOnBucket, name: string): Record<string, string> {
  return { ...server.env, XDG_STATE_HOME: join(dir, `state-${name}`), DFOS_HOST: `host${name}` };
}

async function syncJson(folder: string, env: Record<string, string>): Promise<Record<string, number>> {
  const result = await runCli(["sync", folder, "shared", "--json"], { env });
  assert.equal(result.code, 0, result.stderr);
  return JSON.parse(text(result.stdout).trim().split("\n").pop()!);
}

s3Test("s3 sync: clients on two servers carry edits, deletes and a conflict across, once", async (bucket) => {
  const { dir, servers, stop } = await twoServers(bucket);
  try {
    const a = join(dir, "A");
    const b = join(dir, "B");
    const envA = clientEnv(dir, servers[0], "A");
    const envB = clientEnv(dir, servers[1], "B");
    await Deno.mkdir(a);
    await Deno.writeTextFile(join(a, "doc.txt"), "base");
    await Deno.writeTextFile(join(a, "gone.txt"), "to delete");
    await Deno.writeTextFile(join(a, "stay.txt"), "stays");
    await syncJson(a, envA);
    assert.equal((await syncJson(b, envB)).received, 3);

    await Deno.writeTextFile(join(a, "doc.txt"), "A's version");
    await Deno.writeTextFile(join(b, "doc.txt"), "B's version");
    await Deno.remove(join(b, "gone.txt"));
    await syncJson(a, envA);
    assert.equal((await syncJson(b, envB)).conflicts, 1);
    await syncJson(a, envA);
    for (const folder of [a, b]) {
      const files = await listDir(folder);
      assert.equal(files.length, 3, `${folder}: ${files}`);
      assert.equal(await Deno.readTextFile(join(folder, "doc.txt")), "A's version");
      const copy = files.find((file) => file.startsWith("doc.conflict-"))!;
      assert.match(copy, /^doc\.conflict-\d{8}-\d{6}-hostB\.txt$/);
      assert.equal(await Deno.readTextFile(join(folder, copy)), "B's version");
      assert.ok(!files.includes("gone.txt"));
    }
    const quiet = await syncJson(b, envB);
    assert.deepEqual([quiet.sent, quiet.received, quiet.deleted, quiet.conflicts], [0, 0, 0, 0]);
  } finally {
    await stop();
  }
});

s3Test("s3 sync --watch: a change through one server reaches the client watching on the other", async (bucket) => {
  const { dir, servers, stop } = await twoServers(bucket);
  const watchers: { child: Deno.ChildProcess; output: Promise<unknown> }[] = [];
  try {
    const folders = [join(dir, "A"), join(dir, "B")];
    for (const [i, folder] of folders.entries()) {
      await Deno.mkdir(folder);
      const child = spawnCli(["sync", folder, "shared", "--watch"], { env: clientEnv(dir, servers[i], `W${i}`) });
      await child.stdin.close();
      watchers.push({
        child,
        output: Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text()]),
      });
    }
    await Deno.writeTextFile(join(folders[0], "hello.txt"), "from A via server one");
    await waitFor(
      async () =>
        (await Deno.readTextFile(join(folders[1], "hello.txt")).catch(() => null)) === "from A via server one",
      "A's file in B",
      15_000,
    );
    await Deno.writeTextFile(join(folders[1], "reply.txt"), "from B via server two");
    await waitFor(
      async () =>
        (await Deno.readTextFile(join(folders[0], "reply.txt")).catch(() => null)) === "from B via server two",
      "B's file in A",
      15_000,
    );
  } finally {
    for (const watcher of watchers) {
      watcher.child.kill("SIGINT");
      await watcher.child.status;
      await watcher.output;
    }
    await stop();
  }
});
