/**
 * Three real `dfos serve --storage s3:// --metrics 127.0.0.1:0` processes on
 * one bucket of a real engine (Ceph RGW), and 1,000 puts racing to 5 names
 * through all three (24 in flight, each client on a persistent connection):
 * every put is stored or refused with a clear `CONFLICT`; every name ends as
 * one whole version that was stored, the same through every server; and the
 * servers' metrics count exactly the conditional writes the engine refused.
 *
 * The truth for that count comes from outside the servers: they reach the
 * engine through an `S3WireCounter` (tests/_s3_wire.ts), a proxy that passes
 * the bytes through unchanged and reads each request and its answer on the
 * wire, counting the conditional writes the engine answered with a lost
 * condition (412, 409, or Ceph's 500 to a lost `If-Match`, read as the S3
 * client reads them). Every conditional write a server makes goes through
 * it, and each answer is counted there before the server reads it, so once
 * the clients have their replies the sum of the three servers'
 * `dfos_storage_conflicts_total{backend="s3"}` must equal the proxy's count:
 * not a bound but an equality.
 *
 * @module
 */

import assert from "node:assert/strict";
import { DfosClient } from "../client/connection.ts";
import { DfosError, Status } from "../shared/status.ts";
import { seededBytes, sha256 } from "./_common.ts";
import { USERS, waitFor } from "./_fixture.ts";
import { type Exposition, scrape } from "./_prometheus.ts";
import { s3Test, serveOnBucket, tellS3Ignored, type TestBucket } from "./_s3.ts";
import { S3WireCounter } from "./_s3_wire.ts";

tellS3Ignored("tests/s3_racing_writes_test.ts");

const MiB = 1024 * 1024;
const WRITES = 1000;
const NAMES = 5;
const IN_FLIGHT = 24;
const SERVERS = 3;

/** The body of write `i`: small mostly, over the 8 MiB part size (a multipart upload, a commit lease) 1 in 100. */
function bodyOf(i: number): Uint8Array {
  return seededBytes(i % 100 === 50 ? 8 * MiB + 1 + i : 100 + (i * 37) % 4000, i + 1);
}

/** A server: its process, its ports, and how it ends. */
interface Served {
  child: Deno.ChildProcess;
  port: number;
  metricsPort: number;
  ended: Promise<{ status: Deno.CommandStatus; stderr: string }>;
}

/** Starts `dfos serve --storage s3://BUCKET/dfos --metrics 127.0.0.1:0` through `endpoint`, and reads both ports. */
async function serveWithMetrics(bucket: TestBucket, endpoint: string, dir: string, name: string): Promise<Served> {
  const { child, watch } = await serveOnBucket(bucket, dir, name, { endpoint, flags: ["--metrics", "127.0.0.1:0"] });
  let metricsPort = 0;
  try {
    await waitFor(() => {
      const found = /Metrics on http:\/\/127\.0\.0\.1:(\d+)\/metrics/.exec(watch.output());
      if (found !== null) metricsPort = Number(found[1]);
      return found !== null;
    }, "the metrics line");
  } catch (error) {
    child.kill("SIGTERM");
    await watch.ended;
    throw error;
  }
  return { child, port: watch.port, metricsPort, ended: watch.ended };
}

/** Everything `name` holds, read through `client`. */
async function download(client: DfosClient, name: string): Promise<Uint8Array> {
  const { body } = await client.get(name);
  const parts: Uint8Array[] = [];
  for await (const chunk of body.chunks()) parts.push(chunk.slice());
  const all = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let at = 0;
  for (const part of parts) {
    all.set(part, at);
    at += part.length;
  }
  return all;
}

/** Every sample of the storage's series, with the backend it names. */
function storageSeries(scraped: Exposition): { name: string; backend: string | undefined }[] {
  return scraped.samples
    .filter((sample) => sample.name.startsWith("dfos_storage_"))
    .map((sample) => ({ name: sample.name, backend: sample.labels.backend }));
}

s3Test(
  "three dfos serve on one bucket: 1,000 racing puts end whole, and their metrics count every conflict the engine answered",
  async (bucket) => {
    const dir = await Deno.makeTempDir({ prefix: "dfos_s3_race_" });
    await Deno.writeTextFile(
      `${dir}/users.txt`,
      Object.entries(USERS).map(([user, password]) => `${user}:${password}\n`).join(""),
    );
    await using wire = new S3WireCounter(bucket.engine.endpoint);
    const servers: Served[] = [];
    const clients: DfosClient[] = [];
    try {
      for (let s = 0; s < SERVERS; s++) servers.push(await serveWithMetrics(bucket, wire.endpoint, dir, `s${s}`));
      for (let c = 0; c < IN_FLIGHT; c++) {
        const server = servers[c % SERVERS];
        clients.push(
          await DfosClient.connect({ server: `127.0.0.1:${server.port}`, user: "alice", password: USERS.alice }),
        );
      }

      // 1,000 puts, each a distinct body, to 5 names; 24 clients (8 per server) each take the next write.
      const outcomes: ({ stored: true } | { stored: false; error: unknown })[] = new Array(WRITES);
      const writer: number[] = new Array(WRITES);
      let next = 0;
      await Promise.all(clients.map(async (client, c) => {
        for (let i = next++; i < WRITES; i = next++) {
          const body = bodyOf(i);
          writer[i] = c % SERVERS;
          try {
            await client.put(
              `race-${i % NAMES}.bin`,
              (async function* () {
                for (let at = 0; at < body.length; at += MiB) yield body.subarray(at, at + MiB);
              })(),
              { size: body.length },
            );
            outcomes[i] = { stored: true };
          } catch (error) {
            outcomes[i] = { stored: false, error };
          }
        }
      }));

      // Every put was stored, or refused as CONFLICT with a message that says why.
      const refused = outcomes.flatMap((outcome, i) => outcome.stored ? [] : [{ i, error: outcome.error }]);
      for (const { i, error } of refused) {
        assert.ok(error instanceof DfosError, `write ${i}: a DfosError, not ${error}`);
        assert.equal(error.code, Status.CONFLICT, `write ${i}: ${error.message}`);
        assert.match(error.message, new RegExp(`^Cannot store "race-${i % NAMES}\\.bin": `));
      }

      // Each name holds one whole version that was stored: the same through every server, one not its writer.
      for (let n = 0; n < NAMES; n++) {
        const stored = new Map<string, number>();
        for (let i = n; i < WRITES; i += NAMES) if (outcomes[i].stored) stored.set(sha256(bodyOf(i)), i);
        assert.ok(stored.size > 0, `race-${n}.bin: some put of it was stored`);
        const seen = [];
        for (let s = 0; s < SERVERS; s++) seen.push(sha256(await download(clients[s], `race-${n}.bin`)));
        const found = stored.get(seen[0]);
        assert.ok(found !== undefined, `race-${n}.bin holds one of the bodies stored to it`);
        assert.deepEqual(seen, [seen[0], seen[0], seen[0]], `race-${n}.bin is the same through every server`);
        const other = (writer[found] + 1) % SERVERS;
        assert.equal(stored.get(seen[other]), found, `race-${n}.bin: through server ${other}, not its writer`);
      }
      for (const client of clients.splice(0)) await client.close();

      // The metrics: every storage series is backend="s3"; the conflicts are what the engine refused; no upload open.
      const scraped = await Promise.all(servers.map((server) => scrape(server.metricsPort)));
      for (const one of scraped) {
        const series = storageSeries(one);
        assert.ok(series.length > 0);
        assert.deepEqual(
          series.filter((sample) => sample.backend !== "s3"),
          [],
          'every storage series is backend="s3"',
        );
        assert.equal(
          one.value("dfos_storage_multipart_uploads_open", { backend: "s3" }),
          0,
          "no multipart upload open",
        );
      }
      const conflicts = scraped.map((one) => one.value("dfos_storage_conflicts_total", { backend: "s3" }));
      const counts = wire.counts;
      assert.deepEqual(wire.troubles, [], "the proxy read the wire throughout");
      assert.equal(counts.lostReads, 0, "no read lost its condition (no write ran while reading)");
      console.log(
        `puts refused ${refused.length} of ${WRITES}; conditional writes ${counts.conditionalWrites}, ` +
          `refused by the engine ${counts.lostConditions}; conflicts counted by the servers ${conflicts.join(" + ")}`,
      );
      assert.ok(counts.lostConditions > 0, "the race made the engine refuse some conditional writes");
      assert.equal(
        conflicts.reduce((sum, one) => sum + one, 0),
        counts.lostConditions,
        "the servers' conflicts are exactly the conditional writes the engine refused",
      );
      assert.ok(counts.lostConditions >= refused.length, "each put refused as CONFLICT lost at least one condition");
    } finally {
      for (const client of clients) await client.close().catch(() => {});
      for (const server of servers) server.child.kill("SIGTERM");
      for (const server of servers) await server.ended;
      await Deno.remove(dir, { recursive: true });
    }
  },
);
