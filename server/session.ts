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
 * the op timeout ends the connection). A request that waits (a held
 * `watch`) is the server's wait, never a stall: while it is held the
 * session reads the client's next message ahead, whose arrival (or the
 * client hanging up) answers it at once. `last` is `busy` after the server
 * began to drain: a held request is answered at once, and the session
 * closes once the request is answered. `closing`
 * is a close on the server's account: an ERROR that says why, then the close,
 * cut off after a grace period if the client does not take it. `ended`: the
 * connection was cut (an abort, a failed TLS handshake). A session never
 * leaves `closing` or `ended`, and holds one timer at a time
 * (`server/session_clock.ts`).
 *
 * A logged-in session ends at its next request once its user is removed
 * from the users file or changes its password.
 *
 * What the log says of a session: "Connection from ..." when it opens, one
 * line per request, and one line when it ends, with its figures and, unless
 * the client simply hung up between requests, why it ended ("client gone",
 * "timed out", "protocol error", ...: `FailureClass`, server/stats.ts). A
 * transfer cut short (the client hung up, sent ABORT or stalled; the storage
 * failed; a shutdown) has a line of its own that names the user, the file,
 * the direction, the bytes moved so far and why, and is counted as aborted
 * with its bytes. A failure is counted once, by the first thing that went
 * wrong: what fails after it is its consequence. Events of the network are
 * never logged as errors and never with a stack trace.
 *
 * @module
 */

import type { Logger } from "@logtape/logtape";
import { BodyReceiver, sendBody } from "../shared/body.ts";
import { Channel } from "../shared/channel.ts";
import { MAX_FRAME_LENGTH } from "../shared/frames.ts";
import type { Message, MessageOf } from "../shared/messages.ts";
import { excerpt, printableName } from "../shared/names.ts";
import { DfosError, Status, type StatusCode } from "../shared/status.ts";
import { errorReply, isConnectionLoss, isTlsClientHello } from "./errors.ts";
import type { ChunkState } from "./assemble.ts";
import { HANDLERS, isRequest, type Reply, type RequestLimits, type RequestType } from "./handlers.ts";
import { Login, type LoginContext } from "./login.ts";
import { SessionClock } from "./session_clock.ts";
import type { RequestResult } from "./server_metrics.ts";
import { failureClass } from "./stats.ts";
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
  /** The chunk indexes and kept uploads' quota holds (the chunk requests). */
  chunks: ChunkState;
}

/** Where a session is; see the module's documentation. */
type SessionState = "securing" | "login" | "idle" | "busy" | "last" | "closing" | "ended";

/** A transfer under way: what its line says if it is cut short. */
interface Transfer {
  /** `put`, `get` or `peek`. */
  kind: string;
  /** The file's name, as the client sent it. */
  subject: string;
  /** Which way the body moves. */
  direction: "upload" | "download";
  /** `performance.now()` when the request arrived. */
  started: number;
  /** Body bytes received so far. */
  bytesIn: number;
  /** Body bytes sent so far (taken by the connection's queue). */
  bytesOut: number;
}

/** Why a session ended, for its last line: the failure's label (counted once) and what happened. */
interface Ending {
  /** The failure's label (`ServerStats.failure`), or null when it is none (a drain closing an idle connection). */
  label: string | null;
  /** What happened, for the log. */
  text: string;
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
  /** The changes this session made to the user's files (`changes.mine`). */
  readonly #mine = { changes: 0 };
  #bytesIn = 0;
  #bytesOut = 0;
  /** Why the session ends, once something ended it; null while it runs, and for a client that hung up between requests. */
  #ending: Ending | null = null;
  /** The transfer under way, if any. */
  #transfer: Transfer | null = null;
  /** Aborted to have the request in flight answered at once (a held `watch`): a drain, a close, the client's next frame. */
  #hurry: AbortController | null = null;
  /** The client's next message, read while a request that `waits` was held: the loop takes it first. */
  #ahead: Promise<Message | null> | null = null;

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
      const why = this.#ending === null ? "" : ` (${describeEnding(this.#ending)})`;
      this.#log.info`Connection from ${this.remote} closed${why}: user ${this.#user ?? "-"}, ${
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
   * closed now, a busy one once its request is done (a held `watch` is
   * answered at once, with the counter as it is). Either is sent an ERROR
   * (`BUSY`, "Server shutting down") before the close.
   */
  drain(): void {
    if (this.busy) {
      this.#state = "last";
      this.#hurry?.abort();
    } else {
      this.#closeNow(Status.BUSY, SHUTTING_DOWN);
    }
  }

  /** Closes the connection at once; the transfer in progress, if any, fails and is cleaned up. */
  abort(): void {
    if (this.#open) {
      this.#endWith(this.busy ? "request in flight aborted" : SHUTTING_DOWN, this.busy ? "SHUTDOWN" : null);
    }
    this.#state = "ended";
    this.#stop.abort();
    this.#hurry?.abort();
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
      const failed = await login.secure(this.#tlsConn);
      if (this.#state !== "securing") return false; // cut meanwhile (the deadline, or a shutdown)
      if (failed !== null) {
        this.#endWith(failed, failed.startsWith("plaintext") ? "PLAINTEXT_CLIENT" : "TLS_HANDSHAKE");
        this.#state = "ended"; // no ERROR can reach a client that failed TLS
        this.#channel.abort();
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
        const ahead = this.#ahead; // read while a watch was held: the next in turn
        this.#ahead = null;
        message = await (ahead ?? this.#channel.receive());
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
    const kind = row.kind(message);
    const started = performance.now();
    const transfer: Transfer | null = row.receives !== undefined || row.sends
      ? { kind, subject: "", direction: row.sends ? "download" : "upload", started, bytesIn: 0, bytesOut: 0 }
      : null;
    /** How the request ended, for the metrics; a throw that is not foreseen below is a bug's. */
    const outcome: { result: RequestResult } = { result: "internal_error" };
    try {
      await this.#serve(type, message, { kind, started, transfer, outcome });
    } finally {
      const seconds = (performance.now() - started) / 1000;
      const bytes = { in: transfer?.bytesIn ?? 0, out: transfer?.bytesOut ?? 0 };
      this.#context.metrics.request(kind, outcome.result, seconds, bytes);
    }
  }

  /** {@linkcode Session.#dispatch}'s work: the request served, `outcome` set to how it ended. */
  async #serve<T extends RequestType>(
    type: T,
    message: MessageOf<T>,
    { kind, started, transfer, outcome }: {
      kind: string;
      started: number;
      transfer: Transfer | null;
      outcome: { result: RequestResult };
    },
  ): Promise<void> {
    const row = HANDLERS[type];
    const { stats, storage, limits } = this.#context;
    const subject = row.subject(message);
    const announced = row.receives?.(message);
    if (transfer !== null) transfer.subject = subject;
    this.#transfer = transfer;
    const body = announced === undefined ? null : new BodyReceiver(this.#channel, {
      expectedSize: announced.size,
      algorithm: announced.algorithm,
      senderMayFail: false,
      onProgress: (received) => transfer!.bytesIn = received,
    });
    // The request's clock stops while the server works: in the handler, once the request's body (if any) has ended
    // (END or ABORT). It runs while the client is to send a body or take a reply.
    let serverWorking = () => body === null || body.finished;
    this.#watch(() => serverWorking());
    const hurry = new AbortController();
    this.#hurry = hurry;
    if (this.#state !== "busy") hurry.abort(); // draining (or closed) since the request arrived
    if (row.waits) this.#readAhead(hurry);
    let reply: Reply;
    try {
      reply = await row.handle({
        message,
        user: this.#user!,
        storage,
        body,
        limits,
        chunks: this.#context.chunks,
        mine: this.#mine,
        signal: hurry.signal,
      });
      if (row.sends !== (reply.body !== undefined)) {
        reply.body?.close();
        throw new Error(
          `Cannot serve "${type}": the reply of its handler does not match its row (sends: ${row.sends})`,
        );
      }
    } catch (error) {
      serverWorking = () => false;
      if (!this.#open || this.#channel.broken || isConnectionLoss(error)) {
        this.#cutShort(error); // the connection is gone or closing: nothing more can be said to the client
        outcome.result = resultOf(this.#ending?.label ?? "CLIENT_GONE");
        throw error;
      }
      if (error instanceof DfosError && error.code === Status.ABORTED && transfer !== null) {
        // The client gave the upload up (ABORT): it is told ABORTED, as any refusal, and the session goes on.
        outcome.result = "client_abort";
        this.#context.stats.failure("ABORTED");
        this.#transferEnded(`client abort: ${error.message.replace(/^Transfer aborted by the peer: /, "")}`);
        await this.#channel.send(errorReply(error).message);
        return;
      }
      const { label } = errorReply(error);
      outcome.result = resultOf(label);
      if (label === "INTEGRITY") this.#context.metrics.integrityFailure();
      await this.#sendError(error, kind, subject);
      await body?.discard();
      return;
    } finally {
      this.#hurry = null;
    }
    serverWorking = () => false;
    // A reply with a body goes out with the body's first piece (one write for a small file).
    await this.#channel.send(reply.message, { more: reply.body !== undefined });
    if (body !== null && !body.finished) await body.discard(); // what the handler left unread of its body
    let bytesOut = 0;
    if (reply.body) {
      const { chunks, size, algorithm } = reply.body;
      try {
        const onProgress = (sent: number) => transfer!.bytesOut = sent;
        bytesOut = (await sendBody(this.#channel, chunks, { algorithm, sizeHint: size, onProgress })).size;
      } catch (error) {
        if (!this.#open || this.#channel.broken || isConnectionLoss(error)) {
          this.#cutShort(error);
          outcome.result = resultOf(this.#ending?.label ?? "CLIENT_GONE");
        } else {
          // The file could not be read: the client was sent ABORT (sendBody), and the session goes on.
          const { label } = errorReply(error);
          outcome.result = resultOf(label);
          this.#failed(error, label);
        }
        return;
      } finally {
        reply.body.close();
      }
    }
    this.#transfer = null;
    const bytesIn = body?.summary?.size ?? 0;
    outcome.result = "ok";
    if (transfer !== null) {
      transfer.bytesIn = bytesIn;
      transfer.bytesOut = bytesOut;
    }
    this.#operations++;
    this.#bytesIn += bytesIn;
    this.#bytesOut += bytesOut;
    stats.operation(kind, bytesIn, bytesOut);
    if (row.receives !== undefined || row.sends) { // a transfer: one line with its figures
      const seconds = (performance.now() - started) / 1000;
      const bytes = bytesIn + bytesOut;
      this.#log.info`${kind} user=${this.#user} name=${printableName(subject)} bytes=${bytes} duration=${
        seconds.toFixed(3)
      }s rate=${mibPerSecond(bytes, seconds)}MiB/s`;
    } else {
      this.#log.info`${kind} user=${this.#user} name=${printableName(subject)}`;
    }
  }

  /**
   * Reads the client's next message while a request that waits is held
   * (a row's `waits`): its arrival, or the client hanging up, aborts `hurry`
   * and so answers the held request at once; the loop then takes the
   * message as the next request, so pipelined requests keep their order. A
   * held request is the server's wait, not a stall: the request's clock
   * treats it as the server working, and the idle clock is stopped.
   */
  #readAhead(hurry: AbortController): void {
    const ahead = this.#channel.receive();
    this.#ahead = ahead;
    // Handled here as well: a session cut while it is pending never awaits it.
    ahead.then(() => hurry.abort(), () => hurry.abort());
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
    this.#hurry?.abort(); // a held watch is answered (or fails) now, not at the end of its wait
    const securing = this.#state === "securing";
    if (securing) this.#state = "ended";
    // A login's answer held back is not sent: the client is told why it is closed instead.
    this.#stop.abort();
    this.#endWith(securing ? `${message}, during the TLS handshake` : message, failure ?? null);
    if (securing) {
      this.#channel.abort();
      return;
    }
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

  /**
   * Answers a request that failed with the ERROR that says why, and counts
   * it. A refusal is logged at info; an error of the storage or a bug at
   * error level (a bug with its stack), and a transfer it cut short is
   * named with its bytes.
   */
  async #sendError(error: unknown, kind?: string, name?: string): Promise<void> {
    const { message, unexpected, label } = errorReply(error);
    if (unexpected) {
      this.#failed(error, label);
    } else {
      this.#context.stats.failure(label);
      const what = kind ? `${kind} of ${excerpt(name ?? "")} for ${this.#user}` : `request from ${this.remote}`;
      this.#log.with({ refused: true }).info`${what} refused: ${message.message}`;
      this.#transfer = null;
    }
    await this.#channel.send(message);
  }

  /**
   * Counts and logs an error of the server's own while serving a request
   * (an error of the storage, or a bug), at error level; the transfer it
   * cut short, if any, is named with its bytes.
   */
  #failed(error: unknown, label: string): void {
    this.#context.stats.failure(label);
    // The storage's errors say what failed (the call and the path); a bug's stack is what its reader needs.
    const detail = label === "INTERNAL" ? error : (error as Error).message;
    if (this.#transfer !== null) {
      this.#transferEnded(`${failureClass(label)}: ${renderError(detail)}`, "error");
      return;
    }
    this.#log.error`Request from ${this.remote} for ${this.#user ?? "-"} failed (${failureClass(label)}): ${detail}`;
  }

  /**
   * Records that the connection is gone or closing while a request was
   * served: the transfer under way, if any, is named with why (the reason
   * the server closed the connection, or the client's leaving).
   */
  #cutShort(error: unknown): void {
    if (isConnectionLoss(error)) {
      this.#endWith(hungUp(error), "CLIENT_GONE");
    }
    if (this.#transfer === null) return;
    this.#transferEnded(this.#ending === null ? hungUp(error) : describeEnding(this.#ending));
  }

  /**
   * Logs and counts the transfer under way as aborted, with the bytes it moved so far.
   *
   * @param why What cut it short.
   * @param level warn, or error for an error of the server's own.
   */
  #transferEnded(why: string, level: "warn" | "error" = "warn"): void {
    const transfer = this.#transfer;
    if (transfer === null) return;
    this.#transfer = null;
    const { kind, subject, direction, bytesIn, bytesOut } = transfer;
    const seconds = (performance.now() - transfer.started) / 1000;
    const bytes = bytesIn + bytesOut;
    this.#bytesIn += bytesIn;
    this.#bytesOut += bytesOut;
    this.#context.stats.abortedTransfer(kind, bytesIn, bytesOut);
    this.#log[level]`${kind} aborted user=${this.#user} name=${
      printableName(subject)
    } direction=${direction} bytes=${bytes} duration=${seconds.toFixed(3)}s rate=${
      mibPerSecond(bytes, seconds)
    }MiB/s: ${why}`;
  }

  /**
   * Records why the session ends, and counts it as a failure under `label`
   * (none when null). Only the first reason counts: what fails after it is
   * its consequence.
   */
  #endWith(text: string, label: string | null): void {
    if (this.#ending !== null) return;
    this.#ending = { label, text };
    if (label !== null) this.#context.stats.failure(label);
  }

  /**
   * Tells the client why the connection is closing, if it can still hear,
   * and records it. A client that went away is told nothing; nor is a TLS
   * client at this plaintext port: it could not read a dfos frame, and its
   * own error (the connection closed during its handshake) says enough.
   */
  async #refuse(error: unknown): Promise<void> {
    if (this.#ending !== null) return; // the session already ended on something else: this is its consequence
    if (isConnectionLoss(error)) {
      this.#endWith(hungUp(error), "CLIENT_GONE");
      return;
    }
    if (this.#user === null && this.#channel.traffic.received === 0 && isTlsClientHello(error)) {
      this.#endWith("TLS client at a plaintext port", "TLS_CLIENT");
      return;
    }
    const { message, unexpected, label } = errorReply(error);
    if (unexpected) {
      this.#failed(error, label);
      this.#ending = { label: null, text: `${failureClass(label)}: ${(error as Error).message ?? String(error)}` };
    } else {
      // A stream that is no longer frames is the client's protocol error, whatever the limit it broke.
      this.#endWith(message.message, this.#channel.broken ? "BAD_FRAME" : label);
    }
    await this.#channel.send(message).catch(() => {});
  }
}

/** A failure's label (`ServerStats.failure`) as a request's result: its class, in snake case. */
function resultOf(label: string): RequestResult {
  return failureClass(label).replaceAll(" ", "_") as RequestResult;
}

/** A rate in MiB/s (2^20 bytes a second), as every line of the log gives it: `12.3`. */
function mibPerSecond(bytes: number, seconds: number): string {
  return (seconds > 0 ? bytes / seconds / 2 ** 20 : 0).toFixed(1);
}

/** Why a session ended, for the log: `client gone: hung up (broken pipe)`, `Server shutting down`. */
function describeEnding(ending: Ending): string {
  return ending.label === null ? ending.text : `${failureClass(ending.label)}: ${ending.text}`;
}

/** What a connection loss says of the client: "hung up (connection reset by peer)". */
function hungUp(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  const detail = message.replace(/^Cannot decode frame: /, "").replace(/ \(os error \d+\)$/, "");
  return `hung up (${detail.charAt(0).toLowerCase()}${detail.slice(1)})`;
}

/** An error as one line of text: a value the log renders (an Error with its stack) or a message already. */
function renderError(detail: unknown): string {
  return typeof detail === "string" ? detail : Deno.inspect(detail);
}
