/**
 * `SyncProgress`: the one-line progress of a push or pull on a terminal
 * (standard error): files done of all, bytes of content moved of all, rate,
 * ETA. Nothing when standard error is not a terminal. Redrawn at most ten
 * times a second, from the first file on.
 *
 * @module
 */

import { formatBytes } from "../progress.ts";

const encoder = new TextEncoder();
const REDRAW_MS = 100;

/** The progress of one run. */
export class SyncProgress {
  readonly #files: number;
  readonly #bytes: number;
  readonly #enabled: boolean;
  readonly #started = performance.now();
  #done = 0;
  #moved = 0;
  #current = 0;
  #lastDraw = -Infinity;
  #drawn = false;

  /**
   * @param files How many files the run sends.
   * @param bytes Their bytes.
   * @param enabled Draw at all (default: standard error is a terminal).
   */
  constructor(files: number, bytes: number, enabled: boolean = Deno.stderr.isTerminal()) {
    this.#files = files;
    this.#bytes = bytes;
    this.#enabled = enabled && files > 0;
  }

  /**
   * The bytes of the file under way so far.
   *
   * @param bytes Bytes of this file moved.
   */
  file(bytes: number): void {
    this.#current = bytes;
    this.#draw();
  }

  /**
   * A file is over (sent, or failed).
   *
   * @param size Its size.
   */
  fileDone(size: number): void {
    this.#done++;
    this.#moved += size;
    this.#current = 0;
    this.#draw();
  }

  /** Clears the line. */
  done(): void {
    if (this.#drawn) Deno.stderr.writeSync(encoder.encode("\r\x1b[K"));
    this.#drawn = false;
  }

  #draw(): void {
    if (!this.#enabled) return;
    const now = performance.now();
    if (now - this.#lastDraw < REDRAW_MS) return;
    this.#lastDraw = now;
    this.#drawn = true;
    const bytes = this.#moved + this.#current;
    const rate = bytes / Math.max((now - this.#started) / 1000, 0.001);
    const eta = rate > 0 ? (this.#bytes - bytes) / rate : Infinity;
    const line = [
      `files ${this.#done}/${this.#files}`,
      `${formatBytes(bytes)} / ${formatBytes(this.#bytes)}`,
      `${formatBytes(rate)}/s`,
      `ETA ${duration(eta)}`,
    ].join("  ");
    Deno.stderr.writeSync(encoder.encode(`\r\x1b[K${line}`));
  }
}

function duration(seconds: number): string {
  if (!Number.isFinite(seconds)) return "--:--";
  const whole = Math.max(0, Math.round(seconds));
  const mm = String(Math.floor(whole / 60) % 60).padStart(2, "0");
  const ss = String(whole % 60).padStart(2, "0");
  const hours = Math.floor(whole / 3600);
  return hours > 0 ? `${hours}:${mm}:${ss}` : `${mm}:${ss}`;
}
