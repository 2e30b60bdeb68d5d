/**
 * The log under attack, end to end: a `dfos serve` subprocess flooded
 * without an account by logins whose SCRAM message, or a field name of
 * their JSON, is 60 KB of text carrying a forged log line and terminal
 * escapes. The log stays small, the server's memory bounded, every line of
 * the log file and of the console is one record with no raw control
 * character; with a console nobody reads, SIGTERM still ends the server at
 * once, and the log says what the console lost.
 *
 * @module
 */

import { ok, strictEqual } from "node:assert/strict";
import { DfosClient } from "../client/connection.ts";
import { delay, spawnServe, USERS, waitFor } from "./_fixture.ts";
import { frameBytes, HELLO, rawFrame } from "./_peer.ts";
import { MESSAGE_CODES } from "../shared/messages.ts";

const MiB = 1024 * 1024;

/** A line as another record would start it: a timestamp, a level, a category. */
const FORGED = "2026-01-01 00:00:00.000 +00:00 [INF] dfos·server: Login of alice from 203.0.113.9";

/** Text that would forge a record and take over a terminal if it reached either raw. */
const EVIL = `\x1b]0;pwned\x07\x1b[2J\u202e\n${FORGED}\r\n`;

/** How every line of the log starts. */
const RECORD = /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} [+-]\d\d:\d\d \[(DBG|INF|WRN|ERR|FTL|TRC)\] dfos/;

/** Anything printableName escapes, backslash aside: none may be in the log. */
// deno-lint-ignore no-control-regex
const RAW = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;

/** A SCRAM client-first message whose gs2 header is the evil text and 44 KB of garbage (a 59 KB frame in base64). */
function garbageScram(): Uint8Array {
  return new TextEncoder().encode(`${EVIL}${"x".repeat(44_000)},,n=alice,r=abc`);
}

/** An AUTH frame whose JSON has one more field, named by 60 KB of text. */
function unknownFieldFrame(): Uint8Array {
  const json = JSON.stringify({ mechanism: "SCRAM-SHA-256", data: "", [`${EVIL}${"y".repeat(60_000)}`]: 1 });
  return rawFrame(MESSAGE_CODES.auth, new TextEncoder().encode(json));
}

/** One attacking connection: HELLO, then the evil AUTH; reads whatever comes back until the server closes. */
async function attackOnce(port: number, frame: Uint8Array): Promise<void> {
  let conn: Deno.TcpConn;
  try {
    conn = await Deno.connect({ hostname: "127.0.0.1", port });
  } catch {
    return; // refused (busy) or the server is gone: the flood goes on
  }
  try {
    const bytes = new Uint8Array(HELLO_BYTES.length + frame.length);
    bytes.set(HELLO_BYTES);
    bytes.set(frame, HELLO_BYTES.length);
    for (let at = 0; at < bytes.length;) at += await conn.write(bytes.subarray(at));
    const buffer = new Uint8Array(64 * 1024);
    while (await conn.read(buffer) !== null);
  } catch {
    // Reset by the server: as good as a close.
  } finally {
    try {
      conn.close();
    } catch {
      // Closed already.
    }
  }
}

const HELLO_BYTES = frameBytes(HELLO);

/** Floods the server from `connections` parallel loops for `ms`; returns how many attacks were sent. */
async function flood(port: number, connections: number, ms: number): Promise<number> {
  const scram = frameBytes({ type: "auth", mechanism: "SCRAM-SHA-256", data: garbageScram() });
  const field = unknownFieldFrame();
  const until = performance.now() + ms;
  let sent = 0;
  await Promise.all(Array.from({ length: connections }, async (_, index) => {
    while (performance.now() < until) {
      await attackOnce(port, (sent + index) % 2 === 0 ? scram : field);
      sent++;
    }
  }));
  return sent;
}

/** The resident memory of a process of ours, in bytes (Linux). */
async function rssOf(pid: number): Promise<number> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  const kib = /^VmRSS:\s+(\d+) kB$/m.exec(status);
  return kib === null ? 0 : Number(kib[1]) * 1024;
}

/** Checks a line of the log (file or console): one record, nothing raw, nothing forged. */
function checkLine(line: string, where: string): void {
  if (line === "") return;
  ok(RECORD.test(line), `${where}: a line that is not a record: ${JSON.stringify(line.slice(0, 200))}`);
  ok(!RAW.test(line), `${where}: a raw control or bidi character in ${JSON.stringify(line.slice(0, 200))}`);
  ok(!line.includes("\r"), `${where}: a carriage return in ${JSON.stringify(line.slice(0, 200))}`);
}

/** Reads a stream of log lines as it comes, keeping only counts and the lines' checks (the old code wrote GBs). */
class LineWatch {
  bytes = 0;
  lines = 0;
  /** The first problem seen, if any. */
  problem: string | null = null;
  /** The start of the output, to find the port and a few lines in. */
  head = "";
  #partial = "";

  constructor(readonly where: string) {}

  take(text: string): void {
    this.bytes += text.length;
    if (this.head.length < 16_384) this.head += text.slice(0, 16_384 - this.head.length);
    const parts = (this.#partial + text).split("\n");
    this.#partial = parts.pop()!.slice(0, 100_000);
    for (const line of parts) this.#check(line);
  }

  finish(): void {
    this.#check(this.#partial);
    this.#partial = "";
  }

  #check(line: string): void {
    this.lines++;
    if (this.problem !== null) return;
    try {
      checkLine(line, this.where);
    } catch (error) {
      this.problem = (error as Error).message;
    }
  }
}

interface Served extends AsyncDisposable {
  child: Deno.ChildProcess;
  port: number;
  log: string;
  ended: Promise<Deno.CommandStatus>;
}

/**
 * Starts `dfos serve` on a free port with `--log`; without a `screen` to
 * watch its standard output, that is left unread (a pipe that fills up, as a stalled SSH
 * session), and the port is found in the log file instead.
 */
async function startServe(args: string[], screen: LineWatch | null): Promise<Served> {
  const { child, dir, log } = await spawnServe(args, { prefix: "dfos_logflood_" });
  // Standard output is read until the server says its port; then on into `screen`, or never again.
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let head = "";
  let port = 0;
  const listening = (async () => {
    while (port === 0) {
      const { value, done } = await reader.read();
      if (done) return;
      head += value;
      screen?.take(value);
      const found = /Serving on 127\.0\.0\.1:(\d+)/.exec(head);
      if (found) port = Number(found[1]);
    }
  })();
  const reading = screen === null ? listening : listening.then(async () => {
    while (true) {
      const { value, done } = await reader.read();
      if (done) break;
      screen.take(value);
    }
    screen.finish();
  });
  const stderr = new Response(child.stderr).text();
  const ended = Promise.all([child.status, reading, stderr]).then(([status]) => status);
  const stop = async () => {
    try {
      child.kill("SIGKILL");
    } catch {
      // It has ended already.
    }
    // An unread standard output must be let go for the process's streams to end.
    if (screen === null) await reader.cancel().catch(() => {});
    await ended;
    await Deno.remove(dir, { recursive: true });
  };
  try {
    await waitFor(() => port !== 0, "dfos serve to listen", 15_000);
  } catch (error) {
    await stop();
    throw new Error(`${(error as Error).message}\n${head}${await stderr}`);
  }
  return { child, port, log, ended, [Symbol.asyncDispose]: stop };
}

/** Waits for the process to end, at most `ms`; false if it has not. */
async function endsWithin(served: Served, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<false>((resolve) => timer = setTimeout(() => resolve(false), ms));
  const ended = await Promise.race([served.child.status.then(() => true), late]);
  clearTimeout(timer);
  return ended;
}

/** Checks every line of the log file; returns its text. */
async function checkLogFile(path: string): Promise<string> {
  const text = await Deno.readTextFile(path);
  for (const line of text.split("\n")) checkLine(line, "log file");
  return text;
}

/**
 * Floods the server for 4 s from 4 connections, sampling its RSS every 100 ms
 * until `settleMs` after the flood.
 */
async function floodWatchingMemory(served: Served, settleMs: number) {
  const rssBefore = await rssOf(served.child.pid);
  let rssPeak = rssBefore;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      rssPeak = Math.max(rssPeak, await rssOf(served.child.pid).catch(() => 0));
      await delay(100);
    }
  })();
  const attacks = await flood(served.port, 4, 4000);
  await delay(settleMs);
  sampling = false;
  await sampler;
  return { rssBefore, rssPeak, attacks };
}

Deno.test("a flood of 60 KB hostile login text without an account leaves a small, clean log and bounded memory", async () => {
  const screen = new LineWatch("console");
  await using served = await startServe([], screen);
  const { rssBefore, rssPeak, attacks } = await floodWatchingMemory(served, 300);
  const logBytes = (await Deno.stat(served.log)).size;
  console.log(
    `flood: ${attacks} attacks of 60 KB in 4 s; log ${logBytes} bytes (console ${screen.bytes}); ` +
      `RSS ${(rssBefore / MiB).toFixed(1)} -> peak ${(rssPeak / MiB).toFixed(1)} MiB`,
  );

  served.child.kill("SIGTERM");
  ok(await endsWithin(served, 20_000), "dfos serve did not end within 20 s of SIGTERM");
  strictEqual((await served.ended).code, 0);
  const log = await checkLogFile(served.log);
  strictEqual(screen.problem, null, screen.problem ?? "");
  ok(attacks >= 50, `only ${attacks} attacks were sent`);
  // The attack reached the log, escaped and cut short, and the rest was summarised.
  ok(log.includes("\\x0a2026-01-01 00:00:00.000 +00:00 [INF]"), "the forged line, escaped");
  ok(log.includes('unknown field "\\x1b]0;pwned\\x07\\x1b[2J\\u202e\\x0a'), "the field name, escaped");
  ok(
    log.includes('client-first message starts with "\\x1b]0;pwned\\x07\\x1b[2J\\u202e\\x0a'),
    "the SCRAM text, escaped",
  );
  ok(/more records from 127\.0\.0\.1 suppressed in the last \d+ s/.test(log), "a summary of what was suppressed");
  ok(/Shut down\. Totals: .*suppressed by the per-address limit/.test(log), "the totals say what was suppressed");
  ok(logBytes < 256 * 1024, `the log grew by ${logBytes} bytes`);
  ok(screen.bytes < 256 * 1024, `the console got ${screen.bytes} bytes`);
  ok(rssPeak < rssBefore + 200 * MiB, `RSS went from ${rssBefore / MiB} to ${rssPeak / MiB} MiB`);
});

Deno.test("with a console nobody reads, a flood costs console lines, not memory, and SIGTERM ends dfos serve at once", async () => {
  // No per-address limit: every record of the flood reaches the console's queue.
  await using served = await startServe(["--log-limit", "0"], null);
  const { rssBefore, rssPeak, attacks } = await floodWatchingMemory(served, 0);
  console.log(
    `unread console: ${attacks} attacks in 4 s; RSS ${(rssBefore / MiB).toFixed(1)} -> peak ${
      (rssPeak / MiB).toFixed(1)
    } MiB`,
  );

  const started = performance.now();
  served.child.kill("SIGTERM");
  const ended = await endsWithin(served, 15_000);
  const took = performance.now() - started;
  ok(ended, "dfos serve did not end within 15 s of SIGTERM while its console was not read");
  strictEqual((await served.child.status).code, 0);
  const log = await checkLogFile(served.log);
  console.log(`unread console: log ${log.length} bytes; exit ${took.toFixed(0)} ms after SIGTERM`);
  ok(/Shut down\. Totals: .*log records dropped \d+ \(.*console slow \d+/.test(log), "the totals say what was lost");
  ok(rssPeak < rssBefore + 200 * MiB, `RSS went from ${rssBefore / MiB} to ${rssPeak / MiB} MiB`);
});

Deno.test("a logged-in user's own work is all in the performance log, while its refused requests are summarised", async () => {
  await using served = await startServe([], new LineWatch("console"));
  const client = await DfosClient.connect({ server: `127.0.0.1:${served.port}`, user: "alice", password: USERS.alice });
  try {
    const body = new Uint8Array(100);
    for (let i = 0; i < 60; i++) {
      await client.put(
        `f${i}`,
        (async function* () {
          yield body;
        })(),
        { size: body.length },
      );
    }
    for (let i = 0; i < 60; i++) await client.remove(`missing-${i}`).catch(() => {});
  } finally {
    await client.close();
  }
  served.child.kill("SIGTERM");
  ok(await endsWithin(served, 20_000), "dfos serve did not end within 20 s of SIGTERM");
  const log = await checkLogFile(served.log);
  const puts = log.split("\n").filter((line) => / put user=alice name=f\d+ bytes=100 /.test(line));
  strictEqual(puts.length, 60, "every upload has its performance line");
  const refused = log.split("\n").filter((line) => /rm of missing-\d+ for alice refused/.test(line));
  ok(refused.length > 0 && refused.length <= 20, `${refused.length} refusals logged one by one`);
  ok(/more records from 127\.0\.0\.1 suppressed in the last \d+ s/.test(log), "the rest summarised");
});
