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
import { fileURLToPath } from "node:url";
import { DfosClient } from "../client/connection.ts";
import { type ProcessMemory, processMemory } from "./process_memory.ts";
import { freePort, type ProcessGroup, type Server, waitForAccept } from "./processes.ts";

/** The repository root (with a trailing slash). */
export const REPO = fileURLToPath(new URL("..", import.meta.url));
/** The repository's `main.ts`: the dfos command line. */
export const MAIN_TS = fileURLToPath(new URL("../main.ts", import.meta.url));
/** The user every benchmark server knows. */
export const BENCH_USER = "bench";
/** How long a server gets to start accepting connections. */
const START_TIMEOUT_MS = 30_000;

/** A certificate and its key for a TLS server, as files. */
export interface BenchCertificate {
  /** The certificate (PEM), also what clients trust with `--ca`. */
  certFile: string;
  /** Its private key (PEM). */
  keyFile: string;
}

/** Options for {@linkcode DfosServer.start}. */
export interface DfosServerOptions {
  /** A folder of its own: the storage root, users file and logs go in it. */
  dir: string;
  /** Where the server process is started (and stopped at the end). */
  processes: ProcessGroup;
  /** Flags added after the usual ones (`--max-connections 1200`). */
  extraArgs?: string[];
  /** Serve TLS with this certificate (`--tls-cert`, `--tls-key`); clients then connect with `--tls --ca`. */
  tls?: BenchCertificate;
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
  readonly tls: BenchCertificate | null;
  readonly #server: Server;

  private constructor(server: Server, port: number, root: string, password: string, tls: BenchCertificate | null) {
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
    await Deno.writeTextFile(users, `${BENCH_USER}:${password}\n`, { mode: 0o600 });
    const port = freePort();
    const argv = [
      Deno.execPath(),
      "run",
      "-A",
      MAIN_TS,
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
    const server = processes.startServer("dfos server", argv, { cwd: REPO, log: join(dir, "dfos-server.out") });
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
      argv: [Deno.execPath(), "run", "-A", MAIN_TS, ...args],
      env: {
        DFOS_SERVER: this.address,
        DFOS_USER: this.user,
        DFOS_PASSWORD: this.password,
        ...(this.tls ? { DFOS_TLS: "1", DFOS_CA: this.tls.certFile } : {}),
      },
      cwd: REPO,
    };
  }

  /**
   * Connects an in-process client and logs in.
   *
   * @returns The client.
   */
  async connect(): Promise<DfosClient> {
    const tls = this.tls ? { caCerts: [await Deno.readTextFile(this.tls.certFile)] } : false;
    return await DfosClient.connect({ server: this.address, user: this.user, password: this.password, tls });
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
  const { stdout } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN_TS, "serve", "--help"],
    cwd: REPO,
    stdin: "null",
    stdout: "piped",
    stderr: "null",
  }).output();
  return new RegExp(`(^|\\s)${flag}(\\s|=|$)`, "m").test(new TextDecoder().decode(stdout));
}

/**
 * Makes a self-signed EC P-256 certificate for 127.0.0.1 and localhost, valid
 * for a day, with openssl (`basicConstraints=critical,CA:FALSE`: Deno refuses
 * a CA certificate as a server's).
 *
 * @param dir Where `server.pem` and `server.key` go.
 * @returns The two files.
 */
export async function makeCertificate(dir: string): Promise<BenchCertificate> {
  const certFile = join(dir, "server.pem");
  const keyFile = join(dir, "server.key");
  const args = [
    "req",
    "-x509",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-nodes",
    "-days",
    "1",
    "-subj",
    "/CN=localhost",
    "-addext",
    "subjectAltName=DNS:localhost,IP:127.0.0.1",
    "-addext",
    "basicConstraints=critical,CA:FALSE",
    "-keyout",
    keyFile,
    "-out",
    certFile,
  ];
  const { code, stderr } = await new Deno.Command("openssl", { args, stdin: "null", stdout: "null", stderr: "piped" })
    .output();
  if (code !== 0) throw new Error(`Cannot make a certificate with openssl: ${new TextDecoder().decode(stderr).trim()}`);
  return { certFile, keyFile };
}

/**
 * Random bytes in hex, for passwords.
 *
 * @param bytes How many random bytes.
 * @returns Twice as many hex digits.
 */
export function randomHex(bytes: number): string {
  return Array.from(crypto.getRandomValues(new Uint8Array(bytes)), (b) => b.toString(16).padStart(2, "0")).join("");
}
