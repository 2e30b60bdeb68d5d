/**
 * `inJsOrder()`: names listed in S3's order (the UTF-8 bytes, that is code
 * points) put in JavaScript's string order (UTF-16 code units), as
 * `Storage.list` promises, without reading more than the listing does.
 *
 * The two orders differ only where two names first differ by a character
 * from U+E000 to U+FFFF in one and a character above U+FFFF in the other:
 * S3 puts the first before the second, JavaScript the second first (its
 * surrogates, U+D800 to U+DFFF, come before U+E000). So a name X with such
 * a character (the first at index i) can be overtaken only by names that
 * come later in S3's order and start with `X.slice(0, i)`, its guard; those
 * all come before the first later name without it. The names are held back
 * in JavaScript's order until the name just read leaves each one's guard:
 * what is held is only the names that share a guard, few in practice.
 *
 * @module
 */

/**
 * The names of `source` (in S3's order) in JavaScript's string order.
 *
 * @param source Items in S3's order of their names.
 * @param nameOf An item's name.
 * @returns The same items, in JavaScript's order of their names.
 *
 * @example Usage
 * ```ts
 * import { inJsOrder } from "./js_order.ts";
 * import { deepStrictEqual } from "node:assert/strict";
 * async function* s3Order() { yield* ["a", "z", "\ufb01", "\u{1F600}", "\u{1F600}x"]; }
 * const names = [];
 * for await (const name of inJsOrder(s3Order(), (name) => name)) names.push(name);
 * deepStrictEqual(names, ["a", "z", "\u{1F600}", "\u{1F600}x", "\ufb01"]);
 * ```
 */
export async function* inJsOrder<T>(source: AsyncIterable<T>, nameOf: (item: T) => string): AsyncGenerator<T> {
  /** Held back, in JavaScript's order, each with its guard (null: none). */
  const held: { item: T; name: string; guard: string | null }[] = [];
  for await (const item of source) {
    const name = nameOf(item);
    let at = held.length;
    while (at > 0 && held[at - 1].name > name) at--;
    held.splice(at, 0, { item, name, guard: guardOf(name) });
    // The least held may go once the name just read has left its guard: nothing later can come before it.
    while (held.length > 0 && (held[0].guard === null || !name.startsWith(held[0].guard))) {
      yield held.shift()!.item;
    }
  }
  for (const { item } of held) yield item;
}

/** The part of `name` before its first character from U+E000 to U+FFFF, or null when it has none. */
function guardOf(name: string): string | null {
  for (let i = 0; i < name.length; i++) {
    if (name.charCodeAt(i) >= 0xe000) return name.slice(0, i);
  }
  return null;
}
