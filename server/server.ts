/**
 * `serve()`: the dfos server. It listens (in plaintext, or TLS with
 * `Deno.listenTls` when given a certificate), runs one `Session` per connection
 * on Deno's event loop (no thread or lock per transfer: one slow client never
 * stalls another), refuses connections over its cap with a BUSY error, logs
 * its totals every interval, and shuts down cleanly: at once, or letting the
 * requests in flight finish first (a drain).
 *
 * @example Usage
 * ```ts
 * import assert from "node:assert/strict";
 * import { join } from "node:path";
 * import { serve } from "./server.ts";
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(join(dir, "users.txt"), "alice:SCRAM-SHA-256$4096:c2FsdA==$" + "A".repeat(43) + "=:" + "A".repeat(43) + "=\n");
 * const server = await serve({ hostname: "127.0.0.1", port: 0, root: dir, users: join(dir, "users.txt") });
 * assert.ok(server.addr.port > 0);
 * await server.shutdown({ drainMs: 0 });
 * await Deno.remove(dir, { recursive: true });
 * ```
 *
 * @module
 */

import { getLogger, type Logger } from "@logtape/logtape";
import { X509Certificate } from "node:crypto";
import { closeQuietly } from "../shared/close_quietly.ts";
import { AGENT, DEFAULT_LISTEN_HOSTNAME, DEFAULT_PORT } from "../shared/defaults.ts";
import { FrameEncoderStream } from "../shared/frames.ts";
import { encodeMessage, MAX_CONTROL_LENGTH, type MessageOf } from "../shared/messages.ts";
import { MAX_NAME_BYTES } from "../shared/names.ts";
import { bytesOf } from "../shared/pooled_bytes.ts";
import { DfosError, Status } from "../shared/status.ts";
import { PlainMechanism } from "./auth/plain.ts";
import { ScramMechanism } from "./auth/scram.ts";
import type { AuthMechanism } from "./auth/mechanism.ts";
import { LIST_PAGE_ENTRIES } from "./handlers.ts";
import { LocalStorage } from "./local_storage.ts";
import { MeteredStorage } from "./metered_storage.ts";
import { ConnectionCaps, defaultPerAddress, defaultPerUser } from "./connection_caps.ts";
import type { LogCounters } from "./log_counters.ts";
import { Quota } from "./quota.ts";
import { Session } from "./session.ts";
import { addressKey, DEFAULT_DELAY_MAX_MS, LoginThrottle, type LoginThrottleOptions } from "./throttle.ts";
import { type ChunkState, KeptHolds } from "./assemble.ts";
import { ChunkIndexes } from "./chunk_index.ts";
import { ServerMetrics } from "./server_metrics.ts";
import { ServerStats, TotalsReport } from "./stats.ts";
import type { S3BackendOptions } from "./s3/s3_backend.ts";
import type { Storage } from "./storage.ts";
import { UserFile } from "./users.ts";
import { longestWatch } from "./watch.ts";

/** Connections served at once by default; more are refused with BUSY. */
export const DEFAULT_MAX_CONNECTIONS = 1024;

/** Milliseconds a new connection has by default to complete HELLO and login. */
export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000;

/** Milliseconds a logged-in connection may wait between requests by default. */
export const DEFAULT_IDLE_TIMEOUT_MS = 300_000;

/**
 * Milliseconds a transfer may go without moving a message either way by
 * default (a stall, not a total duration): a body moving at least one DATA
 * frame (1 MiB at most) every two minutes, about 70 kbit/s, is never cut.
 */
export const DEFAULT_OP_TIMEOUT_MS = 120_000;

/** The smallest limit on frames other than DATA: room for a request naming a file of 1024 bytes. */
export const MIN_MAX_FRAME_BYTES = 4096;

/** Milliseconds between two totals lines in the log by default. */
export const DEFAULT_STATS_INTERVAL_MS = 60_000;

/** How long a refused connection is kept, at most, to read what the client sent before it is closed. */
const REFUSAL_LINGER_MS = 1000;

/** Refused connections kept at most to be told why; past this, one more is closed at once, untold. */
const MAX_REFUSING = 256;

/** How long the accept loop waits after a failed accept (out of file descriptors) before it tries again. */
const ACCEPT_RETRY_MS = 100;

/** A certificate and its private key, for {@linkcode ServeOptions.tls}. */
export interface ServeTlsOptions {
  /**
   * The certificate chain in PEM, the server's own certificate first. Deno's
   * clients refuse a server certificate that says it is a CA: it needs
   * `basicConstraints=critical,CA:FALSE`.
   */
  cert: string;
  /** The certificate's private key in PEM (PKCS#8, SEC1 EC or PKCS#1 RSA). */
  key: string;
}

/** Options for {@linkcode serve}. */
export interface ServeOptions {
  /**
   * The address to listen on.
   *
   * @default {DEFAULT_LISTEN_HOSTNAME}
   */
  hostname?: string;
  /**
   * The port; 0 picks a free one (read it back from `Server.addr`).
   *
   * @default {DEFAULT_PORT}
   */
  port?: number;
  /** The storage root folder; users' folders are created inside it. */
  root: string;
  /** The credentials file of `user:password` lines. */
  users: string;
  /**
   * Flush each upload to the disk before confirming it.
   *
   * @default {false}
   */
  fsync?: boolean;
  /** Use this storage instead of the local disk under `root`. */
  storage?: Storage;
  /**
   * Keep the files in this S3 bucket (server/s3/s3_backend.ts) instead of
   * the local disk under `root`: plain data, credentials included, so that
   * it crosses into the sandbox. Ignored when `storage` is given.
   */
  s3?: S3BackendOptions;
  /**
   * Serve TLS with this certificate (`Deno.listenTls`): every connection is
   * TLS from its first byte, there is no plaintext fallback. Absent: plaintext.
   */
  tls?: ServeTlsOptions;
  /**
   * Connections served at once. One more is answered at once with an ERROR
   * (`BUSY`, "Server busy: N connections open; try again later") and closed.
   *
   * @default {DEFAULT_MAX_CONNECTIONS}
   */
  maxConnections?: number;
  /**
   * Connections served at once from one client address (an IPv6 address
   * counts by its /64), logged in or not; one more is answered at once with
   * an ERROR (`BUSY`) and closed. At most `maxConnections`.
   *
   * @default {half of maxConnections}
   */
  maxConnectionsPerAddress?: number;
  /**
   * Logged-in connections served at once for one user; one more login is
   * answered with an ERROR (`BUSY`) instead of AUTH-OK, and closed. At most
   * `maxConnections`.
   *
   * @default {a quarter of maxConnections}
   */
  maxConnectionsPerUser?: number;
  /**
   * Milliseconds a connection has to complete HELLO and login, from the
   * moment it is accepted; then it is told ("Handshake timed out") and
   * closed. 0 for no limit.
   *
   * @default {DEFAULT_HANDSHAKE_TIMEOUT_MS}
   */
  handshakeTimeoutMs?: number;
  /**
   * Milliseconds a logged-in connection may go without a request, counted
   * from the end of its last request; then it is closed. The clock does not
   * run while a request is served, however long its body takes. 0 for no limit.
   *
   * @default {DEFAULT_IDLE_TIMEOUT_MS}
   */
  idleTimeoutMs?: number;
  /**
   * Milliseconds a request (an upload's body, a download's, any reply) may go
   * without a message moving either way: a client that stops sending
   * mid-body, or stops reading a download or its replies, is told
   * ("Transfer stalled: ...") and closed, and its upload dropped. A slow
   * transfer that keeps moving is never cut. 0 for no limit.
   *
   * @default {DEFAULT_OP_TIMEOUT_MS}
   */
  opTimeoutMs?: number;
  /**
   * The largest frame of any type but DATA taken from a client, from
   * {@linkcode MIN_MAX_FRAME_BYTES} to `MAX_CONTROL_LENGTH` (64 KiB, the
   * protocol's own limit). Before login it bounds every frame, checked from the
   * header before anything is read; after login a larger request is refused
   * with `TOO_LARGE` and the session goes on. DATA frames keep the protocol's
   * size (1 MiB of payload), which every client sends.
   *
   * @default {MAX_CONTROL_LENGTH}
   */
  maxFrameBytes?: number;
  /**
   * The longest name an upload may create, in UTF-8 bytes, from 1 to
   * `MAX_NAME_BYTES` (1024, the protocol's limit, which clients check too).
   *
   * @default {MAX_NAME_BYTES}
   */
  maxNameBytes?: number;
  /**
   * Entries at most per LISTING page (a page is also cut to fit a 64 KiB frame).
   *
   * @default {LIST_PAGE_ENTRIES}
   */
  listPageEntries?: number;
  /**
   * Bytes each user's files may take in all (server/quota.ts); an upload that
   * would go over is refused, at once when its size is announced. 0 for no
   * limit.
   *
   * @default {0}
   */
  quotaBytes?: number;
  /**
   * Files and folders each user may have in all (server/quota.ts); 0 for no
   * limit.
   *
   * @default {one per 16 KiB of quotaBytes (QUOTA_BYTES_PER_ENTRY), at least 1; 0 without quotaBytes}
   */
  quotaEntries?: number;
  /**
   * The largest file an upload may store, in bytes; 0 for no limit.
   *
   * @default {0}
   */
  maxFileBytes?: number;
  /**
   * Milliseconds between two totals lines in the log (there is always one at
   * shutdown). 0 for none but that one.
   *
   * @default {DEFAULT_STATS_INTERVAL_MS}
   */
  statsIntervalMs?: number;
  /**
   * Milliseconds a kept upload (an `assemble` cut short) is kept after it was
   * last written; swept at start-up and every quarter of it (at most every
   * {@linkcode MAX_SWEEP_INTERVAL_MS}).
   *
   * @default {DEFAULT_PARTIAL_TTL_MS}
   */
  partialTtlMs?: number;
  /**
   * What failed logins cost (`LoginThrottle`): free failures, the growing
   * delay of answers and its cap, the failures that lock an address out and
   * for how long. The cap is cut to half the handshake timeout, so that a
   * held answer to a right password still arrives in time.
   *
   * @default {{}} (the throttle's defaults: 5 free failures, 250 ms doubling to 8 s, 20 failures lock an address out for 15 min)
   */
  loginThrottle?: LoginThrottleOptions;
  /**
   * Where to log.
   *
   * @default {getLogger(["dfos", "server"])}
   */
  log?: Logger;
  /** What the log lost (records dropped or suppressed), for the totals line; nothing is said when omitted. */
  logCounters?: LogCounters;
  /**
   * Where to count for Prometheus (server/server_metrics.ts); the sandbox
   * passes the process's, which answers `/metrics`.
   *
   * @default {new ServerMetrics()}
   */
  metrics?: ServerMetrics;
  /**
   * Called once the server has its address, before it logs anything: the
   * sandbox's worker says what it may do then, so that a server that cannot
   * listen (its port in use) writes no line but its error.
   */
  onListening?: () => void;
}

/** Options for {@linkcode Server.shutdown}. */
export interface ShutdownOptions {
  /**
   * Milliseconds the requests in flight may take to finish (a drain). Idle
   * connections and those still logging in are closed at once either way;
   * what is still running at the deadline is aborted. 0 aborts everything now.
   *
   * @default {0}
   */
  drainMs?: number;
}

/** A running server. */
export interface Server {
  /** The address it listens on. */
  readonly addr: Deno.NetAddr;
  /** True when it serves TLS. */
  readonly tls: boolean;
  /** The running totals. */
  readonly stats: ServerStats;
  /** What it counts for Prometheus. */
  readonly metrics: ServerMetrics;
  /** Resolves once the server has shut down. */
  readonly finished: Promise<void>;
  /**
   * Stops accepting and closes every connection, then logs the totals. With
   * `drainMs`, requests in flight may finish first (a new one is refused with
   * BUSY); whatever is aborted leaves no temporary file and the previous
   * version of its file. A second call cuts a drain short: everything still
   * open is aborted at once. Resolves when the server has shut down.
   *
   * @param options How long requests in flight may take to finish.
   */
  shutdown(options?: ShutdownOptions): Promise<void>;
}

/** How long a kept upload is kept by default: 24 hours. */
export const DEFAULT_PARTIAL_TTL_MS = 24 * 60 * 60 * 1000;

/** The longest time between two sweeps of kept uploads. */
export const MAX_SWEEP_INTERVAL_MS = 10 * 60 * 1000;

/**
 * Starts a server.
 *
 * @param options Address, storage, credentials and TLS certificate.
 * @returns The running server, once it listens.
 * @throws {Error} when the users file cannot be read, the address cannot be
 * listened on, or the TLS certificate and key cannot be used. The address is
 * taken first: nothing is logged before it.
 */
export async function serve(options: ServeOptions): Promise<Server> {
  const log = options.log ?? getLogger(["dfos", "server"]);
  const limits = checkLimits(options);
  const partialTtlMs = options.partialTtlMs ?? DEFAULT_PARTIAL_TTL_MS;
  if (!(partialTtlMs >= 1000)) throw new RangeError(`partialTtlMs must be at least 1000, not ${partialTtlMs}`);
  const hostname = options.hostname ?? DEFAULT_LISTEN_HOSTNAME;
  const port = options.port ?? DEFAULT_PORT;
  const tls = options.tls !== undefined;
  // The address first: a server that cannot have it (a second one on the port) says nothing else.
  const listener = listen(hostname, port, options.tls);
  options.onListening?.();
  const metrics = options.metrics ?? new ServerMetrics();
  let users: UserFile;
  let count: number;
  let storage: Storage;
  try {
    users = new UserFile(options.users, (message) => log.warn`${message}`);
    count = await users.load().catch((error) => {
      throw new Error(`Cannot read users file "${options.users}": ${error.message}`, { cause: error });
    });
    storage = new MeteredStorage(options.storage ?? await openStorage(options, log), metrics);
  } catch (error) {
    listener.close();
    throw error;
  }
  // Offered in this order: SCRAM-SHA-256 first (the password never crosses the wire), then PLAIN (over TLS only).
  const mechanisms = new Map<string, AuthMechanism>(
    [new ScramMechanism(users), new PlainMechanism(users)].map((mechanism) => [mechanism.name, mechanism]),
  );
  const stats = new ServerStats();
  const logCounters = options.logCounters;
  const report = new TotalsReport(stats, { logLosses: () => logCounters?.describe() ?? "" });
  const maxConnections = options.maxConnections ?? DEFAULT_MAX_CONNECTIONS;
  const caps = new ConnectionCaps({
    total: maxConnections,
    perAddress: options.maxConnectionsPerAddress ?? defaultPerAddress(maxConnections),
    perUser: options.maxConnectionsPerUser ?? defaultPerUser(maxConnections),
  });
  const addr = listener.addr as Deno.NetAddr;
  const where = `${addr.hostname}:${addr.port}`;
  const storedIn = options.storage === undefined && options.s3 !== undefined ? storeLabel(options.s3) : options.root;
  const serving = `storage ${storedIn}, ${count} users from ${options.users}`;
  if (options.tls !== undefined) {
    log.info`Serving TLS on ${where}, ${serving}`;
    for (const line of describeCertificate(options.tls.cert)) log[line.level]`${line.message}`;
  } else {
    log.info`Serving on ${where} (plaintext, no TLS), ${serving}`;
  }

  const sessions = new Set<Session>();
  const running = new Set<Promise<void>>();
  const refusing = new Map<Deno.Conn, Promise<void>>();
  const chunks: ChunkState = { indexes: new ChunkIndexes(storage), holds: new KeptHolds() };
  const context = {
    chunks,
    storage,
    mechanisms,
    users,
    stats,
    metrics,
    log,
    agent: AGENT,
    tls,
    throttle: loginThrottle(options),
    caps,
    handshakeTimeoutMs: options.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS,
    idleTimeoutMs: options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS,
    opTimeoutMs: options.opTimeoutMs ?? DEFAULT_OP_TIMEOUT_MS,
    maxControlLength: limits.maxFrameBytes,
    limits: {
      // The lesser of --max-name and what the backend can keep: a name too long is refused alike on every backend.
      maxNameBytes: Math.min(limits.maxNameBytes, storage.maxNameBytes ?? limits.maxNameBytes),
      listPageEntries: limits.listPageEntries,
      // Answered well within the timeouts, for a proxy set to them (the session itself never cuts a held watch).
      maxWatchMs: longestWatch([
        options.opTimeoutMs ?? DEFAULT_OP_TIMEOUT_MS,
        options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS,
      ]),
      quota: new Quota(storage, {
        quotaBytes: limits.quotaBytes,
        quotaEntries: options.quotaEntries,
        maxFileBytes: limits.maxFileBytes,
        onRefusal: (limit) => metrics.quotaRefused(limit),
        // Kept uploads found when a user's usage is first counted (those of an earlier run) hold their room again.
        onAccount: async (user, reserve) => {
          for (const kept of await storage.keptUploads(user).catch(() => [])) {
            try {
              chunks.holds.hold(user, kept.name, kept.key, reserve(kept.name, kept.size));
            } catch {
              // over the quota already: it is not held, and finishing it is checked as any upload
            }
          }
        },
      }),
    },
  };
  let stopping = false;
  let sweeping: Promise<void> = Promise.resolve();
  const sweep = () => {
    sweeping = sweeping.then(async () => {
      try {
        const dropped = await storage.sweepKept(Date.now() - partialTtlMs);
        await chunks.holds.prune(storage);
        if (dropped > 0) log.info`Dropped ${dropped} kept uploads older than ${partialTtlMs / 1000} s`;
      } catch (error) {
        // A storage without kept uploads (UNSUPPORTED) has nothing to sweep.
        if (!(error instanceof DfosError && error.code === Status.UNSUPPORTED)) {
          log.error`Cannot sweep kept uploads: ${error}`;
        }
      }
    });
  };
  sweep();
  const sweepTimer = setInterval(sweep, Math.max(1, Math.min(partialTtlMs / 4, MAX_SWEEP_INTERVAL_MS)));
  const statsIntervalMs = options.statsIntervalMs ?? DEFAULT_STATS_INTERVAL_MS;
  const statsTimer = statsIntervalMs > 0
    ? setInterval(() => log.info`Totals: ${report.line()}`, statsIntervalMs)
    : null;

  const accepting = (async () => {
    while (true) {
      let conn: Deno.TcpConn | Deno.TlsConn;
      try {
        conn = await listener.accept();
      } catch (error) {
        if (stopping) return;
        if (error instanceof Deno.errors.BadResource) return;
        log.error`Cannot accept a connection: ${error}`;
        // Most likely out of file descriptors: let connections close rather than spin.
        await new Promise((resolve) => setTimeout(resolve, ACCEPT_RETRY_MS));
        continue;
      }
      if (stopping) {
        closeQuietly(conn);
        return;
      }
      const { hostname, port } = conn.remoteAddr as Deno.NetAddr;
      // The connection's records carry its address: the log limits and summarises them per address.
      const address = addressKey(hostname);
      const refusal = caps.open(address);
      if (refusal !== null) {
        const busy = refusal.message;
        stats.failure("BUSY");
        metrics.connectionRefused(refusal.cap === "total" ? "busy" : "per_address");
        log.with({ address }).warn`Connection from ${hostname}:${port} refused: ${busy}`;
        if (refusing.size >= MAX_REFUSING) closeQuietly(conn); // a flood of connections: no ERROR for each
        else refusing.set(conn, refuse(conn, busy).finally(() => refusing.delete(conn)));
        continue;
      }
      // A TlsConn has no setNoDelay; its TLS handshake is run by the session, within the handshake timeout.
      if ("setNoDelay" in conn) conn.setNoDelay(true);
      const session = new Session(conn, { ...context, log: log.with({ address }) });
      sessions.add(session);
      metrics.connectionOpened();
      const run: Promise<void> = session.run().finally(() => {
        metrics.connectionClosed();
        caps.close(address);
        sessions.delete(session);
        running.delete(run);
      });
      running.add(run);
    }
  })();

  let finish: () => void;
  const finished = new Promise<void>((resolve) => finish = resolve);
  let cutShort: () => void;
  const cutShortRequested = new Promise<void>((resolve) => cutShort = resolve);
  let shuttingDown: Promise<void> | null = null;
  const shutdown = (shutdownOptions: ShutdownOptions = {}) => {
    if (shuttingDown !== null) {
      cutShort();
      return shuttingDown;
    }
    shuttingDown = (async () => {
      stopping = true;
      if (statsTimer !== null) clearInterval(statsTimer);
      clearInterval(sweepTimer);
      listener.close();
      await accepting;
      await sweeping;
      for (const conn of refusing.keys()) closeQuietly(conn);
      const drainMs = shutdownOptions.drainMs ?? 0;
      if (drainMs > 0 && sessions.size > 0) {
        const busy = [...sessions].filter((session) => session.busy).length;
        log.info`Shutting down: ${sessions.size - busy} idle connections closed, ${busy} in flight given ${
          drainMs / 1000
        } s to finish`;
        for (const session of sessions) session.drain();
        let timer: ReturnType<typeof setTimeout> | undefined;
        const deadline = new Promise<void>((resolve) => timer = setTimeout(resolve, drainMs));
        await Promise.race([Promise.all(running), deadline, cutShortRequested]);
        clearTimeout(timer);
      }
      if (sessions.size > 0) {
        const busy = [...sessions].filter((session) => session.busy).length;
        const why = drainMs > 0 ? "not finished in time" : "no drain";
        if (busy > 0) log.warn`Shutting down: aborting ${busy} in flight (${why})`;
        for (const session of sessions) session.abort();
      }
      await Promise.all(running);
      await Promise.all(refusing.values());
      await storage.abortUploads().catch((error) => {
        log.error`Cannot remove the temporary files of unfinished uploads: ${error}`;
      });
      log.info`Shut down. Totals: ${report.line()}`;
      finish();
    })();
    return shuttingDown;
  };
  return { addr, tls, stats, metrics, finished, shutdown };
}

/** The storage `serve` opens: the S3 bucket if one is named, else the local disk under the root. */
async function openStorage(options: ServeOptions, log: Logger): Promise<Storage> {
  if (options.s3 === undefined) return await LocalStorage.open(options.root, { fsync: options.fsync });
  // Loaded only here: a server on the local disk does not load the S3 modules.
  const { openS3Backend } = await import("./s3/s3_backend.ts");
  return await openS3Backend(options.s3, (error) => {
    log.error`Cannot clean up the multipart uploads of stopped servers: ${error}`;
  });
}

/** How the log names a bucket: `s3://BUCKET/PREFIX at ENDPOINT`. */
function storeLabel(s3: S3BackendOptions): string {
  return `s3://${s3.bucket}${s3.prefix ? "/" + s3.prefix : ""} at ${s3.endpoint}`;
}

/**
 * Listens with TLS when given a certificate, in plaintext otherwise. Accepting
 * does not run the TLS handshake: the session does, on the connection's clock.
 */
function listen(
  hostname: string,
  port: number,
  tls: ServeTlsOptions | undefined,
): Deno.TcpListener | Deno.TlsListener {
  if (tls === undefined) {
    try {
      return Deno.listen({ hostname, port });
    } catch (error) {
      throw new Error(`Cannot listen on ${hostname}:${port}: ${(error as Error).message}`, { cause: error });
    }
  }
  try {
    return Deno.listenTls({ hostname, port, cert: tls.cert, key: tls.key });
  } catch (error) {
    const message = (error as Error).message;
    if (isAddressError(error)) {
      throw new Error(`Cannot listen with TLS on ${hostname}:${port}: ${message}`, { cause: error });
    }
    const why = /KeyMismatch/.test(message) ? "the private key does not belong to the certificate" : message;
    throw new Error(`Cannot use the TLS certificate and key: ${why}`, { cause: error });
  }
}

function isAddressError(error: unknown): boolean {
  return error instanceof Deno.errors.AddrInUse || error instanceof Deno.errors.AddrNotAvailable ||
    error instanceof Deno.errors.PermissionDenied || error instanceof Deno.errors.NotCapable;
}

/**
 * What the log says about the server's certificate at start-up: whom it names
 * and until when, and a warning for one that clients will refuse (expired,
 * not yet valid, or a CA certificate, which Deno's clients refuse as
 * `CaUsedAsEndEntity`).
 */
function describeCertificate(pem: string): { level: "info" | "warn"; message: string }[] {
  let certificate: X509Certificate;
  try {
    certificate = new X509Certificate(pem);
  } catch (error) {
    return [{ level: "warn", message: `Cannot read the TLS certificate's details: ${(error as Error).message}` }];
  }
  const names = certificate.subjectAltName ?? `no subjectAltName, subject ${certificate.subject}`;
  const lines: { level: "info" | "warn"; message: string }[] = [
    { level: "info", message: `TLS certificate for ${names}, valid until ${certificate.validToDate.toISOString()}` },
  ];
  const now = new Date();
  if (certificate.validToDate < now) {
    lines.push({ level: "warn", message: "The TLS certificate has expired: clients will refuse it" });
  } else if (certificate.validFromDate > now) {
    lines.push({ level: "warn", message: "The TLS certificate is not valid yet: clients will refuse it" });
  }
  if (certificate.ca) {
    lines.push({
      level: "warn",
      message: "The TLS certificate is a CA certificate (basicConstraints CA:TRUE): clients will refuse it; " +
        "make one with basicConstraints=critical,CA:FALSE",
    });
  }
  return lines;
}

/** The server's throttle of failed logins, its delay cut to half the handshake timeout. */
function loginThrottle(options: ServeOptions): LoginThrottle {
  const handshakeMs = options.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS;
  const delayMaxMs = options.loginThrottle?.delayMaxMs ?? DEFAULT_DELAY_MAX_MS;
  return new LoginThrottle({
    ...options.loginThrottle,
    delayMaxMs: handshakeMs > 0 ? Math.min(delayMaxMs, Math.floor(handshakeMs / 2)) : delayMaxMs,
  });
}

/** The options of {@linkcode ServeOptions} that limit requests. */
export type RequestLimitOptions = Pick<
  ServeOptions,
  "opTimeoutMs" | "maxFrameBytes" | "maxNameBytes" | "listPageEntries" | "quotaBytes" | "quotaEntries" | "maxFileBytes"
>;

/** The limits of {@linkcode ServeOptions}, defaults filled in; a value out of its range is a `RangeError`. */
function checkLimits(options: ServeOptions): Required<Omit<RequestLimitOptions, "opTimeoutMs" | "quotaEntries">> {
  const limits = {
    maxFrameBytes: options.maxFrameBytes ?? MAX_CONTROL_LENGTH,
    maxNameBytes: options.maxNameBytes ?? MAX_NAME_BYTES,
    listPageEntries: options.listPageEntries ?? LIST_PAGE_ENTRIES,
    quotaBytes: options.quotaBytes ?? 0,
    maxFileBytes: options.maxFileBytes ?? 0,
  };
  const ranges: Record<keyof typeof limits, [number, number]> = {
    maxFrameBytes: [MIN_MAX_FRAME_BYTES, MAX_CONTROL_LENGTH],
    maxNameBytes: [1, MAX_NAME_BYTES],
    listPageEntries: [1, Number.MAX_SAFE_INTEGER],
    quotaBytes: [0, Number.MAX_SAFE_INTEGER],
    maxFileBytes: [0, Number.MAX_SAFE_INTEGER],
  };
  for (const [key, [min, max]] of Object.entries(ranges) as [keyof typeof limits, [number, number]][]) {
    const value = limits[key];
    if (!Number.isSafeInteger(value) || value < min || value > max) {
      throw new RangeError(`Cannot serve with ${key} ${value}: not a whole number from ${min} to ${max}`);
    }
  }
  const entries = options.quotaEntries;
  if (entries !== undefined && (!Number.isSafeInteger(entries) || entries < 0)) {
    throw new RangeError(`Cannot serve with quotaEntries ${entries}: not a whole number from 0`);
  }
  return limits;
}

/** Encodes one message as the bytes of its frame, with the same encoder the sessions use. */
async function frameBytes(message: MessageOf<"error">): Promise<Uint8Array> {
  const frames = ReadableStream.from([encodeMessage(message)]).pipeThrough(new FrameEncoderStream());
  // A control frame leaves the encoder as one chunk of plain bytes.
  const [chunk, ...rest] = (await Array.fromAsync(frames)).map(bytesOf);
  return rest.length === 0 ? chunk : Uint8Array.from([chunk, ...rest].flatMap((part) => [...part]));
}

/**
 * Sends a connection over a cap its ERROR (BUSY, with `busy` as its message), then reads and drops what the
 * client sends (its HELLO) until it hangs up, for a second at most. Closing
 * with unread bytes would make the kernel reset the connection, and the
 * client could lose the ERROR before reading it.
 */
async function refuse(conn: Deno.Conn, busy: string): Promise<void> {
  const timer = setTimeout(() => closeQuietly(conn), REFUSAL_LINGER_MS);
  try {
    const frame = await frameBytes({ type: "error", code: Status.BUSY, message: busy });
    for (let offset = 0; offset < frame.length;) offset += await conn.write(frame.subarray(offset));
    await conn.closeWrite();
    const scratch = new Uint8Array(4096);
    while (await conn.read(scratch) !== null) {
      // Dropped: a refused client gets nothing but the ERROR.
    }
  } catch {
    // The client went away, or its time is up.
  } finally {
    clearTimeout(timer);
    closeQuietly(conn);
  }
}
