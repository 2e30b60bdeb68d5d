/**
 * `dfos serve`: parses the server's flags, reads the TLS certificate and key
 * if given, sets up logging, starts the server and shuts it down on SIGINT
 * or SIGTERM: the first signal drains (requests in flight may finish for up
 * to `--drain-timeout` seconds), a second one stops at once. An error that
 * stops the server (its port in use, a certificate that cannot be read) goes
 * to the log file too, not only to standard error; the server takes its
 * address before it logs anything, so a second server started on a port in
 * use writes that one line into the log and nothing else. With `--metrics`
 * it also answers Prometheus's scrapes (server/metrics_endpoint.ts), from
 * this process, until the server has shut down.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { byteSizeFlag, type Command, integerFlag, secondsFlag, UsageError } from "../shared/cli.ts";
import { DEFAULT_LISTEN_HOSTNAME, DEFAULT_PORT } from "../shared/defaults.ts";
import { MAX_CONTROL_LENGTH } from "../shared/messages.ts";
import { MAX_NAME_BYTES } from "../shared/names.ts";
import { defaultPerAddress, defaultPerUser } from "./connection_caps.ts";
import { LIST_PAGE_ENTRIES } from "./handlers.ts";
import { LogCounters } from "./log_counters.ts";
import { DEFAULT_LOG_LIMIT, DEFAULT_LOG_WINDOW_MS } from "./log_limiter.ts";
import { configureLogging, FILE_ONLY_CATEGORY } from "./logging.ts";
import {
  DEFAULT_DELAY_BASE_MS,
  DEFAULT_DELAY_MAX_MS,
  DEFAULT_FREE_FAILURES,
  DEFAULT_LOCKOUT_FAILURES,
  DEFAULT_LOCKOUT_MS,
  type LoginThrottleOptions,
} from "./throttle.ts";
import { type SandboxedServer, serveInSandbox } from "./sandbox.ts";
import { loadAwsCredentials } from "./s3/aws_credentials.ts";
import type { S3BackendOptions } from "./s3/s3_backend.ts";
import { parseStorageUrl } from "./s3/storage_url.ts";
import { STALE_UPLOAD_MS } from "./s3/stale_uploads.ts";
import { dropOptionPermissions } from "../shared/permissions.ts";
import { isLoopback } from "./loopback.ts";
import { type MetricsEndpoint, serveMetrics } from "./metrics_endpoint.ts";
import { ServerMetrics } from "./server_metrics.ts";
import { parseUserLine } from "./users.ts";
import {
  DEFAULT_HANDSHAKE_TIMEOUT_MS,
  DEFAULT_IDLE_TIMEOUT_MS,
  DEFAULT_MAX_CONNECTIONS,
  DEFAULT_OP_TIMEOUT_MS,
  DEFAULT_PARTIAL_TTL_MS,
  DEFAULT_STATS_INTERVAL_MS,
  MIN_MAX_FRAME_BYTES,
  type RequestLimitOptions,
  type ServeTlsOptions,
} from "./server.ts";

/** Seconds the requests in flight may take to finish after the first SIGINT or SIGTERM, by default. */
export const DEFAULT_DRAIN_TIMEOUT_SECONDS = 30;

/** Where `--metrics PORT` listens: this host only. */
export const METRICS_DEFAULT_HOSTNAME = "127.0.0.1";

/** The defaults shown in the usage text, in seconds. */
const SHOWN = {
  handshake: DEFAULT_HANDSHAKE_TIMEOUT_MS / 1000,
  idle: DEFAULT_IDLE_TIMEOUT_MS / 1000,
  op: DEFAULT_OP_TIMEOUT_MS / 1000,
  stats: DEFAULT_STATS_INTERVAL_MS / 1000,
};

/** The `serve` subcommand. */
export const command: Command = {
  usage: `Usage: dfos serve [options]

Serves files to the users listed in the users file, each in a private folder
ROOT/<user>/ created on first login.

      --host HOST                  address to listen on (default ${DEFAULT_LISTEN_HOSTNAME})
      --port PORT                  port to listen on (default ${DEFAULT_PORT}; 0 picks a free one)
      --root DIR                   storage root (default ./server_storage)
      --users FILE                 "user:password" lines, re-read when changed (default ./id_passwd.txt)
      --log FILE                   performance log, appended to (default ./server_performance.log)
      --log-limit N                log lines per client address per ${
    DEFAULT_LOG_WINDOW_MS / 1000
  } s; the rest are counted and
                                   summarised in one line (default ${DEFAULT_LOG_LIMIT}; 0: no limit)
      --fsync                      flush each upload to the disk before confirming it
      --storage s3://BUCKET[/PREFIX]
                                   keep the files in an S3 bucket instead of --root: each user's under
                                   PREFIX/<user>/; several servers may share one bucket. Credentials from
                                   AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or ~/.aws/credentials, AWS_PROFILE)
      --s3-endpoint URL            the S3 engine's URL (needed with --storage; http://127.0.0.1:7480, https://...)
      --s3-region REGION           the region requests are signed for (default us-east-1)
      --s3-path-style              address the bucket as URL/BUCKET (default for an IP address or localhost;
                                   else BUCKET.HOST)
      --s3-stale-upload DURATION   a multipart upload that took no part for this long, and is not kept, is a
                                   killed server's: aborted at start-up and every 10 minutes (default 24h)
      --tls-cert FILE              serve TLS with this certificate chain (PEM; with --tls-key).
                                   Clients then need --tls; there is no plaintext fallback
      --tls-key FILE               the certificate's private key (PEM; with --tls-cert)
      --max-connections N          connections served at once; one more is told "Server busy" and
                                   closed (default ${DEFAULT_MAX_CONNECTIONS})
      --max-connections-per-address N
                                   connections served at once from one address (an IPv6 address by its /64),
                                   logged in or not (default: half of --max-connections)
      --max-connections-per-user N logged-in connections served at once for one user; one more login is told
                                   "Server busy" (default: a quarter of --max-connections)
      --handshake-timeout SECONDS  time a new connection has to say HELLO and log in (default ${SHOWN.handshake};
                                   0: no limit)
      --idle-timeout SECONDS       time a logged-in connection may wait between requests; it never runs
                                   while a request is served (default ${SHOWN.idle}; 0: no limit)
      --op-timeout SECONDS         time a request may go without moving a byte either way (a client that stops
                                   sending mid-upload or stops reading a download or its replies); it is then
                                   closed and its upload dropped. Slow transfers that keep moving are never cut (default
                                   ${SHOWN.op}; 0: no limit)
      --drain-timeout SECONDS      time the transfers in flight have to finish at shutdown (default ${DEFAULT_DRAIN_TIMEOUT_SECONDS})
      --quota BYTES                bytes each user's files may take on disk in all, as du counts them (each
                                   file rounded up to 4 KiB blocks, at least one; each folder one block;
                                   uploads in progress too); an upload that would go over is refused, at
                                   once when its size is known, and leaves nothing (default 0: no quota)
      --quota-files N              files and folders each user may have in all (default with --quota: one
                                   per 16 KiB of it; 0 or without --quota: no limit)
      --max-file-size BYTES        the largest file an upload may store (default 0: no limit)
      --max-name BYTES             the longest name an upload or a move may create, 1 to ${MAX_NAME_BYTES}
                                   (default ${MAX_NAME_BYTES}; on S3 at most 1024 less the key prefix and 65)
      --list-page N                entries at most per listing page (default ${LIST_PAGE_ENTRIES})
      --max-frame BYTES            the largest frame a client may send but file data, ${MIN_MAX_FRAME_BYTES} to ${MAX_CONTROL_LENGTH};
                                   before login, the largest of all (default ${MAX_CONTROL_LENGTH}). File data keeps
                                   the protocol's frames of 1 MiB
      --partial-ttl DURATION       how long an interrupted push is kept for a resume after its last byte:
                                   seconds, or with s, m, h or d (default 24h)
      --stats-interval SECONDS     time between two totals lines in the log (default ${SHOWN.stats}; 0: only at
                                   shutdown)
      --metrics [HOST:]PORT        serve Prometheus metrics at http://HOST:PORT/metrics (default: off). Without
                                   HOST, on ${METRICS_DEFAULT_HOSTNAME} (this host only); a HOST beyond it lets
                                   anyone who reaches it read the server's counts (no user or file names).
                                   PORT 0 picks a free one (the log says which)
      --auth-free-failures N       failed logins from one address, or on one user name, answered at once
                                   (default ${DEFAULT_FREE_FAILURES}); after them each answer, right password or wrong,
                                   waits twice as long as the one before, from ${DEFAULT_DELAY_BASE_MS / 1000} s
      --auth-max-delay SECONDS     the longest such wait, never more than half --handshake-timeout
                                   (default ${DEFAULT_DELAY_MAX_MS / 1000}; 0: no delay)
      --auth-lockout-failures N    failed logins that lock an address out: its logins are refused at once
                                   (default ${DEFAULT_LOCKOUT_FAILURES}; 0: never). A user name is only delayed, never locked
      --auth-lockout SECONDS       how long a lockout lasts, and failures are remembered after the last
                                   (default ${DEFAULT_LOCKOUT_MS / 1000}; 0: no throttle at all)
  -v, --verbose                    show error details
  -h, --help                       show this help

SECONDS may have a fraction ("0.5"); BYTES may end in K, M, G or T (powers of
1024: "512K", "10M", "2G"). The first SIGINT or SIGTERM stops the server
gracefully: it stops accepting, closes idle connections, lets the transfers in
flight finish for up to --drain-timeout seconds, aborts what is left (an
unfinished upload leaves the previous version and no temporary file), logs its
totals and exits 0. A second signal aborts everything at once.`,
  options: {
    host: { type: "string" },
    port: { type: "string" },
    root: { type: "string" },
    users: { type: "string" },
    log: { type: "string" },
    "log-limit": { type: "string" },
    fsync: { type: "boolean" },
    storage: { type: "string" },
    "s3-endpoint": { type: "string" },
    "s3-region": { type: "string" },
    "s3-path-style": { type: "boolean" },
    "s3-stale-upload": { type: "string" },
    "tls-cert": { type: "string" },
    "tls-key": { type: "string" },
    "max-connections": { type: "string" },
    "max-connections-per-address": { type: "string" },
    "max-connections-per-user": { type: "string" },
    "handshake-timeout": { type: "string" },
    "idle-timeout": { type: "string" },
    "drain-timeout": { type: "string" },
    "stats-interval": { type: "string" },
    metrics: { type: "string" },
    "partial-ttl": { type: "string" },
    "op-timeout": { type: "string" },
    quota: { type: "string" },
    "quota-files": { type: "string" },
    "max-file-size": { type: "string" },
    "max-name": { type: "string" },
    "list-page": { type: "string" },
    "max-frame": { type: "string" },
    "auth-free-failures": { type: "string" },
    "auth-max-delay": { type: "string" },
    "auth-lockout-failures": { type: "string" },
    "auth-lockout": { type: "string" },
  },
  async run({ values, positionals }) {
    if (positionals.length > 0) throw new UsageError(`serve takes no arguments, got "${positionals[0]}"`);
    const port = integerFlag(values.port, "port", DEFAULT_PORT, [0, 65535]);
    const maxConnections = integerFlag(values["max-connections"], "max-connections", DEFAULT_MAX_CONNECTIONS, [
      1,
      1_000_000,
    ]);
    const perAddress = integerFlag(
      values["max-connections-per-address"],
      "max-connections-per-address",
      defaultPerAddress(maxConnections),
      [1, maxConnections],
    );
    const perUser = integerFlag(
      values["max-connections-per-user"],
      "max-connections-per-user",
      defaultPerUser(maxConnections),
      [1, maxConnections],
    );
    const handshakeTimeoutMs = secondsFlag(
      values["handshake-timeout"],
      "handshake-timeout",
      DEFAULT_HANDSHAKE_TIMEOUT_MS,
    );
    const idleTimeoutMs = secondsFlag(values["idle-timeout"], "idle-timeout", DEFAULT_IDLE_TIMEOUT_MS);
    const drainMs = secondsFlag(values["drain-timeout"], "drain-timeout", DEFAULT_DRAIN_TIMEOUT_SECONDS * 1000);
    const statsIntervalMs = secondsFlag(values["stats-interval"], "stats-interval", DEFAULT_STATS_INTERVAL_MS);
    const limits = limitFlags(values);
    const s3 = await s3Flags(values);
    dropOptionPermissions(); // the environment was needed only for the S3 credentials
    const logLimit = integerFlag(values["log-limit"], "log-limit", DEFAULT_LOG_LIMIT, [0, 1_000_000]);
    const metricsAddress = metricsFlag(values.metrics);
    // One set of counters: the sinks count what they drop, the server's worker what it drops and suppresses.
    const logCounters = new LogCounters();
    const closeLogs = await configureLogging({
      file: (values.log as string | undefined) ?? "server_performance.log",
      counters: logCounters,
    });
    const metrics = new ServerMetrics();
    let endpoint: MetricsEndpoint | null = null;
    try {
      const tls = await readTlsFiles(values["tls-cert"] as string | undefined, values["tls-key"] as string | undefined);
      // Its address first: a --metrics that cannot be had stops the server before it starts.
      endpoint = metricsAddress === null ? null : serveMetrics({ ...metricsAddress, render: () => metrics.render() });
      // Listening for signals before the server starts: one sent as soon as it logs "Serving on" must drain it too.
      using signals = new StopSignals();
      const server = await serveInSandbox({
        hostname: (values.host as string | undefined) ?? DEFAULT_LISTEN_HOSTNAME,
        port,
        root: (values.root as string | undefined) ?? "server_storage",
        users: (values.users as string | undefined) ?? "id_passwd.txt",
        fsync: values.fsync === true,
        s3,
        maxConnections,
        maxConnectionsPerAddress: perAddress,
        maxConnectionsPerUser: perUser,
        handshakeTimeoutMs,
        idleTimeoutMs,
        statsIntervalMs,
        partialTtlMs: durationFlag(values["partial-ttl"], "partial-ttl", DEFAULT_PARTIAL_TTL_MS),
        ...limits,
        tls,
        loginThrottle: loginThrottleFlags(values),
      }, { logCounters, logLimit, metrics });
      if (endpoint !== null) logMetricsAddress(endpoint.addr);
      await runUntilStopped(server, values, drainMs, signals);
    } catch (error) {
      // Standard error says it too (main.ts): in the file alone, so that the console does not show it twice.
      getLogger([...FILE_ONLY_CATEGORY]).fatal`dfos serve stopped: ${(error as Error).message ?? String(error)}`;
      throw error;
    } finally {
      await endpoint?.shutdown();
      await closeLogs();
    }
  },
};

/**
 * The SIGINT and SIGTERM signals, listened for from before the server
 * starts to its end, so that none ends the process by default: those that
 * come before {@linkcode StopSignals.handle} is called are kept for it.
 */
class StopSignals implements Disposable {
  #early: Deno.Signal[] = [];
  #handler: ((signal: Deno.Signal) => void) | null = null;
  readonly #onInterrupt = () => this.#deliver("SIGINT");
  readonly #onTerminate = () => this.#deliver("SIGTERM");

  constructor() {
    Deno.addSignalListener("SIGINT", this.#onInterrupt);
    Deno.addSignalListener("SIGTERM", this.#onTerminate);
  }

  /** Passes every signal, those already received first, to `handler`. */
  handle(handler: (signal: Deno.Signal) => void): void {
    this.#handler = handler;
    for (const signal of this.#early.splice(0)) handler(signal);
  }

  [Symbol.dispose](): void {
    Deno.removeSignalListener("SIGINT", this.#onInterrupt);
    Deno.removeSignalListener("SIGTERM", this.#onTerminate);
  }

  #deliver(signal: Deno.Signal): void {
    if (this.#handler === null) this.#early.push(signal);
    else this.#handler(signal);
  }
}

/**
 * Warns of passwords in clear on a server reachable from the network, then
 * runs the server until its end: the first SIGINT or SIGTERM drains it, a
 * second one stops it at once.
 */
async function runUntilStopped(
  server: SandboxedServer,
  values: Record<string, string | boolean | undefined>,
  drainMs: number,
  signals: StopSignals,
): Promise<void> {
  const log = getLogger(["dfos", "server"]);
  let count = 0;
  signals.handle((signal) => {
    count++;
    // shutdown() stops listening before it returns: the log line that says so comes after.
    if (count === 1) {
      server.shutdown({ drainMs });
      log.info`${signal}: shutting down (transfers in flight have ${drainMs / 1000} s; a second signal stops at once)`;
    } else {
      server.shutdown();
      log.warn`${signal} again: aborting everything now`;
    }
  });
  const users = (values.users as string | undefined) ?? "id_passwd.txt";
  const inClear = isLoopback(server.addr.hostname) ? [] : await usersInClear(users);
  if (inClear.length > 0) {
    log.warn`Listening on ${server.addr.hostname}, beyond this host, with passwords stored in clear for ${
      inClear.join(", ")
    }: their logins are accepted from this host only; hash them with "dfos passwd USER --users ${users}"`;
  }
  await server.finished;
}

/** The users whose passwords `path` stores in clear (what `UserFile` warns about); none if it cannot be read. */
async function usersInClear(path: string): Promise<string[]> {
  const text = await Deno.readTextFile(path).catch(() => "");
  const users: string[] = [];
  for (const line of text.split("\n")) {
    try {
      const entry = parseUserLine(line);
      if (entry !== null && !entry.value.startsWith("SCRAM-SHA-256$")) users.push(`"${entry.user}"`);
    } catch {
      // A malformed line: the server warns about it itself.
    }
  }
  return users;
}

/**
 * Reads `--storage` and the `--s3-*` flags: the bucket, its endpoint and the
 * credentials (the standard AWS variables or profile files, read here: the
 * server's sandbox reads no environment). Undefined without `--storage`.
 */
async function s3Flags(values: Record<string, string | boolean | undefined>): Promise<S3BackendOptions | undefined> {
  const storage = values.storage as string | undefined;
  if (storage === undefined) {
    for (const flag of ["s3-endpoint", "s3-region", "s3-path-style", "s3-stale-upload"]) {
      if (values[flag] !== undefined) throw new UsageError(`--${flag} needs --storage s3://BUCKET[/PREFIX]`);
    }
    return undefined;
  }
  const { bucket, prefix } = parseStorageUrl(storage);
  const endpoint = values["s3-endpoint"] as string | undefined;
  if (endpoint === undefined) throw new UsageError("--storage s3://... needs --s3-endpoint URL");
  if (!/^https?:\/\/[^/]+\/?$/.test(endpoint)) {
    throw new UsageError(`--s3-endpoint takes an http:// or https:// URL of a host, not "${endpoint}"`);
  }
  const staleUploadMs = durationFlag(values["s3-stale-upload"], "s3-stale-upload", STALE_UPLOAD_MS);
  const credentials = await loadAwsCredentials();
  return {
    bucket,
    prefix,
    endpoint: endpoint.replace(/\/$/, ""),
    region: (values["s3-region"] as string | undefined) ?? "us-east-1",
    pathStyle: values["s3-path-style"] === true ? true : undefined,
    credentials,
    staleUploadMs,
  };
}

/** Reads the `--auth-*` flags: what failed logins cost. */
function loginThrottleFlags(values: Record<string, string | boolean | undefined>): LoginThrottleOptions {
  return {
    freeFailures: integerFlag(values["auth-free-failures"], "auth-free-failures", DEFAULT_FREE_FAILURES, [
      0,
      1_000_000,
    ]),
    delayMaxMs: secondsFlag(values["auth-max-delay"], "auth-max-delay", DEFAULT_DELAY_MAX_MS),
    lockoutFailures: integerFlag(
      values["auth-lockout-failures"],
      "auth-lockout-failures",
      DEFAULT_LOCKOUT_FAILURES,
      [0, 1_000_000],
    ),
    lockoutMs: secondsFlag(values["auth-lockout"], "auth-lockout", DEFAULT_LOCKOUT_MS),
  };
}

/**
 * Reads `--metrics`: `HOST:PORT`, `[IPv6]:PORT`, or `PORT` (or `:PORT`) alone
 * for {@linkcode METRICS_DEFAULT_HOSTNAME}. HOST is an IP address or a host
 * name; PORT a whole number from 0 to 65535.
 *
 * @param value The flag's text, or undefined when absent.
 * @returns Where to listen, or null when the flag is absent (no metrics).
 * @throws {UsageError} for any other text.
 */
export function metricsFlag(value: string | boolean | undefined): { hostname: string; port: number } | null {
  if (value === undefined) return null;
  const text = typeof value === "string" ? value.trim() : "";
  const match = /^(?:(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9.-]*)):)?(\d{1,5})$/.exec(text);
  const port = match === null ? NaN : Number(match[3]);
  const hostname = match?.[1] ?? match?.[2] ?? "";
  if (match === null || port > 65535 || (match[1] !== undefined && !match[1].includes(":"))) {
    throw new UsageError(
      `--metrics takes [HOST:]PORT, such as 9464, 127.0.0.1:9464 or [::1]:9464 (PORT from 0 to 65535), not "${value}"`,
    );
  }
  return { hostname: hostname === "" ? METRICS_DEFAULT_HOSTNAME : hostname, port };
}

/** Says where the metrics are, with a warning when they can be read beyond this host. */
function logMetricsAddress(addr: Deno.NetAddr): void {
  const log = getLogger(["dfos", "server"]);
  const host = addr.hostname.includes(":") ? `[${addr.hostname}]` : addr.hostname;
  log.info`Metrics on http://${host}:${addr.port}/metrics`;
  if (!isLoopback(addr.hostname)) {
    log.warn`Metrics served on ${addr.hostname}, beyond this host: anyone who reaches it reads the server's counts`;
  }
}

/** Milliseconds per unit of {@linkcode durationFlag}. */
const DURATION_UNITS: Record<string, number> = { "": 1000, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * Reads a flag that is a duration: a number of seconds, or a number followed
 * by `s`, `m`, `h` or `d` ("90s", "30m", "24h"), 1 s at least.
 *
 * @param value The flag's text, or undefined when absent.
 * @param flag The flag's name, for the message.
 * @param fallbackMs The value when absent.
 * @returns Milliseconds.
 */
export function durationFlag(value: string | boolean | undefined, flag: string, fallbackMs: number): number {
  if (value === undefined) return fallbackMs;
  const match = typeof value === "string" ? /^(\d+(?:\.\d+)?)([smhd]?)$/.exec(value.trim()) : null;
  const ms = match === null ? NaN : Math.round(Number(match[1]) * DURATION_UNITS[match[2]]);
  if (!Number.isSafeInteger(ms) || ms < 1000) {
    throw new UsageError(
      `--${flag} takes a duration of 1s or more, such as 90s, 30m or 24h (or seconds), not "${value}"`,
    );
  }
  return ms;
}

/** Reads the flags of the server's limits on requests: sizes, names, listing pages, the stall timeout. */
function limitFlags(values: Record<string, string | boolean | undefined>): RequestLimitOptions {
  return {
    opTimeoutMs: secondsFlag(values["op-timeout"], "op-timeout", DEFAULT_OP_TIMEOUT_MS),
    quotaBytes: byteSizeFlag(values.quota, "quota", 0),
    quotaEntries: values["quota-files"] === undefined
      ? undefined
      : integerFlag(values["quota-files"], "quota-files", 0, [0, Number.MAX_SAFE_INTEGER]),
    maxFileBytes: byteSizeFlag(values["max-file-size"], "max-file-size", 0),
    maxNameBytes: byteSizeFlag(values["max-name"], "max-name", MAX_NAME_BYTES, [1, MAX_NAME_BYTES]),
    listPageEntries: integerFlag(values["list-page"], "list-page", LIST_PAGE_ENTRIES, [1, 1_000_000]),
    maxFrameBytes: byteSizeFlag(values["max-frame"], "max-frame", MAX_CONTROL_LENGTH, [
      MIN_MAX_FRAME_BYTES,
      MAX_CONTROL_LENGTH,
    ]),
  };
}

/**
 * Reads `--tls-cert` and `--tls-key`: both or neither (a usage error
 * otherwise). A file that cannot be read, or that holds no PEM certificate or
 * key, is an error that names it.
 */
async function readTlsFiles(
  certFile: string | undefined,
  keyFile: string | undefined,
): Promise<ServeTlsOptions | undefined> {
  if (certFile === undefined && keyFile === undefined) return undefined;
  if (certFile === undefined || keyFile === undefined) {
    const [given, missing] = certFile === undefined ? ["--tls-key", "--tls-cert"] : ["--tls-cert", "--tls-key"];
    throw new UsageError(`${given} needs ${missing}: TLS takes both a certificate and its key`);
  }
  const cert = await readPem(certFile, "certificate", /-----BEGIN CERTIFICATE-----/);
  const key = await readPem(keyFile, "private key", /-----BEGIN [A-Z ]*PRIVATE KEY-----/);
  return { cert, key };
}

async function readPem(path: string, what: string, marker: RegExp): Promise<string> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    throw new Error(`Cannot read the TLS ${what} file "${path}": ${(error as Error).message}`, { cause: error });
  }
  if (!marker.test(text)) throw new Error(`Cannot use the TLS ${what} file "${path}": it holds no PEM ${what}`);
  return text;
}
