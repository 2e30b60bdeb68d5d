/**
 * What S3 tests share: the engine named by `S3_ENDPOINT`, `S3_ACCESS_KEY`,
 * `S3_SECRET_KEY` (and `S3_REGION`), as `deno task test` starts it
 * (tools/test_task.ts) or a developer exports it (`eval
 * "$(tools/s3/start-s3.sh)"`), and a fresh bucket per test, removed after
 * with everything in it.
 *
 * Without those variables the S3 tests are ignored, and the first file that
 * asks says why on stderr; with `DFOS_REQUIRE_S3=1` (as in CI) they run and
 * fail instead.
 *
 * Internal to tests/: nothing here is part of dfos.
 *
 * @module
 */

import type { AwsCredentials } from "../server/s3/aws_credentials.ts";
import { S3Connection, S3ObjectStore, type S3StoreOptions } from "../server/s3/s3_client.ts";
import { type ServeWatch, spawnCli, USERS, watchServe } from "./_fixture.ts";

/** The engine's address and key, from the environment. */
export interface S3Engine {
  /** `S3_ENDPOINT`. */
  endpoint: string;
  /** `S3_REGION`, or `us-east-1`. */
  region: string;
  /** `S3_ACCESS_KEY` and `S3_SECRET_KEY`. */
  credentials: AwsCredentials;
}

/** The engine from the environment, or null when `S3_ENDPOINT`, `S3_ACCESS_KEY` or `S3_SECRET_KEY` is unset. */
export function s3Engine(): S3Engine | null {
  const endpoint = Deno.env.get("S3_ENDPOINT");
  const accessKeyId = Deno.env.get("S3_ACCESS_KEY");
  const secretAccessKey = Deno.env.get("S3_SECRET_KEY");
  if (!endpoint || !accessKeyId || !secretAccessKey) return null;
  return {
    endpoint,
    region: Deno.env.get("S3_REGION") || "us-east-1",
    credentials: { accessKeyId, secretAccessKey, source: "S3_ACCESS_KEY and S3_SECRET_KEY" },
  };
}

/** Whether S3 tests must run (`DFOS_REQUIRE_S3=1`): then a missing engine fails them. */
export const S3_REQUIRED = Deno.env.get("DFOS_REQUIRE_S3") === "1";

const ENGINE = s3Engine();

/**
 * Why S3 tests are ignored here, or null when they run. Pass as a test's
 * `ignore: S3_IGNORE !== null`.
 */
export const S3_IGNORE: string | null = ENGINE !== null || S3_REQUIRED
  ? null
  : "S3_ENDPOINT, S3_ACCESS_KEY and S3_SECRET_KEY are not set (deno task test starts an engine; " +
    'or eval "$(tools/s3/start-s3.sh)")';

let told = false;

/** Says once on stderr why S3 tests are ignored (call at a test file's top). */
export function tellS3Ignored(file: string): void {
  if (S3_IGNORE === null || told) return;
  told = true;
  console.error(`${file}: S3 tests skipped: ${S3_IGNORE}`);
}

/** A fresh bucket on the engine, for one test. */
export interface TestBucket {
  /** The engine. */
  engine: S3Engine;
  /** The bucket's name. */
  name: string;
  /** The bucket's signed requests (bucket operations, raw requests). */
  connection: S3Connection;
  /**
   * An ObjectStore on the bucket.
   *
   * @param prefix The key prefix ("" for the whole bucket).
   * @param options Anything else to pass (credentials, timeouts...).
   */
  store(prefix?: string, options?: Partial<S3StoreOptions>): S3ObjectStore;
}

/**
 * Runs `fn` with a fresh bucket, then removes the bucket: every multipart
 * upload aborted, every object deleted, the bucket deleted.
 *
 * @param fn The test's body.
 * @throws {Error} When `DFOS_REQUIRE_S3=1` and no engine is named.
 */
export async function withBucket(fn: (bucket: TestBucket) => Promise<void>): Promise<void> {
  if (ENGINE === null) {
    throw new Error(
      "Cannot run S3 test: DFOS_REQUIRE_S3=1 but S3_ENDPOINT, S3_ACCESS_KEY or S3_SECRET_KEY is not set",
    );
  }
  const engine = ENGINE;
  // Test modules run side by side in one process (`--parallel`), each with its own module state: a
  // per-module counter with the time and pid once gave two modules the same bucket, and the first to
  // finish deleted it under the other. Random bits cannot collide that way.
  const name = `dfos-test-${Date.now().toString(36)}-${crypto.randomUUID().slice(0, 13).replace("-", "")}`;
  const options = (prefix = "", extra: Partial<S3StoreOptions> = {}): S3StoreOptions => ({
    bucket: name,
    prefix,
    endpoint: engine.endpoint,
    region: engine.region,
    credentials: engine.credentials,
    ...extra,
  });
  const connection = new S3Connection(options(), engine.credentials);
  const created = await connection.request({ method: "PUT", operation: "CreateBucket" });
  await created.body?.cancel();
  let passed = false;
  try {
    await fn({
      engine,
      name,
      connection,
      store: (prefix = "", extra = {}) =>
        new S3ObjectStore(options(prefix, extra), extra.credentials ?? engine.credentials),
    });
    passed = true;
  } finally {
    // A failing body's error is the one to show, not a cleanup's that follows from it.
    await removeBucket(new S3ObjectStore(options(), engine.credentials), connection).catch((error) => {
      if (passed) throw error;
    });
  }
}

/** Empties and deletes a bucket. */
async function removeBucket(store: S3ObjectStore, connection: S3Connection): Promise<void> {
  for (const upload of await store.listMultipartUploads("")) await store.abortMultipart(upload.key, upload.uploadId);
  for (let page = await store.list("");; page = await store.list("", { startAfter: page.next! })) {
    await Promise.all(page.objects.map((object) => store.delete(object.key)));
    if (page.next === null) break;
  }
  const deleted = await connection.request({ method: "DELETE", operation: "DeleteBucket" });
  await deleted.body?.cancel();
}

/**
 * Registers a test that runs with a fresh bucket (see {@linkcode withBucket}),
 * ignored when no engine is named and `DFOS_REQUIRE_S3` is not 1.
 *
 * @param name The test's name.
 * @param fn Its body.
 */
export function s3Test(name: string, fn: (bucket: TestBucket) => Promise<void>): void {
  Deno.test({ name, ignore: S3_IGNORE !== null, fn: () => withBucket(fn) });
}

/** A real `dfos serve` on a bucket, from {@linkcode serveOnBucket}. */
export interface ServedOnBucket {
  /** The process (standard input closed). */
  child: Deno.ChildProcess;
  /** Its output, port and end. */
  watch: ServeWatch;
  /** `127.0.0.1:PORT`. */
  address: string;
  /** The CLI's environment to talk to it as alice. */
  env: Record<string, string>;
}

/**
 * Starts the real `dfos serve --storage s3://BUCKET/PREFIX` on 127.0.0.1, a
 * free port, in `dir` (whose `users.txt` it reads; its log `dir/NAME.log`),
 * with the engine's keys in the standard AWS variables.
 *
 * @param bucket The bucket and its engine.
 * @param dir The server's folder.
 * @param name The log's name.
 * @param options `prefix` (default `dfos`), `endpoint` (default the engine's: a proxy's, say), more `flags`.
 * @returns The process, its watch and how the CLI reaches it.
 */
export async function serveOnBucket(
  bucket: { name: string; engine: S3Engine },
  dir: string,
  name: string,
  options: { prefix?: string; endpoint?: string; flags?: string[] } = {},
): Promise<ServedOnBucket> {
  const { engine } = bucket;
  const child = spawnCli([
    ...["serve", "--host", "127.0.0.1", "--port", "0", "--users", `${dir}/users.txt`, "--log", `${dir}/${name}.log`],
    ...["--storage", `s3://${bucket.name}/${options.prefix ?? "dfos"}`, "--s3-path-style"],
    ...["--s3-endpoint", options.endpoint ?? engine.endpoint, "--s3-region", engine.region],
    ...options.flags ?? [],
  ], {
    cwd: dir,
    env: {
      AWS_ACCESS_KEY_ID: engine.credentials.accessKeyId,
      AWS_SECRET_ACCESS_KEY: engine.credentials.secretAccessKey,
    },
  });
  await child.stdin.close();
  const watch = await watchServe(child, 30_000);
  const address = `127.0.0.1:${watch.port}`;
  return { child, watch, address, env: { DFOS_SERVER: address, DFOS_USER: "alice", DFOS_PASSWORD: USERS.alice } };
}
