/**
 * `Session`: one client connection on the server, from HELLO to close:
 * version handshake, authentication (three attempts), then any number of
 * requests in turn, each dispatched through `HANDLERS`.
 *
 * @module
 */

import type { Logger } from "@logtape/logtape";
import { BodyReceiver, sendBody } from "../shared/body.ts";
import { Channel } from "../shared/channel.ts";
import { MAX_FRAME_LENGTH } from "../shared/frames.ts";
import { MAX_CONTROL_LENGTH, type Message, type MessageOf, PROTOCOL_VERSION } from "../shared/messages.ts";
import { printableName } from "../shared/names.ts";
import { DfosError, Status, statusName } from "../shared/status.ts";
import type { AuthMechanism, AuthStep } from "./auth/mechanism.ts";
import { errorReply } from "./errors.ts";
import { HANDLERS, isRequestType, type Reply, type Request, type RequestType } from "./handlers.ts";
import type { ServerStats } from "./stats.ts";
import type { Storage } from "./storage.ts";

/** Failed logins allowed on one connection before it is closed. */
export const MAX_AUTH_ATTEMPTS = 3;

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
}

/** One client connection being served. */
export class Session {
  /** The client's address, `host:port`. */
  readonly remote: string;
  readonly #channel: Channel;
  readonly #context: SessionContext;
  readonly #opened = performance.now();
  #user: string | null = null;
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
    this.#context = context;
    // Until login, nothing larger than a control frame is accepted.
    this.#channel = new Channel(conn, { maxFrameLength: MAX_CONTROL_LENGTH });
  }

  /** Serves the connection until the client leaves or the session is aborted. Never rejects. */
  async run(): Promise<void> {
    const { log, stats } = this.#context;
    stats.connectionOpened();
    log.info`Connection from ${this.remote}`;
    try {
      if (await this.#handshake() && await this.#authenticate()) {
        this.#channel.maxFrameLength = MAX_FRAME_LENGTH;
        await this.#serveRequests();
      }
    } catch (error) {
      await this.#refuse(error);
    } finally {
      await this.#channel.close();
      stats.connectionClosed();
      const seconds = (performance.now() - this.#opened) / 1000;
      log.info`Connection from ${this.remote} closed: user ${this.#user ?? "-"}, ${
        seconds.toFixed(3)
      } s, ${this.#operations} operations, ${this.#bytesIn} bytes in, ${this.#bytesOut} bytes out`;
    }
  }

  /** Closes the connection at once; the transfer in progress, if any, fails and is cleaned up. */
  abort(): void {
    this.#channel.abort();
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
    while (true) {
      let message: Message | null;
      try {
        message = await this.#channel.receive();
      } catch (error) {
        if (this.#channel.broken) throw error;
        await this.#sendError(error); // a well-framed message of an unknown type or shape
        continue;
      }
      if (message === null) return;
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
