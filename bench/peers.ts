/**
 * The peers the benchmark compares: raw TCP with socat (the wire's limit),
 * the bare Deno copy (`bare_copy.ts`: what a Deno program reaches), an rsync daemon, OpenSSH sftp against a private sshd, and dfos, in
 * plaintext and over TLS. Each peer
 * starts its servers on 127.0.0.1 (free ports, stopped by PID at the end) and
 * moves one file in either direction with one whole client process.
 *
 * @module
 */

import { basename, join } from "node:path";
import { fileURLToPath } from "node:url";
import { freePort, makeCertificate, randomHex } from "../tests/_common.ts";
import { BENCH_USER, DfosServer } from "./dfos_server.ts";
import { type ProcessGroup, type Server, waitForListener } from "./processes.ts";

/** put = client to server, get = server to client. */
export type Direction = "put" | "get";

/** Both directions, in the order each round runs them. */
export const DIRECTIONS: readonly Direction[] = ["put", "get"];

/** The peers this module knows, in the order a round runs them. */
export const PEER_IDS = ["socat", "deno-bare", "rsync", "sftp", "dfos", "dfos-verify", "dfos-tls"] as const;

/** One of {@linkcode PEER_IDS}. */
export type PeerId = typeof PEER_IDS[number];

/** socat's block size: `-b 1048576` (its default is 8 KiB). */
export const SOCAT_BUFFER = 1_048_576;

/** The user every peer's server knows. */
const USER = BENCH_USER;
/** How long a server gets to start listening. */
const START_TIMEOUT_MS = 30_000;
/**
 * The rsync daemon's listen backlog, as in the peers harness: with rsyncd's
 * default of 5, many clients at once wait for SYN retries, not for rsync.
 */
const RSYNCD_BACKLOG = 64;

/** What every peer is given. */
export interface PeerContext {
  /** The benchmark's scratch folder; a peer keeps its files in its own subfolders. */
  dir: string;
  /** Where its servers and clients are started. */
  processes: ProcessGroup;
  /** How long one client process may run before it is killed. */
  timeoutMs: number;
}

/** A way to move a file between a client and a server on this machine. */
export interface Peer {
  /** Its name in the table. */
  readonly id: PeerId;
  /** What exactly is measured. */
  readonly label: string;
  /** The command lines of the long-lived servers it started. */
  readonly servers: string[][];
  /** Starts its servers (untimed). */
  start(): Promise<void>;
  /**
   * Where the server keeps `name` on this machine (for seeding a get and
   * checking a put).
   */
  serverPath(name: string): string;
  /** Untimed set-up just before a timed run (socat's one-shot listener). */
  prepare?(direction: Direction, name: string): Promise<void>;
  /**
   * The timed part: one whole client process, until the transfer is complete
   * on both ends. Throws when the client fails or outlives its timeout.
   *
   * @param direction Which way.
   * @param local The client's file: read for a put, written for a get.
   * @param name The server's name for the file.
   * @returns The command lines it ran.
   */
  transfer(direction: Direction, local: string, name: string): Promise<string[][]>;
  /** Undoes what `start` changed outside the scratch folder (its servers are stopped by the process group). */
  close?(): Promise<void>;
}

/** Options for {@linkcode createPeer}. */
export interface PeerOptions {
  /**
   * Options added to every client command line, e.g. `--sockopts=TCP_NODELAY`
   * for rsync or `-o KexAlgorithms=curve25519-sha256` for sftp (rsync and sftp only).
   */
  clientArgs?: string[];
}

/**
 * Makes a peer.
 *
 * @param id Which one.
 * @param context Its scratch folder, process group and client timeout.
 * @param options Client options (rsync and sftp).
 * @returns The peer, not started yet.
 */
export function createPeer(id: PeerId, context: PeerContext, options: PeerOptions = {}): Peer {
  const clientArgs = options.clientArgs ?? [];
  if (clientArgs.length > 0 && id !== "rsync" && id !== "sftp") {
    throw new RangeError(`Cannot give client options to peer "${id}": only rsync and sftp take them`);
  }
  switch (id) {
    case "socat":
      return new SocatPeer(context);
    case "deno-bare":
      return new BareCopyPeer(context);
    case "rsync":
      return new RsyncPeer(context, clientArgs);
    case "sftp":
      return new SftpPeer(context, clientArgs);
    case "dfos":
      return new DfosPeer(context);
    case "dfos-verify":
      return new DfosPeer(context, { verify: true });
    case "dfos-tls":
      return new DfosPeer(context, { tls: true });
  }
}

/** Raw TCP, file -> socket -> file: a one-shot socat listener per run, started untimed. */
class SocatPeer implements Peer {
  readonly id = "socat";
  readonly label = `socat raw TCP, -b ${SOCAT_BUFFER}`;
  readonly servers: string[][] = [];
  readonly #context: PeerContext;
  readonly #root: string;
  #listener: { server: Server; port: number } | undefined;

  constructor(context: PeerContext) {
    this.#context = context;
    this.#root = join(context.dir, "srv", "socat");
  }

  async start(): Promise<void> {
    await Deno.mkdir(this.#root, { recursive: true });
  }

  serverPath(name: string): string {
    return join(this.#root, name);
  }

  async prepare(direction: Direction, name: string): Promise<void> {
    const port = freePort();
    const listen = `TCP-LISTEN:${port},bind=127.0.0.1,reuseaddr`;
    const file = this.serverPath(name);
    const ends = direction === "put" ? [listen, `OPEN:${file},creat,trunc,wronly`] : [`OPEN:${file},rdonly`, listen];
    const server = this.#context.processes.startServer("socat listener", [
      "socat",
      "-u",
      "-b",
      `${SOCAT_BUFFER}`,
      ...ends,
    ], {
      log: join(this.#context.dir, "logs", "socat-listener.log"),
    });
    this.#listener = { server, port };
    await waitForListener(port, 5_000);
  }

  async transfer(direction: Direction, local: string): Promise<string[][]> {
    const listener = this.#listener;
    this.#listener = undefined;
    if (listener === undefined) throw new Error("Cannot run socat: no listener was started");
    const started = Date.now();
    const tcp = `TCP:127.0.0.1:${listener.port}`;
    const ends = direction === "put" ? [`OPEN:${local},rdonly`, tcp] : [tcp, `OPEN:${local},creat,trunc,wronly`];
    const argv = ["socat", "-u", "-b", `${SOCAT_BUFFER}`, ...ends];
    try {
      await runClient(this.#context, argv);
    } catch (error) {
      await listener.server.stop();
      throw error;
    }
    const left = Math.max(0, this.#context.timeoutMs - (Date.now() - started));
    const { status, timedOut } = await listener.server.waitForExit(left);
    if (timedOut) throw new Error(`socat listener was stopped after ${this.#context.timeoutMs / 1000} s`);
    if (!status.success) throw new Error(`socat listener failed: exit status ${status.code}`);
    return [listener.server.argv, argv];
  }
}

/**
 * The bare Deno copy (`bench/bare_copy.ts`): 1 MiB `conn.read`/`conn.write`, synchronous 1 MiB file calls,
 * CRC-32 on both ends; like socat, a one-shot listener per run, started untimed.
 */
class BareCopyPeer implements Peer {
  readonly id = "deno-bare";
  readonly label = "bare Deno copy (bench/bare_copy.ts: 1 MiB conn.read/write, sync file calls, CRC-32 both ends)";
  readonly servers: string[][] = [];
  readonly #context: PeerContext;
  readonly #root: string;
  readonly #script = fileURLToPath(new URL("./bare_copy.ts", import.meta.url));
  #listener: { server: Server; port: number; direction: Direction } | undefined;

  constructor(context: PeerContext) {
    this.#context = context;
    this.#root = join(context.dir, "srv", "deno-bare");
  }

  async start(): Promise<void> {
    await Deno.mkdir(this.#root, { recursive: true });
  }

  serverPath(name: string): string {
    return join(this.#root, name);
  }

  async prepare(direction: Direction, name: string): Promise<void> {
    const port = freePort();
    const argv = [Deno.execPath(), "run", "-A", this.#script, "serve", `${port}`, this.serverPath(name), direction];
    const server = this.#context.processes.startServer("bare copy listener", argv, {
      log: join(this.#context.dir, "logs", "deno-bare-listener.log"),
    });
    this.#listener = { server, port, direction };
    await waitForListener(port, 10_000);
  }

  async transfer(direction: Direction, local: string): Promise<string[][]> {
    const listener = this.#listener;
    this.#listener = undefined;
    if (listener === undefined) throw new Error("Cannot run the bare copy: no listener was started");
    const started = Date.now();
    const argv = [Deno.execPath(), "run", "-A", this.#script, "client", `${listener.port}`, local, direction];
    try {
      await runClient(this.#context, argv);
    } catch (error) {
      await listener.server.stop();
      throw error;
    }
    const left = Math.max(0, this.#context.timeoutMs - (Date.now() - started));
    const { status, timedOut } = await listener.server.waitForExit(left);
    if (timedOut) throw new Error(`bare copy listener was stopped after ${this.#context.timeoutMs / 1000} s`);
    if (!status.success) throw new Error(`bare copy listener failed: exit status ${status.code}`);
    return [listener.server.argv, argv];
  }
}

/** An rsync daemon (one module, auth users + secrets file), clients with `--whole-file`. */
/** The rsync daemon (one module, `files`, with password login); the sync section also runs its own rsync clients against it. */
export class RsyncPeer implements Peer {
  readonly id = "rsync";
  readonly label: string;
  readonly servers: string[][] = [];
  readonly #context: PeerContext;
  readonly #clientArgs: string[];
  readonly #root: string;
  readonly #password = randomHex(12);
  #port = 0;

  constructor(context: PeerContext, clientArgs: string[]) {
    this.#context = context;
    this.#clientArgs = clientArgs;
    this.label = ["rsync daemon, --whole-file", ...clientArgs].join(" ");
    this.#root = join(context.dir, "srv", "rsync");
  }

  async start(): Promise<void> {
    const config = join(this.#context.dir, "rsyncd");
    await Deno.mkdir(config, { recursive: true });
    await Deno.mkdir(this.#root, { recursive: true });
    const secrets = join(config, "secrets");
    await Deno.writeTextFile(secrets, `${USER}:${this.#password}\n`, { mode: 0o600 });
    const user = await commandOutput(["id", "-un"]);
    const group = await commandOutput(["id", "-gn"]);
    await Deno.writeTextFile(
      join(config, "rsyncd.conf"),
      [
        `pid file = ${join(config, "rsyncd.pid")}`,
        `log file = ${join(this.#context.dir, "logs", "rsyncd.log")}`,
        `listen backlog = ${RSYNCD_BACKLOG}`,
        `use chroot = ${Deno.uid() === 0 ? "yes" : "no"}`,
        "",
        "[files]",
        `  path = ${this.#root}`,
        "  read only = false",
        `  auth users = ${USER}`,
        `  secrets file = ${secrets}`,
        `  uid = ${user}`,
        `  gid = ${group}`,
        "",
      ].join("\n"),
    );
    this.#port = freePort();
    const server = this.#context.processes.startServer("rsync daemon", [
      "rsync",
      "--daemon",
      "--no-detach",
      "--address=127.0.0.1",
      `--port=${this.#port}`,
      `--config=${join(config, "rsyncd.conf")}`,
    ], { log: join(this.#context.dir, "logs", "rsyncd.out") });
    this.servers.push(server.argv);
    await waitForListener(this.#port, START_TIMEOUT_MS);
  }

  serverPath(name: string): string {
    return join(this.#root, name);
  }

  /** The daemon's port on 127.0.0.1 (once started). */
  get port(): number {
    return this.#port;
  }

  /**
   * The `rsync://` address of `name` in the daemon's module.
   *
   * @param name The path in the module (end it with "/" for a folder's contents).
   * @param port The port to reach the daemon through (a relay in front of it); default its own.
   * @returns The address.
   */
  url(name: string, port: number = this.#port): string {
    return `rsync://${USER}@127.0.0.1:${port}/files/${name}`;
  }

  /** The environment an rsync client needs to log in (`RSYNC_PASSWORD`). */
  get clientEnv(): Record<string, string> {
    return { RSYNC_PASSWORD: this.#password };
  }

  async transfer(direction: Direction, local: string, name: string): Promise<string[][]> {
    const url = `rsync://${USER}@127.0.0.1:${this.#port}/files/${name}`;
    const ends = direction === "put" ? [local, url] : [url, local];
    const argv = ["rsync", "--whole-file", ...this.#clientArgs, ...ends];
    await runClient(this.#context, argv, { RSYNC_PASSWORD: this.#password });
    return [argv];
  }
}

/** OpenSSH sftp (one batch command per process) against a private sshd with public-key login. */
class SftpPeer implements Peer {
  readonly id = "sftp";
  readonly label: string;
  readonly servers: string[][] = [];
  readonly #context: PeerContext;
  readonly #clientArgs: string[];
  readonly #root: string;
  readonly #config: string;
  #madePrivsepDir = false;

  constructor(context: PeerContext, clientArgs: string[]) {
    this.#context = context;
    this.#clientArgs = clientArgs;
    this.label = ["OpenSSH sftp, default cipher, private sshd", ...clientArgs].join(" ");
    this.#root = join(context.dir, "srv", "sftp");
    this.#config = join(context.dir, "ssh");
  }

  async start(): Promise<void> {
    const d = this.#config;
    await Deno.mkdir(d, { recursive: true, mode: 0o700 });
    await Deno.mkdir(this.#root, { recursive: true });
    const user = await commandOutput(["id", "-un"]);
    const port = freePort();
    for (const [key, comment] of [["host_ed25519", "bench-host"], ["id_ed25519", "bench-client"]]) {
      await commandOutput(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", join(d, key)]);
    }
    await Deno.copyFile(join(d, "id_ed25519.pub"), join(d, "authorized_keys"));
    const hostKey = (await Deno.readTextFile(join(d, "host_ed25519.pub"))).split(" ").slice(0, 2).join(" ");
    await Deno.writeTextFile(join(d, "known_hosts"), `[127.0.0.1]:${port} ${hostKey}\n`);
    await Deno.writeTextFile(
      join(d, "sshd_config"),
      [
        `Port ${port}`,
        "ListenAddress 127.0.0.1",
        "AddressFamily inet",
        `HostKey ${join(d, "host_ed25519")}`,
        `PidFile ${join(d, "sshd.pid")}`,
        `AuthorizedKeysFile ${join(d, "authorized_keys")}`,
        "PubkeyAuthentication yes",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "PermitRootLogin prohibit-password",
        `AllowUsers ${user}`,
        "UsePAM no",
        "StrictModes no",
        "UseDNS no",
        "PrintMotd no",
        "PrintLastLog no",
        "X11Forwarding no",
        "AllowTcpForwarding no",
        "LogLevel ERROR",
        // no login shell between sshd and the sftp server: its rc files are not OpenSSH's cost
        "Subsystem sftp internal-sftp",
        "",
      ].join("\n"),
    );
    await Deno.writeTextFile(
      join(d, "ssh_config"),
      [
        "Host peer",
        "  HostName 127.0.0.1",
        `  Port ${port}`,
        `  User ${user}`,
        "  IdentitiesOnly yes",
        `  IdentityFile ${join(d, "id_ed25519")}`,
        `  UserKnownHostsFile ${join(d, "known_hosts")}`,
        "  GlobalKnownHostsFile /dev/null",
        "  StrictHostKeyChecking yes",
        "  CheckHostIP no",
        "  UpdateHostKeys no",
        "  BatchMode yes",
        "  ControlMaster no",
        "  ControlPath none",
        "  AddressFamily inet",
        "  LogLevel ERROR",
        "",
      ].join("\n"),
    );
    // sshd run as root needs its privilege-separation folder; made here if absent, removed in close()
    if (Deno.uid() === 0 && !(await exists("/run/sshd"))) {
      await Deno.mkdir("/run/sshd", { mode: 0o755 });
      this.#madePrivsepDir = true;
    }
    const sshd = "/usr/sbin/sshd";
    await commandOutput([sshd, "-t", "-f", join(d, "sshd_config")]);
    const server = this.#context.processes.startServer("sshd", [sshd, "-D", "-e", "-f", join(d, "sshd_config")], {
      log: join(this.#context.dir, "logs", "sshd.log"),
    });
    this.servers.push(server.argv);
    await waitForListener(port, START_TIMEOUT_MS);
  }

  serverPath(name: string): string {
    return join(this.#root, name);
  }

  async transfer(direction: Direction, local: string, name: string): Promise<string[][]> {
    const remote = this.serverPath(name);
    const batch = join(this.#config, "batch");
    const command = direction === "put" ? ["put", local, remote] : ["get", remote, local];
    await Deno.writeTextFile(batch, `${command.join(" ")}\n`);
    const argv = ["sftp", "-q", ...this.#clientArgs, "-F", join(this.#config, "ssh_config"), "-b", batch, "peer"];
    await runClient(this.#context, argv);
    return [argv, ["# batch file:", ...command]];
  }

  async close(): Promise<void> {
    if (this.#madePrivsepDir) await Deno.remove("/run/sshd").catch(() => {});
    this.#madePrivsepDir = false;
  }
}

/** Options for {@linkcode DfosPeer}. */
export interface DfosPeerOptions {
  /**
   * Serve TLS (a self-signed EC P-256 certificate made at start) and connect
   * with `--tls --ca` (as `DFOS_TLS`, `DFOS_CA`): the peer "dfos-tls".
   *
   * @default {false}
   */
  tls?: boolean;
  /**
   * Check bodies with SHA-256 (`--verify`) instead of CRC-32: the peer "dfos-verify".
   *
   * @default {false}
   */
  verify?: boolean;
}

/** dfos: `main.ts serve` as a subprocess, and the `main.ts put` / `get` command line as the client. */
export class DfosPeer implements Peer {
  readonly id: "dfos" | "dfos-verify" | "dfos-tls";
  readonly label: string;
  readonly servers: string[][] = [];
  readonly #context: PeerContext;
  readonly #tls: boolean;
  readonly #verify: boolean;
  #server: DfosServer | null = null;

  constructor(context: PeerContext, options: DfosPeerOptions = {}) {
    this.#context = context;
    this.#tls = options.tls ?? false;
    this.#verify = options.verify ?? false;
    this.id = this.#tls ? "dfos-tls" : this.#verify ? "dfos-verify" : "dfos";
    this.label = this.#tls
      ? "dfos over TLS, EC P-256 certificate (deno run -A main.ts, --tls --ca)"
      : this.#verify
      ? "dfos with SHA-256 (deno run -A main.ts, --verify)"
      : "dfos (deno run -A main.ts)";
  }

  /** The running server (for in-process clients), once started. */
  get server(): DfosServer {
    if (this.#server === null) throw new Error("Cannot use the dfos peer: it has not been started");
    return this.#server;
  }

  async start(): Promise<void> {
    const dir = join(this.#context.dir, this.id);
    await Deno.mkdir(dir, { recursive: true });
    const tls = this.#tls ? await makeCertificate(dir, "server") : undefined;
    this.#server = await DfosServer.start({ dir, processes: this.#context.processes, tls });
    this.servers.push(this.#server.argv);
  }

  serverPath(name: string): string {
    return this.server.path(name);
  }

  async transfer(direction: Direction, local: string, name: string): Promise<string[][]> {
    const verify = this.#verify ? ["--verify"] : [];
    const call = this.server.cli(
      direction === "put" ? ["put", ...verify, local, name] : ["get", ...verify, name, local],
    );
    await runClient(this.#context, call.argv, call.env, call.cwd);
    return [call.argv];
  }
}

/** Runs one client process; throws with its status and last line of stderr unless it succeeded. */
async function runClient(context: PeerContext, argv: string[], env?: Record<string, string>, cwd?: string) {
  const result = await context.processes.runClient(argv, { env, cwd, timeoutMs: context.timeoutMs });
  const client = basename(argv[0]);
  if (result.timedOut) throw new Error(`${client} was killed after ${context.timeoutMs / 1000} s`);
  if (result.code !== 0) {
    const last = result.stderr.trim().split("\n").filter((line) => !line.startsWith("    at ")).at(-1) ?? "";
    throw new Error(`${client} exited with status ${result.code}${last ? `: ${last}` : ""}`);
  }
}

/** Runs a short set-up command and returns its standard output, trimmed. */
async function commandOutput(argv: string[]): Promise<string> {
  const { code, stdout, stderr } = await new Deno.Command(argv[0], { args: argv.slice(1), stdin: "null" }).output();
  const text = new TextDecoder();
  if (code !== 0) throw new Error(`Cannot run "${argv[0]}": status ${code}: ${text.decode(stderr).trim()}`);
  return text.decode(stdout).trim();
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch {
    return false;
  }
}
