/**
 * `TempFile`: a file written under a temporary name and then either moved
 * into place or removed, so that a reader never sees half of it.
 *
 * @module
 */

import { closeQuietly } from "./close_quietly.ts";
import { type Bytes, bytesOf, release } from "./pooled_bytes.ts";
import { transferMemory } from "./transfer_memory.ts";

/** Writes up to this size, with nothing queued before them, are made at once (synchronously). */
const SMALL_WRITE_BYTES = 64 * 1024;

/** A queued write: bytes that one async write will append, and the holds they came with. */
interface QueuedWrite {
  /** Grows while the write has not started and the next bytes lie right behind these in the same buffer. */
  bytes: Uint8Array;
  holds: Bytes[];
  started: boolean;
  done: Promise<void>;
}

/** Bytes that may wait in one file's write-behind queue before {@linkcode TempFile.write} waits. */
export const WRITE_BEHIND_BYTES = 8 * 1024 * 1024;

/**
 * A new file being written under a temporary path.
 *
 * Writes are queued behind each other and carried out in the background (an
 * async file write runs on Deno's blocking-I/O thread, where the copy into
 * the page cache was the largest cost of an upload), so the caller can take
 * in the next chunk meanwhile; `write` waits only when queueing the chunk
 * would take this file's queue over {@linkcode WRITE_BEHIND_BYTES}, or every
 * file's queues together over `transferMemory`'s total: both are checked
 * before the bytes are queued, so they are hard bounds and the server's
 * memory does not grow with the number of uploads. A failed write fails the
 * next call.
 */
export class TempFile {
  /** Where the bytes are going. */
  readonly path: string;
  readonly #file: Deno.FsFile;
  readonly #writeBehind: boolean;
  #open = true;
  #removed = false;
  /** The last queued write; never rejects (a failure is kept in `#failure`). */
  #tail: Promise<void> = Promise.resolve();
  /** Queued writes, oldest first. */
  #queue: QueuedWrite[] = [];
  #queuedBytes = 0;
  #failure: Error | null = null;

  private constructor(path: string, file: Deno.FsFile, writeBehind: boolean) {
    this.path = path;
    this.#file = file;
    this.#writeBehind = writeBehind;
  }

  /**
   * Creates the file; fails if `path` exists (even as a symbolic link).
   *
   * @param path The temporary path, in the target's folder or on its file system.
   * @param options `mode`: permission bits for the new file (default 0o640). `writeBehind`: queue large writes
   * on Deno's blocking-I/O thread (default true), for a process that serves many transfers at once; false writes
   * every chunk in place, which costs less CPU (no hand-over to another thread, no buffer kept) but blocks the
   * caller for the copy: for a client saving its one download.
   */
  static async create(path: string, options: { mode?: number; writeBehind?: boolean } = {}): Promise<TempFile> {
    const file = Deno.openSync(path, { write: true, createNew: true, mode: options.mode ?? 0o640 });
    return await Promise.resolve(new TempFile(path, file, options.writeBehind ?? true));
  }

  /**
   * Opens an existing file to append to it (a kept upload taken up again).
   * The caller checks that `path` names the file it meant (`stat`).
   *
   * @param path The file, in the target's folder or on its file system.
   * @param options As for {@linkcode TempFile.create}.
   */
  static async reopen(path: string, options: { writeBehind?: boolean } = {}): Promise<TempFile> {
    const file = Deno.openSync(path, { write: true, append: true });
    return await Promise.resolve(new TempFile(path, file, options.writeBehind ?? true));
  }

  /**
   * Sets the file's modification time (and access time), through the open
   * file: after every queued write, which would change it again.
   *
   * @param mtime Milliseconds since the Unix epoch.
   */
  async setMtime(mtime: number): Promise<void> {
    await this.flush();
    this.#file.utimeSync(new Date(), new Date(mtime));
  }

  /**
   * Queues all of `data` to be appended. Takes pooled bytes' hold: it is
   * released once they are written (or the write failed).
   *
   * @param data Bytes; they must not be changed afterwards (the write may still be queued).
   */
  async write(data: Bytes): Promise<void> {
    const chunk = bytesOf(data);
    if (this.#failure !== null) {
      release(data);
      throw this.#failure;
    }
    if ((chunk.length <= SMALL_WRITE_BYTES || !this.#writeBehind) && this.#queue.length === 0) {
      // A small write with nothing queued (or any write, without write-behind): done in place, rather than
      // a round trip to the blocking-I/O thread (40-60 us) for a small one.
      try {
        let written = 0;
        while (written < chunk.length) written += this.#file.writeSync(chunk.subarray(written));
      } finally {
        release(data);
      }
      return;
    }
    // Room first, so that both bounds are hard: this file's queue, then every file's together (with many
    // uploads at once, the others keep the disk busy meanwhile).
    while (this.#queue.length > 0 && this.#queuedBytes + chunk.length > WRITE_BEHIND_BYTES) await this.#settleOldest();
    await transferMemory.queue(chunk.length);
    if (this.#failure !== null) {
      transferMemory.dequeue(chunk.length);
      release(data);
      throw this.#failure;
    }
    // The bytes wait in the queue after this call returns, with their hold. Pieces of one receive block
    // arrive side by side: one that lies right behind a write not yet started joins it (one write, not two).
    const last = this.#queue.at(-1);
    if (last !== undefined && !last.started && follows(last.bytes, chunk)) {
      last.bytes = new Uint8Array(last.bytes.buffer, last.bytes.byteOffset, last.bytes.length + chunk.length);
      last.holds.push(data);
    } else {
      const queued: QueuedWrite = { bytes: chunk, holds: [data], started: false, done: Promise.resolve() };
      queued.done = this.#tail.then(async () => {
        queued.started = true;
        if (this.#failure !== null) return;
        try {
          let written = 0;
          while (written < queued.bytes.length) written += await this.#file.write(queued.bytes.subarray(written));
        } catch (error) {
          this.#failure = error instanceof Error ? error : new Error(String(error));
        }
      }).finally(() => {
        queued.holds.forEach(release);
        this.#queuedBytes -= queued.bytes.length;
        transferMemory.dequeue(queued.bytes.length);
      });
      this.#tail = queued.done;
      this.#queue.push(queued);
    }
    this.#queuedBytes += chunk.length;
  }

  async #settleOldest(): Promise<void> {
    await this.#queue.shift()!.done;
  }

  /** Waits until every queued write is done; throws if one failed. */
  async flush(): Promise<void> {
    while (this.#queue.length > 0) await this.#settleOldest();
    this.#throwIfFailed();
  }

  /** The file's size and modification time, once every queued write is done. */
  async stat(): Promise<Deno.FileInfo> {
    await this.flush();
    return this.#file.statSync();
  }

  #throwIfFailed(): void {
    if (this.#failure !== null) throw this.#failure;
  }

  /**
   * Closes the file, after flushing its data to the disk when `sync` is set.
   *
   * @param sync Wait for the data to reach the disk.
   */
  async close(sync = false): Promise<void> {
    if (!this.#open) return;
    try {
      await this.flush();
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
    Deno.renameSync(this.path, target);
    this.#removed = true;
  }

  /** Closes and deletes the file; safe after `moveTo` and twice. */
  async remove(): Promise<void> {
    // No write may still be running on the file when it is closed (and the queue's bytes are given back).
    while (this.#queue.length > 0) await this.#settleOldest();
    if (this.#open) {
      this.#open = false;
      closeQuietly(this.#file);
    }
    if (this.#removed) return;
    this.#removed = true;
    try {
      Deno.removeSync(this.path);
    } catch {
      // already gone
    }
  }
}

/** True when `next` lies right behind `bytes` in the same buffer. */
function follows(bytes: Uint8Array, next: Uint8Array): boolean {
  return next.buffer === bytes.buffer && next.byteOffset === bytes.byteOffset + bytes.length;
}
