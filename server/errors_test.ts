import { ok, strictEqual } from "node:assert/strict";
import { encodeMessage, MAX_CONTROL_LENGTH } from "../shared/messages.ts";
import { DfosError, Status } from "../shared/status.ts";
import { errorReply, isConnectionLoss, isStorageError, isTlsClientHello, MAX_ERROR_CHARS } from "./errors.ts";

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

Deno.test("errorReply() labels a refusal by its status, a disk's error as STORAGE and anything else as INTERNAL", () => {
  strictEqual(errorReply(new DfosError(Status.NOT_FOUND, "Cannot read")).label, "NOT_FOUND");
  strictEqual(errorReply(new Error("Input/output error (os error 5): write '/srv/x'")).label, "STORAGE");
  strictEqual(errorReply(new Error("No space left on device (os error 28)")).label, "STORAGE");
  strictEqual(errorReply(new TypeError("Cannot read properties of undefined")).label, "INTERNAL");
  strictEqual(isStorageError(new Deno.errors.BrokenPipe("Broken pipe (os error 32)")), false, "the connection's");
});

Deno.test("isConnectionLoss() takes a peer that hung up inside a frame or a body for gone, not for a bad request", () => {
  ok(isConnectionLoss(new DfosError(Status.BAD_REQUEST, "Cannot decode frame: the stream ended inside a frame")));
  ok(isConnectionLoss(new DfosError(Status.ABORTED, "Connection closed in the middle of a body")));
  ok(isConnectionLoss(new Deno.errors.ConnectionReset("Connection reset by peer (os error 104)")));
  ok(!isConnectionLoss(new DfosError(Status.ABORTED, "Transfer aborted by the peer: Sender failed")));
  ok(!isConnectionLoss(new DfosError(Status.BAD_REQUEST, "Expected HELLO: this is a dfos server")));
});

Deno.test("isTlsClientHello() knows a first frame whose length is a TLS handshake record's start (0x16 0x03)", () => {
  const tooLarge = (length: number) =>
    new DfosError(Status.TOO_LARGE, `Cannot decode frame: length ${length} exceeds the limit of 65536`);
  ok(isTlsClientHello(tooLarge(0x16030100 + 0x02)), "a ClientHello of TLS 1.0 records");
  ok(isTlsClientHello(tooLarge(0x16030300 + 0xfc)));
  ok(!isTlsClientHello(tooLarge(0x17030300)), "application data is no ClientHello");
  ok(!isTlsClientHello(tooLarge(70_000)));
});
