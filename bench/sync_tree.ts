/**
 * The files the sync section moves: a tree of many files of random bytes in
 * folders, their sizes log-uniform between a smallest and a largest size (so
 * small files are many and the total stays moderate: about 1.5 GB for 10,000
 * files of 1 KiB to 1 MiB); edits of some of its files; one large file and
 * its three edits (append, overwrite in the middle, insert near the start);
 * and a check that two trees hold the same files.
 *
 * Every edit sets the file's modification time to the next minute of a clock
 * of this module (ahead of real time, a minute further for each edit), so a
 * tool comparing size and time sees every change, even two in one second.
 *
 * @module
 */

import { join } from "node:path";
import { mb } from "./report.ts";
import type { TreeSettings } from "./settings.ts";

const KIB = 1024;
/** Bytes written at once when a file is made or rewritten. */
const WRITE_PIECE = 1 << 20;

/** The shape of a generated tree. */
export interface TreeShape {
  /** How many files. */
  files: number;
  /** How many folders they are spread over (round-robin). */
  folders: number;
  /** The smallest file size in bytes. */
  minBytes: number;
  /** The largest file size in bytes. */
  maxBytes: number;
}

/** A generated tree: its files relative to its root, and their total size. */
export interface Tree {
  /** The root folder. */
  root: string;
  /** Each file's path relative to the root. */
  files: string[];
  /** The total bytes of content. */
  bytes: number;
}

/** A deterministic pseudo-random generator (xorshift32), for sizes and positions. */
export class Random {
  #x: number;

  constructor(seed: number) {
    this.#x = seed | 0 || 1;
  }

  /** A number in [0, 1). */
  next(): number {
    let x = this.#x;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.#x = x;
    return (x >>> 0) / 4294967296;
  }

  /** An integer in [0, n). */
  below(n: number): number {
    return Math.floor(this.next() * n);
  }
}

/**
 * Random bytes (not compressible, and never the same twice, so neither tool
 * finds shared content between files).
 *
 * @param size How many.
 * @returns New bytes.
 */
export function randomBytes(size: number): Uint8Array {
  const bytes = new Uint8Array(size);
  for (let offset = 0; offset < size; offset += 65536) {
    crypto.getRandomValues(bytes.subarray(offset, Math.min(size, offset + 65536)));
  }
  return bytes;
}

/**
 * Makes a tree of random files.
 *
 * @param root The folder to make it in (created).
 * @param shape How many files, folders and what sizes.
 * @param seed Chooses the sizes.
 * @returns The tree.
 */
export async function makeTree(root: string, shape: TreeShape, seed: number): Promise<Tree> {
  const random = new Random(seed);
  const logMin = Math.log(shape.minBytes);
  const logMax = Math.log(shape.maxBytes);
  for (let folder = 0; folder < shape.folders; folder++) {
    await Deno.mkdir(join(root, folderName(folder)), { recursive: true });
  }
  const files: string[] = [];
  let bytes = 0;
  for (let i = 0; i < shape.files; i++) {
    const size = Math.round(Math.exp(logMin + random.next() * (logMax - logMin)));
    const path = join(folderName(i % shape.folders), `file-${String(i).padStart(5, "0")}.bin`);
    await writeRandom(join(root, path), size);
    files.push(path);
    bytes += size;
  }
  return { root, files, bytes };
}

/** A tree made from a section's settings, and what the table and the JSON say of it. */
export interface SettingsTree {
  /** The tree. */
  tree: Tree;
  /** For the table: `tree of 10,000 files, 1532.4 MB`. */
  label: string;
  /** For the JSON: its shape and total size. */
  facts: { files: number; folders: number; bytes: number; minKiB: number; maxKiB: number };
}

/**
 * Makes the tree a section's settings ask for.
 *
 * @param root The folder to make it in (created).
 * @param settings Its files, folders and sizes.
 * @param seed Chooses the sizes.
 * @returns The tree, its label and its facts.
 */
export async function makeSettingsTree(root: string, settings: TreeSettings, seed: number): Promise<SettingsTree> {
  const { files, folders, minKiB, maxKiB } = settings;
  const tree = await makeTree(root, { files, folders, minBytes: minKiB * KIB, maxBytes: maxKiB * KIB }, seed);
  return {
    tree,
    label: `tree of ${files.toLocaleString("en-US")} files, ${mb(tree.bytes)}`,
    facts: { files, folders, bytes: tree.bytes, minKiB, maxKiB },
  };
}

function folderName(index: number): string {
  return `folder-${String(index).padStart(2, "0")}`;
}

async function writeRandom(path: string, size: number): Promise<void> {
  const file = await Deno.open(path, { write: true, create: true, truncate: true });
  try {
    for (let written = 0; written < size;) {
      const piece = randomBytes(Math.min(WRITE_PIECE, size - written));
      written += await writeAll(file, piece);
    }
  } finally {
    file.close();
  }
}

async function writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<number> {
  let written = 0;
  while (written < bytes.length) written += await file.write(bytes.subarray(written));
  return written;
}

/**
 * Changes `percent` % of a tree's files (at least one): overwrites 4 KiB (or
 * the whole file if smaller) at a random place, and moves its modification
 * time on.
 *
 * @param tree The tree.
 * @param percent How many of its files, in percent.
 * @param seed Chooses the files and places.
 * @returns The paths changed, relative to the root.
 */
export async function changeSome(tree: Tree, percent: number, seed: number): Promise<string[]> {
  const random = new Random(seed);
  const count = Math.max(1, Math.round(tree.files.length * percent / 100));
  const chosen = new Set<string>();
  while (chosen.size < count) chosen.add(tree.files[random.below(tree.files.length)]);
  for (const path of chosen) {
    const full = join(tree.root, path);
    const { size } = await Deno.stat(full);
    const length = Math.min(4 * KIB, size);
    await overwrite(full, random.below(size - length + 1), randomBytes(length));
  }
  return [...chosen];
}

/**
 * Writes `bytes` at `offset` of an existing file (in place), then moves its
 * modification time on.
 *
 * @param path The file.
 * @param offset Where (at the end: an append).
 * @param bytes What.
 */
export async function overwrite(path: string, offset: number, bytes: Uint8Array): Promise<void> {
  const file = await Deno.open(path, { write: true });
  try {
    await file.seek(offset, Deno.SeekMode.Start);
    await writeAll(file, bytes);
  } finally {
    file.close();
  }
  await touchOn(path);
}

/**
 * Inserts `bytes` at `offset` of a file: writes the new content beside it
 * and renames it over the old one, then moves the modification time on.
 *
 * @param path The file.
 * @param offset Where.
 * @param bytes What.
 */
export async function insert(path: string, offset: number, bytes: Uint8Array): Promise<void> {
  const next = `${path}.inserting`;
  const source = await Deno.open(path, { read: true });
  const target = await Deno.open(next, { write: true, create: true, truncate: true });
  try {
    const head = new Uint8Array(offset);
    for (let read = 0; read < offset;) {
      const n = await source.read(head.subarray(read));
      if (n === null) throw new Error(`Cannot insert into "${path}": it is shorter than ${offset} bytes`);
      read += n;
    }
    await writeAll(target, head);
    await writeAll(target, bytes);
    const buffer = new Uint8Array(WRITE_PIECE);
    for (;;) {
      const n = await source.read(buffer);
      if (n === null) break;
      await writeAll(target, buffer.subarray(0, n));
    }
  } finally {
    source.close();
    target.close();
  }
  await Deno.rename(next, path);
  await touchOn(path);
}

/** The modification time the last edit set (whole seconds, ahead of real time). */
let editClock = Math.floor(Date.now() / 1000) * 1000;

/** Sets a file's modification time to the edit clock's next minute. */
async function touchOn(path: string): Promise<void> {
  editClock = Math.max(editClock, Math.floor(Date.now() / 1000) * 1000) + 60_000;
  await Deno.utime(path, new Date(), new Date(editClock));
}

/**
 * Checks that two trees hold the same files with the same contents (`diff
 * -rq`, skipping dfos's `.dfos*` metadata and state files).
 *
 * @param a One root.
 * @param b The other.
 * @returns Null when they match, else what differs (the first lines).
 */
export async function treesDiffer(a: string, b: string): Promise<string | null> {
  const { code, stdout, stderr } = await new Deno.Command("diff", {
    args: ["-rq", "-x", ".dfos*", a, b],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (code === 0) return null;
  const text = new TextDecoder().decode(stdout) + new TextDecoder().decode(stderr);
  return text.trim().split("\n").slice(0, 3).join("; ") || `diff exited with status ${code}`;
}
