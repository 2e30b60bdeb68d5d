/**
 * `dfos serve`: parses the server's flags, sets up logging, starts the
 * server and shuts it down on SIGINT or SIGTERM.
 *
 * @module
 */

import { type Command, integerFlag, UsageError } from "../shared/cli.ts";
import { configureLogging } from "./logging.ts";
import { serve } from "./server.ts";

/** The `serve` subcommand. */
export const command: Command = {
  usage: `Usage: dfos serve [options]

Serves files to the users listed in the users file, each in a private folder
ROOT/<user>/ created on first login.

      --host HOST          address to listen on (default 0.0.0.0)
      --port PORT          port to listen on (default 5000; 0 picks a free one)
      --root DIR           storage root (default ./server_storage)
      --users FILE         "user:password" lines, re-read when changed (default ./id_passwd.txt)
      --log FILE           performance log, appended to (default ./server_performance.log)
      --fsync              flush each upload to the disk before confirming it
  -v, --verbose            show error details
  -h, --help               show this help

SIGINT or SIGTERM stops the server: it closes connections, removes unfinished
uploads and logs its totals.`,
  options: {
    host: { type: "string" },
    port: { type: "string" },
    root: { type: "string" },
    users: { type: "string" },
    log: { type: "string" },
    fsync: { type: "boolean" },
  },
  async run({ values, positionals }) {
    if (positionals.length > 0) throw new UsageError(`serve takes no arguments, got "${positionals[0]}"`);
    const port = integerFlag(values.port, "port", 5000, [0, 65535]);
    const closeLogs = await configureLogging({ file: (values.log as string | undefined) ?? "server_performance.log" });
    const server = await serve({
      hostname: (values.host as string | undefined) ?? "0.0.0.0",
      port,
      root: (values.root as string | undefined) ?? "server_storage",
      users: (values.users as string | undefined) ?? "id_passwd.txt",
      fsync: values.fsync === true,
    });
    const stop = () => server.shutdown();
    Deno.addSignalListener("SIGINT", stop);
    Deno.addSignalListener("SIGTERM", stop);
    await server.finished;
    Deno.removeSignalListener("SIGINT", stop);
    Deno.removeSignalListener("SIGTERM", stop);
    await closeLogs();
  },
};
