/**
 * The benchmark's command line: which sections run, the sizes and counts
 * each uses (issue 4's by default, small ones with `--quick`), and where
 * the JSON goes.
 *
 * @module
 */

import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { PROJECT_DIR } from "../tests/_common.ts";
import { PEER_IDS, type PeerId } from "./peers.ts";
import { SECTION_IDS, type SectionId } from "./section.ts";

/** The peers the transfer section measures by default. */
export const DEFAULT_PEERS: readonly PeerId[] = [
  "socat",
  "deno-bare",
  "rsync",
  "sftp",
  "dfos",
  "dfos-verify",
  "dfos-tls",
];
/** Where the results of a full run go unless `--out` says otherwise. */
export const DEFAULT_OUT = join(PROJECT_DIR, "bench", "results", "latest.json");

/** What one benchmark run is asked to do. */
export interface Settings {
  /** The sections to run, in their order. */
  sections: SectionId[];
  /** Where the JSON results go. */
  out: string;
  /** Small sizes and counts, for a quick check of the benchmark itself. */
  quick: boolean;
  /** Large files, one client process per transfer. */
  transfer: {
    /** The test file's size in MiB. */
    sizeMiB: number;
    /** Timed runs per peer and direction, after one warm-up. */
    runs: number;
    /** The peers, in the order each round runs them. */
    peers: PeerId[];
  };
  /** The server's peak RSS under many large transfers. */
  memory: {
    /** In-process clients at once, each on its own connection. */
    clients: number;
    /** The file size of each client, in MiB, one fresh server per size. */
    sizesMiB: number[];
  };
  /** Many client processes; many connections from one process. */
  clients: {
    /** Client processes started together. */
    processes: number;
    /** Each one's file, in MiB. */
    fileMiB: number;
    /** Timed rounds (dfos and rsync interleaved), after one warm-up. */
    runs: number;
    /** Concurrent in-process transfers. */
    streams: number;
    /** Each one's body, in MiB. */
    streamMiB: number;
    /** The single stream's body, in MiB. */
    singleMiB: number;
  };
  /** Idle connections held. */
  idle: {
    /** Authenticated idle connections to open. */
    connections: number;
    /** How many are opened at once (under the server's listen backlog). */
    batch: number;
  };
  /** Another user's peeks while a large file is put, replaced and deleted. */
  stall: {
    /** The large file's size in MiB. */
    sizeMiB: number;
  };
  /** Small operations. */
  small: {
    /** Timed whole-process 1 KiB puts per peer, after the warm-ups. */
    runs: number;
    /** Untimed warm-up puts per peer. */
    warmups: number;
    /** Timed runs of the in-process operation loop. */
    opsRuns: number;
    /** Each run's limit in seconds... */
    opsSeconds: number;
    /** ...and in operations. */
    opsLimit: number;
  };
  /** dfos on an S3 engine (issue 13). */
  s3: {
    /** The large object's size in MiB. */
    sizeMiB: number;
    /** Timed runs each of dfos and the SDK, after one warm-up. */
    runs: number;
    /** Clients at once through 1, 2 and 3 servers... */
    clients: number;
    /** ...each with a body of this many MiB. */
    clientMiB: number;
  };
  /** dfos push, pull and resume next to the rsync daemon (issue 12). */
  sync: TreeSettings & {
    /** The large file's size in MiB (its three edits, and the upload killed at 60%). */
    bigMiB: number;
  };
  /** dfos sync next to Unison, both through a server (issue 14). */
  twoway: TreeSettings & {
    /** Changes timed from one folder to the other with `--watch`, alternating A to B and B to A. */
    watchTries: number;
  };
}

/** The tree of many files the sync sections move (sync_tree.ts), and how much of it a "changed" case changes. */
export interface TreeSettings {
  /** Files in the tree. */
  files: number;
  /** Folders they are spread over. */
  folders: number;
  /** The smallest file of the tree, in KiB (sizes log-uniform up to the largest). */
  minKiB: number;
  /** The largest file of the tree, in KiB. */
  maxKiB: number;
  /** Files changed before a "changed" case, in percent. */
  changedPercent: number;
}

/** The usage text. */
export const USAGE = `Usage: deno task bench [options]

Measures dfos next to its peers on loopback, every transfer checked, and
prints one table with each figure next to its target (issue 4):
  transfer  1 GiB put and get, one client process each, next to socat, rsync and sftp; dfos also over TLS
  memory    the server's peak RSS while 32 clients put and get 256 MiB files, then 64 MiB
  clients   32 client processes putting 4 MiB each, next to rsync; 64 streams next to one
  idle      1,000 authenticated idle connections: RSS each, and a put while they are held
  small     a whole-process 1 KiB put next to rsync, sftp and an empty deno run; put/peek/rm per second
  stall     another user's peeks while a 1 GiB file is put, replaced and deleted
  sync      dfos push/pull of a 10,000-file tree and edits of a 1 GiB file next to the rsync daemon,
            bytes on the wire and wall time; a 1 GiB upload killed at 60% and resumed (issue 12)
  metrics   GET /metrics with 1,000 connections open (the --idle count), idle and while some put (issue 13)
  twoway    dfos sync of a 10,000-file tree between two folders through a server, next to Unison
            (its socket server, the same star), bytes on the wire and wall time: first sync, nothing
            changed, 1% changed on one side, 1% on each; the delay of a change with --watch (issue 14)
  s3        dfos on an S3 engine (S3_ENDPOINT's, else one started with tools/s3/start-s3.sh): 1 GiB put
            and get next to the AWS SDK straight to the engine; 32 clients through 1, 2 and 3 servers

      --only LIST        sections to run, from ${SECTION_IDS.join(",")} (default all)
      --size MIB         transfer: size of the test file (default 1024)
      --runs N           transfer: timed runs per peer and direction, after one warm-up (default 3)
      --peers LIST       transfer: from ${PEER_IDS.join(", ")} (default ${DEFAULT_PEERS.join(",")})
      --memory-mib LIST  memory: each client's file size, one fresh server each (default 256,64)
      --idle N           idle: connections to hold (default 1000)
      --sync-files N     sync, twoway: files in the tree (default 10000)
      --sync-mib MIB     sync: the large file's size (default 1024)
      --quick            small sizes and counts everywhere, to check the benchmark itself
      --out FILE         the results as JSON (default bench/results/latest.json; with --only
                         or --quick, bench/results/latest-SECTIONS[-quick].json)
  -h, --help             show this help`;

/**
 * Parses the command line.
 *
 * @param args The arguments after the script's name.
 * @returns The settings, or null when help was asked for.
 * @throws {RangeError} for a bad value.
 */
export function parseSettings(args: string[]): Settings | null {
  const { values } = parseArgs({
    args,
    options: {
      only: { type: "string" },
      size: { type: "string" },
      runs: { type: "string" },
      peers: { type: "string", default: DEFAULT_PEERS.join(",") },
      "memory-mib": { type: "string" },
      idle: { type: "string" },
      "sync-files": { type: "string" },
      "sync-mib": { type: "string" },
      quick: { type: "boolean", default: false },
      out: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) return null;
  const quick = values.quick;
  const sections = values.only === undefined ? [...SECTION_IDS] : pick(values.only, SECTION_IDS, "--only");
  const peers = pick(values.peers, PEER_IDS, "--peers");
  const memorySizes = values["memory-mib"] === undefined
    ? (quick ? [16, 4] : [256, 64])
    : values["memory-mib"].split(",").map((text) => positiveInteger(text.trim(), "--memory-mib"));
  const tree: TreeSettings = {
    files: values["sync-files"] === undefined
      ? (quick ? 500 : 10_000)
      : positiveInteger(values["sync-files"], "--sync-files"),
    folders: 20,
    minKiB: 1,
    maxKiB: 1024,
    changedPercent: 1,
  };
  // a partial or quick run does not overwrite the full run's figures
  const suffix = [...(sections.length === SECTION_IDS.length ? [] : sections), ...(quick ? ["quick"] : [])];
  const out = values.out !== undefined
    ? resolve(values.out)
    : suffix.length === 0
    ? DEFAULT_OUT
    : join(PROJECT_DIR, "bench", "results", `latest-${suffix.join("-")}.json`);
  return {
    sections,
    out,
    quick,
    transfer: {
      sizeMiB: values.size === undefined ? (quick ? 64 : 1024) : positiveInteger(values.size, "--size"),
      runs: values.runs === undefined ? (quick ? 1 : 3) : positiveInteger(values.runs, "--runs"),
      peers,
    },
    memory: { clients: 32, sizesMiB: memorySizes },
    clients: quick
      ? { processes: 32, fileMiB: 1, runs: 1, streams: 64, streamMiB: 1, singleMiB: 16 }
      : { processes: 32, fileMiB: 4, runs: 3, streams: 64, streamMiB: 16, singleMiB: 256 },
    idle: {
      connections: values.idle === undefined ? (quick ? 100 : 1000) : positiveInteger(values.idle, "--idle"),
      batch: 50,
    },
    stall: { sizeMiB: quick ? 64 : 1024 },
    s3: quick
      ? { sizeMiB: 64, runs: 1, clients: 8, clientMiB: 4 }
      : { sizeMiB: 1024, runs: 3, clients: 32, clientMiB: 32 },
    small: quick
      ? { runs: 3, warmups: 1, opsRuns: 1, opsSeconds: 1, opsLimit: 3000 }
      : { runs: 20, warmups: 2, opsRuns: 3, opsSeconds: 3, opsLimit: 3000 },
    sync: {
      ...tree,
      bigMiB: values["sync-mib"] === undefined
        ? (quick ? 64 : 1024)
        : positiveInteger(values["sync-mib"], "--sync-mib"),
    },
    twoway: { ...tree, watchTries: quick ? 4 : 6 },
  };
}

/** A comma-separated list of known names, each once, in the known order. */
function pick<T extends string>(text: string, known: readonly T[], flag: string): T[] {
  const names = text.split(",").map((name) => name.trim()).filter((name) => name !== "");
  for (const name of names) {
    if (!(known as readonly string[]).includes(name)) {
      throw new RangeError(`Cannot use ${flag} "${name}": known are ${known.join(", ")}`);
    }
  }
  if (names.length === 0) throw new RangeError(`Cannot run without any: ${flag} is empty`);
  return known.filter((name) => names.includes(name));
}

function positiveInteger(text: string, flag: string): number {
  const value = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(value) || value < 1) {
    throw new RangeError(`Cannot use ${flag} "${text}": not a positive integer`);
  }
  return value;
}
