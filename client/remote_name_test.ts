import assert from "node:assert/strict";
import { UsageError } from "../shared/cli.ts";
import { baseName, remoteName } from "./remote_name.ts";

Deno.test("remoteName normalises to NFC before checking", () => {
  assert.equal(remoteName("cafe\u0301.txt"), "caf\u00e9.txt");
});

Deno.test("remoteName refuses a bad name with a usage error that escapes control characters", () => {
  assert.throws(() => remoteName("../etc/passwd"), UsageError);
  assert.throws(() => remoteName("a\x1b[2Jb"), (error: unknown) => {
    assert.ok(error instanceof UsageError);
    assert.ok(!error.message.includes("\x1b"), "the raw escape must not reach the terminal");
    assert.match(error.message, /a\\x1b\[2Jb/);
    return true;
  });
});

Deno.test("baseName takes the last segment of local and remote paths", () => {
  assert.equal(baseName("/tmp/report.pdf"), "report.pdf");
  assert.equal(baseName("notes/2026/today.txt"), "today.txt");
  assert.equal(baseName("dir/"), "dir");
  assert.equal(baseName("plain"), "plain");
});
