import { deepStrictEqual, strictEqual } from "node:assert/strict";
import { COMMANDS } from "../main.ts";
import { CLIENT_COMMANDS } from "./command_table.ts";

Deno.test("CLIENT_COMMANDS: every client command is main.ts's, with its usage and flags, and its module runs it", async () => {
  for (const [name, row] of Object.entries(CLIENT_COMMANDS)) {
    strictEqual(COMMANDS[name]?.summary, row.summary, name);
    const { command } = await COMMANDS[name].load();
    strictEqual(command.usage, row.usage, name);
    deepStrictEqual(command.options, row.options, name);
    strictEqual(typeof (await row.load()).run, "function", name);
  }
  deepStrictEqual(
    Object.keys(COMMANDS).filter((name) => !["serve", "passwd", "shell"].includes(name)),
    Object.keys(CLIENT_COMMANDS),
  );
});
