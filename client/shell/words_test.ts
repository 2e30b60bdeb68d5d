import { deepEqual, throws } from "node:assert/strict";
import { partialWord, quoteWord, splitWords } from "./words.ts";

Deno.test("splitWords() reads single and double quotes and backslashes", () => {
  deepEqual(splitWords("  ls  "), ["ls"]);
  deepEqual(splitWords(`get 'a b.txt' "c \\"d\\".txt" e\\ f`), ["get", "a b.txt", 'c "d".txt', "e f"]);
  deepEqual(splitWords(`put ''`), ["put", ""]);
  deepEqual(splitWords(`a"b c"d`), ["ab cd"]);
  deepEqual(splitWords(""), []);
});

Deno.test("splitWords() refuses an open quote and a final backslash", () => {
  throws(() => splitWords(`get "a`), SyntaxError);
  throws(() => splitWords(`get a\\`), SyntaxError);
});

Deno.test("partialWord() gives the word under the cursor, its start and an open quote", () => {
  deepEqual(partialWord("get rep"), { words: ["get"], partial: "rep", start: 4, quote: null });
  deepEqual(partialWord("get "), { words: ["get"], partial: "", start: 4, quote: null });
  deepEqual(partialWord(`get "my f`), { words: ["get"], partial: "my f", start: 4, quote: '"' });
});

Deno.test("quoteWord() writes a word that splits back to itself", () => {
  for (const word of ["a b", `it's`, `say "hi"`, "back\\slash", "$HOME", "plain.txt"]) {
    deepEqual(splitWords(`x ${quoteWord(word)}`), ["x", word]);
    deepEqual(splitWords(`x "${quoteWord(word, '"')}"`), ["x", word]);
    deepEqual(splitWords(`x '${quoteWord(word, "'")}'`), ["x", word]);
  }
});
