/**
 * What the tests and the benchmark both need from the machine, and nothing
 * of dfos's own: the project's paths, free loopback ports, random data,
 * SHA-256 of files, delays, and TLS certificates made with openssl. It
 * imports no dfos module, so the benchmark pays nothing for it at start-up.
 *
 * Internal to tests/ and bench/: nothing here is part of dfos.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

/** The project's `main.ts`, as an absolute path. */
export const MAIN = fileURLToPath(new URL("../main.ts", import.meta.url));

/** The project's folder (where deno.json is). */
export const PROJECT_DIR = fileURLToPath(new URL("..", import.meta.url));

/**
 * Random bytes in hex, for passwords.
 *
 * @param bytes How many random bytes.
 * @returns Twice as many hex digits.
 */
export function randomHex(bytes: number): string {
  return Array.from(randomBytes(bytes), (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Returns `size` random bytes (crypto.getRandomValues, 64 KiB at a time).
 *
 * @param size How many bytes.
 * @returns Fresh random bytes.
 */
export function randomBytes(size: number): Uint8Array {
  const bytes = new Uint8Array(size);
  for (let offset = 0; offset < size; offset += 65536) {
    crypto.getRandomValues(bytes.subarray(offset, Math.min(size, offset + 65536)));
  }
  return bytes;
}

/**
 * Returns pseudo-random bytes that are the same for the same seed on every
 * run (xorshift32): large cases that a test pins, and a benchmark repeats.
 *
 * @param size How many bytes.
 * @param seed Any integer; 0 counts as 1.
 * @returns The bytes.
 */
export function seededBytes(size: number, seed: number): Uint8Array {
  const words = new Uint32Array(Math.ceil(size / 4));
  let x = seed | 0 || 1;
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    words[i] = x;
  }
  return new Uint8Array(words.buffer, 0, size);
}

/**
 * Returns the lower-case hex SHA-256 of some bytes.
 *
 * @param bytes The data.
 * @returns The digest.
 */
export function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/**
 * Returns the lower-case hex SHA-256 of a file, read in 1 MiB pieces.
 *
 * @param path The file.
 * @returns The digest.
 */
export async function sha256File(path: string): Promise<string> {
  const hash = createHash("sha256");
  using file = await Deno.open(path, { read: true });
  const buffer = new Uint8Array(1 << 20);
  while (true) {
    const n = await file.read(buffer);
    if (n === null) break;
    hash.update(buffer.subarray(0, n));
  }
  return hash.digest("hex");
}

/**
 * Resolves after `ms` milliseconds (the timer is never left pending).
 *
 * @param ms The delay.
 */
export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Returns a port on 127.0.0.1 that nothing listens on (it was free a moment
 * ago): for a server to start on, or for a client to find closed.
 *
 * @returns The port.
 */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/** Decodes bytes as UTF-8. */
export function text(bytes: Uint8Array): string {
  return new TextDecoder().decode(bytes);
}

/** A certificate and its key, as files and as PEM text. */
export interface Certificate {
  /** The certificate file (PEM). */
  certFile: string;
  /** The private key file (PEM). */
  keyFile: string;
  /** The certificate, PEM. */
  cert: string;
  /** The private key, PEM. */
  key: string;
}

/** Options for {@linkcode makeCertificate}. */
export interface CertificateOptions {
  /**
   * The subjectAltName entries.
   *
   * @default {["DNS:localhost", "IP:127.0.0.1"]}
   */
  names?: string[];
  /** Sign it with this CA (made with `ca: true`) instead of self-signing it. */
  issuer?: Certificate;
  /**
   * Make a CA certificate (basicConstraints CA:TRUE, for signing others).
   *
   * @default {false}
   */
  ca?: boolean;
}

/**
 * Makes an EC P-256 certificate valid for one day with openssl:
 * self-signed (a server certificate Deno accepts, with
 * `basicConstraints=critical,CA:FALSE`), signed by `issuer`, or a CA.
 *
 * @param dir Where the files go: `NAME.pem` and `NAME.key`.
 * @param name The files' base name, also the certificate's CN.
 * @param options Names, issuer, CA or not.
 * @returns The files and their text.
 */
export async function makeCertificate(
  dir: string,
  name: string,
  options: CertificateOptions = {},
): Promise<Certificate> {
  const certFile = join(dir, `${name}.pem`);
  const keyFile = join(dir, `${name}.key`);
  const names = options.names ?? ["DNS:localhost", "IP:127.0.0.1"];
  const extensions = options.ca
    ? ["basicConstraints=critical,CA:TRUE", "keyUsage=critical,keyCertSign,cRLSign"]
    : [`subjectAltName=${names.join(",")}`, "basicConstraints=critical,CA:FALSE"];
  const newKey = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", keyFile];
  if (options.issuer === undefined) {
    await openssl([
      "req",
      "-x509",
      ...newKey,
      "-days",
      "1",
      "-subj",
      `/CN=${name}`,
      ...extensions.flatMap((extension) => ["-addext", extension]),
      "-out",
      certFile,
    ]);
  } else {
    const request = join(dir, `${name}.csr`);
    const extfile = join(dir, `${name}.ext`);
    await openssl(["req", ...newKey, "-subj", `/CN=${name}`, "-out", request]);
    await Deno.writeTextFile(extfile, extensions.join("\n") + "\n");
    await openssl([
      "x509",
      "-req",
      "-in",
      request,
      "-CA",
      options.issuer.certFile,
      "-CAkey",
      options.issuer.keyFile,
      "-set_serial",
      `${Date.now()}`,
      "-days",
      "1",
      "-extfile",
      extfile,
      "-out",
      certFile,
    ]);
  }
  return { certFile, keyFile, cert: await Deno.readTextFile(certFile), key: await Deno.readTextFile(keyFile) };
}

async function openssl(args: string[]): Promise<void> {
  let output: Deno.CommandOutput;
  try {
    output = await new Deno.Command("openssl", { args, stdin: "null", stdout: "piped", stderr: "piped" }).output();
  } catch (error) {
    throw new Error(`Cannot run openssl (apt-get install -y openssl): ${(error as Error).message}`, { cause: error });
  }
  if (!output.success) {
    throw new Error(`openssl ${args[0]} failed with status ${output.code}: ${text(output.stderr).trim()}`);
  }
}

/** How long a test waits for something that should come about at once, before it fails. */
export const PROMPTLY_MS = 10_000;

/**
 * Resolves with `promise`'s value, or fails the test when it has not settled within `ms`.
 *
 * @param promise What is awaited.
 * @param what What it is, for the error message.
 * @param ms The longest wait.
 * @returns Its value.
 */
export async function within<T>(promise: Promise<T>, what: string, ms = PROMPTLY_MS): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * True when `promise` is still pending after `ms`.
 *
 * @param promise What is watched.
 * @param ms How long to wait.
 * @returns Whether it has not settled.
 */
export async function stillPending(promise: Promise<unknown>, ms: number): Promise<boolean> {
  const pending = Symbol("pending");
  return await Promise.race([promise.then(() => false, () => false), delay(ms).then(() => pending)]) === pending;
}
