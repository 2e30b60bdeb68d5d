/**
 * Splitting a shell line into words as a POSIX shell does, without
 * expansion: 'single quotes' keep everything, "double quotes" keep all but
 * a backslash before `"` or `\`, and a backslash outside quotes keeps the
 * next character. `splitWords()` reads a whole line; `partialWord()` reads
 * the line up to the cursor for completion, and `quoteWord()` writes a word
 * back so that it splits to itself.
 *
 * @example Usage
 * ```ts
 * import assert from "node:assert/strict";
 * import { splitWords } from "./words.ts";
 * assert.deepEqual(splitWords(`put "my file.txt" 'a b'/ c\\ d`), ["put", "my file.txt", "a b/", "c d"]);
 * ```
 *
 * @module
 */

/** The line up to the cursor, read for completion. */
export interface PartialLine {
  /** The whole words before the one under the cursor. */
  words: string[];
  /** The word under the cursor so far, unquoted ("" at a space). */
  partial: string;
  /** Where that word starts in the line. */
  start: number;
  /** The quote the word is inside at the cursor, or null. */
  quote: "'" | '"' | null;
}

/**
 * Splits a line into words.
 *
 * @param line The line.
 * @returns Its words, unquoted.
 * @throws {SyntaxError} for a quote that is not closed or a backslash at the end.
 */
export function splitWords(line: string): string[] {
  const { words, partial, start, quote } = scan(line);
  if (quote !== null) throw new SyntaxError(`Cannot read the line: the quote ${quote} is not closed`);
  if (line.endsWith("\\") && countTrailingBackslashes(line) % 2 === 1) {
    throw new SyntaxError("Cannot read the line: it ends in a backslash");
  }
  return start < line.length || partial !== "" ? [...words, partial] : words;
}

/**
 * Reads the line before the cursor: the words so far and the one being typed.
 *
 * @param line The text before the cursor.
 * @returns The words, the partial word, where it starts, and an open quote.
 */
export function partialWord(line: string): PartialLine {
  return scan(line);
}

/**
 * Writes a word so that {@linkcode splitWords} reads it back whole: special
 * characters get a backslash; inside an open quote only what that quote needs.
 *
 * @param word The word.
 * @param quote The quote the word is being written inside, or null.
 * @returns The text to insert.
 */
export function quoteWord(word: string, quote: "'" | '"' | null = null): string {
  if (quote === "'") return word.replaceAll("'", `'\\''`);
  if (quote === '"') return word.replace(/["\\]/g, (char) => `\\${char}`);
  return word.replace(/[\s'"\\$`#;&|<>()*?[\]{}!~]/g, (char) => `\\${char}`);
}

function countTrailingBackslashes(line: string): number {
  let count = 0;
  for (let i = line.length - 1; i >= 0 && line[i] === "\\"; i--) count++;
  return count;
}

/** One pass over the line: whole words, then the last (maybe open) one. */
function scan(line: string): PartialLine {
  const words: string[] = [];
  let word = "";
  let inWord = false;
  let start = line.length;
  let quote: "'" | '"' | null = null;
  for (let i = 0; i < line.length; i++) {
    const char = line[i];
    if (quote === "'") {
      if (char === "'") quote = null;
      else word += char;
      continue;
    }
    if (quote === '"') {
      if (char === '"') quote = null;
      else if (char === "\\" && (line[i + 1] === '"' || line[i + 1] === "\\")) word += line[++i];
      else word += char;
      continue;
    }
    if (/\s/.test(char)) {
      if (inWord) words.push(word);
      word = "";
      inWord = false;
      start = line.length;
      continue;
    }
    if (!inWord) {
      inWord = true;
      start = i;
    }
    if (char === "'" || char === '"') quote = char;
    else if (char === "\\") {
      if (i + 1 < line.length) word += line[++i];
    } else word += char;
  }
  return { words, partial: word, start: inWord ? start : line.length, quote };
}
