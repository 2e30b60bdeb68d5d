/**
 * `watchLoop()`: `dfos sync --watch`. After a first run it waits for either
 * side to change, then runs again, until stopped:
 *
 * - **Here:** `Deno.watchFs` on DIR. Events are gathered until the folder
 *   has been quiet for {@linkcode QUIET_MS} (at most {@linkcode LONGEST_WAIT_MS}
 *   after the first), so that an editor's save through a temporary file and
 *   a rename is seen once, whole. Paths whose facts are still the base's (the
 *   run's own downloads, a file saved and put back) wake nothing.
 * - **There:** a `watch` request held on a connection of its own, answered by
 *   the server when the user's change counter moves past the base's.
 *
 * A lost connection (the server restarting or gone, a laptop that slept)
 * ends neither: both connections are opened again, waiting longer between
 * tries up to {@linkcode LONGEST_RETRY_MS}, and a run follows, since anything
 * may have changed meanwhile. A watch unanswered well past its wait is taken
 * for a dead connection (a sleep cuts TCP silently).
 *
 * @module
 */

import type { CommandIo } from "../command_table.ts";
import type { DfosClient } from "../connection.ts";
import { sameFacts, type SyncBase } from "./base_state.ts";
import { connectionLost } from "./connection_lost.ts";
import type { ExcludeMatcher } from "./excludes.ts";
import type { SyncRunResult } from "./sync_run.ts";
import { isWorkingFile, localFacts } from "./tree.ts";

/** The folder quiet this long after a change: the change is taken as whole. */
export const QUIET_MS = 150;
/** At most this long from a change here to the run that sends it, however busy the folder. */
export const LONGEST_WAIT_MS = 1_000;
/** What a `watch` asks the server to wait at most. */
const WATCH_WAIT_MS = 30_000;
/** A watch unanswered this long after its wait: the connection is taken for dead. */
const WATCH_GRACE_MS = 10_000;
/** The longest pause between tries to reach the server again. */
export const LONGEST_RETRY_MS = 15_000;

/** What the loop needs. */
export interface WatchOptions {
  /** DIR, as the runs use it. */
  dir: string;
  /** PREFIX ("" for the top). */
  prefix: string;
  /** Paths to leave out. */
  excluded: ExcludeMatcher;
  /** The connection of the first run. */
  first: DfosClient;
  /** Opens another logged-in connection. */
  connect: () => Promise<DfosClient>;
  /** One run over `client` from `base`. */
  run: (client: DfosClient, base: SyncBase | null | undefined) => Promise<SyncRunResult>;
  /** Where to tell of lost connections. */
  io: CommandIo;
  /** Stops the loop. */
  signal: AbortSignal;
}

/**
 * Runs until `signal` aborts.
 *
 * @param options The folder, the connections and the run.
 */
export async function watchLoop(options: WatchOptions): Promise<void> {
  const { signal, io } = options;
  const wake = new Wake(signal);
  let base: SyncBase | null | undefined = undefined;
  let work: DfosClient | null = options.first;
  let watcher: RemoteWatcher | null = null;
  const local = watchLocal(options, wake);
  let retry = 0;
  try {
    while (!signal.aborted) {
      try {
        work ??= await options.connect();
        const result = await options.run(work, base);
        base = result.base;
        retry = 0;
        if (base !== null) {
          if (watcher === null || watcher.broken) {
            watcher?.close();
            watcher = new RemoteWatcher(await options.connect(), options.prefix, wake);
          }
          watcher.follow(base);
        }
      } catch (error) {
        if (signal.aborted) break;
        if (!reachable(error)) throw error;
        work?.close().catch(() => {});
        work = null;
        watcher?.close();
        watcher = null;
        const pause = Math.min(LONGEST_RETRY_MS, 1000 * 2 ** retry++);
        io.warn(`dfos sync: ${(error as Error).message}; trying again in ${Math.round(pause / 1000)} s`);
        await wake.sleep(pause);
        continue;
      }
      // Paths changed here that are still as this run left them (its own downloads) wake nothing.
      do await wake.next(); while (!signal.aborted && !wake.remote && !local.differs(base));
      wake.remote = false;
    }
  } finally {
    local.close();
    watcher?.close();
    if (work !== options.first) await work?.close().catch(() => {});
  }
}

/** True for an error that a later try may not meet: the server unreachable, a connection lost. */
function reachable(error: unknown): boolean {
  if (connectionLost(error)) return true;
  const message = error instanceof Error ? error.message : "";
  return error instanceof Deno.errors.ConnectionRefused || /^Cannot connect to /.test(message) ||
    (error instanceof Error && error.name === "DfosError" && /shutting down|busy/i.test(message));
}

/** What wakes the loop: a change here or there, or a stop. */
class Wake {
  /** True when the server (or a lost connection) woke the loop, not a change here. */
  remote = false;
  #resolve: (() => void) | null = null;
  #pending = false;
  readonly #signal: AbortSignal;

  constructor(signal: AbortSignal) {
    this.#signal = signal;
    signal.addEventListener("abort", () => this.now(), { once: true });
  }

  /** Wakes the loop (or the next wait, at once). */
  now(): void {
    this.#pending = true;
    this.#resolve?.();
  }

  /** Waits for a wake. */
  async next(): Promise<void> {
    if (!this.#pending && !this.#signal.aborted) await new Promise<void>((resolve) => this.#resolve = resolve);
    this.#resolve = null;
    this.#pending = false;
  }

  /** Waits `ms`, or less when stopped (not when woken: the server is still away). */
  async sleep(ms: number): Promise<void> {
    if (this.#signal.aborted) return;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let stop = () => {};
    await new Promise<void>((resolve) => {
      timer = setTimeout(resolve, ms);
      stop = resolve;
      this.#signal.addEventListener("abort", stop, { once: true });
    });
    clearTimeout(timer);
    this.#signal.removeEventListener("abort", stop);
  }
}

/** DIR watched: the paths changed since the loop last looked, and a wake once a burst of changes is over. */
interface LocalWatch {
  /** True when a path changed since the last call is not as `base` has it; forgets the paths. */
  differs(base: SyncBase | null | undefined): boolean;
  close(): void;
}

function watchLocal(options: WatchOptions, wake: Wake): LocalWatch {
  const watcher = Deno.watchFs(options.dir, { recursive: true });
  const root = Deno.realPathSync(options.dir);
  const changed = new Set<string>();
  let quiet: ReturnType<typeof setTimeout> | undefined;
  let first = 0;
  (async () => {
    for await (const event of watcher) {
      let seen = false;
      for (const path of event.paths) {
        if (!path.startsWith(`${root}/`)) continue;
        const rel = path.slice(root.length + 1);
        const name = rel.slice(rel.lastIndexOf("/") + 1);
        if (isWorkingFile(name) || options.excluded(rel)) continue;
        changed.add(rel);
        seen = true;
      }
      if (!seen) continue;
      clearTimeout(quiet);
      const now = Date.now();
      if (first === 0) first = now;
      quiet = setTimeout(() => {
        first = 0;
        wake.now();
      }, Math.max(0, Math.min(QUIET_MS, first + LONGEST_WAIT_MS - now)));
    }
  })().catch(() => {});
  return {
    differs(base) {
      const paths = [...changed];
      changed.clear();
      return paths.some((rel) => differs(options.dir, rel, base));
    },
    close() {
      clearTimeout(quiet);
      watcher.close();
    },
  };
}

/** True when the path is not as the base has it (a folder, or anything unknown, counts as changed). */
function differs(dir: string, rel: string, base: SyncBase | null | undefined): boolean {
  if (base === null || base === undefined) return true;
  const was = base.files.get(rel);
  let info: Deno.FileInfo;
  try {
    info = Deno.lstatSync(`${dir}/${rel}`);
  } catch {
    // Gone: a change only if the base had it (an editor's temporary file came and went: none).
    return was !== undefined || [...base.files.keys()].some((path) => path.startsWith(`${rel}/`));
  }
  if (!info.isFile || was === undefined) return true;
  return !sameFacts(localFacts(info), was.local);
}

/** The `watch` held on a connection of its own, asked again after each answer. */
class RemoteWatcher {
  readonly #client: DfosClient;
  readonly #from: string;
  readonly #wake: Wake;
  readonly #stop = new AbortController();
  #since: { epoch: string; counter: number } | null = null;
  #followed: (() => void) | null = null;
  /** True once the connection failed: the loop opens another. */
  broken = false;

  constructor(client: DfosClient, prefix: string, wake: Wake) {
    this.#client = client;
    this.#from = prefix === "" ? "" : `${prefix}/`;
    this.#wake = wake;
    this.#loop().catch(() => {
      this.broken = true;
      if (this.#stop.signal.aborted) return;
      wake.remote = true;
      wake.now();
    });
  }

  /** Waits from now on for changes past this base's counter. */
  follow(base: SyncBase): void {
    this.#since = { epoch: base.epoch, counter: base.counter };
    this.#followed?.();
  }

  close(): void {
    this.#stop.abort();
    this.#followed?.();
    this.#client.close().catch(() => {});
  }

  async #loop(): Promise<void> {
    while (!this.#stop.signal.aborted) {
      const since = this.#since;
      if (since === null) {
        await new Promise<void>((resolve) => this.#followed = resolve);
        continue;
      }
      const answer = await this.#client.watch(
        { ...since, prefix: this.#from },
        {
          wait: WATCH_WAIT_MS,
          signal: AbortSignal.any([this.#stop.signal, AbortSignal.timeout(WATCH_WAIT_MS + WATCH_GRACE_MS)]),
        },
      );
      if (answer.epoch !== since.epoch || answer.counter !== since.counter) {
        // Moved: a run follows, and with it a new counter to wait past; until then, nothing more to ask.
        if (this.#since === since) this.#since = null;
        this.#wake.remote = true;
        this.#wake.now();
      }
    }
  }
}
