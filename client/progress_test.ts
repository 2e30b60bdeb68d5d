import assert from "node:assert/strict";
import { formatBytes, Progress } from "./progress.ts";

function fakeBar(total: number | null, enabled = true) {
  let now = 0;
  const written: string[] = [];
  const progress = new Progress("big.bin", total, { enabled, write: (text) => written.push(text), now: () => now });
  return { progress, written, advance: (ms: number) => now += ms };
}

Deno.test("Progress draws nothing during the first second", () => {
  const { progress, written, advance } = fakeBar(100 * 2 ** 20);
  advance(999);
  progress.update(2 ** 20);
  progress.done();
  assert.deepEqual(written, []);
});

Deno.test("Progress shows bytes, rate and ETA after a second, then clears its line", () => {
  const { progress, written, advance } = fakeBar(100 * 2 ** 20);
  advance(2000);
  progress.update(50 * 2 ** 20);
  assert.equal(written.length, 1);
  assert.ok(written[0].startsWith("\r\x1b[K"));
  assert.match(written[0], /big\.bin/);
  assert.match(written[0], /50%/);
  assert.match(written[0], /50\.0 MiB \/ 100\.0 MiB/);
  assert.match(written[0], /25\.0 MiB\/s/);
  assert.match(written[0], /ETA 00:02/);
  progress.done();
  assert.equal(written.at(-1), "\r\x1b[K");
});

Deno.test("Progress redraws at most ten times a second", () => {
  const { progress, written, advance } = fakeBar(null);
  advance(1500);
  for (let i = 0; i < 50; i++) {
    progress.update(i * 1000);
    advance(10);
  }
  assert.equal(written.length, 5);
  assert.doesNotMatch(written[0], /ETA/); // total unknown: no ETA
});

Deno.test("Progress draws nothing when disabled (standard error is not a terminal)", () => {
  const { progress, written, advance } = fakeBar(1000, false);
  advance(5000);
  progress.update(500);
  progress.done();
  assert.deepEqual(written, []);
});

Deno.test("formatBytes uses binary units", () => {
  assert.equal(formatBytes(512), "512 B");
  assert.equal(formatBytes(1536), "1.5 KiB");
  assert.equal(formatBytes(3 * 2 ** 30), "3.0 GiB");
});
