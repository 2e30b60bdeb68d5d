/**
 * `Quota`: what an upload may take. Two limits, both off by default: the
 * largest file, and the bytes each user's files may take in all.
 *
 * The per-user sum is asked of the storage (`Storage.usage`) once per user,
 * at the first upload or delete that needs it, and kept up to date from then
 * on: a commit adds the new file's size less the one it replaced, a delete
 * takes the deleted size off. Uploads in progress hold a reservation: an
 * upload of announced size reserves what it would add (its size less the
 * file it replaces) before it takes a byte, and is refused at once if that
 * does not fit; one of unknown size reserves as its bytes arrive, and is cut
 * the moment it does not fit. The commit makes the last check, with the size
 * of the file actually replaced (`CommitOptions.admit`), in the same step as
 * the replacement. Several connections of one user share one account, and
 * every check and update is synchronous, so two uploads racing for the last
 * bytes cannot both get them.
 *
 * What this does not see: files changed under the storage root by anything
 * but this server after it counted them (the count is made afresh at every
 * start), and other server processes sharing the root.
 *
 * @module
 */

import { DfosError, Status } from "../shared/status.ts";
import type { Storage } from "./storage.ts";

/** Options for {@linkcode Quota}. */
export interface QuotaOptions {
  /**
   * The bytes each user's files may take in all; 0 for no limit.
   *
   * @default {0}
   */
  quotaBytes?: number;
  /**
   * The largest file an upload may store, in bytes; 0 for no limit.
   *
   * @default {0}
   */
  maxFileBytes?: number;
}

/** One upload's share of the limits, from its start to its commit or failure. */
export interface Allowance {
  /**
   * Counts the bytes received so far; throws `TOO_LARGE` (and the upload
   * should stop) once they pass the largest file or the user's quota. A
   * refused allowance has given back what it held already.
   *
   * @param total Bytes of the body received so far.
   */
  receive(total: number): void;
  /**
   * The last check, just before the upload replaces the file; pass it as
   * `CommitOptions.admit`. Throws `TOO_LARGE` when the upload no longer fits.
   *
   * @param replaced The size of the file the upload replaces (0 for none).
   */
  admit(replaced: number): void;
  /** Counts the committed upload in the user's usage. Call once the commit has succeeded. */
  committed(): void;
  /** Gives back what the upload held, unless it was committed. Safe to call twice. */
  release(): void;
}

/** One user's account: bytes stored, and bytes held by uploads in progress. */
interface Account {
  used: number;
  reserved: number;
}

/** The per-user quota and the largest file, as the request handlers apply them. */
export class Quota {
  /** The bytes each user's files may take; 0 for no limit. */
  readonly quotaBytes: number;
  /** The largest file; 0 for no limit. */
  readonly maxFileBytes: number;
  readonly #storage: Storage;
  readonly #accounts = new Map<string, Account>();
  /** Counts under way, so that two first requests of one user share one. */
  readonly #counting = new Map<string, Promise<Account>>();

  /**
   * @param storage Where the users' files are (asked for their usage).
   * @param options The limits.
   */
  constructor(storage: Storage, options: QuotaOptions = {}) {
    this.#storage = storage;
    this.quotaBytes = options.quotaBytes ?? 0;
    this.maxFileBytes = options.maxFileBytes ?? 0;
  }

  /**
   * Admits an upload to `name`, or refuses it at once (`TOO_LARGE`) when its
   * announced size is over the largest file or would take the user over the
   * quota. Replacing a file counts only the difference.
   *
   * @param user The user.
   * @param name The remote name (checked by the storage).
   * @param size The announced size, or null when unknown.
   * @returns The upload's allowance: call `receive` as bytes arrive, `admit`
   * at the commit, then `committed`, and `release` in any case.
   */
  async reserve(user: string, name: string, size: number | null): Promise<Allowance> {
    if (size !== null && this.maxFileBytes > 0 && size > this.maxFileBytes) {
      throw new DfosError(
        Status.TOO_LARGE,
        `Cannot store "${name}": its ${size} bytes are over this server's largest file size of ${
          bytes(this.maxFileBytes)
        }`,
      );
    }
    if (this.quotaBytes === 0) return new FileSizeAllowance(name, this.maxFileBytes);
    const account = await this.#account(user);
    // The file it would replace, if any: an upload adds only what it has over that.
    const existing = (await this.#storage.stat(user, name))?.size ?? 0;
    const allowance = new QuotaAllowance({
      quotaBytes: this.quotaBytes,
      maxFileBytes: this.maxFileBytes,
      account,
      user,
      name,
      credit: existing,
    });
    if (size !== null) allowance.hold(size - existing);
    return allowance;
  }

  /**
   * Waits until the user's usage is known, so that a delete can be counted;
   * call before deleting. Does nothing without a quota.
   *
   * @param user The user.
   */
  async ready(user: string): Promise<void> {
    if (this.quotaBytes > 0) await this.#account(user);
  }

  /**
   * Counts a deleted file. Call after {@linkcode Quota.ready} and the delete.
   *
   * @param user The user.
   * @param size The deleted file's size.
   */
  removed(user: string, size: number): void {
    const account = this.#accounts.get(user);
    if (account !== undefined) account.used = Math.max(0, account.used - size);
  }

  /**
   * The bytes the user's files take as counted, and those held by uploads
   * in progress; null when not counted (no quota, or nothing asked yet).
   *
   * @param user The user.
   */
  usage(user: string): { used: number; reserved: number } | null {
    const account = this.#accounts.get(user);
    return account === undefined ? null : { ...account };
  }

  async #account(user: string): Promise<Account> {
    const known = this.#accounts.get(user);
    if (known !== undefined) return known;
    let counting = this.#counting.get(user);
    if (counting === undefined) {
      counting = this.#storage.usage(user).then((used) => {
        const account = { used, reserved: 0 };
        this.#accounts.set(user, account);
        return account;
      }).finally(() => this.#counting.delete(user));
      this.#counting.set(user, counting);
    }
    return await counting;
  }
}

/** The allowance of an upload with no quota to count: only the largest file applies. */
class FileSizeAllowance implements Allowance {
  readonly #name: string;
  readonly #maxFileBytes: number;

  constructor(name: string, maxFileBytes: number) {
    this.#name = name;
    this.#maxFileBytes = maxFileBytes;
  }

  receive(total: number): void {
    checkFileSize(this.#name, total, this.#maxFileBytes);
  }

  admit(): void {}

  committed(): void {}

  release(): void {}
}

/** What a {@linkcode QuotaAllowance} is made with. */
interface QuotaAllowanceParts {
  quotaBytes: number;
  maxFileBytes: number;
  /** The user's account, shared by all the user's uploads. */
  account: Account;
  user: string;
  name: string;
  /** The size of the file the upload replaces, as seen at its start. */
  credit: number;
}

/**
 * The allowance of an upload counted against a quota. It holds, in the
 * account's `reserved`, what the upload would add: its bytes less the file it
 * replaces, never less than 0.
 */
class QuotaAllowance implements Allowance {
  readonly #parts: QuotaAllowanceParts;
  /** Bytes held in the account's `reserved`. */
  #held = 0;
  #received = 0;
  /** What the commit adds to the account's `used` (negative when the new version is smaller). */
  #charge = 0;
  #done = false;

  constructor(parts: QuotaAllowanceParts) {
    this.#parts = parts;
  }

  /**
   * Holds `bytes` in all (nothing more when that many are held already), or
   * throws `TOO_LARGE`, and then gives back what it held at once: another
   * upload of the user's may be asking for the bytes in the same turn of the
   * event loop, before the refused upload has unwound.
   */
  hold(bytes: number, refusal = (free: number) => this.#overQuota(bytes, free)): void {
    if (bytes <= this.#held) return;
    const { quotaBytes, account } = this.#parts;
    const more = bytes - this.#held;
    // Tested and taken in one synchronous step: no other upload's check comes in between.
    const free = quotaBytes - account.used - account.reserved;
    if (more > free) {
      const message = refusal(Math.max(0, free) + this.#held);
      this.release();
      throw new DfosError(Status.TOO_LARGE, message);
    }
    account.reserved += more;
    this.#held = bytes;
  }

  receive(total: number): void {
    const { maxFileBytes, credit, name, user, quotaBytes } = this.#parts;
    if (maxFileBytes > 0 && total > maxFileBytes) this.release();
    checkFileSize(name, total, maxFileBytes);
    this.#received = total;
    this.hold(
      total - credit,
      () => `Cannot store "${name}": the upload went over ${user}'s quota of ${bytes(quotaBytes)}`,
    );
  }

  admit(replaced: number): void {
    // The file replaced now may not be the one seen at the start (deleted, or replaced meanwhile).
    const charge = this.#received - replaced;
    this.hold(charge);
    this.#charge = charge;
  }

  committed(): void {
    if (this.#done) return;
    this.#done = true;
    const { account } = this.#parts;
    account.reserved -= this.#held;
    account.used = Math.max(0, account.used + this.#charge);
    this.#held = 0;
  }

  release(): void {
    if (this.#done) return;
    this.#done = true;
    this.#parts.account.reserved -= this.#held;
    this.#held = 0;
  }

  /** The refusal of an upload that would add `adds` bytes when `free` are free for it. */
  #overQuota(adds: number, free: number): string {
    const { name, user, quotaBytes } = this.#parts;
    return `Cannot store "${name}": it would go over ${user}'s quota of ${bytes(quotaBytes)} ` +
      `(it adds ${bytes(adds)}; ${bytes(free)} ${free === 1 ? "is" : "are"} free)`;
  }
}

/** "1 byte", "2 bytes". */
function bytes(count: number): string {
  return `${count} byte${count === 1 ? "" : "s"}`;
}

function checkFileSize(name: string, total: number, maxFileBytes: number): void {
  if (maxFileBytes > 0 && total > maxFileBytes) {
    throw new DfosError(
      Status.TOO_LARGE,
      `Cannot store "${name}": the upload went over this server's largest file size of ${bytes(maxFileBytes)}`,
    );
  }
}
