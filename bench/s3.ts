/**
 * Section "s3" (issue 13): dfos on an S3 engine (Ceph RGW on loopback).
 * The engine is the one named by `S3_ENDPOINT`, `S3_ACCESS_KEY`,
 * `S3_SECRET_KEY` (`S3_REGION`), else one this section starts with
 * tools/s3/start-s3.sh (about 7 s) and stops at its end; a bucket of its own
 * is made and removed.
 *
 * - **1 GiB through dfos next to the SDK.** `dfos serve --storage s3://`
 *   (its default parts: 8 MiB, 3 at once) and the real CLI, one whole
 *   process per transfer: `dfos put FILE` (the file read from the page
 *   cache) and `dfos get NAME /dev/null`, timed from spawn to exit (so
 *   process start and login are in dfos's time). Beside it the same size
 *   moved straight to the engine by `@aws-sdk/client-s3` (bench/s3_clients.ts
 *   `--worker sdk`, a fresh process per run, checksums "WHEN_REQUIRED",
 *   path-style; a multipart put of 8 MiB parts, 3 at once, from memory, and a
 *   streamed get, counted), timed inside the process from the first request.
 *   The same through an in-process `DfosClient` (a body made in memory,
 *   timed from the request), as the SDK is. Target: dfos at least 0.8x the
 *   SDK, each direction, both ways of measuring dfos.
 * - **32 clients through 1, 2 and 3 servers.** Three `dfos serve` on the
 *   bucket; 32 in-process clients, connected round-robin to the first 1, 2 or
 *   3, each put a body of 32 MiB at once (made in memory), then get it back at
 *   once (SHA-256 checked); aggregate MiB/s over the wall time.
 *
 * Everything (engine, servers, clients, this process) shares the machine's
 * CPUs: the figures say what one machine does, not what separate hosts would.
 *
 * @module
 */

import { join } from "node:path";

import { DfosClient } from "../client/connection.ts";
import { S3ObjectStore } from "../server/s3/s3_client.ts";
import { startS3Engine, stopS3Engine } from "../tools/s3_engine.ts";
import { freePort, MAIN, PROJECT_DIR, randomHex } from "../tests/_common.ts";
import { GeneratedBody, sha256Of } from "./bodies.ts";
import { readIntoCache, syncFileSystems, writeRandomFile } from "./files.ts";
import { waitForQuiet } from "./machine.ts";
import { waitForAccept } from "./processes.ts";
import type { Row } from "./report.ts";
import { messageOf, type SectionContext, type SectionResult } from "./section.ts";
import { round, summarize } from "./stats.ts";
import { judge, TARGETS } from "./targets.ts";

const MIB = 1024 * 1024;
/** How long one client process or one aggregate round may run. */
const TIMEOUT_MS = 300_000;
/** The SDK's parts and parallelism: dfos's own (server/s3/s3_upload.ts). */
const SDK_PART_MIB = 8;
const SDK_PARALLEL = 3;
/** The size of the store of an engine this section starts, in GiB (sparse: it takes what is written). */
const ENGINE_STORE_GIB = 48;
/** The bench's user. */
const USER = "bench";

/** The engine's address and keys, as start-s3.sh prints them. */
type EngineEnv = Record<"S3_ENDPOINT" | "S3_ACCESS_KEY" | "S3_SECRET_KEY" | "S3_REGION", string>;

/** A `dfos serve` on the bucket. */
interface S3Server {
  address: string;
  password: string;
}

/**
 * Runs the section.
 *
 * @param context The section's folder, processes and settings.
 * @returns The rows and figures.
 */
export async function s3Section(context: SectionContext): Promise<SectionResult> {
  const { dir, settings, say } = context;
  const { sizeMiB, runs, clients, clientMiB } = settings.s3;
  const env = await engineEnv(context);
  const bucket = `dfos-bench-${Deno.pid}-${randomHex(3)}`;
  const store = new S3ObjectStore(
    { bucket, endpoint: env.S3_ENDPOINT, region: env.S3_REGION, timeoutMs: 30_000 },
    { accessKeyId: env.S3_ACCESS_KEY, secretAccessKey: env.S3_SECRET_KEY, source: "bench" },
  );
  await (await store.connection.request({ method: "PUT", operation: "CreateBucket" })).body?.cancel();
  context.defer(() => removeBucket(store));

  const password = randomHex(12);
  await Deno.writeTextFile(join(dir, "users.txt"), `${USER}:${password}\n`, { mode: 0o600 });
  const servers: S3Server[] = [];
  for (let i = 0; i < 3; i++) servers.push(await startServer(context, env, bucket, password, i));

  // 1 GiB: dfos (CLI) and the SDK, interleaved, one warm-up each.
  say(`s3: writing a ${sizeMiB} MiB random file`);
  const file = join(dir, "big.bin");
  await writeRandomFile(file, sizeMiB);
  await syncFileSystems();
  const timings = {
    dfosPut: [] as number[],
    dfosGet: [] as number[],
    clientPut: [] as number[],
    clientGet: [] as number[],
    sdkPut: [] as number[],
    sdkGet: [] as number[],
  };
  const body = new GeneratedBody(sizeMiB * MIB);
  const failures: string[] = [];
  for (let run = 0; run <= runs; run++) {
    context.signal.throwIfAborted();
    say(`s3: ${run === 0 ? "warm-up (untimed)" : `run ${run} of ${runs}`}: ${sizeMiB} MiB through dfos and the SDK`);
    try {
      const sdk = await sdkRun(context, env, bucket, sizeMiB);
      const dfos = await dfosRun(context, servers[0], file);
      const client = await clientRun(servers[0], body);
      // what this run stored goes now, so that the engine reclaims it while the next runs
      for (const key of ["object-sdk", `dfos/${USER}/big.bin`]) await store.delete(key);
      if (run === 0) continue;
      timings.clientPut.push(client.putSeconds);
      timings.clientGet.push(client.getSeconds);
      timings.sdkPut.push(sdk.putSeconds);
      timings.sdkGet.push(sdk.getSeconds);
      timings.dfosPut.push(dfos.putSeconds);
      timings.dfosGet.push(dfos.getSeconds);
      say(
        `s3: put dfos ${rate(sizeMiB, dfos.putSeconds)} (in-process ${rate(sizeMiB, client.putSeconds)}), sdk ${
          rate(sizeMiB, sdk.putSeconds)
        }; get dfos ${rate(sizeMiB, dfos.getSeconds)} (in-process ${rate(sizeMiB, client.getSeconds)}), sdk ${
          rate(sizeMiB, sdk.getSeconds)
        } MiB/s`,
      );
    } catch (error) {
      failures.push(messageOf(error));
      say(`s3: run ${run} failed: ${messageOf(error)}`);
      break;
    }
  }
  await Deno.remove(file);

  // 32 clients through 1, 2, 3 servers.
  const aggregate: { servers: number; putMiBps: number; getMiBps: number }[] = [];
  say(`s3: making ${clients} bodies of ${clientMiB} MiB in memory`);
  const bodies = Array.from({ length: clients }, () => new GeneratedBody(clientMiB * MIB));
  for (const body of bodies) body.sha256();
  for (const count of [1, 2, 3]) {
    context.signal.throwIfAborted();
    try {
      const result = await aggregateRun(servers.slice(0, count), bodies);
      aggregate.push({ servers: count, ...result });
      say(`s3: ${clients} clients through ${count}: put ${result.putMiBps} MiB/s, get ${result.getMiBps} MiB/s`);
    } catch (error) {
      failures.push(messageOf(error));
      say(`s3: ${clients} clients through ${count} failed: ${messageOf(error)}`);
    }
  }

  const median = (values: number[]) => summarize(values)?.median ?? null;
  const mibps = (seconds: number | null) => seconds === null ? null : round(sizeMiB / seconds, 0);
  const figures = {
    dfosPut: mibps(median(timings.dfosPut)),
    dfosGet: mibps(median(timings.dfosGet)),
    clientPut: mibps(median(timings.clientPut)),
    clientGet: mibps(median(timings.clientGet)),
    sdkPut: mibps(median(timings.sdkPut)),
    sdkGet: mibps(median(timings.sdkGet)),
  };
  const ratio = (dfos: number | null, sdk: number | null) => dfos === null || sdk === null ? null : dfos / sdk;
  const rows: Row[] = (["put", "get"] as const).flatMap((direction) => {
    const sdk = direction === "put" ? figures.sdkPut : figures.sdkGet;
    const ways = [
      { dfos: direction === "put" ? figures.dfosPut : figures.dfosGet, how: "the CLI, one process from spawn to exit" },
      {
        dfos: direction === "put" ? figures.clientPut : figures.clientGet,
        how: "an in-process DfosClient from its request, body in memory",
      },
    ];
    return ways.map(({ dfos, how }) => {
      const share = ratio(dfos, sdk);
      return {
        section: "s3",
        what: `${direction} ${sizeMiB} MiB through dfos on S3 (${how.split(",")[0]}) vs the SDK straight to the engine`,
        figure: share === null ? "failed" : `${dfos} vs ${sdk} MiB/s (${share.toFixed(2)}x)`,
        judgement: judge(TARGETS.s3Ratio, share),
        note: `median of ${runs}; dfos: ${how}; SDK: from its first request` +
          (failures.length > 0 ? `; ${failures[0]}` : ""),
      };
    });
  });
  for (const one of aggregate) {
    rows.push({
      section: "s3",
      what: `${clients} clients x ${clientMiB} MiB through ${one.servers} server${one.servers === 1 ? "" : "s"}`,
      figure: `put ${one.putMiBps} MiB/s, get ${one.getMiBps} MiB/s`,
      judgement: null,
      note: "aggregate over the wall time; in-process clients round-robin; engine, servers and clients on 2 cores",
    });
  }
  return {
    rows,
    data: {
      sizeMiB,
      runs,
      timings,
      medianMiBps: figures,
      aggregate,
      clients,
      clientMiB,
      failures,
      engine: env.S3_ENDPOINT === Deno.env.get("S3_ENDPOINT") ? "given (S3_ENDPOINT)" : "started (tools/s3)",
    },
    failures: failures.length,
  };
}

/** The engine from the environment, or one started now (stopped at the section's end). */
async function engineEnv(context: SectionContext): Promise<EngineEnv> {
  const given = Deno.env.toObject();
  if (given.S3_ENDPOINT && given.S3_ACCESS_KEY && given.S3_SECRET_KEY) {
    return { ...given, S3_REGION: given.S3_REGION || "us-east-1" } as EngineEnv;
  }
  // Each run writes some 3 GiB, and RGW reclaims deleted data only a minute or two later: a roomier (sparse) store
  // than start-s3.sh's 10 GiB, which this section fills (the OSD then aborts on ENOSPC and the engine hangs).
  if (!Deno.env.get("START_S3_CEPH_SIZE_GB")) Deno.env.set("START_S3_CEPH_SIZE_GB", `${ENGINE_STORE_GIB}`);
  context.say(`s3: starting an S3 engine (tools/s3/start-s3.sh, a ${Deno.env.get("START_S3_CEPH_SIZE_GB")} GiB store)`);
  const engine = await startS3Engine();
  if (typeof engine === "string") throw new Error(`Cannot start an S3 engine: ${engine}`);
  context.defer(() => stopS3Engine(engine));
  return { ...engine.env, S3_REGION: engine.env.S3_REGION || "us-east-1" } as EngineEnv;
}

/** Starts `dfos serve --storage s3://BUCKET/dfos` on a free port. */
async function startServer(
  context: SectionContext,
  env: EngineEnv,
  bucket: string,
  password: string,
  index: number,
): Promise<S3Server> {
  const port = freePort();
  const argv = [
    Deno.execPath(),
    ...["run", "-A", MAIN, "serve", "--host", "127.0.0.1", "--port", `${port}`],
    ...["--users", join(context.dir, "users.txt"), "--log", join(context.dir, `server-${index}.log`)],
    ...["--storage", `s3://${bucket}/dfos`, "--s3-endpoint", env.S3_ENDPOINT, "--s3-region", env.S3_REGION],
    "--s3-path-style",
  ];
  const server = context.processes.startServer(`dfos server ${index} on S3`, argv, {
    cwd: PROJECT_DIR,
    env: { AWS_ACCESS_KEY_ID: env.S3_ACCESS_KEY, AWS_SECRET_ACCESS_KEY: env.S3_SECRET_KEY },
    log: join(context.dir, `server-${index}.out`),
  });
  await waitForAccept(port, 30_000, server);
  return { address: `127.0.0.1:${port}`, password };
}

/** One run of the SDK's put and get, in a fresh process (bench/s3_clients.ts). */
async function sdkRun(
  context: SectionContext,
  env: EngineEnv,
  bucket: string,
  sizeMiB: number,
): Promise<{ putSeconds: number; getSeconds: number }> {
  await waitForQuiet(15, 20_000);
  const worker = new URL("./s3_clients.ts", import.meta.url).pathname;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", worker, "--worker", "sdk", "--size-mib", `${sizeMiB}`, "--part-mib", `${SDK_PART_MIB}`]
      .concat(["--parallel", `${SDK_PARALLEL}`]),
    env: { ...env, BENCH_S3_BUCKET: bucket },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.any([context.signal, AbortSignal.timeout(TIMEOUT_MS)]),
  }).spawn();
  const { code, stdout, stderr } = await child.output();
  if (code !== 0) throw new Error(`the SDK's run failed (exit ${code}): ${new TextDecoder().decode(stderr).trim()}`);
  const result = JSON.parse(new TextDecoder().decode(stdout).trim().split("\n").at(-1)!);
  return { putSeconds: result.putSeconds, getSeconds: result.getSeconds };
}

/** One put and one get of `file` through dfos's CLI, each a whole process timed from spawn to exit. */
async function dfosRun(
  context: SectionContext,
  server: S3Server,
  file: string,
): Promise<{ putSeconds: number; getSeconds: number }> {
  const env = { DFOS_SERVER: server.address, DFOS_USER: USER, DFOS_PASSWORD: server.password };
  const timed = async (args: string[]) => {
    await waitForQuiet(15, 20_000);
    const started = performance.now();
    const result = await context.processes.runClient([Deno.execPath(), "run", "-A", MAIN, ...args], {
      env,
      cwd: PROJECT_DIR,
      timeoutMs: TIMEOUT_MS,
    });
    const seconds = (performance.now() - started) / 1000;
    if (result.code !== 0) throw new Error(`dfos ${args[0]} failed (exit ${result.code}): ${result.stderr.trim()}`);
    return seconds;
  };
  await readIntoCache(file);
  const putSeconds = await timed(["put", file, "big.bin"]);
  const getSeconds = await timed(["get", "--no-resume", "big.bin", "/dev/null"]);
  return { putSeconds, getSeconds };
}

/** One put of `body` and one get of it back through an in-process client, each timed from its request. */
async function clientRun(server: S3Server, body: GeneratedBody): Promise<{ putSeconds: number; getSeconds: number }> {
  const client = await DfosClient.connect({ server: server.address, user: USER, password: server.password });
  try {
    await waitForQuiet(15, 20_000);
    let started = performance.now();
    await client.put("in-process.bin", body.chunks(), { size: body.size });
    const putSeconds = (performance.now() - started) / 1000;
    await waitForQuiet(15, 20_000);
    started = performance.now();
    const download = await client.get("in-process.bin");
    let bytes = 0;
    for await (const chunk of download.body.chunks()) bytes += chunk.length;
    const getSeconds = (performance.now() - started) / 1000;
    if (bytes !== body.size) throw new Error(`the in-process get read ${bytes} bytes of ${body.size}`);
    await client.remove("in-process.bin");
    return { putSeconds, getSeconds };
  } finally {
    await client.close();
  }
}

/** The bodies put at once by as many clients (round-robin over `servers`), then got back at once. */
async function aggregateRun(
  servers: S3Server[],
  bodies: GeneratedBody[],
): Promise<{ putMiBps: number; getMiBps: number }> {
  const clients: DfosClient[] = [];
  try {
    for (const [i] of bodies.entries()) {
      const server = servers[i % servers.length];
      clients.push(await DfosClient.connect({ server: server.address, user: USER, password: server.password }));
    }
    const total = bodies.reduce((sum, body) => sum + body.size, 0) / MIB;
    await waitForQuiet(15, 20_000);
    let started = performance.now();
    await Promise.all(
      clients.map((client, i) => client.put(`many/${i}.bin`, bodies[i].chunks(), { size: bodies[i].size })),
    );
    const putSeconds = (performance.now() - started) / 1000;
    await waitForQuiet(15, 20_000);
    started = performance.now();
    const got = await Promise.all(clients.map(async (client, i) => {
      const download = await client.get(`many/${i}.bin`);
      return await sha256Of(download.body.chunks());
    }));
    const getSeconds = (performance.now() - started) / 1000;
    for (const [i, one] of got.entries()) {
      if (one.sha256 !== bodies[i].sha256()) throw new Error(`client ${i} got back other bytes than it put`);
    }
    for (const [i, client] of clients.entries()) await client.remove(`many/${i}.bin`);
    return { putMiBps: round(total / putSeconds, 0), getMiBps: round(total / getSeconds, 0) };
  } finally {
    for (const client of clients) await client.close().catch(() => {});
  }
}

/** MiB/s, rounded. */
function rate(mib: number, seconds: number): string {
  return (mib / seconds).toFixed(0);
}

/** Empties and deletes the bucket. */
async function removeBucket(store: S3ObjectStore): Promise<void> {
  for (const upload of await store.listMultipartUploads("").catch(() => [])) {
    await store.abortMultipart(upload.key, upload.uploadId).catch(() => {});
  }
  for (let pass = 0; pass < 100; pass++) {
    const page = await store.list("").catch(() => ({ objects: [] as { key: string }[] }));
    if (page.objects.length === 0) break;
    await Promise.all(page.objects.map((object) => store.delete(object.key).catch(() => {})));
  }
  const deleted = await store.connection.send({ method: "DELETE", operation: "DeleteBucket" }).catch(() => null);
  await deleted?.body?.cancel();
}
