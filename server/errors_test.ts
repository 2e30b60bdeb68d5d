import { ok, strictEqual } from "node:assert/strict";
import { encodeMessage, MAX_CONTROL_LENGTH } from "../shared/messages.ts";
import { DfosError, Status } from "../shared/status.ts";
import { errorReply, MAX_ERROR_CHARS } from "./errors.ts";

Deno.test("errorReply() cuts a refusal quoting 60 KB of a client's text to a printable message that fits its frame", () => {
  const hostile = "\x1b]0;x\x07\n" + "\u0001".repeat(60_000);
  const { message, unexpected } = errorReply(new DfosError(Status.BAD_NAME, `Cannot use name "${hostile}"`));
  strictEqual(unexpected, false);
  strictEqual(message.code, Status.BAD_NAME);
  ok(message.message.startsWith('Cannot use name "\\x1b]0;x\\x07\\x0a\\x01'), message.message.slice(0, 40));
  ok(/\.\.\. \(\d+ more characters\)$/.test(message.message));
  ok(message.message.length <= MAX_ERROR_CHARS + 40);
  ok(encodeMessage(message).payload.length + 1 <= MAX_CONTROL_LENGTH);
});

Deno.test("errorReply() passes a short refusal on as it is, and hides an unexpected error's details", () => {
  const short = new DfosError(Status.NOT_FOUND, 'Cannot read "a.txt": no such file');
  strictEqual(errorReply(short).message.message, 'Cannot read "a.txt": no such file');
  const internal = errorReply(new Error("EIO at /srv/secret/path"));
  strictEqual(internal.unexpected, true);
  strictEqual(internal.message.code, Status.INTERNAL);
  ok(!internal.message.message.includes("/srv/secret"));
});
