import assert from "node:assert/strict";
import { join } from "node:path";
import { UserFile } from "./users.ts";

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

Deno.test("UserFile parses user:password lines and skips blank and # lines", async () => {
  const text = [
    "# the users",
    "alice:secret",
    "",
    "   ",
    "  # an indented comment",
    "bob:hunter2",
    "",
  ].join("\n");
  await withUserFile(text, async (users, _path, warnings) => {
    assert.equal(await users.load(), 2);
    assert.equal(await users.verify("alice", "secret"), true);
    assert.equal(await users.verify("bob", "hunter2"), true);
    assert.deepEqual(warnings, []);
  });
});

Deno.test("UserFile keeps every character after the first colon as the password", async () => {
  const text = "carol:pa:ss:word\ndave::\nerin: spaced \nfrank:#not-a-comment\n";
  await withUserFile(text, async (users, _path, warnings) => {
    assert.equal(await users.load(), 4);
    assert.equal(await users.verify("carol", "pa:ss:word"), true);
    assert.equal(await users.verify("carol", "pa"), false);
    assert.equal(await users.verify("dave", ":"), true);
    assert.equal(await users.verify("erin", " spaced "), true);
    assert.equal(await users.verify("erin", "spaced"), false);
    assert.equal(await users.verify("frank", "#not-a-comment"), true);
    assert.deepEqual(warnings, []);
  });
});

Deno.test("UserFile reads Windows line endings", async () => {
  await withUserFile("alice:secret\r\nbob:hunter2\r\n", async (users) => {
    assert.equal(await users.load(), 2);
    assert.equal(await users.verify("alice", "secret"), true);
    assert.equal(await users.verify("bob", "hunter2"), true);
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
  await withUserFile(text, async (users, path, warnings) => {
    assert.equal(await users.load(), 2);
    assert.equal(warnings.length, 5, warnings.join("\n"));
    assert.match(warnings[0], new RegExp(`${path.replaceAll(/[.\\]/g, "\\$&")}:2: user name starts with "."`));
    assert.match(warnings[1], /:3: user name is empty/);
    assert.match(warnings[2], /:4: expected "user:password"/);
    assert.match(warnings[3], /:5: /);
    assert.match(warnings[4], /:6: user name is longer than 64 bytes/);
    assert.equal(await users.verify(".hidden", "pw"), false);
    assert.equal(await users.verify("", "nouser"), false);
    assert.equal(await users.verify("bob", "hunter2"), true);
  });
});

Deno.test("UserFile warns about a repeated user and keeps the last line", async () => {
  await withUserFile("alice:old\nalice:new\n", async (users, _path, warnings) => {
    assert.equal(await users.load(), 1);
    assert.equal(await users.verify("alice", "new"), true);
    assert.equal(await users.verify("alice", "old"), false);
    assert.equal(warnings.length, 1);
    assert.match(warnings[0], /appears again/);
  });
});

Deno.test("UserFile.verify is true only for a known user with the right password", async () => {
  await withUserFile("alice:secret\n", async (users) => {
    assert.equal(await users.verify("alice", "secret"), true);
    assert.equal(await users.verify("alice", "Secret"), false);
    assert.equal(await users.verify("alice", "secret "), false);
    assert.equal(await users.verify("alice", ""), false);
    assert.equal(await users.verify("Alice", "secret"), false);
    assert.equal(await users.verify("mallory", "secret"), false);
    assert.equal(await users.verify("", ""), false);
  });
});

Deno.test("UserFile re-reads the file after it changes", async () => {
  await withUserFile("alice:secret\n", async (users, path) => {
    assert.equal(await users.verify("alice", "secret"), true);
    const before = await Deno.stat(path);

    // New content of another size, and an mtime that is surely different.
    await Deno.writeTextFile(path, "alice:changed\nbob:hunter2\n");
    await Deno.utime(path, new Date(), new Date((before.mtime?.getTime() ?? 0) + 5000));
    const after = await Deno.stat(path);
    assert.notEqual(after.size, before.size);
    assert.notEqual(after.mtime?.getTime(), before.mtime?.getTime());

    assert.equal(await users.verify("alice", "secret"), false);
    assert.equal(await users.verify("alice", "changed"), true);
    assert.equal(await users.verify("bob", "hunter2"), true);
    assert.equal(await users.load(), 2);
  });
});

Deno.test("UserFile re-reads a file replaced by another of the same size", async () => {
  await withUserFile("alice:secret1\n", async (users, path) => {
    assert.equal(await users.verify("alice", "secret1"), true);
    // Written beside it and renamed over it, as editors do: same size, new inode.
    const next = `${path}.new`;
    await Deno.writeTextFile(next, "alice:secret2\n");
    await Deno.rename(next, path);
    assert.equal(await users.verify("alice", "secret1"), false);
    assert.equal(await users.verify("alice", "secret2"), true);
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
    assert.equal(await users.verify("alice", "secret"), true);
    assert.ok(warnings.some((warning) => warning.includes("keeping the last copy")), warnings.join("\n"));
  });
});
