/**
 * `Session`: one client connection on the server, from its first byte to its
 * close. It is one state machine, in one field:
 *
 *     securing -> login -> idle <-> busy -> last
 *                   (any of these) -> closing | ended
 *
 * `securing` runs the TLS handshake (TLS servers only) and `login` HELLO and
 * AUTH (`server/login.ts`), both on the handshake deadline. `idle` waits for
 * a request, on the idle deadline. `busy` serves one: its row in `HANDLERS`,
 * with the request's body if the row receives one and the reply's if it
 * sends one, on the request's clock (a reply or body that does not move for
 * the op timeout ends the connection). `last` is `busy` after the server
 * began to drain: the session closes once the request is answered. `closing`
 * is a close on the server's account: an ERROR that says why, then the close,
 * cut off after a grace period if the client does not take it. `ended`: the
 * connection was cut (an abort, a failed TLS handshake). A session never
 * leaves `closing` or `ended`, and holds one timer at a time
 * (`server/session_clock.ts`).
 *
 * A logged-in session ends at its next request once its user is removed
 * from the users file or changes its password.
 *
 * @module
 */

import type { Logger } from "@logtape/logtape";
import { BodyReceiver, sendBody } from "../shared/body.ts";
import { Channel } from "../shared/channel.ts";
import { MAX_FRAME_LENGTH } from "../shared/frames.ts";
import type { Message, MessageOf } from "../shared/messages.ts";
import { excerpt, printableName } from "../shared/names.ts";
import { DfosError, Status, type StatusCode, statusName } from "../shared/status.ts";
import { errorReply, isConnectionLoss } from "./errors.ts";
import { HANDLERS, isRequest, type Reply, type RequestLimits, type RequestType } from "./handlers.ts";
import { Login, type LoginContext } from "./login.ts";
import { SessionClock } from "./session_clock.ts";
import { addressKey } from "./throttle.ts";
import type { UserFile } from "./users.ts";

/** How long a connection the server closes may take to receive its last ERROR before it is cut. */
const CLOSE_GRACE_MS = 1000;

/** The ERROR message of a connection closed because the server is shutting down. */
export const SHUTTING_DOWN = "Server shutting down";

/** The ERROR message of a connection that has not logged in within the handshake timeout. */
export const HANDSHAKE_TIMED_OUT = "Handshake timed out";

/** What every session of a server shares: what a login needs, and the rest. */
export interface SessionContext extends LoginContext {
  /** The users file the mechanisms check against: a session whose user is removed or changed there ends. */
  users: UserFile;
  /** Milliseconds from accept to the end of login before the connection is closed; 0 for no limit. */
  handshakeTimeoutMs: number;
  /** Milliseconds a logged-in connection may wait for its next request before it is closed; 0 for no limit. */
  idleTimeoutMs: number;
  /**
   * Milliseconds a request (an upload's body, a download's, a reply) may go
   * without a message moving either way before the connection is closed; 0
   * for no limit.
   */
  opTimeoutMs: number;
  /**
   * The largest frame of any type but DATA taken from the client (before
   * login, the largest frame of all); at most `MAX_CONTROL_LENGTH`.
   */
  maxControlLength: number;
  /** The limits the request handlers apply: name length, listing page, quota, largest file. */
  limits: RequestLimits;
}

/** Where a session is; see the module's documentation. */
type SessionState = "securing" | "login" | "idle" | "busy" | "last" | "closing" | "ended";

/** One client connection being served. */
export class Session {
  /** The client's address, `host:port`. */
  readonly remote: string;
  /** True when the connection is TLS. */
  readonly tls: boolean;
  readonly #channel: Channel;
  /** The connection, while its TLS handshake is still to be run; null on plaintext. */
  readonly #tlsConn: Deno.TlsConn | null;
  readonly #context: SessionContext;
  /** The client's address as the throttle counts it (an IPv6 address by its /64). */
  readonly #address: string;
  readonly #clock = new SessionClock();
  /** Aborted when the server closes or cuts the connection: a login under way stops waiting. */
  readonly #stop = new AbortController();
  readonly #opened = performance.now();
  #state: SessionState;
  /** Settles once the connection is closed, after the session entered `closing`. */
  #closed: Promise<void> = Promise.resolve();
  /** The context's log; once logged in, its records carry the user (`log.with`). */
  #log: Logger;
  #user: string | null = null;
  /** What the user's login was checked against: a request after it changed in the users file ends the session. */
  #credential = "";
  #operations = 0;
  #bytesIn = 0;
  #bytesOut = 0;

  /**
   * @param conn The accepted connection; the session owns it.
   * @param context What the server's sessions share.
   */
  constructor(conn: Deno.Conn, context: SessionContext) {
    const addr = conn.remoteAddr as Deno.NetAddr;
    this.remote = `${addr.hostname}:${addr.port}`;
    this.#address = addressKey(addr.hostname);
    this.#context = context;
    this.#log = context.log;
    this.tls = context.tls;
    this.#tlsConn = context.tls ? conn as Deno.TlsConn : null;
    this.#state = context.tls ? "securing" : "login";
    // Until login, nothing larger than a control frame is accepted.
    const control = context.maxControlLength;
    this.#channel = new Channel(conn, { maxFrameLength: control, maxControlLength: control });
  }

  /** Serves the connection until the client leaves or the session is aborted. Never rejects. */
  async run(): Promise<void> {
    const { stats } = this.#context;
    stats.connectionOpened();
    this.#log.info`Connection from ${this.remote}`;
    this.#clock.deadline(this.#context.handshakeTimeoutMs, () => {
      this.#closeNow(Status.BAD_REQUEST, HANDSHAKE_TIMED_OUT, "HANDSHAKE_TIMEOUT");
    });
    try {
      if (await this.#login()) {
        this.#channel.maxFrameLength = MAX_FRAME_LENGTH;
        await this.#serveRequests();
      }
    } catch (error) {
      // Once the server closes the connection on purpose, what fails next is only a consequence.
      if (this.#open) {
        this.#clock.deadline(CLOSE_GRACE_MS, () => this.#channel.abort()); // the last word has as long as a close
        await this.#refuse(error);
      }
    } finally {
      if (this.#open) this.#close();
      await this.#closed;
      this.#clock.stop();
      if (this.#user !== null) this.#context.caps.logout(this.#user);
      stats.connectionClosed();
      const seconds = (performance.now() - this.#opened) / 1000;
      this.#log.info`Connection from ${this.remote} closed: user ${this.#user ?? "-"}, ${
        seconds.toFixed(3)
      } s, ${this.#operations} operations, ${this.#bytesIn} bytes in, ${this.#bytesOut} bytes out`;
    }
  }

  /** True while a request is being served (a body may be moving either way). */
  get busy(): boolean {
    return this.#state === "busy" || this.#state === "last";
  }

  /**
   * Takes no new request: a session that is idle or still logging in is
   * closed now, a busy one once its request is done. Either is sent an ERROR
   * (`BUSY`, "Server shutting down") before the close.
   */
  drain(): void {
    if (this.busy) this.#state = "last";
    else this.#closeNow(Status.BUSY, SHUTTING_DOWN);
  }

  /** Closes the connection at once; the transfer in progress, if any, fails and is cleaned up. */
  abort(): void {
    if (this.busy) {
      this.#context.stats.failure("SHUTDOWN");
      this.#log.warn`Connection from ${this.remote}: request in flight aborted by the shutdown`;
    }
    this.#state = "ended";
    this.#stop.abort();
    this.#channel.abort();
  }

  /** True until the server closes or cuts the connection. */
  get #open(): boolean {
    return this.#state !== "closing" && this.#state !== "ended";
  }

  /**
   * Runs the login: the TLS handshake if any, HELLO, AUTH.
   *
   * @returns True once a user is logged in (the session is then `idle`).
   */
  async #login(): Promise<boolean> {
    const login = new Login(this.#channel, this.#context, {
      remote: this.remote,
      address: this.#address,
      signal: this.#stop.signal,
    });
    if (this.#tlsConn !== null) {
      const secured = await login.secure(this.#tlsConn);
      if (this.#state !== "securing") return false; // cut meanwhile (the deadline, or a shutdown)
      if (!secured) {
        this.#state = "ended"; // no ERROR can reach a client that failed TLS
        return false;
      }
      this.#state = "login";
    }
    if (!await login.greet()) return false;
    const loggedIn = await login.authenticate();
    if (loggedIn === null) return false;
    this.#user = loggedIn.user;
    this.#credential = loggedIn.credential;
    // The log's per-address limit passes a logged-in user's own work (server/log_limiter.ts), not refusals.
    this.#log = this.#log.with({ user: loggedIn.user });
    return this.#state === "login";
  }

  /**
   * Serves requests in turn until the client leaves or the session closes.
   * A request that cannot be read (an unknown type, a malformed message, a
   * control frame over the limit) is refused and the session goes on; body
   * frames that follow it at once are its body (a `put` refused so), and are
   * dropped. Body frames anywhere else close the connection.
   */
  async #serveRequests(): Promise<void> {
    const idleMs = this.#context.idleTimeoutMs;
    /** True when the last request was refused before it could be read: a body that follows is its own. */
    let unread = false;
    while (true) {
      if (this.#state === "last") {
        this.#closeNow(Status.BUSY, SHUTTING_DOWN); // the request in flight is done; no other may start
        return;
      }
      if (this.#state !== "login" && this.#state !== "busy") return; // closed meanwhile
      this.#state = "idle";
      this.#clock.deadline(idleMs, () => {
        this.#closeNow(Status.BAD_REQUEST, `No request for ${idleMs / 1000} s: idle connection closed`, "IDLE_TIMEOUT");
      });
      let message: Message | null;
      try {
        message = await this.#channel.receive();
      } catch (error) {
        if (this.#channel.broken || !this.#startRequest()) throw error;
        this.#watch(() => false);
        await this.#sendError(error);
        unread = true;
        continue;
      }
      // Closed meanwhile (idle, or draining: then the client was told BUSY, which answers this request).
      if (message === null || !this.#startRequest()) return;
      if (!await this.#stillValid()) return; // the user was removed or changed meanwhile
      const follows = unread;
      unread = false;
      if (isRequest(message)) {
        await this.#dispatch(message.type, message);
        continue;
      }
      // Until the next request is awaited, the request's clock runs: a client that does not take its reply is cut off.
      this.#watch(() => false);
      if (message.type === "data" || message.type === "end" || message.type === "abort") {
        if (!follows) throw new DfosError(Status.BAD_REQUEST, `Unexpected ${message.type} outside a body`);
        await this.#dropBody(message);
      } else {
        await this.#sendError(new DfosError(Status.BAD_REQUEST, `Cannot serve ${message.type} here`));
      }
    }
  }

  /**
   * Leaves `idle` for `busy` once a request (or what stands for one) has
   * arrived: the idle deadline stops until the request is done.
   *
   * @returns False when the session was closed meanwhile.
   */
  #startRequest(): boolean {
    if (this.#state !== "idle") return false;
    this.#state = "busy";
    this.#clock.stop();
    return true;
  }

  /**
   * Serves one request through its row: takes the body the row receives,
   * runs the handler, sends its reply and the body the row sends, counts and
   * logs it. A refusal is answered at once, and the rest of the request's
   * body is then read and dropped so the next request is read in turn.
   */
  async #dispatch<T extends RequestType>(type: T, message: MessageOf<T>): Promise<void> {
    const row = HANDLERS[type];
    const { stats, storage, limits } = this.#context;
    const kind = row.kind(message);
    const subject = row.subject(message);
    const announced = row.receives?.(message);
    const body = announced === undefined ? null : new BodyReceiver(this.#channel, {
      expectedSize: announced.size,
      algorithm: announced.algorithm,
      senderMayFail: false,
    });
    const started = performance.now();
    // The request's clock stops while the server works: in the handler, once the request's body (if any) has ended
    // (END or ABORT). It runs while the client is to send a body or take a reply.
    let serverWorking = () => body === null || body.finished;
    this.#watch(() => serverWorking());
    let reply: Reply;
    try {
      reply = await row.handle({ message, user: this.#user!, storage, body, limits });
      if (row.sends !== (reply.body !== undefined)) {
        reply.body?.close();
        throw new Error(
          `Cannot serve "${type}": the reply of its handler does not match its row (sends: ${row.sends})`,
        );
      }
    } catch (error) {
      serverWorking = () => false;
      if (this.#channel.broken) throw error;
      await this.#sendError(error, kind, subject);
      await body?.discard();
      return;
    }
    serverWorking = () => false;
    // A reply with a body goes out with the body's first piece (one write for a small file).
    await this.#channel.send(reply.message, { more: reply.body !== undefined });
    if (body !== null && !body.finished) await body.discard(); // what the handler left unread of its body
    let bytesOut = 0;
    if (reply.body) {
      const { chunks, size, algorithm } = reply.body;
      try {
        bytesOut = (await sendBody(this.#channel, chunks, { algorithm, sizeHint: size })).size;
      } catch (error) {
        if (this.#state === "closing") return; // the server closed the connection (a stalled transfer), and said why
        stats.failure("SEND_FAILED");
        this.#log.error`${kind} of ${printableName(subject)} for ${this.#user} failed while sending: ${error}`;
        return;
      } finally {
        reply.body.close();
      }
    }
    const bytesIn = body?.summary?.size ?? 0;
    this.#operations++;
    this.#bytesIn += bytesIn;
    this.#bytesOut += bytesOut;
    stats.operation(kind, bytesIn, bytesOut);
    if (row.receives !== undefined || row.sends) { // a transfer: one line with its figures
      const seconds = (performance.now() - started) / 1000;
      const bytes = bytesIn + bytesOut;
      const rate = seconds > 0 ? bytes / seconds / 1e6 : 0;
      this.#log.info`${kind} user=${this.#user} name=${printableName(subject)} bytes=${bytes} duration=${
        seconds.toFixed(3)
      }s rate=${rate.toFixed(1)}MB/s`;
    } else {
      this.#log.info`${kind} user=${this.#user} name=${printableName(subject)}`;
    }
  }

  /**
   * Drops the body of a request refused before it could be read: `first`,
   * and if it is DATA the frames after it up to END or ABORT.
   */
  async #dropBody(first: MessageOf<"data" | "end" | "abort">): Promise<void> {
    if (first.type === "data") await new BodyReceiver(this.#channel, { senderMayFail: false }).discard();
  }

  /**
   * Ends the session if its user has been removed from the users file, or
   * its password changed, since it logged in. The file is looked at once a
   * second at most, not at every request.
   *
   * @returns True when the session may go on.
   */
  async #stillValid(): Promise<boolean> {
    const user = this.#user!;
    if (await this.#context.users.holds(user, this.#credential)) return true;
    this.#closeNow(
      Status.AUTH_REQUIRED,
      `Cannot serve the request: user "${printableName(user)}" was removed or changed its password; log in again`,
      "USER_CHANGED",
    );
    return false;
  }

  /**
   * Starts the request's clock: a request that moves nothing either way for
   * the op timeout, while not waiting on the server, has stalled, and the
   * connection is closed with an ERROR that says so (an upload's temporary
   * file goes with it).
   *
   * @param serverWorking True while the server, not the client, is what the request waits for.
   */
  #watch(serverWorking: () => boolean): void {
    if (!this.#open) return; // the clock then holds the close's grace
    const ms = this.#context.opTimeoutMs;
    const moved = () => {
      const traffic = this.#channel.traffic;
      return traffic.received + traffic.sent;
    };
    this.#clock.watch(ms, { moved, serverWorking }, () => {
      this.#closeNow(
        Status.BAD_REQUEST,
        `Transfer stalled: nothing moved for ${ms / 1000} s; connection closed`,
        "STALL_TIMEOUT",
      );
    });
  }

  /**
   * Closes the connection on the server's own account, after an ERROR that
   * says why; a client that does not take even that within a grace period is
   * cut off. During the TLS handshake, no ERROR can reach the client: it is
   * cut off at once.
   */
  #closeNow(code: StatusCode, message: string, failure?: string): void {
    if (!this.#open) return;
    const securing = this.#state === "securing";
    if (securing) this.#state = "ended";
    // A login's answer held back is not sent: the client is told why it is closed instead.
    this.#stop.abort();
    if (failure !== undefined) this.#context.stats.failure(failure);
    if (securing) {
      this.#log.info`Connection from ${this.remote} closed by the server during the TLS handshake: ${message}`;
      this.#channel.abort();
      return;
    }
    this.#log.info`Connection from ${this.remote} closed by the server: ${message}`;
    this.#channel.send({ type: "error", code, message }).catch(() => {});
    this.#close();
  }

  /** Enters `closing`: flushes what was sent and closes, within the grace period. */
  #close(): void {
    this.#state = "closing";
    this.#closed = this.#channel.close();
    // A client that does not take what is left to send within the grace is cut off: a close never hangs.
    this.#clock.deadline(CLOSE_GRACE_MS, () => this.#channel.abort());
  }

  async #sendError(error: unknown, kind?: string, name?: string): Promise<void> {
    const { message, unexpected } = errorReply(error);
    this.#context.stats.failure(statusName(message.code));
    const what = kind ? `${kind} of ${excerpt(name ?? "")} for ${this.#user}` : `request from ${this.remote}`;
    if (unexpected) this.#log.error`${what} failed: ${error}`;
    else this.#log.with({ refused: true }).info`${what} refused: ${message.message}`;
    await this.#channel.send(message);
  }

  /** Tells the client why the connection is closing, if it can still hear. */
  async #refuse(error: unknown): Promise<void> {
    if (isConnectionLoss(error)) {
      this.#context.stats.failure("CONNECTION_LOST");
      this.#log.info`Connection from ${this.remote} lost: ${(error as Error).message}`;
      return;
    }
    const { message, unexpected } = errorReply(error);
    this.#context.stats.failure(statusName(message.code));
    if (unexpected) this.#log.error`Connection from ${this.remote} failed: ${error}`;
    else this.#log.info`Connection from ${this.remote} closed: ${message.message}`;
    await this.#channel.send(message).catch(() => {});
  }
}
