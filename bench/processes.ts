/**
 * The processes the benchmark starts, and nothing else: long-lived servers
 * (stopped by PID at the end: SIGTERM, then SIGKILL after 5 s) and one-shot
 * client processes (killed when they outlive their timeout), and waiting
 * for a listener (free ports come from tests/_common.ts).
 *
 * @module
 */

import { delay } from "../tests/_common.ts";

/** How long a stopped server gets between SIGTERM and SIGKILL. */
const STOP_GRACE_MS = 5_000;

/** How a client process ended. */
export interface ClientResult {
  /** The exit code (128 + signal when killed). */
  code: number;
  /** True when it was killed for outliving its timeout. */
  timedOut: boolean;
  /** What it wrote on standard error. */
  stderr: string;
}

/** Where and how a process runs. */
export interface SpawnOptions {
  /** Variables added to the benchmark's own environment. */
  env?: Record<string, string>;
  /** The working folder. */
  cwd?: string;
}

/** A server process started in the background, its output appended to a log file. */
export class Server {
  /** What it is, for messages. */
  readonly name: string;
  /** Its command line. */
  readonly argv: string[];
  readonly #child: Deno.ChildProcess;
  readonly #done: Promise<Deno.CommandStatus>;
  #exited = false;

  /** @internal Use {@linkcode ProcessGroup.startServer}. */
  constructor(name: string, argv: string[], child: Deno.ChildProcess, logged: Promise<unknown>) {
    this.name = name;
    this.argv = argv;
    this.#child = child;
    this.#done = Promise.all([child.status, logged]).then(([status]) => {
      this.#exited = true;
      return status;
    });
  }

  /** Its process id. */
  get pid(): number {
    return this.#child.pid;
  }

  /** Resolves when it has exited and its output is in the log. */
  get finished(): Promise<Deno.CommandStatus> {
    return this.#done;
  }

  /** True once it has exited. */
  get exited(): boolean {
    return this.#exited;
  }

  /**
   * Waits for the server to exit by itself; past `timeoutMs` it is stopped.
   *
   * @param timeoutMs How long to wait.
   * @returns Its exit status, and whether it had to be stopped.
   */
  async waitForExit(timeoutMs: number): Promise<{ status: Deno.CommandStatus; timedOut: boolean }> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<"late">((resolve) => timer = setTimeout(() => resolve("late"), timeoutMs));
    const first = await Promise.race([this.#done, late]);
    clearTimeout(timer);
    if (first !== "late") return { status: first, timedOut: false };
    return { status: await this.stop(), timedOut: true };
  }

  /**
   * Stops the server by its PID: SIGTERM, then SIGKILL if it is still there
   * after 5 s.
   *
   * @returns Its exit status.
   */
  async stop(): Promise<Deno.CommandStatus> {
    if (!this.#exited) {
      signal(this.#child, "SIGTERM");
      let timer: ReturnType<typeof setTimeout> | undefined;
      const late = new Promise<"late">((resolve) => timer = setTimeout(() => resolve("late"), STOP_GRACE_MS));
      const first = await Promise.race([this.#done, late]);
      clearTimeout(timer);
      if (first === "late") signal(this.#child, "SIGKILL");
    }
    return await this.#done;
  }
}

/** Every process one benchmark run starts, so that all of them can be stopped at its end. */
export class ProcessGroup {
  readonly #servers = new Set<Server>();
  readonly #clients = new Set<Deno.ChildProcess>();
  #stopping = false;

  /**
   * Starts a server in the background; its standard output and error are
   * appended to `log`.
   *
   * @param name What it is, for messages.
   * @param argv The command line.
   * @param options Its environment and working folder, and the log file.
   * @returns The running server.
   */
  startServer(name: string, argv: string[], options: SpawnOptions & { log: string }): Server {
    this.#checkRunning(argv);
    const child = new Deno.Command(argv[0], {
      args: argv.slice(1),
      env: options.env,
      cwd: options.cwd,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const logged = Promise.all([appendTo(child.stdout, options.log), appendTo(child.stderr, options.log)]);
    const server = new Server(name, argv, child, logged);
    this.#servers.add(server);
    server.finished.then(() => this.#servers.delete(server));
    return server;
  }

  /**
   * Runs one client process to its end, killing it (SIGKILL) if it runs
   * longer than `timeoutMs`.
   *
   * @param argv The command line.
   * @param options Its environment, working folder and timeout.
   * @returns How it ended.
   */
  async runClient(argv: string[], options: SpawnOptions & { timeoutMs: number }): Promise<ClientResult> {
    this.#checkRunning(argv);
    const child = new Deno.Command(argv[0], {
      args: argv.slice(1),
      env: options.env,
      cwd: options.cwd,
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    this.#clients.add(child);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      signal(child, "SIGKILL");
    }, options.timeoutMs);
    try {
      const [status, stderr] = await Promise.all([child.status, new Response(child.stderr).text()]);
      return { code: status.code, timedOut, stderr };
    } finally {
      clearTimeout(timer);
      this.#clients.delete(child);
    }
  }

  /**
   * Kills the running clients and stops every server still running, last
   * started first. The group starts nothing after this.
   */
  async stopAll(): Promise<void> {
    this.#stopping = true;
    for (const child of this.#clients) signal(child, "SIGKILL");
    for (const server of [...this.#servers].reverse()) await server.stop();
  }

  #checkRunning(argv: string[]): void {
    if (this.#stopping) throw new Error(`Cannot start "${argv[0]}": the benchmark is stopping`);
  }
}

/**
 * Waits until something listens on 127.0.0.1:`port`, read from
 * /proc/net/tcp without connecting (a one-shot listener would take the
 * connection as its transfer).
 *
 * @param port The port.
 * @param timeoutMs How long to wait.
 */
export async function waitForListener(port: number, timeoutMs: number): Promise<void> {
  const local = `0100007F:${port.toString(16).toUpperCase().padStart(4, "0")}`;
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const table = await Deno.readTextFile("/proc/net/tcp");
    // columns: sl local_address rem_address st ...; state 0A is LISTEN
    if (table.split("\n").some((line) => line.trim().split(/\s+/)[1] === local && line.includes(" 0A "))) return;
    await delay(20);
  }
  throw new Error(`Nothing listens on 127.0.0.1:${port} after ${timeoutMs / 1000} s`);
}

/**
 * Waits until 127.0.0.1:`port` accepts a connection (the connection is
 * closed at once).
 *
 * @param port The port.
 * @param timeoutMs How long to wait.
 * @param server The server that should be listening: give up if it exits.
 */
export async function waitForAccept(port: number, timeoutMs: number, server?: Server): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (server?.exited) throw new Error(`${server.name} exited before it accepted connections`);
    try {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      conn.close();
      return;
    } catch {
      await delay(50);
    }
  }
  throw new Error(`127.0.0.1:${port} accepts no connection after ${timeoutMs / 1000} s`);
}

/** Sends a signal, ignoring a process that has exited already. */
function signal(child: Deno.ChildProcess, name: Deno.Signal): void {
  try {
    child.kill(name);
  } catch {
    // it has exited
  }
}

/** Appends a process's output stream to a file. */
async function appendTo(stream: ReadableStream<Uint8Array>, path: string): Promise<void> {
  const file = await Deno.open(path, { append: true, create: true });
  await stream.pipeTo(file.writable);
}
