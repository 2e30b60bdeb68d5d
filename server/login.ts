/**
 * `Login`: what a connection goes through before its first request. On a TLS
 * server, the TLS handshake; then HELLO, answered by WELCOME with the
 * mechanisms this connection may use (one that sends the password itself
 * only over TLS); then up to three AUTH attempts; last, the per-user cap.
 *
 * Invariants: every step that may check a password runs in a slot of the
 * throttle, so parallel attempts from one address are checked at most as
 * often as its lockout allows; every answer (AUTH-OK and ERROR alike) is held
 * as long as the throttle says; an address locked out is refused at once,
 * before any password is checked; every refused attempt counts as a failure,
 * a malformed one included (a protocol error during login is no free retry).
 * The session runs a login on its handshake deadline, and aborts its signal
 * when it closes the connection: every wait of the login (a slot, the
 * PBKDF2 queue, a held answer) then ends at once.
 *
 * @module
 */

import type { Logger } from "@logtape/logtape";
import type { Channel } from "../shared/channel.ts";
import {
  FEATURE_CHUNKS,
  FEATURE_DELTAS,
  FEATURE_HELD,
  FEATURE_SYNC,
  type MessageOf,
  PROTOCOL_VERSION,
} from "../shared/messages.ts";
import { excerpt, printableName } from "../shared/names.ts";
import { DfosError, Status } from "../shared/status.ts";
import { hostOf, isLoopback } from "./loopback.ts";
import type { AuthMechanism, AuthStep } from "./auth/mechanism.ts";
import type { ConnectionCaps } from "./connection_caps.ts";
import { isConnectionLoss, isNoSpace } from "./errors.ts";
import type { ServerMetrics } from "./server_metrics.ts";
import type { ServerStats } from "./stats.ts";
import type { Storage } from "./storage.ts";
import type { FailureOutcome, LoginSlot, LoginThrottle } from "./throttle.ts";

/** Failed logins allowed on one connection before it is closed. */
export const MAX_AUTH_ATTEMPTS = 3;

/** What a login needs of the server. */
export interface LoginContext {
  /** Where a first login makes the user's folder. */
  storage: Storage;
  /** The mechanisms the server offers, by name. */
  mechanisms: ReadonlyMap<string, AuthMechanism>;
  /** The server's totals. */
  stats: ServerStats;
  /** What the server counts for Prometheus: logins by result, answers held, lockouts. */
  metrics: ServerMetrics;
  /** Where to log (its records carry the client's address). */
  log: Logger;
  /** The server's name and version, sent in WELCOME. */
  agent: string;
  /** True when the connection is TLS: a mechanism that sends the password itself is offered only then. */
  tls: boolean;
  /** Failed logins per address and user name: slots, held answers, lockouts. */
  throttle: LoginThrottle;
  /** Logged-in connections per user: one over the cap is refused with BUSY. */
  caps: ConnectionCaps;
}

/** The connection a login runs on. */
export interface LoginClient {
  /** The client's address, `host:port`, for the log. */
  remote: string;
  /** The client's address as the throttle counts it (an IPv6 address by its /64). */
  address: string;
  /** Aborted when the session closes the connection: the login's waits end, and it gives up. */
  signal: AbortSignal;
}

/** A login that succeeded: the user is counted against its cap until the session calls `caps.logout`. */
export interface LoggedIn {
  /** The user name. */
  user: string;
  /** What the login was checked against: a request after it changed in the users file ends the session. */
  credential: string;
}

/** One login attempt under way. */
interface Attempt {
  /** 1 to {@linkcode MAX_AUTH_ATTEMPTS}. */
  number: number;
  /** The user name tried, once the exchange has named one. */
  name: string | null;
  /** The attempt's slot in the throttle, while it holds one. */
  slot: LoginSlot | null;
}

/** An exchange that ran to its end: the AUTH that began it and its last step. */
interface Exchanged {
  auth: MessageOf<"auth">;
  /** The mechanism, if this connection may use the one named. */
  mechanism: AuthMechanism | undefined;
  step: AuthStep;
}

/** The login of one connection, step by step: {@linkcode Login.secure}, {@linkcode Login.greet}, {@linkcode Login.authenticate}. */
export class Login {
  readonly #channel: Channel;
  readonly #context: LoginContext;
  readonly #client: LoginClient;
  /** True when the client's HELLO asked to be told of a held answer (`auth-ok.held`). */
  #toldHeld = false;

  /**
   * @param channel The connection's channel.
   * @param context What the login needs of the server.
   * @param client The connection.
   */
  constructor(channel: Channel, context: LoginContext, client: LoginClient) {
    this.#channel = channel;
    this.#context = context;
    this.#client = client;
  }

  /**
   * Runs the TLS handshake. A client that fails it (a plaintext client, or
   * one that refuses the certificate) is to be cut off by the session: no
   * ERROR can reach it.
   *
   * @param conn The TLS connection under the channel.
   * @returns Null when the connection may go on; else why it failed, for the session's last line.
   */
  async secure(conn: Deno.TlsConn): Promise<string | null> {
    try {
      await conn.handshake();
      return null;
    } catch (error) {
      const message = (error as Error).message;
      // rustls reads a plaintext frame's first bytes as a record of an unknown type.
      if (/InvalidContentType|corrupt message|wrong version/i.test(message)) return "plaintext client at a TLS port";
      return `TLS handshake failed: ${message}`;
    }
  }

  /**
   * Takes HELLO and answers WELCOME with the mechanisms offered.
   *
   * @returns True when the client may go on to log in; false when it left.
   * @throws {DfosError} `BAD_REQUEST` for anything but a dfos HELLO, `VERSION` for another version.
   */
  async greet(): Promise<boolean> {
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
    this.#toldHeld = hello.features?.includes(FEATURE_HELD) ?? false;
    await this.#channel.send({
      type: "welcome",
      version: PROTOCOL_VERSION,
      agent: this.#context.agent,
      mechanisms: [...this.#context.mechanisms.keys()].filter((name) => this.#offered(name) !== undefined),
      // Only to a client that asked: an older client's decoder would refuse a field it does not know.
      ...(hello.features?.includes(FEATURE_CHUNKS)
        ? {
          features: [FEATURE_CHUNKS, FEATURE_DELTAS, FEATURE_SYNC].filter((feature) =>
            hello.features!.includes(feature)
          ),
        }
        : {}),
    });
    return true;
  }

  /**
   * Up to three login attempts, then the per-user cap.
   *
   * @returns The user logged in (and counted against its cap), or null when
   * the client left, used up its attempts, was locked out or over the cap
   * (each told why), or the session closed the connection.
   * @throws {DfosError} for a malformed attempt (counted as a failure first):
   * the session sends it and closes.
   */
  async authenticate(): Promise<LoggedIn | null> {
    for (let number = 1; number <= MAX_AUTH_ATTEMPTS; number++) {
      const attempt: Attempt = { number, name: null, slot: null };
      let exchanged: Exchanged | null;
      try {
        exchanged = await this.#exchange(attempt);
      } catch (error) {
        this.#malformed(attempt, error);
        throw error;
      }
      if (exchanged === null) return null;
      const { auth, step } = exchanged;
      const hold = this.#context.throttle.delayFor(this.#client.address, attempt.name);
      if (step.kind === "success" && !await this.#clearAllowed(attempt, step)) return null;
      if (step.kind === "success") return await this.#succeed(attempt, auth, step, hold);
      if (!await this.#fail(attempt, exchanged, hold)) return null;
    }
    return null;
  }

  /**
   * A password stored in clear is accepted from this host only (a loopback
   * address): one from elsewhere is refused with AUTH_FAILED that says why,
   * and the connection is closed. The client proved the password, so the
   * answer tells it nothing new; the attempt is not counted as a guess.
   */
  async #clearAllowed(attempt: Attempt, step: Extract<AuthStep, { kind: "success" }>): Promise<boolean> {
    if (!step.credential.startsWith("clear:") || isLoopback(hostOf(this.#client.remote))) return true;
    attempt.slot?.release();
    this.#context.stats.failure("AUTH_FAILED");
    this.#context.metrics.login("clear_refused");
    this.#context.log.warn`Login of ${
      printableName(step.user)
    } from ${this.#client.remote} refused: its password is stored in clear, accepted from this host only`;
    await this.#channel.send({
      type: "error",
      code: Status.AUTH_FAILED,
      message:
        `Authentication failed: the password of "${step.user}" is stored in clear on the server, which accepts ` +
        `it only from the server's own host; the server's operator must hash it with "dfos passwd ${step.user}"`,
    });
    return false;
  }

  /** The mechanism if this connection may use it: one that sends the password itself, only over TLS. */
  #offered(name: string): AuthMechanism | undefined {
    const mechanism = this.#context.mechanisms.get(name);
    return mechanism !== undefined && (this.#context.tls || !mechanism.sendsPassword) ? mechanism : undefined;
  }

  /**
   * Runs one attempt's exchange: AUTH, then as many AUTH-CONTINUE and
   * AUTH-RESPONSE as the mechanism takes, each step that may check a password
   * in a slot of the throttle. An unoffered mechanism ends it at once as a
   * failure.
   *
   * @returns The exchange's end, or null when the client left or the address
   * is locked out (and told so).
   */
  async #exchange(attempt: Attempt): Promise<Exchanged | null> {
    const received = await this.#channel.receive();
    if (received === null) return null;
    if (await this.#lockedOut()) return null;
    if (received.type !== "auth") {
      throw new DfosError(Status.AUTH_REQUIRED, `Cannot serve ${received.type}: log in first`);
    }
    const mechanism = this.#offered(received.mechanism);
    const exchange = mechanism?.start();
    if (exchange === undefined) return { auth: received, mechanism, step: { kind: "failure" } };
    let data = received.data;
    while (true) {
      attempt.slot = await this.#context.throttle.reserve(this.#client.address, this.#client.signal);
      // Locked out: by an attempt that failed while this one waited for its slot, perhaps.
      if (attempt.slot === null) {
        await this.#lockedOut();
        return null;
      }
      const step = await exchange.step(data, this.#client.signal);
      if (step.user !== undefined) attempt.name = step.user;
      if (step.kind !== "continue") return { auth: received, mechanism, step };
      attempt.slot.release(); // a challenge checks nothing
      await this.#channel.send({ type: "auth-continue", data: step.data });
      const response = await this.#channel.receive();
      if (response === null) return null; // given up: no password was checked, nothing to count
      if (response.type !== "auth-response") {
        throw new DfosError(Status.BAD_REQUEST, `Unexpected ${response.type} message (expected auth-response)`);
      }
      data = response.data;
    }
  }

  /**
   * Counts an attempt that failed on a thrown error like a wrong password,
   * unless it was cut short (the connection closed or lost: nothing was
   * checked, or nobody is left to answer). Why it was refused is logged
   * once, where the connection is closed.
   */
  #malformed(attempt: Attempt, error: unknown): void {
    if (this.#client.signal.aborted || isConnectionLoss(error)) {
      attempt.slot?.release();
      return;
    }
    const outcome = this.#countFailure(attempt);
    this.#context.metrics.login("malformed");
    const counts = `${outcome.addressFailures} from ${this.#client.address}, ${outcome.nameFailures} on this name`;
    this.#context.log.warn`Failed login from ${this.#client.remote} as ${
      shownName(attempt.name)
    } (malformed, attempt ${attempt.number} of ${MAX_AUTH_ATTEMPTS}; ${counts})`;
    if (outcome.lockout) this.#logLockout(outcome, attempt.name);
  }

  /** Counts a failed attempt, in its slot if it holds one. */
  #countFailure(attempt: Attempt): FailureOutcome {
    const { slot, name } = attempt;
    return slot?.held ? slot.failure(name) : this.#context.throttle.failure(this.#client.address, name);
  }

  /**
   * Ends a successful attempt: makes the user's folder, holds the answer,
   * admits the user under its cap and sends AUTH-OK.
   *
   * @returns The user, or null when the session closed meanwhile or the user is over its cap.
   */
  async #succeed(
    attempt: Attempt,
    auth: MessageOf<"auth">,
    step: Extract<AuthStep, { kind: "success" }>,
    hold: number,
  ): Promise<LoggedIn | null> {
    attempt.slot!.success(step.user); // a success comes only from a step run in a slot
    await this.#prepareUser(step.user);
    if (!await this.#pause(hold)) return null;
    if (!await this.#admit(step.user)) return null;
    try {
      // Only a client that asked: an older one refuses a field it does not know.
      const told = this.#toldHeld && hold > 0 ? { held: hold } : {};
      await this.#channel.send({ type: "auth-ok", user: step.user, data: step.data, ...told });
    } catch (error) {
      this.#context.caps.logout(step.user);
      throw error;
    }
    this.#context.metrics.login("ok");
    const held = hold > 0 ? `; answer held ${hold} ms` : "";
    // With the user: the log's per-address limit passes a logged-in user's own work (server/log_limiter.ts).
    this.#context.log.with({ user: step.user }).info`Login of ${
      printableName(step.user)
    } from ${this.#client.remote} (${auth.mechanism}${held})`;
    return { user: step.user, credential: step.credential };
  }

  /**
   * Ends a failed attempt: counts it, holds the answer, then sends
   * AUTH_FAILED with the reason (an unknown user and a wrong password alike)
   * and what is left.
   *
   * @returns True when the client may try again.
   */
  async #fail(attempt: Attempt, { auth, mechanism }: Exchanged, hold: number): Promise<boolean> {
    const { log, mechanisms, stats, throttle } = this.#context;
    const { address, remote } = this.#client;
    stats.failure("AUTH_FAILED");
    this.#context.metrics.login("failed");
    const outcome = this.#countFailure(attempt);
    const left = MAX_AUTH_ATTEMPTS - attempt.number;
    const why = mechanism
      ? "unknown user or wrong password"
      : mechanisms.get(auth.mechanism)?.sendsPassword
      ? `mechanism "${auth.mechanism}" is not offered without TLS: it would send the password in clear`
      : `mechanism "${auth.mechanism}" is not offered`;
    const what = `${shownName(auth.mechanism)}, attempt ${attempt.number} of ${MAX_AUTH_ATTEMPTS}`;
    const counts = `${outcome.addressFailures} from ${address}, ${outcome.nameFailures} on this name`;
    log.warn`Failed login from ${remote} as ${shownName(attempt.name)} (${what}; ${counts}; answer held ${hold} ms)`;
    const lockoutSeconds = Math.ceil(throttle.lockoutMs / 1000);
    const held = hold > 0 ? `; answer held ${hold} ms after failed logins` : "";
    let ending = left > 0
      ? ` (${left} attempt${left === 1 ? "" : "s"} left${held})`
      : `${held}; closing the connection`;
    if (outcome.lockout) {
      this.#logLockout(outcome, attempt.name);
      ending = `${held}; too many failed logins from ${address}: no login from there for ${lockoutSeconds} s; ` +
        "closing the connection";
    }
    if (!await this.#pause(hold)) return false;
    await this.#channel.send({
      type: "error",
      code: Status.AUTH_FAILED,
      message: `Authentication failed: ${why}${ending}`,
    });
    return !outcome.lockout;
  }

  /** Logs the start of a lockout of the client's address. */
  #logLockout(outcome: FailureOutcome, name: string | null): void {
    const { log, stats, throttle } = this.#context;
    stats.failure("AUTH_LOCKOUT");
    this.#context.metrics.lockout();
    const cause = `${outcome.addressFailures} failed logins, the last from ${this.#client.remote} as ${
      shownName(name)
    }`;
    log.warn`Locking out ${this.#client.address} for ${Math.ceil(throttle.lockoutMs / 1000)} s after ${cause}`;
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
   * over it is told BUSY instead of AUTH-OK.
   *
   * @returns True when the user's connection may go on.
   */
  async #admit(user: string): Promise<boolean> {
    const busy = this.#context.caps.login(user);
    if (busy === null) return true;
    this.#context.stats.failure("BUSY");
    this.#context.metrics.login("busy");
    this.#context.metrics.connectionRefused("per_user");
    this.#context.log.warn`Login of ${printableName(user)} from ${this.#client.remote} refused: ${busy}`;
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
    const { address, remote } = this.#client;
    const ms = throttle.lockedFor(address);
    if (ms <= 0) return false;
    const seconds = Math.ceil(ms / 1000);
    stats.failure("AUTH_LOCKED_OUT");
    this.#context.metrics.login("locked_out");
    log.info`Login from ${remote} refused: ${address} is locked out for another ${seconds} s`;
    await this.#channel.send({
      type: "error",
      code: Status.AUTH_FAILED,
      message: `Cannot log in: too many failed logins from ${address}; try again in ${seconds} s`,
    });
    return true;
  }

  /**
   * Holds a login's answer `ms` (0: not at all), on a timer: other
   * connections go on meanwhile. The session's close ends the wait early.
   *
   * @returns True when the login may go on (the session is not closing).
   */
  async #pause(ms: number): Promise<boolean> {
    const signal = this.#client.signal;
    if (ms > 0 && !signal.aborted) {
      this.#context.metrics.answerHeld(ms);
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
    return !signal.aborted;
  }
}

/** A user name (or mechanism name) as the client sent it, for the log: escaped, and cut if long. */
function shownName(name: string | null): string {
  if (name === null) return "-";
  return excerpt(name, 64);
}
