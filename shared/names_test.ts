import assert from "node:assert/strict";
import {
  excerpt,
  MAX_NAME_BYTES,
  MAX_SEGMENT_BYTES,
  MAX_USER_BYTES,
  nameProblem,
  printableName,
  printableText,
  userProblem,
} from "./names.ts";

const encoder = new TextEncoder();

const EMPTY_SEGMENT = 'name has an empty segment ("//" or a "/" at the end)';
const CONTROL = "name contains a control character";
const BACKSLASH = 'name contains "\\" (use "/" between folders)';
const RESERVED = 'segments starting with ".dfos-" are reserved';
const LONG_SEGMENT = `a segment is longer than ${MAX_SEGMENT_BYTES} bytes`;
const LONG_NAME = `name is longer than ${MAX_NAME_BYTES} bytes`;

/** A name of exactly `bytes` UTF-8 bytes made of segments of at most `segment` bytes. */
function nameOfBytes(bytes: number, segment = 100): string {
  const parts: string[] = [];
  let left = bytes;
  while (left > segment) {
    const take = Math.min(segment, left - 2); // leave room for "/" and a non-empty segment
    parts.push("x".repeat(take));
    left -= take + 1;
  }
  parts.push("x".repeat(left));
  return parts.join("/");
}

const ACCEPTABLE: string[] = [
  "a",
  "a.txt",
  "notes/2026/today.txt",
  ".hidden",
  "..a",
  "a..",
  "...",
  "a b",
  " leading space",
  "-rf",
  "~",
  "a:b",
  "#hash",
  "\u00e9t\u00e9.txt", // NFC
  "\u65e5\u672c\u8a9e/\u30d5\u30a1\u30a4\u30eb.txt",
  "\u{1f600}.png", // a well-formed surrogate pair
  ".dfos", // not the reserved prefix itself
  "dfos-x",
  "a/.dfosx",
  "a/dfos-partial/x",
  "x".repeat(MAX_SEGMENT_BYTES),
  "\u00e9".repeat(127) + "x", // 255 bytes in 128 characters
  nameOfBytes(MAX_NAME_BYTES),
  nameOfBytes(MAX_NAME_BYTES, MAX_SEGMENT_BYTES),
];

const HOSTILE: [string, string, string][] = [
  ["empty", "", "name is empty"],
  ["absolute", "/abs", 'name is absolute (it starts with "/")'],
  ["root", "/", 'name is absolute (it starts with "/")'],
  ["double slash", "a//b", EMPTY_SEGMENT],
  ["trailing slash", "a/", EMPTY_SEGMENT],
  ["dot", ".", 'segment "." is not allowed'],
  ["dot dot", "..", 'segment ".." is not allowed'],
  ["dot dot in the middle", "a/../b", 'segment ".." is not allowed'],
  ["dot dot at the end", "a/..", 'segment ".." is not allowed'],
  ["leading dot segment", "./a", 'segment "." is not allowed'],
  ["backslash", "a\\b", BACKSLASH],
  ["backslash dot dot", "..\\x", BACKSLASH],
  ["NUL", "a\u0000b", CONTROL],
  ["newline", "a\nb", CONTROL],
  ["tab", "a\tb", CONTROL],
  ["terminal escape", "\x1b[31m", CONTROL],
  ["DEL", "a\u007f", CONTROL],
  ["C1 CSI", "\u009b31m", CONTROL],
  ["C1 NEL", "a\u0085", CONTROL],
  ["lone high surrogate", "\ud800", "name is not valid Unicode"],
  ["lone low surrogate", "a\udc00b", "name is not valid Unicode"],
  ["not NFC", "e\u0301", "name is not in Unicode normal form C"],
  ["reserved first segment", ".dfos-partial/x", RESERVED],
  ["reserved last segment", "a/.dfos-x", RESERVED],
  ["reserved prefix alone", ".dfos-", RESERVED],
  // A case-insensitive file system (FAT, ext4 casefold) takes these for the server's own .dfos-partial.
  ["reserved, upper case", ".DFOS-partial/x", RESERVED],
  ["reserved, mixed case", ".Dfos-Partial", RESERVED],
  ["reserved, mixed case, deeper", "a/.dFoS-x", RESERVED],
  ["reserved, long s folds to s", ".dfo\u017f-partial/x", RESERVED],
  ["256-byte segment", "x".repeat(MAX_SEGMENT_BYTES + 1), LONG_SEGMENT],
  ["256-byte segment in the middle", `a/${"x".repeat(MAX_SEGMENT_BYTES + 1)}/b`, LONG_SEGMENT],
  ["256-byte segment of 2-byte characters", "\u00e9".repeat(128), LONG_SEGMENT],
  ["name over 1024 bytes", nameOfBytes(MAX_NAME_BYTES + 1), LONG_NAME],
  ["name over 1024 bytes in 3-byte characters", "\u65e5/".repeat(256) + "\u65e5", LONG_NAME],
];

Deno.test("nameProblem accepts ordinary names", () => {
  for (const name of ACCEPTABLE) {
    assert.equal(nameProblem(name), undefined, JSON.stringify(name.length > 40 ? name.slice(0, 40) + "..." : name));
  }
  for (const segment of [100, MAX_SEGMENT_BYTES]) {
    assert.equal(encoder.encode(nameOfBytes(MAX_NAME_BYTES, segment)).length, MAX_NAME_BYTES);
  }
});

Deno.test("nameProblem names the problem of each hostile name", async (t) => {
  for (const [label, name, problem] of HOSTILE) {
    await t.step(label, () => assert.equal(nameProblem(name), problem));
  }
  assert.equal(encoder.encode(nameOfBytes(MAX_NAME_BYTES + 1)).length, MAX_NAME_BYTES + 1);
});

Deno.test("userProblem accepts ordinary user names", () => {
  for (const user of ["alice", "bob-2", "a", "user_name", "Ren\u00e9", "x".repeat(MAX_USER_BYTES)]) {
    assert.equal(userProblem(user), undefined, user);
  }
});

Deno.test("userProblem refuses slashes, colons, a leading dot, long names and bad names", () => {
  const cases: [string, string][] = [
    ["a/b", 'user name contains "/"'],
    ["/alice", 'user name contains "/"'],
    ["a:b", 'user name contains ":"'],
    [":", 'user name contains ":"'],
    [".alice", 'user name starts with "."'],
    [".", 'user name starts with "."'],
    ["..", 'user name starts with "."'],
    [".dfos-partial", 'user name starts with "."'],
    ["x".repeat(MAX_USER_BYTES + 1), `user name is longer than ${MAX_USER_BYTES} bytes`],
    ["\u00e9".repeat(MAX_USER_BYTES / 2 + 1), `user name is longer than ${MAX_USER_BYTES} bytes`],
    ["", "user name is empty"],
    ["a\u0000", "user name contains a control character"],
    ["a\\b", 'user name contains "\\" (use "/" between folders)'],
    ["\ud800", "user name is not valid Unicode"],
    ["e\u0301", "user name is not in Unicode normal form C"],
  ];
  for (const [user, problem] of cases) assert.equal(userProblem(user), problem, JSON.stringify(user));
});

Deno.test("printableName escapes control characters and backslashes", () => {
  const cases: [string, string][] = [
    ["plain.txt", "plain.txt"],
    ["\u00e9t\u00e9/\u65e5\u672c", "\u00e9t\u00e9/\u65e5\u672c"],
    ["\x1b[31mred", "\\x1b[31mred"],
    ["a\nb", "a\\x0ab"],
    ["\u0000", "\\x00"],
    ["\u007f", "\\x7f"],
    ["\u009b", "\\x9b"],
    ["a\\b", "a\\\\b"],
    ["\\x1b", "\\\\x1b"], // a literal backslash cannot pass for an escape
    ["evil\u202etxt.exe", "evil\\u202etxt.exe"], // a right-to-left override would show "evilexe.txt"
    ["\u2066a\u2069\u200e\u200f\u061c", "\\u2066a\\u2069\\u200e\\u200f\\u061c"],
    ["line\u2028para\u2029", "line\\u2028para\\u2029"],
    ["\\u202e", "\\\\u202e"],
    ["\u00e9\u200d\u{1f600}", "\u00e9\u200d\u{1f600}"], // a zero-width joiner (emoji sequences) stays
  ];
  for (const [name, printable] of cases) assert.equal(printableName(name), printable, JSON.stringify(name));
});

Deno.test("printableName leaves no control or bidi character in its output", () => {
  let all = "";
  for (let code = 0; code < 0x3000; code++) all += String.fromCharCode(code);
  const printable = printableName(all);
  assert.doesNotMatch(printable, /[\p{Cc}\p{Bidi_Control}\u2028\u2029]/u);
});

Deno.test("nameProblem takes a lower byte limit, never a higher one", () => {
  assert.equal(nameProblem("a".repeat(100), 100), undefined);
  assert.equal(nameProblem("a".repeat(101), 100), "name is longer than 100 bytes");
  assert.equal(nameProblem("é".repeat(51), 100), "name is longer than 100 bytes");
  const long = Array.from({ length: 5 }, () => "a".repeat(250)).join("/");
  assert.equal(nameProblem(long, 4096), `name is longer than ${MAX_NAME_BYTES} bytes`);
});

Deno.test("printableName escapes lone surrogates and keeps surrogate pairs", () => {
  assert.equal(printableName("a\ud800b\udfff"), "a\\ud800b\\udfff");
  assert.equal(printableName("\u{1f600}"), "\u{1f600}");
  assert.equal(printableName("\u{1f600}".slice(0, 1)), "\\ud83d");
});

Deno.test("printableText leaves escaped text as it is and escapes text with anything raw, whole", () => {
  const cases: [string, string][] = [
    [
      'Cannot use name "a\\x1b": name contains a control character',
      'Cannot use name "a\\x1b": name contains a control character',
    ],
    ["plain \\ backslash", "plain \\ backslash"],
    ["a\nLogin of alice", "a\\x0aLogin of alice"],
    ["a\\x1b and \x1b", "a\\\\x1b and \\x1b"], // anything raw: every backslash escaped too, so none is ambiguous
    ["\u202eevil", "\\u202eevil"],
  ];
  for (const [text, printable] of cases) assert.equal(printableText(text), printable, JSON.stringify(text));
});

Deno.test("printableText and printableName leave no raw control, bidi control or lone surrogate, whatever the input", () => {
  let all = "";
  for (let code = 0; code < 0x10000; code++) all += String.fromCharCode(code);
  for (const escaped of [printableName(all), printableText(all)]) {
    assert.doesNotMatch(escaped, /[\p{Cc}\p{Bidi_Control}\u2028\u2029]/u);
    assert.ok(escaped.isWellFormed());
  }
});

Deno.test("excerpt cuts a peer's text to a short escaped excerpt and says how much was cut", () => {
  assert.equal(excerpt("short"), "short");
  assert.equal(excerpt("x".repeat(60_000)), `${"x".repeat(100)}... (59900 more characters)`);
  assert.equal(excerpt("a\nb\x1b[2J", 100), "a\\x0ab\\x1b[2J");
  // Never half an escape: "\x1b" takes 4 characters, and does not fit in the last 2.
  assert.equal(excerpt(`${"x".repeat(98)}\x1b!`, 100), `${"x".repeat(98)}... (2 more characters)`);
  // Never half a character: the emoji is two UTF-16 code units.
  assert.equal(excerpt(`${"x".repeat(99)}\u{1f600}`, 100), `${"x".repeat(99)}... (2 more characters)`);
  assert.equal(excerpt("", 10), "");
});

Deno.test("excerpt of 60 KB of hostile text holds no raw character and stays short", () => {
  const hostile = "\x1b]0;pwned\x07\n2026-01-01 [INF] Login of alice\r\n\u202e".repeat(1000);
  const cut = excerpt(hostile);
  assert.ok(cut.length <= 100 + " ... (NNNNN more characters)".length, cut);
  assert.doesNotMatch(cut, /[\p{Cc}\p{Bidi_Control}]/u);
});
