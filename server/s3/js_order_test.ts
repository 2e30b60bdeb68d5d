import { deepStrictEqual } from "node:assert/strict";
import { inJsOrder } from "./js_order.ts";

/** Characters from each range that matters: ASCII, below the surrogates, U+E000 to U+FFFF, above U+FFFF. */
const CHARS = ["a", "b", "/", "\u00e9", "\ud7ff", "\ue000", "\ufb01", "\uff5e", "\u{10000}", "\u{1F600}", "\u{10FFFF}"];

/** S3's order: the names' UTF-8 bytes, that is their code points. */
function s3Compare(a: string, b: string): number {
  const x = [...a].map((char) => char.codePointAt(0)!);
  const y = [...b].map((char) => char.codePointAt(0)!);
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i] - y[i];
  return x.length - y.length;
}

async function* from(names: string[]): AsyncGenerator<string> {
  yield* names;
}

Deno.test("inJsOrder() puts any names listed in S3's order in JavaScript's order", async () => {
  let seed = 7;
  const random = (n: number) => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) % n;
  for (let round = 0; round < 300; round++) {
    const names = new Set<string>();
    const count = 1 + random(40);
    while (names.size < count) {
      let name = "";
      for (let length = 1 + random(4); length > 0; length--) name += CHARS[random(CHARS.length)];
      names.add(name);
    }
    const s3 = [...names].sort(s3Compare);
    const out: string[] = [];
    for await (const name of inJsOrder(from(s3), (name) => name)) out.push(name);
    deepStrictEqual(out, [...names].sort(), `round ${round}`);
  }
});
