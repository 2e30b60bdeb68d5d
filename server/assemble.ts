/**
 * `assemble`: stores a file made by a recipe (shared/recipe.ts) — chunks
 * copied from the user's files, chunks sent — once its size, chunk count and
 * root are those announced (docs/PROTOCOL.md "Chunks"). Every chunk, copied
 * or sent, is hashed before it is written: its bytes must have its hash.
 *
 * A body cut short by the connection is kept (`Upload.keep`, with the chunk
 * entries written so far as its state) and continued by the next `assemble`
 * of that name and root: the recipe's steps that match the kept chunks, in
 * order, are skipped. A body ended by ABORT drops it. A partial file is never
 * committed.
 *
 * With `ifRoot` (docs/PROTOCOL.md "Sync") the file is stored only if the
 * name's content still has that root (null: only if there is no file):
 * checked before the body is read (server/conditions.ts), and again by the
 * commit against the version then found (`CommitOptions.ifVersion`). A
 * refused commit drops the upload, as any failure but a broken connection.
 *
 * @module
 */
import { createHash } from "node:crypto";
import type { BodyReceiver } from "../shared/body.ts";
import { type ChunkEntry, decodeChunkEntries, encodeChunkEntries, toHex } from "../shared/chunk_list.ts";
import { rootOf } from "../shared/chunk_groups.ts";
import type { MessageOf } from "../shared/messages.ts";
import { excerpt, nameProblem } from "../shared/names.ts";
import { decodeOps } from "../shared/block_delta.ts";
import { bytesOf, release } from "../shared/pooled_bytes.ts";
import { RecipeDecoder, type RecipeStep } from "../shared/recipe.ts";
import { DfosError, Status } from "../shared/status.ts";
import { type ChunkIndex, type ChunkIndexes, type ChunkSource, SourceCheck } from "./chunk_index.ts";
import { versionCondition } from "./conditions.ts";
import { isConnectionLoss } from "./errors.ts";
import type { Allowance, Quota } from "./quota.ts";
import type { FileInfo, ReadHandle, Storage, Upload, VersionedInfo } from "./storage.ts";

/** What the server keeps for the chunk requests, shared by its sessions. */
export interface ChunkState {
  /** The users' chunk indexes. */
  indexes: ChunkIndexes;
  /** The kept uploads' quota holds. */
  holds: KeptHolds;
}

/** What an assemble needs. */
export interface AssembleContext extends ChunkState {
  /** The user. */
  user: string;
  /** Where the user's files are. */
  storage: Storage;
  /** The quota. */
  quota: Quota;
  /** The longest name an upload may create. */
  maxNameBytes: number;
}

/**
 * The quota a kept upload holds: the allowance of the `assemble` that kept
 * it stays reserved until an `assemble` of that name and root takes it up,
 * the upload is dropped (ABORT, another root, `--partial-ttl`). Held in
 * memory: after a restart, the kept uploads of a user are held again (their
 * bytes so far) when the quota first counts the user (server/server.ts).
 */
export class KeptHolds {
  readonly #holds = new Map<string, { user: string; name: string; key: string; allowance: Allowance }>();

  /** Holds `allowance` for the kept upload. */
  hold(user: string, name: string, key: string, allowance: Allowance): void {
    this.#holds.get(`${user}\0${name}\0${key}`)?.allowance.release();
    this.#holds.set(`${user}\0${name}\0${key}`, { user, name, key, allowance });
  }

  /** Gives back what a kept upload held; with no key, every kept upload of that name. */
  release(user: string, name: string, key?: string): void {
    for (const [id, hold] of this.#holds) {
      if (hold.user === user && hold.name === name && (key === undefined || hold.key === key)) {
        hold.allowance.release();
        this.#holds.delete(id);
      }
    }
  }

  /** After a sweep: gives back the holds of kept uploads that are no longer kept. */
  async prune(storage: Storage): Promise<void> {
    const users = new Set([...this.#holds.values()].map((hold) => hold.user));
    for (const user of users) {
      const kept = new Set((await storage.keptUploads(user)).map((upload) => `${user}\0${upload.name}\0${upload.key}`));
      for (const [id, hold] of this.#holds) {
        if (hold.user === user && !kept.has(id)) {
          hold.allowance.release();
          this.#holds.delete(id);
        }
      }
    }
  }

  /** Gives every hold back (the server closes). */
  clear(): void {
    for (const hold of this.#holds.values()) hold.allowance.release();
    this.#holds.clear();
  }
}

/** A chunk to write: its entry, and its bytes when they were sent. */
interface Wanted {
  entry: ChunkEntry;
  bytes: Uint8Array | null;
  source: ChunkSource | null;
}

/**
 * Runs one `assemble`.
 *
 * @param message The request.
 * @param body Its recipe.
 * @param context The user, storage, index and quota.
 * @returns What was stored.
 */
export async function assemble(
  message: MessageOf<"assemble">,
  body: BodyReceiver,
  context: AssembleContext,
): Promise<VersionedInfo> {
  const { user, storage, indexes, quota, holds } = context;
  const { name, root } = message;
  const problem = nameProblem(name, context.maxNameBytes);
  if (problem) throw new DfosError(Status.BAD_NAME, `Cannot use name "${excerpt(name)}": ${problem}`);
  const notFound = (what: string) =>
    new DfosError(Status.NOT_FOUND, `Cannot assemble "${excerpt(name)}": ${what} not found`);
  // A condition that does not hold refuses the assemble before its body is read (the session drops it); one that
  // holds is checked again by the commit, against the version found here.
  const ifVersion = await versionCondition(storage, { user, name, ifRoot: message.ifRoot, action: "store" });
  const index = await indexes.of(user);
  holds.release(user, name); // taken up again or replaced: this assemble's allowance counts it
  const allowance = await quota.reserve(user, name, message.size);
  let upload: Upload;
  let kept: ChunkEntry[] = [];
  try {
    const resumed = await storage.resumeUpload(user, name, root);
    const state = resumed === null ? null : decodeChunkEntries(resumed.state);
    if (resumed !== null && state !== null && lengthOf(state) === resumed.upload.written) {
      upload = resumed.upload;
      kept = state;
    } else {
      if (resumed !== null) await resumed.upload.abort(); // a state that does not describe its bytes: start over
      upload = await storage.beginUpload(user, name, { keep: root });
    }
  } catch (error) {
    allowance.release();
    throw error;
  }
  const entries: ChunkEntry[] = [];
  const check = new SourceCheck(storage, user);
  const handles = new Map<string, ReadHandle>();
  let written = 0;
  let committed: FileInfo;
  try {
    const decoder = new RecipeDecoder();
    const take = async (step: RecipeStep) => {
      const wanted = step.kind === "patch"
        ? [await patched(step, { storage, user, name, base: message.base, handles, notFound })]
        : await expand(step, index, check, notFound);
      for (let i = 0; i < wanted.length; i++) {
        if (entries.length >= message.chunks) {
          throw new DfosError(
            Status.INTEGRITY,
            `Cannot assemble "${excerpt(name)}": more than ${message.chunks} chunks`,
          );
        }
        if (entries.length < kept.length) {
          // Continuing a kept upload: its chunks are there already.
          if (!sameEntry(kept[entries.length], wanted[i].entry)) throw notFound(`chunk ${toHex(wanted[i].entry.hash)}`);
          entries.push(wanted[i].entry);
          written += wanted[i].entry.length;
          continue;
        }
        // A sent chunk's hash is that of its bytes (expand). Copied chunks lying end to end in one file (a
        // group's) are read at once and written at once, each one's bytes hashed again here.
        let end = i + 1;
        if (wanted[i].bytes === null) {
          let span = wanted[i].entry.length;
          while (
            end < wanted.length && adjacent(wanted[end - 1], wanted[end]) &&
            span + wanted[end].entry.length <= COPY_RUN_BYTES && entries.length + (end - i) < message.chunks
          ) {
            span += wanted[end].entry.length;
            end++;
          }
        }
        const run = wanted.slice(i, end);
        const bytes = wanted[i].bytes ?? await copy(run, storage, user, handles, notFound);
        written += bytes.length;
        if (written > message.size) {
          throw new DfosError(Status.INTEGRITY, `Cannot assemble "${excerpt(name)}": more than ${message.size} bytes`);
        }
        allowance.receive(written);
        await upload.write(bytes);
        for (const { entry } of run) entries.push(entry);
        i = end - 1;
      }
    };
    for await (const piece of body.pieces()) {
      let steps: RecipeStep[];
      try {
        steps = [...decoder.push(bytesOf(piece))];
      } finally {
        release(piece);
      }
      for (const step of steps) await take(step);
    }
    decoder.finish();
    if (written !== message.size || entries.length !== message.chunks || rootOf(entries) !== root) {
      throw new DfosError(
        Status.INTEGRITY,
        `Cannot assemble "${excerpt(name)}": the recipe makes ${written} bytes in ${entries.length} chunks of root ` +
          `${rootOf(entries)}, not the announced ${message.size} bytes in ${message.chunks} chunks of root ${root}`,
      );
    }
    const info = await upload.commit({ admit: (change) => allowance.admit(change), mtime: message.mtime, ifVersion });
    allowance.committed();
    committed = info;
  } catch (error) {
    if (isConnectionLoss(error)) {
      // The connection broke in the middle of the recipe: keep what was written, checked, for the next try.
      try {
        await upload.keep(encodeChunkEntries(entries));
        index.add({ kind: "kept", name, key: root }, entries);
        holds.hold(user, name, root, allowance);
      } catch {
        allowance.release();
        await upload.abort();
        await storage.dropKept(user, name, root).catch(() => {});
      }
      throw error;
    }
    allowance.release();
    await upload.abort();
    await storage.dropKept(user, name, root);
    throw error;
  } finally {
    for (const handle of handles.values()) handle.close();
  }
  // Stored: its chunk list is metadata, and a failure to store it only means it is computed again when asked.
  const stored = await committedVersion(storage, user, committed);
  if (stored !== null) {
    const list = { name: committed.name, version: stored.version, entries: encodeChunkEntries(entries) };
    // Not waited for: the reply need not wait for a file to be created (the storage's close does).
    storage.writeChunkList(user, list).catch(() => {});
    index.add({ kind: "file", name: committed.name, version: stored.version }, entries);
  }
  return { ...committed, version: stored?.version ?? "" };
}

/**
 * The committed file's facts with its version: the commit's own when the
 * storage gives it, else a `stat` that still shows the committed size and
 * mtime (null when another change came between: no chunk list is then stored
 * for it, and the next `groups` computes it).
 */
async function committedVersion(storage: Storage, user: string, info: FileInfo): Promise<VersionedInfo | null> {
  if (typeof (info as Partial<VersionedInfo>).version === "string") return info as VersionedInfo;
  const stored = await storage.stat(user, info.name).catch(() => null) as VersionedInfo | null;
  if (stored === null || typeof stored.version !== "string") return null;
  return stored.size === info.size && stored.mtime === info.mtime ? stored : null;
}

/**
 * A patch step's chunk: its ops applied to the version `base` of the file
 * being replaced (the copies read from it, the literals as sent), and its
 * bytes checked against its hash. A base that is gone or replaced, a copy
 * past its end, or bytes of another hash: not found (the client then sends
 * the chunk's bytes).
 */
async function patched(
  step: Extract<RecipeStep, { kind: "patch" }>,
  context: {
    storage: Storage;
    user: string;
    name: string;
    base: string | undefined;
    handles: Map<string, ReadHandle>;
    notFound: (what: string) => DfosError;
  },
): Promise<Wanted> {
  const { storage, user, name, base, handles, notFound } = context;
  if (base === undefined) {
    throw new DfosError(Status.BAD_REQUEST, `Cannot assemble "${excerpt(name)}": a patch step, and no base`);
  }
  const ops = decodeOps(step.ops, step.length);
  const lost = () => notFound(`version ${base} of the file, to patch chunk ${toHex(step.hash)},`);
  let handle = handles.get(name);
  if (handle === undefined) {
    try {
      handle = await storage.openRead(user, name);
    } catch {
      throw lost();
    }
    handles.set(name, handle);
  }
  if (handle.info.version !== base) throw lost();
  const bytes = new Uint8Array(step.length);
  let at = 0;
  for (const op of ops) {
    if (op.kind === "literal") {
      bytes.set(op.bytes, at);
      at += op.bytes.length;
      continue;
    }
    if (op.offset + op.length > handle.info.size) throw lost();
    let got = 0;
    for await (const piece of handle.readRange(op.offset, op.length)) {
      try {
        bytes.set(bytesOf(piece), at + got);
        got += bytesOf(piece).length;
      } finally {
        release(piece);
      }
    }
    if (got !== op.length) throw lost();
    at += op.length;
  }
  if (!sameHash(bytes, step.hash)) throw notFound(`chunk ${toHex(step.hash)} (its patch makes other bytes)`);
  return { entry: { hash: step.hash, length: step.length }, bytes, source: null };
}

/** The chunks a step names: a sent chunk's bytes and hash, or where the index says a known one is. */
async function expand(
  step: Exclude<RecipeStep, { kind: "patch" }>,
  index: ChunkIndex,
  check: SourceCheck,
  notFound: (what: string) => DfosError,
): Promise<Wanted[]> {
  if (step.kind === "data") {
    const hash = new Uint8Array(createHash("sha256").update(step.bytes).digest());
    return [{ entry: { hash, length: step.bytes.length }, bytes: step.bytes, source: null }];
  }
  if (step.kind === "chunk") {
    const source = index.chunk(step.hash);
    if (source === undefined || source.length !== step.length) {
      return [{ entry: { hash: step.hash, length: step.length }, bytes: null, source: null }];
    }
    return [{ entry: { hash: step.hash, length: step.length }, bytes: null, source }];
  }
  const group = index.group(step.key);
  if (group === undefined || !await check.current(group.source)) throw notFound(`group ${toHex(step.key)}`);
  const wanted: Wanted[] = [];
  let offset = group.source.offset;
  for (const entry of group.chunks) {
    wanted.push({ entry, bytes: null, source: { ...group.source, offset, length: entry.length } });
    offset += entry.length;
  }
  return wanted;
}

/** Copied chunks read at once: at most this many bytes (a group is some 4 MiB on average). */
const COPY_RUN_BYTES = 8 * 1024 * 1024;

/** True when `b`'s bytes follow `a`'s in the same version of the same file. */
function adjacent(a: Wanted, b: Wanted): boolean {
  const x = a.source;
  const y = b.source;
  return x !== null && y !== null && x.kind === "file" && y.kind === "file" && b.bytes === null &&
    x.name === y.name && x.version === y.version && x.offset + x.length === y.offset &&
    x.length === a.entry.length && y.length === b.entry.length;
}

/**
 * Reads known chunks lying end to end from their source (a file's version),
 * and checks each one's bytes against its hash; a null source, a stale one
 * or a mismatch: not found.
 */
async function copy(
  run: Wanted[],
  storage: Storage,
  user: string,
  handles: Map<string, ReadHandle>,
  notFound: (what: string) => DfosError,
): Promise<Uint8Array> {
  const first = run[0];
  const source = first.source;
  const lost = () => notFound(`chunk ${toHex(first.entry.hash)}`);
  if (source === null || source.kind !== "file") throw lost();
  let handle = handles.get(source.name);
  if (handle === undefined) {
    try {
      handle = await storage.openRead(user, source.name);
    } catch {
      throw lost();
    }
    handles.set(source.name, handle);
  }
  const length = run.reduce((sum, wanted) => sum + wanted.entry.length, 0);
  if (handle.info.version !== source.version || source.offset + length > handle.info.size) throw lost();
  const bytes = new Uint8Array(length);
  let at = 0;
  for await (const piece of handle.readRange(source.offset, length)) {
    try {
      bytes.set(bytesOf(piece), at);
      at += bytesOf(piece).length;
    } finally {
      release(piece);
    }
  }
  if (at !== length) throw lost();
  at = 0;
  for (const { entry } of run) {
    if (!sameHash(bytes.subarray(at, at + entry.length), entry.hash)) throw notFound(`chunk ${toHex(entry.hash)}`);
    at += entry.length;
  }
  return bytes;
}

function sameHash(bytes: Uint8Array, hash: Uint8Array): boolean {
  const actual = createHash("sha256").update(bytes).digest();
  return actual.length === hash.length && actual.every((byte, i) => byte === hash[i]);
}

function lengthOf(entries: readonly ChunkEntry[]): number {
  return entries.reduce((sum, entry) => sum + entry.length, 0);
}

function sameEntry(a: ChunkEntry, b: ChunkEntry): boolean {
  return a.length === b.length && a.hash.every((byte, i) => byte === b.hash[i]);
}
