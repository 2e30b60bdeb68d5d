/**
 * `S3Names`: the tree of names on a store that has none. Names form a tree
 * as on disk: a name is a file or a folder, never both (`CONFLICT`). S3 has
 * no folders, so a folder is any name with objects below it (`name/...`),
 * and this module keeps the rule by looking: a ListObjectsV2 of `name/` with
 * MaxKeys 1 says whether a name is a folder, a HeadObject of each folder on
 * the way whether the way runs through a file. The looks run in parallel.
 * Two servers that store `a` and `a/b` at the same moment can both pass
 * (S3 cannot refuse the second); docs/SECURITY.md says so.
 *
 * @module
 */

import { DfosError, Status } from "../../shared/status.ts";
import type { ObjectHead, ObjectStore } from "./object_store.ts";
import { storeStep } from "./s3_errors.ts";
import { fileKey } from "./s3_keys.ts";

/** The looks at a user's names in one bucket. */
export class S3Names {
  readonly #store: ObjectStore;

  /** @param store The bucket. */
  constructor(store: ObjectStore) {
    this.#store = store;
  }

  /**
   * The file `name` (a HeadObject), or null when there is none.
   *
   * @param user The user.
   * @param name A checked remote name.
   * @param action What it is for, for a message (`read "a"`).
   */
  async head(user: string, name: string, action: string): Promise<ObjectHead | null> {
    return await storeStep(action, this.#store.label, () => this.#store.head(fileKey(user, name)));
  }

  /**
   * True when `name` is a folder: some object is below it.
   *
   * @param user The user.
   * @param name A checked remote name.
   * @param action What it is for, for a message.
   */
  async isFolder(user: string, name: string, action: string): Promise<boolean> {
    const page = await storeStep(
      action,
      this.#store.label,
      () => this.#store.list(fileKey(user, name) + "/", { maxKeys: 1 }),
    );
    return page.objects.length > 0 || page.prefixes.length > 0;
  }

  /**
   * Refuses (`CONFLICT`) a name whose way runs through a file: one of its
   * folders is a file.
   *
   * @param user The user.
   * @param name A checked remote name.
   * @param action What it is for, for a message.
   */
  async checkWay(user: string, name: string, action: string): Promise<void> {
    const segments = name.split("/");
    const folders = segments.slice(0, -1).map((_, i) => segments.slice(0, i + 1).join("/"));
    const heads = await Promise.all(folders.map((folder) => this.head(user, folder, action)));
    const file = heads.findIndex((head) => head !== null);
    if (file !== -1) {
      throw new DfosError(Status.CONFLICT, `Cannot use "${name}": "${folders[file]}" is a file, not a folder`);
    }
  }

  /**
   * Refuses a name an upload could not be stored under as things are: a
   * folder's (`CONFLICT`), or one whose way runs through a file (`CONFLICT`).
   *
   * @param user The user.
   * @param name A checked remote name.
   */
  async checkPlace(user: string, name: string): Promise<void> {
    const action = `store "${name}"`;
    const [folder] = await Promise.all([this.isFolder(user, name, action), this.checkWay(user, name, action)]);
    if (folder) throw new DfosError(Status.CONFLICT, `Cannot store "${name}": it is a folder`);
  }

  /**
   * Why `name` has no file: a folder's (`CONFLICT`), a way through a file
   * (`CONFLICT`), or nothing there (`NOT_FOUND`). Always throws.
   *
   * @param user The user.
   * @param name A checked remote name.
   */
  async missing(user: string, name: string): Promise<never> {
    const action = `use "${name}"`;
    await this.checkWay(user, name, action);
    if (await this.isFolder(user, name, action)) {
      throw new DfosError(Status.CONFLICT, `Cannot use "${name}": it is a folder`);
    }
    throw new DfosError(Status.NOT_FOUND, `Cannot find "${name}": no such file`);
  }
}
