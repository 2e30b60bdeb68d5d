import { deepEqual, equal, throws } from "node:assert/strict";
import { UsageError } from "../../shared/cli.ts";
import { resolveRemote, shellPositionals } from "./arguments.ts";

Deno.test("resolveRemote() reads names against the remote folder, .. going up but never above the top", () => {
  equal(resolveRemote("", "a.txt"), "a.txt");
  equal(resolveRemote("docs", "a.txt"), "docs/a.txt");
  equal(resolveRemote("docs/2026", "../a.txt"), "docs/a.txt");
  equal(resolveRemote("docs", "/a.txt"), "a.txt");
  equal(resolveRemote("docs", ".."), "/");
  equal(resolveRemote("docs", "sub/"), "docs/sub/");
  equal(resolveRemote("docs", "./x/../y"), "docs/y");
  throws(() => resolveRemote("docs", "../../etc/passwd"), UsageError);
  throws(() => resolveRemote("", ".."), UsageError);
});

Deno.test("shellPositionals() resolves the remote arguments of each command and leaves local ones", () => {
  deepEqual(shellPositionals("put", ["a.txt"], {}, "docs"), ["a.txt", "docs/"]);
  deepEqual(shellPositionals("put", ["a.txt"], {}, ""), ["a.txt"]);
  deepEqual(shellPositionals("put", ["a", "b", "/"], {}, "docs"), ["a", "b", "/"]);
  deepEqual(shellPositionals("put", ["a", "b.txt"], {}, "docs"), ["a", "docs/b.txt"]);
  deepEqual(shellPositionals("get", ["r.pdf", "local.pdf"], {}, "docs"), ["docs/r.pdf", "local.pdf"]);
  deepEqual(shellPositionals("get", ["a", "b", "dir"], {}, "docs"), ["docs/a", "docs/b", "dir"]);
  deepEqual(shellPositionals("get", ["sub", "dir"], { recursive: true }, "docs"), ["docs/sub", "dir"]);
  deepEqual(shellPositionals("ls", [], {}, "docs"), ["docs/"]);
  deepEqual(shellPositionals("ls", [], {}, ""), [""]);
  deepEqual(shellPositionals("ls", ["/"], {}, "docs"), [""]);
  deepEqual(shellPositionals("mv", ["a", "../b/"], {}, "docs/x"), ["docs/x/a", "docs/b/"]);
  deepEqual(shellPositionals("rm", ["a", "b"], { recursive: true }, "d"), ["d/a", "d/b"]);
});
