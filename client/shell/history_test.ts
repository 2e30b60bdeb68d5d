import { deepEqual, equal } from "node:assert/strict";
import { join } from "node:path";
import { History, HISTORY_LIMIT } from "./history.ts";

Deno.test("History keeps lines across loads, mode 0600, bounded, without repeats or empty lines", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = join(dir, "state", "dfos", "history");
    const first = await History.load(path);
    await first.add("ls");
    await first.add("ls");
    await first.add("  ");
    await first.add("get a.txt");
    deepEqual((await History.load(path)).lines, ["ls", "get a.txt"]);
    equal((await Deno.stat(path)).mode! & 0o777, 0o600);
    const many = await History.load(path);
    for (let i = 0; i < HISTORY_LIMIT + 5; i++) await many.add(`stat ${i}`);
    const lines = (await History.load(path)).lines;
    equal(lines.length, HISTORY_LIMIT);
    equal(lines.at(-1), `stat ${HISTORY_LIMIT + 4}`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
