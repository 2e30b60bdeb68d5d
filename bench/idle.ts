/**
 * Section "idle": connections held. A fresh server (with
 * `--max-connections 1200` where `dfos serve` has that flag); 1,000
 * in-process clients connect and log in, in batches of 50 (under the server's
 * listen backlog), then stay idle. The server's VmRSS is read before (after
 * one warm-up connection and a 1 s pause) and after (1 s after the last
 * login); the difference over the connections held is the RSS per idle
 * connection. Then a normal `dfos put` of a 1 MiB file through the CLI, while
 * they are all held: it must succeed, and the stored file's SHA-256 must
 * match. The first and last idle connection must still answer a list
 * afterwards. Targets: at most 100 KiB per connection; the put succeeds.
 *
 * The benchmark process holds one socket per connection (the server one
 * more each): both open-file limits are read from /proc and reported, and a
 * limit too low for the count is said in the table.
 *
 * @module
 */

import { join } from "node:path";
import type { DfosClient } from "../client/connection.ts";
import { oneChunk } from "./bodies.ts";
import { DfosServer, serveHasFlag } from "./dfos_server.ts";
import { delay, sha256File } from "../tests/_common.ts";
import { writeRandomFile } from "./files.ts";
import { type OpenFilesLimit, openFilesLimit } from "./machine.ts";
import type { Row } from "./report.ts";
import { messageOf, type SectionContext, type SectionResult, within } from "./section.ts";
import { round } from "./stats.ts";
import { judge, TARGETS } from "./targets.ts";

const MIB = 1024 * 1024;
/** File descriptors a process needs besides the connections. */
const SPARE_FILES = 64;
/** How long a batch of logins may take. */
const BATCH_TIMEOUT_MS = 30_000;
/** How long the CLI put may take. */
const PUT_TIMEOUT_MS = 60_000;
/** The pause before each RSS reading, for the server to settle. */
const SETTLE_MS = 1_000;
/** Stop opening connections once this many have failed. */
const MAX_FAILURES = 20;

/**
 * Runs the section.
 *
 * @param context The section's folder, processes and settings.
 * @returns The rows and figures.
 */
export async function idleSection(context: SectionContext): Promise<SectionResult> {
  const { dir, processes, settings, say } = context;
  const { connections, batch } = settings.idle;
  const ownLimit = await openFilesLimit("self");
  const capFlag = await serveHasFlag("--max-connections");
  // All of the idle connections come from one address, as one user: their caps are raised to the total's.
  const perFlags = await serveHasFlag("--max-connections-per-user")
    ? ["--max-connections-per-address", "--max-connections-per-user"]
    : [];
  const cap = Math.max(1200, connections + 200);
  const server = await DfosServer.start({
    dir,
    processes,
    extraArgs: capFlag ? ["--max-connections", `${cap}`, ...perFlags.flatMap((flag) => [flag, `${cap}`])] : [],
  });
  const serverLimit = await openFilesLimit(server.pid);
  const limitNote = limitWarning(connections, ownLimit, serverLimit);
  if (limitNote) say(`idle: ${limitNote}`);

  const clients: DfosClient[] = [];
  context.defer(() => closeAll(clients));
  const failures: string[] = [];

  const warm = await server.connect();
  const data = crypto.getRandomValues(new Uint8Array(1024));
  await warm.put("warm-up.bin", oneChunk(data), { size: data.length });
  await warm.close();
  await delay(SETTLE_MS);
  const before = await server.memory();

  say(`idle: opening ${connections} authenticated connections, ${batch} at a time`);
  const begun = performance.now();
  for (let opened = 0; opened < connections && failures.length < MAX_FAILURES; opened += batch) {
    context.signal.throwIfAborted();
    const logins = Array.from({ length: Math.min(batch, connections - opened) }, () => server.connect());
    const results = await within(Promise.allSettled(logins), BATCH_TIMEOUT_MS, `a batch of ${logins.length} logins`);
    for (const result of results) {
      if (result.status === "fulfilled") clients.push(result.value);
      else failures.push(messageOf(result.reason));
    }
  }
  const openSeconds = (performance.now() - begun) / 1000;
  await delay(SETTLE_MS);
  const after = await server.memory();
  const perConnectionKiB = clients.length > 0 ? (after.rss - before.rss) / clients.length / 1024 : null;
  say(
    `idle: ${clients.length} held (${failures.length} failed) in ${openSeconds.toFixed(1)} s; RSS ${
      (before.rss / MIB).toFixed(1)
    } -> ${(after.rss / MIB).toFixed(1)} MiB`,
  );

  const put = await putWhileHeld(server, context);
  say(`idle: CLI put while held: ${put.error ?? `ok in ${put.seconds.toFixed(2)} s`}`);
  let answering = 0;
  for (const client of [clients[0], clients.at(-1)]) {
    if (client === undefined) continue;
    try {
      for await (const _ of client.list()) { /* read every page */ }
      answering++;
    } catch (error) {
      failures.push(`an idle connection did not answer a list: ${messageOf(error)}`);
    }
  }
  const afterPut = await server.memory();
  const held = clients.length;
  await closeAll(clients);

  const allHeld = held === connections;
  const rows: Row[] = [
    {
      section: "idle",
      what: `server RSS per idle connection, ${connections} held`,
      figure: perConnectionKiB === null ? "failed" : `${perConnectionKiB.toFixed(1)} KiB`,
      judgement: judge(TARGETS.idleRss, allHeld ? perConnectionKiB : null),
      note: [
        `${held}/${connections} logged in, in ${openSeconds.toFixed(1)} s`,
        `VmRSS ${(before.rss / MIB).toFixed(1)} -> ${(after.rss / MIB).toFixed(1)} MiB`,
        capFlag ? `server run with --max-connections ${cap}` : "serve has no --max-connections flag",
        ...(limitNote ? [limitNote] : []),
        ...distinct(failures),
      ].join("; "),
    },
    {
      section: "idle",
      what: `dfos put (CLI) of 1 MiB while ${held} are held`,
      figure: put.error === null ? `ok, ${put.seconds.toFixed(2)} s` : "failed",
      judgement: judge(TARGETS.idlePut, put.error === null && allHeld ? 1 : 0),
      note: [
        put.error ?? "stored file sha256-verified",
        `${answering} of 2 idle connections answered a list afterwards`,
      ].join("; "),
    },
  ];
  return {
    rows,
    data: {
      connections,
      batch,
      held,
      openSeconds: round(openSeconds, 2),
      failures: distinct(failures),
      rssBeforeBytes: before.rss,
      rssAfterBytes: after.rss,
      rssAfterPutBytes: afterPut.rss,
      peakBytes: afterPut.peak,
      perConnectionKiB: perConnectionKiB === null ? null : round(perConnectionKiB),
      maxConnectionsFlag: capFlag ? cap : null,
      openFiles: { bench: ownLimit, server: serverLimit },
      put: { ...put, seconds: round(put.seconds, 3) },
      idleAnsweringAfterPut: answering,
    },
    failures: (allHeld ? 0 : 1) + (put.error === null ? 0 : 1),
  };
}

/** A 1 MiB `dfos put` through the CLI, checked on the server. */
async function putWhileHeld(
  server: DfosServer,
  context: SectionContext,
): Promise<{ seconds: number; error: string | null }> {
  const local = join(context.dir, "while-held.bin");
  await writeRandomFile(local, 1);
  const sha256 = await sha256File(local);
  const call = server.cli(["put", local, "while-held.bin"]);
  const begun = performance.now();
  const result = await context.processes.runClient(call.argv, {
    env: call.env,
    cwd: call.cwd,
    timeoutMs: PUT_TIMEOUT_MS,
  });
  const seconds = (performance.now() - begun) / 1000;
  if (result.timedOut) return { seconds, error: `the put was killed after ${PUT_TIMEOUT_MS / 1000} s` };
  if (result.code !== 0) {
    const last = result.stderr.trim().split("\n").find((line) => line.startsWith("dfos")) ?? result.stderr.trim();
    return { seconds, error: `the put exited with status ${result.code}: ${last}` };
  }
  const stored = await sha256File(server.path("while-held.bin")).catch(() => "no file");
  return { seconds, error: stored === sha256 ? null : "the stored file is missing or has another sha256" };
}

/** What to say when a process's open-file limit is too low for the connections, or null. */
function limitWarning(
  connections: number,
  own: OpenFilesLimit | null,
  server: OpenFilesLimit | null,
): string | null {
  const needed = connections + SPARE_FILES;
  const low = [["this process", own], ["the server", server]] as const;
  const problems = low.filter(([, limit]) => limit?.soft != null && limit.soft < needed)
    .map(([who, limit]) => `${who}'s open-file limit is ${limit?.soft}, below the ${needed} needed (ulimit -n)`);
  return problems.length > 0 ? problems.join("; ") : null;
}

async function closeAll(clients: DfosClient[]): Promise<void> {
  const all = clients.splice(0);
  for (let i = 0; i < all.length; i += 100) {
    await Promise.all(all.slice(i, i + 100).map((client) => client.close().catch(() => {})));
  }
}

function distinct(messages: string[]): string[] {
  const counts = new Map<string, number>();
  for (const message of messages) counts.set(message, (counts.get(message) ?? 0) + 1);
  return [...counts].map(([message, count]) => count > 1 ? `${count}x ${message}` : message);
}
