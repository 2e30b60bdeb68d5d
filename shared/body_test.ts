import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { BodyReceiver, sendBody } from "./body.ts";
import { Channel } from "./channel.ts";
import { MAX_DATA_PAYLOAD } from "./frames.ts";
import { type Bytes, bytesOf, PooledBytes, release } from "./pooled_bytes.ts";
import { DfosError, Status, type StatusCode, statusName } from "./status.ts";

/** Two channels joined by a real loopback TCP connection; closed (both ends) by `dispose`. */
async function channelPair(): Promise<{ sender: Channel; receiver: Channel; dispose: () => Promise<void> }> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  let accepted: Deno.Conn;
  let connected: Deno.Conn;
  try {
    [accepted, connected] = await Promise.all([
      listener.accept(),
      Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port }),
    ]);
  } finally {
    listener.close();
  }
  const sender = new Channel(connected);
  const receiver = new Channel(accepted);
  return {
    sender,
    receiver,
    dispose: async () => {
      await Promise.all([sender.close(), receiver.close()]);
    },
  };
}

/** Runs `fn` with a fresh channel pair and closes it afterwards, whatever happens. */
async function withPair(fn: (sender: Channel, receiver: Channel) => Promise<void>): Promise<void> {
  const { sender, receiver, dispose } = await channelPair();
  try {
    await fn(sender, receiver);
  } finally {
    await dispose();
  }
}

/** Deterministic bytes that differ from chunk to chunk. */
function pattern(length: number, seed = 0): Uint8Array {
  const bytes = new Uint8Array(length);
  let x = seed * 2654435761 + 1;
  for (let i = 0; i < length; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    bytes[i] = x >>> 24;
  }
  return bytes;
}

function concat(chunks: Uint8Array[]): Uint8Array {
  const bytes = new Uint8Array(chunks.reduce((sum, chunk) => sum + chunk.length, 0));
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.length;
  }
  return bytes;
}

function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

async function* iterate(chunks: Uint8Array[]): AsyncGenerator<Uint8Array> {
  for (const chunk of chunks) yield chunk;
}

/** Reads the whole body; returns the chunks received. */
async function receiveAll(receiver: BodyReceiver): Promise<Uint8Array[]> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of receiver.chunks()) chunks.push(chunk.slice());
  return chunks;
}

/** Asserts that `promise` rejects with a `DfosError` of `code`. */
async function assertRejectsWith(promise: Promise<unknown>, code: StatusCode, context = ""): Promise<DfosError> {
  let caught: unknown;
  try {
    await promise;
  } catch (error) {
    caught = error;
  }
  assert.ok(caught instanceof DfosError, `${context} expected a DfosError, got ${caught}`);
  assert.equal(statusName(caught.code), statusName(code), `${context} (message: ${caught.message})`);
  return caught;
}

Deno.test("sendBody and BodyReceiver move a whole body whose digest is its SHA-256", async () => {
  await withPair(async (sender, receiver) => {
    // Chunks of many sizes, one above MAX_DATA_PAYLOAD (sent in two DATA frames).
    const chunks = [1, 0, 16 * 1024 + 1, MAX_DATA_PAYLOAD, MAX_DATA_PAYLOAD + 7, 12345].map((n, i) => pattern(n, i));
    const data = concat(chunks);
    const sentProgress: number[] = [];
    const receivedProgress: number[] = [];
    const body = new BodyReceiver(receiver, {
      algorithm: "sha256",
      expectedSize: data.length,
      onProgress: (n) => receivedProgress.push(n),
    });
    assert.equal(body.finished, false);
    assert.equal(body.summary, null);
    const [sent, received] = await Promise.all([
      sendBody(sender, iterate(chunks), { algorithm: "sha256", onProgress: (n) => sentProgress.push(n) }),
      receiveAll(body),
    ]);
    const whole = concat(received);
    assert.equal(whole.length, data.length);
    assert.equal(sha256(whole), sha256(data));
    assert.deepEqual(sent, { size: data.length, algorithm: "sha256", digest: sha256(data) });
    assert.deepEqual(body.summary, sent);
    assert.equal(body.finished, true);
    assert.equal(sentProgress.at(-1), data.length);
    assert.equal(receivedProgress.at(-1), data.length);
    assert.ok(received.every((chunk) => chunk.length <= MAX_DATA_PAYLOAD), "no DATA frame above the limit");
    // The channel carries on with the next message.
    await sender.send({ type: "ok", name: "a", size: data.length });
    assert.deepEqual(await receiver.expect("ok"), { type: "ok", name: "a", size: data.length });
  });
});

Deno.test("sendBody and BodyReceiver move an empty body", async () => {
  await withPair(async (sender, receiver) => {
    const body = new BodyReceiver(receiver, { algorithm: "sha256", expectedSize: 0 });
    const [sent, received] = await Promise.all([
      sendBody(sender, iterate([]), { algorithm: "sha256" }),
      receiveAll(body),
    ]);
    assert.deepEqual(received, []);
    assert.deepEqual(sent, { size: 0, algorithm: "sha256", digest: sha256(new Uint8Array(0)) });
    assert.deepEqual(body.summary, sent);
  });
});

Deno.test("BodyReceiver refuses a wrong digest in END as INTEGRITY", async () => {
  await withPair(async (sender, receiver) => {
    const data = pattern(1000);
    await sender.send({ type: "data", chunk: data });
    await sender.send({ type: "end", size: data.length, algorithm: "sha256", digest: sha256(pattern(1000, 1)) });
    const body = new BodyReceiver(receiver, { algorithm: "sha256" });
    await assertRejectsWith(receiveAll(body), Status.INTEGRITY);
    assert.equal(body.finished, true);
    assert.equal(body.summary, null);
  });
});

Deno.test("BodyReceiver refuses a truncated or empty digest as INTEGRITY", async () => {
  await withPair(async (sender, receiver) => {
    const data = pattern(10);
    for (const digest of [sha256(data).slice(0, 32), sha256(data) + "00", ""]) {
      await sender.send({ type: "data", chunk: data });
      await sender.send({ type: "end", size: data.length, algorithm: "sha256", digest });
      await assertRejectsWith(
        receiveAll(new BodyReceiver(receiver, { algorithm: "sha256" })),
        Status.INTEGRITY,
        digest,
      );
    }
  });
});

Deno.test("BodyReceiver refuses an END whose size differs from the bytes received as INTEGRITY", async () => {
  await withPair(async (sender, receiver) => {
    const data = pattern(100);
    for (const size of [99, 101, 0]) {
      await sender.send({ type: "data", chunk: data });
      await sender.send({ type: "end", size, algorithm: "sha256", digest: sha256(data) });
      await assertRejectsWith(
        receiveAll(new BodyReceiver(receiver, { algorithm: "sha256" })),
        Status.INTEGRITY,
        `END size ${size}`,
      );
    }
  });
});

Deno.test("BodyReceiver refuses a body shorter than expectedSize as INTEGRITY", async () => {
  await withPair(async (sender, receiver) => {
    const data = pattern(100);
    const body = new BodyReceiver(receiver, { algorithm: "sha256", expectedSize: 101 });
    const [sent, received] = await Promise.allSettled([
      sendBody(sender, iterate([data]), { algorithm: "sha256" }),
      receiveAll(body),
    ]);
    assert.equal(sent.status, "fulfilled");
    await assertRejectsWith(
      received.status === "rejected" ? Promise.reject(received.reason) : Promise.resolve(),
      Status.INTEGRITY,
    );
    assert.equal(body.finished, true);
    assert.equal(body.summary, null);
  });
});

Deno.test("BodyReceiver refuses a body longer than expectedSize as INTEGRITY as soon as it is exceeded", async () => {
  await withPair(async (sender, receiver) => {
    await sender.send({ type: "data", chunk: pattern(60) });
    await sender.send({ type: "data", chunk: pattern(60, 1) });
    await sender.send({ type: "data", chunk: pattern(60, 2) });
    await sender.send({ type: "end", size: 180, algorithm: "sha256", digest: "00" });
    await sender.send({ type: "ok", name: "next", size: 0 });
    const body = new BodyReceiver(receiver, { algorithm: "sha256", expectedSize: 100 });
    const yielded: number[] = [];
    await assertRejectsWith(
      (async () => {
        for await (const chunk of body.chunks()) yielded.push(chunk.length);
      })(),
      Status.INTEGRITY,
    );
    assert.deepEqual(yielded, [60], "the chunk that went over should not be yielded");
    assert.equal(body.finished, false);
    // The rest of the body can still be dropped, and the channel is in step again.
    await body.discard();
    assert.equal(body.finished, true);
    assert.equal((await receiver.expect("ok")).name, "next");
  });
});

Deno.test("BodyReceiver turns an ABORT into ABORTED with the sender's reason", async () => {
  await withPair(async (sender, receiver) => {
    await sender.send({ type: "data", chunk: pattern(10) });
    await sender.send({ type: "abort", reason: "disk on fire" });
    const body = new BodyReceiver(receiver, { algorithm: "sha256" });
    const error = await assertRejectsWith(receiveAll(body), Status.ABORTED);
    assert.match(error.message, /disk on fire/);
    assert.equal(body.finished, true);
    assert.equal(body.summary, null);
  });
});

Deno.test("sendBody sends ABORT and rethrows when reading the body fails", async () => {
  await withPair(async (sender, receiver) => {
    async function* failing(): AsyncGenerator<Uint8Array> {
      yield pattern(100);
      throw new Error("read error on disk");
    }
    const body = new BodyReceiver(receiver, { algorithm: "sha256" });
    const [sent, received] = await Promise.allSettled([sendBody(sender, failing()), receiveAll(body)]);
    assert.equal(sent.status, "rejected");
    assert.equal((sent.reason as Error).message, "read error on disk");
    assert.equal(received.status, "rejected");
    assert.ok(received.reason instanceof DfosError);
    assert.equal(statusName(received.reason.code), "ABORTED");
    assert.match(received.reason.message, /read error on disk/);
  });
});

Deno.test("BodyReceiver.discard after a partial read leaves the channel ready for the next message", async () => {
  await withPair(async (sender, receiver) => {
    const chunks = [pattern(1000), pattern(2000, 1), pattern(MAX_DATA_PAYLOAD, 2), pattern(3000, 3)];
    const sending = (async () => {
      const summary = await sendBody(sender, iterate(chunks), { algorithm: "sha256" });
      await sender.send({ type: "ok", name: "after", size: summary.size });
    })();
    const body = new BodyReceiver(receiver, { algorithm: "sha256" });
    for await (const chunk of body.chunks()) {
      assert.equal(chunk.length, 1000);
      break;
    }
    assert.equal(body.finished, false);
    await body.discard();
    assert.equal(body.finished, true);
    assert.equal(body.summary, null, "a discarded body has no verified summary");
    await body.discard(); // a second call is harmless
    const next = await receiver.expect("ok");
    assert.deepEqual(next, { type: "ok", name: "after", size: 1000 + 2000 + MAX_DATA_PAYLOAD + 3000 });
    await sending;
  });
});

Deno.test("BodyReceiver.discard stops at an ABORT too", async () => {
  await withPair(async (sender, receiver) => {
    await sender.send({ type: "data", chunk: pattern(10) });
    await sender.send({ type: "abort", reason: "gave up" });
    await sender.send({ type: "delete", name: "next" });
    const body = new BodyReceiver(receiver, { algorithm: "sha256" });
    await body.discard();
    assert.equal(body.finished, true);
    assert.deepEqual(await receiver.expect("delete"), { type: "delete", name: "next" });
  });
});

Deno.test("BodyReceiver passes on an ERROR in the middle of a body with its code", async () => {
  await withPair(async (sender, receiver) => {
    await sender.send({ type: "data", chunk: pattern(10) });
    await sender.send({ type: "error", code: Status.NOT_FOUND, message: "it went away" });
    const body = new BodyReceiver(receiver, { algorithm: "sha256" });
    const error = await assertRejectsWith(receiveAll(body), Status.NOT_FOUND);
    assert.equal(error.message, "it went away");
    assert.equal(body.finished, true);
  });
});

Deno.test("BodyReceiver refuses any other message in the middle of a body as BAD_REQUEST", async () => {
  await withPair(async (sender, receiver) => {
    await sender.send({ type: "data", chunk: pattern(10) });
    await sender.send({ type: "put", name: "x", size: null, digest: "sha256" });
    const body = new BodyReceiver(receiver, { algorithm: "sha256" });
    await assertRejectsWith(receiveAll(body), Status.BAD_REQUEST);
    assert.equal(body.finished, true);
  });
});

Deno.test("BodyReceiver turns a connection closed in the middle of a body into ABORTED", async () => {
  const { sender, receiver, dispose } = await channelPair();
  try {
    await sender.send({ type: "data", chunk: pattern(10) });
    await sender.close();
    const body = new BodyReceiver(receiver, { algorithm: "sha256" });
    await assertRejectsWith(receiveAll(body), Status.ABORTED);
    assert.equal(body.finished, true);
  } finally {
    await dispose();
  }
});

Deno.test("sendBody and BodyReceiver check with CRC-32 by default", async () => {
  await withPair(async (sender, receiver) => {
    const data = pattern(3 * MAX_DATA_PAYLOAD + 11);
    const body = new BodyReceiver(receiver, { expectedSize: data.length });
    const [sent, received] = await Promise.all([sendBody(sender, iterate([data])), receiveAll(body)]);
    assert.equal(sha256(concat(received)), sha256(data));
    assert.equal(sent.algorithm, "crc32");
    assert.match(sent.digest, /^[0-9a-f]{8}$/);
    assert.deepEqual(body.summary, sent);
  });
});

Deno.test("BodyReceiver refuses an END that names another algorithm than the one announced", async () => {
  await withPair(async (sender, receiver) => {
    const data = pattern(100);
    await sender.send({ type: "data", chunk: data });
    await sender.send({ type: "end", size: data.length, algorithm: "sha256", digest: sha256(data) });
    const body = new BodyReceiver(receiver, { algorithm: "crc32" });
    const error = await assertRejectsWith(receiveAll(body), Status.INTEGRITY, "algorithm switch");
    assert.match(error.message, /sha256 check, but crc32 was announced/);
  });
});

/** True when `a` and `b` hold the same bytes (assert.deepEqual takes minutes to describe a difference in MiBs). */
function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}

/** Sends `size` bytes of pattern in 1 MiB chunks; returns what was sent. */
function patternChunks(size: number): Uint8Array[] {
  const chunks: Uint8Array[] = [];
  for (let offset = 0, seed = 1; offset < size; offset += MAX_DATA_PAYLOAD, seed++) {
    chunks.push(pattern(Math.min(MAX_DATA_PAYLOAD, size - offset), seed));
  }
  return chunks;
}

Deno.test("BodyReceiver.pieces() keeps every piece intact until the consumer releases it", async () => {
  await withPair(async (sender, receiver) => {
    const sent = patternChunks(24 * MAX_DATA_PAYLOAD + 123);
    const body = new BodyReceiver(receiver);
    const kept: Bytes[] = [];
    const receiving = (async () => {
      for await (const piece of body.pieces()) kept.push(piece);
    })();
    await Promise.all([sendBody(sender, ReadableStream.from(sent)), receiving]);
    assert.ok(kept.some((piece) => piece instanceof PooledBytes), "the pieces came in pooled blocks");
    assert.ok(sameBytes(concat(kept.map(bytesOf)), concat(sent)));
    for (const piece of kept) release(piece);
  });
});

Deno.test("BodyReceiver.pieces() reuses the blocks of pieces the consumer released", async () => {
  // The other side of the test above: released pieces are overwritten by later ones, which shows
  // that blocks really are reused (and why a consumer releases a piece only once done with it).
  await withPair(async (sender, receiver) => {
    const sent = patternChunks(24 * MAX_DATA_PAYLOAD);
    const body = new BodyReceiver(receiver);
    const kept: Uint8Array[] = [];
    const receiving = (async () => {
      for await (const piece of body.pieces()) {
        kept.push(bytesOf(piece));
        release(piece);
      }
    })();
    await Promise.all([sendBody(sender, ReadableStream.from(sent)), receiving]);
    assert.equal(concat(kept).length, concat(sent).length);
    assert.ok(!sameBytes(concat(kept), concat(sent)));
    assert.ok(body.summary, "the body itself was checked as it arrived, and is whole");
  });
});

Deno.test("BodyReceiver.chunks() leaves every piece valid for good", async () => {
  await withPair(async (sender, receiver) => {
    const sent = patternChunks(24 * MAX_DATA_PAYLOAD);
    const body = new BodyReceiver(receiver);
    const kept: Uint8Array[] = [];
    const receiving = (async () => {
      for await (const chunk of body.chunks()) kept.push(chunk);
    })();
    await Promise.all([sendBody(sender, ReadableStream.from(sent)), receiving]);
    assert.ok(sameBytes(concat(kept), concat(sent)));
  });
});
