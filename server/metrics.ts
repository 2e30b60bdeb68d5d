/**
 * `MetricsLayout`: a fixed set of Prometheus metric families laid out in one
 * `Float64Array`, and their text exposition (format 0.0.4). Every family, its
 * label names and the values each label may take are declared once, up
 * front, so that every series has a fixed slot: counting is a plain `+=` on
 * a number in place, and a scrape only formats the numbers (it never walks
 * connections or maps). Because the layout is the same wherever it is built
 * from the same declarations, the numbers may live in a `SharedArrayBuffer`
 * written by one thread (the server's worker) and read by another (the
 * process that answers the scrape).
 *
 * A histogram keeps, per series, one count per bucket (not cumulative), one
 * for values above the last bucket, and the sum; the exposition makes the
 * buckets cumulative and takes `_count` (and `+Inf`) from their total, so
 * that a scrape that reads the numbers while they change still shows
 * buckets that never decrease and `+Inf == _count`.
 *
 * Only one thread may write a layout's numbers: a write is a plain store,
 * and two writers could lose an increment. A reader on another thread reads
 * each number whole on the 64-bit machines Deno runs on (an aligned 8-byte
 * store is one instruction there), though the language does not promise it
 * for a `Float64Array`.
 *
 * @example Usage
 * ```ts
 * import assert from "node:assert/strict";
 * import { MetricsLayout } from "./metrics.ts";
 * const layout = new MetricsLayout();
 * const requests = layout.counter({ name: "app_requests_total", help: "Requests.", labels: { op: ["get", "put"] } });
 * const values = new Float64Array(layout.slots);
 * values[requests.slot("put")] += 1;
 * assert.ok(layout.render(values).includes('app_requests_total{op="put"} 1\n'));
 * ```
 *
 * @module
 */

/** What a family's series count. */
export type MetricType = "counter" | "gauge" | "histogram";

/** Options of a family: {@linkcode MetricsLayout.counter}, {@linkcode MetricsLayout.gauge}. */
export interface FamilyOptions {
  /** The metric's name: `[a-zA-Z_:][a-zA-Z0-9_:]*`; a counter's ends in `_total`. */
  name: string;
  /** One line that says what it counts (the `# HELP` line). */
  help: string;
  /**
   * Each label's name and every value it may take, in order: one series per
   * combination. Labels with small fixed sets of values only.
   *
   * @default {{}} (one series)
   */
  labels?: Readonly<Record<string, readonly string[]>>;
}

/** Options of a histogram family: {@linkcode MetricsLayout.histogram}. */
export interface HistogramOptions extends FamilyOptions {
  /** The buckets' upper bounds, increasing; `+Inf` is added. */
  buckets: readonly number[];
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** One family's place in a layout: its series' slots. */
export class MetricFamily {
  /** The metric's name. */
  readonly name: string;
  /** Its `# HELP` text. */
  readonly help: string;
  /** What its series count. */
  readonly type: MetricType;
  /** Its first slot. */
  readonly offset: number;
  /** Slots per series: 1, or a histogram's buckets, overflow and sum. */
  readonly width: number;
  /** How many series: the product of its labels' value counts. */
  readonly series: number;
  /** The label names, in order. */
  readonly labelNames: readonly string[];
  /** Each label's values, in order. */
  readonly labelValues: readonly (readonly string[])[];
  /** Each label's values, to their index. */
  readonly #indexes: readonly ReadonlyMap<string, number>[];

  /** @internal Made by {@linkcode MetricsLayout}. */
  constructor(options: FamilyOptions, type: MetricType, offset: number, width: number) {
    checkFamily(options, type);
    this.name = options.name;
    this.help = options.help;
    this.type = type;
    this.offset = offset;
    this.width = width;
    const labels = Object.entries(options.labels ?? {});
    this.labelNames = labels.map(([name]) => name);
    this.labelValues = labels.map(([, values]) => values);
    this.#indexes = this.labelValues.map((values) => new Map(values.map((value, index) => [value, index])));
    this.series = this.labelValues.reduce((product, values) => product * values.length, 1);
  }

  /**
   * The slot of one series: its value (a counter's or a gauge's), or the
   * first of a histogram's.
   *
   * @param values One value for each label, in the labels' order.
   * @returns The index in the layout's numbers.
   * @throws {RangeError} for a value the label does not take.
   */
  slot(...values: string[]): number {
    let series = 0;
    for (let label = 0; label < this.#indexes.length; label++) {
      const index = this.#indexes[label].get(values[label]);
      if (index === undefined) {
        throw new RangeError(
          `Cannot count ${this.name}: ${this.labelNames[label]} "${values[label]}" is not one of its values`,
        );
      }
      series = series * this.labelValues[label].length + index;
    }
    return this.offset + series * this.width;
  }
}

/** A histogram family: {@linkcode MetricFamily} with its buckets and {@linkcode HistogramFamily.observe}. */
export class HistogramFamily extends MetricFamily {
  /** The buckets' upper bounds, increasing (`+Inf` not included). */
  readonly buckets: readonly number[];

  /** @internal Made by {@linkcode MetricsLayout}. */
  constructor(options: HistogramOptions, offset: number) {
    super(options, "histogram", offset, options.buckets.length + 2);
    for (let index = 0; index < options.buckets.length; index++) {
      const bound = options.buckets[index];
      if (!Number.isFinite(bound) || (index > 0 && bound <= options.buckets[index - 1])) {
        throw new RangeError(`Cannot declare histogram ${options.name}: its buckets must be finite and increasing`);
      }
    }
    this.buckets = [...options.buckets];
  }

  /**
   * Counts one observation in a series.
   *
   * @param values The layout's numbers.
   * @param slot The series' slot ({@linkcode MetricFamily.slot}).
   * @param value What was observed (seconds, bytes).
   */
  observe(values: Float64Array, slot: number, value: number): void {
    const buckets = this.buckets;
    let bucket = 0;
    while (bucket < buckets.length && value > buckets[bucket]) bucket++;
    values[slot + bucket] += 1;
    values[slot + buckets.length + 1] += value;
  }
}

/** The declared families, in order, and the slots they take. */
export class MetricsLayout {
  readonly #families: MetricFamily[] = [];
  #slots = 0;

  /** How many numbers the families take: the length of the `Float64Array` to count in. */
  get slots(): number {
    return this.#slots;
  }

  /** Bytes the families take: the size of the `SharedArrayBuffer` to count in. */
  get bytes(): number {
    return this.#slots * Float64Array.BYTES_PER_ELEMENT;
  }

  /**
   * Declares a counter: a number that only goes up.
   *
   * @param options Its name (ending in `_total`), help and labels.
   * @returns Its family.
   */
  counter(options: FamilyOptions): MetricFamily {
    return this.#add(new MetricFamily(options, "counter", this.#slots, 1));
  }

  /**
   * Declares a gauge: a number that goes up and down.
   *
   * @param options Its name, help and labels.
   * @returns Its family.
   */
  gauge(options: FamilyOptions): MetricFamily {
    return this.#add(new MetricFamily(options, "gauge", this.#slots, 1));
  }

  /**
   * Declares a histogram.
   *
   * @param options Its name, help, labels and buckets.
   * @returns Its family.
   */
  histogram(options: HistogramOptions): HistogramFamily {
    return this.#add(new HistogramFamily(options, this.#slots));
  }

  /**
   * The families' text exposition (format 0.0.4): `# HELP` and `# TYPE`, then
   * one line per series (a histogram's `_bucket` lines, `_sum` and `_count`).
   *
   * @param values The numbers, `slots` of them.
   * @param only Series whose label of this name has another value are left out (`{ backend: "s3" }`).
   * @returns The text, every line ending in a newline.
   */
  render(values: Float64Array, only: Readonly<Record<string, string>> = {}): string {
    let text = "";
    for (const family of this.#families) text += renderFamily(family, values, only);
    return text;
  }

  #add<F extends MetricFamily>(family: F): F {
    if (this.#families.some((other) => other.name === family.name)) {
      throw new RangeError(`Cannot declare metric ${family.name}: it is declared already`);
    }
    this.#families.push(family);
    this.#slots += family.series * family.width;
    return family;
  }
}

/** Refuses a family whose name, labels or help break Prometheus's rules. */
function checkFamily(options: FamilyOptions, type: MetricType): void {
  const { name, help } = options;
  if (!NAME.test(name) || name.startsWith("__")) throw new RangeError(`Cannot declare metric "${name}": bad name`);
  if ((type === "counter") !== name.endsWith("_total")) {
    throw new RangeError(`Cannot declare metric ${name}: a counter's name, and only a counter's, ends in _total`);
  }
  if (/[\n\\]/.test(help)) throw new RangeError(`Cannot declare metric ${name}: its help has a newline or backslash`);
  for (const [label, values] of Object.entries(options.labels ?? {})) {
    if (!LABEL_NAME.test(label) || label.startsWith("__") || (type === "histogram" && label === "le")) {
      throw new RangeError(`Cannot declare metric ${name}: bad label name "${label}"`);
    }
    if (values.length === 0 || new Set(values).size !== values.length) {
      throw new RangeError(`Cannot declare metric ${name}: label ${label} needs distinct values`);
    }
  }
}

/** One series as the exposition writes it: its slot, its label values, and its lines' text before the value. */
interface SeriesText {
  slot: number;
  /** Its labels' values, by name. */
  labels: Readonly<Record<string, string>>;
  /** `name{labels} ` (a histogram: each bucket's, `+Inf`'s, then `_sum`'s and `_count`'s). */
  prefixes: string[];
}

/** Each family's series text, made at its first rendering: a scrape then only formats numbers. */
const SERIES_TEXT = new WeakMap<MetricFamily, SeriesText[]>();

/** One family's series, as text ready to take their values. */
function seriesText(family: MetricFamily): SeriesText[] {
  const known = SERIES_TEXT.get(family);
  if (known !== undefined) return known;
  const made: SeriesText[] = [];
  const counts = family.labelValues.map((each) => each.length);
  for (let series = 0; series < family.series; series++) {
    // The series' label values: the digits of `series` in the labels' mixed radix, the last label fastest.
    const chosen = new Array<number>(counts.length);
    let rest = series;
    for (let label = counts.length - 1; label >= 0; label--) {
      chosen[label] = rest % counts[label];
      rest = Math.floor(rest / counts[label]);
    }
    const labels: Record<string, string> = {};
    family.labelNames.forEach((name, label) => labels[name] = family.labelValues[label][chosen[label]]);
    const pairs = Object.entries(labels).map(([name, value]) => `${name}="${escapeLabel(value)}"`);
    const prefixes = family instanceof HistogramFamily
      ? [
        ...[...family.buckets.map(formatValue), "+Inf"].map((le) =>
          `${family.name}_bucket${braced([...pairs, `le="${le}"`])} `
        ),
        `${family.name}_sum${braced(pairs)} `,
        `${family.name}_count${braced(pairs)} `,
      ]
      : [`${family.name}${braced(pairs)} `];
    made.push({ slot: family.offset + series * family.width, labels, prefixes });
  }
  SERIES_TEXT.set(family, made);
  return made;
}

/** One family's lines. */
function renderFamily(family: MetricFamily, values: Float64Array, only: Readonly<Record<string, string>>): string {
  let text = `# HELP ${family.name} ${family.help}\n# TYPE ${family.name} ${family.type}\n`;
  const filters = Object.entries(only).filter(([name]) => family.labelNames.includes(name));
  for (const series of seriesText(family)) {
    if (filters.some(([name, value]) => series.labels[name] !== value)) continue;
    if (family instanceof HistogramFamily) text += renderHistogram(family, values, series);
    else text += `${series.prefixes[0]}${formatValue(values[series.slot])}\n`;
  }
  return text;
}

/** A histogram series' lines: its buckets made cumulative, `+Inf`, `_sum` and `_count`. */
function renderHistogram(family: HistogramFamily, values: Float64Array, series: SeriesText): string {
  let text = "";
  let cumulative = 0;
  const { slot, prefixes } = series;
  const buckets = family.buckets.length;
  for (let bucket = 0; bucket <= buckets; bucket++) {
    cumulative += values[slot + bucket];
    text += `${prefixes[bucket]}${cumulative}\n`;
  }
  text += `${prefixes[buckets + 1]}${formatValue(values[slot + buckets + 1])}\n`;
  text += `${prefixes[buckets + 2]}${cumulative}\n`;
  return text;
}

function braced(labels: string[]): string {
  return labels.length === 0 ? "" : `{${labels.join(",")}}`;
}

/**
 * A label value as the exposition writes it: backslash, double quote and
 * newline escaped.
 *
 * @param value The value.
 * @returns The escaped text (without the quotes).
 */
export function escapeLabel(value: string): string {
  return value.replace(/[\\"\n]/g, (char) => char === "\n" ? "\\n" : `\\${char}`);
}

/**
 * A number as the exposition writes it: Go's `ParseFloat` syntax, with
 * `+Inf`, `-Inf` and `NaN`.
 *
 * @param value The number.
 * @returns Its text.
 */
export function formatValue(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (value === Infinity) return "+Inf";
  if (value === -Infinity) return "-Inf";
  return String(value);
}
