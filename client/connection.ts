/**
 * `DfosClient`: a logged-in connection to a dfos server, and the operations
 * it carries, any number in turn. The CLI commands and the tests use it.
 *
 * @example Usage
 * ```ts ignore
 * // ignored: it needs a running server with the user alice (tests/protocol_test.ts runs one)
 * import { DfosClient } from "./connection.ts";
 * const client = await DfosClient.connect({ server: "127.0.0.1:5000", user: "alice", password: "pw" });
 * await client.remove("old.txt");
 * await client.close();
 * ```
 *
 * @module
 */

import { concatBytes } from "../shared/concat_bytes.ts";
import { BodyReceiver, type BodySummary, sendBody } from "../shared/body.ts";
import { Channel } from "../shared/channel.ts";
import { closeQuietly } from "../shared/close_quietly.ts";
import { AGENT, DEFAULT_PORT } from "../shared/defaults.ts";
import {
  type ByteRange,
  type ChunkEntry,
  decodeChunkEntries,
  decodeGroupEntries,
  encodeRanges,
  type GroupEntry,
  isSet,
  joinKeys,
  SUM_BYTES,
} from "../shared/chunk_list.ts";
import {
  type DigestAlgorithm,
  FEATURE_CHUNKS,
  FEATURE_DELTAS,
  FEATURE_HELD,
  FEATURE_SYNC,
  type ListEntry,
  MAX_HAVE_KEYS,
  MAX_READ_RANGES,
  MAX_WATCH_MS,
  type MessageOf,
  PROTOCOL_VERSION,
  REPLIES,
} from "../shared/messages.ts";
import type { Bytes } from "../shared/pooled_bytes.ts";
import { SCRAM_SHA_256 } from "../shared/scram.ts";
import { DfosError, Status } from "../shared/status.ts";
import type { ClientMechanism } from "./auth/mechanism.ts";
import { plainMechanism } from "./auth/plain.ts";
import { type ScramCredentials, scramMechanism } from "./auth/scram.ts";

/** Milliseconds the TLS handshake may take by default before the client gives up. */
export const DEFAULT_TLS_HANDSHAKE_TIMEOUT_MS = 30_000;

/** How to set up TLS, for {@linkcode ConnectOptions.tls}. */
export interface ClientTlsOptions {
  /**
   * Certificates to trust (PEM), in addition to the default roots (Mozilla's,
   * or the system's with `DENO_TLS_CA_STORE=system`, plus `DENO_CERT`): a
   * server's self-signed certificate or the CA that signed it.
   *
   * @default {[]}
   */
  caCerts?: string[];
  /**
   * Milliseconds the TLS handshake may take before the connection is given up.
   *
   * @default {DEFAULT_TLS_HANDSHAKE_TIMEOUT_MS}
   */
  handshakeTimeoutMs?: number;
}

/** Options for {@linkcode DfosClient.connect}. */
export interface ConnectOptions {
  /** `host:port`, `host`, or `[ipv6]:port`. The host is also the name the TLS certificate must carry. */
  server: string;
  /** The user to log in as. */
  user: string;
  /**
   * The user's password, or a function that asks for it once connected (after
   * HELLO: a server that cannot be reached is found out before anyone types
   * it). A function is asked again after each refused attempt while the
   * server allows another on the same connection, with that refusal.
   */
  password: string | PasswordPrompt;
  /** Called with the milliseconds the server held its answer to the login after failed logins, when it did. */
  onHeld?: (ms: number) => void;
  /**
   * Connect with TLS: `true` trusts the default roots only, an object can add
   * certificates to trust. A server whose certificate is not accepted is an
   * error ({@linkcode TlsError}); there is never a fallback to plaintext.
   *
   * @default {false}
   */
  tls?: boolean | ClientTlsOptions;
}

/**
 * Asks for the password: `refusal` is null for the first attempt, else the
 * server's refusal of the last one (to show before asking again).
 */
export type PasswordPrompt = (refusal: DfosError | null) => Promise<string>;

/** The TLS handshake with the server failed, or the client did not accept its certificate. */
export class TlsError extends Error {
  /**
   * @param message What failed and why.
   * @param options The underlying error.
   */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "TlsError";
  }
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
  /**
   * Stops the upload when aborted: the body ends with ABORT, the server
   * discards what it received (a previous version stays), and the
   * connection stays usable.
   */
  signal?: AbortSignal;
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

/**
 * A logged-in connection.
 *
 * Requests go one at a time, except the chunk requests (HAVE, ASSEMBLE,
 * GROUPS, GROUP-CHUNKS, READ) and a GET asked for `pipelined`: several of
 * those may be under way at once (push and pull keep several files in
 * flight). Each sends its request, and its body, whole in its turn, and
 * reads its reply (and a READ or GET its body) once the replies before it
 * have been read; the server answers in order, so each gets its own. A READ's
 * or pipelined GET's body must be read to its end or discarded. No other
 * call may start while they are under way.
 */
/** What an ASSEMBLE announces of the file it stores (docs/PROTOCOL.md "Chunks", "Deltas", "Sync"). */
export type AssembledFile = Omit<MessageOf<"assemble">, "type">;

export class DfosClient {
  /** The user logged in. */
  readonly user: string;
  /** What the server said it is (its WELCOME agent). */
  readonly serverAgent: string;
  /** True when the connection is TLS. */
  readonly tls: boolean;
  /** True when the server's WELCOME listed "chunks": it answers the chunk requests (docs/PROTOCOL.md, "Chunks"). */
  readonly chunks: boolean;
  /** True when the server's WELCOME listed "deltas": it answers `sums` and takes patch steps (docs/PROTOCOL.md, "Deltas"). */
  readonly deltas: boolean;
  /** True when the server's WELCOME listed "sync": it takes `ifRoot` conditions and answers `watch` (docs/PROTOCOL.md, "Sync"). */
  readonly sync: boolean;
  readonly #channel: Channel;
  /** Settles when the last pipelined request (and its body) has been sent. */
  #sent: Promise<void> = Promise.resolve();
  /** Settles when the last pipelined request's reply (and body) has been read. */
  #replied: Promise<void> = Promise.resolve();

  private constructor(
    channel: Channel,
    user: string,
    serverAgent: string,
    tls: boolean,
    features: { chunks: boolean; deltas: boolean; sync: boolean },
  ) {
    this.#channel = channel;
    this.user = user;
    this.serverAgent = serverAgent;
    this.tls = tls;
    this.chunks = features.chunks;
    this.deltas = features.chunks && features.deltas;
    this.sync = features.chunks && features.sync;
  }

  /** Bytes of frames on this connection so far, both ways. */
  get traffic(): { sent: number; received: number } {
    return this.#channel.bytes;
  }

  /**
   * Connects (with TLS if asked), says HELLO and logs in.
   *
   * @param options Server address, credentials and TLS.
   * @returns The logged-in client.
   * @throws {DfosError} `AUTH_FAILED` for a bad login, `VERSION` for a server
   * that speaks another version; {@linkcode TlsError} when the TLS handshake
   * fails or the server's certificate is not accepted;
   * `Deno.errors.ConnectionRefused` and the like when the server cannot be
   * reached.
   */
  static async connect(options: ConnectOptions): Promise<DfosClient> {
    const { password } = options;
    if (typeof password === "string") return await DfosClient.#connectOnce(options, password);
    // A person may type for longer than the server waits for a login (its handshake timeout): when the server
    // closed the connection while the prompt was up, what was typed is sent again on a new one, unasked.
    let typed: string | null = null;
    for (let reconnects = 0;; reconnects++) {
      let prompted = false;
      let resend = typed;
      const source: PasswordPrompt = async (refusal) => {
        if (resend !== null) {
          [typed, resend] = [resend, null];
          return typed;
        }
        prompted = true;
        typed = await password(refusal);
        return typed;
      };
      try {
        return await DfosClient.#connectOnce(options, source);
      } catch (error) {
        if (!prompted || reconnects >= MAX_RECONNECTS_AFTER_PROMPT || !closedByServer(error)) throw error;
      }
    }
  }

  static async #connectOnce(options: ConnectOptions, password: string | PasswordPrompt): Promise<DfosClient> {
    const { hostname, port } = parseServerAddress(options.server);
    const tls = options.tls === true ? {} : options.tls || null;
    const tcp = await Deno.connect({ hostname, port });
    // Before TLS starts: a TlsConn has no setNoDelay, and the socket keeps the option.
    tcp.setNoDelay(true);
    const conn = tls === null ? tcp : await secure(tcp, hostname, tls);
    const channel = new Channel(conn);
    try {
      await channel.send({
        type: "hello",
        protocol: "dfos",
        version: PROTOCOL_VERSION,
        agent: AGENT,
        features: [FEATURE_HELD, FEATURE_CHUNKS, FEATURE_DELTAS, FEATURE_SYNC],
      });
      const welcome = await channel.expect(...REPLIES.hello.replies).catch((error) => {
        throw tls === null && channel.broken ? notDfos(error) : error;
      });
      const user = await logIn(channel, welcome.mechanisms, { ...options, password }, tls !== null);
      const chunks = welcome.features?.includes(FEATURE_CHUNKS) ?? false;
      const deltas = welcome.features?.includes(FEATURE_DELTAS) ?? false;
      const sync = welcome.features?.includes(FEATURE_SYNC) ?? false;
      return new DfosClient(channel, user, welcome.agent, tls !== null, { chunks, deltas, sync });
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
  async put(name: string, chunks: AsyncIterable<Bytes>, options: PutOptions = {}): Promise<BodySummary> {
    const channel = this.#channel;
    const digest = options.digest ?? "crc32";
    const size = options.size ?? null;
    // The request goes out with the body's first piece (one write for a small file).
    await channel.send({ type: "put", name, size, digest }, { more: true });
    const refused = new AbortController();
    const reply = channel.expect(...REPLIES.put.replies);
    reply.then(() => refused.abort(), (error) => refused.abort(error));
    let sent: BodySummary;
    try {
      const stop = options.signal === undefined ? refused.signal : AbortSignal.any([refused.signal, options.signal]);
      sent = await sendBody(channel, stopOnAbort(chunks, stop), {
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
  async get(name: string, options: GetOptions & { pipelined?: boolean } = {}): Promise<Download> {
    const digest = options.digest ?? "crc32";
    if (options.pipelined) {
      const { reply } = await this.#inTurn(async () => {
        await this.#channel.send({ type: "get", name, limit: options.limit ?? null, digest });
        return {
          reply: this.#inOrder(async (read) => {
            const file = await this.#channel.expect(...REPLIES.get.replies);
            const body = new BodyReceiver(this.#channel, {
              expectedSize: file.size,
              algorithm: digest,
              onProgress: options.onProgress,
              onFinished: read,
            });
            return { file, body };
          }, { body: true }),
        };
      });
      return await reply;
    }
    await this.#channel.send({ type: "get", name, limit: options.limit ?? null, digest });
    const file = await this.#channel.expect(...REPLIES.get.replies);
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
   * @param options `ifRoot`: only if the file's content has this root (a server with {@linkcode DfosClient.sync}).
   * @returns The deleted file's size.
   * @throws {DfosError} `CONFLICT` "changed on the server" when `ifRoot` is not the file's root.
   */
  async remove(name: string, options: { ifRoot?: string } = {}): Promise<{ name: string; size: number }> {
    await this.#channel.send({ type: "delete", name, ifRoot: options.ifRoot });
    const ok = await this.#channel.expect(...REPLIES.delete.replies);
    return { name: ok.name, size: ok.size };
  }

  /**
   * Renames the file or folder `from` to `to` (a folder's files move with
   * it); nothing is replaced.
   *
   * @param from The old name.
   * @param to The new name.
   * @param options `ifRoot`: only if `from` is a file whose content has this root (a server with {@linkcode DfosClient.sync}).
   * @returns The names and the number of files moved.
   * @throws {DfosError} `CONFLICT` "changed on the server" when `ifRoot` is not the file's root.
   */
  async move(from: string, to: string, options: { ifRoot?: string } = {}): Promise<MessageOf<"moved">> {
    await this.#channel.send({ type: "move", from, to, ifRoot: options.ifRoot });
    return await this.#channel.expect(...REPLIES.move.replies).catch((error) => {
      throw olderServer(error, "mv");
    });
  }

  /**
   * Returns a file's size and modification time and, when asked, the
   * digest of its bytes as the server computes it.
   *
   * @param name The remote name.
   * @param options `digest`: the algorithm, or null for none.
   * @returns The file's facts.
   */
  async stat(name: string, options: { digest?: DigestAlgorithm | null } = {}): Promise<MessageOf<"info">> {
    await this.#channel.send({ type: "stat", name, digest: options.digest ?? null });
    return await this.#channel.expect(...REPLIES.stat.replies).catch((error) => {
      throw olderServer(error, "stat");
    });
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
      const page = await this.#channel.expect(...REPLIES.list.replies);
      yield* page.entries;
      if (page.next === null) return;
      after = page.next;
    }
  }

  /**
   * The user's change counter (CHANGES).
   *
   * @param since The counter this client saw, and the names it cares about (those starting with `prefix`): the
   * server then also answers, when it can, the files changed since (`changed`, their facts now) and the names
   * changed that are gone (`gone`).
   * @returns The epoch it counts in, the counter, and the changes this session made; and the changes since.
   */
  async changes(
    since?: { epoch: string; counter: number; prefix: string },
  ): Promise<{ epoch: string; counter: number; mine: number; changed?: ListEntry[]; gone?: string[] }> {
    const request = since === undefined
      ? { type: "changes" as const }
      : { type: "changes" as const, since: since.counter, epoch: since.epoch, prefix: since.prefix };
    await this.#channel.send(request);
    const { epoch, counter, mine, changed, gone } = await this.#channel.expect(...REPLIES.changes.replies);
    return changed === undefined || gone === undefined
      ? { epoch, counter, mine }
      : { epoch, counter, mine, changed, gone };
  }

  /**
   * Waits for the user's change counter to move (WATCH, docs/PROTOCOL.md
   * "Sync"): the server answers as soon as the counter is no longer `since`,
   * or after `wait` milliseconds (it may cut it: at most
   * {@linkcode MAX_WATCH_MS}) with the counter as it is, or at once when it
   * shuts down. Needs a server that said `sync` ({@linkcode DfosClient.sync}).
   *
   * Hold it on a connection of its own: nothing else can be asked on this
   * one while it waits (another request sent meanwhile would be answered
   * only after it, and makes the server answer the watch at once). A reply
   * cannot be called off in-band: `signal` aborting closes the connection,
   * and the call then rejects with the signal's reason.
   *
   * @param since The counter the client saw, and the names it cares about (those starting with `prefix`).
   * @param options `wait`: the longest wait in milliseconds (default {@linkcode MAX_WATCH_MS}); `signal`: gives up.
   * @returns As {@linkcode DfosClient.changes} with `since`: the epoch, the counter, this session's changes (`mine`),
   * and the changes since (`changed`, `gone`) when the server can say.
   */
  async watch(
    since: { epoch: string; counter: number; prefix: string },
    options: { wait?: number; signal?: AbortSignal } = {},
  ): Promise<{ epoch: string; counter: number; mine: number; changed?: ListEntry[]; gone?: string[] }> {
    const { signal } = options;
    signal?.throwIfAborted();
    const wait = options.wait ?? MAX_WATCH_MS;
    const cut = () => this.#channel.abort();
    signal?.addEventListener("abort", cut, { once: true });
    try {
      await this.#channel.send({ type: "watch", epoch: since.epoch, since: since.counter, prefix: since.prefix, wait });
      const { epoch, counter, mine, changed, gone } = await this.#channel.expect(...REPLIES.watch.replies);
      return changed === undefined || gone === undefined
        ? { epoch, counter, mine }
        : { epoch, counter, mine, changed, gone };
    } catch (error) {
      signal?.throwIfAborted();
      throw error;
    } finally {
      signal?.removeEventListener("abort", cut);
    }
  }

  /**
   * Asks which chunk hashes or group keys the server can copy (HAVE), in
   * batches of {@linkcode MAX_HAVE_KEYS}.
   *
   * @param keys Hashes or keys, 32 bytes each, any number.
   * @param upload The upload they are asked for: a kept upload's chunks count only for the one it continues.
   * @returns One flag per key: true when the server has it.
   */
  async have(keys: readonly Uint8Array[], upload?: { name: string; root: string }): Promise<boolean[]> {
    const known: boolean[] = [];
    for (let from = 0; from < keys.length; from += MAX_HAVE_KEYS) {
      const batch = keys.slice(from, from + MAX_HAVE_KEYS);
      const { reply } = await this.#inTurn(async () => {
        await this.#channel.send({ type: "have", keys: joinKeys(batch), ...upload });
        return { reply: this.#inOrder(() => this.#channel.expect(...REPLIES.have.replies)) };
      });
      const { bits } = await reply;
      if (bits.length !== Math.ceil(batch.length / 8)) {
        throw new DfosError(
          Status.BAD_REQUEST,
          `Server answered HAVE of ${batch.length} keys with ${bits.length} bytes`,
        );
      }
      batch.forEach((_, i) => known.push(isSet(bits, i)));
    }
    return known;
  }

  /**
   * A file's group list (GROUPS).
   *
   * @param name The remote name.
   * @returns Its size, mtime, version, root and groups.
   */
  async groups(
    name: string,
  ): Promise<{ size: number; mtime: number; version: string; root: string; groups: GroupEntry[] }> {
    const { reply } = await this.#inTurn(async () => {
      await this.#channel.send({ type: "groups", name });
      return {
        reply: this.#inOrder(async () => {
          const list = await this.#channel.expect(...REPLIES.groups.replies);
          return { list, bytes: await this.#readEntries(`the group list of "${name}"`) };
        }),
      };
    });
    const { list, bytes } = await reply;
    const groups = decodeGroupEntries(bytes);
    if (groups === null || groups.length !== list.count) {
      throw new DfosError(Status.BAD_REQUEST, `Server sent a malformed group list of "${name}"`);
    }
    return { size: list.size, mtime: list.mtime, version: list.version, root: list.root, groups };
  }

  /**
   * The chunk entries of groups `first` to `first + count - 1` of a version (GROUP-CHUNKS).
   *
   * @param name The remote name.
   * @param version The version from {@linkcode DfosClient.groups}.
   * @param first The first group's index.
   * @param count How many groups.
   * @returns Their chunks, in order.
   * @throws {DfosError} `CONFLICT` when the version is no longer current.
   */
  async groupChunks(name: string, version: string, first: number, count: number): Promise<ChunkEntry[]> {
    const { reply } = await this.#inTurn(async () => {
      await this.#channel.send({ type: "group-chunks", name, version, first, count });
      return {
        reply: this.#inOrder(async () => {
          const list = await this.#channel.expect(...REPLIES["group-chunks"].replies);
          return { list, bytes: await this.#readEntries(`the chunk list of "${name}"`) };
        }),
      };
    });
    const { list, bytes } = await reply;
    const chunks = decodeChunkEntries(bytes);
    if (chunks === null || chunks.length !== list.count) {
      throw new DfosError(Status.BAD_REQUEST, `Server sent a malformed chunk list of "${name}"`);
    }
    return chunks;
  }

  /**
   * The block sums of byte ranges of a version (SUMS), 12 bytes a block,
   * range after range (shared/block_delta.ts).
   *
   * @param name The remote name.
   * @param version The version to sum.
   * @param block The block size.
   * @param ranges The ranges, 1 to {@linkcode MAX_READ_RANGES}.
   * @returns The sums.
   * @throws {DfosError} `CONFLICT` when the version is no longer current.
   */
  async sums(name: string, version: string, block: number, ranges: readonly ByteRange[]): Promise<Uint8Array> {
    const { reply } = await this.#inTurn(async () => {
      await this.#channel.send({ type: "sums", name, version, block, ranges: encodeRanges(ranges) });
      return {
        reply: this.#inOrder(async () => {
          const list = await this.#channel.expect(...REPLIES.sums.replies);
          return { list, bytes: await this.#readEntries(`the block sums of "${name}"`) };
        }),
      };
    });
    const { list, bytes } = await reply;
    const expected = ranges.reduce((sum, range) => sum + Math.ceil(range.length / block), 0);
    if (bytes.length !== list.count * SUM_BYTES || list.count !== expected) {
      throw new DfosError(Status.BAD_REQUEST, `Server sent malformed block sums of "${name}"`);
    }
    return bytes;
  }

  /**
   * Ranges of a version described against this client's old bytes (DELTA):
   * the sums of its `bases` go as the body, each range's ops come back.
   *
   * @param name The remote name.
   * @param version The version wanted.
   * @param block The sums' block size.
   * @param ranges The ranges wanted, 1 to {@linkcode MAX_READ_RANGES}.
   * @param bases Where the summed old bytes lie in the local file, 1 to {@linkcode MAX_READ_RANGES}.
   * @param sums Their sums (shared/block_delta.ts `blockSums`, base after base).
   * @returns Each range's ops (shared/block_delta.ts `decodeOps`), in order.
   * @throws {DfosError} `CONFLICT` when the version is no longer current.
   */
  async delta(
    name: string,
    version: string,
    block: number,
    ranges: readonly ByteRange[],
    bases: readonly ByteRange[],
    sums: Uint8Array,
  ): Promise<Uint8Array[]> {
    const channel = this.#channel;
    const { reply } = await this.#inTurn(async () => {
      const request = { type: "delta", name, version, block, ranges: encodeRanges(ranges), bases: encodeRanges(bases) };
      await channel.send(request as MessageOf<"delta">, { more: true });
      await sendBody(
        channel,
        (async function* () {
          yield sums;
        })(),
        { algorithm: "crc32" },
      );
      return {
        reply: this.#inOrder(async () => {
          const list = await channel.expect(...REPLIES.delta.replies);
          return { list, bytes: await this.#readEntries(`the delta of "${name}"`) };
        }),
      };
    });
    const { list, bytes } = await reply;
    const bad = () => new DfosError(Status.BAD_REQUEST, `Server sent a malformed delta of "${name}"`);
    if (list.count !== ranges.length) throw bad();
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
    const out: Uint8Array[] = [];
    let at = 0;
    for (let i = 0; i < ranges.length; i++) {
      if (at + 4 > bytes.length) throw bad();
      const length = view.getUint32(at);
      if (at + 4 + length > bytes.length) throw bad();
      out.push(bytes.subarray(at + 4, at + 4 + length));
      at += 4 + length;
    }
    if (at !== bytes.length) throw bad();
    return out;
  }

  /**
   * Reads byte ranges of a version (READ): at most {@linkcode MAX_READ_RANGES}
   * at once. Iterate the body's `pieces()` or `chunks()` whole before the next request.
   *
   * @param name The remote name.
   * @param version The version from {@linkcode DfosClient.groups}.
   * @param ranges The ranges, 1 to {@linkcode MAX_READ_RANGES}.
   * @returns The FILE reply (size: the ranges' total) and the body of their bytes.
   */
  async read(name: string, version: string, ranges: readonly ByteRange[], options: GetOptions = {}): Promise<Download> {
    if (ranges.length === 0 || ranges.length > MAX_READ_RANGES) {
      throw new RangeError(`READ takes 1 to ${MAX_READ_RANGES} ranges, not ${ranges.length}`);
    }
    const total = ranges.reduce((sum, range) => sum + range.length, 0);
    const { reply } = await this.#inTurn(async () => {
      await this.#channel.send({ type: "read", name, version, ranges: encodeRanges(ranges) });
      return {
        reply: this.#inOrder(async (done) => {
          const file = await this.#channel.expect(...REPLIES.read.replies);
          if (file.size !== total) {
            throw new DfosError(Status.BAD_REQUEST, `Server announced ${file.size} bytes for ranges of ${total}`);
          }
          const body = new BodyReceiver(this.#channel, {
            expectedSize: total,
            algorithm: "crc32",
            onProgress: options.onProgress,
            onFinished: done,
          });
          return { file, body };
        }, { body: true }),
      };
    });
    return await reply;
  }

  /**
   * Stores a file from a recipe (ASSEMBLE): the steps go as the body, which
   * ends with ABORT when `signal` aborts or the steps fail.
   *
   * @param file The new file's name, size, mtime, root and chunk count; the base of its patches; its condition
   * (`ifRoot`: store only if the file's content has this root, null: only if there is none; a server with
   * {@linkcode DfosClient.sync}).
   * @param steps The recipe's bytes, in pieces.
   * @param options Progress (bytes of the recipe sent) and a stop signal.
   * @returns The stored size.
   * @throws {DfosError} `NOT_FOUND` when a step named what the server cannot find; `CONFLICT` "changed on the
   * server" when the condition does not hold.
   */
  async assemble(
    file: AssembledFile,
    steps: AsyncIterable<Bytes>,
    options: { onProgress?: (bytes: number) => void; signal?: AbortSignal } = {},
  ): Promise<{ name: string; size: number }> {
    const channel = this.#channel;
    const { reply } = await this.#inTurn(async () => {
      await channel.send({ type: "assemble", ...file }, { more: true });
      const refused = new AbortController();
      const reply = this.#inOrder(() => channel.expect(...REPLIES.assemble.replies));
      reply.then(() => refused.abort(), (error) => refused.abort(error));
      try {
        const stop = options.signal === undefined ? refused.signal : AbortSignal.any([refused.signal, options.signal]);
        await sendBody(channel, stopOnAbort(steps, stop), { algorithm: "crc32", onProgress: options.onProgress });
      } catch (error) {
        if (refused.signal.aborted && !options.signal?.aborted) await reply;
        reply.catch(() => {});
        throw error;
      }
      return { reply };
    });
    const ok = await reply;
    if (ok.size !== file.size) {
      throw new DfosError(Status.INTEGRITY, `Server stored ${ok.size} bytes of "${file.name}", ${file.size} were sent`);
    }
    return { name: ok.name, size: ok.size };
  }

  /**
   * Runs `send` once every pipelined request before it has been sent: it
   * sends one request (and its body) and queues the read of its reply,
   * which it returns wrapped (not awaited here, so that the next may go).
   */
  async #inTurn<T>(send: () => Promise<T>): Promise<T> {
    const before = this.#sent;
    let done!: () => void;
    this.#sent = new Promise((resolve) => done = resolve);
    try {
      await before;
      return await send();
    } finally {
      done();
    }
  }

  /**
   * Reads a pipelined request's reply once the replies before it have been
   * read: `read` gets the function that lets the next one go, which is
   * called when `read` settles, or, with `body`, when the reply's body has
   * been consumed (or `read` failed).
   */
  #inOrder<T>(read: (done: () => void) => Promise<T>, options: { body?: boolean } = {}): Promise<T> {
    const before = this.#replied;
    let release!: () => void;
    this.#replied = new Promise((resolve) => release = resolve);
    const result = before.then(() => read(release));
    if (options.body) result.catch(release);
    else result.then(release, release);
    return result;
  }

  /** Reads a body of entries whole (a group or chunk list; small). */
  async #readEntries(what: string): Promise<Uint8Array> {
    const body = new BodyReceiver(this.#channel, { algorithm: "crc32" });
    const parts: Uint8Array[] = [];
    try {
      for await (const piece of body.chunks()) parts.push(piece);
    } catch (error) {
      if (error instanceof DfosError) throw error;
      throw new DfosError(Status.BAD_REQUEST, `Cannot read ${what}: ${(error as Error).message}`);
    }
    return concatBytes(parts);
  }

  /** Closes the connection. */
  async close(): Promise<void> {
    await this.#channel.close();
  }
}

/**
 * Runs the TLS handshake on a fresh TCP connection, within its timeout, and
 * checks the server's certificate against `hostname`.
 *
 * @returns The TLS connection, handshake done.
 * @throws {TlsError} when the handshake fails, the certificate is not
 * accepted, or the time is up; the connection is closed then.
 */
async function secure(tcp: Deno.TcpConn, hostname: string, options: ClientTlsOptions): Promise<Deno.TlsConn> {
  const timeoutMs = options.handshakeTimeoutMs ?? DEFAULT_TLS_HANDSHAKE_TIMEOUT_MS;
  let conn: Deno.TlsConn;
  try {
    conn = await Deno.startTls(tcp, { hostname, caCerts: options.caCerts ?? [] });
  } catch (error) {
    closeQuietly(tcp);
    throw new TlsError(`TLS did not start: ${(error as Error).message}`, { cause: error });
  }
  let timedOut = false;
  const timer = timeoutMs > 0
    ? setTimeout(() => {
      timedOut = true;
      closeQuietly(conn);
    }, timeoutMs)
    : undefined;
  try {
    await conn.handshake();
    return conn;
  } catch (error) {
    closeQuietly(conn);
    if (timedOut) {
      throw new TlsError(`TLS handshake timed out after ${timeoutMs / 1000} s (is the server serving TLS?)`, {
        cause: error,
      });
    }
    throw new TlsError(explainTlsFailure((error as Error).message), { cause: error });
  } finally {
    clearTimeout(timer);
  }
}

/** Turns rustls's reason for a failed handshake into a sentence that says what to do. */
function explainTlsFailure(reason: string): string {
  const certificate = /^invalid peer certificate: (.*)$/s.exec(reason);
  if (certificate !== null) {
    // rustls wraps some reasons from the certificate checker: "Other(OtherError(CaUsedAsEndEntity))".
    const why = certificate[1].replace(/^Other\(OtherError\((\w+)\)\)$/, "$1");
    const hint = why === "UnknownIssuer"
      ? "it is not signed by a trusted authority (UnknownIssuer); trust it, or the CA that signed it, with --ca FILE"
      : why.startsWith("certificate not valid for name")
      ? `it does not carry the name the client connected to: ${why}`
      : why === "Expired"
      ? "it has expired (Expired)"
      : why === "CaUsedAsEndEntity"
      ? "it is a CA certificate, not a server's (CaUsedAsEndEntity): the server must serve a certificate " +
        "made for it with basicConstraints=critical,CA:FALSE, signed by that CA or self-signed"
      : why === "BadSignature"
      ? "its signature does not match the trusted certificate it names as its signer (BadSignature): the " +
        "server's certificate or its CA was made again with a new key, or --ca holds an old copy; give --ca " +
        "the certificate (or CA) the server uses now"
      : why;
    return `the server's TLS certificate was not accepted: ${hint}`;
  }
  // A dfos server in plaintext closes on a TLS client without a word (server/session.ts): the end of the stream.
  if (
    /corrupt message|InvalidContentType|unexpected EOF|unexpected end of file|UnexpectedEof|peer closed connection/i
      .test(reason)
  ) {
    return `TLS handshake failed: ${reason} (is the server serving TLS? a plaintext server needs no --tls)`;
  }
  return `TLS handshake failed: ${reason}`;
}

/**
 * The error for a plaintext connection whose server did not answer HELLO with
 * dfos frames: most likely a TLS server, which answers a plaintext client
 * with a TLS alert and closes.
 */
function notDfos(error: unknown): Error {
  const what = (error as Error).message === "Connection closed by the peer"
    ? "the server closed the connection without answering HELLO"
    : "the server did not answer HELLO in the dfos protocol";
  return new Error(`${what} (is it serving TLS? then connect with --tls)`, { cause: error });
}

/**
 * Picks the mechanism to log in with: SCRAM-SHA-256 whenever it is offered
 * (the password never crosses the wire), else PLAIN, but PLAIN only over TLS:
 * the client never sends the password itself on a connection without TLS,
 * whatever a server (a fake one, or a man in the middle) offers.
 *
 * @param offered The mechanisms in the server's WELCOME.
 * @param credentials The user and password.
 * @param tls True when the connection is TLS.
 * @returns The mechanism, ready to start.
 * @throws {DfosError} `UNSUPPORTED` when none can be used.
 */
function chooseMechanism(offered: string[], credentials: ScramCredentials, tls: boolean): ClientMechanism {
  const candidates = [scramMechanism(credentials), plainMechanism(credentials)];
  const usable = candidates.find((mechanism) => offered.includes(mechanism.name) && (tls || !mechanism.sendsPassword));
  if (usable !== undefined) return usable;
  if (candidates.some((mechanism) => offered.includes(mechanism.name))) {
    throw new DfosError(
      Status.UNSUPPORTED,
      `Cannot log in: the server offers only ${offered.join(", ")}, which would send the password in clear on a ` +
        `connection without TLS, and dfos will not send it (a dfos server always offers ${SCRAM_SHA_256}; PLAIN needs --tls)`,
    );
  }
  throw new DfosError(
    Status.UNSUPPORTED,
    `Cannot log in: the server offers ${offered.join(", ") || "no mechanism"}, not ${
      candidates.map((mechanism) => mechanism.name).join(" or ")
    }`,
  );
}

/**
 * Logs in: once with a password given, or with a prompt, again after each
 * refusal that says attempts are left ("(2 attempts left)"), on the same
 * connection.
 *
 * @returns The user logged in.
 */
async function logIn(channel: Channel, offered: string[], options: ConnectOptions, tls: boolean): Promise<string> {
  const { user, password, onHeld } = options;
  let refusal: DfosError | null = null;
  while (true) {
    const credentials = { user, password: typeof password === "string" ? password : await password(refusal) };
    try {
      return await login(channel, chooseMechanism(offered, credentials, tls), onHeld);
    } catch (error) {
      if (typeof password === "string" || !mayTryAgain(error)) throw error;
      refusal = error;
    }
  }
}

/** New connections a login with a prompt may open after the server closed one while the prompt was up. */
const MAX_RECONNECTS_AFTER_PROMPT = 2;

/**
 * True when the server ended the connection on its own account during the
 * login: its handshake timeout ("Handshake timed out"), or a close the
 * client found out about by writing or reading.
 */
function closedByServer(error: unknown): boolean {
  if (error instanceof Deno.errors.BrokenPipe || error instanceof Deno.errors.ConnectionReset) return true;
  return error instanceof DfosError && error.code === Status.BAD_REQUEST &&
    (error.message === "Handshake timed out" || error.message === "Connection closed by the peer");
}

/** True for a refused login after which the server said it takes another attempt on this connection. */
function mayTryAgain(error: unknown): error is DfosError {
  return error instanceof DfosError && error.code === Status.AUTH_FAILED &&
    /\(\d+ attempts? left\b/.test(error.message);
}

async function login(channel: Channel, mechanism: ClientMechanism, onHeld?: (ms: number) => void): Promise<string> {
  await channel.send({ type: "auth", mechanism: mechanism.name, data: await mechanism.start() });
  // The same replies answer the auth and each auth-response after it.
  while (true) {
    const reply = await channel.expect(...REPLIES["auth-response"].replies);
    if (reply.type === "auth-ok") {
      await mechanism.finish(reply.data);
      if (reply.held !== undefined && reply.held > 0) onHeld?.(reply.held);
      return reply.user;
    }
    await channel.send({ type: "auth-response", data: await mechanism.step(reply.data) });
  }
}

/** Says so when an older server did not know a request (`UNSUPPORTED`, unknown type). */
function olderServer(error: unknown, command: string): unknown {
  if (error instanceof DfosError && error.code === Status.UNSUPPORTED && /unknown type/.test(error.message)) {
    return new DfosError(Status.UNSUPPORTED, `Cannot ${command}: the server is an older dfos without it`);
  }
  return error;
}

async function* stopOnAbort(chunks: AsyncIterable<Bytes>, signal: AbortSignal): AsyncGenerator<Bytes> {
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
