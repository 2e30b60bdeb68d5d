/**
 * The S3 client bench (issue 13): the same object moved by each candidate
 * client against one engine in one run, so that their ratios can be read.
 *
 *     deno run -A bench/s3_clients.ts                       # 7 start-ups, 256 MiB x 3 rounds, every client
 *     deno run -A bench/s3_clients.ts --size-mib 1024 --rounds 1 --clients sdk,dfos
 *
 * Clients, each run in a fresh process of its own per round (order rotated
 * from round to round):
 * - `sdk`: `@aws-sdk/client-s3` (checksums "WHEN_REQUIRED", path-style),
 *   its default Node HTTP handler.
 * - `aws4fetch`: `aws4fetch`'s `AwsClient.fetch` (it signs a body's
 *   SHA-256, computed with WebCrypto).
 * - `aws4fetch-unsigned`: the same with `UNSIGNED-PAYLOAD`.
 * - `dfos-fetch`: dfos's S3ObjectStore (server/s3/s3_client.ts) with every
 *   request through `fetch` (transport `fetch`), `UNSIGNED-PAYLOAD`.
 * - `dfos-sha256`: dfos's S3ObjectStore as dfos uses it (large bodies over
 *   connections of their own), but signing each body's SHA-256 (`node:crypto`).
 * - `dfos`: dfos's S3ObjectStore as dfos uses it on loopback or TLS
 *   (large bodies over connections of their own, `UNSIGNED-PAYLOAD`).
 *
 * Each process measures the milliseconds from its own start to the end of
 * importing the client (and making it), and to the end of a first request (a
 * HeadObject of a missing key): `--start-rounds` processes per client that
 * do only that come first. Then `--rounds` processes per client time a
 * multipart put of the object (parts of
 * `--part-mib`, `--parallel` at once, every part the same bytes); a streamed
 * get of it (bytes counted, not kept). Wall time gives MiB/s; the process's
 * CPU time (`Deno.cpuUsage`, user + system) gives CPU seconds per GiB; and
 * its peak RSS (VmHWM). The engine is the one named by S3_ENDPOINT,
 * S3_ACCESS_KEY, S3_SECRET_KEY (S3_REGION), else one started here with
 * tools/s3/start-s3.sh and stopped at the end. A bucket of its own is made
 * and removed.
 *
 * @module
 */

import { cpuUsage } from "node:process";
import { parseArgs } from "node:util";
import type { S3ObjectStore } from "../server/s3/s3_client.ts";

/** Every client the bench knows. */
const CLIENTS = ["sdk", "aws4fetch", "aws4fetch-unsigned", "dfos-fetch", "dfos-sha256", "dfos"] as const;
type ClientName = typeof CLIENTS[number];

/** What a worker reports. */
interface WorkerResult {
  client: ClientName;
  /** Milliseconds from the process's start to the client imported and made. */
  importMs: number;
  /** Milliseconds from the process's start to the end of the first request. */
  firstRequestMs: number;
  putSeconds: number;
  putCpuSeconds: number;
  getSeconds: number;
  getCpuSeconds: number;
  /** Bytes the get read. */
  getBytes: number;
  /** Peak RSS in bytes. */
  peakRss: number;
}

/** What each client does for the bench. */
interface BenchClient {
  /** A HeadObject of a key that is not there. */
  first(key: string): Promise<void>;
  /** CreateMultipartUpload; returns the upload id. */
  createMultipart(key: string): Promise<string>;
  /** UploadPart; returns the part's ETag. */
  uploadPart(key: string, uploadId: string, partNumber: number, body: Uint8Array): Promise<string>;
  /** CompleteMultipartUpload. */
  complete(key: string, uploadId: string, parts: { partNumber: number; etag: string }[]): Promise<void>;
  /** Reads the object to its end; returns how many bytes. */
  get(key: string): Promise<number>;
  /** Frees what the client holds. */
  close(): void;
}

/** The engine's address, from the environment. */
interface Target {
  endpoint: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  bucket: string;
}

function targetFromEnv(): Target {
  return {
    endpoint: Deno.env.get("S3_ENDPOINT")!,
    region: Deno.env.get("S3_REGION") || "us-east-1",
    accessKeyId: Deno.env.get("S3_ACCESS_KEY")!,
    secretAccessKey: Deno.env.get("S3_SECRET_KEY")!,
    bucket: Deno.env.get("BENCH_S3_BUCKET")!,
  };
}

const encodeKey = (key: string) => key.split("/").map(encodeURIComponent).join("/");

/** The CompleteMultipartUpload body. */
function completeXml(parts: { partNumber: number; etag: string }[]): string {
  return `<CompleteMultipartUpload>${
    parts.map((part) => `<Part><PartNumber>${part.partNumber}</PartNumber><ETag>${part.etag}</ETag></Part>`).join("")
  }</CompleteMultipartUpload>`;
}

/** Reads a web stream to its end; returns how many bytes. */
async function countStream(body: ReadableStream<Uint8Array>): Promise<number> {
  let bytes = 0;
  for await (const chunk of body) bytes += chunk.byteLength;
  return bytes;
}

/** Makes the named client (this is what the import time covers). */
async function makeClient(name: ClientName, target: Target): Promise<BenchClient> {
  if (name === "sdk") {
    const sdk = await import("@aws-sdk/client-s3");
    const client = new sdk.S3Client({
      region: target.region,
      endpoint: target.endpoint,
      forcePathStyle: true,
      credentials: { accessKeyId: target.accessKeyId, secretAccessKey: target.secretAccessKey },
      requestChecksumCalculation: "WHEN_REQUIRED",
      responseChecksumValidation: "WHEN_REQUIRED",
    });
    const Bucket = target.bucket;
    return {
      async first(Key) {
        try {
          await client.send(new sdk.HeadObjectCommand({ Bucket, Key }));
        } catch (error) {
          if ((error as { name?: string }).name !== "NotFound") throw error;
        }
      },
      async createMultipart(Key) {
        return (await client.send(new sdk.CreateMultipartUploadCommand({ Bucket, Key }))).UploadId!;
      },
      async uploadPart(Key, UploadId, PartNumber, Body) {
        const answer = await client.send(
          new sdk.UploadPartCommand({ Bucket, Key, UploadId, PartNumber, Body, ContentLength: Body.byteLength }),
        );
        return answer.ETag!;
      },
      async complete(Key, UploadId, parts) {
        await client.send(
          new sdk.CompleteMultipartUploadCommand({
            Bucket,
            Key,
            UploadId,
            MultipartUpload: { Parts: parts.map((part) => ({ PartNumber: part.partNumber, ETag: part.etag })) },
          }),
        );
      },
      async get(Key) {
        const answer = await client.send(new sdk.GetObjectCommand({ Bucket, Key }));
        const body = answer.Body as unknown as AsyncIterable<Uint8Array>;
        let bytes = 0;
        for await (const chunk of body) bytes += chunk.byteLength;
        return bytes;
      },
      close: () => client.destroy(),
    };
  }
  if (name === "aws4fetch" || name === "aws4fetch-unsigned") {
    const { AwsClient } = await import("aws4fetch");
    const client = new AwsClient({
      accessKeyId: target.accessKeyId,
      secretAccessKey: target.secretAccessKey,
      region: target.region,
      service: "s3",
    });
    const base = `${target.endpoint}/${target.bucket}/`;
    const unsigned: Record<string, string> = name === "aws4fetch-unsigned"
      ? { "x-amz-content-sha256": "UNSIGNED-PAYLOAD" }
      : {};
    const ok = async (response: Response, what: string) => {
      if (!response.ok) throw new Error(`${what}: ${response.status} ${await response.text()}`);
      return response;
    };
    return {
      async first(key) {
        const response = await client.fetch(base + encodeKey(key), { method: "HEAD" });
        await response.body?.cancel();
      },
      async createMultipart(key) {
        const response = await ok(await client.fetch(`${base}${encodeKey(key)}?uploads`, { method: "POST" }), "create");
        return /<UploadId>([^<]+)<\/UploadId>/.exec(await response.text())![1];
      },
      async uploadPart(key, uploadId, partNumber, body) {
        const url = `${base}${encodeKey(key)}?partNumber=${partNumber}&uploadId=${encodeURIComponent(uploadId)}`;
        const response = await ok(
          await client.fetch(url, { method: "PUT", body: body as BodyInit, headers: unsigned }),
          "part",
        );
        await response.body?.cancel();
        return response.headers.get("etag")!;
      },
      async complete(key, uploadId, parts) {
        const url = `${base}${encodeKey(key)}?uploadId=${encodeURIComponent(uploadId)}`;
        const response = await ok(await client.fetch(url, { method: "POST", body: completeXml(parts) }), "complete");
        await response.text();
      },
      async get(key) {
        const response = await ok(await client.fetch(base + encodeKey(key)), "get");
        return await countStream(response.body!);
      },
      close: () => {},
    };
  }
  const { S3ObjectStore } = await import("../server/s3/s3_client.ts");
  const store: S3ObjectStore = new S3ObjectStore({
    bucket: target.bucket,
    endpoint: target.endpoint,
    region: target.region,
    payloadSigning: name === "dfos-sha256" ? "sha256" : "auto",
    transport: name === "dfos-fetch" ? "fetch" : "auto",
  }, { accessKeyId: target.accessKeyId, secretAccessKey: target.secretAccessKey, source: "bench" });
  return {
    async first(key) {
      await store.head(key);
    },
    createMultipart: (key) => store.createMultipart(key),
    uploadPart: (key, uploadId, partNumber, body) => store.uploadPart(key, uploadId, partNumber, body),
    async complete(key, uploadId, parts) {
      await store.completeMultipart(key, uploadId, parts.map((part) => ({ ...part, size: 0 })));
    },
    async get(key) {
      const got = await store.get(key);
      return await countStream(got!.body);
    },
    close: () => {},
  };
}

/** Process CPU time so far, in seconds. */
function cpuSeconds(): number {
  const usage = cpuUsage();
  return (usage.user + usage.system) / 1e6;
}

/** Peak RSS in bytes (VmHWM). */
function peakRss(): number {
  const match = /VmHWM:\s+(\d+) kB/.exec(Deno.readTextFileSync("/proc/self/status"));
  return match ? Number(match[1]) * 1024 : 0;
}

/** One client's run, in this (fresh) process. */
async function worker(name: ClientName, sizeMib: number, partMib: number, parallel: number): Promise<WorkerResult> {
  const target = targetFromEnv();
  const client = await makeClient(name, target);
  const importMs = performance.now();
  await client.first(`missing-${name}`);
  const firstRequestMs = performance.now();
  if (sizeMib === 0) {
    client.close();
    return {
      client: name,
      importMs,
      firstRequestMs,
      putSeconds: 0,
      putCpuSeconds: 0,
      getSeconds: 0,
      getCpuSeconds: 0,
      getBytes: 0,
      peakRss: peakRss(),
    };
  }

  const part = new Uint8Array(partMib << 20);
  for (let offset = 0; offset < part.byteLength; offset += 65536) {
    crypto.getRandomValues(part.subarray(offset, offset + 65536));
  }
  const size = sizeMib << 20;
  const count = Math.ceil(size / part.byteLength);
  const key = `object-${name}`;

  let cpu = cpuSeconds();
  let start = performance.now();
  const uploadId = await client.createMultipart(key);
  const etags: string[] = new Array(count);
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(parallel, count) }, async () => {
    while (next < count) {
      const index = next++;
      const length = Math.min(part.byteLength, size - index * part.byteLength);
      etags[index] = await client.uploadPart(key, uploadId, index + 1, part.subarray(0, length));
    }
  }));
  await client.complete(key, uploadId, etags.map((etag, index) => ({ partNumber: index + 1, etag })));
  const putSeconds = (performance.now() - start) / 1000;
  const putCpuSeconds = cpuSeconds() - cpu;

  cpu = cpuSeconds();
  start = performance.now();
  const getBytes = await client.get(key);
  const getSeconds = (performance.now() - start) / 1000;
  const getCpuSeconds = cpuSeconds() - cpu;
  if (getBytes !== size) throw new Error(`get read ${getBytes} bytes of ${size}`);
  client.close();
  return {
    client: name,
    importMs,
    firstRequestMs,
    putSeconds,
    putCpuSeconds,
    getSeconds,
    getCpuSeconds,
    getBytes,
    peakRss: peakRss(),
  };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

/** Runs the bench: engine, bucket, one worker process per client and round, the table. */
async function main(): Promise<number> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      "size-mib": { type: "string", default: "256" },
      "part-mib": { type: "string", default: "8" },
      parallel: { type: "string", default: "4" },
      rounds: { type: "string", default: "3" },
      "start-rounds": { type: "string", default: "7" },
      clients: { type: "string", default: CLIENTS.join(",") },
      json: { type: "string" },
      worker: { type: "string" },
    },
  });
  const sizeMib = Number(values["size-mib"]);
  const partMib = Number(values["part-mib"]);
  const parallel = Number(values.parallel);
  if (values.worker !== undefined) {
    const result = await worker(values.worker as ClientName, sizeMib, partMib, parallel);
    console.log(JSON.stringify(result));
    return 0;
  }
  const clients = values.clients!.split(",") as ClientName[];
  for (const client of clients) {
    if (!CLIENTS.includes(client)) {
      console.error(`Cannot run client "${client}": not one of ${CLIENTS.join(", ")}`);
      return 2;
    }
  }
  const rounds = Number(values.rounds);

  const { startS3Engine, stopS3Engine } = await import("../tools/s3_engine.ts");
  const { S3ObjectStore } = await import("../server/s3/s3_client.ts");
  let engine = null;
  if (!Deno.env.get("S3_ENDPOINT")) {
    const started = await startS3Engine();
    if (typeof started === "string") {
      console.error(`Cannot start an S3 engine: ${started}`);
      return 1;
    }
    engine = started;
  }
  const env = engine?.env ?? Deno.env.toObject();
  const bucket = `dfos-bench-${Deno.pid}`;
  const store = new S3ObjectStore({
    bucket,
    endpoint: env.S3_ENDPOINT,
    region: env.S3_REGION || "us-east-1",
  }, { accessKeyId: env.S3_ACCESS_KEY, secretAccessKey: env.S3_SECRET_KEY, source: "bench" });
  const results: WorkerResult[] = [];
  const starts: WorkerResult[] = [];
  const startRounds = Number(values["start-rounds"]);
  try {
    const created = await store.connection.request({ method: "PUT", operation: "CreateBucket" });
    await created.body?.cancel();
    for (let round = 0; round < startRounds + rounds; round++) {
      const startOnly = round < startRounds;
      const order = clients.map((_, i) => clients[(i + round) % clients.length]);
      for (const client of order) {
        const { code, stdout } = await new Deno.Command(Deno.execPath(), {
          args: [
            "run",
            "-A",
            new URL(import.meta.url).pathname,
            "--worker",
            client,
            "--size-mib",
            String(startOnly ? 0 : sizeMib),
            "--part-mib",
            String(partMib),
            "--parallel",
            String(parallel),
          ],
          env: { ...(engine?.env ?? {}), BENCH_S3_BUCKET: bucket },
          stdout: "piped",
          stderr: "inherit",
        }).output();
        if (code !== 0) throw new Error(`client ${client} failed (exit ${code})`);
        const result = JSON.parse(new TextDecoder().decode(stdout).trim().split("\n").at(-1)!) as WorkerResult;
        if (startOnly) {
          starts.push(result);
          continue;
        }
        results.push(result);
        console.error(
          `round ${round + 1} ${client}: put ${(sizeMib / result.putSeconds).toFixed(0)} MiB/s, get ${
            (sizeMib / result.getSeconds).toFixed(0)
          } MiB/s`,
        );
        await store.delete(`object-${client}`);
      }
    }
  } finally {
    for (const upload of await store.listMultipartUploads("").catch(() => [])) {
      await store.abortMultipart(upload.key, upload.uploadId).catch(() => {});
    }
    for (const object of (await store.list("").catch(() => ({ objects: [] }))).objects) {
      await store.delete(object.key).catch(() => {});
    }
    const deleted = await store.connection.send({ method: "DELETE", operation: "DeleteBucket" }).catch(() => null);
    await deleted?.body?.cancel();
    if (engine !== null) await stopS3Engine(engine);
  }

  const gib = sizeMib / 1024;
  const rows = clients.map((client) => {
    const mine = results.filter((result) => result.client === client);
    const started = starts.filter((result) => result.client === client);
    return {
      client,
      importMs: median(started.map((r) => r.importMs)),
      firstRequestMs: median(started.map((r) => r.firstRequestMs)),
      putMibPerSecond: median(mine.map((r) => sizeMib / r.putSeconds)),
      getMibPerSecond: median(mine.map((r) => sizeMib / r.getSeconds)),
      putCpuPerGib: median(mine.map((r) => r.putCpuSeconds / gib)),
      getCpuPerGib: median(mine.map((r) => r.getCpuSeconds / gib)),
      peakRssMib: median(mine.map((r) => r.peakRss / 2 ** 20)),
    };
  });
  const base = rows.find((row) => row.client === "sdk") ?? rows[0];
  console.log(
    `S3 clients: start-up ${startRounds} runs each; ${sizeMib} MiB object, ${partMib} MiB parts x ${parallel}, ${rounds} round(s); medians; (x) = ratio to ${base.client}`,
  );
  console.log(
    "| client | import, ms | first request done, ms | put MiB/s | get MiB/s | put CPU s/GiB | get CPU s/GiB | peak RSS MiB |",
  );
  console.log("| --- | --- | --- | --- | --- | --- | --- | --- |");
  const cell = (value: number, of: number, digits: number) => `${value.toFixed(digits)} (${(value / of).toFixed(2)})`;
  for (const row of rows) {
    console.log(
      `| ${row.client} | ${cell(row.importMs, base.importMs, 0)} | ${
        cell(row.firstRequestMs, base.firstRequestMs, 0)
      } | ${cell(row.putMibPerSecond, base.putMibPerSecond, 0)} | ${
        cell(row.getMibPerSecond, base.getMibPerSecond, 0)
      } | ${cell(row.putCpuPerGib, base.putCpuPerGib, 2)} | ${cell(row.getCpuPerGib, base.getCpuPerGib, 2)} | ${
        row.peakRssMib.toFixed(0)
      } |`,
    );
  }
  if (values.json !== undefined) {
    await Deno.writeTextFile(
      values.json,
      JSON.stringify({ sizeMib, partMib, parallel, rounds, results, rows }, null, 2),
    );
  }
  return 0;
}

if (import.meta.main) {
  Deno.exit(await main());
}
