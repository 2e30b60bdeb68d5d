/**
 * The figures that chose issue 12's chunker (docs/PERFORMANCE.md, "Chunking,
 * for issue 12"), runnable on its own:
 *
 *     deno run -A bench/chunking.ts [--size MIB] [--sweep-size MIB] [--variants N] [--trials N] [--rounds N]
 *
 * 1. Throughput over random bytes in memory, fed in 1 MiB pieces, in CPU time
 *    (user + sys of this process), interleaved rounds: FastCDC cuts alone
 *    (shared/chunker.ts), FastCDC with SHA-256 per chunk (`chunkHashes`),
 *    SHA-256 alone (`node:crypto`), and rsync's rolling weak sum (Adler-32
 *    like, over a fixed block, rolled at every byte with a 16-bit tag-table
 *    probe: what rsync's sender does over bytes that match nothing).
 * 2. Bytes on the wire for three edits of a random file of `--size` MiB
 *    (default 1024): 1 MiB appended, 4 KiB overwritten in the middle, 100
 *    bytes inserted near the start. dfos with the protocol's chunk sizes, as a
 *    flat chunk list and as the two-level list proposed for issue 12, against
 *    rsync's delta: its block checksum list (weak sum and strong sum of
 *    `s2length` bytes per block, rsync 3's `sum_sizes_sqroot`), a 4-byte
 *    token per matched block and the literal bytes, found by running rsync's
 *    matching (rolling weak sum, MD5 to confirm) over the edited file.
 * 3. The same dfos estimate for other chunk sizes, over `--variants` random
 *    files of `--sweep-size` MiB (default 32), one edit of each kind per
 *    file; lists scaled per GiB.
 * 4. The tail: over `--trials` small files, how often an overwrite or an
 *    insertion costs 1, 2, 3... chunks, at normalization levels 1 and 2.
 *
 * Estimates count payload bytes only (no frame headers beyond those named).
 *
 * @module
 */

import { createHash } from "node:crypto";
import process from "node:process";
import { parseArgs } from "node:util";
import { Chunker, type ChunkerOptions, type ChunkHash, chunkHashes } from "../shared/chunker.ts";
import { fromHex, toHex } from "../shared/chunk_list.ts";
import { groupsOf as groupsOfEntries } from "../shared/chunk_groups.ts";
import { seededBytes } from "../tests/_common.ts";

const MIB = 1 << 20;
const PIECE = MIB;
/** Bytes per chunk-list entry on the wire: SHA-256 and a 4-byte length. */
const ENTRY_BYTES = 36;
/** Bytes per chunk sent besides its content (a frame header and its index). */
const CHUNK_HEADER_BYTES = 9;

/** Views of `bytes` in 1 MiB pieces. */
function* piecesOf(bytes: Uint8Array): Generator<Uint8Array> {
  for (let offset = 0; offset < bytes.length; offset += PIECE) yield bytes.subarray(offset, offset + PIECE);
}

/** The pieces of `old` with `remove` bytes at `at` replaced by `insert`, without copying `old`. */
function* edited(old: Uint8Array, at: number, remove: number, insert: Uint8Array): Generator<Uint8Array> {
  yield* piecesOf(old.subarray(0, at));
  yield insert;
  yield* piecesOf(old.subarray(at + remove));
}

function cpuMs(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
}

// ---- rsync's weak sum and block sizes (rsync 3, checksum.c get_checksum1, generator.c sum_sizes_sqroot) ----

/** rsync's block length and strong-sum bytes for a basis file of `len` bytes (protocol 30+, default options). */
function rsyncSizes(len: number): { block: number; s2length: number } {
  let block: number;
  if (len <= 700 * 700) block = 700;
  else {
    let c = 1;
    for (let l = len; (l = Math.floor(l / 4)) > 0;) c *= 2;
    if (c >= 1 << 17) block = 1 << 17;
    else {
      block = 0;
      do {
        block |= c;
        if (len < block * block) block &= ~c;
        c >>= 1;
      } while (c >= 8);
      block = Math.max(block, 700);
    }
  }
  let b = 10;
  for (let l = len; (l = Math.floor(l / 2)) > 0;) b += 2;
  for (let c = block; (c >>= 1) && b; b--);
  const s2length = Math.min(16, Math.max(2, Math.floor((b + 1 - 32 + 7) / 8)));
  return { block, s2length };
}

/** rsync's weak sum of `bytes`, as its two 16-bit halves. */
function weakSum(bytes: Uint8Array): { s1: number; s2: number } {
  let s1 = 0, s2 = 0;
  for (let i = 0; i < bytes.length; i++) {
    s1 += bytes[i];
    s2 += s1;
  }
  return { s1: s1 & 0xffff, s2: s2 & 0xffff };
}

function md5(bytes: Uint8Array): string {
  return createHash("md5").update(bytes).digest("hex");
}

/** What rsync's delta of `next` against the basis `old` sends, both ways. */
interface RsyncDelta {
  /** Generator to sender: the block checksum list and its header. */
  sums: number;
  /** Sender to receiver: literal bytes with their 4-byte headers, one 4-byte token per matched block, the file's MD5. */
  delta: number;
  literal: number;
}

/** Runs rsync's matching (rolling weak sum, MD5 to confirm) of `next` against the blocks of `old`. */
function rsyncDelta(old: Uint8Array, next: Uint8Array): RsyncDelta {
  const { block, s2length } = rsyncSizes(old.length);
  const table = new Map<number, number[]>();
  const strong: string[] = [];
  const count = Math.ceil(old.length / block);
  for (let i = 0; i < count; i++) {
    const bytes = old.subarray(i * block, (i + 1) * block);
    const { s1, s2 } = weakSum(bytes);
    const key = s1 | (s2 << 16);
    const list = table.get(key);
    if (list) list.push(i);
    else table.set(key, [i]);
    strong.push("");
  }
  const strongOf = (i: number) => strong[i] || (strong[i] = md5(old.subarray(i * block, (i + 1) * block)));
  let matched = 0;
  let literal = 0;
  let literalFrom = 0;
  let k = 0;
  let length = Math.min(block, next.length);
  let { s1, s2 } = weakSum(next.subarray(0, length));
  while (k < next.length) {
    const candidates = table.get(s1 | (s2 << 16));
    let hit = -1;
    if (candidates) {
      const sum = md5(next.subarray(k, k + length));
      hit = candidates.find((i) => Math.min(block, old.length - i * block) === length && strongOf(i) === sum) ?? -1;
    }
    if (hit >= 0) {
      literal += k - literalFrom;
      matched++;
      k += length;
      literalFrom = k;
      length = Math.min(block, next.length - k);
      ({ s1, s2 } = weakSum(next.subarray(k, k + length)));
      continue;
    }
    // Roll one byte on; at the end the window shrinks instead (rsync's match.c, hash_search).
    const out = next[k];
    s1 = (s1 - out) & 0xffff;
    s2 = (s2 - length * out) & 0xffff;
    if (k + length < next.length) {
      s1 = (s1 + next[k + length]) & 0xffff;
      s2 = (s2 + s1) & 0xffff;
    } else {
      length--;
    }
    k++;
  }
  literal += next.length - literalFrom;
  const sums = 16 + count * (4 + s2length);
  const delta = literal + 4 * Math.ceil(literal / (32 * 1024)) + 4 * matched + 16;
  return { sums, delta, literal };
}

// ---- dfos: what a push of the edited file sends when the server has the old file's chunk list ----

/** What a push sends both ways, with flat and with two-level chunk lists. */
interface CdcDelta {
  /** Chunks in the new file. */
  chunks: number;
  /** Chunks the server lacks, and their bytes. */
  missing: number;
  missingBytes: number;
  /** Flat: the whole list up, a bitmap down, the missing chunks up. */
  flat: number;
  /** Two-level: group list up, group bitmap down, lists of unknown groups up, chunk bitmap down, missing chunks up. */
  twoLevel: number;
}

/** The groups of a chunk list (shared/chunk_list.ts), each as its key in hex with its chunk count. */
function groupsOf(chunks: ChunkHash[]): { key: string; count: number }[] {
  const entries = chunks.map((chunk) => ({ hash: fromHex(chunk.sha256)!, length: chunk.length }));
  return groupsOfEntries(entries).map((group) => ({ key: toHex(group.key), count: group.chunks }));
}

function cdcDelta(before: ChunkHash[], after: ChunkHash[]): CdcDelta {
  const known = new Set(before.map((chunk) => chunk.sha256));
  const missingChunks = after.filter((chunk) => !known.has(chunk.sha256));
  const missingBytes = missingChunks.reduce((sum, chunk) => sum + chunk.length, 0);
  const sent = missingBytes + CHUNK_HEADER_BYTES * missingChunks.length;
  const flat = after.length * ENTRY_BYTES + Math.ceil(after.length / 8) + sent;
  const knownGroups = new Set(groupsOf(before).map((group) => group.key));
  const groups = groupsOf(after);
  const unknownChunks = groups.filter((group) => !knownGroups.has(group.key)).reduce((n, g) => n + g.count, 0);
  const twoLevel = groups.length * ENTRY_BYTES + Math.ceil(groups.length / 8) + unknownChunks * ENTRY_BYTES +
    Math.ceil(unknownChunks / 8) + sent;
  return { chunks: after.length, missing: missingChunks.length, missingBytes, flat, twoLevel };
}

async function listOf(pieces: Iterable<Uint8Array>, options?: ChunkerOptions): Promise<ChunkHash[]> {
  return await Array.fromAsync(chunkHashes(pieces, options));
}

// ---- the three parts ----

async function throughput(sizeMiB: number, rounds: number): Promise<void> {
  const bytes = seededBytes(sizeMiB * MIB, 99);
  const { block } = rsyncSizes(1 << 30);
  const tags = new Uint8Array(1 << 16);
  const methods: Record<string, () => Promise<unknown> | unknown> = {
    "FastCDC cuts": () => {
      const chunker = new Chunker();
      let n = 0;
      for (const piece of piecesOf(bytes)) n += chunker.push(piece).length;
      return n + chunker.finish().length;
    },
    "FastCDC + SHA-256": () => listOf(piecesOf(bytes)),
    "FastCDC 4/16/64 KiB + SHA-256": () =>
      listOf(piecesOf(bytes), { minSize: 4 << 10, avgSize: 16 << 10, maxSize: 64 << 10 }),
    "SHA-256 alone": () => {
      const hash = createHash("sha256");
      for (const piece of piecesOf(bytes)) hash.update(piece);
      return hash.digest("hex");
    },
    "rsync rolling sum": () => {
      let { s1, s2 } = weakSum(bytes.subarray(0, block));
      let probes = 0;
      for (let k = 0; k + block < bytes.length; k++) {
        probes += tags[(s1 + s2) & 0xffff];
        const out = bytes[k];
        s1 = (s1 - out + bytes[k + block]) & 0xffff;
        s2 = (s2 - block * out + s1) & 0xffff;
      }
      return probes;
    },
  };
  const times: Record<string, number[]> = {};
  for (const run of Object.values(methods)) await run(); // warm-up, not counted
  for (let round = 0; round < rounds; round++) {
    for (const [name, run] of Object.entries(methods)) {
      const start = cpuMs();
      await run();
      (times[name] ??= []).push(cpuMs() - start);
    }
  }
  console.log(`\n## Throughput: ${sizeMiB} MiB in memory, 1 MiB pieces, CPU time, median of ${rounds} interleaved`);
  console.log("| method | MB/s | against SHA-256 alone |");
  console.log("| --- | --- | --- |");
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const sha = median(times["SHA-256 alone"]);
  for (const [name, ms] of Object.entries(times)) {
    const m = median(ms);
    console.log(`| ${name} | ${(bytes.length / 1e3 / m).toFixed(0)} | ${(sha / m).toFixed(2)}x |`);
  }
}

interface Edit {
  name: string;
  at: number;
  remove: number;
  insert: Uint8Array;
}

function editsOf(size: number, variant: number): Edit[] {
  return [
    { name: "append 1 MiB", at: size, remove: 0, insert: seededBytes(MIB, 1000 + variant) },
    {
      name: "overwrite 4 KiB in the middle",
      at: size / 2 + variant * 40_009 + 1234,
      remove: 4096,
      insert: seededBytes(4096, 2000 + variant),
    },
    {
      name: "insert 100 B near the start",
      at: 5000 + variant * 9_973,
      remove: 0,
      insert: seededBytes(100, 3000 + variant),
    },
  ];
}

function kb(n: number): string {
  return (n / 1000).toFixed(1);
}

async function deltas(sizeMiB: number): Promise<void> {
  const old = seededBytes(sizeMiB * MIB, 1);
  const before = await listOf(piecesOf(old));
  const { block, s2length } = rsyncSizes(old.length);
  console.log(`\n## Delta: a ${sizeMiB} MiB random file, protocol's chunk sizes (${before.length} chunks);`);
  console.log(`## rsync: ${block}-byte blocks, ${4 + s2length} bytes of checksums each`);
  console.log("| edit | dfos chunks sent (bytes) | dfos flat list, KB | dfos two-level, KB | rsync sums + delta, KB |");
  console.log("| --- | --- | --- | --- | --- |");
  for (const edit of editsOf(old.length, 0)) {
    const after = await listOf(edited(old, edit.at, edit.remove, edit.insert));
    const cdc = cdcDelta(before, after);
    const next = new Uint8Array(old.length - edit.remove + edit.insert.length);
    let offset = 0;
    for (const piece of edited(old, edit.at, edit.remove, edit.insert)) {
      next.set(piece, offset);
      offset += piece.length;
    }
    const rsync = rsyncDelta(old, next);
    console.log(
      `| ${edit.name} | ${cdc.missing} (${cdc.missingBytes}) | ${kb(cdc.flat)} | ${kb(cdc.twoLevel)} | ` +
        `${kb(rsync.sums)} + ${kb(rsync.delta)} = ${kb(rsync.sums + rsync.delta)} (literal ${rsync.literal}) |`,
    );
  }
}

async function sweep(sizeMiB: number, variants: number): Promise<void> {
  const choices: ChunkerOptions[] = [
    { minSize: 4 << 10, avgSize: 16 << 10, maxSize: 64 << 10 },
    { minSize: 16 << 10, avgSize: 64 << 10, maxSize: 256 << 10 },
    { minSize: 16 << 10, avgSize: 64 << 10, maxSize: 256 << 10, normalization: 2 },
    { minSize: 64 << 10, avgSize: 256 << 10, maxSize: 1 << 20 },
    { minSize: 256 << 10, avgSize: 1 << 20, maxSize: 4 << 20 },
    { minSize: 512 << 10, avgSize: 1 << 20, maxSize: 8 << 20, normalization: 2 },
  ];
  console.log(`\n## Sweep: ${variants} random files of ${sizeMiB} MiB, one edit of each kind per file;`);
  console.log("## chunk bytes sent, mean (max); list per GiB: the flat list, about what the server stores per GiB");
  console.log(
    "| min/avg/max KiB (level) | mean chunk KiB | list per GiB, KB | append | overwrite 4 KiB | insert 100 B |",
  );
  console.log("| --- | --- | --- | --- | --- | --- |");
  const files = Array.from({ length: variants }, (_, v) => seededBytes(sizeMiB * MIB, 100 + v));
  for (const options of choices) {
    const sent: number[][] = [[], [], []];
    let chunks = 0;
    for (const [v, old] of files.entries()) {
      const before = await listOf(piecesOf(old), options);
      chunks += before.length;
      for (const [e, edit] of editsOf(old.length, v).entries()) {
        const after = await listOf(edited(old, edit.at, edit.remove, edit.insert), options);
        sent[e].push(cdcDelta(before, after).missingBytes);
      }
    }
    const cells = sent.map((xs) => `${kb(xs.reduce((a, b) => a + b, 0) / xs.length)} (${kb(Math.max(...xs))})`);
    const label = `${options.minSize! >> 10}/${options.avgSize! >> 10}/${options.maxSize! >> 10} (${
      options.normalization ?? 1
    })`;
    const total = sizeMiB * MIB * variants;
    const perGiB = (chunks / (total / (1 << 30))) * ENTRY_BYTES;
    console.log(`| ${label} | ${(total / chunks / 1024).toFixed(1)} | ${kb(perGiB)} | ${cells.join(" | ")} |`);
  }
}

async function tail(trials: number): Promise<void> {
  console.log(`\n## Tail: ${trials} random files of 2 MiB, one edit each (positions vary): how many chunks are sent`);
  console.log("| sizes (level) | edit | files by chunks sent (chunks: files) | mean bytes sent |");
  console.log("| --- | --- | --- | --- |");
  for (const normalization of [1, 2]) {
    const options = { normalization };
    const counts: Record<string, Record<number, number>> = { overwrite: {}, insert: {} };
    const bytes: Record<string, number> = { overwrite: 0, insert: 0 };
    for (let t = 1; t <= trials; t++) {
      const old = seededBytes(2 * MIB, t * 7919);
      const before = await listOf([old], options);
      const cases: [string, number, number, Uint8Array][] = [
        ["overwrite", MIB + ((t * 4099) % (MIB / 2)), 4096, seededBytes(4096, t)],
        ["insert", (t * 251) % 100_000, 0, seededBytes(100, t)],
      ];
      for (const [name, at, remove, insert] of cases) {
        const delta = cdcDelta(before, await listOf(edited(old, at, remove, insert), options));
        counts[name][delta.missing] = (counts[name][delta.missing] ?? 0) + 1;
        bytes[name] += delta.missingBytes;
      }
    }
    for (const name of ["overwrite", "insert"]) {
      const histogram = Object.entries(counts[name]).map(([k, n]) => `${k}: ${n}`).join(", ");
      console.log(`| 16/64/256 (${normalization}) | ${name} | ${histogram} | ${kb(bytes[name] / trials)} KB |`);
    }
  }
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      size: { type: "string", default: "1024" },
      "sweep-size": { type: "string", default: "32" },
      "throughput-size": { type: "string", default: "256" },
      rounds: { type: "string", default: "5" },
      variants: { type: "string", default: "8" },
      trials: { type: "string", default: "300" },
    },
  });
  await throughput(Number(values["throughput-size"]), Number(values.rounds));
  await deltas(Number(values.size));
  await sweep(Number(values["sweep-size"]), Number(values.variants));
  await tail(Number(values.trials));
}
