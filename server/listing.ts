/**
 * `Listings`: a user's files, one sorted page at a time, as
 * `LocalStorage.list` serves them.
 *
 * A listing is one sorted walk, suspended between pages: each folder is read
 * once, when the walk reaches it, and each file `lstat`ed when its page is
 * made, so a listing of many pages costs about one walk. The walks kept for
 * their next page are bounded in number, in the names they hold and in time;
 * a page whose walk is not kept walks afresh from its `after`, skipping the
 * folders before it. A file added to a folder the walk has read is not in
 * that listing; one removed before its page, or a folder removed before the
 * walk reaches it, is left out. Links, special files, hard-linked files and
 * `.dfos-*` names are never listed, nor anything behind a link.
 *
 * @module
 */

import { join } from "node:path";
import type { ListEntry } from "../shared/messages.ts";
import { isReserved } from "../shared/names.ts";
import { lstatOrNull } from "./confinement.ts";
import type { ListOptions, ListPage } from "./storage.ts";

/**
 * The listings of every user, and the walks kept for their next page. A walk
 * is taken out while it makes a page, so two requests never share one.
 */
export class Listings {
  readonly #kept: ListingWalk[] = [];

  /**
   * The page of the user's files that `options` asks for. A first page
   * always walks afresh; a later one resumes the walk that made the page
   * before, if it is kept.
   *
   * @param user The user.
   * @param home The user's folder, checked.
   * @param options The prefix, where the page starts, and its most entries.
   * @returns The page.
   */
  async page(user: string, home: string, options: ListOptions): Promise<ListPage> {
    let walk = options.after === "" ? null : this.#take(user, options);
    if (walk === null) {
      const tally: WalkTally = { held: 0 };
      walk = new ListingWalk(user, options.prefix, sortedEntries(home, "", options, tally), tally);
    }
    const page = await walk.page(options.after, options.limit);
    // Kept even after its last page: the handler may send fewer entries than the page has, to fit a frame.
    if (page.entries.length > 0) this.#keep(walk);
    return page;
  }

  /** Takes out the listing that `options` continues, or returns null. */
  #take(user: string, options: ListOptions): ListingWalk | null {
    this.#expire();
    const index = this.#kept.findIndex((walk) =>
      walk.user === user && walk.prefix === options.prefix && walk.resumes(options.after)
    );
    return index === -1 ? null : this.#kept.splice(index, 1)[0];
  }

  /** Keeps a listing for its next page; drops the oldest beyond the bounds. */
  #keep(walk: ListingWalk): void {
    this.#kept.push(walk);
    this.#expire();
    let names = this.#kept.reduce((sum, kept) => sum + kept.tally.held, 0);
    while (this.#kept.length > MAX_KEPT_LISTINGS || (names > MAX_KEPT_NAMES && this.#kept.length > 0)) {
      const oldest = this.#kept.shift()!;
      names -= oldest.tally.held;
      oldest.drop();
    }
  }

  #expire(): void {
    const now = performance.now();
    while (this.#kept.length > 0 && now - this.#kept[0].usedAt > LISTING_IDLE_MS) this.#kept.shift()!.drop();
  }
}

/** Listings kept between pages, at most this many at once (the least recently used goes first). */
const MAX_KEPT_LISTINGS = 64;

/** Names at most held by the listings kept, together: a walk holds the names of the folders it is in. */
const MAX_KEPT_NAMES = 1_000_000;

/** A listing not resumed for this long is dropped; its next page walks afresh to where it was. */
const LISTING_IDLE_MS = 60_000;

/** What a listing's walk holds and costs. */
interface WalkTally {
  /** Names held by the walk: those of every folder it is in, read but not yet walked past. */
  held: number;
}

/**
 * Every listed file under `dir` whose name is on the requested pages, in
 * name order (JavaScript string order of the whole name, a folder's names
 * sorting as if each ended in "/"). Each folder is read once, when the walk
 * reaches it, and each file is `lstat`ed just before it is yielded. A folder
 * that is gone (or no longer a folder) when the walk reaches it is skipped,
 * and so is a file that is gone by its turn: a listing racing an `rm` that
 * prunes folders lists what is still there and never fails.
 */
async function* sortedEntries(
  dir: string,
  prefix: string,
  options: { prefix: string; after: string },
  tally: WalkTally,
): AsyncGenerator<ListEntry> {
  // Each child as its name, a folder's with "/" after it: sorting these sorts the whole names.
  const children: string[] = [];
  try {
    for await (const entry of Deno.readDir(dir)) {
      if (entry.isSymlink || isReserved(entry.name)) continue;
      if (entry.isDirectory) children.push(entry.name + "/");
      else if (entry.isFile) children.push(entry.name);
    }
  } catch (error) {
    if (error instanceof Deno.errors.NotFound || error instanceof Deno.errors.NotADirectory) return;
    throw error;
  }
  children.sort((a, b) => a < b ? -1 : a > b ? 1 : 0);
  tally.held += children.length;
  try {
    for (const child of children) {
      const key = prefix + child;
      if (child.endsWith("/")) {
        if (!subtreeMayMatch(key, options)) continue;
        // Looked at again just before it is read: a folder swapped for a link meanwhile is skipped.
        const path = join(dir, child.slice(0, -1));
        const info = lstatOrNull(path);
        if (info === null || info.isSymlink || !info.isDirectory) continue;
        yield* sortedEntries(path, key, options, tally);
        continue;
      }
      if (!key.startsWith(options.prefix) || key <= options.after) continue;
      const info = lstatOrNull(join(dir, child));
      // A hard-linked file is not served (its other name may be outside), so it is not listed either.
      if (info === null || !info.isFile || (info.nlink ?? 1) > 1) continue;
      yield { name: key, size: info.size, mtime: info.mtime?.getTime() ?? 0 };
    }
  } finally {
    tally.held -= children.length;
  }
}

/**
 * One listing, from its first page to its last: a sorted walk suspended
 * between pages. It keeps the entries of the page it made last (and one
 * more, to know whether there is a next page), because the request handler
 * may send fewer than asked to fit a frame: the next request may start
 * after any of them.
 */
class ListingWalk {
  readonly user: string;
  readonly prefix: string;
  readonly tally: WalkTally;
  /** When it last made a page (`performance.now()`). */
  usedAt = 0;
  readonly #entries: AsyncGenerator<ListEntry>;
  /** Entries made and not yet known to be delivered, in order. */
  #ready: ListEntry[] = [];
  #done = false;

  constructor(user: string, prefix: string, entries: AsyncGenerator<ListEntry>, tally: WalkTally) {
    this.user = user;
    this.prefix = prefix;
    this.#entries = entries;
    this.tally = tally;
  }

  /** True when a request for the page after `after` continues this listing. */
  resumes(after: string): boolean {
    return this.#ready.some((entry) => entry.name === after);
  }

  /** The page of at most `limit` entries after `after`: the ones kept from the last page first. */
  async page(after: string, limit: number): Promise<ListPage> {
    const delivered = this.#ready.findIndex((entry) => entry.name > after);
    this.#ready = delivered === -1 ? [] : this.#ready.slice(delivered);
    while (!this.#done && this.#ready.length <= limit) {
      const next = await this.#entries.next();
      if (next.done) this.#done = true;
      else this.#ready.push(next.value);
    }
    this.usedAt = performance.now();
    const entries = this.#ready.slice(0, limit);
    const more = this.#ready.length > limit;
    return { entries, next: more && entries.length > 0 ? entries[entries.length - 1].name : null };
  }

  /** Ends the walk (its folders' names are let go). */
  drop(): void {
    this.#entries.return(undefined).catch(() => {});
  }
}

/** True when some name under the folder `key` (ending in "/") can be on the requested page. */
function subtreeMayMatch(key: string, options: { prefix: string; after: string }): boolean {
  const { prefix, after } = options;
  if (!key.startsWith(prefix) && !prefix.startsWith(key)) return false;
  // Every name below the folder starts with `key`; if `after` is beyond all of them, skip it.
  return after === "" || after.startsWith(key) || key > after;
}
