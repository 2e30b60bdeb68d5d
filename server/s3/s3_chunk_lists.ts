/**
 * `S3ChunkLists`: each file's stored chunk list (`Storage.readChunkList`) as
 * one object, `<user>/.dfos-chunks/<sha256 of the name>`, a record of the
 * name and the version (the file's ETag) it describes, with the chunk
 * entries as its tail (the record format of meta_files.ts). A list is
 * metadata: not in the quota, never listed; a stale one shows by its version
 * and is computed again, so a plain PUT (last writer wins) is enough: two
 * servers writing the list of one name write lists of what they read, each
 * marked with its version.
 *
 * @module
 */

import { decodeRecord, encodeRecord, hashName } from "../meta_files.ts";
import { storeStep } from "./s3_errors.ts";
import { chunkListKey, CHUNKS, userPrefix } from "./s3_keys.ts";
import type { ObjectStore } from "./object_store.ts";
import type { StoredChunkList } from "../storage.ts";

/** The users' stored chunk lists in one bucket. */
export class S3ChunkLists {
  readonly #store: ObjectStore;

  /** @param store The bucket. */
  constructor(store: ObjectStore) {
    this.#store = store;
  }

  /**
   * The stored list of `name`, or null.
   *
   * @param user The user.
   * @param name The file's name (checked by the caller).
   */
  async read(user: string, name: string): Promise<StoredChunkList | null> {
    const list = await this.#get(chunkListKey(user, name), `read the chunk list of "${name}"`);
    return list?.name === name ? list : null;
  }

  /**
   * Stores a list, replacing any of that name.
   *
   * @param user The user.
   * @param list The list (its name checked by the caller).
   */
  async write(user: string, list: StoredChunkList): Promise<void> {
    const bytes = encodeRecord({ fields: [list.name, list.version], tail: list.entries });
    await storeStep(
      `store the chunk list of "${list.name}"`,
      this.#store.label,
      () => this.#store.put(chunkListKey(user, list.name), bytes),
    );
  }

  /**
   * Every list stored for the user.
   *
   * @param user The user.
   */
  async *all(user: string): AsyncGenerator<StoredChunkList> {
    const prefix = userPrefix(user) + CHUNKS;
    let startAfter: string | undefined;
    do {
      const page = await storeStep(
        `list the chunk lists of "${user}"`,
        this.#store.label,
        () => this.#store.list(prefix, { startAfter, maxKeys: 1000 }),
      );
      for (const object of page.objects) {
        const list = await this.#get(object.key, `read a chunk list of "${user}"`);
        if (list !== null && object.key === prefix + hashName(list.name)) yield list;
      }
      startAfter = page.next ?? undefined;
    } while (startAfter !== undefined);
  }

  /**
   * Moves the list of a renamed file to its new name; nothing when there is none.
   *
   * @param user The user.
   * @param from The old name.
   * @param to The new name.
   */
  async move(user: string, from: string, to: string): Promise<void> {
    const list = await this.read(user, from);
    if (list === null) return;
    await this.write(user, { ...list, name: to });
    await this.remove(user, from);
  }

  /**
   * Removes the list of `name`; nothing when there is none.
   *
   * @param user The user.
   * @param name The file's name.
   */
  async remove(user: string, name: string): Promise<void> {
    await storeStep(
      `remove the chunk list of "${name}"`,
      this.#store.label,
      () => this.#store.delete(chunkListKey(user, name)),
    );
  }

  async #get(key: string, action: string): Promise<StoredChunkList | null> {
    const bytes = await storeStep(action, this.#store.label, async () => {
      const object = await this.#store.get(key);
      return object === null ? null : new Uint8Array(await new Response(object.body).arrayBuffer());
    });
    const record = bytes === null ? null : decodeRecord(bytes, 2);
    if (record === null) return null;
    const [name, version] = record.fields;
    return { name, version, entries: record.tail };
  }
}
