/**
 * `dfos shell` on a real terminal (a pseudo-terminal from util-linux
 * `script`, as in tests/terminal_test.ts): `dfos` alone starts it, it asks
 * for the user and the password (not echoed), completes a remote name on
 * Tab, keeps its history across sessions, and Ctrl-C during a large upload
 * stops it, leaves the previous version and nothing else, and returns to the
 * prompt.
 *
 * @module
 */

import { deepEqual, equal, ok } from "node:assert/strict";
import { join } from "node:path";
import { connect, delay, MAIN, startServer, USERS, waitFor } from "./_fixture.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** `dfos ARGS` under a pseudo-terminal: what it showed so far, and typing. */
class Terminal {
  screen = "";
  readonly #child: Deno.ChildProcess;
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
  readonly #reading: Promise<void>;

  constructor(args: string[], options: { env: Record<string, string>; cwd: string }) {
    // exec: Ctrl-C reaches the program alone, as from an interactive shell (whose jobs have their own group).
    const line = "exec " + [Deno.execPath(), "run", "-A", MAIN, ...args].map((word) => `'${word}'`).join(" ");
    const child = new Deno.Command("script", {
      args: ["-qec", line, "/dev/null"],
      env: {
        ...options.env,
        PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
        RUST_BACKTRACE: "0",
        NO_COLOR: "1",
        TERM: "dumb",
        DENO_NO_UPDATE_CHECK: "1",
      },
      clearEnv: true,
      cwd: options.cwd,
      stdin: "piped",
      stdout: "piped",
      stderr: "null",
    }).spawn();
    this.#child = child;
    this.#writer = child.stdin.getWriter();
    this.#reading = (async () => {
      for await (const chunk of child.stdout) this.screen += decoder.decode(chunk, { stream: true });
    })();
  }

  /** Waits until the screen after `from` shows `text`; returns where it ends. */
  async waitFor(text: string, from = 0, timeoutMs = 20_000): Promise<number> {
    try {
      await waitFor(() => this.screen.indexOf(text, from) !== -1, JSON.stringify(text), timeoutMs);
    } catch (error) {
      throw new Error(`${(error as Error).message} on the screen: ${JSON.stringify(this.screen.slice(from))}`);
    }
    return this.screen.indexOf(text, from) + text.length;
  }

  /** Types text (after a moment for the program to switch the terminal's mode after its prompt). */
  async type(text: string): Promise<void> {
    await delay(150);
    await this.#writer.write(encoder.encode(text));
  }

  /** Waits for the end; returns the exit code. */
  async close(timeoutMs = 20_000): Promise<number> {
    const timer = setTimeout(() => this.#child.kill("SIGKILL"), timeoutMs);
    try {
      await this.#writer.close().catch(() => {});
      const status = await this.#child.status;
      await this.#reading;
      return status.code;
    } finally {
      clearTimeout(timer);
    }
  }
}

/** Stores files on the server as alice. */
async function upload(fx: { address: string }, files: Record<string, string>): Promise<void> {
  const client = await connect(fx);
  try {
    for (const [name, text] of Object.entries(files)) {
      await client.put(
        name,
        (async function* () {
          yield encoder.encode(text);
        })(),
      );
    }
  } finally {
    await client.close();
  }
}

Deno.test("dfos alone on a terminal starts the shell: user and password asked, no echo, Tab completes a remote name", async () => {
  await using fx = await startServer();
  await upload(fx, { "report.pdf": "%PDF report", "notes.txt": "notes" });
  const state = join(fx.dir, "state");
  const term = new Terminal([], { env: { DFOS_SERVER: fx.address, XDG_STATE_HOME: state }, cwd: fx.local });
  try {
    await term.waitFor("User: ");
    await term.type("alice\r");
    await term.waitFor(`Password for alice@${fx.address}: `);
    await term.type(`${USERS.alice}\r`);
    const prompt = `alice@${fx.address}:/> `;
    let at = await term.waitFor(prompt);
    await term.type("get rep\t");
    at = await term.waitFor("get report.pdf ", at);
    await term.type("\r");
    at = await term.waitFor(prompt, at);
    // The prompt may be drawn again as the line is entered: the file is looked for until the get has ended.
    await waitFor(() => Deno.stat(join(fx.local, "report.pdf")).then(() => true, () => false), "the download", 10_000);
    equal(await Deno.readTextFile(join(fx.local, "report.pdf")), "%PDF report");
    await term.type("exit\r");
    equal(await term.close(), 0, term.screen);
    ok(!term.screen.includes(USERS.alice), `the password was echoed: ${JSON.stringify(term.screen)}`);
    const history = join(state, "dfos", "history");
    equal(await Deno.readTextFile(history), "get report.pdf\nexit\n");
    equal((await Deno.stat(history)).mode! & 0o777, 0o600);
  } finally {
    await term.close();
  }
});

Deno.test("dfos shell keeps its history across sessions: Up recalls the last session's command", async () => {
  await using fx = await startServer();
  const env = { ...fx.envFor("alice"), XDG_STATE_HOME: join(fx.dir, "state") };
  const prompt = `alice@${fx.address}:/> `;
  const first = new Terminal(["shell"], { env, cwd: fx.local });
  try {
    await first.waitFor(prompt);
    await first.type("lpwd\r");
    await first.waitFor(prompt, await first.waitFor(fx.local));
    await first.type("\x04");
    equal(await first.close(), 0, first.screen);
  } finally {
    await first.close();
  }
  const second = new Terminal(["shell"], { env, cwd: fx.local });
  try {
    const at = await second.waitFor(prompt);
    await second.type("\x1b[A");
    await second.waitFor("lpwd", at);
    await second.type("\r");
    await second.waitFor(fx.local, at);
    await second.type("exit\r");
    equal(await second.close(), 0, second.screen);
  } finally {
    await second.close();
  }
});

/** Every file under `dir`, as paths relative to it (empty folders are not listed). */
async function filesUnder(dir: string, prefix = ""): Promise<string[]> {
  const files: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    const path = prefix + entry.name;
    if (entry.isDirectory) files.push(...await filesUnder(join(dir, entry.name), `${path}/`));
    else files.push(path);
  }
  return files.sort();
}

Deno.test("dfos shell: Ctrl-C during a large put stops it, keeps the previous version, leaves nothing, and the prompt is back", async () => {
  await using fx = await startServer();
  await upload(fx, { "big.bin": "previous" });
  const big = join(fx.local, "big.bin");
  // 1 GiB read from a sparse file: fast to make and to read, slow enough to send that Ctrl-C comes first.
  await Deno.truncate(big, 1024 * 1024 * 1024).catch(async () => {
    await Deno.writeFile(big, new Uint8Array(0));
    await Deno.truncate(big, 1024 * 1024 * 1024);
  });
  const prompt = `alice@${fx.address}:/> `;
  const term = new Terminal(["shell"], {
    env: { ...fx.envFor("alice"), XDG_STATE_HOME: join(fx.dir, "state") },
    cwd: fx.local,
  });
  try {
    let at = await term.waitFor(prompt);
    await term.type("put --no-resume big.bin\r"); // the plain put: its temporary file on the server
    const partial = join(fx.root, "alice", ".dfos-partial");
    // Interrupted while the body is arriving: its temporary file on the server has bytes in it.
    await waitFor(
      async () => {
        for (const name of await filesUnder(partial).catch(() => [])) {
          if ((await Deno.stat(join(partial, name)).catch(() => null))?.size ?? 0 > 0) return true;
        }
        return false;
      },
      "the upload to start",
      20_000,
    );
    await term.type("\x03");
    at = await term.waitFor("Interrupted", at);
    at = await term.waitFor(prompt, at);
    await term.type("stat big.bin\r");
    at = await term.waitFor("size:   8", at);
    // The upload stopped its body and the connection went on: the fixture's upload and the shell's, no third.
    equal(fx.server.stats.snapshot().connections, 2);
    await waitFor(async () => (await filesUnder(join(fx.root, "alice"))).length === 1, "the temporary to go", 5000);
    deepEqual(await filesUnder(join(fx.root, "alice")), ["big.bin"]);
    equal(await Deno.readTextFile(join(fx.root, "alice", "big.bin")), "previous");
    deepEqual((await filesUnder(fx.local)).filter((name) => name !== "big.bin"), []);
    await term.type("exit\r");
    const code = await term.close();
    equal(code, 0, `${code} ${term.screen}`);
  } finally {
    await term.close();
  }
});

Deno.test("dfos shell: Ctrl-C during a large get removes its temporary file; Ctrl-C at the prompt clears the line", async () => {
  await using fx = await startServer();
  await upload(fx, { "small.txt": "small" });
  // 1 GiB on the server, sparse: fast to make and to read, slow enough to receive that Ctrl-C comes first.
  const huge = join(fx.root, "alice", "huge.bin");
  await Deno.writeFile(huge, new Uint8Array(0));
  await Deno.truncate(huge, 1024 * 1024 * 1024);
  const prompt = `alice@${fx.address}:/> `;
  const term = new Terminal(["shell"], {
    env: { ...fx.envFor("alice"), XDG_STATE_HOME: join(fx.dir, "state") },
    cwd: fx.local,
  });
  try {
    let at = await term.waitFor(prompt);
    await term.type("rm small.txt\x03");
    at = await term.waitFor("^C", at);
    await term.type("get --no-resume huge.bin\r"); // the plain get: its temporary file here
    await waitFor(
      async () => {
        for (const name of await filesUnder(fx.local)) {
          if (name.endsWith(".dfos-part") && (await Deno.stat(join(fx.local, name))).size > 0) return true;
        }
        return false;
      },
      "the download to start",
      20_000,
    );
    await term.type("\x03");
    at = await term.waitFor("Interrupted", at);
    at = await term.waitFor(prompt, at);
    deepEqual(await filesUnder(fx.local), []);
    await term.type("stat small.txt\r");
    at = await term.waitFor("size:   5", at);
    await term.type("exit\r");
    const code = await term.close();
    equal(code, 0, `${code} ${term.screen}`);
    deepEqual(await filesUnder(join(fx.root, "alice")), ["huge.bin", "small.txt"]);
  } finally {
    await term.close();
  }
});

Deno.test("dfos shell: after the server's idle timeout it logs in again with the password typed, unasked", async () => {
  await using fx = await startServer({ idleTimeoutMs: 400 });
  await upload(fx, { "small.txt": "small" });
  const term = new Terminal(["shell"], {
    env: { DFOS_SERVER: fx.address, DFOS_USER: "alice", XDG_STATE_HOME: join(fx.dir, "state") },
    cwd: fx.local,
  });
  try {
    await term.waitFor("Password for");
    await term.type(`${USERS.alice}\r`);
    let at = await term.waitFor(`alice@${fx.address}:/> `);
    await delay(1_200); // well past the idle timeout
    await term.type("stat sm\t");
    at = await term.waitFor("stat small.txt", at); // the listing for Tab found the connection closed, and made one
    await term.type("\r");
    at = await term.waitFor("size:   5", at);
    await delay(1_200);
    await term.type("stat small.txt\r");
    at = await term.waitFor("size:   5", at);
    await term.type("exit\r");
    equal(await term.close(), 0, term.screen);
    equal(term.screen.split("Password for").length - 1, 1, term.screen);
    ok(term.screen.includes("logging in again"), term.screen);
    equal(fx.server.stats.snapshot().connections, 4, "the upload's, the shell's first, and two new ones");
    ok(!term.screen.includes(USERS.alice), term.screen);
  } finally {
    await term.close();
  }
});

Deno.test("dfos shell: rm -r asks on the terminal; Ctrl-C at the question leaves the files and the next prompt works", async () => {
  await using fx = await startServer();
  await upload(fx, { "docs/a.txt": "alpha", "old/b.txt": "beta" });
  const prompt = `alice@${fx.address}:/> `;
  const term = new Terminal(["shell"], {
    env: { ...fx.envFor("alice"), XDG_STATE_HOME: join(fx.dir, "state") },
    cwd: fx.local,
  });
  try {
    let at = await term.waitFor(prompt);
    await term.type("rm -r docs\r");
    at = await term.waitFor(`Delete 1 file under "docs"? [y/N] `, at);
    await term.type("\x03");
    at = await term.waitFor("Interrupted", at);
    at = await term.waitFor(prompt, at);
    await term.type("stat docs/a.txt\r");
    at = await term.waitFor("size:   5", at);
    await term.type("rm -r old\r");
    at = await term.waitFor(`Delete 1 file under "old"? [y/N] `, at);
    await term.type("y\r");
    at = await term.waitFor(prompt, at);
    await term.type("exit\r");
    equal(await term.close(), 0, term.screen);
    deepEqual(await filesUnder(join(fx.root, "alice")), ["docs/a.txt"]);
  } finally {
    await term.close();
  }
});

Deno.test("dfos shell: Ctrl-C at the user prompt exits 130", async () => {
  await using fx = await startServer();
  const term = new Terminal(["shell"], { env: { DFOS_SERVER: fx.address }, cwd: fx.local });
  try {
    await term.waitFor("User: ");
    await term.type("ali\x03");
    equal(await term.close(), 130, term.screen);
    equal(fx.server.stats.snapshot().connections, 0);
  } finally {
    await term.close();
  }
});
