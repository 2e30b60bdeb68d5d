/**
 * `Progress`: a one-line progress bar on standard error (bytes, rate, ETA)
 * for transfers that last longer than about a second, shown only when
 * standard error is a terminal. Sizes and rates are in binary units (KiB,
 * MiB, MiB/s: 1 MiB = 2^20 bytes), as the server's log gives them.
 *
 * @module
 */

const encoder = new TextEncoder();

/** Delay before the bar first appears, milliseconds. */
const SHOW_AFTER_MS = 1000;
/** Least time between two redraws, milliseconds. */
const REDRAW_MS = 100;

/** Options for {@linkcode Progress}. */
export interface ProgressOptions {
  /**
   * Draw at all.
   *
   * @default {Deno.stderr.isTerminal()}
   */
  enabled?: boolean;
  /**
   * Where the bar is written.
   *
   * @default {writing to standard error}
   */
  write?: (text: string) => void;
  /**
   * The clock, in milliseconds.
   *
   * @default {performance.now}
   */
  now?: () => number;
}

/** A progress bar for one transfer. */
export class Progress {
  readonly #label: string;
  #total: number | null;
  readonly #enabled: boolean;
  readonly #write: (text: string) => void;
  readonly #now: () => number;
  readonly #started: number;
  #lastDraw = -Infinity;
  #drawn = false;

  /**
   * @param label What is moving, e.g. the file name.
   * @param total Total bytes, or null when unknown (yet).
   * @param options Where and whether to draw.
   */
  constructor(label: string, total: number | null, options: ProgressOptions = {}) {
    this.#label = label;
    this.#total = total;
    this.#enabled = options.enabled ?? Deno.stderr.isTerminal();
    this.#write = options.write ?? ((text) => Deno.stderr.writeSync(encoder.encode(text)));
    this.#now = options.now ?? (() => performance.now());
    this.#started = this.#now();
  }

  /** Total bytes, once known. */
  set total(total: number | null) {
    this.#total = total;
  }

  /**
   * Reports the bytes moved so far; redraws at most ten times a second.
   *
   * @param bytes Bytes moved so far.
   */
  update(bytes: number): void {
    if (!this.#enabled) return;
    const now = this.#now();
    if (now - this.#started < SHOW_AFTER_MS || now - this.#lastDraw < REDRAW_MS) return;
    this.#lastDraw = now;
    this.#drawn = true;
    this.#write(`\r\x1b[K${this.#line(bytes, now)}`);
  }

  /** Clears the bar, if it was drawn. */
  done(): void {
    if (this.#drawn) this.#write("\r\x1b[K");
    this.#drawn = false;
  }

  #line(bytes: number, now: number): string {
    const seconds = (now - this.#started) / 1000;
    const rate = bytes / seconds;
    const parts = [this.#label];
    if (this.#total !== null && this.#total > 0) {
      const percent = Math.min(100, (bytes / this.#total) * 100);
      const width = 20;
      const filled = Math.round((percent / 100) * width);
      parts.push(`[${"#".repeat(filled)}${".".repeat(width - filled)}] ${percent.toFixed(0).padStart(3)}%`);
      parts.push(`${formatBytes(bytes)} / ${formatBytes(this.#total)}`);
      parts.push(`${formatBytes(rate)}/s`);
      parts.push(`ETA ${formatDuration(rate > 0 ? (this.#total - bytes) / rate : Infinity)}`);
    } else {
      parts.push(formatBytes(bytes), `${formatBytes(rate)}/s`);
    }
    return parts.join("  ");
  }
}

/**
 * Formats a byte count with a binary unit: `512 B`, `1.5 MiB`.
 *
 * @param bytes The count.
 * @returns The text.
 */
export function formatBytes(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${value.toFixed(0)} B` : `${value.toFixed(1)} ${units[unit]}`;
}

function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return "--:--";
  const whole = Math.round(seconds);
  const minutes = Math.floor(whole / 60);
  const hours = Math.floor(minutes / 60);
  const mm = String(minutes % 60).padStart(2, "0");
  const ss = String(whole % 60).padStart(2, "0");
  return hours > 0 ? `${hours}:${mm}:${ss}` : `${mm}:${ss}`;
}
