/**
 * `LedgerAllowance`: an upload's share of the quota when the quota's sums
 * live in the store (`Storage.ledger`, a `UsageLedger` in server/storage.ts)
 * rather than in this server's memory, as on S3, where several servers
 * share the users' files.
 *
 * It holds in the ledger what the upload takes: its footprint and one entry
 * (announced, at once, before it takes a byte; unknown, growing as its bytes
 * arrive). The `Allowance` methods stay synchronous where the handlers call
 * them so: `receive` grows the hold in the background, ahead of the bytes
 * (by what is held, from {@linkcode GROW_FIRST_BYTES} to
 * {@linkcode GROW_BYTES}, as far as the quota lets), and refuses at the next
 * call once a growth was refused (the bytes then held are too many); it
 * holds the hold again before half of its life is gone. The commit's
 * `admit` is the last check, awaited: the hold covers the whole file (held
 * again if it fell short or expired), and the commit drops it in the write
 * that counts the file in the usage (`CommitAdmission`). A release drops
 * it, after any growth in flight, so that none comes back.
 *
 * @module
 */

import { DfosError, Status } from "../shared/status.ts";
import type { Allowance, Quota } from "./quota.ts";
import { type CommitAdmission, type CommitChange, footprint, type Usage, type UsageLedger } from "./storage.ts";

/** The most a hold grows ahead of the bytes received: a large upload of unknown size holds again every this many. */
export const GROW_BYTES = 16 * 1024 * 1024;

/** The least a hold grows ahead of the bytes received. */
export const GROW_FIRST_BYTES = 1024 * 1024;

/** What a {@linkcode LedgerAllowance} is made with. */
export interface LedgerAllowanceParts {
  quota: Quota;
  ledger: UsageLedger;
  blockSize: number;
  user: string;
  name: string;
}

/** An upload's hold in a shared ledger. */
export class LedgerAllowance implements Allowance {
  readonly #parts: LedgerAllowanceParts;
  readonly #id = crypto.randomUUID();
  /** What the ledger holds for it, and until when. */
  #granted: Usage = { bytes: 0, entries: 0 };
  #expires = 0;
  /** The bytes it will store, as far as known. */
  #size = 0;
  /** A growth in flight. */
  #growing: Promise<void> | null = null;
  /** A growth's refusal, thrown at the next call. */
  #refused: DfosError | null = null;
  #done = false;

  private constructor(parts: LedgerAllowanceParts) {
    this.#parts = parts;
  }

  /**
   * Holds what an upload of `size` bytes takes, or refuses it (`TOO_LARGE`).
   *
   * @param parts The quota, ledger, user and name.
   * @param size The announced size (0 when unknown).
   * @returns The allowance.
   */
  static async open(parts: LedgerAllowanceParts, size: number): Promise<LedgerAllowance> {
    const allowance = new LedgerAllowance(parts);
    allowance.#size = size;
    const need = allowance.#need();
    await allowance.#hold(need, need, (adds, free) => allowance.#overQuota(adds, free));
    return allowance;
  }

  receive(total: number): void {
    const { quota, name, user } = this.#parts;
    if (this.#refused !== null || (quota.maxFileBytes > 0 && total > quota.maxFileBytes)) this.release();
    if (quota.maxFileBytes > 0 && total > quota.maxFileBytes) {
      throw quota.refusal(
        "file_size",
        `Cannot store "${name}": the upload went over this server's largest file size of ${bytes(quota.maxFileBytes)}`,
      );
    }
    if (this.#refused !== null) throw this.#refused;
    this.#size = Math.max(this.#size, total);
    const need = this.#need();
    const short = need.bytes > this.#granted.bytes;
    const aging = this.#expires - Date.now() < this.#parts.ledger.holdMs / 2;
    if ((short || aging) && this.#growing === null && !this.#done) {
      const ahead = Math.min(Math.max(this.#granted.bytes, GROW_FIRST_BYTES), GROW_BYTES);
      const want = { bytes: need.bytes + ahead, entries: 1 };
      const growing = this.#hold(
        need,
        short ? want : { ...this.#granted },
        () => `Cannot store "${name}": the upload went over ${user}'s quota of ${bytes(quota.quotaBytes)}`,
      ).then(
        () => {},
        (error) => {
          if (error instanceof DfosError && error.code === Status.TOO_LARGE) this.#refused = error;
          // a failure of the store: the commit's admit holds again
        },
      ).finally(() => this.#growing = null);
      this.#growing = growing;
    }
  }

  async admit(_change: CommitChange): Promise<CommitAdmission> {
    await this.#growing;
    if (this.#refused !== null) {
      this.release();
      throw this.#refused;
    }
    // The hold must cover the file whatever it replaces (what the commit adds is at most the new file): held again,
    // at the file's size, when it falls short or has aged.
    const need = this.#need();
    if (need.bytes > this.#granted.bytes || this.#expires - Date.now() < this.#parts.ledger.holdMs / 2) {
      await this.#hold(need, need, (adds, free) => this.#overQuota(adds, free));
    }
    return { hold: this.#id };
  }

  committed(): void {
    this.#done = true; // the commit dropped the hold in the write that counted the file
  }

  release(): void {
    if (this.#done) return;
    this.#done = true;
    const { ledger, user } = this.#parts;
    ledger.release(user, this.#id, this.#growing ?? undefined);
  }

  /** What its upload takes: its footprint and one entry. */
  #need(): Usage {
    return { bytes: footprint(this.#size, this.#parts.blockSize), entries: 1 };
  }

  /** Makes the hold at least `min`, up to `want`, or throws the refusal (and releases). */
  async #hold(min: Usage, want: Usage, refusal: (adds: number, free: number) => string): Promise<void> {
    const { quota, ledger, user, name } = this.#parts;
    const limits = { bytes: quota.quotaBytes, entries: quota.quotaEntries };
    const result = await ledger.hold(user, this.#id, min, want, limits);
    if ("granted" in result) {
      this.#granted = result.granted;
      this.#expires = result.expires;
      return;
    }
    this.release();
    throw quota.refusal(
      result.refused,
      result.refused === "bytes"
        ? refusal(min.bytes, result.free.bytes)
        : `Cannot store "${name}": ${user} has reached the limit of ${quota.quotaEntries} files and folders`,
    );
  }

  /** The refusal of an upload that would add `adds` bytes when `free` are free for it. */
  #overQuota(adds: number, free: number): string {
    const { name, user, quota } = this.#parts;
    return `Cannot store "${name}": it would go over ${user}'s quota of ${bytes(quota.quotaBytes)} ` +
      `(it adds ${bytes(adds)}; ${bytes(free)} ${free === 1 ? "is" : "are"} free)`;
  }
}

/** "1 byte", "2 bytes". */
function bytes(count: number): string {
  return `${count} byte${count === 1 ? "" : "s"}`;
}
