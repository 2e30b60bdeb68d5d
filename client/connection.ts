/**
 * `DfosClient`: a logged-in connection to a dfos server, and the operations
 * it carries, any number in turn. The CLI commands and the tests use it.
 *
 * @example Usage
 * ```ts ignore
 * import { DfosClient } from "./connection.ts";
 * const client = await DfosClient.connect({ server: "127.0.0.1:5000", user: "alice", password: "pw" });
 * await client.remove("old.txt");
 * await client.close();
 * ```
 *
 * @module
 */

import { BodyReceiver, type BodySummary, sendBody } from "../shared/body.ts";
import { Channel } from "../shared/channel.ts";
import { type DigestAlgorithm, type ListEntry, type MessageOf, PROTOCOL_VERSION } from "../shared/messages.ts";
import { DfosError, Status } from "../shared/status.ts";
import type { ClientMechanism } from "./auth/mechanism.ts";
import { plainMechanism } from "./auth/plain.ts";

/** The client's name and version, as sent in HELLO. */
export const CLIENT_AGENT = "dfos/0.1.0";

/** The port used when the server address names none. */
export const DEFAULT_PORT = 5000;

/** Options for {@linkcode DfosClient.connect}. */
export interface ConnectOptions {
  /** `host:port`, `host`, or `[ipv6]:port`. */
  server: string;
  /** The user to log in as. */
  user: string;
  /** The user's password. */
  password: string;
}

/** Options for {@linkcode DfosClient.put}. */
export interface PutOptions {
  /**
   * How the body is checked end to end: `crc32` (fast) or `sha256` (`--verify`).
   *
   * @default {"crc32"}
   */
  digest?: DigestAlgorithm;
  /** The body's length, when known in advance (the server then checks it). */
  size?: number | null;
  /** Called with the bytes sent so far. */
  onProgress?: (bytes: number) => void;
}

/** Options for {@linkcode DfosClient.get}. */
export interface GetOptions {
  /**
   * How the body is checked end to end: `crc32` (fast) or `sha256` (`--verify`).
   *
   * @default {"crc32"}
   */
  digest?: DigestAlgorithm;
  /** Only the first `limit` bytes (a preview). */
  limit?: number | null;
  /** Called with the bytes received so far. */
  onProgress?: (bytes: number) => void;
}

/** A download under way: the file's facts, then its body. */
export interface Download {
  /** The FILE reply: name, size (of this body), modification time. */
  file: MessageOf<"file">;
  /** The body; iterate `body.chunks()`, which checks length and digest at the end. */
  body: BodyReceiver;
}

/** A logged-in connection. */
export class DfosClient {
  /** The user logged in. */
  readonly user: string;
  /** What the server said it is (its WELCOME agent). */
  readonly serverAgent: string;
  readonly #channel: Channel;

  private constructor(channel: Channel, user: string, serverAgent: string) {
    this.#channel = channel;
    this.user = user;
    this.serverAgent = serverAgent;
  }

  /**
   * Connects, says HELLO and logs in.
   *
   * @param options Server address and credentials.
   * @returns The logged-in client.
   * @throws {DfosError} `AUTH_FAILED` for a bad login, `VERSION` for a server
   * that speaks another version; `Deno.errors.ConnectionRefused` and the like
   * when the server cannot be reached.
   */
  static async connect(options: ConnectOptions): Promise<DfosClient> {
    const { hostname, port } = parseServerAddress(options.server);
    const conn = await Deno.connect({ hostname, port });
    conn.setNoDelay(true);
    const channel = new Channel(conn);
    try {
      await channel.send({ type: "hello", protocol: "dfos", version: PROTOCOL_VERSION, agent: CLIENT_AGENT });
      const welcome = await channel.expect("welcome");
      const mechanism = plainMechanism({ user: options.user, password: options.password });
      if (!welcome.mechanisms.includes(mechanism.name)) {
        throw new DfosError(
          Status.UNSUPPORTED,
          `Cannot log in: the server offers ${welcome.mechanisms.join(", ") || "no mechanism"}, not ${mechanism.name}`,
        );
      }
      const user = await login(channel, mechanism);
      return new DfosClient(channel, user, welcome.agent);
    } catch (error) {
      channel.abort();
      throw error;
    }
  }

  /**
   * Uploads a body to `name`. The server answers as soon as it refuses (bad
   * name, ...), and the upload then stops without sending the rest.
   *
   * @param name The remote name.
   * @param chunks The body; chunks must not be changed after they are yielded.
   * @param options Announced size, progress.
   * @returns The stored size and the digest sent.
   */
  async put(name: string, chunks: AsyncIterable<Uint8Array>, options: PutOptions = {}): Promise<BodySummary> {
    const channel = this.#channel;
    const digest = options.digest ?? "crc32";
    const size = options.size ?? null;
    await channel.send({ type: "put", name, size, digest });
    const refused = new AbortController();
    const reply = channel.expect("ok");
    reply.then(() => refused.abort(), (error) => refused.abort(error));
    let sent: BodySummary;
    try {
      sent = await sendBody(channel, stopOnAbort(chunks, refused.signal), {
        algorithm: digest,
        sizeHint: size,
        onProgress: options.onProgress,
      });
    } catch (error) {
      if (refused.signal.aborted) await reply; // the server's refusal is the reason
      reply.catch(() => {});
      throw error;
    }
    const ok = await reply;
    if (ok.size !== sent.size) {
      throw new DfosError(Status.INTEGRITY, `Server stored ${ok.size} bytes of "${name}", ${sent.size} were sent`);
    }
    return sent;
  }

  /**
   * Starts a download of `name`. Read the whole body before the next request.
   *
   * @param name The remote name.
   * @param options A byte limit (preview), progress.
   * @returns The file's facts and its body.
   */
  async get(name: string, options: GetOptions = {}): Promise<Download> {
    const digest = options.digest ?? "crc32";
    await this.#channel.send({ type: "get", name, limit: options.limit ?? null, digest });
    const file = await this.#channel.expect("file");
    const body = new BodyReceiver(this.#channel, {
      expectedSize: file.size,
      algorithm: digest,
      onProgress: options.onProgress,
    });
    return { file, body };
  }

  /**
   * Deletes `name`.
   *
   * @param name The remote name.
   * @returns The deleted file's size.
   */
  async remove(name: string): Promise<{ name: string; size: number }> {
    await this.#channel.send({ type: "delete", name });
    const ok = await this.#channel.expect("ok");
    return { name: ok.name, size: ok.size };
  }

  /**
   * Lists the user's files whose names start with `prefix`, sorted by name,
   * fetching one page at a time.
   *
   * @param prefix A name prefix, "" for all.
   */
  async *list(prefix = ""): AsyncGenerator<ListEntry> {
    let after = "";
    while (true) {
      await this.#channel.send({ type: "list", prefix, after });
      const page = await this.#channel.expect("listing");
      yield* page.entries;
      if (page.next === null) return;
      after = page.next;
    }
  }

  /** Closes the connection. */
  async close(): Promise<void> {
    await this.#channel.close();
  }
}

async function login(channel: Channel, mechanism: ClientMechanism): Promise<string> {
  await channel.send({ type: "auth", mechanism: mechanism.name, data: await mechanism.start() });
  while (true) {
    const reply = await channel.expect("auth-continue", "auth-ok");
    if (reply.type === "auth-ok") {
      await mechanism.finish(reply.data);
      return reply.user;
    }
    await channel.send({ type: "auth-response", data: await mechanism.step(reply.data) });
  }
}

async function* stopOnAbort(chunks: AsyncIterable<Uint8Array>, signal: AbortSignal): AsyncGenerator<Uint8Array> {
  for await (const chunk of chunks) {
    signal.throwIfAborted();
    yield chunk;
  }
  signal.throwIfAborted();
}

/**
 * Splits `host:port` (`[v6]:port`, or a bare host with the default port).
 *
 * @param server The address as written.
 * @returns Host and port.
 * @throws {TypeError} for an address that cannot be parsed.
 */
export function parseServerAddress(server: string): { hostname: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:\[\]]+))(?::(\d{1,5}))?$/.exec(server.trim());
  const port = match?.[3] === undefined ? DEFAULT_PORT : Number(match[3]);
  if (!match || port < 1 || port > 65535) {
    throw new TypeError(`Cannot use server address "${server}": expected HOST:PORT`);
  }
  return { hostname: match[1] ?? match[2], port };
}
