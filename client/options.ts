/**
 * The flags every client command takes (`--server`, `--user`, `--tls`,
 * `--ca`), their environment variables, and turning them into
 * `ConnectOptions`.
 *
 * @module
 */

import { CommandFailure, type ParsedArgs, UsageError } from "../shared/cli.ts";
import { dropOptionPermissions } from "../shared/permissions.ts";
import { DEFAULT_SERVER } from "../shared/defaults.ts";
import { type ClientTlsOptions, type ConnectOptions, DfosClient, parseServerAddress } from "./connection.ts";
import { passwordSource } from "../shared/password_prompt.ts";

export { CLIENT_OPTIONS, CLIENT_OPTIONS_USAGE, VERIFY_OPTION, VERIFY_USAGE } from "./command_table.ts";

/**
 * Reads server, user and password from flags, environment and prompt.
 *
 * @param args The parsed command line.
 * @returns Options to connect with.
 */
export async function connectOptions(args: ParsedArgs): Promise<ConnectOptions> {
  const server = (args.values.server as string | undefined) ?? Deno.env.get("DFOS_SERVER") ?? DEFAULT_SERVER;
  try {
    parseServerAddress(server);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const user = (args.values.user as string | undefined) ?? Deno.env.get("DFOS_USER");
  if (!user) throw new UsageError("No user given: use --user NAME or set DFOS_USER");
  const tls = await tlsOptions(args);
  // Asked once connected (client/connection.ts), and again after a refusal on a terminal.
  const password = passwordSource(`Password for ${user}@${server}: `);
  return { server, user, password, tls, onHeld: showHeld };
}

/** Says on a terminal that the server held its answer to the login, and why. */
function showHeld(ms: number): void {
  if (!Deno.stderr.isTerminal()) return;
  Deno.stderr.writeSync(
    new TextEncoder().encode(
      `Login answer held ${ms} ms by the server after failed logins from this address or as this user\n`,
    ),
  );
}

/**
 * Reads `--tls` / `DFOS_TLS` and `--ca` / `DFOS_CA` (which implies TLS).
 *
 * @returns The TLS options, or false for plaintext.
 * @throws {UsageError} for a `DFOS_TLS` that is neither on nor off.
 * @throws {Error} for a CA file that cannot be read or holds no certificate.
 */
async function tlsOptions(args: ParsedArgs): Promise<ClientTlsOptions | false> {
  const ca = (args.values.ca as string | undefined) ?? (Deno.env.get("DFOS_CA") || undefined);
  const tls = args.values.tls === true || envSwitch("DFOS_TLS") || ca !== undefined;
  if (!tls) return false;
  if (ca === undefined) return {};
  let pem: string;
  try {
    pem = await Deno.readTextFile(ca);
  } catch (error) {
    throw new Error(`Cannot read the CA file "${ca}": ${(error as Error).message}`, { cause: error });
  }
  if (!pem.includes("-----BEGIN CERTIFICATE-----")) {
    throw new Error(`Cannot use the CA file "${ca}": it holds no PEM certificate`);
  }
  return { caCerts: [pem] };
}

/** An on/off environment variable: 1, true, yes, on; or 0, false, no, off, empty, unset. */
function envSwitch(name: string): boolean {
  const value = (Deno.env.get(name) ?? "").trim().toLowerCase();
  if (["1", "true", "yes", "on"].includes(value)) return true;
  if (["", "0", "false", "no", "off"].includes(value)) return false;
  throw new UsageError(`${name} takes 1 or 0, not "${Deno.env.get(name)}"`);
}

/**
 * Connects and logs in with the command line's connection flags, runs `work`,
 * and closes the connection whatever happens.
 *
 * @param args The parsed command line.
 * @param work What to do while connected.
 * @returns What `work` returns.
 */
export async function withClient<T>(args: ParsedArgs, work: (client: DfosClient) => Promise<T>): Promise<T> {
  const options = await connectOptions(args);
  // DFOS_* and the --ca file are read: what the command kept only for them goes (main.ts, shared/permissions.ts).
  dropOptionPermissions();
  let client: DfosClient;
  try {
    client = await DfosClient.connect(options);
  } catch (error) {
    throw explainConnectError(error, options.server);
  }
  try {
    return await work(client);
  } finally {
    await client.close();
  }
}

/**
 * Turns a failure to connect or log in into the error to show: a refused or
 * closed connection in a sentence that names the server; a refused login,
 * an interrupted prompt or a usage error as they are.
 *
 * @param error What connecting threw.
 * @param server The address as given.
 * @returns The error to throw.
 */
export function explainConnectError(error: unknown, server: string): unknown {
  if (error instanceof Deno.errors.ConnectionRefused) {
    return new Error(`Cannot connect to ${server}: connection refused (is "dfos serve" running there?)`);
  }
  if (error instanceof Deno.errors.ConnectionReset || error instanceof Deno.errors.BrokenPipe) {
    return new Error(`Cannot connect to ${server}: the server closed the connection`);
  }
  if (error instanceof Error && error.name === "DfosError") return error;
  if (error instanceof CommandFailure) return error; // Ctrl-C at the password prompt
  if (error instanceof Error && !(error instanceof UsageError)) {
    return new Error(`Cannot connect to ${server}: ${error.message}`, { cause: error });
  }
  return error;
}
