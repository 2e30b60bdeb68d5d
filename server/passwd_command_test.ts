import assert from "node:assert/strict";
import { join } from "node:path";
import { setUserLine, withUserLine } from "./passwd_command.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function set(file: string | Uint8Array, user: string, line: string): { text: string; added: boolean } {
  const bytes = typeof file === "string" ? encoder.encode(file) : file;
  const result = withUserLine(bytes, user, line);
  return { text: decoder.decode(result.bytes), added: result.added };
}

Deno.test("withUserLine replaces the user's line in place and keeps everything else", () => {
  const file = "# users\n# alice:commented-out\nalice:apple\n\nbob:banana\n";
  assert.deepEqual(set(file, "alice", "alice:NEW"), {
    text: "# users\n# alice:commented-out\nalice:NEW\n\nbob:banana\n",
    added: false,
  });
  assert.deepEqual(set(file, "bob", "bob:NEW"), {
    text: "# users\n# alice:commented-out\nalice:apple\n\nbob:NEW\n",
    added: false,
  });
});

Deno.test("withUserLine matches user names exactly, as the server reads them", () => {
  const file = "alicia:x\n alice:y\nalice2:z\nAlice:w\n";
  assert.deepEqual(set(file, "alice", "alice:NEW"), { text: `${file}alice:NEW\n`, added: true });
});

Deno.test("withUserLine keeps the one line in effect: the first in place, the others dropped", () => {
  assert.deepEqual(set("alice:one\nbob:b\nalice:two\n", "alice", "alice:NEW"), {
    text: "alice:NEW\nbob:b\n",
    added: false,
  });
});

Deno.test("withUserLine keeps CRLF endings, a missing final newline and bytes that are not UTF-8", () => {
  assert.equal(set("a:1\r\nalice:x\r\nb:2", "alice", "alice:NEW").text, "a:1\r\nalice:NEW\r\nb:2");
  assert.equal(set("a:1\r\nb:2", "alice", "alice:NEW").text, "a:1\r\nb:2\r\nalice:NEW\r\n");
  assert.equal(set("a:1\nb:2", "alice", "alice:NEW").text, "a:1\nb:2\nalice:NEW\n");
  assert.equal(set("alice:x", "alice", "alice:NEW").text, "alice:NEW");
  assert.equal(set("", "alice", "alice:NEW").text, "alice:NEW\n");
  const odd = new Uint8Array([...encoder.encode("# caf"), 0xe9, 0xff, ...encoder.encode("\nalice:x\n")]);
  const { bytes } = withUserLine(odd, "alice", "alice:NEW");
  assert.deepEqual(bytes, new Uint8Array([...odd.subarray(0, 7), ...encoder.encode("\nalice:NEW\n")]));
});

Deno.test("setUserLine writes through a symbolic link, keeps the mode and leaves no temporary file", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dfos-passwd-" });
  try {
    const real = join(dir, "real.txt");
    const link = join(dir, "users.txt");
    await Deno.writeTextFile(real, "# keep me\nalice:apple\n");
    await Deno.chmod(real, 0o604);
    await Deno.symlink(real, link);
    assert.equal(await setUserLine(link, "alice", "alice:NEW"), false);
    assert.equal(await setUserLine(link, "bob", "bob:NEW"), true);
    assert.equal(await Deno.readTextFile(real), "# keep me\nalice:NEW\nbob:NEW\n");
    assert.equal((await Deno.lstat(link)).isSymlink, true);
    assert.equal((await Deno.stat(real)).mode! & 0o777, 0o604);
    const names = [];
    for await (const entry of Deno.readDir(dir)) names.push(entry.name);
    assert.deepEqual(names.sort(), ["real.txt", "users.txt"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
