/**
 * A server whose disk is full, on a real file system that runs out: a tmpfs
 * of a few inodes, mounted for the test (it needs root, as CI has; elsewhere
 * the test says why it did not run).
 *
 * @module
 */

import { strictEqual } from "node:assert/strict";
import { join } from "node:path";
import { serve } from "../server/server.ts";
import { Status } from "../shared/status.ts";
import { USERS } from "./_fixture.ts";
import { Peer } from "./_peer.ts";

const isRoot = Deno.uid() === 0;

Deno.test({
  name: isRoot
    ? "a first login on a full disk is refused with a message that says so, not as a failed upload"
    : "a first login on a full disk (ignored: mounting a tmpfs needs root)",
  ignore: !isRoot,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "dfos_full_" });
    const root = join(dir, "root");
    await Deno.mkdir(root);
    const users = join(dir, "users.txt");
    await Deno.writeTextFile(users, `alice:${USERS.alice}\n`);
    await run("mount", "-t", "tmpfs", "-o", "size=1m,nr_inodes=32", "dfos-full", root);
    try {
      const server = await serve({ hostname: "127.0.0.1", port: 0, root, users });
      try {
        // Use up every inode the file system has left.
        for (let i = 0;; i++) {
          try {
            Deno.writeFileSync(join(root, `filler-${i}`), new Uint8Array(0));
          } catch {
            break;
          }
        }
        const peer = await Peer.open({ port: server.addr.port });
        try {
          await peer.hello();
          const end = await peer.scram("alice", USERS.alice);
          strictEqual(end.type, "error");
          strictEqual(end.type === "error" && end.code, Status.INTERNAL);
          strictEqual(
            end.type === "error" && end.message,
            "Cannot log in: the server has no space left to create the user's folder",
          );
        } finally {
          peer.abort();
        }
      } finally {
        await server.shutdown();
      }
    } finally {
      await run("umount", root);
      await Deno.remove(dir, { recursive: true });
    }
  },
});

async function run(...args: string[]): Promise<void> {
  const output = await new Deno.Command(args[0], { args: args.slice(1), stderr: "piped" }).output();
  if (!output.success) throw new Error(`${args.join(" ")} failed: ${new TextDecoder().decode(output.stderr)}`);
}
