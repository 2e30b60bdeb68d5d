import assert from "node:assert/strict";
import { Channel } from "./channel.ts";
import { bytesOf } from "./pooled_bytes.ts";
import { transferMemory } from "./transfer_memory.ts";

/** Two channels joined by a real loopback TCP connection. */
async function channelPair(): Promise<[Channel, Channel]> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    const [accepted, connected] = await Promise.all([
      listener.accept(),
      Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port }),
    ]);
    return [new Channel(connected), new Channel(accepted)];
  } finally {
    listener.close();
  }
}

Deno.test("Channel.send({ more }) holds a message until the next send, then both arrive in order", async () => {
  const [sender, receiver] = await channelPair();
  try {
    await sender.send({ type: "ok", name: "first", size: 1 }, { more: true });
    const first = receiver.receive();
    const early = await Promise.race([first.then(() => "arrived"), new Promise((r) => setTimeout(r, 100, "held"))]);
    assert.equal(early, "held", "a message sent with more waits for the next send");
    await sender.send({ type: "data", chunk: new Uint8Array([1, 2, 3]) }, { more: true });
    await sender.send({ type: "end", size: 3, algorithm: "crc32", digest: "55bc801d" });
    assert.deepEqual(await first, { type: "ok", name: "first", size: 1 });
    const data = await receiver.receive();
    assert.equal(data?.type, "data");
    assert.deepEqual(data?.type === "data" ? [...bytesOf(data.chunk)] : [], [1, 2, 3]);
    assert.deepEqual(await receiver.receive(), { type: "end", size: 3, algorithm: "crc32", digest: "55bc801d" });
  } finally {
    await Promise.all([sender.close(), receiver.close()]);
  }
});

Deno.test("Channel.close() sends a message still held by { more } before closing", async () => {
  const [sender, receiver] = await channelPair();
  try {
    await sender.send({ type: "abort", reason: "last words" }, { more: true });
    await sender.close();
    assert.deepEqual(await receiver.receive(), { type: "abort", reason: "last words" });
    assert.equal(await receiver.receive(), null);
  } finally {
    await Promise.all([sender.close(), receiver.close()]);
  }
});

Deno.test("Channel releases pooled DATA bytes once the socket has taken them", async () => {
  // The far end reads raw bytes into its own buffer, so the sender is the only user of the pool here.
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const [far, near] = await Promise.all([
    listener.accept(),
    Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port }),
  ]);
  listener.close();
  const sender = new Channel(near);
  try {
    const held = transferMemory.take(1 << 20);
    held.bytes.fill(7);
    const chunk = held.hold(0, 100 * 1024);
    held.release();
    const other = transferMemory.take(1 << 20);
    assert.notEqual(other.bytes.buffer, held.bytes.buffer, "held by the chunk until it is written");
    const sending = sender.send({ type: "data", chunk });
    const buffer = new Uint8Array(256 * 1024);
    let received = 0;
    while (received < 5 + chunk.length) received += (await far.read(buffer.subarray(received))) ?? 0;
    assert.ok(buffer.subarray(5, received).every((byte) => byte === 7));
    await sending;
    assert.equal(transferMemory.take(1 << 20).bytes.buffer, held.bytes.buffer, "free again once written");
    other.release();
  } finally {
    await sender.close();
    far.close();
  }
});

Deno.test("Channel.expect() turns a peer's ERROR into a DfosError whose text holds nothing raw to print", async () => {
  const [sender, receiver] = await channelPair();
  try {
    await sender.send({ type: "error", code: 1, message: "Refused\n\x1b]0;pwned\x07\x1b[2J \u202eevil" });
    await sender.send({
      type: "error",
      code: 1,
      message: 'Cannot use name "a\\x1b": name contains a control character',
    });
    await assert.rejects(receiver.expect("ok"), (error: Error) => {
      assert.equal(error.message, "Refused\\x0a\\x1b]0;pwned\\x07\\x1b[2J \\u202eevil");
      return true;
    });
    await assert.rejects(receiver.expect("ok"), (error: Error) => {
      assert.equal(error.message, 'Cannot use name "a\\x1b": name contains a control character', "escaped once only");
      return true;
    });
  } finally {
    await Promise.all([sender.close(), receiver.close()]);
  }
});
