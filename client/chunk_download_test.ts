import { strictEqual } from "node:assert/strict";
import { partialPath } from "./chunk_download.ts";
import { CHUNKED_FROM_BYTES, RESUME_FROM_BYTES, wantsResume } from "./command_table.ts";

Deno.test("a resumable download's partial is a hidden file beside its target", () => {
  strictEqual(partialPath("dir/sub/a.iso"), "dir/sub/.a.iso.dfos-partial");
  strictEqual(partialPath("a.iso"), ".a.iso.dfos-partial");
});

Deno.test("--resume is on from 4 GiB for a put (or from the size asked), with --resume, and off with --no-resume", () => {
  strictEqual(wantsResume({}, 1024), false);
  strictEqual(wantsResume({}, null), false);
  strictEqual(wantsResume({}, RESUME_FROM_BYTES), false);
  strictEqual(wantsResume({}, CHUNKED_FROM_BYTES), true);
  strictEqual(wantsResume({}, RESUME_FROM_BYTES, RESUME_FROM_BYTES), true);
  strictEqual(wantsResume({ resume: true }, 10), true);
  strictEqual(wantsResume({ "no-resume": true }, CHUNKED_FROM_BYTES), false);
});
