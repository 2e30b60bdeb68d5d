/**
 * `serve()`: the dfos server. It listens, runs one `Session` per connection
 * on Deno's event loop (no thread or lock per transfer: one slow client never
 * stalls another), and shuts down cleanly.
 *
 * @example Usage
 * ```ts ignore
 * import { serve } from "./server.ts";
 * const server = await serve({ port: 0, root: "./server_storage", users: "./id_passwd.txt" });
 * console.log(server.addr.port);
 * await server.shutdown();
 * ```
 *
 * @module
 */

import { getLogger, type Logger } from "@logtape/logtape";
import { PlainMechanism } from "./auth/plain.ts";
import type { AuthMechanism } from "./auth/mechanism.ts";
import { LocalStorage } from "./local_storage.ts";
import { Session } from "./session.ts";
import { processFigures, ServerStats } from "./stats.ts";
import type { Storage } from "./storage.ts";
import { UserFile } from "./users.ts";

/** The server's name and version, as sent in WELCOME. */
export const SERVER_AGENT = "dfos/0.1.0";

/** Options for {@linkcode serve}. */
export interface ServeOptions {
  /**
   * The address to listen on.
   *
   * @default {"0.0.0.0"}
   */
  hostname?: string;
  /**
   * The port; 0 picks a free one (read it back from `Server.addr`).
   *
   * @default {5000}
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
   * Where to log.
   *
   * @default {getLogger(["dfos", "server"])}
   */
  log?: Logger;
}

/** A running server. */
export interface Server {
  /** The address it listens on. */
  readonly addr: Deno.NetAddr;
  /** The running totals. */
  readonly stats: ServerStats;
  /** Resolves once the server has shut down. */
  readonly finished: Promise<void>;
  /**
   * Stops accepting, closes every connection (transfers in progress fail and
   * their temporary files are removed), and logs the totals. Safe to call twice.
   */
  shutdown(): Promise<void>;
}

/**
 * Starts a server.
 *
 * @param options Address, storage and credentials.
 * @returns The running server, once it listens.
 */
export async function serve(options: ServeOptions): Promise<Server> {
  const log = options.log ?? getLogger(["dfos", "server"]);
  const users = new UserFile(options.users, (message) => log.warn`${message}`);
  const count = await users.load().catch((error) => {
    throw new Error(`Cannot read users file "${options.users}": ${error.message}`, { cause: error });
  });
  const storage = options.storage ?? await LocalStorage.open(options.root, { fsync: options.fsync });
  const mechanisms = new Map<string, AuthMechanism>([["PLAIN", new PlainMechanism(users)]]);
  const stats = new ServerStats();
  const hostname = options.hostname ?? "0.0.0.0";
  const port = options.port ?? 5000;
  let listener: Deno.TcpListener;
  try {
    listener = Deno.listen({ hostname, port });
  } catch (error) {
    throw new Error(`Cannot listen on ${hostname}:${port}: ${(error as Error).message}`, { cause: error });
  }
  const addr = listener.addr as Deno.NetAddr;
  log.info`Serving on ${addr.hostname}:${addr.port}, storage ${options.root}, ${count} users from ${options.users}`;

  const sessions = new Set<Session>();
  const running = new Set<Promise<void>>();
  const context = { storage, mechanisms, stats, log, agent: SERVER_AGENT };
  let stopping = false;

  const accepting = (async () => {
    while (true) {
      let conn: Deno.TcpConn;
      try {
        conn = await listener.accept();
      } catch (error) {
        if (stopping) return;
        if (error instanceof Deno.errors.BadResource) return;
        log.error`Cannot accept a connection: ${error}`;
        continue;
      }
      conn.setNoDelay(true);
      const session = new Session(conn, context);
      sessions.add(session);
      const run: Promise<void> = session.run().finally(() => {
        sessions.delete(session);
        running.delete(run);
      });
      running.add(run);
    }
  })();

  let finish: () => void;
  const finished = new Promise<void>((resolve) => finish = resolve);
  let shuttingDown: Promise<void> | null = null;
  const shutdown = () => {
    shuttingDown ??= (async () => {
      stopping = true;
      listener.close();
      await accepting;
      for (const session of sessions) session.abort();
      await Promise.all(running);
      await storage.abortUploads();
      const totals = stats.snapshot();
      const figures = processFigures();
      log.info`Shut down. Totals: ${totals.connections} connections (peak ${totals.peakConnections}), operations ${
        JSON.stringify(totals.operations)
      }, ${totals.bytesIn} bytes in, ${totals.bytesOut} bytes out, failures ${JSON.stringify(totals.failures)}; CPU ${
        figures.cpuUserSeconds.toFixed(2)
      } s user, ${figures.cpuSystemSeconds.toFixed(2)} s system; RSS ${
        (figures.rss / 2 ** 20).toFixed(1)
      } MiB; system memory ${
        figures.systemMemoryUsed === null
          ? "unknown"
          : `${(figures.systemMemoryUsed / 2 ** 20).toFixed(0)} of ${
            (figures.systemMemoryTotal! / 2 ** 20).toFixed(0)
          } MiB used`
      }`;
      finish();
    })();
    return shuttingDown;
  };
  return { addr, stats, finished, shutdown };
}
