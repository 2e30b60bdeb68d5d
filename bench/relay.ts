/**
 * A counting TCP relay for the benchmark: listens on 127.0.0.1 (a free
 * port), forwards every connection to a real server's port and counts the
 * payload bytes each way, so two tools' bytes on the wire are measured the
 * same way (TCP payload, without the TCP/IP headers). It can also call back
 * once the client has sent a given number of bytes (to kill a client part
 * way through an upload).
 *
 * @module
 */

/** The relay's read buffer per direction. */
const BUFFER_BYTES = 256 * 1024;

/** A relay in front of one server port. */
export class CountingRelay {
  /** The port it listens on, on 127.0.0.1. */
  readonly port: number;
  /** Bytes from clients to the server since the last {@linkcode CountingRelay.reset}. */
  up = 0;
  /** Bytes from the server to clients since the last reset. */
  down = 0;
  readonly #listener: Deno.TcpListener;
  readonly #target: number;
  readonly #conns = new Set<Deno.Conn>();
  readonly #pipes = new Set<Promise<void>>();
  #watch: { bytes: number; then: () => void } | null = null;
  #holding = false;
  #accepting: Promise<void>;

  private constructor(listener: Deno.TcpListener, target: number) {
    this.#listener = listener;
    this.port = (listener.addr as Deno.NetAddr).port;
    this.#target = target;
    this.#accepting = this.#accept();
  }

  /**
   * Starts a relay.
   *
   * @param targetPort The real server's port on 127.0.0.1.
   * @returns The relay, accepting connections.
   */
  static start(targetPort: number): CountingRelay {
    return new CountingRelay(Deno.listen({ hostname: "127.0.0.1", port: 0 }), targetPort);
  }

  /** Both ways together. */
  get total(): number {
    return this.up + this.down;
  }

  /** Zeroes the counters, drops a pending cut and forwards again after one. */
  reset(): void {
    this.up = 0;
    this.down = 0;
    this.#watch = null;
    this.#holding = false;
  }

  /**
   * Forwards client bytes until {@linkcode CountingRelay.up} reaches
   * `bytes`, then forwards (and counts) no more of them until the next
   * reset, and calls `then` once.
   *
   * @param bytes How many bytes towards the server to deliver.
   * @param then What to call when they are delivered.
   */
  cutAt(bytes: number, then: () => void): void {
    this.#watch = { bytes: Math.floor(bytes), then };
  }

  /** Stops listening, closes every relayed connection and waits for the pipes to end. */
  async close(): Promise<void> {
    this.#listener.close();
    for (const conn of this.#conns) closeQuietly(conn);
    await this.#accepting;
    await Promise.all(this.#pipes);
  }

  async #accept(): Promise<void> {
    try {
      for await (const client of this.#listener) {
        const pipe = this.#relay(client);
        this.#pipes.add(pipe);
        pipe.finally(() => this.#pipes.delete(pipe));
      }
    } catch {
      // the listener was closed
    }
  }

  async #relay(client: Deno.TcpConn): Promise<void> {
    this.#conns.add(client);
    let server: Deno.TcpConn | null = null;
    try {
      server = await Deno.connect({ hostname: "127.0.0.1", port: this.#target });
      this.#conns.add(server);
      client.setNoDelay(true);
      server.setNoDelay(true);
      const s = server;
      await Promise.all([this.#pipe(client, s, true), this.#pipe(s, client, false)]);
    } catch {
      // a reset connection (a killed client) ends both directions
    } finally {
      for (const conn of [client, server]) {
        if (conn !== null) {
          closeQuietly(conn);
          this.#conns.delete(conn);
        }
      }
    }
  }

  async #pipe(from: Deno.TcpConn, to: Deno.TcpConn, up: boolean): Promise<void> {
    const buffer = new Uint8Array(BUFFER_BYTES);
    try {
      for (;;) {
        let n = await from.read(buffer);
        if (n === null) break;
        if (up && this.#holding) continue;
        const watch = up ? this.#watch : null;
        if (watch !== null && this.up + n >= watch.bytes) n = Math.max(0, watch.bytes - this.up);
        if (up) this.up += n;
        else this.down += n;
        let written = 0;
        while (written < n) written += await to.write(buffer.subarray(written, n));
        if (watch !== null && this.up >= watch.bytes) {
          this.#watch = null;
          this.#holding = true;
          watch.then();
        }
      }
      await to.closeWrite().catch(() => {});
    } catch (error) {
      // one side gone: end the other too
      closeQuietly(from);
      closeQuietly(to);
      throw error;
    }
  }
}

function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // closed already
  }
}
