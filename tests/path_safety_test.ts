/**
 * Path safety, end to end: hostile names in every spelling, and symbolic and
 * hard links planted inside a user's folder (or swapped in while an upload is
 * under way), driven through the real protocol to a real server on port 0.
 * After each case, nothing outside the user's folder has changed.
 *
 * The threat model is docs/SECURITY.md's: a logged-in user sends any name; a
 * local user (or an operator's mistake) plants links inside a user's folder.
 *
 * @module
 */

import { deepStrictEqual, doesNotMatch, ok, strictEqual } from "node:assert/strict";
import { join } from "node:path";
import { DfosClient } from "../client/connection.ts";
import { MAX_NAME_BYTES, MAX_SEGMENT_BYTES, printableName } from "../shared/names.ts";
import { DfosError, Status, type StatusCode, statusName } from "../shared/status.ts";
import { PARTIAL_DIR } from "../server/local_storage.ts";
import {
  connect,
  delay,
  type Fixture,
  freePort,
  listDir,
  randomBytes,
  runCli,
  sha256,
  startServer,
  text,
  waitFor,
} from "./_fixture.ts";
import { once } from "./_peer.ts";

const MiB = 1024 * 1024;
const encoder = new TextEncoder();

// ---------------------------------------------------------------------------
// Watching the disk

/** Every path under a folder (relative, "/"-joined) with what it is: `d`, `f SIZE SHA256`, `l -> TARGET` or `o`. */
async function snapshot(dir: string): Promise<Map<string, string>> {
  const result = new Map<string, string>();
  const walk = async (path: string, relative: string) => {
    for await (const entry of Deno.readDir(path)) {
      const child = join(path, entry.name);
      const key = relative === "" ? entry.name : `${relative}/${entry.name}`;
      const info = await Deno.lstat(child);
      if (info.isSymlink) {
        result.set(key, `l -> ${await Deno.readLink(child)}`);
      } else if (info.isDirectory) {
        result.set(key, "d");
        await walk(child, key);
      } else if (info.isFile) {
        result.set(key, `f ${info.size} ${sha256(await Deno.readFile(child))}`);
      } else {
        result.set(key, "o");
      }
    }
  };
  await walk(dir, "");
  return result;
}

/** What changed between two snapshots: `+path` (new), `-path` (gone), `~path` (changed), sorted. */
function changes(before: Map<string, string>, after: Map<string, string>): string[] {
  const result: string[] = [];
  for (const [path, what] of after) {
    if (!before.has(path)) result.push(`+${path}`);
    else if (before.get(path) !== what) result.push(`~${path}`);
  }
  for (const path of before.keys()) if (!after.has(path)) result.push(`-${path}`);
  return result.sort();
}

/** Bait files at the places a traversal would reach: beside the users' folders and outside the root. */
async function plantBait(fx: Fixture): Promise<string> {
  const outside = join(fx.dir, "outside");
  await Deno.mkdir(join(outside, "dir"), { recursive: true });
  await Deno.writeTextFile(join(outside, "secret.txt"), "outside secret");
  await Deno.writeTextFile(join(outside, "x"), "outside x");
  await Deno.writeTextFile(join(outside, "dir", "x"), "outside dir x");
  await Deno.writeTextFile(join(fx.dir, "x"), "beside the root");
  await Deno.writeTextFile(join(fx.root, "x"), "in the root, beside the users");
  return outside;
}

// ---------------------------------------------------------------------------
// Talking to the server

/** Logs `user` in with the in-process client, which sends names exactly as given (no checks, no NFC). */
/** "OK", or the status name the server refused with. */
async function outcome(operation: () => Promise<unknown>): Promise<string> {
  try {
    await operation();
    return "OK";
  } catch (error) {
    if (error instanceof DfosError) return statusName(error.code);
    throw error;
  }
}

/** Downloads `name` whole (or its first `limit` bytes: peek). */
async function fetch(client: DfosClient, name: string, limit?: number): Promise<Uint8Array> {
  const download = await client.get(name, { limit: limit ?? null });
  const parts: Uint8Array[] = [];
  for await (const chunk of download.body.chunks()) parts.push(chunk.slice());
  const bytes = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    bytes.set(part, offset);
    offset += part.length;
  }
  return bytes;
}

async function store(client: DfosClient, name: string, bytes: Uint8Array): Promise<void> {
  await client.put(name, once(bytes), { size: bytes.length });
}

async function names(client: DfosClient, prefix = ""): Promise<string[]> {
  return (await Array.fromAsync(client.list(prefix))).map((entry) => entry.name);
}

/**
 * The four operations on one name, reading ones first (a put may replace a
 * planted link): `get=... peek=... rm=... put=...`.
 */
async function refusals(client: DfosClient, name: string): Promise<string> {
  const get = await outcome(() => fetch(client, name));
  const peek = await outcome(() => fetch(client, name, 3));
  const rm = await outcome(() => client.remove(name));
  const put = await outcome(() => store(client, name, encoder.encode("planted")));
  return `get=${get} peek=${peek} rm=${rm} put=${put}`;
}

/** What {@linkcode refusals} says when every operation is refused with `status`. */
function refusedEverywhere(status: StatusCode): string {
  const name = statusName(status);
  return `get=${name} peek=${name} rm=${name} put=${name}`;
}

/** Refused by get, peek and rm; a put replaces the name (a link or special file) with a file of the user's own. */
function refusedButPut(status: StatusCode): string {
  const name = statusName(status);
  return `get=${name} peek=${name} rm=${name} put=OK`;
}

// ---------------------------------------------------------------------------
// The table of hostile names

/** A name of exactly `bytes` UTF-8 bytes made of segments of at most `segment` bytes. */
function nameOfBytes(bytes: number, segment = 200): string {
  const parts: string[] = [];
  let left = bytes;
  while (left > segment) {
    const take = Math.min(segment, left - 2); // room for "/" and a non-empty segment
    parts.push("x".repeat(take));
    left -= take + 1;
  }
  parts.push("y".repeat(left));
  return parts.join("/");
}

/** One hostile name and what must become of it. */
interface NameRow {
  /** What the row tries. */
  label: string;
  /** The name as sent on the wire. */
  name: string;
  /** The status every operation is refused with; absent when the name is accepted. */
  refused?: StatusCode;
}

const BAD = Status.BAD_NAME;

/**
 * Refused rows are refused by put, get, peek and rm alike. Accepted rows are
 * ordinary (if odd) names: stored at exactly `ROOT/alice/<segments>`, read
 * back, peeked, listed and removed, and nothing else changes anywhere.
 */
const NAME_ROWS: NameRow[] = [
  // Traversal, in every spelling the server might decode.
  { label: "dot dot", name: "..", refused: BAD },
  { label: "dot dot, then a name", name: "../x", refused: BAD },
  { label: "dot dot twice", name: "../../x", refused: BAD },
  { label: "down then further up", name: "a/../../b", refused: BAD },
  { label: "up through a deep path", name: "a/b/../../../x", refused: BAD },
  { label: "deep traversal to /etc/passwd", name: "../../../../../../../../etc/passwd", refused: BAD },
  { label: "dot dot at the end", name: "x/..", refused: BAD },
  { label: "dot", name: ".", refused: BAD },
  { label: "dot segment", name: "./x", refused: BAD },
  { label: "dot segment in the middle", name: "a/./b", refused: BAD },
  { label: "empty name", name: "", refused: BAD },
  { label: "empty segment", name: "a//b", refused: BAD },
  { label: "trailing slash", name: "x/", refused: BAD },
  { label: "percent-encoded dot dot folder (a literal name)", name: "%2e%2e/x" },
  { label: "dot dot with a percent-encoded slash (a literal name)", name: "..%2fx" },
  { label: "percent-encoded traversal, all of it (a literal name)", name: "%2e%2e%2f%2e%2e%2fx" },
  { label: "dot dot with a percent-encoded backslash (a literal name)", name: "..%5cx" },
  { label: "overlong UTF-8 for a dot, as text (a literal name)", name: "%c0%ae%c0%ae/x" },
  { label: "three dots (a literal name)", name: "..." },
  { label: "three dots as a folder (a literal name)", name: "a/.../b" },
  { label: "dot dot and a space (a literal name)", name: ".. /x" },
  // Absolute paths.
  { label: "absolute path", name: "/etc/passwd", refused: BAD },
  { label: "double slash at the start", name: "//etc/passwd", refused: BAD },
  { label: "the root alone", name: "/", refused: BAD },
  { label: "absolute path into another user's folder", name: "/bob/secret.txt", refused: BAD },
  // Backslashes and Windows spellings.
  { label: "backslash dot dot", name: "..\\x", refused: BAD },
  { label: "backslash dot dot twice", name: "..\\..\\x", refused: BAD },
  { label: "UNC path", name: "\\\\server\\share\\x", refused: BAD },
  { label: "drive letter and backslash", name: "C:\\x", refused: BAD },
  { label: "leading backslash", name: "\\x", refused: BAD },
  { label: "mixed separators", name: "a/..\\..\\b", refused: BAD },
  { label: "drive-relative name (a literal name)", name: "C:x" },
  { label: "drive letter and slash (a folder named C:)", name: "C:/x" },
  { label: "a Windows device name (a literal name)", name: "CON" },
  // NUL and other controls.
  { label: "NUL inside", name: "a\u0000b", refused: BAD },
  { label: "NUL before a traversal", name: "x\u0000/../../y", refused: BAD },
  { label: "NUL alone", name: "\u0000", refused: BAD },
  { label: "ESC colour sequence", name: "\u001b[31mred", refused: BAD },
  { label: "OSC window-title sequence", name: "\u001b]0;title\u0007", refused: BAD },
  { label: "carriage return", name: "a\rb", refused: BAD },
  { label: "line feed", name: "a\nb", refused: BAD },
  { label: "tab", name: "a\tb", refused: BAD },
  { label: "DEL", name: "a\u007fb", refused: BAD },
  { label: "C1 CSI", name: "\u009b31m", refused: BAD },
  { label: "C1 NEL", name: "a\u0085b", refused: BAD },
  // Lengths.
  { label: "segment of 255 bytes", name: "s".repeat(MAX_SEGMENT_BYTES) },
  { label: "segment of 256 bytes", name: "s".repeat(MAX_SEGMENT_BYTES + 1), refused: BAD },
  { label: "segment of 256 bytes in 2-byte characters", name: "\u00e9".repeat(128), refused: BAD },
  { label: "deep segment of 256 bytes", name: `a/${"s".repeat(MAX_SEGMENT_BYTES + 1)}/b`, refused: BAD },
  { label: "name of 1024 bytes", name: nameOfBytes(MAX_NAME_BYTES) },
  { label: "name of 1025 bytes", name: nameOfBytes(MAX_NAME_BYTES + 1), refused: BAD },
  { label: "name of 60 KiB", name: nameOfBytes(60 * 1024), refused: BAD },
  // Unicode look-alikes: different characters, so different (literal) names; never a separator or a dot.
  { label: "full-width dots and slash", name: "\uff0e\uff0e\uff0fx" },
  { label: "full-width dots as a folder", name: "\uff0e\uff0e/x" },
  { label: "division slash", name: "..\u2215x" },
  { label: "fraction slash", name: "..\u2044x" },
  { label: "two-dot leader", name: "\u2025/x" },
  { label: "small full stops", name: "\ufe52\ufe52/x" },
  { label: "one-dot leaders", name: "\u2024\u2024/x" },
  // Unicode normalisation: names travel in NFC (the CLI normalises; the server refuses anything else).
  { label: "NFC name", name: "caf\u00e9.txt" },
  { label: "NFD spelling of the same name", name: "cafe\u0301.txt", refused: BAD },
  { label: "Angstrom sign (NFC turns it into another character)", name: "\u212b.txt", refused: BAD },
  { label: "lone surrogate", name: "a\ud800b", refused: BAD },
  // Other users' folders.
  { label: "traversal into another user's folder", name: "../bob/secret.txt", refused: BAD },
  { label: "traversal into another user's folder from below", name: "a/../../bob/secret.txt", refused: BAD },
  { label: "another user's folder name (a folder of alice's own)", name: "bob/secret.txt" },
  { label: "a tilde path (a literal name)", name: "~bob/secret.txt" },
  // The server's own folder.
  { label: "the uploads folder", name: PARTIAL_DIR, refused: BAD },
  { label: "inside the uploads folder", name: `${PARTIAL_DIR}/x`, refused: BAD },
  { label: "an uploads folder deeper down", name: `a/${PARTIAL_DIR}/x`, refused: BAD },
  { label: "the uploads folder and back up", name: `${PARTIAL_DIR}/../x`, refused: BAD },
  { label: "any reserved name", name: ".dfos-x", refused: BAD },
  // Bidirectional controls: printable characters, stored as they are; `ls` shows them escaped (below).
  { label: "right-to-left override", name: "evil\u202etxt.exe" },
  { label: "bidi isolates", name: "\u2066x\u2069.txt" },
];

Deno.test("path safety: every hostile name is refused, or stored exactly inside the user's folder", async () => {
  await using fx = await startServer();
  await plantBait(fx);
  const bob = await connect(fx, "bob");
  await store(bob, "secret.txt", encoder.encode("bob's secret"));
  await bob.close();
  const client = await connect(fx);
  try {
    // The first upload creates .dfos-partial; from here on every row starts from the same disk.
    await store(client, "warm-up", encoder.encode("x"));
    await client.remove("warm-up");
    const baseline = await snapshot(fx.dir);
    ok(baseline.has("root/bob/secret.txt") && baseline.has("outside/secret.txt"));

    const problems: string[] = [];
    for (const row of NAME_ROWS) {
      const label = `${row.label} (${JSON.stringify(row.name.length > 40 ? row.name.slice(0, 40) + "..." : row.name)})`;
      if (row.refused !== undefined) {
        const got = await refusals(client, row.name);
        if (got !== refusedEverywhere(row.refused)) problems.push(`${label}: ${got}`);
      } else {
        problems.push(...(await acceptedRow(fx, client, row.name, baseline)).map((problem) => `${label}: ${problem}`));
      }
      const changed = changes(baseline, await snapshot(fx.dir));
      if (changed.length > 0) problems.push(`${label}: the disk changed: ${changed.join(", ")}`);
    }
    deepStrictEqual(problems, []);
  } finally {
    await client.close();
  }
});

/** Runs an accepted name through put, get, peek, ls and rm; returns what went wrong. */
async function acceptedRow(
  fx: Fixture,
  client: DfosClient,
  name: string,
  baseline: Map<string, string>,
): Promise<string[]> {
  const problems: string[] = [];
  const body = encoder.encode(`content of ${JSON.stringify(name)}`);
  const before = { get: await outcome(() => fetch(client, name)), rm: await outcome(() => client.remove(name)) };
  if (before.get !== "NOT_FOUND" || before.rm !== "NOT_FOUND") problems.push(`before put: ${JSON.stringify(before)}`);
  const put = await outcome(() => store(client, name, body));
  if (put !== "OK") return [...problems, `put: ${put}`];

  // Stored at exactly ROOT/alice/<segments>, and nothing else is new.
  const segments = name.split("/");
  const path = join(fx.root, "alice", ...segments);
  const info = await Deno.lstat(path);
  if (!info.isFile || sha256(await Deno.readFile(path)) !== sha256(body)) problems.push(`not stored at ${path}`);
  const expected = segments.map((_, i) => `+root/alice/${segments.slice(0, i + 1).join("/")}`).sort();
  const changed = changes(baseline, await snapshot(fx.dir));
  if (JSON.stringify(changed) !== JSON.stringify(expected)) problems.push(`after put: ${changed.join(", ")}`);

  const got = await fetch(client, name);
  if (sha256(got) !== sha256(body)) problems.push("get returned other bytes");
  const peeked = await fetch(client, name, 3);
  if (sha256(peeked) !== sha256(body.subarray(0, 3))) problems.push("peek returned other bytes");
  const listed = await names(client, name);
  if (!listed.includes(name)) problems.push(`ls ${JSON.stringify(name)} shows ${JSON.stringify(listed)}`);
  const rm = await outcome(() => client.remove(name));
  if (rm !== "OK") problems.push(`rm: ${rm}`);
  const after = await outcome(() => fetch(client, name));
  if (after !== "NOT_FOUND") problems.push(`get after rm: ${after}`);
  return problems;
}

Deno.test("path safety: a name too long for a request frame is refused and the connection goes on", async () => {
  await using fx = await startServer();
  const client = await connect(fx);
  try {
    strictEqual(await outcome(() => fetch(client, nameOfBytes(100 * 1024))), "TOO_LARGE");
    strictEqual(await outcome(() => client.remove(nameOfBytes(100 * 1024))), "TOO_LARGE");
    deepStrictEqual(await names(client), []);
    deepStrictEqual(await listDir(join(fx.root, "alice")), []);
  } finally {
    await client.close();
  }
});

Deno.test("path safety: the CLI sends NFC, so both spellings of a name reach the same stored file", async () => {
  await using fx = await startServer();
  const env = fx.envFor("alice");
  const source = join(fx.local, "note.txt");
  await Deno.writeTextFile(source, "one file");
  const nfd = "cafe\u0301/r\u00e9sume\u0301.txt";
  const nfc = nfd.normalize("NFC");
  const put = await runCli(["put", source, nfd], { env });
  strictEqual(put.code, 0, put.stderr);
  deepStrictEqual(await listDir(join(fx.root, "alice")), [".dfos-partial", "caf\u00e9"]);
  deepStrictEqual(await listDir(join(fx.root, "alice", "caf\u00e9")), ["r\u00e9sum\u00e9.txt"]);
  const [byNfc, byNfd, ls] = await Promise.all([
    runCli(["get", nfc, "-"], { env }),
    runCli(["get", nfd, "-"], { env }),
    runCli(["ls", "--json"], { env }),
  ]);
  strictEqual(text(byNfc.stdout), "one file", byNfc.stderr);
  strictEqual(text(byNfd.stdout), "one file", byNfd.stderr);
  deepStrictEqual(JSON.parse(text(ls.stdout)).map((entry: { name: string }) => entry.name), [nfc]);
  // A second put in the other spelling replaces the same file rather than making a twin.
  await Deno.writeTextFile(source, "replaced");
  strictEqual((await runCli(["put", source, nfc], { env })).code, 0);
  strictEqual(text((await runCli(["get", nfd, "-"], { env })).stdout), "replaced");
  deepStrictEqual(await listDir(join(fx.root, "alice", "caf\u00e9")), ["r\u00e9sum\u00e9.txt"]);
});

Deno.test("path safety: the CLI stores look-alike names literally inside the user's folder", async () => {
  await using fx = await startServer();
  const outside = await plantBait(fx);
  const env = fx.envFor("alice");
  const source = join(fx.local, "payload.txt");
  await Deno.writeTextFile(source, "payload");
  const before = await snapshot(outside);
  const cases: [string, string[]][] = [
    ["\uff0e\uff0e\uff0fx", ["\uff0e\uff0e\uff0fx"]],
    ["%2e%2e/x", ["%2e%2e", "x"]],
    ["..\u2215outside\u2215x", ["..\u2215outside\u2215x"]],
    ["bob/secret.txt", ["bob", "secret.txt"]],
    ["C:x", ["C:x"]],
  ];
  for (const [name, stored] of cases) {
    const put = await runCli(["put", source, name], { env });
    strictEqual(put.code, 0, `put ${name}: ${put.stderr}`);
    strictEqual(await Deno.readTextFile(join(fx.root, "alice", ...stored)), "payload", name);
    const get = await runCli(["get", name, "-"], { env });
    strictEqual(text(get.stdout), "payload", `get ${name}: ${get.stderr}`);
  }
  deepStrictEqual(await listDir(fx.root), ["alice", "x"], "no other user's folder was made");
  deepStrictEqual(changes(before, await snapshot(outside)), []);
});

Deno.test("path safety: the CLI refuses hostile names before connecting and prints them escaped", async () => {
  // Nothing listens on this port: a command that tried to connect would exit 1.
  const env = { DFOS_SERVER: `127.0.0.1:${freePort()}`, DFOS_USER: "alice", DFOS_PASSWORD: "apple" };
  const cases: [string[], string][] = [
    [["get", "..\\x", "-"], 'name contains "\\" (use "/" between folders)'],
    [["peek", "\\\\server\\share"], 'name contains "\\" (use "/" between folders)'],
    [["rm", "C:\\x"], 'name contains "\\" (use "/" between folders)'],
    [["get", "a/../../b", "-"], 'segment ".." is not allowed'],
    [["peek", "/etc/passwd"], 'name is absolute (it starts with "/")'],
    [["rm", "\u001b[31mred"], "name contains a control character"],
    [["get", "\u001b]0;title\u0007", "-"], "name contains a control character"],
    [["peek", "a\rb\u009b"], "name contains a control character"],
    [["put", "-", `${PARTIAL_DIR}/x`], 'segments starting with ".dfos-" are reserved'],
    [["put", "-", "s".repeat(MAX_SEGMENT_BYTES + 1)], `a segment is longer than ${MAX_SEGMENT_BYTES} bytes`],
  ];
  const results = await Promise.all(cases.map(([args]) => runCli(args, { env, stdin: "" })));
  results.forEach((result, i) => {
    const [args, problem] = cases[i];
    const name = args[0] === "put" ? args[2] : args[1];
    strictEqual(result.code, 2, `${JSON.stringify(args)}: ${result.stderr}`);
    strictEqual(
      result.stderr,
      `dfos ${args[0]}: Cannot use remote name "${printableName(name)}": ${problem}\n` +
        `Run "dfos ${args[0]} --help" for usage.\n`,
    );
    // deno-lint-ignore no-control-regex
    doesNotMatch(result.stderr, /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/, "no raw control character");
    strictEqual(result.stdout.length, 0);
  });
});

Deno.test("path safety: ls prints planted names with escapes, controls and bidi marks never reach stdout raw", async () => {
  await using fx = await startServer();
  const env = fx.envFor("alice");
  const home = join(fx.root, "alice");
  await Deno.mkdir(home, { recursive: true });
  // Names no client can send, planted on the server's disk (an operator's mistake, or a local user).
  const planted = [
    "\u001b[31mred",
    "\u001b]0;owned\u0007title",
    "cr\rlf\nend",
    "del\u007f",
    "csi\u009b2J",
    "nel\u0085",
    "evil\u202etxt.exe",
    "iso\u2066late\u2069",
    "back\\slash",
    "mark\u200f\u061c",
    "line\u2028sep",
  ];
  for (const name of planted) await Deno.writeTextFile(join(home, name), name);
  // And a name that is not UTF-8 at all: Deno reads it as "bad-\ufffd", a name that does not exist, so it is
  // neither listed nor served.
  const touch = await new Deno.Command("sh", { args: ["-c", 'touch "$1/bad-$(printf "\\377")"', "sh", home] })
    .output();
  strictEqual(touch.code, 0);

  const [table, json] = await Promise.all([runCli(["ls"], { env }), runCli(["ls", "--json"], { env })]);
  strictEqual(table.code, 0, table.stderr);
  strictEqual(json.code, 0, json.stderr);
  // Nothing that moves the cursor, rings, rewrites the title or reorders the line: no C0 (but the line ends),
  // no DEL, no C1 (in UTF-8: C2 80..C2 9F), no bidi embedding, override, isolate or mark, no line separator.
  for (const [what, stdout] of [["ls", table.stdout], ["ls --json", json.stdout]] as const) {
    const raw = text(stdout);
    doesNotMatch(
      raw,
      // deno-lint-ignore no-control-regex
      /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/,
      `${what} printed a raw control or bidi character: ${JSON.stringify(raw)}`,
    );
    ok(!stdout.includes(0x1b), `${what}: no ESC byte`);
  }
  const lines = text(table.stdout).split("\n");
  strictEqual(lines.pop(), "");
  const shown = lines.map((line) => /^ *\d+ {2}\d{4}-\d\d-\d\d \d\d:\d\d UTC {2}(.*)$/.exec(line)?.[1]).sort();
  deepStrictEqual(shown, planted.map(printableName).sort());
  ok(shown.includes("\\x1b[31mred") && shown.includes("evil\\u202etxt.exe"), JSON.stringify(shown));
  // --json is still JSON, and its names are the names.
  deepStrictEqual(JSON.parse(text(json.stdout)).map((entry: { name: string }) => entry.name).sort(), planted.sort());
  // The server refuses to serve such names by name (they break the rules), and says so.
  const client = await connect(fx);
  try {
    strictEqual(await outcome(() => fetch(client, "\u001b[31mred")), "BAD_NAME");
    strictEqual(await outcome(() => fetch(client, "bad-\ufffd")), "NOT_FOUND");
    strictEqual(await outcome(() => fetch(client, "evil\u202etxt.exe")), "OK");
  } finally {
    await client.close();
  }
});

// ---------------------------------------------------------------------------
// Links planted inside the user's folder

Deno.test("path safety: symbolic links planted in the user's folder are never followed", async () => {
  await using fx = await startServer();
  const outside = await plantBait(fx);
  const bob = await connect(fx, "bob");
  await store(bob, "secret.txt", encoder.encode("bob's secret"));
  await bob.close();
  const home = join(fx.root, "alice");
  const client = await connect(fx);
  try {
    await store(client, "mine.txt", encoder.encode("alice's own"));
    await store(client, "a/b/keep.txt", encoder.encode("kept"));
    await Deno.symlink(join(outside, "secret.txt"), join(home, "file-link"));
    await Deno.symlink(join(fx.root, "bob", "secret.txt"), join(home, "bob-link"));
    await Deno.symlink("../bob/secret.txt", join(home, "relative-link"));
    await Deno.symlink(join(outside, "dir"), join(home, "dir-link"));
    await Deno.symlink("../bob", join(home, "bob-folder"));
    await Deno.symlink(join(outside, "dir"), join(home, "a", "b", "c"));
    await Deno.symlink(join(outside, "not-yet"), join(home, "dangling"));
    await Deno.symlink(join(outside, "not-yet-dir"), join(home, "dangling-dir"));
    const fifo = await new Deno.Command("mkfifo", { args: [join(home, "fifo")] }).output();
    strictEqual(fifo.code, 0);
    const before = await snapshot(fx.dir);

    const rows: [string, string][] = [
      ["file-link", refusedButPut(Status.FORBIDDEN)],
      ["bob-link", refusedButPut(Status.FORBIDDEN)],
      ["relative-link", refusedButPut(Status.FORBIDDEN)],
      ["dir-link/x", refusedEverywhere(Status.FORBIDDEN)],
      ["dir-link/new.txt", refusedEverywhere(Status.FORBIDDEN)],
      ["dir-link/sub/new.txt", refusedEverywhere(Status.FORBIDDEN)],
      ["bob-folder/secret.txt", refusedEverywhere(Status.FORBIDDEN)],
      ["a/b/c/x", refusedEverywhere(Status.FORBIDDEN)],
      ["a/b/c/new/deeper.txt", refusedEverywhere(Status.FORBIDDEN)],
      ["dangling/x", refusedEverywhere(Status.FORBIDDEN)],
      ["dangling-dir/x", refusedEverywhere(Status.FORBIDDEN)],
      ["fifo", refusedButPut(Status.FORBIDDEN)],
    ];
    const problems: string[] = [];
    for (const [name, expected] of rows) {
      const got = await refusals(client, name);
      if (got !== expected) problems.push(`${name}: ${got}`);
    }
    deepStrictEqual(problems, []);
    // The links' own names were replaced by the uploads (rename never writes through a link);
    // everything else is as it was, outside above all.
    const changed = changes(before, await snapshot(fx.dir));
    deepStrictEqual(changed, [
      "~root/alice/bob-link",
      "~root/alice/fifo",
      "~root/alice/file-link",
      "~root/alice/relative-link",
    ]);
    for (const name of ["file-link", "bob-link", "relative-link", "fifo"]) {
      ok((await Deno.lstat(join(home, name))).isFile, `${name} is now alice's own file`);
    }
    strictEqual(await Deno.readTextFile(join(outside, "secret.txt")), "outside secret");
    strictEqual(await Deno.readTextFile(join(fx.root, "bob", "secret.txt")), "bob's secret");
    deepStrictEqual(await listDir(join(outside, "dir")), ["x"]);
    // A put to a dangling link's name replaces the link; the link's target is never created.
    strictEqual(await outcome(() => store(client, "dangling", encoder.encode("mine"))), "OK");
    ok((await Deno.lstat(join(home, "dangling"))).isFile);
    deepStrictEqual(await listDir(outside), ["dir", "secret.txt", "x"]);
    // ls shows only real files, nothing behind a link.
    deepStrictEqual(await names(client), [
      "a/b/keep.txt",
      "bob-link",
      "dangling",
      "fifo",
      "file-link",
      "mine.txt",
      "relative-link",
    ]);
  } finally {
    await client.close();
  }
});

Deno.test("path safety: ls does not list links, what lies behind them, special files or hard-linked files", async () => {
  await using fx = await startServer();
  const outside = await plantBait(fx);
  const home = join(fx.root, "alice");
  const client = await connect(fx);
  try {
    await store(client, "mine.txt", encoder.encode("mine"));
    await Deno.symlink(join(outside, "secret.txt"), join(home, "file-link"));
    await Deno.symlink(join(outside, "dir"), join(home, "dir-link"));
    await Deno.link(join(outside, "secret.txt"), join(home, "hard-link"));
    strictEqual((await new Deno.Command("mkfifo", { args: [join(home, "fifo")] }).output()).code, 0);
    deepStrictEqual(await names(client), ["mine.txt"]);
    deepStrictEqual(await names(client, "dir-link/"), []);
    const ls = await runCli(["ls"], { env: fx.envFor("alice") });
    strictEqual(ls.code, 0, ls.stderr);
    deepStrictEqual(text(ls.stdout).split("\n").map((line) => line.split("  ").pop()), ["mine.txt", ""]);
  } finally {
    await client.close();
  }
});

Deno.test("path safety: a hard link to a file outside is never read; put and rm touch only the user's name", async () => {
  await using fx = await startServer();
  const outside = await plantBait(fx);
  const bob = await connect(fx, "bob");
  await store(bob, "secret.txt", encoder.encode("bob's secret"));
  await bob.close();
  const home = join(fx.root, "alice");
  const secret = join(outside, "secret.txt");
  const bobs = join(fx.root, "bob", "secret.txt");
  const client = await connect(fx);
  try {
    await Deno.link(secret, join(home, "hard"));
    await Deno.link(bobs, join(home, "bobs-hard"));
    await Deno.mkdir(join(home, "deep"));
    await Deno.link(secret, join(home, "deep", "hard"));
    strictEqual((await Deno.lstat(secret)).nlink, 3);
    const before = await snapshot(outside);

    for (const name of ["hard", "bobs-hard", "deep/hard"]) {
      strictEqual(await outcome(() => fetch(client, name)), "FORBIDDEN", `get ${name}`);
      strictEqual(await outcome(() => fetch(client, name, 3)), "FORBIDDEN", `peek ${name}`);
    }
    const get = await runCli(["get", "hard", "-"], { env: fx.envFor("alice") });
    strictEqual(get.code, 1);
    strictEqual(get.stdout.length, 0);
    doesNotMatch(get.stderr, /outside secret/);

    // put replaces the name (temporary file, then rename): the other name's content is untouched.
    await store(client, "hard", encoder.encode("alice's new content"));
    strictEqual(await Deno.readTextFile(secret), "outside secret");
    strictEqual(text(await fetch(client, "hard")), "alice's new content");
    strictEqual((await Deno.lstat(join(home, "hard"))).nlink, 1);
    // rm unlinks only the name inside the user's folder.
    deepStrictEqual(await client.remove("bobs-hard"), { name: "bobs-hard", size: "bob's secret".length });
    deepStrictEqual(await client.remove("deep/hard"), { name: "deep/hard", size: "outside secret".length });
    strictEqual(await Deno.readTextFile(bobs), "bob's secret");
    strictEqual(await Deno.readTextFile(secret), "outside secret");
    strictEqual((await Deno.lstat(secret)).nlink, 1);
    deepStrictEqual(await listDir(home), [".dfos-partial", "hard"]);
    deepStrictEqual(changes(before, await snapshot(outside)), []);
  } finally {
    await client.close();
  }
});

Deno.test("path safety: a user folder that is a symbolic link refuses login and every request", async () => {
  await using fx = await startServer();
  const outside = await plantBait(fx);
  const before = await snapshot(outside);
  // Before login: the folder is a link from the start.
  await Deno.symlink(outside, join(fx.root, "alice"));
  strictEqual(await outcome(() => connect(fx)), "FORBIDDEN");
  const cli = await runCli(["get", "secret.txt", "-"], { env: fx.envFor("alice") });
  strictEqual(cli.code, 1);
  strictEqual(cli.stdout.length, 0);

  // After login: bob's folder is replaced by a link while he is connected.
  const bob = await connect(fx, "bob");
  try {
    await store(bob, "keep.txt", encoder.encode("kept"));
    await Deno.rename(join(fx.root, "bob"), join(fx.root, "bob.old"));
    await Deno.symlink(outside, join(fx.root, "bob"));
    deepStrictEqual(await refusals(bob, "secret.txt"), refusedEverywhere(Status.FORBIDDEN));
    deepStrictEqual(await refusals(bob, "dir/x"), refusedEverywhere(Status.FORBIDDEN));
    strictEqual(await outcome(() => names(bob)), "FORBIDDEN");
  } finally {
    await bob.close();
  }
  deepStrictEqual(changes(before, await snapshot(outside)), []);
});

// ---------------------------------------------------------------------------
// Links swapped in while an upload is under way

/** A body of `pieces` MiB sent a piece at a time, held after the first `held` pieces until released. */
function slowBody(pieces: number, held: number) {
  const body = randomBytes(pieces * MiB);
  let release!: () => void;
  const gate = new Promise<void>((resolve) => release = resolve);
  async function* chunks(): AsyncGenerator<Uint8Array> {
    for (let piece = 0; piece < pieces; piece++) {
      if (piece === held) await gate;
      yield body.subarray(piece * MiB, (piece + 1) * MiB);
    }
  }
  return { body, chunks: chunks(), release };
}

interface SwapCase {
  fx: Fixture;
  /** ROOT/alice. */
  home: string;
  /** The bait folder outside the root. */
  outside: string;
  /** The upload's temporary file in .dfos-partial (its base name). */
  temp: string;
}

/**
 * Starts an upload of several MiB to `name`, lets `swap` change the disk while
 * it is held in flight, then lets it finish (or, with `badSize`, fail at its
 * end). Returns the outcome of the put.
 */
async function uploadWithSwap(
  fx: Fixture,
  options: { name: string; badSize?: boolean; setUp?: (client: DfosClient) => Promise<void> },
  swap: (swapCase: SwapCase) => Promise<void>,
): Promise<string> {
  const outside = join(fx.dir, "outside");
  const home = join(fx.root, "alice");
  const client = await connect(fx);
  try {
    await options.setUp?.(client);
    const { body, chunks, release } = slowBody(6, 2);
    const putting = outcome(() =>
      client.put(options.name, chunks, { size: options.badSize ? body.length + 1 : body.length })
    );
    const partial = join(home, PARTIAL_DIR);
    await waitFor(async () => {
      for (const entry of await listDir(partial)) {
        if ((await Deno.stat(join(partial, entry))).size > 0) return true;
      }
      return false;
    }, "the upload to start");
    const [temp] = await listDir(partial);
    await delay(20);
    await swap({ fx, home, outside, temp });
    release();
    return await putting;
  } finally {
    await client.close();
  }
}

Deno.test("path safety: a link swapped in for the target's folder during an upload stops it; nothing goes outside", async () => {
  await using fx = await startServer();
  const outside = await plantBait(fx);
  const before = await snapshot(outside);
  const result = await uploadWithSwap(fx, {
    name: "docs/big.bin",
    setUp: (client) => store(client, "docs/keep.txt", encoder.encode("kept")),
  }, async ({ home, outside }) => {
    await Deno.rename(join(home, "docs"), join(home, "docs.old"));
    await Deno.symlink(outside, join(home, "docs"));
  });
  strictEqual(result, "FORBIDDEN");
  deepStrictEqual(changes(before, await snapshot(outside)), []);
  deepStrictEqual(await listDir(join(fx.root, "alice", "docs.old")), ["keep.txt"]);
  deepStrictEqual(await listDir(join(fx.root, "alice", PARTIAL_DIR)), [], "the temporary file was removed");
});

Deno.test("path safety: the user's folder swapped for a link to a folder outside during an upload stops it", async () => {
  await using fx = await startServer();
  const outside = await plantBait(fx);
  const before = await snapshot(outside);
  const result = await uploadWithSwap(fx, { name: "sub/big.bin" }, async ({ home, outside }) => {
    await Deno.rename(home, join(fx.root, "alice.old"));
    await Deno.symlink(outside, home);
  });
  strictEqual(result, "FORBIDDEN");
  deepStrictEqual(changes(before, await snapshot(outside)), [], "no folder or file was made outside");
  deepStrictEqual(await listDir(join(fx.root, "alice.old")), [PARTIAL_DIR]);
});

Deno.test("path safety: the user's folder moved outside the root and linked back during an upload stops it", async () => {
  await using fx = await startServer();
  const outside = await plantBait(fx);
  const moved = join(fx.dir, "moved-home");
  const result = await uploadWithSwap(fx, {
    name: "big.bin",
    setUp: (client) => store(client, "keep.txt", encoder.encode("kept")),
  }, async ({ home }) => {
    await Deno.rename(home, moved);
    await Deno.symlink(moved, home);
  });
  strictEqual(result, "FORBIDDEN");
  // The upload did not land in the folder now outside the root, and its temporary file is gone.
  deepStrictEqual(await listDir(moved), [PARTIAL_DIR, "keep.txt"]);
  deepStrictEqual(await listDir(join(moved, PARTIAL_DIR)), []);
  deepStrictEqual(await listDir(outside), ["dir", "secret.txt", "x"]);
});

for (const badSize of [false, true]) {
  const end = badSize ? "fails at its end" : "completes";
  Deno.test(`path safety: .dfos-partial swapped for a link during an upload that ${end}: no outside file is moved in or deleted`, async () => {
    await using fx = await startServer();
    const outside = await plantBait(fx);
    const attacker = join(fx.dir, "attacker");
    await Deno.mkdir(attacker);
    let bait = "";
    const result = await uploadWithSwap(fx, { name: "big.bin", badSize }, async ({ home, temp }) => {
      // A folder outside holding a file of the very name the upload's temporary file has.
      bait = join(attacker, temp);
      await Deno.writeTextFile(bait, "an outside file");
      await Deno.rename(join(home, PARTIAL_DIR), join(fx.dir, "moved-partial"));
      await Deno.symlink(attacker, join(home, PARTIAL_DIR));
    });
    strictEqual(result, badSize ? "INTEGRITY" : "FORBIDDEN");
    strictEqual(await Deno.readTextFile(bait), "an outside file", "the outside file is where it was");
    deepStrictEqual(await listDir(attacker), [bait.slice(attacker.length + 1)]);
    deepStrictEqual(await listDir(join(fx.root, "alice")), [PARTIAL_DIR], "nothing was stored");
    deepStrictEqual(await listDir(outside), ["dir", "secret.txt", "x"]);
  });
}

Deno.test("path safety: a link swapped in for the target name itself during an upload is replaced, not written through", async () => {
  await using fx = await startServer();
  const outside = await plantBait(fx);
  const before = await snapshot(outside);
  const result = await uploadWithSwap(fx, {
    name: "big.bin",
    setUp: (client) => store(client, "big.bin", encoder.encode("previous version")),
  }, async ({ home, outside }) => {
    await Deno.remove(join(home, "big.bin"));
    await Deno.symlink(join(outside, "secret.txt"), join(home, "big.bin"));
  });
  strictEqual(result, "OK");
  const stored = await Deno.readFile(join(fx.root, "alice", "big.bin"));
  strictEqual(stored.length, 6 * MiB);
  ok(!(await Deno.lstat(join(fx.root, "alice", "big.bin"))).isSymlink);
  deepStrictEqual(changes(before, await snapshot(outside)), []);
});
