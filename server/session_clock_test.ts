import { strictEqual } from "node:assert/strict";
import { SessionClock } from "./session_clock.ts";

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

Deno.test("SessionClock.deadline() runs once, and a new setting replaces the old one", async () => {
  const clock = new SessionClock();
  const ran: string[] = [];
  clock.deadline(20, () => ran.push("first"));
  clock.deadline(40, () => ran.push("second"));
  await delay(80);
  strictEqual(ran.join(), "second");
  clock.deadline(0, () => ran.push("never"));
  clock.deadline(20, () => ran.push("stopped"));
  clock.stop();
  await delay(40);
  strictEqual(ran.join(), "second");
});

Deno.test("SessionClock.watch() runs out only when nothing moves while the request waits on the client", async () => {
  const clock = new SessionClock();
  let moved = 0;
  let working = false;
  let stalls = 0;
  clock.watch(200, { moved: () => moved, serverWorking: () => working }, () => stalls++);
  // Traffic keeps it alive, then the server's work does.
  for (let i = 0; i < 8; i++) {
    await delay(40);
    moved++;
  }
  working = true;
  await delay(400);
  strictEqual(stalls, 0);
  working = false;
  await delay(600); // a stall is seen within 1.25 timeouts of the last look that saw work
  strictEqual(stalls, 1);
  clock.stop();
});

Deno.test("SessionClock.watch() with no timeout never runs out", async () => {
  const clock = new SessionClock();
  let stalls = 0;
  clock.watch(0, { moved: () => 0, serverWorking: () => false }, () => stalls++);
  await delay(30);
  strictEqual(stalls, 0);
  clock.stop();
});
