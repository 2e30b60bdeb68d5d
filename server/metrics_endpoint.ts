/**
 * `serveMetrics()`: the HTTP endpoint `dfos serve --metrics HOST:PORT`
 * opens, `GET /metrics` answered with the server's metrics in Prometheus's
 * text format (0.0.4). It runs in the process around the server's sandbox
 * (server/serve_command.ts), not in the sandbox: it reads the numbers the
 * worker counts in shared memory (`ServerMetrics`, server/server_metrics.ts),
 * so a scrape costs the server's event loop nothing and the worker needs no
 * address but its own. It answers nothing but `/metrics` (404), and only
 * GET and HEAD (405); it never reads a request's body.
 *
 * @example Usage
 * ```ts
 * import assert from "node:assert/strict";
 * import { serveMetrics } from "./metrics_endpoint.ts";
 * const endpoint = serveMetrics({ hostname: "127.0.0.1", port: 0, render: () => "up 1\n" });
 * const response = await fetch(`http://127.0.0.1:${endpoint.addr.port}/metrics`);
 * assert.equal(await response.text(), "up 1\n");
 * await endpoint.shutdown();
 * ```
 *
 * @module
 */

/** The content type of the text exposition format. */
export const METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/** Options for {@linkcode serveMetrics}. */
export interface MetricsEndpointOptions {
  /** The address to listen on. */
  hostname: string;
  /** The port; 0 picks a free one (read it back from `addr`). */
  port: number;
  /** Renders the exposition for one scrape (`ServerMetrics.render`). */
  render: () => string;
}

/** A running metrics endpoint. */
export interface MetricsEndpoint {
  /** The address it listens on. */
  readonly addr: Deno.NetAddr;
  /** Stops listening and closes its connections; resolves once it has. Safe to call twice. */
  shutdown(): Promise<void>;
}

/**
 * Starts the metrics endpoint.
 *
 * @param options Where to listen, and what to answer.
 * @returns The endpoint, listening.
 * @throws {Error} when the address cannot be listened on (in use, not this host's).
 */
export function serveMetrics(options: MetricsEndpointOptions): MetricsEndpoint {
  const { hostname, port, render } = options;
  let server: Deno.HttpServer<Deno.NetAddr>;
  try {
    server = Deno.serve({ hostname, port, onListen: () => {} }, (request) => answer(request, render));
  } catch (error) {
    throw new Error(`Cannot listen for metrics on ${hostname}:${port}: ${(error as Error).message}`, {
      cause: error,
    });
  }
  let stopping: Promise<void> | null = null;
  return {
    addr: server.addr,
    shutdown() {
      stopping ??= server.shutdown().then(() => server.finished);
      return stopping;
    },
  };
}

/** One request's answer: the metrics for `GET /metrics`, 404 or 405 for anything else. */
function answer(request: Request, render: () => string): Response {
  const path = new URL(request.url).pathname;
  if (path !== "/metrics") {
    return new Response("Not found: the metrics are at /metrics\n", { status: 404, headers: plain() });
  }
  if (request.method !== "GET" && request.method !== "HEAD") {
    return new Response(`Method ${request.method} not allowed: use GET\n`, {
      status: 405,
      headers: { ...plain(), allow: "GET, HEAD" },
    });
  }
  const text = render();
  return new Response(request.method === "HEAD" ? null : text, {
    headers: { "content-type": METRICS_CONTENT_TYPE, "cache-control": "no-store" },
  });
}

function plain(): Record<string, string> {
  return { "content-type": "text/plain; charset=utf-8" };
}
