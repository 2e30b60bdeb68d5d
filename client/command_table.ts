/**
 * The client commands, in one table that the command line (main.ts) and the
 * interactive shell both read: each command's name, summary, usage text and
 * flags (for `node:util` `parseArgs`), and the module that runs it. A command
 * added here is on the command line and in the shell alike.
 *
 * A command's `run` works over a logged-in connection that it asks for
 * (`context.client()`) once its local checks are done: on the command line
 * the connection is made at that first call (so a missing local file fails
 * before any password is asked), in a shell it is the session's. It writes
 * through `context.io`, never to `Deno.stdout` directly.
 *
 * This module is loaded at start-up: it imports no code, only types and
 * constants, and each row loads its command's module when it runs.
 *
 * @module
 */

import type { ParseArgsOptionsConfig } from "node:util";
import type { ParsedArgs } from "../shared/cli.ts";
import { DEFAULT_SERVER } from "../shared/defaults.ts";
import type { DfosClient } from "./connection.ts";

/** What a command reads and writes besides the server: the terminal or the shell's. */
export interface CommandIo {
  /** Writes bytes or text to standard output, in order. */
  write(data: Uint8Array | string): Promise<void>;
  /** A line for standard error (without its newline). */
  warn(line: string): void;
  /** True when a person is there to answer {@linkcode CommandIo.confirm}. */
  interactive: boolean;
  /** Asks a yes/no question; true only for an answer that starts with "y". */
  confirm(question: string): Promise<boolean>;
  /**
   * Registers what must be undone if the command is interrupted (Ctrl-C,
   * SIGTERM) while it runs, such as removing a download's temporary file:
   * synchronous, it runs before the process exits or the shell returns to
   * its prompt. Returns the function that unregisters it.
   */
  atInterrupt(cleanup: () => void): () => void;
}

/** What a command runs with. */
export interface CommandContext {
  /** The logged-in connection; ask for it once the local checks are done. */
  client(): Promise<DfosClient>;
  /** Output, prompts, interrupts. */
  io: CommandIo;
  /**
   * Aborted when the command is to stop and leave the connection usable
   * (Ctrl-C in the shell); an upload then stops its body.
   */
  signal?: AbortSignal;
  /**
   * Opens another logged-in connection with the same options, which the
   * caller closes (`dfos sync --watch`: one to wait on, and new ones after
   * the server went away). Absent in the shell.
   */
  connect?: () => Promise<DfosClient>;
}

/** A command's code: runs it once with its parsed flags and arguments. */
export type CommandRun = (args: ParsedArgs, context: CommandContext) => Promise<void>;

/** One row of {@linkcode CLIENT_COMMANDS}. */
export interface ClientCommand {
  /** The line `dfos --help` and the shell's `help` show. */
  summary: string;
  /** The usage text printed by `--help` and after a usage error. */
  usage: string;
  /** The flags it takes, beyond `--help` and `--verbose` (the connection flags included). */
  options: ParseArgsOptionsConfig;
  /** Loads its module (only when it runs). */
  load: () => Promise<{ run: CommandRun }>;
}

/** Flags of every client command. */
export const CLIENT_OPTIONS: ParseArgsOptionsConfig = {
  server: { type: "string", short: "s" },
  user: { type: "string", short: "u" },
  tls: { type: "boolean" },
  ca: { type: "string" },
};

/** The flag of commands that move a whole file: check it with SHA-256 rather than CRC-32. */
export const VERIFY_OPTION: ParseArgsOptionsConfig = { verify: { type: "boolean" } };

/** The usage line for {@linkcode VERIFY_OPTION}. */
export const VERIFY_USAGE =
  "      --verify             check the body end to end with SHA-256 (default: CRC-32, which catches\n" +
  "                           truncation and corruption at almost no cost)";

/**
 * A get of a file of at least this many bytes with nothing of it here goes
 * into the partial ".NAME.dfos-partial", kept if interrupted, unless
 * `--no-resume` (64 MiB): one GET as fast as a plain one, resumable.
 */
export const RESUME_FROM_BYTES = 64 * 1024 * 1024;

/**
 * A put of at least this many bytes, and a get that replaces a local file
 * of at least this many, move by chunks unless `--no-resume` (4 GiB): that
 * costs a pass over the file to hash it (about 1.3 s a GiB here) and halves
 * the rate on a fast link, worth it where an interrupted try would cost more
 * (docs/PERFORMANCE.md). Below it, `--resume` asks for it.
 */
export const CHUNKED_FROM_BYTES = 4 * 1024 * 1024 * 1024;

/** The flags of `put` and `get` that choose a resumable transfer (docs/PROTOCOL.md, "Chunks"). */
export const RESUME_OPTION: ParseArgsOptionsConfig = {
  "resume": { type: "boolean" },
  "no-resume": { type: "boolean" },
};

/**
 * Whether a transfer of `size` bytes is resumable: `--resume`, or at least
 * `from` bytes without `--no-resume`.
 *
 * @param values The parsed flags.
 * @param size The file's size, or null when unknown.
 * @param from The size from which it is by default ({@linkcode CHUNKED_FROM_BYTES} for a put).
 * @returns True to move it resumably.
 */
export function wantsResume(values: Record<string, unknown>, size: number | null, from = CHUNKED_FROM_BYTES): boolean {
  if (values["no-resume"]) return false;
  return values.resume === true || (size !== null && size >= from);
}

/** The usage lines for {@linkcode CLIENT_OPTIONS}. */
export const CLIENT_OPTIONS_USAGE = `Connection:
  -s, --server HOST:PORT   server address (env DFOS_SERVER, default ${DEFAULT_SERVER})
  -u, --user NAME          user name (env DFOS_USER)
      --tls                connect with TLS (env DFOS_TLS=1); the server's certificate must carry
                           the HOST of --server and be signed by a trusted root; never falls back
                           to plaintext
      --ca FILE            also trust the certificates in FILE (PEM: the server's own, or its CA),
                           besides the default roots; implies --tls (env DFOS_CA)
  password                 env DFOS_PASSWORD, else asked without echo on a terminal
  -v, --verbose            show error details
  -h, --help               show this help`;

/** The flags of push and pull. */
export const SYNC_OPTIONS: ParseArgsOptionsConfig = {
  delete: { type: "boolean" },
  "dry-run": { type: "boolean", short: "n" },
  checksum: { type: "boolean", short: "c" },
  exclude: { type: "string", multiple: true },
  json: { type: "boolean" },
};

/** The usage lines for {@linkcode SYNC_OPTIONS}. */
export const SYNC_USAGE = `      --delete             also delete what the source lacks (never without this flag);
                           excluded paths are never deleted
  -n, --dry-run            print the plan, change nothing
  -c, --checksum           compare contents (SHA-256 of the chunks), not size and modification time
      --exclude GLOB       leave out paths that match GLOB, relative to DIR (repeatable): a GLOB
                           without "/" matches any one segment ("*.tmp", "node_modules"), one with
                           "/" matches from the top ("build/out"); "*" "?" "[ab]" within a
                           segment, "**" across segments
      --json               one JSON object per line for each action ({"action": "send", "delete",
                           "unchanged", "skip" or "fail", "name", "size", ...}), then a summary
                           object ({"action": "summary", ...})

State: after a run, the server's change counter and the remote files are kept in
$XDG_STATE_HOME/dfos/sync/ (default ~/.local/state/dfos/sync/), one file per
server, user, PREFIX and DIR; a run that finds the counter where it was does
not list the server again. Deleting these files is always safe.
Output: a progress line on a terminal (standard error); at the end a summary of
files sent, deleted and unchanged, and bytes on the wire against bytes of
content.`;

/** Bytes `peek` shows when `--bytes` is not given, as in the original project. */
export const DEFAULT_PEEK_BYTES = 1024;

/** The client commands, by name. */
export const CLIENT_COMMANDS = {
  put: {
    summary: "upload files (or standard input)",
    usage: `Usage: dfos put LOCAL [REMOTE] [options]
       dfos put LOCAL --as REMOTE [options]
       dfos put LOCAL... REMOTE_FOLDER/ [options]

Uploads LOCAL to the server as REMOTE (default: LOCAL's base name). With a
last argument that ends in "/", uploads every LOCAL into that remote folder
under its base name ("/" alone is the top of your space); with more than one
LOCAL the last argument must be such a folder. All go over one connection.

A two-argument REMOTE that is also a local path is refused (exit 2): "put
*.pdf" matching two files must not upload one under the other's name. To
store a file under such a name, say so with --as: "dfos put a.pdf --as
b.pdf". LOCAL "-" reads standard input, and then REMOTE (or --as) is
required. REMOTE may contain folders ("notes/today.txt"). Each upload
replaces any previous version at once, and only once it has arrived whole.
Every file is tried; the exit code is the first failure's.

      --as REMOTE          store the one LOCAL as REMOTE, whatever exists locally
      --resume             send only the chunks the server lacks: what an interrupted put
                           (killed, connection lost) already sent, an older version, a copy;
                           the mtime goes with the file (on by default from 4 GiB: it reads
                           the file once more to hash it; needs a server with chunks, else a
                           plain put)
      --no-resume          send the whole file, whatever its size
${VERIFY_USAGE}
${CLIENT_OPTIONS_USAGE}`,
    options: { ...CLIENT_OPTIONS, ...VERIFY_OPTION, ...RESUME_OPTION, as: { type: "string" } },
    load: () => import("./put.ts"),
  },
  get: {
    summary: "download files (or to standard output)",
    usage: `Usage: dfos get REMOTE [LOCAL] [options]
       dfos get REMOTE... LOCAL_FOLDER [options]
       dfos get -r FOLDER [LOCAL_FOLDER] [options]

Downloads REMOTE to LOCAL (default: REMOTE's base name in the current folder;
a folder puts it inside; "-" writes to standard output). With more than one
REMOTE, the last argument must be an existing local folder. With -r, every
file under the remote FOLDER is saved under LOCAL_FOLDER (default: the
current folder) in a folder of FOLDER's base name, as "cp -r" does.

An existing local file is replaced: on a terminal only if you answer "y" to
"Replace ./x? [y/N]", asked for each such file before any is downloaded
(with -r, once the remote folder is listed), unless --force; when standard
input is not a terminal (a script, a pipe) it is replaced without a
question. A file is replaced only once its download has arrived whole and
its digest matches; until then it is written to a hidden ".*.dfos-part" file
beside it, removed if the download fails or is interrupted (Ctrl-C,
SIGTERM: exit 130, 143) - or, for a resumable download (--resume below), to
".NAME.dfos-partial", kept for the next get to take up. A LOCAL that is not a regular file or a folder
(/dev/null, /dev/stdout, a FIFO, a device) is written to directly, as it
arrives. All go over one connection; every file is tried, and the exit code
is the first failure's.

  -r, --recursive          download the files under a remote folder
  -f, --force              replace existing local files without asking
      --resume             fetch only the chunks not already here: in the partial
                           ".NAME.dfos-partial" an interrupted get left beside LOCAL (kept on
                           interrupt), or in LOCAL's old version; the server's mtime is set
                           (on by default: a partial left by an interrupted get is taken up; a
                           new file of 64 MiB or more goes into a partial; an existing LOCAL of
                           4 GiB or more is compared by chunks; needs a server with chunks)
      --no-resume          fetch the whole file, whatever its size
${VERIFY_USAGE}
${CLIENT_OPTIONS_USAGE}`,
    options: {
      ...CLIENT_OPTIONS,
      ...VERIFY_OPTION,
      recursive: { type: "boolean", short: "r" },
      force: { type: "boolean", short: "f" },
      ...RESUME_OPTION,
    },
    load: () => import("./get.ts"),
  },
  peek: {
    summary: "show the first bytes of a file",
    usage: `Usage: dfos peek REMOTE [--bytes N] [options]

Writes the first ${DEFAULT_PEEK_BYTES} bytes of REMOTE (or N with --bytes) to standard output, raw.

  -n, --bytes N            how many bytes (default ${DEFAULT_PEEK_BYTES}); K, M, G or T for KiB, MiB,
                           GiB or TiB (powers of 1024): "512", "1K", "1.5M"
${CLIENT_OPTIONS_USAGE}`,
    options: { ...CLIENT_OPTIONS, bytes: { type: "string", short: "n" } },
    load: () => import("./peek.ts"),
  },
  rm: {
    summary: "delete files, or a folder with -r",
    usage: `Usage: dfos rm REMOTE... [options]
       dfos rm -r FOLDER... [--force] [options]

Deletes each REMOTE file. With -r, deletes every file under each FOLDER (and
a file of that name); on a terminal it says how many and asks first, unless
--force; with standard input not a terminal it needs --force. Every name is
tried; the command fails (with the exit code of the first failure) if any
could not be deleted.

  -r, --recursive          delete the files under each FOLDER
  -f, --force              do not ask
${CLIENT_OPTIONS_USAGE}`,
    options: {
      ...CLIENT_OPTIONS,
      recursive: { type: "boolean", short: "r" },
      force: { type: "boolean", short: "f" },
    },
    load: () => import("./rm.ts"),
  },
  mv: {
    summary: "rename a file or a folder",
    usage: `Usage: dfos mv OLD NEW [options]

Renames the remote file or folder OLD to NEW; a folder's files all move with
it. A NEW that ends in "/" is a folder to move OLD into, under its base name.
Nothing is replaced: a NEW that exists is refused (exit 1); a missing OLD
exits 4. File sizes do not change: the quota counts only the folders a move
makes or leaves empty. On the server's local disk the move is atomic (one
rename of the file or the whole folder).

${CLIENT_OPTIONS_USAGE}`,
    options: CLIENT_OPTIONS,
    load: () => import("./mv.ts"),
  },
  stat: {
    summary: "show a file's size, time and digest",
    usage: `Usage: dfos stat REMOTE... [--sha256] [options]

Shows each REMOTE file's size in bytes and modification time in UTC, to the
millisecond ("2026-12-04 19:06:05.123 UTC", as ls shows it to the minute),
and with --sha256 its SHA-256, computed by the server from the stored bytes.

      --sha256             also show the SHA-256 of the file's content
${CLIENT_OPTIONS_USAGE}`,
    options: { ...CLIENT_OPTIONS, sha256: { type: "boolean" } },
    load: () => import("./stat.ts"),
  },
  ls: {
    summary: "list files",
    usage: `Usage: dfos ls [PREFIX] [--json] [options]

Lists your files whose names start with PREFIX (all by default), sorted by
name: size in bytes, modification time in UTC ("2026-12-04 19:06 UTC"),
name. Names are printed with control characters and bidirectional marks
escaped (\\x1b, \\u202e). With no file to list it prints nothing, or says
"No files" when standard output is a terminal.

      --json               one JSON array of {name, size, mtime} (mtime in ISO 8601)
${CLIENT_OPTIONS_USAGE}`,
    options: { ...CLIENT_OPTIONS, json: { type: "boolean" } },
    load: () => import("./ls.ts"),
  },
  push: {
    summary: "make a remote folder match a local folder",
    usage: `Usage: dfos push DIR [PREFIX] [options]

Makes PREFIX on the server (default: DIR's base name; "/" for the top of
your space) match the local folder DIR: each file of DIR is stored as
PREFIX/PATH, PATH its place under DIR. A file whose size and modification
time match the server's is not read; a changed file sends only the chunks
the server lacks; modification times are carried. Symbolic links and
special files in DIR are skipped with a warning, never followed; a name the
server cannot take is reported and skipped (exit 1), never changed. Every
file lands whole or not at all; an interrupted push, run again, finishes
without sending again what arrived. A file that fails is reported and the
others go on; the exit code is then 1. All over one connection.

${SYNC_USAGE}
${CLIENT_OPTIONS_USAGE}`,
    options: { ...CLIENT_OPTIONS, ...SYNC_OPTIONS },
    load: () => import("./push.ts"),
  },
  pull: {
    summary: "make a local folder match a remote folder",
    usage: `Usage: dfos pull PREFIX [DIR] [options]

Makes the local folder DIR (default: PREFIX's last segment; made if
missing) match PREFIX on the server: the file PREFIX/PATH is saved as
DIR/PATH. A file whose size and modification time match the server's is
not read; a changed file fetches only the chunks the local copy lacks;
modification times are carried. Symbolic links and special files in DIR are
skipped with a warning, never written through. Every file lands whole or not
at all; an interrupted pull, run again, finishes without fetching again what
arrived. A file that fails is reported and the others go on; the exit code
is then 1. All over one connection.

${SYNC_USAGE}
${CLIENT_OPTIONS_USAGE}`,
    options: { ...CLIENT_OPTIONS, ...SYNC_OPTIONS },
    load: () => import("./pull.ts"),
  },
  sync: {
    summary: "keep a local folder and a remote folder alike, both ways",
    usage: `Usage: dfos sync DIR PREFIX [options]

Brings the local folder DIR (made if missing) and PREFIX on the server ("/"
for the top of your space) each every change the other had since the last
sync, then exits; with --watch, keeps doing so as they change, until Ctrl-C.
A file changed on both sides to different contents is a conflict: the
version the server took first keeps the name, the other is kept beside it
as NAME.conflict-YYYYMMDD-HHMMSS-HOST.EXT on both sides (UTC; HOST is
env DFOS_HOST, else the host name). An edit beats a
delete. A file moved or copied on one side is moved or copied on the other
without sending its data. Every upload is stored only if the server's file
is still the one this side last saw, so two machines syncing at once never
overwrite each other's new version. A first sync (no state) merges: files
on one side only are copied over, nothing is deleted. Symbolic links and
special files in DIR are skipped with a warning; a file that cannot be
synced is reported by name and the rest goes on (exit 1).

      --watch              stay running: changes here go up within a second, the server's come
                           down as it tells of them; survives the server restarting or going away
      --max-delete PERCENT stop (and change nothing) when a run would delete more than PERCENT of
                           the files synced (default ${50}); a side that is suddenly empty while
                           the last sync left files there (an unmounted disk, a wrong PREFIX)
                           always stops the run, unless --max-delete 100
  -n, --dry-run            print the plan, change nothing
      --exclude GLOB       leave out paths that match GLOB, relative to DIR (repeatable), as push
      --json               one JSON object per line for each action ({"action": "upload",
                           "download", "delete-remote", "delete-local", "move-remote",
                           "move-local", "copy-local", "conflict", "defer", "skip" or "fail",
                           "name", ...}), then a summary object ({"action": "summary", ...})

State: what both sides held after the last sync, and the server's change
counter then, in $XDG_STATE_HOME/dfos/sync/ (default ~/.local/state/dfos/sync/),
one file per server, user, PREFIX and DIR, outside DIR. A run asks the server
only what changed since. An interrupted sync, run again, carries on; deleting
the state makes the next sync a merge (it deletes nothing).
Output: a progress line on a terminal; a summary of files sent, received,
deleted, moved and in conflict, and bytes on the wire.

${CLIENT_OPTIONS_USAGE}`,
    options: {
      ...CLIENT_OPTIONS,
      watch: { type: "boolean" },
      "max-delete": { type: "string" },
      "dry-run": { type: "boolean", short: "n" },
      exclude: { type: "string", multiple: true },
      json: { type: "boolean" },
    },
    load: () => import("./sync.ts"),
  },
} as const satisfies Readonly<Record<string, ClientCommand>>;

/** A client command's name. */
export type ClientCommandName = keyof typeof CLIENT_COMMANDS;
