import { deepEqual, equal } from "node:assert/strict";
import { decodeKeys, type KeyResult, LineEditor } from "./line_editor.ts";

/** Feeds terminal input to an editor; returns the results that were not null. */
function type(editor: LineEditor, input: string): KeyResult[] {
  const { keys } = decodeKeys(input);
  return keys.map((key) => editor.press(key)).filter((result) => result !== null);
}

Deno.test("LineEditor - printable input and Enter give the line", () => {
  const editor = new LineEditor();
  deepEqual(type(editor, "get report.pdf\r"), ["line"]);
  equal(editor.text, "get report.pdf");
});

Deno.test("LineEditor - Backspace, Left/Right, Home/End and Delete edit in place", () => {
  const editor = new LineEditor();
  type(editor, "gxt\x7f\x7fet");
  equal(editor.text, "get");
  type(editor, "\x1b[D\x1b[D\x1b[3~");
  equal(editor.text, "gt");
  type(editor, "e\x1b[Hx\x1b[F!");
  equal(editor.text, "xget!");
  type(editor, "\x01\x1b[C\x1b[C\x7f");
  equal(editor.text, "xet!");
  equal(editor.cursor, 1);
  type(editor, "\x1bOF\x7f\x1bOH\x1b[3~");
  equal(editor.text, "et");
});

Deno.test("LineEditor - Ctrl-U, Ctrl-K and Ctrl-W erase", () => {
  const editor = new LineEditor();
  type(editor, "put a b\x17");
  equal(editor.text, "put a ");
  type(editor, "\x1b[D\x1b[D\x15");
  equal(editor.text, "a ");
  equal(editor.cursor, 0);
  type(editor, "x\x0b");
  equal(editor.text, "x");
});

Deno.test("LineEditor - Up and Down go through the history and back to the draft", () => {
  const editor = new LineEditor(["ls", "get a.txt"]);
  type(editor, "pu");
  type(editor, "\x1b[A");
  equal(editor.text, "get a.txt");
  type(editor, "\x1b[A\x1b[A");
  equal(editor.text, "ls");
  type(editor, "\x1b[B");
  equal(editor.text, "get a.txt");
  type(editor, "\x1b[B");
  equal(editor.text, "pu");
  equal(editor.cursor, 2);
});

Deno.test("LineEditor - Ctrl-C clears the line, Ctrl-D leaves only on an empty line, Tab asks to complete", () => {
  const editor = new LineEditor();
  deepEqual(type(editor, "rm all\x03"), ["interrupt"]);
  equal(editor.text, "");
  deepEqual(type(editor, "ab\x01\x04"), []);
  equal(editor.text, "b");
  deepEqual(type(editor, "\x05\x15\x04"), ["eof"]);
  deepEqual(type(editor, "get rep\t"), ["complete"]);
});

Deno.test("decodeKeys() keeps a cut escape sequence for the next input and takes CR LF as one Enter", () => {
  deepEqual(decodeKeys("ab\x1b["), { keys: [{ kind: "text", text: "ab" }], rest: "\x1b[" });
  deepEqual(decodeKeys("\x1b[A").keys, [{ kind: "up" }]);
  deepEqual(decodeKeys("x\r\n").keys, [{ kind: "text", text: "x" }, { kind: "enter" }]);
  deepEqual(decodeKeys("\x1b[15~é").keys, [{ kind: "text", text: "é" }]);
});

Deno.test("LineEditor - the cursor steps over a surrogate pair whole", () => {
  const editor = new LineEditor();
  type(editor, "a😀\x1b[D");
  equal(editor.cursor, 1);
  type(editor, "\x1b[C\x7f");
  equal(editor.text, "a");
});
