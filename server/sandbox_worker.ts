/**
 * The server's worker, started by `serveInSandbox()` (server/sandbox.ts) with
 * only the permissions the server needs. It checks that the sandbox holds,
 * runs `serve()` with the options it is sent, forwards its log
 * records to the process, shuts the server down when told to, and says when
 * it has finished.
 *
 * @module
 */

import { configure, getLogger, type LogRecord, type Sink } from "@logtape/logtape";
import type { ForwardedLogRecord, FromSandbox, SandboxPermissions, ToSandbox } from "./sandbox.ts";
import { serve, type ServeOptions, type Server } from "./server.ts";

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

let server: Server | null = null;
let stopped: Int32Array | null = null;

scope.onmessage = (event) => {
  const message = event.data;
  if (message.type === "start") {
    stopped = new Int32Array(message.stopped);
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
  log.info`Sandbox: net ${permissions.net.join(", ")}; read ${permissions.read.join(", ")}; write ${
    permissions.write.join(", ")
  }${sys}; nothing else`;
  server = await serve(options);
  const { hostname, port, transport } = server.addr;
  scope.postMessage({ type: "listening", addr: { hostname, port, transport }, tls: server.tls });
  await server.finished;
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

/** Sends each record to the process, its values rendered here as the log's formatter would. */
const forwardingSink: Sink = (record: LogRecord) => {
  const forwarded: ForwardedLogRecord = {
    category: [...record.category],
    level: record.level,
    message: record.message.map(render),
    rawMessage: typeof record.rawMessage === "string" ? record.rawMessage : record.rawMessage.join("{}"),
    timestamp: record.timestamp,
    properties: Object.fromEntries(Object.entries(record.properties).map(([key, value]) => [key, render(value)])),
  };
  scope.postMessage({ type: "log", record: forwarded });
};

function render(value: unknown): string {
  return typeof value === "string" ? value : Deno.inspect(value);
}
