/**
 * The `dfos shell` subcommand: its usage and flags, for main.ts; the shell
 * itself is client/shell/shell.ts, loaded when it runs.
 *
 * @module
 */

import type { Command } from "../../shared/cli.ts";
import { CLIENT_OPTIONS, CLIENT_OPTIONS_USAGE } from "../command_table.ts";

/** `dfos shell`. */
export const command: Command = {
  usage: `Usage: dfos shell [-b FILE] [options]

Logs in once and reads commands, many over one connection: at a prompt
("alice@host:5000:/docs> ") with line editing, Tab completion of commands,
remote names and local paths, and a history kept in
$XDG_STATE_HOME/dfos/history (default ~/.local/state/dfos/history). "dfos"
alone on a terminal starts it too.

Commands: ls, get, put, peek, rm, mv, stat (the same flags and output as
"dfos COMMAND"), cd, pwd (the remote folder that remote names are read
from), lcd, lls, lpwd (the local folder), help [COMMAND], exit (or Ctrl-D).
Words are split as a shell does: 'single' or "double" quotes, backslash.
Ctrl-C stops the command running (an upload leaves the previous version in
place) and returns to the prompt. When the server closed the connection
(its idle timeout), the shell logs in again without asking.

Batch mode: with -b FILE, or with commands on standard input when it is
not a terminal, each line is shown after the prompt and run in order; the
first that fails stops the shell with its exit code, unless the line starts
with "-". Lines starting with "#" are comments.

  -b, --batch FILE         run the commands in FILE
${CLIENT_OPTIONS_USAGE}`,
  options: { ...CLIENT_OPTIONS, batch: { type: "string", short: "b" } },
  run: async (args) => {
    const { runShell } = await import("./shell.ts");
    await runShell(args);
  },
};
