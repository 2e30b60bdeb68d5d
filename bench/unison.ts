/**
 * Unison for the benchmark's two-way section: `unison -socket PORT -listen
 * 127.0.0.1` as a server in a folder of its own (a free port, stopped by its
 * PID), and client command lines that sync a local folder with a folder on
 * that server (`socket://127.0.0.1:PORT//ABSOLUTE`), never asking anything.
 * The server and every client ("laptop") have their own `UNISON` and `HOME`
 * folders in the scratch folder, so no archive of one run is read by
 * another, or written outside.
 *
 * @module
 */

import { join } from "node:path";
import type { CliCall } from "./dfos_server.ts";
import { type ProcessGroup, type Server, waitForListener } from "./processes.ts";
import { freePort, PROJECT_DIR } from "../tests/_common.ts";

/** How long the server gets to start listening. */
const START_TIMEOUT_MS = 10_000;

/**
 * What every client run is given: no questions (`-batch`: conflicts are
 * skipped, not asked about), no output but errors, no log file, and
 * modification times kept (as dfos keeps them). The rest are Unison's
 * defaults: `-fastcheck` (size, time and inode decide what changed),
 * `-rsync` (a changed file goes as a delta), `-xferbycopying`.
 */
export const UNISON_CLIENT_OPTIONS: readonly string[] = [
  "-batch",
  "-auto",
  "-silent",
  "-contactquietly",
  "-times",
  "-log=false",
  "-ui",
  "text",
];

/** Options for {@linkcode UnisonServer.start}. */
export interface UnisonServerOptions {
  /**
   * Its folder: its `UNISON` folder, its replicas and its log go in it. A
   * second server started on the same folder serves the same replicas: a
   * socket server serves one connection at a time, so two clients that stay
   * connected (`-repeat`) need one each, as two ssh clients get a `unison
   * -server` each.
   */
  dir: string;
  /** Where the server process is started (and stopped at the end). */
  processes: ProcessGroup;
}

/** Options for {@linkcode UnisonServer.client}. */
export interface UnisonClientOptions {
  /** The client's folder (the first root). */
  local: string;
  /** The server's folder, a name under its replicas (the second root). */
  remote: string;
  /** The port to connect to on 127.0.0.1: the server's, or a relay's in front of it. */
  port: number;
  /** The client's own `UNISON` and `HOME` folder (its archives). */
  home: string;
  /** Options after {@linkcode UNISON_CLIENT_OPTIONS} (`-repeat 1`). */
  extraArgs?: string[];
}

/** A running `unison -socket` server. */
export class UnisonServer {
  /** The port it listens on, on 127.0.0.1. */
  readonly port: number;
  /** `unison -version`'s line. */
  readonly version: string;
  readonly #server: Server;
  readonly #replicas: string;

  private constructor(server: Server, port: number, replicas: string, version: string) {
    this.#server = server;
    this.port = port;
    this.#replicas = replicas;
    this.version = version;
  }

  /**
   * Starts a server and waits until it listens.
   *
   * @param options Its folder and process group.
   * @returns The running server.
   * @throws {Error} when Unison is not installed, with how to install it.
   */
  static async start(options: UnisonServerOptions): Promise<UnisonServer> {
    const version = await unisonVersion();
    const home = join(options.dir, "home");
    const replicas = join(options.dir, "replicas");
    await Deno.mkdir(home, { recursive: true });
    await Deno.mkdir(replicas, { recursive: true });
    const port = freePort();
    const argv = ["unison", "-socket", `${port}`, "-listen", "127.0.0.1"];
    const server = options.processes.startServer("unison server", argv, {
      env: { UNISON: home, HOME: home },
      cwd: options.dir,
      log: join(options.dir, `unison-server-${port}.log`),
    });
    await waitForListener(port, START_TIMEOUT_MS);
    return new UnisonServer(server, port, replicas, version);
  }

  /** The server's command line. */
  get argv(): string[] {
    return this.#server.argv;
  }

  /**
   * Where the server keeps its folder `name` on this machine.
   *
   * @param name The folder's name.
   * @returns Its path.
   */
  path(name: string): string {
    return join(this.#replicas, name);
  }

  /**
   * A client command line: `unison LOCAL socket://127.0.0.1:PORT//REMOTE` with {@linkcode UNISON_CLIENT_OPTIONS}.
   *
   * @param options The two folders, the port, the client's home.
   * @returns The command line, its environment and working folder.
   */
  client(options: UnisonClientOptions): CliCall {
    const remote = `socket://127.0.0.1:${options.port}/${this.path(options.remote)}`;
    return {
      argv: ["unison", options.local, remote, ...UNISON_CLIENT_OPTIONS, ...(options.extraArgs ?? [])],
      env: { UNISON: options.home, HOME: options.home },
      cwd: PROJECT_DIR,
    };
  }
}

/**
 * `unison -version`'s line.
 *
 * @returns The line, e.g. `unison version 2.52.1 (ocaml 4.13.1)`.
 * @throws {Error} when Unison is not installed, with how to install it.
 */
export async function unisonVersion(): Promise<string> {
  try {
    const { code, stdout } = await new Deno.Command("unison", { args: ["-version"], stdin: "null", stderr: "null" })
      .output();
    if (code === 0) return new TextDecoder().decode(stdout).trim();
  } catch {
    // not found
  }
  throw new Error(
    "Cannot run the twoway section: unison is not installed (every figure is set beside Unison; " +
      "install it, e.g. apt-get install unison, or leave the section out with --only)",
  );
}
