/**
 * `TempFile`: a file written under a temporary name and then either moved
 * into place or removed, so that a reader never sees half of it.
 *
 * @module
 */

/** A new file being written under a temporary path. */
export class TempFile {
  /** Where the bytes are going. */
  readonly path: string;
  readonly #file: Deno.FsFile;
  #open = true;
  #removed = false;

  private constructor(path: string, file: Deno.FsFile) {
    this.path = path;
    this.#file = file;
  }

  /**
   * Creates the file; fails if `path` exists (even as a symbolic link).
   *
   * @param path The temporary path, in the target's folder or on its file system.
   * @param mode Permission bits for the new file.
   */
  static async create(path: string, mode = 0o640): Promise<TempFile> {
    return new TempFile(path, await Deno.open(path, { write: true, createNew: true, mode }));
  }

  /**
   * Appends all of `chunk`.
   *
   * @param chunk Bytes; free for reuse once this resolves.
   */
  async write(chunk: Uint8Array): Promise<void> {
    let written = 0;
    while (written < chunk.length) written += await this.#file.write(chunk.subarray(written));
  }

  /** The file's size and modification time as written so far. */
  async stat(): Promise<Deno.FileInfo> {
    return await this.#file.stat();
  }

  /**
   * Closes the file, after flushing its data to the disk when `sync` is set.
   *
   * @param sync Wait for the data to reach the disk.
   */
  async close(sync = false): Promise<void> {
    if (!this.#open) return;
    try {
      if (sync) await this.#file.syncData();
    } finally {
      this.#open = false;
      this.#file.close();
    }
  }

  /**
   * Moves the closed file to `target`, replacing what is there at once.
   *
   * @param target The final path.
   */
  async moveTo(target: string): Promise<void> {
    await this.close();
    await Deno.rename(this.path, target);
    this.#removed = true;
  }

  /** Closes and deletes the file; safe after `moveTo` and twice. */
  async remove(): Promise<void> {
    if (this.#open) {
      this.#open = false;
      try {
        this.#file.close();
      } catch {
        // already closed
      }
    }
    if (this.#removed) return;
    this.#removed = true;
    await Deno.remove(this.path).catch(() => {});
  }
}
