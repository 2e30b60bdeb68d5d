/**
 * How many runs, and from which seed, the property tests (`*_property_test.ts`)
 * make. Under `deno task test` every property runs a small fixed number of
 * times from a fixed seed, so CI is fast and repeatable. Under `deno task
 * fuzz` (`FUZZ=1`) each runs many more times from a random seed, printed
 * first so a failure can be replayed.
 *
 * Environment: `FUZZ=1` for the long run; `FUZZ_RUNS` (runs per property)
 * and `FUZZ_SEED` (an integer) override either mode. fast-check prints the
 * seed and the path of a failing case in its error; replay it with
 * `FUZZ_SEED=<seed>`.
 *
 * Internal to the tests: nothing here is part of dfos.
 *
 * @module
 */

import type { Parameters } from "fast-check";

/** The seed of the short, repeatable runs. */
export const FIXED_SEED = 20261125;

/** How many times more a property runs under `deno task fuzz` than in the short run. */
const FUZZ_FACTOR = 100;

/**
 * Returns fast-check's parameters for one property.
 *
 * @param name The property, for the line printed in a long run.
 * @param runs Runs in the short, fixed run.
 * @returns The seed and number of runs to use.
 */
export function propertyParameters<T>(name: string, runs: number): Parameters<T> {
  const fuzz = Deno.env.get("FUZZ") === "1";
  const seedText = Deno.env.get("FUZZ_SEED");
  const runsText = Deno.env.get("FUZZ_RUNS");
  const seed = seedText !== undefined
    ? integerFromEnv("FUZZ_SEED", seedText)
    : fuzz
    ? crypto.getRandomValues(new Int32Array(1))[0]
    : FIXED_SEED;
  const numRuns = runsText !== undefined ? integerFromEnv("FUZZ_RUNS", runsText) : fuzz ? runs * FUZZ_FACTOR : runs;
  if (fuzz || seedText !== undefined || runsText !== undefined) {
    console.log(`property "${name}": ${numRuns} runs, FUZZ_SEED=${seed}`);
  }
  return { seed, numRuns };
}

function integerFromEnv(name: string, text: string): number {
  const value = Number(text);
  if (!Number.isSafeInteger(value)) throw new RangeError(`Cannot read ${name}: "${text}" is not an integer`);
  return value;
}
