/**
 * End-to-end tests of the `dfos` command line: the real CLI as a subprocess
 * against a real server started in-process on port 0.
 *
 * @module
 */

import { deepStrictEqual, match, strictEqual } from "node:assert/strict";
import { join } from "node:path";
import { Channel } from "../shared/channel.ts";
import type { MessageOf } from "../shared/messages.ts";
import {
  authMessage,
  formatServerFinal,
  formatServerFirst,
  parseClientFinal,
  parseClientFirst,
  serverSignature,
} from "../shared/scram.ts";
import { makeSecret } from "../server/auth/scram_secret.ts";
import {
  type CliResult,
  freePort,
  listDir,
  randomBytes,
  runCli,
  sha256,
  sha256File,
  startServer,
  storeFile,
  text,
  USERS,
} from "./_fixture.ts";

const MiB = 1024 * 1024;

/** Fails with the command's standard error unless it exited 0 and printed nothing on standard error. */
function assertOk(result: CliResult, what: string): void {
  strictEqual(result.code, 0, `${what}: exit code ${result.code}, stderr: ${result.stderr}`);
  strictEqual(result.stderr, "", `${what}: unexpected standard error`);
}

/** Names in `dir` that look like the client's download temporaries. */
async function partFiles(dir: string): Promise<string[]> {
  return (await listDir(dir)).filter((name) => name.endsWith(".dfos-part"));
}

Deno.test("dfos put and get keep every byte for sizes around the 1 MiB frame boundary", async () => {
  await using fx = await startServer();
  const env = fx.envFor("alice");
  for (const size of [0, 1, MiB - 1, MiB, MiB + 1, 4 * MiB + 3]) {
    const data = randomBytes(size);
    const source = join(fx.local, `up-${size}.bin`);
    const target = join(fx.local, `down-${size}.bin`);
    await Deno.writeFile(source, data);
    assertOk(await runCli(["put", source, `sizes/${size}.bin`], { env }), `put of ${size} bytes`);
    strictEqual(await sha256File(join(fx.root, "alice", "sizes", `${size}.bin`)), sha256(data), `stored ${size}`);
    const got = await runCli(["get", `sizes/${size}.bin`, target], { env });
    assertOk(got, `get of ${size} bytes`);
    strictEqual(got.stdout.length, 0);
    strictEqual((await Deno.stat(target)).size, size);
    strictEqual(await sha256File(target), sha256(data), `downloaded ${size}`);
  }
  deepStrictEqual(await partFiles(fx.local), []);
});

Deno.test("dfos put and get --verify check the body with SHA-256 end to end", async () => {
  await using fx = await startServer();
  const env = fx.envFor("alice");
  const data = randomBytes(3 * MiB + 17);
  const source = join(fx.local, "verified.bin");
  const target = join(fx.local, "verified.copy");
  await Deno.writeFile(source, data);
  assertOk(await runCli(["put", "--verify", source], { env }), "put --verify");
  strictEqual(await sha256File(join(fx.root, "alice", "verified.bin")), sha256(data));
  assertOk(await runCli(["get", "verified.bin", target, "--verify"], { env }), "get --verify");
  strictEqual(await sha256File(target), sha256(data));

  // The request names the algorithm: a server that answers with SHA-256 is right for --verify only.
  const small = new TextEncoder().encode("hello");
  const requested: string[] = [];
  for (const verify of [true, false]) {
    const fake = fakeServer(async (channel, request) => {
      requested.push(request.digest);
      await channel.send({ type: "file", name: "f.txt", size: small.length, mtime: 0 });
      await channel.send({ type: "data", chunk: small });
      await channel.send({ type: "end", size: small.length, algorithm: "sha256", digest: sha256(small) });
    });
    const args = ["get", "f.txt", join(fx.local, "f.txt"), ...(verify ? ["--verify"] : [])];
    const result = await runCli(args, { env: { ...env, DFOS_SERVER: `127.0.0.1:${fake.port}` } });
    await fake.served;
    strictEqual(result.code, verify ? 0 : 1, result.stderr);
  }
  deepStrictEqual(requested, ["sha256", "crc32"]);
});

Deno.test("dfos put and get keep every byte of a 64 MiB file", async () => {
  await using fx = await startServer();
  const env = fx.envFor("alice");
  const source = join(fx.local, "big.bin");
  const target = join(fx.local, "big.copy");
  const hash = await writeRandomFile(source, 64 * MiB);
  assertOk(await runCli(["put", source], { env }), "put of 64 MiB");
  strictEqual(await sha256File(join(fx.root, "alice", "big.bin")), hash);
  assertOk(await runCli(["get", "big.bin", target], { env }), "get of 64 MiB");
  strictEqual((await Deno.stat(target)).size, 64 * MiB);
  strictEqual(await sha256File(target), hash);
});

/** Writes `size` random bytes to `path` in 4 MiB pieces; returns their SHA-256. */
async function writeRandomFile(path: string, size: number): Promise<string> {
  const { createHash } = await import("node:crypto");
  const hash = createHash("sha256");
  using file = await Deno.open(path, { write: true, createNew: true });
  for (let written = 0; written < size;) {
    const piece = randomBytes(Math.min(4 * MiB, size - written));
    hash.update(piece);
    for (let offset = 0; offset < piece.length;) offset += await file.write(piece.subarray(offset));
    written += piece.length;
  }
  return hash.digest("hex");
}

Deno.test("dfos put - uploads standard input and get - writes to standard output", async () => {
  await using fx = await startServer();
  const env = fx.envFor("alice");
  const data = randomBytes(2 * MiB + 5);
  const put = await runCli(["put", "-", "piped/in.bin"], { env, stdin: data });
  assertOk(put, "put -");
  strictEqual(put.stdout.length, 0);
  strictEqual(await sha256File(join(fx.root, "alice", "piped", "in.bin")), sha256(data));

  const get = await runCli(["get", "piped/in.bin", "-"], { env });
  assertOk(get, "get -");
  strictEqual(get.stdout.length, data.length);
  strictEqual(sha256(get.stdout), sha256(data));
  deepStrictEqual(await listDir(fx.local), [], "get - wrote no local file");

  const empty = await runCli(["put", "-", "piped/empty.bin"], { env, stdin: new Uint8Array(0) });
  assertOk(empty, "put - of nothing");
  strictEqual((await Deno.stat(join(fx.root, "alice", "piped", "empty.bin"))).size, 0);

  const noRemote = await runCli(["put", "-"], { env, stdin: "abc" });
  strictEqual(noRemote.code, 2);
  strictEqual(noRemote.stderr, 'dfos put: put - needs a REMOTE name\nRun "dfos put --help" for usage.\n');
});

Deno.test("dfos put stores names with folders and get saves them by base name, into folders too", async () => {
  await using fx = await startServer();
  const env = fx.envFor("alice");
  const source = join(fx.local, "source.txt");
  await Deno.writeTextFile(source, "Dear diary,\n");
  assertOk(await runCli(["put", source, "notes/2026/today.txt"], { env }), "put into folders");
  strictEqual(await Deno.readTextFile(join(fx.root, "alice", "notes", "2026", "today.txt")), "Dear diary,\n");

  // No LOCAL: the base name, in the working folder.
  const cwd = join(fx.local, "here");
  await Deno.mkdir(cwd);
  assertOk(await runCli(["get", "notes/2026/today.txt"], { env, cwd }), "get to the working folder");
  deepStrictEqual(await listDir(cwd), ["today.txt"]);
  strictEqual(await Deno.readTextFile(join(cwd, "today.txt")), "Dear diary,\n");

  // LOCAL is an existing folder: the file goes inside it.
  const folder = join(fx.local, "inbox");
  await Deno.mkdir(folder);
  assertOk(await runCli(["get", "notes/2026/today.txt", folder], { env }), "get into a folder");
  deepStrictEqual(await listDir(folder), ["today.txt"]);
  strictEqual(await Deno.readTextFile(join(folder, "today.txt")), "Dear diary,\n");

  // put without REMOTE uses LOCAL's base name.
  assertOk(await runCli(["put", source], { env }), "put without REMOTE");
  strictEqual(await Deno.readTextFile(join(fx.root, "alice", "source.txt")), "Dear diary,\n");

  // Names are sent in Unicode NFC, whichever form they were typed in.
  const decomposed = "cafe\u0301.txt";
  assertOk(await runCli(["put", source, decomposed], { env }), "put of an NFD name");
  deepStrictEqual(
    (await listDir(join(fx.root, "alice"))).filter((name) => name.startsWith("caf")),
    [decomposed.normalize("NFC")],
  );
  const nfd = await runCli(["get", decomposed, "-"], { env });
  assertOk(nfd, "get of an NFD name");
  strictEqual(text(nfd.stdout), "Dear diary,\n");

  // A file cannot replace a folder.
  const clash = await runCli(["put", source, "notes/2026"], { env });
  strictEqual(clash.code, 1);
  strictEqual(clash.stderr, 'dfos put: Cannot store "notes/2026": it is a folder\n');
  strictEqual(await Deno.readTextFile(join(fx.root, "alice", "notes", "2026", "today.txt")), "Dear diary,\n");
  deepStrictEqual(await listDir(join(fx.root, "alice", ".dfos-partial")), []);
});

Deno.test("dfos peek shows a short file whole, the first 1024 bytes of a longer one, or --bytes N", async () => {
  await using fx = await startServer();
  const env = fx.envFor("alice");
  const short = randomBytes(1000);
  const long = randomBytes(5000);
  await storeFile(fx, "short.bin", short, "alice");
  await storeFile(fx, "long.bin", long, "alice");

  const [whole, first, some, none, exact, bad] = await Promise.all([
    runCli(["peek", "short.bin"], { env }),
    runCli(["peek", "long.bin"], { env }),
    runCli(["peek", "long.bin", "--bytes", "10"], { env }),
    runCli(["peek", "long.bin", "-n", "0"], { env }),
    runCli(["peek", "short.bin", "--bytes", "1000"], { env }),
    runCli(["peek", "long.bin", "--bytes", "ten"], { env }),
  ]);
  assertOk(whole, "peek of a short file");
  deepStrictEqual(whole.stdout, short);
  assertOk(first, "peek of a long file");
  strictEqual(first.stdout.length, 1024);
  deepStrictEqual(first.stdout, long.subarray(0, 1024));
  assertOk(some, "peek --bytes 10");
  deepStrictEqual(some.stdout, long.subarray(0, 10));
  assertOk(none, "peek -n 0");
  strictEqual(none.stdout.length, 0);
  assertOk(exact, "peek --bytes equal to the size");
  deepStrictEqual(exact.stdout, short);
  strictEqual(bad.code, 2);
  strictEqual(
    bad.stderr,
    `dfos peek: --bytes takes a size in bytes ("4096", or with K, M, G or T: "512K", "10M", "2G"), not "ten"\n` +
      'Run "dfos peek --help" for usage.\n',
  );
});

Deno.test("dfos rm deletes several names in one command and drops emptied folders", async () => {
  await using fx = await startServer();
  const env = fx.envFor("alice");
  for (const name of ["a.txt", "b.txt", "keep.txt", "deep/er/c.txt"]) {
    await storeFile(fx, name, new TextEncoder().encode(name), "alice");
  }
  assertOk(await runCli(["rm", "a.txt", "deep/er/c.txt", "b.txt"], { env }), "rm of three names");
  deepStrictEqual(await listDir(join(fx.root, "alice")), [".dfos-partial", "keep.txt"]);
});

Deno.test("dfos rm of a missing name exits 4, reports it, and still deletes the others", async () => {
  await using fx = await startServer();
  const env = fx.envFor("alice");
  for (const name of ["one.txt", "two.txt", "three.txt"]) await storeFile(fx, name, new Uint8Array([1, 2, 3]), "alice");
  const result = await runCli(["rm", "one.txt", "missing.txt", "two.txt"], { env });
  strictEqual(result.code, 4);
  strictEqual(
    result.stderr,
    'dfos rm: missing.txt: Cannot find "missing.txt": no such file\n' +
      "dfos rm: 1 of 3 files could not be deleted\n",
  );
  deepStrictEqual(await listDir(join(fx.root, "alice")), [".dfos-partial", "three.txt"]);
});

Deno.test("dfos ls lists names sorted with their sizes, as text or --json, filtered by prefix", async () => {
  await using fx = await startServer();
  const env = fx.envFor("alice");
  const files: Record<string, number> = {
    "b.txt": 3,
    "a.txt": 12345,
    "a/z.txt": 0,
    "a-b.txt": 7,
    "A.txt": 1,
    "notes/2026/today.txt": 42,
    "notes/x.bin": 100000,
  };
  for (const [name, size] of Object.entries(files)) await storeFile(fx, name, randomBytes(size), "alice");
  const sorted = ["A.txt", "a-b.txt", "a.txt", "a/z.txt", "b.txt", "notes/2026/today.txt", "notes/x.bin"];
  const mtimes: Record<string, Date> = {};
  for (const name of sorted) mtimes[name] = (await Deno.stat(join(fx.root, "alice", name))).mtime!;

  const [plain, json, prefixed, prefixedJson, nothing, nothingJson] = await Promise.all([
    runCli(["ls"], { env }),
    runCli(["ls", "--json"], { env }),
    runCli(["ls", "a"], { env }),
    runCli(["ls", "notes/", "--json"], { env }),
    runCli(["ls", "zzz"], { env }),
    runCli(["ls", "zzz", "--json"], { env }),
  ]);
  const table = (names: string[]) => {
    const width = Math.max(...names.map((name) => String(files[name]).length));
    return names.map((name) =>
      `${String(files[name]).padStart(width)}  ${
        mtimes[name].toISOString().slice(0, 16).replace("T", " ")
      } UTC  ${name}\n`
    ).join("");
  };
  const rows = (names: string[]) =>
    names.map((name) => ({ name, size: files[name], mtime: mtimes[name].toISOString() }));

  assertOk(plain, "ls");
  strictEqual(text(plain.stdout), table(sorted));
  assertOk(json, "ls --json");
  deepStrictEqual(JSON.parse(text(json.stdout)), rows(sorted));
  assertOk(prefixed, "ls a");
  strictEqual(text(prefixed.stdout), table(["a-b.txt", "a.txt", "a/z.txt"]));
  assertOk(prefixedJson, "ls notes/ --json");
  deepStrictEqual(JSON.parse(text(prefixedJson.stdout)), rows(["notes/2026/today.txt", "notes/x.bin"]));
  assertOk(nothing, "ls zzz");
  strictEqual(text(nothing.stdout), "");
  assertOk(nothingJson, "ls zzz --json");
  deepStrictEqual(JSON.parse(text(nothingJson.stdout)), []);
});

Deno.test("dfos ls pages through more than one LISTING of files", async () => {
  await using fx = await startServer();
  // Placed on the disk directly: 2,500 uploads would take longer than the listing under test.
  const dir = join(fx.root, "alice", "many");
  await Deno.mkdir(dir, { recursive: true });
  const names: string[] = [];
  for (let i = 0; i < 2500; i++) {
    const name = `f${String(i).padStart(5, "0")}`;
    names.push(`many/${name}`);
    await Deno.writeFile(join(dir, name), new Uint8Array(i % 7));
  }
  const result = await runCli(["ls", "--json"], { env: fx.envFor("alice") });
  assertOk(result, "ls of 2500 files");
  const entries = JSON.parse(text(result.stdout)) as { name: string; size: number }[];
  deepStrictEqual(entries.map((entry) => entry.name), names);
  deepStrictEqual(entries.map((entry) => entry.size), names.map((_, i) => i % 7));
});

Deno.test("dfos exits 3 with the same message for a wrong password and for an unknown user", async () => {
  await using fx = await startServer();
  const [wrongPassword, unknownUser, colonPassword, colonPrefix] = await Promise.all([
    runCli(["ls"], { env: fx.envFor("alice", "pear") }),
    runCli(["ls"], { env: fx.envFor("mallory", "apple") }),
    runCli(["ls"], { env: fx.envFor("carol") }),
    runCli(["ls"], { env: fx.envFor("carol", "pass") }),
  ]);
  strictEqual(wrongPassword.code, 3);
  strictEqual(unknownUser.code, 3);
  strictEqual(
    wrongPassword.stderr,
    "dfos ls: Authentication failed: unknown user or wrong password (2 attempts left)\n",
  );
  strictEqual(unknownUser.stderr, wrongPassword.stderr);
  strictEqual(wrongPassword.stdout.length + unknownUser.stdout.length, 0);
  // A password may contain ":" (only the first ":" of a line separates the user).
  assertOk(colonPassword, "login of carol with a password containing colons");
  strictEqual(colonPrefix.code, 3);
  deepStrictEqual(await listDir(fx.root), ["carol"], "no folder for a user that failed to log in");
});

Deno.test("dfos get of a missing remote exits 4 and leaves the local file untouched", async () => {
  await using fx = await startServer();
  const env = fx.envFor("alice");
  const local = join(fx.local, "precious.txt");
  await Deno.writeTextFile(local, "do not lose me");
  const before = await Deno.stat(local);
  const [get, peek, rm] = await Promise.all([
    runCli(["get", "nothing.txt", local], { env }),
    runCli(["peek", "nothing.txt"], { env }),
    runCli(["rm", "nothing.txt"], { env }),
  ]);
  strictEqual(get.code, 4);
  strictEqual(get.stderr, 'dfos get: Cannot find "nothing.txt": no such file\n');
  strictEqual(peek.code, 4);
  strictEqual(peek.stdout.length, 0);
  strictEqual(rm.code, 4);
  strictEqual(await Deno.readTextFile(local), "do not lose me");
  strictEqual((await Deno.stat(local)).mtime?.getTime(), before.mtime?.getTime());
  deepStrictEqual(await listDir(fx.local), ["precious.txt"], "no temporary file left");
});

/**
 * Logs a fixture user in with SCRAM-SHA-256 as a real server would, from the
 * password (the client checks the signature), without checking the proof.
 */
async function fakeLogin(channel: Channel): Promise<void> {
  const first = parseClientFirst(text((await channel.expect("auth")).data));
  const secret = await makeSecret(USERS[first.user] ?? "");
  const serverFirst = formatServerFirst({
    nonce: `${first.nonce}fake`,
    salt: secret.salt,
    iterations: secret.iterations,
  });
  await channel.send({ type: "auth-continue", data: new TextEncoder().encode(serverFirst) });
  const final = parseClientFinal(text((await channel.expect("auth-response")).data));
  const signature = await serverSignature(secret.serverKey, authMessage(first.bare, serverFirst, final.withoutProof));
  await channel.send({
    type: "auth-ok",
    user: first.user,
    data: new TextEncoder().encode(formatServerFinal(signature)),
  });
}

/** A one-connection fake server that logs any fixture user in and answers one GET with `answer`. */
function fakeServer(
  answer: (channel: Channel, request: MessageOf<"get">) => Promise<void>,
): { port: number; served: Promise<void> } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  const served = (async () => {
    const conn = await listener.accept();
    listener.close();
    const channel = new Channel(conn);
    try {
      await channel.expect("hello");
      await channel.send({ type: "welcome", version: 1, agent: "fake/1", mechanisms: ["SCRAM-SHA-256"] });
      await fakeLogin(channel);
      await answer(channel, await channel.expect("get"));
      while (await channel.receive().catch(() => null) !== null) {
        // wait for the client to leave
      }
    } finally {
      channel.abort();
    }
  })();
  return { port, served };
}

Deno.test("dfos get of a corrupt or cut-off body fails and leaves the local file untouched", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dfos_test_" });
  try {
    const local = join(dir, "precious.txt");
    await Deno.writeTextFile(local, "do not lose me");
    const env = { DFOS_USER: "alice", DFOS_PASSWORD: "apple" };

    const corrupt = fakeServer(async (channel) => {
      await channel.send({ type: "file", name: "f.txt", size: 5, mtime: 0 });
      await channel.send({ type: "data", chunk: new TextEncoder().encode("hello") });
      await channel.send({ type: "end", size: 5, algorithm: "crc32", digest: "00000000" });
    });
    const first = await runCli(["get", "f.txt", local], { env: { ...env, DFOS_SERVER: `127.0.0.1:${corrupt.port}` } });
    await corrupt.served;
    strictEqual(first.code, 1);
    strictEqual(first.stderr, "dfos get: Body is corrupt: crc32 check does not match\n");
    strictEqual(await Deno.readTextFile(local), "do not lose me");
    deepStrictEqual(await listDir(dir), ["precious.txt"]);

    const cut = fakeServer(async (channel) => {
      await channel.send({ type: "file", name: "f.txt", size: 3 * MiB, mtime: 0 });
      await channel.send({ type: "data", chunk: randomBytes(MiB) });
      await channel.close();
    });
    const second = await runCli(["get", "f.txt", local], { env: { ...env, DFOS_SERVER: `127.0.0.1:${cut.port}` } });
    await cut.served;
    strictEqual(second.code, 1);
    strictEqual(second.stderr, "dfos get: Connection closed in the middle of a body\n");
    strictEqual(await Deno.readTextFile(local), "do not lose me");
    deepStrictEqual(await listDir(dir), ["precious.txt"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("dfos refuses bad remote names with exit 2 before connecting", async () => {
  // Nothing listens on this port: a command that tried to connect would exit 1.
  const env = { DFOS_SERVER: `127.0.0.1:${freePort()}`, DFOS_USER: "alice", DFOS_PASSWORD: "apple" };
  const cases: [string[], string, string][] = [
    [["get", "../x"], "../x", 'segment ".." is not allowed'],
    [["peek", "/etc/passwd"], "/etc/passwd", 'name is absolute (it starts with "/")'],
    [["rm", "ok.txt", "a//b"], "a//b", 'name has an empty segment ("//" or a "/" at the end)'],
    [["put", "-", "a/./b"], "a/./b", 'segment "." is not allowed'],
    [["get", ".dfos-partial/x"], ".dfos-partial/x", 'segments starting with ".dfos-" are reserved'],
  ];
  const results = await Promise.all(cases.map(([args]) => runCli(args, { env, stdin: "" })));
  results.forEach((result, i) => {
    const [args, name, problem] = cases[i];
    strictEqual(result.code, 2, `${args.join(" ")}: ${result.stderr}`);
    strictEqual(
      result.stderr,
      `dfos ${args[0]}: Cannot use remote name "${name}": ${problem}\nRun "dfos ${args[0]} --help" for usage.\n`,
    );
  });
});

Deno.test("dfos put of a missing local file or of a folder fails before connecting", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dfos_test_" });
  try {
    const env = { DFOS_SERVER: `127.0.0.1:${freePort()}`, DFOS_USER: "alice", DFOS_PASSWORD: "apple" };
    const missing = join(dir, "missing.txt");
    const [file, folder] = await Promise.all([runCli(["put", missing], { env }), runCli(["put", dir], { env })]);
    strictEqual(file.code, 1);
    match(file.stderr, new RegExp(`^dfos put: Cannot read "${missing.replaceAll(".", "\\.")}": `));
    strictEqual(folder.code, 2);
    strictEqual(
      folder.stderr,
      `dfos put: Cannot upload "${dir}": it is not a file\nRun "dfos put --help" for usage.\n`,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("dfos without DFOS_PASSWORD and with standard input not a terminal says how to give one", async () => {
  const env = { DFOS_SERVER: `127.0.0.1:${freePort()}`, DFOS_USER: "alice" };
  const [fromNull, fromPipe] = await Promise.all([
    runCli(["ls"], { env }),
    runCli(["get", "a.txt", "-"], { env, stdin: "apple\n" }),
  ]);
  strictEqual(fromNull.code, 2);
  strictEqual(
    fromNull.stderr,
    'dfos ls: No password given: set DFOS_PASSWORD, or run from a terminal to be asked\nRun "dfos ls --help" for usage.\n',
  );
  strictEqual(fromPipe.code, 2);
  match(fromPipe.stderr, /^dfos get: No password given: set DFOS_PASSWORD/);
  strictEqual(fromPipe.stdout.length, 0);
});

Deno.test("dfos without a user exits 2", async () => {
  const env = { DFOS_SERVER: `127.0.0.1:${freePort()}`, DFOS_PASSWORD: "apple" };
  const [none, empty] = await Promise.all([
    runCli(["ls"], { env }),
    runCli(["rm", "x"], { env: { ...env, DFOS_USER: "" } }),
  ]);
  strictEqual(none.code, 2);
  strictEqual(
    none.stderr,
    'dfos ls: No user given: use --user NAME or set DFOS_USER\nRun "dfos ls --help" for usage.\n',
  );
  strictEqual(empty.code, 2);
  match(empty.stderr, /^dfos rm: No user given/);
});

Deno.test("dfos against a server that is not running exits 1 and says it cannot connect", async () => {
  const port = freePort();
  const env = { DFOS_SERVER: `127.0.0.1:${port}`, DFOS_USER: "alice", DFOS_PASSWORD: "apple" };
  const [ls, flags] = await Promise.all([
    runCli(["ls"], { env }),
    runCli(["get", "a.txt", "-", "--server", `127.0.0.1:${port}`, "--user", "bob"], {
      env: { DFOS_PASSWORD: "banana" },
    }),
  ]);
  strictEqual(ls.code, 1);
  strictEqual(
    ls.stderr,
    `dfos ls: Cannot connect to 127.0.0.1:${port}: connection refused (is "dfos serve" running there?)\n`,
  );
  strictEqual(flags.code, 1);
  match(flags.stderr, new RegExp(`^dfos get: Cannot connect to 127\\.0\\.0\\.1:${port}: `));
});

Deno.test("dfos --help lists the subcommands and each subcommand's --help exits 0", async () => {
  const subcommands = ["serve", "put", "get", "peek", "rm", "ls"];
  const [help, ...each] = await Promise.all([
    runCli(["--help"]),
    ...subcommands.map((name) => runCli([name, "--help"])),
  ]);
  assertOk(help, "dfos --help");
  const usage = text(help.stdout);
  match(usage, /^Usage: dfos COMMAND/);
  for (const name of subcommands) match(usage, new RegExp(`^  ${name} +\\S`, "m"), `--help lists ${name}`);
  each.forEach((result, i) => {
    strictEqual(result.code, 0, `${subcommands[i]} --help: ${result.stderr}`);
    match(text(result.stdout), new RegExp(`^Usage: dfos ${subcommands[i]}\\b`));
  });
});

Deno.test("dfos exits 2 for an unknown flag, an unknown command and no command", async () => {
  const [flag, command, nothing] = await Promise.all([
    runCli(["ls", "--colour"]),
    runCli(["fetch", "x"]),
    runCli([]),
  ]);
  strictEqual(flag.code, 2);
  strictEqual(flag.stderr, "dfos ls: Unknown option '--colour'\nRun \"dfos ls --help\" for usage.\n");
  strictEqual(command.code, 2);
  match(command.stderr, /^dfos: unknown command "fetch"\n/);
  strictEqual(nothing.code, 2);
  match(text(nothing.stdout), /^Usage: dfos COMMAND/);
});

Deno.test("dfos keeps users apart: bob cannot see, get or remove alice's files", async () => {
  await using fx = await startServer();
  const alice = fx.envFor("alice");
  const bob = fx.envFor("bob");
  const secret = randomBytes(3000);
  await storeFile(fx, "secret.txt", secret, "alice");
  await storeFile(fx, "notes/plan.txt", new TextEncoder().encode("alice's plan"), "alice");
  await storeFile(fx, "own.txt", new TextEncoder().encode("bob's"), "bob");

  const [bobLs, bobGet, bobPeek, bobRm, bobRmFolder, aliceLs] = await Promise.all([
    runCli(["ls"], { env: bob }),
    runCli(["get", "secret.txt", "-"], { env: bob }),
    runCli(["peek", "notes/plan.txt"], { env: bob }),
    runCli(["rm", "secret.txt"], { env: bob }),
    runCli(["rm", "notes/plan.txt"], { env: bob }),
    runCli(["ls"], { env: alice }),
  ]);
  assertOk(bobLs, "bob's ls");
  match(text(bobLs.stdout), /^5 {2}\d{4}-\d\d-\d\d \d\d:\d\d UTC {2}own\.txt\n$/);
  assertOk(aliceLs, "alice's ls");
  deepStrictEqual(text(aliceLs.stdout).split("\n").map((line) => line.split("  ").pop()), [
    "notes/plan.txt",
    "secret.txt",
    "",
  ]);
  for (const [what, result] of [["get", bobGet], ["peek", bobPeek], ["rm", bobRm], ["rm", bobRmFolder]] as const) {
    strictEqual(result.code, 4, `bob's ${what}: ${result.stderr}`);
    strictEqual(result.stdout.length, 0);
  }
  // bob storing the same name makes his own file, not a change to alice's.
  const mine = join(fx.local, "secret.txt");
  await Deno.writeTextFile(mine, "bob's secret");
  assertOk(await runCli(["put", mine], { env: bob }), "bob's put");
  strictEqual(await sha256File(join(fx.root, "alice", "secret.txt")), sha256(secret));
  strictEqual(await Deno.readTextFile(join(fx.root, "bob", "secret.txt")), "bob's secret");
  strictEqual(await Deno.readTextFile(join(fx.root, "alice", "notes", "plan.txt")), "alice's plan");
});
