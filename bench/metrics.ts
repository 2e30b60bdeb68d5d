/**
 * Section "metrics": what a Prometheus scrape costs with 1,000 connections
 * open (issue 13: "a scrape stays under 10 ms"). A fresh `dfos serve
 * --metrics` (its caps raised above the count); 1,000 in-process clients
 * connect and log in, in batches of 50, and stay idle; the scrape's
 * `dfos_connections_open` must say so. Then `GET /metrics` is timed from
 * this process, request to last byte over a kept-alive connection, 200 times
 * one after another (after 10 not timed); then 100 times more while 8 of
 * the held connections put 64 KiB files in a loop (the server's worker busy:
 * the scrape is answered by the process around it, from shared memory).
 * Target: the 99th percentile of the idle scrapes under 10 ms.
 *
 * @module
 */

import type { DfosClient } from "../client/connection.ts";
import { freePort } from "../tests/_common.ts";
import { oneChunk } from "./bodies.ts";
import { DfosServer } from "./dfos_server.ts";
import { waitForAccept } from "./processes.ts";
import type { Row } from "./report.ts";
import { messageOf, type SectionContext, type SectionResult, within } from "./section.ts";
import { round } from "./stats.ts";
import { judge, TARGETS } from "./targets.ts";

/** How long a batch of logins may take. */
const BATCH_TIMEOUT_MS = 30_000;
/** Scrapes not timed, first. */
const WARM_UP = 10;
/** Scrapes timed with the connections idle. */
const IDLE_SCRAPES = 200;
/** Scrapes timed while some connections put files. */
const BUSY_SCRAPES = 100;
/** Connections that put files during the busy scrapes. */
const BUSY_CLIENTS = 8;

/** Percentiles of a series of scrape times, in ms. */
interface ScrapeTimes {
  median: number;
  p99: number;
  max: number;
  count: number;
}

/**
 * Runs the section.
 *
 * @param context The section's folder, processes and settings.
 * @returns The rows and figures.
 */
export async function metricsSection(context: SectionContext): Promise<SectionResult> {
  const { dir, processes, settings, say } = context;
  const { connections, batch } = settings.idle;
  const cap = `${Math.max(1200, connections + 200)}`;
  const metricsPort = freePort();
  const server = await DfosServer.start({
    dir,
    processes,
    extraArgs: [
      ...["--max-connections", "--max-connections-per-address", "--max-connections-per-user"].flatMap((f) => [f, cap]),
      "--metrics",
      `127.0.0.1:${metricsPort}`,
    ],
  });
  await waitForAccept(metricsPort, 10_000);
  const url = `http://127.0.0.1:${metricsPort}/metrics`;

  const clients: DfosClient[] = [];
  context.defer(() => closeAll(clients));
  const failures: string[] = [];
  say(`metrics: opening ${connections} authenticated connections, ${batch} at a time`);
  for (let opened = 0; opened < connections && failures.length < 20; opened += batch) {
    context.signal.throwIfAborted();
    const logins = Array.from({ length: Math.min(batch, connections - opened) }, () => server.connect());
    const results = await within(Promise.allSettled(logins), BATCH_TIMEOUT_MS, `a batch of ${logins.length} logins`);
    for (const result of results) {
      if (result.status === "fulfilled") clients.push(result.value);
      else failures.push(messageOf(result.reason));
    }
  }
  const first = await (await fetch(url)).text();
  const open = Number(/^dfos_connections_open (\S+)$/m.exec(first)?.[1] ?? NaN);
  if (open !== clients.length) failures.push(`the scrape says ${open} connections open, ${clients.length} are`);

  for (let i = 0; i < WARM_UP; i++) await timedScrape(url);
  const idle: number[] = [];
  let bytes = 0;
  for (let i = 0; i < IDLE_SCRAPES; i++) {
    const { ms, size } = await timedScrape(url);
    idle.push(ms);
    bytes = size;
  }
  const idleTimes = percentiles(idle);
  say(`metrics: ${clients.length} open; idle scrape ${describe(idleTimes)}, ${(bytes / 1024).toFixed(0)} KiB`);

  const busy: number[] = [];
  let stop = false;
  const payload = crypto.getRandomValues(new Uint8Array(64 * 1024));
  const load = clients.slice(0, BUSY_CLIENTS).map(async (client, index) => {
    let puts = 0;
    while (!stop) {
      await client.put(`load-${index}.bin`, oneChunk(payload), { size: payload.length });
      puts++;
    }
    return puts;
  });
  for (let i = 0; i < BUSY_SCRAPES; i++) busy.push((await timedScrape(url)).ms);
  stop = true;
  const puts = (await Promise.all(load)).reduce((sum, each) => sum + each, 0);
  const busyTimes = percentiles(busy);
  say(`metrics: scrape while ${BUSY_CLIENTS} connections put: ${describe(busyTimes)} (${puts} puts meanwhile)`);
  const held = clients.length;
  await closeAll(clients);

  const allHeld = held === connections && failures.length === 0;
  const rows: Row[] = [
    {
      section: "metrics",
      what: `GET /metrics, ${connections.toLocaleString("en")} connections open (p99)`,
      figure: `${idleTimes.p99.toFixed(2)} ms (median ${idleTimes.median.toFixed(2)}, max ${idleTimes.max.toFixed(2)})`,
      judgement: judge(TARGETS.metricsScrape, allHeld ? idleTimes.p99 : null),
      note: `${IDLE_SCRAPES} scrapes of ${(bytes / 1024).toFixed(0)} KiB in turn, request to last byte` +
        (allHeld ? "" : `; ${held} of ${connections} held; ${failures[0] ?? ""}`),
    },
    {
      section: "metrics",
      what: `GET /metrics while ${BUSY_CLIENTS} connections put 64 KiB files`,
      figure: `${busyTimes.p99.toFixed(2)} ms p99 (median ${busyTimes.median.toFixed(2)}, max ${
        busyTimes.max.toFixed(2)
      })`,
      judgement: null,
      note: `${puts} puts during ${BUSY_SCRAPES} scrapes`,
    },
  ];
  return {
    rows,
    data: {
      connections,
      held,
      failures,
      scrapeBytes: bytes,
      idleMs: roundAll(idleTimes),
      busyMs: roundAll(busyTimes),
      putsDuringBusyScrapes: puts,
    },
    failures: allHeld ? 0 : 1,
  };
}

/** One scrape, request to last byte. */
async function timedScrape(url: string): Promise<{ ms: number; size: number }> {
  const begun = performance.now();
  const response = await fetch(url);
  const body = await response.arrayBuffer();
  const ms = performance.now() - begun;
  if (response.status !== 200) throw new Error(`GET /metrics answered ${response.status}`);
  return { ms, size: body.byteLength };
}

function percentiles(values: number[]): ScrapeTimes {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (share: number) => sorted[Math.min(sorted.length - 1, Math.ceil(share * sorted.length) - 1)];
  return { median: at(0.5), p99: at(0.99), max: sorted[sorted.length - 1], count: sorted.length };
}

function describe(times: ScrapeTimes): string {
  return `median ${times.median.toFixed(2)} ms, p99 ${times.p99.toFixed(2)} ms, max ${times.max.toFixed(2)} ms`;
}

function roundAll(times: ScrapeTimes): ScrapeTimes {
  return { median: round(times.median, 3), p99: round(times.p99, 3), max: round(times.max, 3), count: times.count };
}

async function closeAll(clients: DfosClient[]): Promise<void> {
  const all = clients.splice(0);
  for (let i = 0; i < all.length; i += 100) {
    await Promise.all(all.slice(i, i + 100).map((client) => client.close().catch(() => {})));
  }
}
