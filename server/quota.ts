/**
 * `Quota`: what an upload may take. Three limits, all off by default: the
 * largest file; the bytes each user's files may take on disk; and how many
 * files and folders each user may have.
 *
 * The bytes are counted as `du` counts them (`footprint` in storage.ts): each
 * file its size rounded up to whole blocks, at least one block even when
 * empty, and each folder one block; so empty files and folders are not free,
 * and the number of files and folders (inodes) is bounded as well.
 *
 * The per-user sums are asked of the storage (`Storage.usage`) once per user,
 * at the first upload or delete that needs them, and kept up to date from
 * then on: a commit adds the new file and the folders it created less the
 * file it replaced, a delete takes off the file and the folders it pruned.
 *
 * Uploads in progress hold a reservation, because their temporary files take
 * room too: an upload holds its whole footprint and one entry (announced, at
 * once, before it takes a byte; unknown, growing as its bytes arrive), and is
 * refused or cut the moment that does not fit. That holds for a replacement
 * as well: the file it replaces stays on disk until the commit, so the new
 * copy needs room of its own while it arrives (as rsync's temporary file does
 * under a file system's quota). So the files stored and the uploads in
 * progress together never take more than the quota, however many uploads
 * run at once (before, each replacement was credited with the file it
 * replaced, and twenty at once held twenty copies). The commit makes the last
 * check, with the file actually replaced and the folders created
 * (`CommitOptions.admit`), in the same step as the replacement, and gives
 * back what the replaced file took. Several connections of one user share
 * one account, and every check and update is synchronous, so two uploads
 * racing for the last bytes cannot both get them.
 *
 * A storage that several servers share (S3) keeps the sums itself, in the
 * store (`Storage.ledger`): then uploads hold their room there
 * (server/ledger_allowance.ts), the storage moves the usage in the write
 * that counts each change, and nothing is counted in this server's memory
 * (`ready`, `removed`, `moved` do nothing; `usage` is null; kept uploads are
 * held while their hold lasts, not held again at a restart).
 *
 * What this does not see: files changed under the storage root by anything
 * but this server after it counted them (the count is made afresh at every
 * start), other server processes sharing the root (without a ledger), and
 * what a file system takes beyond its blocks (a large folder's own blocks,
 * extent trees).
 *
 * @module
 */

import { DfosError, Status } from "../shared/status.ts";
import { LedgerAllowance } from "./ledger_allowance.ts";
import {
  type CommitAdmission,
  type CommitChange,
  footprint,
  type Moved,
  type Removed,
  type Storage,
} from "./storage.ts";

/** Bytes of quota per file or folder allowed by default: ext4's default bytes-per-inode ratio. */
export const QUOTA_BYTES_PER_ENTRY = 16 * 1024;

/** Options for {@linkcode Quota}. */
export interface QuotaOptions {
  /**
   * The bytes each user's files may take on disk in all; 0 for no limit.
   *
   * @default {0}
   */
  quotaBytes?: number;
  /**
   * The files and folders each user may have in all; 0 for no limit.
   *
   * @default {quotaBytes / QUOTA_BYTES_PER_ENTRY, at least 1; 0 without quotaBytes}
   */
  quotaEntries?: number;
  /**
   * The largest file an upload may store, in bytes; 0 for no limit.
   *
   * @default {0}
   */
  maxFileBytes?: number;
  /**
   * Called once per user, when the user's usage has just been counted and
   * before any request is admitted against it: the server holds there what
   * the user's kept uploads take (they are not in `usage`), so that a restart
   * does not free their room.
   */
  onAccount?: (user: string, reserve: (name: string, size: number) => Allowance) => Promise<void>;
  /**
   * Called with the limit that refused an upload or a rename, just before
   * the refusal is thrown (the server counts it in its metrics).
   */
  onRefusal?: (limit: QuotaLimit) => void;
}

/** A limit that refuses: the user's bytes, files and folders, or the largest file. */
export type QuotaLimit = "bytes" | "entries" | "file_size";

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
   * @param change The file the commit replaces and the folders it creates.
   * @returns Nothing when the sums are in memory; with a shared ledger, a
   * promise of the hold the commit settles (`CommitOptions.admit`).
   */
  admit(change: CommitChange): void | Promise<CommitAdmission>;
  /** Counts the committed upload in the user's usage. Call once the commit has succeeded. */
  committed(): void;
  /** Gives back what the upload held, unless it was committed. Safe to call twice. */
  release(): void;
}

/** What a user's files take, or what uploads hold: bytes on disk, and files and folders. */
export interface Amount {
  bytes: number;
  entries: number;
}

/** One user's account: what is stored, and what uploads in progress hold. */
interface Account {
  used: Amount;
  reserved: Amount;
}

/** The per-user quota and the largest file, as the request handlers apply them. */
export class Quota {
  /** The bytes each user's files may take; 0 for no limit. */
  readonly quotaBytes: number;
  /** The files and folders each user may have; 0 for no limit. */
  readonly quotaEntries: number;
  /** The largest file; 0 for no limit. */
  readonly maxFileBytes: number;
  readonly #storage: Storage;
  readonly #accounts = new Map<string, Account>();
  readonly #onAccount: QuotaOptions["onAccount"];
  readonly #onRefusal: QuotaOptions["onRefusal"];
  /** Counts under way, so that two first requests of one user share one. */
  readonly #counting = new Map<string, Promise<Account>>();

  /**
   * @param storage Where the users' files are (asked for their usage).
   * @param options The limits.
   */
  constructor(storage: Storage, options: QuotaOptions = {}) {
    this.#storage = storage;
    this.quotaBytes = options.quotaBytes ?? 0;
    this.quotaEntries = options.quotaEntries ??
      (this.quotaBytes > 0 ? Math.max(1, Math.floor(this.quotaBytes / QUOTA_BYTES_PER_ENTRY)) : 0);
    this.maxFileBytes = options.maxFileBytes ?? 0;
    this.#onAccount = options.onAccount;
    this.#onRefusal = options.onRefusal;
  }

  /**
   * Admits an upload to `name`, or refuses it at once (`TOO_LARGE`) when its
   * announced size is over the largest file, or it would take the user over
   * the quota: its footprint (at least one block, whatever its size) and one
   * entry, a replacement's too (the file it replaces stays until the commit).
   *
   * @param user The user.
   * @param name The remote name (checked by the storage).
   * @param size The announced size, or null when unknown.
   * @returns The upload's allowance: call `receive` as bytes arrive, `admit`
   * at the commit, then `committed`, and `release` in any case.
   */
  async reserve(user: string, name: string, size: number | null): Promise<Allowance> {
    if (size !== null && this.maxFileBytes > 0 && size > this.maxFileBytes) {
      throw this.refusal(
        "file_size",
        `Cannot store "${name}": its ${size} bytes are over this server's largest file size of ${
          bytes(this.maxFileBytes)
        }`,
      );
    }
    if (this.quotaBytes === 0 && this.quotaEntries === 0) return new FileSizeAllowance(this, name);
    const ledger = this.#storage.ledger;
    if (ledger !== undefined) {
      return await LedgerAllowance.open(
        { quota: this, ledger, blockSize: this.#storage.blockSize, user, name },
        size ?? 0,
      );
    }
    return this.#allow(await this.#account(user), user, name, size ?? 0);
  }

  #allow(account: Account, user: string, name: string, size: number): Allowance {
    const allowance = new QuotaAllowance({ quota: this, blockSize: this.#storage.blockSize, account, user, name });
    allowance.expect(size);
    return allowance;
  }

  /**
   * Waits until the user's usage is known, so that a delete can be counted;
   * call before deleting. Does nothing without a quota.
   *
   * @param user The user.
   */
  async ready(user: string): Promise<void> {
    if ((this.quotaBytes > 0 || this.quotaEntries > 0) && this.#storage.ledger === undefined) await this.#account(user);
  }

  /**
   * Counts a deleted file and the folders it pruned. Call after
   * {@linkcode Quota.ready} and the delete.
   *
   * @param user The user.
   * @param removed What the delete removed.
   */
  removed(user: string, removed: Removed): void {
    const account = this.#accounts.get(user);
    if (account === undefined) return;
    const blockSize = this.#storage.blockSize;
    account.used.bytes = Math.max(
      0,
      account.used.bytes - footprint(removed.size, blockSize) - removed.folders * blockSize,
    );
    account.used.entries = Math.max(0, account.used.entries - 1 - removed.folders);
  }

  /**
   * Refuses (`TOO_LARGE`) a rename that would make `folders` folders the
   * user's quota has no room for: a file's bytes do not change when it
   * moves, but each folder made on the way takes a block and an entry. Call
   * after {@linkcode Quota.ready}, from the storage's `admit` (no other change
   * of the user's files comes between it and the rename).
   *
   * @param user The user.
   * @param name The new name (for the message).
   * @param folders The folders the rename makes.
   */
  admitFolders(user: string, name: string, folders: number): void {
    const account = this.#accounts.get(user);
    if (account === undefined || folders === 0) return;
    const bytes = folders * this.#storage.blockSize;
    const overBytes = this.quotaBytes > 0 && account.used.bytes + account.reserved.bytes + bytes > this.quotaBytes;
    const overEntries = this.quotaEntries > 0 &&
      account.used.entries + account.reserved.entries + folders > this.quotaEntries;
    if (overBytes || overEntries) {
      throw this.refusal(
        overBytes ? "bytes" : "entries",
        `Cannot move to "${name}": the ${folders} folders it needs would go over ${user}'s quota`,
      );
    }
  }

  /**
   * Counts the folders a rename made and removed (its files' bytes do not
   * change). Call after {@linkcode Quota.ready} and the rename.
   *
   * @param user The user.
   * @param moved What the rename did.
   */
  moved(user: string, moved: Moved): void {
    const account = this.#accounts.get(user);
    if (account === undefined) return;
    const folders = moved.foldersCreated - moved.foldersRemoved;
    account.used.bytes = Math.max(0, account.used.bytes + folders * this.#storage.blockSize);
    account.used.entries = Math.max(0, account.used.entries + folders);
  }

  /**
   * What the user's files take as counted, and what uploads in progress
   * hold; null when not counted (no quota, or nothing asked yet).
   *
   * @param user The user.
   */
  usage(user: string): { used: Amount; reserved: Amount } | null {
    const account = this.#accounts.get(user);
    return account === undefined ? null : { used: { ...account.used }, reserved: { ...account.reserved } };
  }

  /**
   * The refusal of an upload or a rename by `limit`, to throw; the quota's
   * `onRefusal` is told.
   *
   * @param limit The limit that refuses.
   * @param message What the client is told.
   * @returns A `TOO_LARGE` error.
   */
  refusal(limit: QuotaLimit, message: string): DfosError {
    this.#onRefusal?.(limit);
    return new DfosError(Status.TOO_LARGE, message);
  }

  async #account(user: string): Promise<Account> {
    const known = this.#accounts.get(user);
    if (known !== undefined) return known;
    let counting = this.#counting.get(user);
    if (counting === undefined) {
      counting = this.#storage.usage(user).then(async (used) => {
        const account = { used: { ...used }, reserved: { bytes: 0, entries: 0 } };
        // Before any other request sees the account: what the hook reserves is on it from the start.
        const reserve = (name: string, size: number) => this.#allow(account, user, name, size);
        await this.#onAccount?.(user, reserve).catch(() => {});
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
  readonly #quota: Quota;
  readonly #name: string;

  constructor(quota: Quota, name: string) {
    this.#quota = quota;
    this.#name = name;
  }

  receive(total: number): void {
    checkFileSize(this.#quota, this.#name, total);
  }

  admit(): void {}

  committed(): void {}

  release(): void {}
}

/** What a {@linkcode QuotaAllowance} is made with. */
interface QuotaAllowanceParts {
  quota: Quota;
  blockSize: number;
  /** The user's account, shared by all the user's uploads. */
  account: Account;
  user: string;
  name: string;
}

/**
 * The allowance of an upload counted against a quota. It holds, in the
 * account's `reserved`, what its temporary file takes: its footprint and one
 * entry.
 */
class QuotaAllowance implements Allowance {
  readonly #parts: QuotaAllowanceParts;
  /** What it holds in the account's `reserved`. */
  #held: Amount = { bytes: 0, entries: 0 };
  /** The bytes it will store, as far as known: the announced size, then what has arrived. */
  #size = 0;
  /** What the commit adds to the account's `used` (negative when it frees room). */
  #charge: Amount = { bytes: 0, entries: 0 };
  #done = false;

  constructor(parts: QuotaAllowanceParts) {
    this.#parts = parts;
  }

  /** Holds what an upload of `size` bytes takes, or throws `TOO_LARGE` (the announced size's refusal). */
  expect(size: number): void {
    this.#size = size;
    this.#hold(this.#need(), (adds, free) => this.#overQuota(adds, free));
  }

  receive(total: number): void {
    const { quota, name, user } = this.#parts;
    if (quota.maxFileBytes > 0 && total > quota.maxFileBytes) this.release();
    checkFileSize(quota, name, total);
    this.#size = Math.max(this.#size, total);
    this.#hold(this.#need(), (_adds, _free, what) => `Cannot store "${name}": the upload went over ${user}'s ${what}`);
  }

  admit(change: CommitChange): void {
    // The file replaced now may not be the one seen at the start (deleted, or replaced meanwhile).
    const { blockSize } = this.#parts;
    const replaced = change.replaced === null ? { bytes: 0, entries: 0 } : {
      bytes: footprint(change.replaced, blockSize),
      entries: 1,
    };
    const charge = {
      bytes: footprint(this.#size, blockSize) + change.folders * blockSize - replaced.bytes,
      entries: 1 + change.folders - replaced.entries,
    };
    this.#hold(charge, (adds, free) => this.#overQuota(adds, free));
    this.#charge = charge;
  }

  committed(): void {
    if (this.#done) return;
    const { account } = this.#parts;
    this.#give();
    account.used.bytes = Math.max(0, account.used.bytes + this.#charge.bytes);
    account.used.entries = Math.max(0, account.used.entries + this.#charge.entries);
  }

  release(): void {
    if (!this.#done) this.#give();
  }

  /** Gives back what it holds; it is done. */
  #give(): void {
    this.#done = true;
    const { account } = this.#parts;
    account.reserved.bytes -= this.#held.bytes;
    account.reserved.entries -= this.#held.entries;
    this.#held = { bytes: 0, entries: 0 };
  }

  /** What its temporary file takes. */
  #need(): Amount {
    return { bytes: footprint(this.#size, this.#parts.blockSize), entries: 1 };
  }

  /**
   * Holds `amount` in all (nothing more where that much is held already), or
   * throws `TOO_LARGE`, and then gives back what it held at once: another
   * upload of the user's may be asking for the room in the same turn of the
   * event loop, before the refused upload has unwound.
   */
  #hold(amount: Amount, refusal: (adds: number, free: number, what: string) => string): void {
    const { quota, account, user } = this.#parts;
    const more = { bytes: amount.bytes - this.#held.bytes, entries: amount.entries - this.#held.entries };
    // Tested and taken in one synchronous step: no other upload's check comes in between.
    const free = {
      bytes: quota.quotaBytes - account.used.bytes - account.reserved.bytes,
      entries: quota.quotaEntries - account.used.entries - account.reserved.entries,
    };
    let message: string | null = null;
    let limit: QuotaLimit = "bytes";
    if (quota.quotaBytes > 0 && more.bytes > 0 && more.bytes > free.bytes) {
      message = refusal(
        amount.bytes,
        Math.max(0, free.bytes) + this.#held.bytes,
        `quota of ${bytes(quota.quotaBytes)}`,
      );
    } else if (quota.quotaEntries > 0 && more.entries > 0 && more.entries > free.entries) {
      limit = "entries";
      message = `Cannot store "${this.#parts.name}": ${user} has reached the limit of ${quota.quotaEntries} files ` +
        `and folders`;
    }
    if (message !== null) {
      this.release();
      throw quota.refusal(limit, message);
    }
    if (more.bytes > 0) {
      account.reserved.bytes += more.bytes;
      this.#held.bytes = amount.bytes;
    }
    if (more.entries > 0) {
      account.reserved.entries += more.entries;
      this.#held.entries = amount.entries;
    }
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

function checkFileSize(quota: Quota, name: string, total: number): void {
  const max = quota.maxFileBytes;
  if (max > 0 && total > max) {
    throw quota.refusal(
      "file_size",
      `Cannot store "${name}": the upload went over this server's largest file size of ${bytes(max)}`,
    );
  }
}
