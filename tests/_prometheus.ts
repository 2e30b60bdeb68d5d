/**
 * A small reader of Prometheus's text exposition format (0.0.4) for the
 * tests: `parseExposition()` checks what a scraper would (each sample's
 * family declared by `# HELP` and `# TYPE` before it, names and label names
 * by Prometheus's rules, no series twice, numbers that parse, a counter's
 * name ending in `_total`, a histogram's buckets increasing in `le`,
 * cumulative, ending in `+Inf` equal to `_count`) and throws at the first
 * thing that is wrong; `scrape()` fetches and reads one.
 *
 * Internal to tests/: nothing here is part of dfos.
 *
 * @module
 */

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const TYPES = new Set(["counter", "gauge", "histogram", "summary", "untyped"]);

/** One sample: a series and its value. */
export interface Sample {
  /** The sample's name (a histogram's carries `_bucket`, `_sum` or `_count`). */
  name: string;
  /** Its labels. */
  labels: Record<string, string>;
  /** Its value. */
  value: number;
}

/** A scrape, read. */
export interface Exposition {
  /** Every family's type, by name. */
  types: Map<string, string>;
  /** Every family's help, by name. */
  help: Map<string, string>;
  /** Every sample, in order. */
  samples: Sample[];
  /**
   * The value of one series, 0 when absent (a series never counted may be left out).
   *
   * @param name The sample's name.
   * @param labels All its labels.
   */
  value(name: string, labels?: Record<string, string>): number;
}

/** The key of a series: its name and its labels, sorted. */
function seriesKey(name: string, labels: Record<string, string>): string {
  return `${name}{${Object.keys(labels).sort().map((key) => `${key}=${JSON.stringify(labels[key])}`).join(",")}}`;
}

/**
 * Reads an exposition, checking it as described in the module's doc.
 *
 * @param text The text of a `/metrics` answer.
 * @returns Its families and samples.
 * @throws {Error} naming the line and what is wrong with it.
 */
export function parseExposition(text: string): Exposition {
  const types = new Map<string, string>();
  const help = new Map<string, string>();
  const samples: Sample[] = [];
  const seen = new Map<string, number>();
  if (text !== "" && !text.endsWith("\n")) throw new Error("The exposition does not end with a newline");
  const lines = text.split("\n").slice(0, -1);
  for (const [index, line] of lines.entries()) {
    const fail = (why: string): never => {
      throw new Error(`Line ${index + 1} "${line}": ${why}`);
    };
    if (line.startsWith("#")) {
      const meta = /^# (HELP|TYPE) (\S+) (.*)$/.exec(line);
      if (meta === null) continue; // a comment
      const [, kind, name, rest] = meta;
      if (!NAME.test(name)) fail("bad metric name");
      if (kind === "HELP") {
        if (help.has(name)) fail("a second HELP");
        help.set(name, rest);
      } else {
        if (types.has(name)) fail("a second TYPE");
        if (!TYPES.has(rest)) fail(`unknown type ${rest}`);
        if (samples.some((sample) => familyOf(sample.name, types) === name)) fail("TYPE after its samples");
        types.set(name, rest);
      }
      continue;
    }
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (sample === null) fail("not a sample");
    const [, name, body, number] = sample!;
    const labels = parseLabels(body ?? "", fail);
    const value = number === "+Inf" ? Infinity : number === "-Inf" ? -Infinity : Number(number);
    if (number !== "NaN" && Number.isNaN(value)) fail("value is not a number");
    const family = familyOf(name, types);
    if (family === null) fail("no TYPE before it");
    if (!help.has(family!)) fail("no HELP before it");
    const type = types.get(family!)!;
    if (type === "counter" && !family!.endsWith("_total")) fail("a counter's name must end in _total");
    if (type === "counter" && (value < 0 || Number.isNaN(value))) fail("a counter below 0");
    const key = seriesKey(name, labels);
    if (seen.has(key)) fail("a series seen twice");
    seen.set(key, value);
    samples.push({ name, labels, value });
  }
  checkHistograms(types, samples);
  return {
    types,
    help,
    samples,
    value: (name, labels = {}) => seen.get(seriesKey(name, labels)) ?? 0,
  };
}

/** The family a sample belongs to: its own name, or a histogram's without `_bucket`, `_sum`, `_count`. */
function familyOf(name: string, types: Map<string, string>): string | null {
  if (types.has(name)) return name;
  const base = name.replace(/_(bucket|sum|count)$/, "");
  return base !== name && types.get(base) === "histogram" ? base : null;
}

/** Reads `a="x",b="y"`, with `\\`, `\"` and `\n` escapes. */
function parseLabels(body: string, fail: (why: string) => never): Record<string, string> {
  const labels: Record<string, string> = {};
  let at = 0;
  while (at < body.length) {
    const name = /^([^=]+)="/.exec(body.slice(at));
    if (name === null || !LABEL_NAME.test(name[1])) fail("bad label");
    at += name![0].length;
    let value = "";
    while (at < body.length && body[at] !== '"') {
      if (body[at] === "\\") {
        const next = body[at + 1];
        if (next !== "\\" && next !== '"' && next !== "n") fail("bad escape in a label value");
        value += next === "n" ? "\n" : next;
        at += 2;
      } else {
        value += body[at++];
      }
    }
    if (body[at] !== '"') fail("unterminated label value");
    at++;
    if (Object.hasOwn(labels, name![1])) fail(`label ${name![1]} twice`);
    labels[name![1]] = value;
    if (at < body.length) {
      if (body[at] !== ",") fail("labels not separated by a comma");
      at++;
    }
  }
  return labels;
}

/** Checks every histogram series: `le` increasing, counts cumulative, `+Inf` last and equal to `_count`, a `_sum`. */
function checkHistograms(types: Map<string, string>, samples: Sample[]): void {
  const series = new Map<string, { buckets: [number, number][]; count?: number; sum?: number }>();
  for (const sample of samples) {
    const family = familyOf(sample.name, types);
    if (family === null || types.get(family) !== "histogram") continue;
    const { le, ...rest } = sample.labels;
    const key = seriesKey(family, rest);
    const entry = series.get(key) ?? { buckets: [] };
    series.set(key, entry);
    if (sample.name.endsWith("_bucket")) {
      if (le === undefined) throw new Error(`${key}: a bucket without le`);
      entry.buckets.push([le === "+Inf" ? Infinity : Number(le), sample.value]);
    } else if (sample.name.endsWith("_count")) entry.count = sample.value;
    else if (sample.name.endsWith("_sum")) entry.sum = sample.value;
    else throw new Error(`${key}: a histogram sample that is not a bucket, sum or count`);
  }
  for (const [key, { buckets, count, sum }] of series) {
    if (count === undefined || sum === undefined) throw new Error(`${key}: no _count or _sum`);
    if (buckets.length === 0 || buckets.at(-1)![0] !== Infinity) throw new Error(`${key}: no +Inf bucket last`);
    for (let i = 1; i < buckets.length; i++) {
      if (!(buckets[i][0] > buckets[i - 1][0])) throw new Error(`${key}: le not increasing`);
      if (buckets[i][1] < buckets[i - 1][1]) throw new Error(`${key}: buckets not cumulative`);
    }
    if (buckets.at(-1)![1] !== count) throw new Error(`${key}: +Inf ${buckets.at(-1)![1]} is not _count ${count}`);
  }
}

/**
 * Fetches `http://127.0.0.1:PORT/metrics` and reads it.
 *
 * @param port The metrics endpoint's port.
 * @returns The exposition, checked.
 */
export async function scrape(port: number): Promise<Exposition> {
  const response = await fetch(`http://127.0.0.1:${port}/metrics`);
  const text = await response.text();
  if (response.status !== 200) throw new Error(`GET /metrics answered ${response.status}: ${text}`);
  const type = response.headers.get("content-type");
  if (type !== "text/plain; version=0.0.4; charset=utf-8") throw new Error(`GET /metrics has content type ${type}`);
  return parseExposition(text);
}
