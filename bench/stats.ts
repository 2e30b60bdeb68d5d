/**
 * The few statistics the benchmark reports: the median of a series with its
 * lowest and highest value, and rounding for the JSON.
 *
 * @module
 */

/** Median, lowest and highest value of a series, and how many values it has. */
export interface Summary {
  /** The median (the mean of the middle two for an even count). */
  median: number;
  /** The lowest value. */
  min: number;
  /** The highest value. */
  max: number;
  /** How many values. */
  count: number;
}

/**
 * Summarizes a series.
 *
 * @param values The values, in any order.
 * @returns Their median, min and max, or null for no values.
 */
export function summarize(values: readonly number[]): Summary | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  const median = sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
  return { median, min: sorted[0], max: sorted[sorted.length - 1], count: sorted.length };
}

/**
 * Rounds to `digits` decimal places, for the JSON.
 *
 * @param value The value.
 * @param digits Decimal places.
 * @returns The rounded value.
 */
export function round(value: number, digits = 1): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}

/**
 * A summary as text: `median [min-max]`, each with `format` (just the median
 * for a single value).
 *
 * @param summary The summary.
 * @param format How to write one value.
 * @returns The text.
 */
export function formatSummary(summary: Summary, format: (value: number) => string): string {
  if (summary.count === 1) return format(summary.median);
  return `${format(summary.median)} [${format(summary.min)}-${format(summary.max)}]`;
}
