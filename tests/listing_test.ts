/**
 * End-to-end tests of what a listing costs and what it survives, on a real
 * server started in-process: a full listing of a large folder, however many
 * pages it takes, reads each folder about once (issue 9, finding 9: every
 * page used to read and sort the whole folder again); and a listing racing an
 * `rm` that prunes folders lists what is left and never fails (finding 10: a
 * folder gone between the walk's look at it and its read was INTERNAL).
 *
 * The cost is counted, not timed: `Deno.readDir` is wrapped for the length of
 * a test (the server runs in this process), so every folder read by the
 * server is seen.
 *
 * @module
 */

import { deepStrictEqual, ok, strictEqual } from "node:assert/strict";
import { join } from "node:path";
import { connect, startServer } from "./_fixture.ts";
import { Peer } from "./_peer.ts";

type ReadDir = typeof Deno.readDir;

/** Runs `fn` with `Deno.readDir` wrapped by `wrap`; restores it afterwards. */
async function withReadDir<T>(wrap: (real: ReadDir) => ReadDir, fn: () => Promise<T>): Promise<T> {
  const real = Deno.readDir;
  (Deno as { readDir: ReadDir }).readDir = wrap(real);
  try {
    return await fn();
  } finally {
    (Deno as { readDir: ReadDir }).readDir = real;
  }
}

/** Creates `count` empty files `<folder>/f<number>` (names padded to `width`) directly on the disk. */
function plant(folder: string, count: number, width = 6): string[] {
  Deno.mkdirSync(folder, { recursive: true });
  const names: string[] = [];
  for (let i = 0; i < count; i++) {
    const name = `f${String(i).padStart(width, "0")}`;
    Deno.writeFileSync(join(folder, name), new Uint8Array(0));
    names.push(name);
  }
  return names;
}

Deno.test("A full listing of 20,000 files in pages of 100 reads each folder once, not once per page", async () => {
  await using fx = await startServer({ listPageEntries: 100 });
  const home = join(fx.root, "alice");
  const names = plant(join(home, "many"), 20_000).map((name) => `many/${name}`);
  Deno.writeFileSync(join(home, "z.txt"), new Uint8Array(3));
  const client = await connect(fx);
  const reads: string[] = [];
  const listed = await withReadDir(
    (real) => (path) => {
      reads.push(String(path));
      return real(path);
    },
    async () => (await Array.fromAsync(client.list())).map((entry) => entry.name),
  );
  deepStrictEqual(listed, [...names, "z.txt"]);
  // 201 pages; the user's folder and "many", once each. The old code read both for every page (402 reads).
  deepStrictEqual(reads.map((path) => path.slice(home.length)), ["", "/many"]);
  await client.close();
});

Deno.test("A listing whose pages are cut to fit a frame still reads each folder once", async () => {
  await using fx = await startServer();
  const home = join(fx.root, "alice");
  // 200-byte names: a page of 1000 entries is cut to about 280 to fit 64 KiB, and the next page starts inside it.
  const folder = join(home, "long");
  Deno.mkdirSync(folder, { recursive: true });
  const names: string[] = [];
  for (let i = 0; i < 3000; i++) {
    const name = `${String(i).padStart(5, "0")}${"n".repeat(195)}`;
    Deno.writeFileSync(join(folder, name), new Uint8Array(0));
    names.push(`long/${name}`);
  }
  const peer = await Peer.login(fx);
  let reads = 0;
  const pages: number[] = [];
  const listed: string[] = [];
  await withReadDir(
    (real) => (path) => {
      reads++;
      return real(path);
    },
    async () => {
      let after = "";
      while (true) {
        await peer.send({ type: "list", prefix: "", after });
        const page = await peer.expect("listing");
        pages.push(page.entries.length);
        listed.push(...page.entries.map((entry) => entry.name));
        if (page.next === null) break;
        after = page.next;
      }
    },
  );
  deepStrictEqual(listed, names);
  ok(pages.length > 3 && pages[0] < 1000, `pages ${pages}`);
  strictEqual(reads, 2);
  peer.abort();
});

Deno.test("A listing racing an rm that prunes folders lists what is left and never fails", async () => {
  await using fx = await startServer({ listPageEntries: 7 });
  const home = join(fx.root, "alice");
  const client = await connect(fx);
  const folders = Array.from({ length: 30 }, (_, i) => `d${String(i).padStart(2, "0")}`);
  for (const folder of folders) plant(join(home, folder, "sub"), 3, 1);
  // The race, made certain: each folder goes (as a pruning rm removes it) just after the walk looked at it and
  // before it is read. Every third folder, and every second file of the rest, gone the same way.
  let count = 0;
  const listed = await withReadDir(
    (real) => (path) => {
      const where = String(path).slice(home.length + 1);
      if (/^d\d\d\/sub$/.test(where) && count++ % 3 === 0) Deno.removeSync(join(home, where), { recursive: true });
      return real(path);
    },
    async () => (await Array.fromAsync(client.list())).map((entry) => entry.name),
  );
  const expected = folders.filter((_, i) => i % 3 !== 0).flatMap((folder) =>
    ["f0", "f1", "f2"].map((file) => `${folder}/sub/${file}`)
  );
  deepStrictEqual(listed, expected);

  // And the real thing: another connection removes every file (its rm prunes the folders) while this one lists.
  const pruner = await connect(fx, "alice");
  const pruning = (async () => {
    for (const name of expected) await pruner.remove(name);
  })();
  let listings = 0;
  let done = false;
  pruning.finally(() => done = true);
  while (!done) {
    const names = (await Array.fromAsync(client.list())).map((entry) => entry.name);
    ok(names.every((name) => expected.includes(name)));
    listings++;
  }
  await pruning;
  ok(listings > 0);
  deepStrictEqual(await Array.fromAsync(client.list()), []);
  strictEqual(fx.server.stats.snapshot().failures.INTERNAL ?? 0, 0);
  await pruner.close();
  await client.close();
});
