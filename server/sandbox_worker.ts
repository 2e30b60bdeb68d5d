/**
 * The server's worker, started by `serveInSandbox()` (server/sandbox.ts) with
 * only the permissions the server needs. It checks that the sandbox holds,
 * runs `serve()` with the options it is sent, forwards its log
 * records to the process, shuts the server down when told to, and says when
 * it has finished.
 *
 * The log is bounded here, where records are made: each value is escaped and
 * cut as the log's formatter would (`renderLogValue`), a client address's
 * records beyond its limit are suppressed and summarised (`AddressLimiter`),
 * and no more than `maxInFlight` records are posted and not yet taken by the
 * process: past that they are dropped and counted, and a line says how many
 * once there is room.
 *
 * @module
 */

import { configure, getLogger, type LogRecord, type Sink } from "@logtape/logtape";
import { LogCounters } from "./log_counters.ts";
import { renderLogValue } from "./log_format.ts";
import { AddressLimiter } from "./log_limiter.ts";
import type { ForwardedLogRecord, FromSandbox, SandboxPermissions, ToSandbox } from "./sandbox.ts";
import { serve, type ServeOptions, type Server } from "./server.ts";
import { ServerMetrics } from "./server_metrics.ts";

/** The worker's global scope, as far as this module uses it. */
interface WorkerScope {
  postMessage(message: FromSandbox): void;
  onmessage: ((event: MessageEvent<ToSandbox>) => void) | null;
}

const scope = globalThis as unknown as WorkerScope;

/** Kinds the sandbox never grants in full; one granted in full means the worker runs without its sandbox. */
const NEVER_IN_FULL: Deno.PermissionDescriptor[] = [
  { name: "read" },
  { name: "write" },
  { name: "net" },
  { name: "env" },
  { name: "sys" },
  { name: "run" },
  { name: "ffi" },
  { name: "import" },
];

/** How often windows that are over are summarised, and a note of dropped records retried. */
const SWEEP_INTERVAL_MS = 1000;

let server: Server | null = null;
let stopped: Int32Array | null = null;
let counters = new LogCounters();
let metrics = new ServerMetrics();
let maxInFlight = 0;
let limiter = new AddressLimiter();
/** Records dropped because too many were in flight, since a line said so. */
let unreported = 0;

scope.onmessage = (event) => {
  const message = event.data;
  if (message.type === "start") {
    stopped = new Int32Array(message.stopped);
    counters = new LogCounters(message.log.counters);
    metrics = new ServerMetrics(message.metrics);
    maxInFlight = message.log.maxInFlight;
    limiter = new AddressLimiter({ limit: message.log.limit });
    start(message.options, message.permissions).catch((error) => fail(error));
  } else if (message.type === "shutdown" && server !== null) {
    // shutdown() closes the listener before it returns: then the process may say so.
    const stopping = server.shutdown(message.options);
    Atomics.store(stopped!, 0, 1);
    Atomics.notify(stopped!, 0);
    stopping.catch((error) => fail(error));
  }
};

async function start(options: ServeOptions, permissions: SandboxPermissions): Promise<void> {
  checkSandbox(permissions);
  await configure({
    sinks: { process: forwardingSink },
    loggers: [
      { category: ["dfos"], lowestLevel: "info", sinks: ["process"] },
      { category: ["logtape", "meta"], lowestLevel: "warning", sinks: ["process"] },
    ],
  });
  const log = getLogger(["dfos", "server"]);
  const sys = permissions.sys === false ? "" : `; sys ${permissions.sys.join(", ")}`;
  // Said once the server listens: a server that cannot (its port in use) logs nothing but why.
  const describe = () => {
    log.info`Sandbox: net ${permissions.net.join(", ")}; read ${permissions.read.join(", ")}; write ${
      permissions.write.join(", ")
    }${sys}; nothing else`;
  };
  const sweeping = setInterval(sweep, SWEEP_INTERVAL_MS);
  Deno.unrefTimer(sweeping);
  try {
    server = await serve({ ...options, logCounters: counters, metrics, onListening: describe });
    const { hostname, port, transport } = server.addr;
    scope.postMessage({ type: "listening", addr: { hostname, port, transport }, tls: server.tls });
    await server.finished;
  } finally {
    clearInterval(sweeping);
    sweep(true);
  }
  scope.postMessage({ type: "finished" });
}

/**
 * Checks that the worker holds what it was given and no kind in full: a
 * runtime that ignored the worker's permissions must not serve unconfined.
 */
function checkSandbox(permissions: SandboxPermissions): void {
  const inFull = NEVER_IN_FULL.filter((descriptor) => Deno.permissions.querySync(descriptor).state === "granted");
  if (inFull.length > 0) {
    const names = inFull.map((descriptor) => descriptor.name).join(", ");
    throw new Error(`Cannot start the server: its sandbox did not take effect (${names} granted in full)`);
  }
  const given: Deno.PermissionDescriptor[] = [
    ...permissions.read.map((path) => ({ name: "read", path }) as const),
    ...permissions.write.map((path) => ({ name: "write", path }) as const),
    ...permissions.net.map((host) => ({ name: "net", host }) as const),
  ];
  const missing = given.filter((descriptor) => Deno.permissions.querySync(descriptor).state !== "granted");
  if (missing.length > 0) {
    throw new Error(`Cannot start the server: its sandbox lacks ${missing.map((d) => JSON.stringify(d)).join(", ")}`);
  }
}

function fail(error: unknown): void {
  const { name, message, stack } = error instanceof Error ? error : new Error(String(error));
  scope.postMessage({ type: "failed", error: { name, message, stack } });
}

/**
 * Sends each record to the process, its values rendered here as the log's
 * formatter would; unless its address has had its share of this window. A
 * logged-in user's own work (an info record with a `user` and no `refused`:
 * a login, an operation, a close) is the performance log and is not limited:
 * its pace is the server's. Refusals, warnings and errors are, as is all
 * that a connection logs before it logs in.
 */
const forwardingSink: Sink = (record: LogRecord) => {
  const { address, user, refused } = record.properties;
  const work = record.level === "info" && user !== undefined && refused === undefined;
  if (!work && !limiter.admit(typeof address === "string" ? address : undefined)) {
    counters.suppress(1);
    return;
  }
  forward(record);
};

/** Posts a record unless too many are in flight (then it is dropped and counted); a connection's get 3/4 of them. */
function forward(record: LogRecord): void {
  const limit = record.properties.address === undefined ? maxInFlight : Math.floor(maxInFlight * 3 / 4);
  if (unreported > 0 && counters.reserve(limit)) {
    post(serverRecord("warning", `${unreported} log records dropped (queue full: the process is behind)`));
    unreported = 0;
  }
  if (!counters.reserve(limit)) {
    unreported++;
    counters.drop("queue full");
    return;
  }
  post(record);
}

function post(record: LogRecord): void {
  const forwarded: ForwardedLogRecord = {
    category: [...record.category],
    level: record.level,
    message: record.message.map((part, index) => index % 2 === 0 ? String(part) : renderLogValue(part)),
    rawMessage: typeof record.rawMessage === "string" ? record.rawMessage : record.rawMessage.join("{}"),
    timestamp: record.timestamp,
    properties: Object.fromEntries(
      Object.entries(record.properties).map(([key, value]) => [key, renderLogValue(value)]),
    ),
  };
  scope.postMessage({ type: "log", record: forwarded });
}

/** Summarises the windows that are over (all of them at the end), and says what was dropped if there is room. */
function sweep(all = false): void {
  for (const { line } of limiter.sweep(all)) forward(serverRecord("info", line));
  if (unreported > 0 && counters.reserve(maxInFlight)) {
    post(serverRecord("warning", `${unreported} log records dropped (queue full: the process is behind)`));
    unreported = 0;
  }
}

/** A record of the server's own (no address), with a fixed text. */
function serverRecord(level: LogRecord["level"], text: string): LogRecord {
  return {
    category: ["dfos", "server"],
    level,
    message: [text],
    rawMessage: text,
    timestamp: Date.now(),
    properties: {},
  };
}
