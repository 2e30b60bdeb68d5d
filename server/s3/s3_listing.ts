/**
 * `S3Listing`: a user's files, one sorted page at a time
 * (`Storage.list`), and what they take (`Storage.usage`), from
 * ListObjectsV2 of `<user>/<prefix>` with StartAfter: a listing of many pages
 * costs one pass over the keys, whatever server serves each page.
 *
 * The server's own keys (`<user>/.dfos-*`) are stepped over in one jump,
 * and keys no dfos name can be (a folder marker `a/` made by another tool, a
 * name shared/names.ts refuses) are left out. S3 lists in the order of the
 * names' UTF-8 bytes, pages are in JavaScript's string order: js_order.ts
 * puts the few names where the two differ in place as they pass.
 *
 * A listing gives no object metadata, and a file's modification time is its
 * `x-amz-meta-mtime` when it has one: each listed file's is taken from a
 * HeadObject, at most {@linkcode PARALLEL_HEADS} at once, and kept in
 * memory by key, ETag and Last-Modified (a new version has a new pair), so
 * a file is looked at once per version per server.
 *
 * @module
 */

import type { ListEntry } from "../../shared/messages.ts";
import { nameProblem } from "../../shared/names.ts";
import { footprint, type ListOptions, type ListPage, type Usage } from "../storage.ts";
import type { ObjectHead, ObjectStore } from "./object_store.ts";
import { storeStep } from "./s3_errors.ts";
import { inJsOrder } from "./js_order.ts";
import { isMetadataKey, pastMetadata, userPrefix } from "./s3_keys.ts";
import { MTIME_META } from "./s3_upload.ts";

/** HeadObjects at once for the modification times of a page. */
export const PARALLEL_HEADS = 16;

/** Modification times kept in memory, at most. */
const MAX_KNOWN_MTIMES = 200_000;

/** The listings of one bucket. */
export class S3Listing {
  readonly #store: ObjectStore;
  /** `key ETag Last-Modified` to the modification time. */
  readonly #mtimes = new Map<string, number>();

  /** @param store The bucket. */
  constructor(store: ObjectStore) {
    this.#store = store;
  }

  /**
   * The page of the user's files that `options` asks for.
   *
   * @param user The user.
   * @param options The prefix, where the page starts, and its most entries.
   */
  async page(user: string, options: ListOptions): Promise<ListPage> {
    const prefix = userPrefix(user);
    const objects: ObjectHead[] = [];
    let more = false;
    const listed = this.#files(prefix, options.prefix, s3StartAfter(options.after));
    for await (const object of inJsOrder(listed, (object) => object.key)) {
      if (!(object.key.slice(prefix.length) > options.after)) continue;
      if (objects.length === options.limit) {
        more = true;
        break;
      }
      objects.push(object);
    }
    const entries = await this.#entries(prefix, objects);
    return { entries, next: more && entries.length > 0 ? entries[entries.length - 1].name : null };
  }

  /**
   * What the user's files take: their sizes (the store bills by the byte;
   * an empty file counts one, as `footprint` says) and their count. Folders
   * take nothing on S3.
   *
   * @param user The user.
   */
  async usage(user: string): Promise<Usage> {
    const usage = { bytes: 0, entries: 0 };
    for await (const object of this.#files(userPrefix(user), "", "")) {
      usage.bytes += footprint(object.size, 1);
      usage.entries++;
    }
    return usage;
  }

  /**
   * Notes a file's modification time as its commit knows it.
   *
   * @param head The object's facts.
   * @param mtime Its modification time.
   */
  remember(head: ObjectHead, mtime: number): void {
    this.#note(`${head.key} ${head.etag} ${head.lastModified}`, mtime);
  }

  /** The user's files under `namePrefix`, after `after`, in key order. */
  async *#files(prefix: string, namePrefix: string, after: string): AsyncGenerator<ObjectHead> {
    let startAfter: string | undefined = after === "" ? undefined : prefix + after;
    while (true) {
      const page = await storeStep(
        "list files",
        this.#store.label,
        () => this.#store.list(prefix + namePrefix, { startAfter, maxKeys: 1000 }),
      );
      let jumped = false;
      for (const object of page.objects) {
        if (isMetadataKey(prefix, object.key)) {
          startAfter = pastMetadata(prefix);
          jumped = true;
          break;
        }
        const name = object.key.slice(prefix.length);
        if (nameProblem(name) === undefined) yield object;
      }
      if (jumped) continue;
      if (page.next === null) return;
      startAfter = page.next;
    }
  }

  /** The entries of the objects, each with its modification time. */
  async #entries(prefix: string, objects: ObjectHead[]): Promise<ListEntry[]> {
    const entries: (ListEntry | null)[] = new Array(objects.length).fill(null);
    let next = 0;
    const worker = async () => {
      while (next < objects.length) {
        const i = next++;
        const object = objects[i];
        const mtime = await this.#mtime(object);
        if (mtime !== null) entries[i] = { name: object.key.slice(prefix.length), size: object.size, mtime };
      }
    };
    await Promise.all(Array.from({ length: Math.min(PARALLEL_HEADS, objects.length) }, worker));
    return entries.filter((entry) => entry !== null);
  }

  /** A listed object's modification time; null when it went meanwhile. */
  async #mtime(object: ObjectHead): Promise<number | null> {
    const id = `${object.key} ${object.etag} ${object.lastModified}`;
    const known = this.#mtimes.get(id);
    if (known !== undefined) return known;
    const head = await storeStep("list files", this.#store.label, () => this.#store.head(object.key));
    if (head === null) return null;
    const mtime = mtimeOf(head);
    if (head.etag === object.etag) this.#note(id, mtime);
    return mtime;
  }

  #note(id: string, mtime: number): void {
    this.#mtimes.delete(id);
    this.#mtimes.set(id, mtime);
    if (this.#mtimes.size > MAX_KNOWN_MTIMES) this.#mtimes.delete(this.#mtimes.keys().next().value!);
  }
}

/**
 * Where S3's listing must start for the names after `after` in JavaScript's
 * order: before `after` itself when it has a character above U+FFFF, since a
 * name that differs from it first there by one from U+E000 to U+FFFF comes
 * after it in JavaScript's order but before it in S3's.
 */
function s3StartAfter(after: string): string {
  for (let i = 0; i < after.length; i++) {
    const unit = after.charCodeAt(i);
    if (unit >= 0xd800 && unit <= 0xdbff) return after.slice(0, i);
  }
  return after;
}

/**
 * A file's modification time: its `x-amz-meta-mtime`, else its Last-Modified.
 *
 * @param head The object's facts from a HeadObject or GetObject.
 * @returns Milliseconds since the Unix epoch.
 */
export function mtimeOf(head: ObjectHead): number {
  const stored = Number(head.metadata[MTIME_META]);
  return head.metadata[MTIME_META] !== undefined && Number.isSafeInteger(stored) ? stored : head.lastModified;
}
