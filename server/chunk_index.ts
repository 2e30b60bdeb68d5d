/**
 * The per-user chunk index: for a chunk hash or a group key, where its bytes
 * are — a stored file (name, version, offset, length) or a kept upload (its
 * chunks can only be continued, by an `assemble` of that name and root). It
 * is built lazily, on a user's first `have` or `assemble`, from the user's
 * stored chunk lists (`Storage.chunkLists`) and kept uploads
 * (`Storage.keptUploads`), then from the files that have no current list
 * (stored by a plain `put`, or changed by other means): their lists are
 * computed and stored, at most {@linkcode MAX_BUILD_HASH_BYTES} of files per
 * build (a later build goes on where it stopped, the lists computed being
 * stored). It is updated when an `assemble` commits or keeps, and a file a
 * `put` stores is indexed before the index is next used. The kept uploads
 * are read again when the index is used, at most every
 * {@linkcode KEPT_REFRESH_MS}: on a store that several servers share (S3), an
 * upload kept through another server is then resumed through this one.
 *
 * Entries may go stale (a file replaced, moved or deleted by `put`, `mv`,
 * `rm`): each names the version it was seen in, and a source is checked
 * against the file's current version before it is used; a copy re-checks the
 * bytes' SHA-256 anyway (server/assemble.ts), so a stale or wrong entry can
 * only cost a `NOT_FOUND`, never a wrong byte.
 *
 * Memory is bounded: at most {@linkcode MAX_INDEX_ENTRIES} chunk and group
 * entries per user (past it, new ones are not indexed: the client then sends
 * those bytes), and the indexes of at most {@linkcode MAX_INDEXED_USERS}
 * users, the least recently used dropped first (and rebuilt when needed).
 *
 * @module
 */
import { type ChunkEntry, decodeChunkEntries, toHex } from "../shared/chunk_list.ts";
import { groupsOf } from "../shared/chunk_groups.ts";
import { chunkListOf } from "./chunk_lists.ts";
import type { ReadHandle, Storage, VersionedInfo } from "./storage.ts";

/** Chunk and group entries at most in one user's index (about 200 bytes each: 256 Ki entries, some 50 MB). */
export const MAX_INDEX_ENTRIES = 256 * 1024;

/** File bytes at most read to compute missing chunk lists in one build (some seconds of hashing). */
export const MAX_BUILD_HASH_BYTES = 1024 ** 3;

/** Files stored by `put` that a built index waits to take in, at most, per user. */
export const MAX_PENDING_NAMES = 10_000;

/** The least time between two reads of a user's kept uploads for a built index, in milliseconds. */
export const KEPT_REFRESH_MS = 1000;

/** Users whose indexes are kept in memory at once. */
export const MAX_INDEXED_USERS = 8;

/** Where a chunk's bytes are. */
export type ChunkSource =
  | { kind: "file"; name: string; version: string; offset: number; length: number }
  | { kind: "kept"; name: string; key: string; offset: number; length: number };

/** Where a group's chunks are: a file's version (or a kept upload) and the group's chunks. */
export interface GroupSource {
  /** Where the group's first chunk is; the others follow it. */
  source: ChunkSource;
  /** The group's chunks, in order. */
  chunks: ChunkEntry[];
}

/** One user's index. */
export class ChunkIndex {
  readonly #chunks = new Map<string, ChunkSource>();
  readonly #groups = new Map<string, GroupSource>();

  /** Entries held (chunks and groups). */
  get size(): number {
    return this.#chunks.size + this.#groups.size;
  }

  /**
   * Indexes a file's version (or a kept upload's chunks so far).
   *
   * @param where The file (name and version) or kept upload (name and key).
   * @param entries Its chunks, in order.
   */
  add(
    where: { kind: "file"; name: string; version: string } | { kind: "kept"; name: string; key: string },
    entries: readonly ChunkEntry[],
  ): void {
    let offset = 0;
    const starts: number[] = [];
    for (const entry of entries) {
      starts.push(offset);
      const hex = toHex(entry.hash);
      // A stored file's copy of a chunk is never hidden by a kept upload's, which only its own continuation can use.
      const keep = where.kind === "kept" && this.#chunks.get(hex)?.kind === "file";
      if (!keep && this.size < MAX_INDEX_ENTRIES) this.#chunks.set(hex, { ...where, offset, length: entry.length });
      offset += entry.length;
    }
    if (where.kind !== "file") return; // a kept upload's groups may still grow
    let at = 0;
    for (const group of groupsOf(entries)) {
      if (this.size < MAX_INDEX_ENTRIES) {
        this.#groups.set(toHex(group.key), {
          source: { ...where, offset: starts[at], length: group.bytes },
          chunks: entries.slice(at, at + group.chunks),
        });
      }
      at += group.chunks;
    }
  }

  /** Where a chunk is, as last seen (check it is current before use), or undefined. */
  chunk(hash: Uint8Array): ChunkSource | undefined {
    return this.#chunks.get(toHex(hash));
  }

  /** Where a group is, as last seen (check it is current before use), or undefined. */
  group(key: Uint8Array): GroupSource | undefined {
    return this.#groups.get(toHex(key));
  }

  /** Forgets a source found stale. */
  forget(key: Uint8Array): void {
    const hex = toHex(key);
    this.#chunks.delete(hex);
    this.#groups.delete(hex);
  }
}

/** Checks sources against the storage, remembering each file's current version (for one request). */
export class SourceCheck {
  readonly #versions = new Map<string, string | null>();
  #keptList: Promise<Set<string>> | null = null;

  /**
   * @param storage Where the files are.
   * @param user Whose.
   */
  constructor(readonly storage: Storage, readonly user: string) {}

  /** True when the source is still there as indexed: the file's version current, the kept upload still kept. */
  async current(source: ChunkSource): Promise<boolean> {
    if (source.kind === "kept") {
      this.#keptList ??= this.storage.keptUploads(this.user).then((kept) =>
        new Set(kept.map((upload) => `${upload.name}\0${upload.key}`))
      );
      return (await this.#keptList).has(`${source.name}\0${source.key}`);
    }
    let version = this.#versions.get(source.name);
    if (version === undefined) {
      let info: VersionedInfo | null = null;
      try {
        info = await this.storage.stat(this.user, source.name) as VersionedInfo | null;
      } catch {
        info = null; // gone, or a folder now: not a source
      }
      version = info?.version ?? null;
      this.#versions.set(source.name, version);
    }
    return version === source.version;
  }
}

/** Every user's index, built on first use; see the module's documentation for its bounds. */
export class ChunkIndexes {
  readonly #storage: Storage;
  readonly #indexes = new Map<string, Promise<ChunkIndex>>();
  /** Per user with a built index, files stored by `put` since, to index before it is used next. */
  readonly #stored = new Map<string, Set<string>>();
  /** Per built index, when its kept uploads were last read, and those it holds (name, key and size). */
  readonly #kept = new WeakMap<ChunkIndex, { at: number; seen: Set<string> }>();

  /** @param storage Where the users' files are. */
  constructor(storage: Storage) {
    this.#storage = storage;
  }

  /**
   * The user's index, built from the stored chunk lists and kept uploads the first time.
   *
   * @param user The user.
   */
  async of(user: string): Promise<ChunkIndex> {
    let index = this.#indexes.get(user);
    if (index !== undefined) {
      this.#indexes.delete(user); // most recently used last
      this.#indexes.set(user, index);
      const built = await index;
      const stored = this.#stored.get(user);
      this.#stored.delete(user);
      for (const name of stored ?? []) await this.#indexFile(built, user, name);
      await this.#addKept(built, user, false);
      return built;
    }
    index = this.#build(user);
    index.catch(() => this.#indexes.delete(user));
    this.#indexes.set(user, index);
    this.#stored.delete(user); // the build sees them
    while (this.#indexes.size > MAX_INDEXED_USERS) {
      const oldest = this.#indexes.keys().next().value!;
      this.#indexes.delete(oldest);
      this.#stored.delete(oldest);
    }
    return await index;
  }

  /**
   * Notes a file a `put` stored: if the user's index is built, the file is
   * indexed before it is next used (else the build finds it).
   *
   * @param user The user.
   * @param name The file.
   */
  stored(user: string, name: string): void {
    if (!this.#indexes.has(user)) return;
    const names = this.#stored.get(user) ?? new Set<string>();
    names.add(name);
    this.#stored.set(user, names);
    if (names.size > MAX_PENDING_NAMES) {
      // Many puts and no chunk request: the index goes, and is built again (from the stored lists) when needed.
      this.#indexes.delete(user);
      this.#stored.delete(user);
    }
  }

  /**
   * Adds a file's chunk list to the user's index if it is built (else it is
   * read with the others when it is).
   *
   * @param user The user.
   * @param name The file.
   * @param version The version the list describes.
   * @param entries Its chunks.
   */
  async added(user: string, name: string, version: string, entries: readonly ChunkEntry[]): Promise<void> {
    const index = this.#indexes.get(user);
    if (index !== undefined) (await index).add({ kind: "file", name, version }, entries);
  }

  async #build(user: string): Promise<ChunkIndex> {
    const index = new ChunkIndex();
    const versions = new Map<string, string>();
    for await (const list of this.#storage.chunkLists(user)) {
      const entries = decodeChunkEntries(list.entries);
      if (entries === null) continue;
      index.add({ kind: "file", name: list.name, version: list.version }, entries);
      versions.set(list.name, list.version);
    }
    await this.#addKept(index, user, true);
    await this.#indexUnlisted(index, user, versions);
    return index;
  }

  /** Adds the user's kept uploads not yet in the index (or grown since): always, or if not read for a while. */
  async #addKept(index: ChunkIndex, user: string, always: boolean): Promise<void> {
    const last = this.#kept.get(index) ?? { at: 0, seen: new Set<string>() };
    const now = Date.now();
    if (!always && now - last.at < KEPT_REFRESH_MS) return;
    this.#kept.set(index, { at: now, seen: last.seen });
    for (const kept of await this.#storage.keptUploads(user)) {
      const id = `${kept.name}\0${kept.key}\0${kept.size}`;
      if (last.seen.has(id)) continue;
      last.seen.add(id);
      const entries = decodeChunkEntries(kept.state);
      if (entries !== null) index.add({ kind: "kept", name: kept.name, key: kept.key }, entries);
    }
  }

  /** Computes (and stores) the chunk lists of the user's files without a current one, within the build's bound. */
  async #indexUnlisted(index: ChunkIndex, user: string, versions: Map<string, string>): Promise<void> {
    let budget = MAX_BUILD_HASH_BYTES;
    let after = "";
    do {
      const page = await this.#storage.list(user, { prefix: "", after, limit: 1000 });
      for (const entry of page.entries) {
        if (index.size >= MAX_INDEX_ENTRIES) return;
        if (entry.size === 0 || entry.size > budget) continue;
        const info = await this.#storage.stat(user, entry.name).catch(() => null) as VersionedInfo | null;
        if (info === null || versions.get(entry.name) === info.version) continue;
        budget -= entry.size;
        await this.#indexFile(index, user, entry.name);
      }
      after = page.next ?? "";
    } while (after !== "");
  }

  /** Indexes a file's current version, its chunk list computed (and stored) if none is current; gone: nothing. */
  async #indexFile(index: ChunkIndex, user: string, name: string): Promise<void> {
    let handle: ReadHandle;
    try {
      handle = await this.#storage.openRead(user, name);
    } catch {
      return; // gone meanwhile, or not a file to read
    }
    try {
      const entries = await chunkListOf(this.#storage, user, handle);
      index.add({ kind: "file", name, version: handle.info.version }, entries);
    } catch {
      // unreadable now: not indexed, and its bytes are sent when needed
    } finally {
      handle.close();
    }
  }
}
