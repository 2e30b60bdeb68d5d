/**
 * The CLI on a real terminal: `runOnTerminal()` runs `dfos ARGS` under a
 * pseudo-terminal from util-linux `script` (`bsdutils`, part of every
 * Debian), so that standard input and output are a terminal as when a
 * person types, and types each answer once its prompt has appeared.
 *
 * @module
 */

import { MAIN } from "./_fixture.ts";

const decoder = new TextDecoder();
const encoder = new TextEncoder();

/** One answer to type: once `after` has appeared on the screen (the n-th time for the n-th answer waiting for it). */
export interface Answer {
  after: string;
  type: string;
}

/** How to run the command under the terminal. */
export interface TerminalOptions {
  /** The whole environment of the command (PATH, NO_COLOR and TERM=dumb are added). */
  env: Record<string, string>;
  /** Its working folder. */
  cwd?: string;
  /** What to type, in order. */
  answers?: Answer[];
  /** The wait between a prompt's appearing and typing (the command switches the terminal to raw mode first). */
  typeDelayMs?: number;
  /** Close the terminal's input once the last answer is typed. */
  closeAfterLast?: boolean;
  /** The bound on the whole run: the command is killed then. */
  timeoutMs?: number;
}

/**
 * Runs `dfos ARGS` under a pseudo-terminal.
 *
 * @param args The command line after `dfos`.
 * @param options The environment, the answers and the bounds.
 * @returns The exit code and everything the terminal showed.
 */
export async function runOnTerminal(
  args: string[],
  options: TerminalOptions,
): Promise<{ code: number; screen: string }> {
  const { env, cwd, answers = [], typeDelayMs = 300, closeAfterLast = false, timeoutMs = 20_000 } = options;
  const line = [Deno.execPath(), "run", "-A", MAIN, ...args].map((word) => `'${word}'`).join(" ");
  const child = new Deno.Command("script", {
    args: ["-qec", line, "/dev/null"],
    env: { ...env, PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin", RUST_BACKTRACE: "0", NO_COLOR: "1", TERM: "dumb" },
    clearEnv: true,
    cwd,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  const reader = child.stdout.getReader();
  let screen = "";
  let typed = 0;
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<null>((resolve) => timer = setTimeout(() => resolve(null), deadline - Date.now()));
    const result = await Promise.race([reader.read(), timeout]);
    clearTimeout(timer);
    if (result === null) {
      child.kill("SIGKILL");
      break;
    }
    if (result.done) break;
    screen += decoder.decode(result.value, { stream: true });
    while (typed < answers.length && occurrences(screen, answers[typed].after) > waitingBefore(answers, typed)) {
      await new Promise((resolve) => setTimeout(resolve, typeDelayMs));
      await writer.write(encoder.encode(answers[typed].type));
      typed++;
      if (closeAfterLast && typed === answers.length) await writer.close();
    }
  }
  reader.releaseLock();
  await writer.close().catch(() => {});
  const status = await child.status;
  await child.stderr.cancel();
  return { code: status.code, screen };
}

/** How many times `text` appears on the screen. */
export function occurrences(screen: string, text: string): number {
  return screen.split(text).length - 1;
}

/** How many of the answers before `index` wait for the same prompt: the next one waits for one more of it. */
function waitingBefore(answers: Answer[], index: number): number {
  return answers.slice(0, index).filter((answer) => answer.after === answers[index].after).length;
}
