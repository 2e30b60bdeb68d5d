/**
 * The benchmark's test data and what it does to files: writing one random
 * file, flushing to disk and reading a file into the page cache (a file's
 * SHA-256 comes from tests/_common.ts).
 *
 * @module
 */

const MIB = 1024 * 1024;
/** The most `crypto.getRandomValues` fills in one call. */
const RANDOM_PIECE = 64 * 1024;

/**
 * Writes `mib` MiB of random bytes to a new file: 64 KiB from
 * `crypto.getRandomValues` at a time, written in 1 MiB batches.
 *
 * @param path The file to create (replaced if it exists).
 * @param mib Its size in MiB.
 */
export async function writeRandomFile(path: string, mib: number): Promise<void> {
  using file = await Deno.open(path, { write: true, create: true, truncate: true });
  const batch = new Uint8Array(MIB);
  for (let i = 0; i < mib; i++) {
    for (let offset = 0; offset < MIB; offset += RANDOM_PIECE) {
      crypto.getRandomValues(batch.subarray(offset, offset + RANDOM_PIECE));
    }
    let written = 0;
    while (written < batch.length) written += await file.write(batch.subarray(written));
  }
}

/** Runs `sync`: dirty pages go to disk now, not during the next timed run. */
export async function syncFileSystems(): Promise<void> {
  await runQuietly(["sync"]);
}

/**
 * Reads a file once to nowhere (`cat FILE > /dev/null`), so that it is in the
 * page cache when a timed run reads it.
 *
 * @param path The file.
 */
export async function readIntoCache(path: string): Promise<void> {
  await runQuietly(["cat", path]);
}

/**
 * Removes a file, if there is one.
 *
 * @param path The file.
 */
export async function removeIfPresent(path: string): Promise<void> {
  try {
    await Deno.remove(path);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
}

async function runQuietly(argv: string[]): Promise<void> {
  const { code, stderr } = await new Deno.Command(argv[0], { args: argv.slice(1), stdout: "null", stderr: "piped" })
    .output();
  if (code !== 0) {
    throw new Error(`Cannot run "${argv.join(" ")}": status ${code}: ${new TextDecoder().decode(stderr).trim()}`);
  }
}
