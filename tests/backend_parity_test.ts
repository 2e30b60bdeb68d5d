/**
 * The same session of real `dfos` commands against a server on the local disk
 * and a server on an S3 bucket: every command must end with the same exit
 * code, print the same output and say the same errors (issue 13: "works the
 * same on both backends, with the same errors and exit codes"). The two
 * sessions run side by side from two working folders of identical files; what
 * may differ by nature is masked before the comparison: the working folder's
 * path, the server's address, file versions, the times of the session's
 * own uploads, and the bytes on the wire (the local disk answers a push's
 * CHANGES from its journal, S3 has the client list). The local server is
 * given the S3 server's longest name (`--max-name`), which S3's key length
 * sets.
 *
 * @module
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { MAX_NAME_BYTES, MAX_USER_BYTES } from "../shared/names.ts";
import { randomBytes, sha256 } from "./_common.ts";
import { runCli, spawnServe, USERS, watchServe } from "./_fixture.ts";
import { s3Test, type ServedOnBucket, serveOnBucket, tellS3Ignored } from "./_s3.ts";

tellS3Ignored("tests/backend_parity_test.ts");

const MiB = 1024 * 1024;

/** Fixed modification times, so that both working folders are alike to the second. */
const MTIME = new Date("2026-03-04T05:06:07Z");

/**
 * The session: each entry a command line (run in the working folder), or a
 * function that changes the working folder between commands.
 */
const SESSION: (string[] | ((dir: string) => Promise<void>))[] = [
  ["put", "a.txt", "docs/a.txt"],
  ["put", "a.txt", "docs/a.txt"],
  ["put", "big.bin"],
  ["put", "empty.txt", "docs/empty.txt"],
  ["ls"],
  ["ls", "docs"],
  ["ls", "--json"],
  ["stat", "docs/a.txt", "big.bin"],
  ["stat", "--sha256", "big.bin"],
  ["stat", "nothing.txt"],
  ["peek", "docs/a.txt"],
  ["peek", "--bytes", "10", "big.bin"],
  ["get", "docs/a.txt", "out-a.txt"],
  ["get", "big.bin", "out-big.bin"],
  ["get", "missing.txt", "out-missing.txt"],
  ["get", "docs/a.txt", "out-a.txt"],
  ["mv", "docs/a.txt", "docs/b.txt"],
  ["mv", "missing.txt", "docs/c.txt"],
  ["mv", "docs/b.txt", "big.bin/inside.txt"],
  ["put", "a.txt", "big.bin/x.txt"],
  ["put", "a.txt", "docs"],
  ["put", "a.txt", ".dfos-chunks/x"],
  ["put", "a.txt", "../escape.txt"],
  ["put", "a.txt", "docs//a.txt"],
  ["put", "a.txt", "docs/"],
  ["put", "a.txt", "été/ñandú copy (1).txt"],
  ["put", "a.txt", `${"d".repeat(200)}/${"e".repeat(200)}/${"f".repeat(200)}/${"g".repeat(200)}/long.txt`],
  ["put", "a.txt", `${"d".repeat(250)}/${"e".repeat(250)}/${"f".repeat(250)}/${"g".repeat(250)}/long.txt`],
  ["put", "a.txt", "x".repeat(256)],
  ["put", "a.txt", "tab\there.txt"],
  ["ls", "été"],
  ["ls", "docs/b.txt"],
  ["get", "docs", "out-docs"],
  ["peek", "docs"],
  ["stat", "docs"],
  ["mv", "été", "ete"],
  ["mv", "docs/b.txt", "docs/b.txt"],
  ["ls"],
  ["rm", "docs/b.txt"],
  ["rm", "docs/b.txt"],
  ["rm", "docs"],
  ["push", "tree", "proj"],
  ["push", "tree", "proj"],
  ["pull", "proj", "pulled"],
  async (dir) => {
    await Deno.remove(join(dir, "tree/sub/two.txt"));
    await Deno.writeTextFile(join(dir, "tree/one.txt"), "one, changed\n");
    await Deno.utime(join(dir, "tree/one.txt"), MTIME, new Date(MTIME.getTime() + 60_000));
  },
  ["push", "--dry-run", "--delete", "tree", "proj"],
  ["push", "tree", "proj"],
  ["push", "--delete", "tree", "proj"],
  ["pull", "--delete", "proj", "pulled"],
  ["push", "--json", "tree", "proj"],
  ["put", "--resume", "big.bin", "big2.bin"],
  ["put", "--resume", "big.bin", "big2.bin"],
  ["get", "--resume", "big2.bin", "out-big2.bin"],
  ["rm", "big.bin", "big2.bin", "missing.txt"],
  ["ls"],
];

/** Writes the working folder's files, alike in both folders (the same bytes, the same times). */
async function makeFiles(dir: string, big: Uint8Array): Promise<void> {
  const files: [string, Uint8Array | string][] = [
    ["a.txt", "hello from a\n"],
    ["empty.txt", ""],
    ["big.bin", big],
    ["tree/one.txt", "one\n"],
    ["tree/sub/two.txt", "two\n"],
    ["tree/sub/deeper/three.bin", big.subarray(0, 300_000)],
  ];
  for (const [path, content] of files) {
    const full = join(dir, path);
    await Deno.mkdir(join(full, ".."), { recursive: true });
    if (typeof content === "string") await Deno.writeTextFile(full, content);
    else await Deno.writeFile(full, content);
    await Deno.utime(full, MTIME, MTIME);
  }
}

/**
 * Masks the times of the session itself (a plain put's file is stamped when
 * it is stored: to the millisecond on a disk, to the second by S3), keeping
 * the fixed times the files carry ({@linkcode MTIME}) to be compared.
 */
function maskNow(text: string): string {
  const recent = (stamp: string) => Math.abs(Date.parse(stamp) - Date.now()) < 3_600_000;
  return text
    .replace(/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z/g, (stamp) => recent(stamp) ? "NOW" : stamp)
    .replace(
      /\d{4}-\d\d-\d\d \d\d:\d\d(:\d\d(\.\d+)?)?/g,
      (stamp) => recent(stamp.replace(" ", "T") + "Z") ? "NOW" : stamp,
    );
}

/** One command's outcome, with what may differ by nature masked. */
function masked(result: { code: number; stdout: Uint8Array; stderr: string }, dir: string, port: number): string {
  const mask = (text: string) =>
    maskNow(text)
      .replaceAll(dir, "WORK")
      .replaceAll(`127.0.0.1:${port}`, "SERVER")
      .replace(/"version":"[^"]*"/g, '"version":"V"')
      .replace(/version [0-9a-f]+/g, "version V")
      .replace(/[0-9.]+ [kKMG]?i?B on the wire/g, "N on the wire")
      .replace(/"wire":\d+/g, '"wire":N')
      .replace(/"listed":(true|false)/g, '"listed":L');
  return `exit ${result.code}\n--- stdout\n${mask(new TextDecoder().decode(result.stdout))}--- stderr\n${
    mask(result.stderr)
  }`;
}

s3Test(
  "the same dfos session against a local server and an S3 server: the same exit codes, output and errors",
  async (bucket) => {
    const s3Dir = await Deno.makeTempDir({ prefix: "dfos_parity_s3_" });
    // The S3 server's longest name is S3's key length less "parity/" and "<user>/": the local one is given the same.
    const maxName = MAX_NAME_BYTES - "parity/".length - MAX_USER_BYTES - 1;
    const local = await spawnServe(["--max-name", `${maxName}`], { prefix: "dfos_parity_local_" });
    const localWatch = await watchServe(local.child);
    let s3: ServedOnBucket | null = null;
    try {
      await Deno.writeTextFile(
        join(s3Dir, "users.txt"),
        Object.entries(USERS).map(([user, password]) => `${user}:${password}\n`).join(""),
      );
      s3 = await serveOnBucket(bucket, s3Dir, "s3", { prefix: "parity" });
      const big = randomBytes(9 * MiB + 7); // over the S3 backend's multipart size
      const sides = [
        { name: "local", dir: join(local.dir, "work"), port: localWatch.port },
        { name: "s3", dir: join(s3Dir, "work"), port: s3.watch.port },
      ];
      for (const side of sides) await makeFiles(side.dir, big);
      let step = 0;
      for (const entry of SESSION) {
        if (typeof entry === "function") {
          for (const side of sides) await entry(side.dir);
          continue;
        }
        step++;
        const outcomes = await Promise.all(sides.map(async (side) => {
          const result = await runCli(entry, {
            cwd: side.dir,
            env: { DFOS_SERVER: `127.0.0.1:${side.port}`, DFOS_USER: "alice", DFOS_PASSWORD: USERS.alice },
          });
          return masked(result, side.dir, side.port);
        }));
        assert.equal(
          outcomes[1],
          outcomes[0],
          `step ${step}, dfos ${
            entry.join(" ")
          }: the S3 server (actual) answered otherwise than the local one (expected)`,
        );
      }
      // And what came down is what went up, on both.
      for (const side of sides) {
        assert.equal(sha256(await Deno.readFile(join(side.dir, "out-big.bin"))), sha256(big), side.name);
        assert.equal(sha256(await Deno.readFile(join(side.dir, "out-big2.bin"))), sha256(big), side.name);
        assert.equal(await Deno.readTextFile(join(side.dir, "pulled/one.txt")), "one, changed\n", side.name);
      }
    } finally {
      local.child.kill("SIGTERM");
      await localWatch.ended;
      if (s3 !== null) {
        s3.child.kill("SIGTERM");
        await s3.watch.ended;
      }
      await Deno.remove(local.dir, { recursive: true });
      await Deno.remove(s3Dir, { recursive: true });
    }
  },
);
