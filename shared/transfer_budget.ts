/**
 * `transferBudget`: how much memory the bodies in flight in this process may
 * hold, and so how large each one's buffers are. A lone transfer reads and
 * receives in 1 MiB pieces; as transfers are added, each one's pieces shrink,
 * down to 64 KiB, so that a server's memory stays flat however many clients
 * move files at once (docs/PERFORMANCE.md).
 *
 * @module
 */

import { MAX_DATA_PAYLOAD } from "./frames.ts";

/** Memory all bodies in flight together may hold in their pipelines. */
export const TRANSFER_BUDGET_BYTES = 64 * 1024 * 1024;

/** Buffers one body holds at once: the one being handled, one read ahead, one queued, one in flight. */
const BUFFERS_PER_TRANSFER = 4;

/** The smallest piece, however many transfers there are. */
const MIN_PIECE_BYTES = 64 * 1024;

let active = 0;

/** Counts a body starting; call the returned function once when it ends. */
export function beginTransfer(): () => void {
  active++;
  let ended = false;
  return () => {
    if (!ended) active--;
    ended = true;
  };
}

/** Bodies being sent or received in this process now. */
export function activeTransfers(): number {
  return active;
}

/**
 * Bytes per piece now (a file read, a receive block): the budget's share for
 * one transfer, as a power of two from 64 KiB to 1 MiB.
 */
export function pieceBytes(): number {
  const share = TRANSFER_BUDGET_BYTES / BUFFERS_PER_TRANSFER / Math.max(1, active);
  let size = MAX_DATA_PAYLOAD;
  while (size > share && size > MIN_PIECE_BYTES) size /= 2;
  return size;
}
