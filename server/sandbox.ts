/**
 * `serveInSandbox()`: runs `serve()` (server.ts) in a Worker that holds only the
 * permissions the server needs, whatever the process was given: network for
 * its own listening address (and its S3 endpoint, with `--storage s3://`),
 * read and write for its storage root (none with S3), read for its users file, and the system's memory figures. No environment, no
 * subprocess, no FFI, no remote import, no other path or address. This is
 * the runtime's wall (docs/SECURITY.md): a bug that tries to reach outside
 * is refused by Deno itself with `NotCapable`.
 *
 * The process itself (the main thread) parses the flags, reads the TLS
 * certificate and key, owns the log (the worker forwards its log records),
 * and handles signals; it never touches a connection or a user's file.
 * Workers with their own permissions are unstable in Deno 2.9: the process
 * needs `--unstable-worker-options` (deno.json's `"unstable"` gives it to
 * `deno run`, `deno test` and `deno compile`).
 *
 * @example Usage
 * ```ts ignore
 * // ignored: it starts a server on a storage folder and users file that must exist first (tests/sandbox_test.ts runs it)
 * import { serveInSandbox } from "./sandbox.ts";
 * const server = await serveInSandbox({ port: 0, root: "./server_storage", users: "./id_passwd.txt" });
 * console.log(server.addr.port, server.permissions.net);
 * await server.shutdown({ drainMs: 30_000 });
 * ```
 *
 * @module
 */

import { getLogger, type LogLevel } from "@logtape/logtape";
import { basename, dirname, join, resolve } from "node:path";
import { DEFAULT_LISTEN_HOSTNAME, DEFAULT_PORT } from "../shared/defaults.ts";
import { LogCounters } from "./log_counters.ts";
import { DEFAULT_LOG_LIMIT } from "./log_limiter.ts";
import type { S3BackendOptions } from "./s3/s3_backend.ts";
import type { ServeOptions, ShutdownOptions } from "./server.ts";
import { ServerMetrics } from "./server_metrics.ts";

/**
 * The most log records on their way from the worker to this thread at once;
 * past it the worker drops records and counts them ("queue full"). A quarter
 * is kept for the server's own records (those without an address).
 */
export const LOG_RECORDS_IN_FLIGHT = 1000;

/** The worker that runs the server: `server/sandbox_worker.ts` (the compile task must `--include` it). */
export const SANDBOX_WORKER: URL = new URL("./sandbox_worker.ts", import.meta.url);

/** The permissions of the server's worker: every kind named, none inherited. */
export interface SandboxPermissions {
  /** Paths it may read: the storage root (as given and its real path) and the users file. */
  read: string[];
  /** Paths it may write: the storage root (as given and its real path). */
  write: string[];
  /** `host:port` it may listen on (and connect to): its own address, and its S3 endpoint if it has one. */
  net: string[];
  /** System information it may read: the memory figures of the totals line, if the process has them. */
  sys: "systemMemoryInfo"[] | false;
  /** No environment variables. */
  env: false;
  /** No subprocesses. */
  run: false;
  /** No foreign functions. */
  ffi: false;
  /** No remote imports (local modules and `node:` built-ins still load). */
  import: false;
}

/** A server running in its sandbox: what `dfos serve` needs of a `Server` (server.ts). */
export interface SandboxedServer {
  /** The address it listens on. */
  readonly addr: Deno.NetAddr;
  /** True when it serves TLS. */
  readonly tls: boolean;
  /** What the worker counts, read here (the worker writes the same memory). */
  readonly metrics: ServerMetrics;
  /** What the worker may do. */
  readonly permissions: SandboxPermissions;
  /** Resolves once the server has shut down; rejects if the worker failed. */
  readonly finished: Promise<void>;
  /**
   * As `Server.shutdown()` (server.ts), and like it the server has stopped
   * listening when this returns (the call waits up to a second for the
   * worker to confirm).
   *
   * @param options How long requests in flight may take to finish.
   */
  shutdown(options?: ShutdownOptions): Promise<void>;
}

/** Options for {@linkcode serveInSandbox} beyond the server's own. */
export interface SandboxOptions {
  /**
   * The worker's module. Tests pass a probe here; it gets the same
   * permissions and messages as the server.
   *
   * @default {SANDBOX_WORKER}
   */
  entry?: URL;
  /**
   * Where the worker counts the log records it drops or suppresses, and the
   * records in flight; the same counters as the log's sinks
   * (`configureLogging()`), so that the totals line says what the log lost.
   *
   * @default {new LogCounters()}
   */
  logCounters?: LogCounters;
  /**
   * Where the worker counts for Prometheus: its numbers live in this
   * object's shared memory, so that this thread can answer a scrape
   * without asking the worker.
   *
   * @default {new ServerMetrics()}
   */
  metrics?: ServerMetrics;
  /**
   * Log records let through per client address per 10 s (`AddressLimiter`,
   * server/log_limiter.ts); 0 for no limit.
   *
   * @default {DEFAULT_LOG_LIMIT}
   */
  logLimit?: number;
}

/** A log record as the worker forwards it: every value already rendered as text, escaped and cut (`renderLogValue`). */
export interface ForwardedLogRecord {
  /** The logger's category. */
  category: string[];
  /** Its level. */
  level: LogLevel;
  /** Text and values, interleaved; values rendered with `renderLogValue` (server/log_format.ts). */
  message: string[];
  /** The template, its parts joined with `{}`. */
  rawMessage: string;
  /** Milliseconds since the epoch, when the worker logged it. */
  timestamp: number;
  /** Properties, rendered like the values; `address` for a record of a client's connection. */
  properties: Record<string, string>;
}

/** Messages from the process to the worker. */
export type ToSandbox =
  | {
    type: "start";
    options: ServeOptions;
    /** What the worker was given, for it to check and log. */
    permissions: SandboxPermissions;
    /** An `Int32Array` word the worker sets to 1 once `shutdown()` has closed the listener. */
    stopped: SharedArrayBuffer;
    /** `ServerMetrics.buffer`: the numbers the worker counts in. */
    metrics: SharedArrayBuffer;
    /** How the worker forwards its log. */
    log: {
      /** `LogCounters.buffer`: records in flight, dropped, suppressed. */
      counters: SharedArrayBuffer;
      /** The most records in flight ({@linkcode LOG_RECORDS_IN_FLIGHT}). */
      maxInFlight: number;
      /** Records per client address per 10 s; 0 for no limit. */
      limit: number;
    };
  }
  | { type: "shutdown"; options: ShutdownOptions };

/** Messages from the worker to the process. */
export type FromSandbox =
  | { type: "log"; record: ForwardedLogRecord }
  | { type: "listening"; addr: Deno.NetAddr; tls: boolean }
  | { type: "failed"; error: { name: string; message: string; stack?: string } }
  | { type: "finished" };

/**
 * Computes the sandbox of a server started with `options`: the paths are
 * made absolute against the current folder, and the storage root is listed
 * both as given and as its real path (the server works under its real path;
 * Deno checks paths as written, without following links).
 *
 * @param options The server's options.
 * @returns Every permission kind, narrowed to what the server needs.
 */
export function sandboxPermissions(options: ServeOptions): SandboxPermissions {
  const root = resolve(options.root);
  const roots = [...new Set([root, realPathOf(root)])];
  const hostname = options.hostname ?? DEFAULT_LISTEN_HOSTNAME;
  const host = hostname.includes(":") ? `[${hostname}]` : hostname;
  const sys = Deno.permissions.querySync({ name: "sys", kind: "systemMemoryInfo" }).state === "granted";
  // With S3, the files are in the bucket: no folder to read or write, and the endpoint to connect to.
  const s3 = options.s3 === undefined ? [] : [endpointHost(options.s3)];
  return {
    read: [...(s3.length > 0 ? [] : roots), resolve(options.users)],
    write: s3.length > 0 ? [] : roots,
    net: [`${host}:${options.port ?? DEFAULT_PORT}`, ...s3],
    sys: sys ? ["systemMemoryInfo"] : false,
    env: false,
    run: false,
    ffi: false,
    import: false,
  };
}

/**
 * Starts `serve()` in a Worker with {@linkcode sandboxPermissions}.
 * Its log records are passed on to this thread's loggers (so the log has one
 * writer), at most {@linkcode LOG_RECORDS_IN_FLIGHT} at a time and at most
 * `logLimit` per client address per 10 s; and its errors become this call's: a users file that cannot be
 * read, an address in use, a certificate and key that do not match.
 *
 * @param options The server's options: plain data only (no `storage`, `log`, `logCounters`, `metrics` or `onListening`).
 * @param sandbox The worker's module, the log's counters and its per-address limit.
 * @returns The running server, once it listens.
 * @throws {Error} when this process lacks a permission the sandbox needs, or the server cannot start.
 */
export async function serveInSandbox(options: ServeOptions, sandbox: SandboxOptions = {}): Promise<SandboxedServer> {
  if (
    options.storage !== undefined || options.log !== undefined || options.logCounters !== undefined ||
    options.metrics !== undefined || options.onListening !== undefined
  ) {
    throw new TypeError("Cannot run the server in a sandbox with a storage or logger of this thread");
  }
  const permissions = sandboxPermissions(options);
  checkGranted(permissions);
  let worker: Worker;
  try {
    worker = new Worker(sandbox.entry ?? SANDBOX_WORKER, {
      type: "module",
      name: "dfos-server",
      deno: { permissions },
    });
  } catch (error) {
    // Without --unstable-worker-options: "Unstable API 'Worker.deno.permissions'. The ... flag must be provided."
    throw new Error(`Cannot start the server's sandbox: ${(error as Error).message}`, { cause: error });
  }
  const stopped = new Int32Array(new SharedArrayBuffer(4));
  const counters = sandbox.logCounters ?? new LogCounters();
  const metrics = sandbox.metrics ?? new ServerMetrics();
  const started = Promise.withResolvers<{ addr: Deno.NetAddr; tls: boolean }>();
  const finished = Promise.withResolvers<void>();
  // A failure at start-up is reported by `started`; `finished` must not add an unhandled rejection then.
  finished.promise.catch(() => {});
  const fail = (error: Error) => {
    worker.terminate();
    started.reject(error);
    finished.reject(error);
  };
  worker.onmessage = (event: MessageEvent<FromSandbox>) => {
    const message = event.data;
    if (message.type === "log") {
      try {
        emitForwarded(message.record);
      } finally {
        counters.settle();
      }
    } else if (message.type === "listening") started.resolve(message);
    else if (message.type === "failed") fail(revive(message.error));
    else if (message.type === "finished") {
      worker.terminate();
      finished.resolve();
    }
  };
  worker.onerror = (event: ErrorEvent) => {
    event.preventDefault();
    fail(new Error(`The server stopped on an error: ${event.message}`, { cause: event.error }));
  };
  worker.onmessageerror = () => fail(new Error("Cannot read a message from the server's worker"));
  try {
    worker.postMessage(
      {
        type: "start",
        options,
        permissions,
        stopped: stopped.buffer as SharedArrayBuffer,
        metrics: metrics.buffer,
        log: {
          counters: counters.buffer,
          maxInFlight: LOG_RECORDS_IN_FLIGHT,
          limit: sandbox.logLimit ?? DEFAULT_LOG_LIMIT,
        },
      } satisfies ToSandbox,
    );
  } catch (error) {
    worker.terminate();
    throw new TypeError(`Cannot pass the server's options to its sandbox: ${(error as Error).message}`, {
      cause: error,
    });
  }
  const { addr, tls } = await started.promise;
  let stopping: Promise<void> | null = null;
  return {
    addr,
    tls,
    metrics,
    permissions,
    finished: finished.promise,
    shutdown(shutdownOptions: ShutdownOptions = {}) {
      worker.postMessage({ type: "shutdown", options: shutdownOptions } satisfies ToSandbox);
      if (stopping === null) {
        // As in-process: the listener is closed when shutdown() returns, before anyone logs that it is.
        Atomics.wait(stopped, 0, 0, 1000);
        stopping = finished.promise;
      }
      return stopping;
    },
  };
}

/**
 * The `host:port` the server connects to for its bucket: the endpoint's, or
 * with virtual-hosted addressing (`BUCKET.HOST`), the bucket's host.
 */
function endpointHost(s3: S3BackendOptions): string {
  const url = new URL(s3.endpoint);
  const port = url.port || (url.protocol === "https:" ? "443" : "80");
  const ip = /^[\d.]+$|^\[/.test(url.hostname) || url.hostname === "localhost";
  const hostname = (s3.pathStyle ?? ip) ? url.hostname : `${s3.bucket}.${url.hostname}`;
  return `${hostname}:${port}`;
}

/**
 * The real path of `path`, or of its longest existing ancestor followed by the
 * rest of `path`; `path` itself when even that cannot be read.
 */
function realPathOf(path: string): string {
  const missing: string[] = [];
  for (let at = path;; at = dirname(at)) {
    try {
      return join(Deno.realPathSync(at), ...missing);
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound) || dirname(at) === at) return path;
      missing.unshift(basename(at));
    }
  }
}

/** Throws a clear error when this process lacks a permission the sandbox asks for (a worker cannot gain one). */
function checkGranted(permissions: SandboxPermissions): void {
  const wanted: [Deno.PermissionDescriptor, string][] = [
    ...permissions.net.map((host): [Deno.PermissionDescriptor, string] => [
      { name: "net", host },
      `--allow-net=${host}`,
    ]),
    ...permissions.read.map((path): [Deno.PermissionDescriptor, string] => [
      { name: "read", path },
      `--allow-read=${path}`,
    ]),
    ...permissions.write.map((path): [Deno.PermissionDescriptor, string] => [
      { name: "write", path },
      `--allow-write=${path}`,
    ]),
  ];
  for (const [descriptor, flag] of wanted) {
    if (Deno.permissions.querySync(descriptor).state !== "granted") {
      throw new Error(`Cannot start the server: this process was not given ${flag}, which the server needs`);
    }
  }
}

/** An error from the worker, as an Error of this thread with the same name, message and stack. */
function revive(error: { name: string; message: string; stack?: string }): Error {
  const revived = new Error(error.message);
  revived.name = error.name;
  if (error.stack !== undefined) revived.stack = error.stack;
  return revived;
}

/** Logs a record of the worker's here; the sinks format it again, which leaves its rendered values as they are. */
function emitForwarded(record: ForwardedLogRecord): void {
  getLogger(record.category).emit({
    level: record.level,
    message: record.message,
    rawMessage: record.rawMessage,
    timestamp: record.timestamp,
    properties: record.properties,
  });
}
