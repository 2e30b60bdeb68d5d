/**
 * `Session`: one client connection on the server, from HELLO to close:
 * version handshake, authentication (three attempts), then any number of
 * requests in turn, each dispatched through `HANDLERS`.
 *
 * On a TLS server, the session first runs the TLS handshake. One timer per
 * session closes a connection that has not completed TLS and logged in within
 * the handshake timeout, or that waits longer than the idle timeout for its
 * next request; the timer does not run while a request is served. When the
 * server drains, an idle session closes at once and a busy one after its
 * request; either says why in an ERROR first.
 *
 * @module
 */

import type { Logger } from "@logtape/logtape";
import { BodyReceiver, sendBody } from "../shared/body.ts";
import { Channel } from "../shared/channel.ts";
import { MAX_FRAME_LENGTH } from "../shared/frames.ts";
import { MAX_CONTROL_LENGTH, type Message, type MessageOf, PROTOCOL_VERSION } from "../shared/messages.ts";
import { printableName } from "../shared/names.ts";
import { DfosError, Status, type StatusCode, statusName } from "../shared/status.ts";
import type { AuthMechanism, AuthStep } from "./auth/mechanism.ts";
import { errorReply } from "./errors.ts";
import { HANDLERS, isRequestType, type Reply, type Request, type RequestType } from "./handlers.ts";
import type { ServerStats } from "./stats.ts";
import type { Storage } from "./storage.ts";

/** Failed logins allowed on one connection before it is closed. */
export const MAX_AUTH_ATTEMPTS = 3;

/** How long a connection the server closes may take to receive its last ERROR before it is cut. */
const CLOSE_GRACE_MS = 1000;

/** The ERROR message of a connection closed because the server is shutting down. */
export const SHUTTING_DOWN = "Server shutting down";

/** The ERROR message of a connection that has not logged in within the handshake timeout. */
export const HANDSHAKE_TIMED_OUT = "Handshake timed out";

/** What every session of a server shares. */
export interface SessionContext {
  /** Where files are kept. */
  storage: Storage;
  /** The mechanisms offered, by name. */
  mechanisms: ReadonlyMap<string, AuthMechanism>;
  /** The server's totals. */
  stats: ServerStats;
  /** Where to log. */
  log: Logger;
  /** The server's name and version, sent in WELCOME. */
  agent: string;
  /**
   * True when the connections are TLS (the server listens with
   * `Deno.listenTls`; a server serves either TLS or plaintext, never both).
   * Nothing is refused on it yet; it is there for what must not cross the
   * wire in clear.
   */
  tls: boolean;
  /** Milliseconds from accept to the end of login before the connection is closed; 0 for no limit. */
  handshakeTimeoutMs: number;
  /** Milliseconds a logged-in connection may wait for its next request before it is closed; 0 for no limit. */
  idleTimeoutMs: number;
}

/** One client connection being served. */
export class Session {
  /** The client's address, `host:port`. */
  readonly remote: string;
  /** True when the connection is TLS. */
  readonly tls: boolean;
  readonly #channel: Channel;
  /** The connection, while its TLS handshake is still to be run; null on plaintext. */
  readonly #tlsConn: Deno.TlsConn | null;
  /** True while the TLS handshake runs: nothing can be said to the client then, only the connection cut. */
  #securing = false;
  readonly #context: SessionContext;
  readonly #opened = performance.now();
  #user: string | null = null;
  #operations = 0;
  #bytesIn = 0;
  #bytesOut = 0;
  /** Where the session is: logging in, waiting for a request, or serving one. */
  #phase: "handshake" | "idle" | "busy" = "handshake";
  /** The session's one timer: the handshake deadline, the idle deadline, or the grace of a close. */
  #timer: ReturnType<typeof setTimeout> | undefined;
  #draining = false;
  #aborted = false;
  /** Set once the connection is being closed; the session then only waits for it. */
  #closing: Promise<void> | null = null;

  /**
   * @param conn The accepted connection; the session owns it.
   * @param context What the server's sessions share.
   */
  constructor(conn: Deno.Conn, context: SessionContext) {
    const addr = conn.remoteAddr as Deno.NetAddr;
    this.remote = `${addr.hostname}:${addr.port}`;
    this.#context = context;
    this.tls = context.tls;
    this.#tlsConn = context.tls ? conn as Deno.TlsConn : null;
    // Until login, nothing larger than a control frame is accepted.
    this.#channel = new Channel(conn, { maxFrameLength: MAX_CONTROL_LENGTH });
  }

  /** Serves the connection until the client leaves or the session is aborted. Never rejects. */
  async run(): Promise<void> {
    const { log, stats } = this.#context;
    stats.connectionOpened();
    log.info`Connection from ${this.remote}`;
    this.#arm(this.#context.handshakeTimeoutMs, () => {
      this.#closeNow(Status.BAD_REQUEST, HANDSHAKE_TIMED_OUT, "HANDSHAKE_TIMEOUT");
    });
    try {
      if (await this.#secure() && await this.#handshake() && await this.#authenticate()) {
        this.#channel.maxFrameLength = MAX_FRAME_LENGTH;
        await this.#serveRequests();
      }
    } catch (error) {
      // Once the server closes the connection on purpose, what fails next is only a consequence.
      if (this.#closing === null && !this.#aborted) await this.#refuse(error);
    } finally {
      if (this.#closing === null) {
        clearTimeout(this.#timer);
        this.#closing = this.#channel.close();
      }
      await this.#closing;
      clearTimeout(this.#timer);
      stats.connectionClosed();
      const seconds = (performance.now() - this.#opened) / 1000;
      log.info`Connection from ${this.remote} closed: user ${this.#user ?? "-"}, ${
        seconds.toFixed(3)
      } s, ${this.#operations} operations, ${this.#bytesIn} bytes in, ${this.#bytesOut} bytes out`;
    }
  }

  /** True while a request is being served (a body may be moving either way). */
  get busy(): boolean {
    return this.#phase === "busy" && this.#closing === null;
  }

  /**
   * Takes no new request: a session that is idle or still logging in is
   * closed now, a busy one once its request is done. Either is sent an ERROR
   * (`BUSY`, "Server shutting down") before the close.
   */
  drain(): void {
    this.#draining = true;
    if (this.#phase !== "busy") this.#closeNow(Status.BUSY, SHUTTING_DOWN);
  }

  /** Closes the connection at once; the transfer in progress, if any, fails and is cleaned up. */
  abort(): void {
    if (this.busy) {
      this.#context.stats.failure("SHUTDOWN");
      this.#context.log.warn`Connection from ${this.remote}: request in flight aborted by the shutdown`;
    }
    this.#aborted = true;
    this.#channel.abort();
  }

  /**
   * Runs the TLS handshake, on a TLS connection, within the handshake
   * timeout. A client that fails it (a plaintext client, or one that refuses
   * the certificate) is logged and closed: no ERROR can reach it.
   *
   * @returns True when the connection may go on (TLS done, or plaintext).
   */
  async #secure(): Promise<boolean> {
    if (this.#tlsConn === null) return true;
    this.#securing = true;
    try {
      await this.#tlsConn.handshake();
      return true;
    } catch (error) {
      if (this.#closing === null && !this.#aborted) {
        this.#context.stats.failure("TLS_HANDSHAKE");
        this.#context.log.info`Connection from ${this.remote} closed: TLS handshake failed: ${
          (error as Error).message
        }`;
        this.#closing = Promise.resolve();
        this.#channel.abort();
      }
      return false;
    } finally {
      this.#securing = false;
    }
  }

  async #handshake(): Promise<boolean> {
    const hello = await this.#channel.receive();
    if (hello === null) return false;
    if (hello.type !== "hello" || hello.protocol !== "dfos") {
      throw new DfosError(Status.BAD_REQUEST, "Expected HELLO: this is a dfos server");
    }
    if (hello.version !== PROTOCOL_VERSION) {
      throw new DfosError(
        Status.VERSION,
        `Protocol version ${hello.version} is not supported: this server speaks version ${PROTOCOL_VERSION}`,
      );
    }
    await this.#channel.send({
      type: "welcome",
      version: PROTOCOL_VERSION,
      agent: this.#context.agent,
      mechanisms: [...this.#context.mechanisms.keys()],
    });
    return true;
  }

  async #authenticate(): Promise<boolean> {
    const { mechanisms, log, stats, storage } = this.#context;
    for (let attempt = 1; attempt <= MAX_AUTH_ATTEMPTS; attempt++) {
      const auth = await this.#channel.receive();
      if (auth === null) return false;
      if (auth.type !== "auth") {
        throw new DfosError(Status.AUTH_REQUIRED, `Cannot serve ${auth.type}: log in first`);
      }
      const mechanism = mechanisms.get(auth.mechanism);
      const exchange = mechanism?.start();
      let step: AuthStep = exchange ? await exchange.step(auth.data) : { kind: "failure" };
      while (step.kind === "continue" && exchange) {
        await this.#channel.send({ type: "auth-continue", data: step.data });
        const response = await this.#channel.expect("auth-response");
        step = await exchange.step(response.data);
      }
      if (step.kind === "success") {
        await storage.prepareUser(step.user);
        this.#user = step.user;
        await this.#channel.send({ type: "auth-ok", user: step.user, data: step.data });
        log.info`Login of ${printableName(step.user)} from ${this.remote} (${auth.mechanism})`;
        return true;
      }
      stats.failure("AUTH_FAILED");
      const left = MAX_AUTH_ATTEMPTS - attempt;
      const why = mechanism ? "unknown user or wrong password" : `mechanism "${auth.mechanism}" is not offered`;
      log.warn`Failed login from ${this.remote} (${auth.mechanism}, attempt ${attempt} of ${MAX_AUTH_ATTEMPTS})`;
      await this.#channel.send({
        type: "error",
        code: Status.AUTH_FAILED,
        message: `Authentication failed: ${why}` +
          (left > 0 ? ` (${left} attempt${left === 1 ? "" : "s"} left)` : "; closing the connection"),
      });
    }
    return false;
  }

  async #serveRequests(): Promise<void> {
    const idleMs = this.#context.idleTimeoutMs;
    while (true) {
      if (this.#closing !== null) return;
      if (this.#draining) {
        this.#closeNow(Status.BUSY, SHUTTING_DOWN); // the request in flight is done; no other may start
        return;
      }
      this.#phase = "idle";
      this.#arm(idleMs, () => {
        this.#closeNow(Status.BAD_REQUEST, `No request for ${idleMs / 1000} s: idle connection closed`, "IDLE_TIMEOUT");
      });
      let message: Message | null;
      try {
        message = await this.#channel.receive();
      } catch (error) {
        if (this.#channel.broken) throw error;
        await this.#sendError(error); // a well-framed message of an unknown type or shape
        continue;
      } finally {
        // Whatever arrived, the idle clock stops until this request is done.
        this.#phase = "busy";
        clearTimeout(this.#timer);
      }
      // Closed meanwhile (idle, or draining: then the client was told BUSY, which answers this request).
      if (message === null || this.#closing !== null) return;
      if (!isRequestType(message.type)) {
        if (message.type === "data" || message.type === "end" || message.type === "abort") {
          throw new DfosError(Status.BAD_REQUEST, `Unexpected ${message.type} outside a body`);
        }
        await this.#sendError(new DfosError(Status.BAD_REQUEST, `Cannot serve ${message.type} here`));
        continue;
      }
      await this.#dispatch(message.type, message as Request<typeof message.type>["message"]);
    }
  }

  async #dispatch<T extends RequestType>(type: T, message: Request<T>["message"]): Promise<void> {
    const row = HANDLERS[type];
    const { log, stats, storage } = this.#context;
    const kind = row.kind(message);
    const put = row.body ? message as MessageOf<"put"> : null;
    const body = put ? new BodyReceiver(this.#channel, { expectedSize: put.size, algorithm: put.digest }) : null;
    const started = performance.now();
    let reply: Reply;
    try {
      reply = await row.handle({ message, user: this.#user!, storage, body });
    } catch (error) {
      if (this.#channel.broken) throw error;
      await this.#sendError(error, kind, this.#name(message));
      // Answer at once, then drop the rest of the body so the next request is read in turn.
      await body?.discard();
      return;
    }
    await this.#channel.send(reply.message);
    let bytesOut = 0;
    if (reply.body) {
      try {
        const { handle, limit, algorithm } = reply.body;
        bytesOut = (await sendBody(this.#channel, handle.read(limit), { algorithm, sizeHint: limit })).size;
      } catch (error) {
        stats.failure("SEND_FAILED");
        log.error`${kind} of ${printableName(this.#name(message))} for ${this.#user} failed while sending: ${error}`;
        return;
      } finally {
        reply.body.handle.close();
      }
    }
    const bytesIn = reply.bytesIn ?? 0;
    this.#operations++;
    this.#bytesIn += bytesIn;
    this.#bytesOut += bytesOut;
    stats.operation(kind, bytesIn, bytesOut);
    if (row.body || reply.body) { // a transfer: one line with its figures
      const seconds = (performance.now() - started) / 1000;
      const bytes = bytesIn + bytesOut;
      const rate = seconds > 0 ? bytes / seconds / 1e6 : 0;
      log.info`${kind} user=${this.#user} name=${printableName(this.#name(message))} bytes=${bytes} duration=${
        seconds.toFixed(3)
      }s rate=${rate.toFixed(1)}MB/s`;
    } else {
      log.info`${kind} user=${this.#user} name=${printableName(this.#name(message))}`;
    }
  }

  /** Sets the session's one timer to run `then` after `ms` (0: never), replacing what it was set to do. */
  #arm(ms: number, then: () => void): void {
    clearTimeout(this.#timer);
    this.#timer = ms > 0 ? setTimeout(then, ms) : undefined;
  }

  /**
   * Closes the connection on the server's own account, after an ERROR that
   * says why; a client that does not take even that within a grace period is
   * cut off.
   */
  #closeNow(code: StatusCode, message: string, failure?: string): void {
    if (this.#closing !== null) return;
    const { log, stats } = this.#context;
    if (failure !== undefined) stats.failure(failure);
    if (this.#securing) {
      // No ERROR can reach a client before TLS is set up: cut it off now.
      log.info`Connection from ${this.remote} closed by the server during the TLS handshake: ${message}`;
      this.#closing = Promise.resolve();
      this.#channel.abort();
      return;
    }
    log.info`Connection from ${this.remote} closed by the server: ${message}`;
    this.#channel.send({ type: "error", code, message }).catch(() => {});
    this.#closing = this.#channel.close();
    this.#arm(CLOSE_GRACE_MS, () => this.#channel.abort());
  }

  #name(message: Request<RequestType>["message"]): string {
    return "name" in message ? message.name : message.prefix;
  }

  async #sendError(error: unknown, kind?: string, name?: string): Promise<void> {
    const { message, unexpected } = errorReply(error);
    this.#context.stats.failure(statusName(message.code));
    const what = kind ? `${kind} of ${printableName(name ?? "")} for ${this.#user}` : `request from ${this.remote}`;
    if (unexpected) this.#context.log.error`${what} failed: ${error}`;
    else this.#context.log.info`${what} refused: ${message.message}`;
    await this.#channel.send(message);
  }

  /** Tells the client why the connection is closing, if it can still hear. */
  async #refuse(error: unknown): Promise<void> {
    if (isConnectionLoss(error)) {
      this.#context.stats.failure("CONNECTION_LOST");
      this.#context.log.info`Connection from ${this.remote} lost: ${(error as Error).message}`;
      return;
    }
    const { message, unexpected } = errorReply(error);
    this.#context.stats.failure(statusName(message.code));
    if (unexpected) this.#context.log.error`Connection from ${this.remote} failed: ${error}`;
    else this.#context.log.info`Connection from ${this.remote} closed: ${message.message}`;
    await this.#channel.send(message).catch(() => {});
  }
}

function isConnectionLoss(error: unknown): boolean {
  return error instanceof Deno.errors.ConnectionReset || error instanceof Deno.errors.BrokenPipe ||
    error instanceof Deno.errors.BadResource || error instanceof Deno.errors.Interrupted ||
    error instanceof Deno.errors.UnexpectedEof;
}
