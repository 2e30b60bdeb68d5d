/**
 * A dfos server for the benchmark: `main.ts serve` as a subprocess on
 * 127.0.0.1 (a free port, one user with a random password, its own storage
 * root and logs; TLS with a certificate made at start if asked), stopped by
 * its PID; and what the benchmark does with it:
 * command lines for the `dfos` CLI, in-process clients, the server's memory.
 *
 * @module
 */

import { join } from "node:path";
import { DfosClient } from "../client/connection.ts";
import { type ProcessMemory, processMemory } from "./process_memory.ts";
import { type Certificate, freePort, MAIN, PROJECT_DIR, randomHex } from "../tests/_common.ts";
import { type ProcessGroup, type Server, waitForAccept } from "./processes.ts";

/** The user every benchmark server knows. */
export const BENCH_USER = "bench";
/** A second user, for figures about what one user's work does to another's. */
export const BENCH_OTHER_USER = "bench-other";
/** How long a server gets to start accepting connections. */
const START_TIMEOUT_MS = 30_000;

/** Options for {@linkcode DfosServer.start}. */
export interface DfosServerOptions {
  /** A folder of its own: the storage root, users file and logs go in it. */
  dir: string;
  /** Where the server process is started (and stopped at the end). */
  processes: ProcessGroup;
  /** Flags added after the usual ones (`--max-connections 1200`). */
  extraArgs?: string[];
  /** Serve TLS with this certificate (`--tls-cert`, `--tls-key`); clients then connect with `--tls --ca`. */
  tls?: Certificate;
}

/** A command line for the `dfos` CLI against one server. */
export interface CliCall {
  /** The command line. */
  argv: string[];
  /** `DFOS_SERVER`, `DFOS_USER`, `DFOS_PASSWORD`. */
  env: Record<string, string>;
  /** The repository root. */
  cwd: string;
}

/** A running `dfos serve` subprocess. */
export class DfosServer {
  /** The user to log in as. */
  readonly user = BENCH_USER;
  /** Its password. */
  readonly password: string;
  /** The port it listens on, on 127.0.0.1. */
  readonly port: number;
  /** Its storage root. */
  readonly root: string;
  /** Its certificate when it serves TLS, else null. */
  readonly tls: Certificate | null;
  readonly #server: Server;

  private constructor(server: Server, port: number, root: string, password: string, tls: Certificate | null) {
    this.#server = server;
    this.port = port;
    this.root = root;
    this.password = password;
    this.tls = tls;
  }

  /**
   * Starts a server and waits until it accepts connections.
   *
   * @param options Its folder, process group and extra flags.
   * @returns The running server.
   */
  static async start(options: DfosServerOptions): Promise<DfosServer> {
    const { dir, processes } = options;
    const root = join(dir, "root");
    // the user's folder exists before the first login, so files can be linked into it
    await Deno.mkdir(join(root, BENCH_USER), { recursive: true, mode: 0o750 });
    const password = randomHex(12);
    const users = join(dir, "id_passwd.txt");
    await Deno.writeTextFile(users, `${BENCH_USER}:${password}\n${BENCH_OTHER_USER}:${password}\n`, { mode: 0o600 });
    const port = freePort();
    const argv = [
      Deno.execPath(),
      "run",
      "-A",
      MAIN,
      "serve",
      "--host",
      "127.0.0.1",
      "--port",
      `${port}`,
      "--root",
      root,
      "--users",
      users,
      "--log",
      join(dir, "dfos-performance.log"),
      ...(options.tls ? ["--tls-cert", options.tls.certFile, "--tls-key", options.tls.keyFile] : []),
      ...(options.extraArgs ?? []),
    ];
    const server = processes.startServer("dfos server", argv, { cwd: PROJECT_DIR, log: join(dir, "dfos-server.out") });
    await waitForAccept(port, START_TIMEOUT_MS, server);
    return new DfosServer(server, port, root, password, options.tls ?? null);
  }

  /** The server's command line. */
  get argv(): string[] {
    return this.#server.argv;
  }

  /** Its process id (the Deno process itself, so its /proc figures are the server's). */
  get pid(): number {
    return this.#server.pid;
  }

  /** `127.0.0.1:PORT`. */
  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  /**
   * Where the server keeps `name` on this machine.
   *
   * @param name The remote name.
   * @returns The path under the user's folder.
   */
  path(name: string): string {
    return join(this.root, this.user, name);
  }

  /**
   * A `dfos` CLI command line against this server.
   *
   * @param args The subcommand and its arguments (`["put", LOCAL, NAME]`).
   * @returns The command line, its environment and working folder.
   */
  cli(args: string[]): CliCall {
    return {
      argv: [Deno.execPath(), "run", "-A", MAIN, ...args],
      env: {
        DFOS_SERVER: this.address,
        DFOS_USER: this.user,
        DFOS_PASSWORD: this.password,
        ...(this.tls ? { DFOS_TLS: "1", DFOS_CA: this.tls.certFile } : {}),
      },
      cwd: PROJECT_DIR,
    };
  }

  /**
   * Connects an in-process client and logs in.
   *
   * @param user Who logs in: the bench user, or {@linkcode BENCH_OTHER_USER}.
   * @returns The client.
   */
  async connect(user: string = this.user): Promise<DfosClient> {
    const tls = this.tls ? { caCerts: [await Deno.readTextFile(this.tls.certFile)] } : false;
    return await DfosClient.connect({ server: this.address, user, password: this.password, tls });
  }

  /**
   * The server process's memory now.
   *
   * @returns VmRSS and VmHWM in bytes.
   */
  memory(): Promise<ProcessMemory> {
    return processMemory(this.pid);
  }

  /**
   * Stops the server by its PID (SIGTERM, then SIGKILL after 5 s).
   *
   * @returns Its exit status.
   */
  stop(): Promise<Deno.CommandStatus> {
    return this.#server.stop();
  }
}

/**
 * Whether `dfos serve --help` lists a flag (some flags are being added while
 * the benchmark is written; it passes them only where they exist).
 *
 * @param flag The flag, e.g. `--max-connections`.
 * @returns True when the help text names it.
 */
export async function serveHasFlag(flag: string): Promise<boolean> {
  return new RegExp(`(^|\\s)${flag}(\\s|=|$)`, "m").test(await cliHelp("serve") ?? "");
}

/**
 * `dfos COMMAND --help`'s text, or null when this build has no such command
 * (commands too are added while the benchmark is written).
 *
 * @param command The subcommand.
 * @returns Its help text, or null.
 */
export async function cliHelp(command: string): Promise<string | null> {
  const { code, stdout } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, command, "--help"],
    cwd: PROJECT_DIR,
    stdin: "null",
    stdout: "piped",
    stderr: "null",
  }).output();
  return code === 0 ? new TextDecoder().decode(stdout) : null;
}
