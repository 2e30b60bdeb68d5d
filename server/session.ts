/**
 * `Session`: one client connection on the server, from HELLO to close:
 * version handshake, authentication (three attempts), then any number of
 * requests in turn, each dispatched through `HANDLERS`, as long as the user
 * stays in the users file unchanged.
 *
 * On a TLS server, the session first runs the TLS handshake. One timer per
 * session closes a connection that has not completed TLS and logged in within
 * the handshake timeout, or that waits longer than the idle timeout for its
 * next request; while a transfer is served, the same timer closes a
 * connection on which nothing has moved for the op timeout (a stall). When the
 * server drains, an idle session closes at once and a busy one after its
 * request; either says why in an ERROR first.
 *
 * @module
 */

import type { Logger } from "@logtape/logtape";
import { BodyReceiver, sendBody } from "../shared/body.ts";
import { Channel } from "../shared/channel.ts";
import { MAX_FRAME_LENGTH } from "../shared/frames.ts";
import { type Message, type MessageOf, PROTOCOL_VERSION } from "../shared/messages.ts";
import { excerpt, printableName } from "../shared/names.ts";
import { DfosError, Status, type StatusCode, statusName } from "../shared/status.ts";
import type { AuthMechanism, AuthStep } from "./auth/mechanism.ts";
import type { ConnectionCaps } from "./connection_caps.ts";
import { errorReply, isNoSpace } from "./errors.ts";
import { HANDLERS, isRequestType, type Reply, type Request, type RequestLimits, type RequestType } from "./handlers.ts";
import type { ServerStats } from "./stats.ts";
import type { Storage } from "./storage.ts";
import { addressKey, type FailureOutcome, type LoginSlot, type LoginThrottle } from "./throttle.ts";
import type { UserFile } from "./users.ts";

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
  /** The users file the mechanisms check against: a session whose user is removed or changed there ends. */
  users: UserFile;
  /** The server's totals. */
  stats: ServerStats;
  /** Where to log. */
  log: Logger;
  /** The server's name and version, sent in WELCOME. */
  agent: string;
  /**
   * True when the connections are TLS (the server listens with
   * `Deno.listenTls`; a server serves either TLS or plaintext, never both).
   * Without it, a mechanism that sends the password itself (PLAIN) is
   * neither offered nor accepted.
   */
  tls: boolean;
  /**
   * Failed logins per address and user name: the delay of an answer, the
   * lockout of an address, and the slots in which an address's passwords are checked.
   */
  throttle: LoginThrottle;
  /** Connections open per address and per user (the server counts the addresses; a session, its user). */
  caps: ConnectionCaps;
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
  /** What the server's sessions share; once logged in, its log's records carry the user (`log.with`). */
  #context: SessionContext;
  /** The client's address as the throttle counts it (an IPv6 address by its /64). */
  readonly #address: string;
  /** Ends a login's waits early (a slot, the PBKDF2 queue, a held answer), while one is under way. */
  #wake: (() => void) | null = null;
  readonly #opened = performance.now();
  #user: string | null = null;
  /** What the user's login was checked against: a request after it changed in the users file ends the session. */
  #credential = "";
  #operations = 0;
  #bytesIn = 0;
  #bytesOut = 0;
  /** Where the session is: logging in, waiting for a request, or serving one. */
  #phase: "handshake" | "idle" | "busy" = "handshake";
  /** The session's one timer: the handshake deadline, the idle deadline, or the grace of a close. */
  #timer: ReturnType<typeof setTimeout> | undefined;
  #draining = false;
  #aborted = false;
  /** While a request is served: true while the server, not the client, is what it waits for. */
  #working: () => boolean = () => false;
  /** Set once the connection is being closed; the session then only waits for it. */
  #closing: Promise<void> | null = null;

  /**
   * @param conn The accepted connection; the session owns it.
   * @param context What the server's sessions share.
   */
  constructor(conn: Deno.Conn, context: SessionContext) {
    const addr = conn.remoteAddr as Deno.NetAddr;
    this.remote = `${addr.hostname}:${addr.port}`;
    this.#address = addressKey(addr.hostname);
    this.#context = context;
    this.tls = context.tls;
    this.#tlsConn = context.tls ? conn as Deno.TlsConn : null;
    // Until login, nothing larger than a control frame is accepted.
    const control = context.maxControlLength;
    this.#channel = new Channel(conn, { maxFrameLength: control, maxControlLength: control });
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
      if (this.#closing === null && !this.#aborted) {
        this.#arm(CLOSE_GRACE_MS, () => this.#channel.abort()); // the last word has as long as a close
        await this.#refuse(error);
      }
    } finally {
      if (this.#closing === null) {
        this.#closing = this.#channel.close();
        // A client that does not take what is left to send within the grace is cut off: a close never hangs.
        this.#arm(CLOSE_GRACE_MS, () => this.#channel.abort());
      }
      await this.#closing;
      clearTimeout(this.#timer);
      if (this.#user !== null) this.#context.caps.logout(this.#user);
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
    this.#wake?.();
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
      mechanisms: [...this.#context.mechanisms.keys()].filter((name) => this.#offered(name) !== undefined),
    });
    return true;
  }

  /** The mechanism if this connection may use it: one that sends the password itself, only over TLS. */
  #offered(name: string): AuthMechanism | undefined {
    const mechanism = this.#context.mechanisms.get(name);
    return mechanism !== undefined && (this.tls || !mechanism.sendsPassword) ? mechanism : undefined;
  }

  /**
   * Up to three login attempts. Each step that may check a password runs in
   * a slot of the throttle (so parallel attempts from one address are
   * checked at most as often as its lockout allows); each answer is held as
   * long as the throttle says, whether the password was right or wrong; an
   * address locked out is refused at once, before any password is checked.
   * Every refused attempt counts as a failure, a malformed one (a message
   * that is not AUTH, a bad SCRAM message, an unoffered mechanism) included:
   * a protocol error during login is no free retry.
   */
  async #authenticate(): Promise<boolean> {
    const { log, mechanisms, stats, throttle } = this.#context;
    // Ends every wait of the login (a slot, the PBKDF2 queue, a held answer) when the connection is closed.
    const login = new AbortController();
    this.#wake = () => login.abort();
    try {
      for (let attempt = 1; attempt <= MAX_AUTH_ATTEMPTS; attempt++) {
        /** The user name tried, once the exchange has named one. */
        let name: string | null = null;
        let slot: LoginSlot | null = null;
        let step: AuthStep;
        let auth: MessageOf<"auth">;
        let mechanism: AuthMechanism | undefined;
        try {
          const received = await this.#channel.receive();
          if (received === null) return false;
          if (await this.#lockedOut()) return false;
          if (received.type !== "auth") {
            throw new DfosError(Status.AUTH_REQUIRED, `Cannot serve ${received.type}: log in first`);
          }
          auth = received;
          mechanism = this.#offered(auth.mechanism);
          const exchange = mechanism?.start();
          if (exchange === undefined) {
            step = { kind: "failure" };
          } else {
            let data = auth.data;
            while (true) {
              slot = await throttle.reserve(this.#address, login.signal);
              // Locked out: by an attempt that failed while this one waited for its slot, perhaps.
              if (slot === null) {
                await this.#lockedOut();
                return false;
              }
              step = await exchange.step(data, login.signal);
              if (step.user !== undefined) name = step.user;
              if (step.kind !== "continue") break;
              slot.release(); // a challenge checks nothing
              await this.#channel.send({ type: "auth-continue", data: step.data });
              const response = await this.#channel.receive();
              if (response === null) return false; // given up: no password was checked, nothing to count
              if (response.type !== "auth-response") {
                throw new DfosError(Status.BAD_REQUEST, `Unexpected ${response.type} message (expected auth-response)`);
              }
              data = response.data;
            }
          }
        } catch (error) {
          if (this.#closing !== null || this.#aborted || login.signal.aborted || isConnectionLoss(error)) {
            slot?.release(); // cut short, not refused: nothing was checked, or nobody is left to answer
          } else {
            // Counted like a wrong password; why it was refused is logged once, where the connection is closed.
            const outcome = slot?.held ? slot.failure(name) : throttle.failure(this.#address, name);
            const counts = `${outcome.addressFailures} from ${this.#address}, ${outcome.nameFailures} on this name`;
            log.warn`Failed login from ${this.remote} as ${
              shownUser(name)
            } (malformed, attempt ${attempt} of ${MAX_AUTH_ATTEMPTS}; ${counts})`;
            if (outcome.lockout) this.#logLockout(outcome, name);
          }
          throw error;
        }
        const hold = throttle.delayFor(this.#address, name);
        if (step.kind === "success") {
          slot!.success(step.user);
          await this.#prepareUser(step.user);
          if (!await this.#pause(hold, login.signal)) return false;
          if (!await this.#admit(step.user)) return false;
          this.#credential = step.credential;
          await this.#channel.send({ type: "auth-ok", user: step.user, data: step.data });
          const held = hold > 0 ? `; answer held ${hold} ms` : "";
          log.info`Login of ${printableName(step.user)} from ${this.remote} (${auth.mechanism}${held})`;
          return true;
        }
        stats.failure("AUTH_FAILED");
        const outcome = slot?.held ? slot.failure(name) : throttle.failure(this.#address, name);
        const left = MAX_AUTH_ATTEMPTS - attempt;
        const why = mechanism
          ? "unknown user or wrong password"
          : mechanisms.get(auth.mechanism)?.sendsPassword
          ? `mechanism "${auth.mechanism}" is not offered without TLS: it would send the password in clear`
          : `mechanism "${auth.mechanism}" is not offered`;
        const what = `${shownUser(auth.mechanism)}, attempt ${attempt} of ${MAX_AUTH_ATTEMPTS}`;
        const counts = `${outcome.addressFailures} from ${this.#address}, ${outcome.nameFailures} on this name`;
        log.warn`Failed login from ${this.remote} as ${shownUser(name)} (${what}; ${counts}; answer held ${hold} ms)`;
        const lockoutSeconds = Math.ceil(throttle.lockoutMs / 1000);
        let ending = left > 0 ? ` (${left} attempt${left === 1 ? "" : "s"} left)` : "; closing the connection";
        if (outcome.lockout) {
          this.#logLockout(outcome, name);
          ending = `; too many failed logins from ${this.#address}: no login from there for ${lockoutSeconds} s; ` +
            "closing the connection";
        }
        if (!await this.#pause(hold, login.signal)) return false;
        await this.#channel.send({
          type: "error",
          code: Status.AUTH_FAILED,
          message: `Authentication failed: ${why}${ending}`,
        });
        if (outcome.lockout) return false;
      }
      return false;
    } finally {
      this.#wake = null;
    }
  }

  /** Logs the start of a lockout of the session's address. */
  #logLockout(outcome: FailureOutcome, name: string | null): void {
    const { log, stats, throttle } = this.#context;
    stats.failure("AUTH_LOCKOUT");
    const cause = `${outcome.addressFailures} failed logins, the last from ${this.remote} as ${shownUser(name)}`;
    log.warn`Locking out ${this.#address} for ${Math.ceil(throttle.lockoutMs / 1000)} s after ${cause}`;
  }

  /**
   * Makes the user's folder, on a first login. A full disk refuses the login
   * with a message that says so (it is not an upload that failed).
   */
  async #prepareUser(user: string): Promise<void> {
    try {
      await this.#context.storage.prepareUser(user);
    } catch (error) {
      if (!isNoSpace(error)) throw error;
      this.#context.log.error`Cannot create the folder of ${printableName(user)}: ${error}`;
      throw new DfosError(Status.INTERNAL, "Cannot log in: the server has no space left to create the user's folder");
    }
  }

  /**
   * Counts a logged-in connection for `user` against the per-user cap; one
   * over it is told BUSY instead of AUTH-OK, and closed.
   *
   * @returns True when the user's connection may go on.
   */
  async #admit(user: string): Promise<boolean> {
    const busy = this.#context.caps.login(user);
    if (busy === null) {
      this.#user = user;
      // The log's per-address limit passes a logged-in user's own work (server/log_limiter.ts), not refusals.
      this.#context = { ...this.#context, log: this.#context.log.with({ user }) };
      return true;
    }
    this.#context.stats.failure("BUSY");
    this.#context.log.warn`Login of ${printableName(user)} from ${this.remote} refused: ${busy}`;
    await this.#channel.send({ type: "error", code: Status.BUSY, message: busy });
    return false;
  }

  /**
   * Refuses a login attempt from an address that is locked out, at once: the
   * connection is then closed.
   *
   * @returns True when the attempt was refused.
   */
  async #lockedOut(): Promise<boolean> {
    const { log, stats, throttle } = this.#context;
    const ms = throttle.lockedFor(this.#address);
    if (ms <= 0) return false;
    const seconds = Math.ceil(ms / 1000);
    stats.failure("AUTH_LOCKED_OUT");
    log.info`Login from ${this.remote} refused: ${this.#address} is locked out for another ${seconds} s`;
    await this.#channel.send({
      type: "error",
      code: Status.AUTH_FAILED,
      message: `Cannot log in: too many failed logins from ${this.#address}; try again in ${seconds} s`,
    });
    return true;
  }

  /**
   * Waits `ms` before a login's answer (0: not at all), on a timer: other
   * connections go on meanwhile. A close or abort (`signal`) ends the wait early.
   *
   * @returns True when the session may go on (it is not being closed).
   */
  async #pause(ms: number, signal: AbortSignal): Promise<boolean> {
    if (ms > 0 && this.#closing === null && !this.#aborted && !signal.aborted) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      let onAbort: (() => void) | undefined;
      await new Promise<void>((resolve) => {
        onAbort = resolve;
        signal.addEventListener("abort", onAbort, { once: true });
        timer = setTimeout(resolve, ms);
      });
      clearTimeout(timer);
      signal.removeEventListener("abort", onAbort!);
    }
    return this.#closing === null && !this.#aborted;
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
        this.#phase = "busy";
        this.#watchTransfer(() => false);
        await this.#sendError(error); // a well-framed message of an unknown type or shape
        continue;
      } finally {
        // Whatever arrived, the idle clock stops until this request is done.
        this.#phase = "busy";
        clearTimeout(this.#timer);
      }
      // Closed meanwhile (idle, or draining: then the client was told BUSY, which answers this request).
      if (message === null || this.#closing !== null) return;
      if (!await this.#stillValid()) return; // the user was removed or changed meanwhile
      // Until the next request is awaited, the op clock runs: a client that does not take its reply is cut off.
      this.#working = () => false;
      this.#watchTransfer(() => this.#working());
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
    const { log, stats, storage, limits } = this.#context;
    const kind = row.kind(message);
    const put = row.body ? message as MessageOf<"put"> : null;
    const body = put
      ? new BodyReceiver(this.#channel, { expectedSize: put.size, algorithm: put.digest, senderMayFail: false })
      : null;
    const started = performance.now();
    // The request's clock (#serveRequests) stops while the server works: the handler, once an upload's body has
    // ended (END or ABORT). It runs while the client is to send a body or take a reply.
    this.#working = body === null ? () => true : () => body.finished;
    let reply: Reply;
    try {
      reply = await row.handle({ message, user: this.#user!, storage, body, limits });
    } catch (error) {
      this.#working = () => false;
      if (this.#channel.broken) throw error;
      await this.#sendError(error, kind, this.#name(message));
      // Answer at once, then drop the rest of the body so the next request is read in turn.
      await body?.discard();
      return;
    }
    this.#working = () => false;
    // A reply with a body goes out with the body's first piece (one write for a small file).
    await this.#channel.send(reply.message, { more: reply.body !== undefined });
    let bytesOut = 0;
    if (reply.body) {
      try {
        const { handle, limit, algorithm } = reply.body;
        bytesOut = (await sendBody(this.#channel, handle.read(limit), { algorithm, sizeHint: limit })).size;
      } catch (error) {
        if (this.#closing !== null) return; // the server closed the connection (a stalled transfer), and said why
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

  /**
   * Starts the clock of a request, on the session's one timer: if no message
   * moves either way on the connection for the op timeout, the request has
   * stalled (a client that stopped sending mid-body, or stopped reading a
   * download or its replies), and the connection is closed with an ERROR that
   * says so; an upload's temporary file goes with it. A slow transfer that
   * keeps moving is never cut, however long it takes. The clock is looked at
   * four times per timeout, so a stall is seen within 1.25 timeouts.
   *
   * @param serverBusy True while the server, not the client, is what the transfer waits for.
   */
  #watchTransfer(serverBusy: () => boolean): void {
    const ms = this.#context.opTimeoutMs;
    if (ms <= 0 || this.#closing !== null) return;
    const moved = () => this.#channel.traffic.received + this.#channel.traffic.sent;
    let seen = moved();
    let movedAt = performance.now();
    const look = () => {
      if (this.#closing !== null) return;
      const now = performance.now();
      const count = moved();
      if (count !== seen || serverBusy()) {
        seen = count;
        movedAt = now;
      }
      const left = movedAt + ms - now;
      if (left <= 0) {
        this.#closeNow(
          Status.BAD_REQUEST,
          `Transfer stalled: nothing moved for ${ms / 1000} s; connection closed`,
          "STALL_TIMEOUT",
        );
        return;
      }
      this.#arm(Math.max(1, Math.min(left, ms / 4)), look);
    };
    this.#arm(Math.max(1, ms / 4), look);
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
    this.#wake?.(); // a login's answer held back is not sent: the client is told why it is closed instead
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
    const what = kind ? `${kind} of ${excerpt(name ?? "")} for ${this.#user}` : `request from ${this.remote}`;
    if (unexpected) this.#context.log.error`${what} failed: ${error}`;
    else this.#context.log.with({ refused: true }).info`${what} refused: ${message.message}`;
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

/** A user name (or mechanism name) as the client sent it, for the log: escaped, and cut if long. */
function shownUser(name: string | null): string {
  if (name === null) return "-";
  return excerpt(name, 64);
}
