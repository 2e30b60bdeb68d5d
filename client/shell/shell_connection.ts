/**
 * The shell's one connection: made and logged in once, with the password
 * asked at most once (on a terminal, again after a refusal, as on the
 * command line), and made again without asking when it was lost, for
 * instance closed by the server after its idle timeout. For that the
 * password typed is kept in this object's memory for the session, and
 * nowhere else.
 *
 * @module
 */

import { DfosError, Status } from "../../shared/status.ts";
import { type ConnectOptions, DfosClient } from "../connection.ts";
import { explainConnectError } from "../options.ts";

/** The shell's connection, made when first asked for and again after it is lost. */
export class ShellConnection {
  readonly #options: ConnectOptions;
  #password: ConnectOptions["password"];
  #connecting: Promise<DfosClient> | null = null;
  #client: DfosClient | null = null;

  /** @param options The server, user and password (or its prompt). */
  constructor(options: ConnectOptions) {
    this.#options = options;
    this.#password = options.password;
  }

  /** The server's address, as given. */
  get server(): string {
    return this.#options.server;
  }

  /** The user. */
  get user(): string {
    return this.#options.user;
  }

  /**
   * True when a connection is open already (made for an earlier command, or
   * at the start): a command that finds it lost may have found the server's
   * idle timeout, and can be run again on a new one.
   */
  get open(): boolean {
    return this.#client !== null;
  }

  /**
   * The logged-in connection: the one in use, or a new one.
   *
   * @returns The client.
   */
  client(): Promise<DfosClient> {
    if (this.#connecting === null) {
      this.#connecting = this.#connect();
      this.#connecting.catch(() => this.#connecting = null);
    }
    return this.#connecting;
  }

  async #connect(): Promise<DfosClient> {
    let typed: string | null = null;
    const ask = this.#password;
    const password = typeof ask === "string" ? ask : async (refusal: DfosError | null) => {
      typed = await ask(refusal);
      return typed;
    };
    try {
      const client = await DfosClient.connect({ ...this.#options, password });
      // Accepted: a new connection later logs in with it, unasked.
      if (typed !== null) this.#password = typed;
      this.#client = client;
      return client;
    } catch (error) {
      throw explainConnectError(error, this.#options.server);
    }
  }

  /** Closes the connection in use, if any; the next {@linkcode ShellConnection.client} makes a new one. */
  drop(): void {
    const client = this.#client;
    this.#client = null;
    this.#connecting = null;
    client?.close().catch(() => {});
  }

  /** Closes the connection. */
  async close(): Promise<void> {
    const client = this.#client;
    this.#client = null;
    this.#connecting = null;
    await client?.close().catch(() => {});
  }
}

/**
 * True for an error that means the connection is gone: the server closed it
 * (after its idle timeout, or shutting down), or the socket broke.
 *
 * @param error What a command threw.
 * @returns True when the connection cannot carry another request.
 */
export function connectionLost(error: unknown): boolean {
  if (
    error instanceof Deno.errors.BrokenPipe || error instanceof Deno.errors.ConnectionReset ||
    error instanceof Deno.errors.UnexpectedEof
  ) {
    return true;
  }
  return error instanceof DfosError && error.code === Status.BAD_REQUEST &&
    /idle connection closed|Connection closed by the peer|shutting down/i.test(error.message);
}
