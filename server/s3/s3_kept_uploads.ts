/**
 * `S3KeptUploads`: uploads kept for a later try (`Upload.keep`), in the
 * bucket, so that an upload begun through one server can be taken up through
 * any other. A kept upload is its open multipart upload (to the file's own
 * key; its parts listed by ListParts) and a state object
 * `<user>/.dfos-kept/<hash of name>.<hash of key>`: a record (meta_files.ts)
 * of the name, the key, the multipart upload's id, the bytes kept and
 * whether it is taken, whose tail is the bytes past the last whole part (a
 * part must be 5 MiB but the last) and then the caller's state.
 *
 * Taking one up (`take`) rewrites its state object as taken with `If-Match`
 * on the ETag read, so two servers asked to resume it at once cannot both
 * continue it: the loser finds none. A taken upload keeps its record (the
 * multipart upload stays referenced, so the start-up cleanup leaves it
 * alone) until it is committed, kept again or dropped; one whose server died
 * goes with the sweep (`--partial-ttl`) once it was taken longer ago than
 * the stale upload bound (stale_uploads.ts).
 *
 * @module
 */

import { decodeRecord, encodeRecord } from "../meta_files.ts";
import type { ObjectStore } from "./object_store.ts";
import { isLostCondition, storeFailure, storeStep } from "./s3_errors.ts";
import { KEPT, keptKey, keptNamePrefix, userPrefix } from "./s3_keys.ts";
import type { KeptUpload } from "../storage.ts";

/** A kept upload's record. */
export interface KeptRecord {
  /** The name it is to be stored under. */
  name: string;
  /** The key it was begun with. */
  key: string;
  /** The multipart upload's id, or "" when no whole part was written yet. */
  uploadId: string;
  /** Bytes kept: the parts' and `pending`. */
  size: number;
  /** True once a server has taken it up. */
  taken: boolean;
  /** When it was last kept or taken, milliseconds since the Unix epoch (S3's Last-Modified has whole seconds). */
  updated: number;
  /** The bytes after the last whole part. */
  pending: Uint8Array;
  /** The caller's state. */
  state: Uint8Array;
}

/** The users' kept uploads in one bucket. */
export class S3KeptUploads {
  readonly #store: ObjectStore;
  readonly #takenMs: number;

  /**
   * @param store The bucket.
   * @param takenMs How long after it was taken up a kept upload may be in progress (the stale upload bound).
   */
  constructor(store: ObjectStore, takenMs: number) {
    this.#store = store;
    this.#takenMs = takenMs;
  }

  /**
   * Writes a kept upload's record (a new one, or one taken up and kept again).
   *
   * @param user The user.
   * @param record The record.
   */
  async keep(user: string, record: KeptRecord): Promise<void> {
    await storeStep(
      `keep the upload of "${record.name}"`,
      this.#store.label,
      () => this.#store.put(keptKey(user, record.name, record.key), encode(record)),
    );
  }

  /**
   * Takes a kept upload up: its record is marked taken (by one server only).
   * Null when there is none, or another server took it first.
   *
   * @param user The user.
   * @param name The name.
   * @param key The key.
   */
  async take(user: string, name: string, key: string): Promise<KeptRecord | null> {
    const found = await this.#get(keptKey(user, name, key), name);
    if (found === null || found.record.taken || found.record.name !== name || found.record.key !== key) return null;
    const taken = {
      ...found.record,
      taken: true,
      updated: Date.now(),
      state: new Uint8Array(0),
      pending: new Uint8Array(0),
    };
    try {
      await this.#store.put(keptKey(user, name, key), encode(taken), { ifMatch: found.etag });
    } catch (error) {
      if (isLostCondition(error)) return null;
      throw storeFailure(error, `resume the upload of "${name}"`, this.#store.label);
    }
    return { ...found.record, taken: true, updated: taken.updated };
  }

  /**
   * Forgets a kept upload's record (its multipart upload is the caller's).
   *
   * @param user The user.
   * @param name The name.
   * @param key The key.
   */
  async forget(user: string, name: string, key: string): Promise<void> {
    await storeStep(
      `drop the kept upload of "${name}"`,
      this.#store.label,
      () => this.#store.delete(keptKey(user, name, key)),
    );
  }

  /**
   * The user's kept uploads (those taken up by a server are not).
   *
   * @param user The user.
   */
  async list(user: string): Promise<KeptUpload[]> {
    const list: KeptUpload[] = [];
    for await (const { record } of this.#records(userPrefix(user) + KEPT)) {
      if (record.taken) continue;
      const { name, key, size, state, updated } = record;
      list.push({ name, key, size, state, updated });
    }
    return list;
  }

  /**
   * Drops the kept upload of `name` and `key`, or with no key every kept
   * upload of `name` (taken ones too: the caller begins anew); nothing when
   * there is none.
   *
   * @param user The user.
   * @param name The name.
   * @param key The key, or undefined for all.
   */
  async drop(user: string, name: string, key?: string): Promise<void> {
    if (key !== undefined) {
      const found = await this.#get(keptKey(user, name, key), name);
      if (found !== null) await this.#dropRecord(user, found.key, found.record);
      return;
    }
    for await (const { key: stateKey, record } of this.#records(keptNamePrefix(user, name))) {
      if (record.name === name) await this.#dropRecord(user, stateKey, record);
    }
  }

  /**
   * Drops every user's kept uploads last written before `before`; one taken
   * up (in progress through some server) only once it was taken longer ago
   * than the stale upload bound too, as its server must then be dead.
   *
   * @param before Milliseconds since the Unix epoch.
   * @returns How many were dropped.
   */
  async sweep(before: number): Promise<number> {
    let dropped = 0;
    for await (const user of this.#users()) {
      for await (const { key, record } of this.#records(userPrefix(user) + KEPT)) {
        // One taken up is in progress on some server: it goes only once that server must be dead.
        if (record.updated >= (record.taken ? Math.min(before, Date.now() - this.#takenMs) : before)) continue;
        await this.#dropRecord(user, key, record);
        dropped++;
      }
    }
    return dropped;
  }

  /** The ids of every multipart upload a kept upload (taken or not) refers to. */
  async uploadIds(): Promise<Set<string>> {
    const ids = new Set<string>();
    for await (const user of this.#users()) {
      for await (const { record } of this.#records(userPrefix(user) + KEPT)) {
        if (record.uploadId !== "") ids.add(record.uploadId);
      }
    }
    return ids;
  }

  async #dropRecord(user: string, stateKey: string, record: KeptRecord): Promise<void> {
    if (record.uploadId !== "") {
      await storeStep(
        `drop the kept upload of "${record.name}"`,
        this.#store.label,
        () => this.#store.abortMultipart(userPrefix(user) + record.name, record.uploadId),
      );
    }
    await storeStep(`drop the kept upload of "${record.name}"`, this.#store.label, () => this.#store.delete(stateKey));
  }

  /** The users with a prefix in the bucket. */
  async *#users(): AsyncGenerator<string> {
    let startAfter: string | undefined;
    do {
      const page = await storeStep(
        "list the users",
        this.#store.label,
        () => this.#store.list("", { startAfter, delimiter: "/", maxKeys: 1000 }),
      );
      for (const prefix of page.prefixes) {
        const user = prefix.slice(0, -1);
        if (!user.startsWith(".")) yield user;
      }
      startAfter = page.next ?? undefined;
    } while (startAfter !== undefined);
  }

  /** The records under `prefix`, with their keys and when they were last written. */
  async *#records(prefix: string): AsyncGenerator<{ key: string; record: KeptRecord }> {
    let startAfter: string | undefined;
    do {
      const page = await storeStep(
        "list kept uploads",
        this.#store.label,
        () => this.#store.list(prefix, { startAfter, maxKeys: 1000 }),
      );
      for (const object of page.objects) {
        const found = await this.#get(object.key, "?");
        if (found !== null) yield { key: object.key, record: found.record };
      }
      startAfter = page.next ?? undefined;
    } while (startAfter !== undefined);
  }

  async #get(
    key: string,
    name: string,
  ): Promise<{ key: string; etag: string; record: KeptRecord } | null> {
    const got = await storeStep(
      name === "?" ? "read a kept upload" : `read the kept upload of "${name}"`,
      this.#store.label,
      async () => {
        const object = await this.#store.get(key);
        if (object === null) return null;
        return { head: object.head, bytes: new Uint8Array(await new Response(object.body).arrayBuffer()) };
      },
    );
    const record = got === null ? null : decode(got.bytes);
    if (got === null || record === null) return null;
    return { key, etag: got.head.etag, record };
  }
}

function encode(record: KeptRecord): Uint8Array {
  const tail = new Uint8Array(record.pending.length + record.state.length);
  tail.set(record.pending);
  tail.set(record.state, record.pending.length);
  const fields = [
    record.name,
    record.key,
    record.uploadId,
    String(record.size),
    String(record.pending.length),
    record.taken ? "taken" : "kept",
    String(record.updated),
  ];
  return encodeRecord({ fields, tail });
}

function decode(bytes: Uint8Array): KeptRecord | null {
  const record = decodeRecord(bytes, 7);
  if (record === null) return null;
  const [name, key, uploadId, size, pending, taken, updated] = record.fields;
  const pendingBytes = Number(pending);
  if (!Number.isSafeInteger(Number(size)) || !Number.isSafeInteger(pendingBytes)) return null;
  if (pendingBytes < 0 || pendingBytes > record.tail.length) return null;
  return {
    name,
    key,
    uploadId,
    size: Number(size),
    taken: taken === "taken",
    updated: Number(updated) || 0,
    pending: record.tail.subarray(0, pendingBytes),
    state: record.tail.subarray(pendingBytes),
  };
}
