import { deepEqual } from "node:assert/strict";
import { join } from "node:path";
import type { ParseArgsOptionsConfig } from "node:util";
import { complete, type CompletionSources } from "./completion.ts";

const REMOTE: Record<string, string[]> = {
  "": ["docs/", "my report.pdf", "notes.txt", "report.pdf"],
  "docs": ["2026/", "plan.txt"],
};

function sources(folder = ""): CompletionSources {
  return {
    commands: ["cd", "get", "help", "ls", "put", "pwd"],
    options: (command): ParseArgsOptionsConfig => command === "peek" ? { bytes: { type: "string", short: "n" } } : {},
    remoteFolder: folder,
    remoteChildren: (at) => Promise.resolve(REMOTE[at] ?? []),
  };
}

Deno.test("complete() completes a command name, then a remote name, from the right side", async () => {
  deepEqual(await complete("pu", sources()), { insert: "t ", candidates: ["put"] });
  deepEqual((await complete("p", sources())).candidates, ["put", "pwd"]);
  deepEqual(await complete("get rep", sources()), { insert: "ort.pdf ", candidates: ["report.pdf"] });
  deepEqual(await complete("get my", sources()), { insert: "\\ report.pdf ", candidates: ["my report.pdf"] });
  deepEqual(await complete(`get "my`, sources()), { insert: ` report.pdf" `, candidates: ["my report.pdf"] });
  deepEqual(await complete("stat do", sources()), { insert: "cs/", candidates: ["docs/"] });
  deepEqual(await complete("stat docs/p", sources()), { insert: "lan.txt ", candidates: ["plan.txt"] });
  deepEqual(await complete("cd ", sources()), { insert: "docs/", candidates: ["docs/"] });
  deepEqual(await complete("get ../n", sources("docs")), { insert: "otes.txt ", candidates: ["notes.txt"] });
  deepEqual(await complete("help g", sources()), { insert: "et ", candidates: ["get"] });
});

Deno.test("complete() leaves a flag's value alone and completes local paths for put", async () => {
  deepEqual(await complete("peek -n ", sources()), { insert: "", candidates: [] });
  deepEqual((await complete("peek -n 10 rep", sources())).insert, "ort.pdf ");
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(join(dir, "local-file.txt"), "x");
    await Deno.mkdir(join(dir, "local-dir"));
    deepEqual(await complete(`put ${dir}/local-f`, sources()), {
      insert: "ile.txt ",
      candidates: [`${dir}/local-file.txt`].map((p) => p.slice(dir.length + 1)),
    });
    deepEqual((await complete(`put ${dir}/loc`, sources())).candidates, ["local-dir/", "local-file.txt"]);
    deepEqual((await complete(`get report.pdf ${dir}/local-d`, sources())).insert, "ir/");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
