import assert from "node:assert/strict";
import { join } from "node:path";
import { deriveKeys } from "../shared/scram.ts";
import { DEFAULT_ITERATIONS, formatSecret, makeSecret } from "./auth/scram_secret.ts";
import { parseUserLine, UserFile } from "./users.ts";

/** The warnings other than the one about each password stored in clear. */
function others(warnings: string[]): string[] {
  return warnings.filter((warning) => !warning.includes("is stored in clear"));
}

/** Runs `fn` with a users file holding `text` in a fresh temp folder, removed afterwards. */
async function withUserFile(
  text: string,
  fn: (users: UserFile, path: string, warnings: string[]) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "dfos-users-" });
  try {
    const path = join(dir, "passwd.txt");
    await Deno.writeTextFile(path, text);
    const warnings: string[] = [];
    await fn(new UserFile(path, (message) => warnings.push(message)), path, warnings);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("UserFile parses user:password lines, skips blank and # lines, warns about each password in clear", async () => {
  const text = [
    "# the users",
    "alice:secret",
    "",
    "   ",
    "  # an indented comment",
    "bob:hunter2",
    "",
  ].join("\n");
  await withUserFile(text, async (users, path, warnings) => {
    assert.equal(await users.load(), 2);
    assert.ok(await users.verify("alice", "secret"));
    assert.ok(await users.verify("bob", "hunter2"));
    assert.deepEqual(warnings, [
      `${path}:2: the password of "alice" is stored in clear; "dfos passwd alice --users ${path}" stores it hashed`,
      `${path}:6: the password of "bob" is stored in clear; "dfos passwd bob --users ${path}" stores it hashed`,
    ]);
  });
});

Deno.test("UserFile keeps every character after the first colon as the password", async () => {
  const text = "carol:pa:ss:word\ndave::\nerin: spaced \nfrank:#not-a-comment\n";
  await withUserFile(text, async (users, _path, warnings) => {
    assert.equal(await users.load(), 4);
    assert.ok(await users.verify("carol", "pa:ss:word"));
    assert.equal(await users.verify("carol", "pa"), null);
    assert.ok(await users.verify("dave", ":"));
    assert.ok(await users.verify("erin", " spaced "));
    assert.equal(await users.verify("erin", "spaced"), null);
    assert.ok(await users.verify("frank", "#not-a-comment"));
    assert.deepEqual(others(warnings), []);
  });
});

Deno.test("UserFile reads Windows line endings", async () => {
  await withUserFile("alice:secret\r\nbob:hunter2\r\n", async (users) => {
    assert.equal(await users.load(), 2);
    assert.ok(await users.verify("alice", "secret"));
    assert.ok(await users.verify("bob", "hunter2"));
  });
});

Deno.test("UserFile skips invalid user names and lines without a colon, with a warning each", async () => {
  const text = [
    "alice:secret",
    ".hidden:pw",
    ":nouser",
    "no-colon-here",
    "a\\b:pw",
    `${"x".repeat(65)}:pw`,
    "bob:hunter2",
  ].join("\n");
  await withUserFile(text, async (users, path, allWarnings) => {
    assert.equal(await users.load(), 2);
    const warnings = others(allWarnings);
    assert.equal(warnings.length, 5, warnings.join("\n"));
    assert.match(warnings[0], new RegExp(`${path.replaceAll(/[.\\]/g, "\\$&")}:2: user name starts with "."`));
    assert.match(warnings[1], /:3: user name is empty/);
    assert.match(warnings[2], /:4: expected "user:password"/);
    assert.match(warnings[3], /:5: /);
    assert.match(warnings[4], /:6: user name is longer than 64 bytes/);
    assert.equal(await users.verify(".hidden", "pw"), null);
    assert.equal(await users.verify("", "nouser"), null);
    assert.ok(await users.verify("bob", "hunter2"));
  });
});

Deno.test("UserFile warns about a repeated user and keeps the last line", async () => {
  await withUserFile("alice:old\nalice:new\n", async (users, _path, warnings) => {
    assert.equal(await users.load(), 1);
    assert.ok(await users.verify("alice", "new"));
    assert.equal(await users.verify("alice", "old"), null);
    assert.equal(others(warnings).length, 1);
    assert.match(others(warnings)[0], /:2: user "alice" appears again; the last line wins/);
  });
});

Deno.test("UserFile.verify gives a credential only for a known user with the right password", async () => {
  await withUserFile("alice:secret\n", async (users) => {
    assert.ok(await users.verify("alice", "secret"));
    assert.equal(await users.verify("alice", "Secret"), null);
    assert.equal(await users.verify("alice", "secret "), null);
    assert.equal(await users.verify("alice", ""), null);
    assert.equal(await users.verify("Alice", "secret"), null);
    assert.equal(await users.verify("mallory", "secret"), null);
    assert.equal(await users.verify("", ""), null);
  });
});

Deno.test("UserFile re-reads the file after it changes", async () => {
  await withUserFile("alice:secret\n", async (users, path) => {
    assert.ok(await users.verify("alice", "secret"));
    const before = await Deno.stat(path);

    // New content of another size, and an mtime that is surely different.
    await Deno.writeTextFile(path, "alice:changed\nbob:hunter2\n");
    await Deno.utime(path, new Date(), new Date((before.mtime?.getTime() ?? 0) + 5000));
    const after = await Deno.stat(path);
    assert.notEqual(after.size, before.size);
    assert.notEqual(after.mtime?.getTime(), before.mtime?.getTime());

    assert.equal(await users.verify("alice", "secret"), null);
    assert.ok(await users.verify("alice", "changed"));
    assert.ok(await users.verify("bob", "hunter2"));
    assert.equal(await users.load(), 2);
  });
});

Deno.test("UserFile re-reads a file replaced by another of the same size", async () => {
  await withUserFile("alice:secret1\n", async (users, path) => {
    assert.ok(await users.verify("alice", "secret1"));
    // Written beside it and renamed over it, as editors do: same size, new inode.
    const next = `${path}.new`;
    await Deno.writeTextFile(next, "alice:secret2\n");
    await Deno.rename(next, path);
    assert.equal(await users.verify("alice", "secret1"), null);
    assert.ok(await users.verify("alice", "secret2"));
  });
});

Deno.test("UserFile fails the first load of a missing file", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dfos-users-" });
  try {
    const users = new UserFile(join(dir, "missing.txt"));
    await assert.rejects(users.load(), Deno.errors.NotFound);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("UserFile keeps the last good copy when the file disappears later", async () => {
  await withUserFile("alice:secret\n", async (users, path, warnings) => {
    assert.equal(await users.load(), 1);
    await Deno.remove(path);
    assert.equal(await users.load(), 1);
    assert.ok(await users.verify("alice", "secret"));
    assert.ok(warnings.some((warning) => warning.includes("keeping the last copy")), warnings.join("\n"));
  });
});

/** A hashed line for `user` with `password`, as `dfos passwd` writes it. */
async function hashedLine(user: string, password: string, iterations = DEFAULT_ITERATIONS): Promise<string> {
  return `${user}:${formatSecret(await makeSecret(password, iterations))}`;
}

Deno.test("UserFile reads hashed SCRAM-SHA-256 lines and checks passwords against them", async () => {
  const text = [
    "# hashed and in clear, side by side",
    await hashedLine("alice", "secret"),
    "bob:hunter2",
    await hashedLine("carol", "pa:ss", 5000),
  ].join("\n");
  await withUserFile(text, async (users, _path, warnings) => {
    assert.equal(await users.load(), 3);
    assert.ok(await users.verify("alice", "secret"));
    assert.equal(await users.verify("alice", "Secret"), null);
    assert.ok(await users.verify("carol", "pa:ss"));
    assert.equal(await users.verify("carol", "pa"), null);
    assert.ok(await users.verify("bob", "hunter2"));
    // Only the line in clear is warned about.
    assert.equal(warnings.length, 1, warnings.join("\n"));
    assert.match(warnings[0], /:3: the password of "bob" is stored in clear/);
    const alice = await users.lookup("alice");
    assert.equal(alice.known, true);
    assert.equal(alice.secret.iterations, DEFAULT_ITERATIONS);
    assert.equal((await users.lookup("carol")).secret.iterations, 5000);
  });
});

Deno.test("UserFile skips malformed hashed lines with a warning each and keeps the others", async () => {
  const good = formatSecret(await makeSecret("secret"));
  const key = new Uint8Array(32).toBase64();
  const text = [
    `alice:${good}`,
    "bob:SCRAM-SHA-256$",
    `carol:SCRAM-SHA-256$4096:c2FsdA==$${key}`,
    `dave:SCRAM-SHA-256$4096:c2FsdA==$${key.slice(4)}:${key}`,
    `erin:SCRAM-SHA-256$100:c2FsdA==$${key}:${key}`,
    `frank:SCRAM-SHA-256$4096:not base64$${key}:${key}`,
    `grace:${good}`,
  ].join("\n");
  await withUserFile(text, async (users, path, warnings) => {
    assert.equal(await users.load(), 2);
    assert.equal(warnings.length, 5, warnings.join("\n"));
    const at = (line: number) => `${path}:${line}: `.replaceAll(/[.\\$]/g, "\\$&");
    assert.match(warnings[0], new RegExp(`^Skipping ${at(2)}stored password is not "SCRAM-SHA-256`));
    assert.match(warnings[1], new RegExp(`^Skipping ${at(3)}stored password is not`));
    assert.match(warnings[2], new RegExp(`^Skipping ${at(4)}stored password has keys of 29 and 32 bytes`));
    assert.match(warnings[3], new RegExp(`^Skipping ${at(5)}stored password has 100 iterations: dfos takes 4096`));
    assert.match(warnings[4], new RegExp(`^Skipping ${at(6)}`));
    assert.ok(await users.verify("alice", "secret"));
    assert.ok(await users.verify("grace", "secret"));
    // A skipped line is not a password in clear either.
    assert.equal(await users.verify("bob", "SCRAM-SHA-256$"), null);
    assert.equal((await users.lookup("carol")).known, false);
  });
});

Deno.test("UserFile warns about a password in clear once, not again at each reload", async () => {
  await withUserFile("alice:secret\n", async (users, path, warnings) => {
    assert.equal(await users.load(), 1);
    assert.equal(warnings.length, 1);
    // Reloaded with alice unchanged and bob added: only bob is new.
    await Deno.writeTextFile(path, "alice:secret\nbob:hunter2\n");
    await Deno.utime(path, new Date(), new Date(Date.now() + 5000));
    assert.equal(await users.load(), 2);
    assert.equal(warnings.length, 2, warnings.join("\n"));
    assert.match(warnings[1], /:2: the password of "bob" is stored in clear/);
    // A changed password in clear is a new line: warned about.
    await Deno.writeTextFile(path, "alice:changed\nbob:hunter2\n");
    await Deno.utime(path, new Date(), new Date(Date.now() + 10000));
    assert.equal(await users.load(), 2);
    assert.equal(warnings.length, 3, warnings.join("\n"));
    assert.match(warnings[2], /:1: the password of "alice" is stored in clear/);
  });
});

Deno.test("UserFile makes up a stable entry for an unknown user that never verifies", async () => {
  await withUserFile(await hashedLine("alice", "secret"), async (users, path) => {
    const first = await users.lookup("mallory");
    const again = await users.lookup("mallory");
    const other = await users.lookup("trudy");
    assert.equal(first.known, false);
    assert.deepEqual(first.secret, again.secret, "the same name gets the same made-up entry");
    assert.equal(first.secret.salt.length, 16);
    assert.equal(first.secret.iterations, DEFAULT_ITERATIONS);
    assert.notDeepEqual(first.secret.salt, other.secret.salt);
    assert.notDeepEqual(first.secret.storedKey, other.secret.storedKey);
    // Another server process (another UserFile) makes up other entries.
    const elsewhere = new UserFile(path);
    assert.notDeepEqual((await elsewhere.lookup("mallory")).secret.salt, first.secret.salt);
    assert.equal(await users.verify("mallory", "secret"), null);
    assert.equal(await users.verify("mallory", ""), null);
  });
});

Deno.test("UserFile gives a user in clear the salt it would make up for that name", async () => {
  await withUserFile("alice:secret\n", async (users, path) => {
    const known = await users.lookup("alice");
    assert.equal(known.known, true);
    const keys = await deriveKeys("secret", known.secret.salt, known.secret.iterations);
    assert.deepEqual(keys.storedKey, known.secret.storedKey);
    assert.deepEqual(keys.serverKey, known.secret.serverKey);
    // Once alice is gone, her name gets a made-up entry with the very same salt and iterations.
    await Deno.writeTextFile(path, "bob:hunter2\n");
    await Deno.utime(path, new Date(), new Date(Date.now() + 5000));
    const unknown = await users.lookup("alice");
    assert.equal(unknown.known, false);
    assert.deepEqual(unknown.secret.salt, known.secret.salt);
    assert.equal(unknown.secret.iterations, known.secret.iterations);
  });
});

Deno.test("UserFile draws an unknown name's shape from the hashed lines, as often as each occurs", async () => {
  // Shapes: 4096 iterations (1 line), 8192 (2 lines), 20000 with a 24-byte salt (1 line).
  const odd = { ...await makeSecret("x", 20_000), salt: crypto.getRandomValues(new Uint8Array(24)) };
  const text = [
    await hashedLine("a", "x", 4096),
    await hashedLine("b", "x", 8192),
    await hashedLine("c", "x", 8192),
    `e:${formatSecret(odd)}`,
    "d:in-clear",
  ].join("\n");
  await withUserFile(text, async (users) => {
    const seen = new Map<string, number>();
    for (let i = 0; i < 400; i++) {
      const { secret, known } = await users.lookup(`nobody-${i}`);
      assert.equal(known, false);
      const shape = `${secret.iterations}/${secret.salt.length}`;
      seen.set(shape, (seen.get(shape) ?? 0) + 1);
      const again = await users.lookup(`nobody-${i}`);
      assert.deepEqual(again.secret, secret, "the same name gets the same answer");
    }
    assert.deepEqual([...seen.keys()].sort(), ["20000/24", "4096/16", "8192/16"]);
    // About 100, 200, 100 of 400: far from each bound below.
    assert.ok(seen.get("4096/16")! > 50 && seen.get("20000/24")! > 50 && seen.get("8192/16")! > 140, [...seen].join());
    // A line in clear has the shape and salt its name would have as an unknown user, whatever the file's counts.
    const clear = await users.lookup("d");
    assert.equal(clear.known, true);
    assert.ok(await users.verify("d", "in-clear"));
    await Deno.writeTextFile(users.path, text.replace("d:in-clear", ""));
    const gone = await users.lookup("d");
    assert.equal(gone.known, false);
    assert.deepEqual([gone.secret.iterations, gone.secret.salt], [clear.secret.iterations, clear.secret.salt]);
  });
});

Deno.test("UserFile applies SASLprep to passwords: NFKC-equal passwords match", async () => {
  await withUserFile("alice:\uFB01le\nbob:a\u00A0b\n", async (users) => {
    assert.ok(await users.verify("alice", "file"));
    assert.ok(await users.verify("alice", "\uFB01le"));
    assert.ok(await users.verify("bob", "a b"));
    assert.equal(await users.verify("bob", "ab"), null);
  });
});

Deno.test("parseUserLine splits at the first colon and skips blank lines and comments", () => {
  assert.deepEqual(parseUserLine("alice:pa:ss"), { user: "alice", value: "pa:ss" });
  assert.deepEqual(parseUserLine("alice:"), { user: "alice", value: "" });
  assert.equal(parseUserLine(""), null);
  assert.equal(parseUserLine("   "), null);
  assert.equal(parseUserLine("  # comment: with colon"), null);
  assert.throws(() => parseUserLine("no-colon"), SyntaxError);
});

Deno.test("UserFile.holds is true while the user's line stays, false once it is removed or changed", async () => {
  await withUserFile("alice:secret\nbob:hunter2\n", async (users, path) => {
    const alice = (await users.lookup("alice")).credential;
    const bob = await users.verify("bob", "hunter2");
    assert.ok(bob !== null);
    assert.equal(await users.holds("alice", alice), true);
    assert.equal(await users.holds("mallory", (await users.lookup("mallory")).credential), false);
    await Deno.writeTextFile(path, "bob:changed\n# alice removed\n");
    assert.equal(await users.holds("alice", alice, 0), false);
    assert.equal(await users.holds("bob", bob, 0), false);
    assert.equal(await users.holds("bob", (await users.lookup("bob")).credential, 0), true);
  });
});
