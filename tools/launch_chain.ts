/**
 * `watchLaunchChain()`: tells when a process started through `npx`/`npm exec`
 * has lost that npm process. npm does not pass a SIGTERM on: `kill -TERM` to
 * the PID a shell holds for `npx -y deno@2.9.6 task serve` ends npm (and the
 * `sh -c` it runs) but leaves `deno task` and its child running, re-parented.
 * So this notes the ancestors up to the topmost npm process at start and
 * looks at them twice a second: once one has ended or been re-parented, the
 * launch is over.
 *
 * Linux only (it reads `/proc`, which Deno lets only a process with every
 * permission read); elsewhere, or without an npm ancestor, it watches nothing.
 *
 * @module
 */

/** How often the ancestors are looked at, in milliseconds. */
export const LAUNCH_CHAIN_POLL_MS = 500;

/** One ancestor as `/proc/PID/stat` shows it. */
interface Ancestor {
  pid: number;
  ppid: number;
  /** Its start time (clock ticks since boot): tells a reused PID apart. */
  start: string;
  /** Its command line, arguments joined with spaces. */
  command: string;
}

/** Reads one process's parent, start time and command line; null when it is gone or a zombie. */
function readAncestor(pid: number): Ancestor | null {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so split after its last ")".
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    if (fields[0] === "Z" || fields[0] === "X") return null;
    const command = Deno.readTextFileSync(`/proc/${pid}/cmdline`).split("\0").join(" ").trim();
    return { pid, ppid: Number(fields[1]), start: fields[19], command };
  } catch {
    return null;
  }
}

/** True for an npm process: `npm exec ...` (its title), `npx`, or node running npm's own scripts. */
function isNpm(command: string): boolean {
  return /^(npm|npx)( |$)/.test(command) || /\bnode\S* \S*(npm|npx)(-cli\.js)?( |$)/.test(command);
}

/**
 * Notes the ancestors of this process up to its topmost npm process, and
 * calls `onGone` once when one of them ends or is re-parented.
 *
 * @param onGone Called with a sentence naming the process that is gone.
 * @returns Stops watching; does nothing more when nothing was watched.
 */
export function watchLaunchChain(onGone: (why: string) => void): () => void {
  if (Deno.build.os !== "linux") return () => {};
  const chain: Ancestor[] = [];
  let top = -1;
  for (let pid = Deno.ppid; pid > 1 && chain.length < 16;) {
    const ancestor = readAncestor(pid);
    if (ancestor === null) break;
    chain.push(ancestor);
    if (isNpm(ancestor.command)) top = chain.length - 1;
    pid = ancestor.ppid;
  }
  if (top < 0) return () => {};
  const watched = chain.slice(0, top + 1);
  const timer = setInterval(() => {
    for (const ancestor of watched) {
      const now = readAncestor(ancestor.pid);
      if (now === null || now.start !== ancestor.start || now.ppid !== ancestor.ppid) {
        clearInterval(timer);
        onGone(`the process that started it, "${watched[top].command}" (PID ${watched[top].pid}), is gone`);
        return;
      }
    }
  }, LAUNCH_CHAIN_POLL_MS);
  Deno.unrefTimer(timer);
  return () => clearInterval(timer);
}
