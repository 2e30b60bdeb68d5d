/**
 * `CountingProxy`: a TCP proxy on loopback in front of a test server that
 * counts the bytes each way and can hold a transfer part-way (everything
 * past a point is read and dropped), for tests of what moves on the wire and
 * of clients interrupted in the middle.
 *
 * @module
 */

/** A TCP proxy to the server that counts the bytes each way and can drop everything past a point. */
export class CountingProxy implements AsyncDisposable {
  readonly #listener: Deno.TcpListener;
  readonly #target: number;
  readonly #conns = new Set<Deno.Conn>();
  readonly #pumps = new Set<Promise<void>>();
  readonly #accepting: Promise<void>;
  /** Bytes from clients to the server since the last `reset()`. */
  up = 0;
  /** Bytes from the server to clients since the last `reset()`. */
  down = 0;
  /** Past this many bytes (counted since `reset()`) in that direction, bytes are read and dropped. */
  gate: { direction: "up" | "down"; after: number } | null = null;

  constructor(target: number) {
    this.#target = target;
    this.#listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    this.#accepting = this.#accept();
  }

  get address(): string {
    return `127.0.0.1:${this.#listener.addr.port}`;
  }

  reset(): void {
    this.up = 0;
    this.down = 0;
    this.gate = null;
  }

  async #accept(): Promise<void> {
    for await (const client of this.#listener) {
      const server = await Deno.connect({ hostname: "127.0.0.1", port: this.#target });
      this.#conns.add(client);
      this.#conns.add(server);
      const pair = Promise.all([this.#pump(client, server, "up"), this.#pump(server, client, "down")]).then(() => {
        this.#conns.delete(client);
        this.#conns.delete(server);
      });
      this.#pumps.add(pair);
      pair.finally(() => this.#pumps.delete(pair));
    }
  }

  async #pump(from: Deno.Conn, to: Deno.Conn, direction: "up" | "down"): Promise<void> {
    const buffer = new Uint8Array(64 * 1024);
    try {
      while (true) {
        const n = await from.read(buffer);
        if (n === null) break;
        let pass = n;
        if (this.gate?.direction === direction) pass = Math.max(0, Math.min(n, this.gate.after - this[direction]));
        this[direction] += n;
        let at = 0;
        while (at < pass) at += await to.write(buffer.subarray(at, pass));
      }
    } catch {
      // the other side went away
    }
    for (const conn of [from, to]) {
      try {
        conn.close();
      } catch {
        // closed by the other pump
      }
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.#listener.close();
    await this.#accepting.catch(() => {});
    for (const conn of this.#conns) {
      try {
        conn.close();
      } catch {
        // closed already
      }
    }
    await Promise.all(this.#pumps);
  }
}
