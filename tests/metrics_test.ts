/**
 * End-to-end tests of the metrics: a real `dfos serve --metrics` (its
 * server in its sandbox, the endpoint in the process around it) driven by
 * real clients, each scrape read by a checking parser (tests/_prometheus.ts);
 * an in-process server for the storage's figures; the flag's refusals, and
 * no listener without it.
 *
 * @module
 */

import { deepStrictEqual, ok, strictEqual } from "node:assert/strict";
import { DfosClient } from "../client/connection.ts";
import { serveMetrics } from "../server/metrics_endpoint.ts";
import { release } from "../shared/pooled_bytes.ts";
import { DfosError, Status } from "../shared/status.ts";
import {
  connect,
  delay,
  randomBytes,
  runCli,
  type ServeWatch,
  spawnServe,
  startServer,
  USERS,
  waitFor,
  watchServe,
} from "./_fixture.ts";
import { type Exposition, parseExposition, scrape } from "./_prometheus.ts";

/** A `dfos serve` subprocess with its metrics port, stopped and removed by `stop()`. */
interface MetricsServe {
  watch: ServeWatch;
  child: Deno.ChildProcess;
  /** The dfos port. */
  port: number;
  /** The metrics port. */
  metricsPort: number;
  /** SIGTERM, then waits for the end and removes the folder; returns the exit status. */
  stop(): Promise<Deno.CommandStatus>;
}

/** Starts `dfos serve --metrics 127.0.0.1:0` with `flags`, and reads both its ports from its log. */
async function serveWithMetrics(flags: string[] = []): Promise<MetricsServe> {
  const { child, dir } = await spawnServe(["--metrics", "127.0.0.1:0", ...flags], { prefix: "dfos_metrics_" });
  let stopped: Promise<Deno.CommandStatus> | null = null;
  const stop = (watch?: ServeWatch) => {
    stopped ??= (async () => {
      try {
        child.kill("SIGTERM");
      } catch {
        // It has ended already.
      }
      const status = watch === undefined ? await child.status : (await watch.ended).status;
      await Deno.remove(dir, { recursive: true });
      return status;
    })();
    return stopped;
  };
  let watch: ServeWatch;
  try {
    watch = await watchServe(child);
  } catch (error) {
    await Deno.remove(dir, { recursive: true });
    throw error;
  }
  let metricsPort = 0;
  try {
    await waitFor(() => {
      const found = /Metrics on http:\/\/127\.0\.0\.1:(\d+)\/metrics/.exec(watch.output());
      if (found !== null) metricsPort = Number(found[1]);
      return found !== null;
    }, "the metrics line");
  } catch (error) {
    await stop(watch);
    throw error;
  }
  return { watch, child, port: watch.port, metricsPort, stop: () => stop(watch) };
}

/** Waits until `read(scrape)` reaches `target` (what the server counts after it answered), and returns that scrape. */
async function scrapeUntil(port: number, read: (scraped: Exposition) => boolean, what: string): Promise<Exposition> {
  let last: Exposition | null = null;
  await waitFor(async () => read(last = await scrape(port)), what);
  return last!;
}

async function* once(bytes: Uint8Array): AsyncGenerator<Uint8Array> {
  yield bytes;
}

/** What moved between two scrapes, series by series. */
function delta(before: Exposition, after: Exposition) {
  return (name: string, labels: Record<string, string> = {}) => after.value(name, labels) - before.value(name, labels);
}

Deno.test("dfos serve --metrics counts exactly what its clients did", async () => {
  const serve = await serveWithMetrics(["--quota", "64K", "--max-connections-per-address", "2"]);
  const server = { address: `127.0.0.1:${serve.port}` };
  try {
    const before = await scrape(serve.metricsPort);
    strictEqual(before.value("dfos_build_info", { version: "0.1.0", deno: Deno.version.deno }), 1);
    strictEqual(before.value("dfos_connections_open"), 0);

    // One connection: three puts, a get, a get refused, a put over the quota, a body whose length is wrong.
    const client = await connect(server);
    const sizes = [1000, 2000, 3000];
    for (const [i, size] of sizes.entries()) await client.put(`f${i}.bin`, once(randomBytes(size)), { size });
    const download = await client.get("f0.bin");
    for await (const piece of download.body.chunks()) release(piece);
    const missing = await client.get("nothing.bin").then(() => null, (error) => error);
    ok(missing instanceof DfosError && missing.code === Status.NOT_FOUND, String(missing));
    const over = await client.put("big.bin", once(randomBytes(100_000)), { size: 100_000 }).catch((error) => error);
    ok(over instanceof DfosError && over.code === Status.TOO_LARGE, String(over));
    const short = await client.put("short.bin", once(randomBytes(5)), { size: 10 }).catch((error) => error);
    ok(short instanceof DfosError && short.code === Status.INTEGRITY, String(short));
    await client.close();

    // A wrong password.
    const wrong = await DfosClient.connect({ server: server.address, user: "alice", password: "pear" }).catch((e) => e);
    ok(wrong instanceof DfosError && wrong.code === Status.AUTH_FAILED, String(wrong));

    // Two connections from this address hold its two places: a third is refused.
    await scrapeUntil(serve.metricsPort, (s) => s.value("dfos_connections_open") === 0, "the connections to close");
    const holders = [await connect(server), await connect(server)];
    const refused = await connect(server).then(async (extra) => {
      await extra.close();
      return null;
    }, (error) => error);
    ok(refused instanceof DfosError && refused.code === Status.BUSY, String(refused));
    const open = await scrape(serve.metricsPort);
    strictEqual(open.value("dfos_connections_open"), 2);
    for (const holder of holders) await holder.close();

    const after = await scrapeUntil(
      serve.metricsPort,
      (s) => s.value("dfos_connections_open") === 0 && s.value("dfos_connections_accepted_total") >= 4,
      "the counts to settle",
    );
    const moved = delta(before, after);
    strictEqual(moved("dfos_requests_total", { op: "put", result: "ok" }), 3);
    strictEqual(moved("dfos_requests_total", { op: "put", result: "refused" }), 1); // the quota
    strictEqual(moved("dfos_requests_total", { op: "put", result: "protocol_error" }), 1); // the wrong length
    strictEqual(moved("dfos_requests_total", { op: "get", result: "ok" }), 1);
    strictEqual(moved("dfos_requests_total", { op: "get", result: "refused" }), 1);
    strictEqual(moved("dfos_request_duration_seconds_count", { op: "put" }), 5);
    strictEqual(moved("dfos_request_duration_seconds_count", { op: "get" }), 2);
    ok(moved("dfos_received_bytes_total") >= 6000, `${moved("dfos_received_bytes_total")} bytes in`);
    strictEqual(moved("dfos_sent_bytes_total"), 1000);
    strictEqual(moved("dfos_integrity_failures_total"), 1);
    strictEqual(moved("dfos_quota_refusals_total", { limit: "bytes" }), 1);
    strictEqual(moved("dfos_logins_total", { result: "ok" }), 3);
    strictEqual(moved("dfos_logins_total", { result: "failed" }), 1);
    strictEqual(moved("dfos_connections_refused_total", { reason: "per_address" }), 1);
    strictEqual(moved("dfos_connections_accepted_total"), 4); // the refused one is not taken in
    strictEqual(after.value("dfos_connections_open"), 0);
    // The storage's calls, timed by its wrapper: three commits, and the refused uploads dropped.
    strictEqual(
      moved("dfos_storage_operation_duration_seconds_count", { backend: "local", operation: "upload_commit" }),
      3,
    );
    ok(moved("dfos_storage_operation_duration_seconds_count", { backend: "local", operation: "open_read" }) >= 1);
    strictEqual(after.value("dfos_storage_multipart_uploads_open", { backend: "local" }), 0);
    strictEqual(after.value("dfos_storage_conflicts_total", { backend: "local" }), 0);
    ok(after.value("process_resident_memory_bytes") > 0);
    ok(Math.abs(after.value("process_start_time_seconds") - Date.now() / 1000) < 600);
    // No series names a user: labels take fixed values only.
    for (const sample of after.samples) {
      for (const value of Object.values(sample.labels)) ok(!(value in USERS), `${sample.name} names ${value}`);
    }
    strictEqual(after.samples.some((sample) => sample.labels.backend === "s3"), false);
  } finally {
    strictEqual((await serve.stop()).code, 0);
  }
});

Deno.test("dfos serve --metrics counts failed logins, the answers held back and the lockout", async () => {
  const throttle = ["--auth-free-failures", "1", "--auth-max-delay", "0.05", "--auth-lockout-failures", "2"];
  const serve = await serveWithMetrics(throttle);
  const server = `127.0.0.1:${serve.port}`;
  try {
    const before = await scrape(serve.metricsPort);
    for (const password of ["pear", "plum", USERS.alice]) {
      const refused = await DfosClient.connect({ server, user: "alice", password }).catch((error) => error);
      ok(refused instanceof DfosError && refused.code === Status.AUTH_FAILED, String(refused));
    }
    const after = await scrapeUntil(
      serve.metricsPort,
      (s) => s.value("dfos_logins_total", { result: "locked_out" }) >= 1,
      "the locked-out login to be counted",
    );
    const moved = delta(before, after);
    strictEqual(moved("dfos_logins_total", { result: "failed" }), 2);
    strictEqual(moved("dfos_logins_total", { result: "locked_out" }), 1);
    strictEqual(moved("dfos_logins_total", { result: "ok" }), 0);
    strictEqual(moved("dfos_login_answers_held_total"), 1); // the second failure's, past the one free
    strictEqual(moved("dfos_login_held_seconds_total"), 0.05);
    strictEqual(moved("dfos_login_lockouts_total"), 1);
  } finally {
    strictEqual((await serve.stop()).code, 0);
  }
});

Deno.test("dfos serve --metrics: the endpoint answers /metrics only, GET and HEAD only, and closes at shutdown", async () => {
  const serve = await serveWithMetrics();
  let stoppedPort = 0;
  try {
    const base = `http://127.0.0.1:${serve.metricsPort}`;
    const notFound = await fetch(`${base}/`);
    strictEqual(notFound.status, 404);
    await notFound.body?.cancel();
    const post = await fetch(`${base}/metrics`, { method: "POST", body: "x" });
    strictEqual(post.status, 405);
    strictEqual(post.headers.get("allow"), "GET, HEAD");
    await post.body?.cancel();
    const head = await fetch(`${base}/metrics`, { method: "HEAD" });
    strictEqual(head.status, 200);
    strictEqual(await head.text(), "");
    // Prometheus asks for gzip: the answer still parses.
    const zipped = await fetch(`${base}/metrics`, { headers: { "accept-encoding": "gzip" } });
    parseExposition(await zipped.text());
    stoppedPort = serve.metricsPort;
  } finally {
    strictEqual((await serve.stop()).code, 0);
  }
  const refused = await Deno.connect({ hostname: "127.0.0.1", port: stoppedPort }).then((conn) => {
    conn.close();
    return false;
  }, () => true);
  ok(refused, "the metrics port still accepts after the server exited");
});

Deno.test("dfos serve listens for metrics only with --metrics", async () => {
  for (const flags of [[], ["--metrics", "127.0.0.1:0"]]) {
    const { child, dir } = await spawnServe(flags, { prefix: "dfos_metrics_off_" });
    const watch = await watchServe(child);
    try {
      if (flags.length > 0) await waitFor(() => watch.output().includes("Metrics on"), "the metrics line");
      else await delay(200); // what would have been logged with the server's line has had its chance
      strictEqual(watch.output().includes("Metrics on"), flags.length > 0);
      strictEqual(listeningSockets(child.pid), flags.length > 0 ? 2 : 1, `listeners with ${flags.join(" ")}`);
    } finally {
      child.kill("SIGTERM");
      strictEqual((await watch.ended).status.code, 0);
      await Deno.remove(dir, { recursive: true });
    }
  }
});

Deno.test("dfos serve refuses a bad --metrics value with a usage error", async () => {
  for (const bad of ["", "host", "127.0.0.1", "127.0.0.1:", "127.0.0.1:65536", "[::1]", "[127.0.0.1]:9", "a b:9"]) {
    const { code, stderr } = await runCli(["serve", "--metrics", bad, "--root", "/nonexistent/dfos"]);
    strictEqual(code, 2, `--metrics "${bad}": ${stderr}`);
    ok(stderr.includes(`--metrics takes [HOST:]PORT`), stderr);
  }
});

Deno.test("a server in-process counts its storage's calls, and the endpoint serves its metrics", async () => {
  await using fx = await startServer();
  const endpoint = serveMetrics({ hostname: "127.0.0.1", port: 0, render: () => fx.server.metrics.render() });
  try {
    const before = await scrape(endpoint.addr.port);
    const client = await connect(fx);
    await client.put("a.txt", once(new TextEncoder().encode("hello")), { size: 5 });
    deepStrictEqual((await client.stat("a.txt"))?.size, 5);
    await client.remove("a.txt");
    await client.close();
    const after = await scrapeUntil(
      endpoint.addr.port,
      (s) => s.value("dfos_requests_total", { op: "rm", result: "ok" }) === 1,
      "the rm to be counted",
    );
    const moved = delta(before, after);
    const storage = (operation: string) =>
      moved("dfos_storage_operation_duration_seconds_count", { backend: "local", operation });
    strictEqual(storage("begin_upload"), 1);
    strictEqual(storage("upload_commit"), 1);
    ok(storage("upload_write") >= 1);
    strictEqual(storage("stat"), 1);
    strictEqual(storage("remove"), 1);
    strictEqual(storage("prepare_user"), 1);
    strictEqual(moved("dfos_requests_total", { op: "stat", result: "ok" }), 1);
    strictEqual(fx.server.metrics.value("dfos_requests_total", { op: "put", result: "ok" }), 1);
  } finally {
    await endpoint.shutdown();
  }
});

/** How many TCP sockets the process `pid` listens on (its socket inodes in LISTEN state in /proc/net/tcp*). */
function listeningSockets(pid: number): number {
  const inodes = new Set<string>();
  for (const entry of Deno.readDirSync(`/proc/${pid}/fd`)) {
    try {
      const target = Deno.readLinkSync(`/proc/${pid}/fd/${entry.name}`);
      const inode = /^socket:\[(\d+)\]$/.exec(target)?.[1];
      if (inode !== undefined) inodes.add(inode);
    } catch {
      // closed meanwhile
    }
  }
  let listening = 0;
  for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    for (const line of Deno.readTextFileSync(table).split("\n").slice(1)) {
      const fields = line.trim().split(/\s+/);
      if (fields[3] === "0A" && inodes.has(fields[9])) listening++;
    }
  }
  return listening;
}
