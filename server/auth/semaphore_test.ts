import { deepStrictEqual, rejects, strictEqual, throws } from "node:assert/strict";
import { Semaphore } from "./semaphore.ts";

Deno.test("Semaphore runs at most its limit at once, the rest in the order they came", async () => {
  const two = new Semaphore(2);
  const order: number[] = [];
  const gates = Array.from({ length: 5 }, () => Promise.withResolvers<void>());
  const runs = gates.map((gate, i) =>
    two.run(async () => {
      order.push(i);
      await gate.promise;
    })
  );
  await Promise.resolve();
  deepStrictEqual([two.active, two.waiting, order], [2, 3, [0, 1]]);
  gates[1].resolve();
  await runs[1];
  await Promise.resolve();
  deepStrictEqual(order, [0, 1, 2]);
  for (const gate of gates) gate.resolve();
  await Promise.all(runs);
  deepStrictEqual([two.active, two.waiting, two.peak, order], [0, 0, 2, [0, 1, 2, 3, 4]]);
});

Deno.test("Semaphore gives up waiting when the signal is aborted, and refuses a limit below 1", async () => {
  const one = new Semaphore(1);
  const gate = Promise.withResolvers<void>();
  const first = one.run(() => gate.promise);
  const controller = new AbortController();
  const second = one.run(() => Promise.resolve("ran"), controller.signal);
  controller.abort(new Error("closing"));
  await rejects(second, /closing/);
  strictEqual(one.waiting, 0);
  gate.resolve();
  await first;
  strictEqual(one.active, 0);
  throws(() => new Semaphore(0), RangeError);
});
