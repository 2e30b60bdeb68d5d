/**
 * A small line editor for the shell's prompt, in raw terminal mode: printable
 * input, Backspace, Delete, Left/Right, Home/End (and Ctrl-A/E/B/F), Up/Down
 * (and Ctrl-P/N) through the history, Tab for completion, Ctrl-U and Ctrl-K
 * (erase before or after the cursor), Ctrl-W (erase a word), Ctrl-C (clear
 * the line), Ctrl-D (leave, on an empty line) and Enter.
 *
 * Deno has no readline with completion of its own. `node:readline` works
 * under Deno with a completer (tried on a pseudo-terminal: `get rep<TAB>`
 * completed), but it keeps the terminal in raw mode while paused: a
 * command's confirmation prompt would read without echo, and Ctrl-C during
 * a transfer would arrive as a byte instead of SIGINT, so the shell would
 * have to switch modes around it anyway; and its key handling cannot be
 * tested on bytes without a terminal. Here the terminal is raw only while a
 * line is being read, and nothing reads it otherwise.
 *
 * The parts: `decodeKeys()` turns terminal input into keys, `LineEditor`
 * applies keys to the line (no I/O: its unit tests feed it bytes), and
 * `TerminalLineReader` reads the terminal and draws the line.
 *
 * @module
 */

/** A key, as decoded from terminal input. */
export type Key =
  | { kind: "text"; text: string }
  | {
    kind:
      | "enter"
      | "backspace"
      | "delete"
      | "left"
      | "right"
      | "home"
      | "end"
      | "up"
      | "down"
      | "tab"
      | "interrupt"
      | "eof"
      | "kill-before"
      | "kill-after"
      | "kill-word";
  };

/** What a key did to the line, beyond editing it. */
export type KeyResult = "line" | "eof" | "interrupt" | "complete" | null;

const CONTROL_KEYS: Readonly<Record<string, Key["kind"]>> = {
  "\r": "enter",
  "\n": "enter",
  "\x7f": "backspace",
  "\b": "backspace",
  "\t": "tab",
  "\x03": "interrupt",
  "\x04": "eof",
  "\x15": "kill-before",
  "\x0b": "kill-after",
  "\x17": "kill-word",
  "\x01": "home",
  "\x05": "end",
  "\x02": "left",
  "\x06": "right",
  "\x10": "up",
  "\x0e": "down",
};

/** Escape sequences after ESC: CSI (`[`) and SS3 (`O`) forms of the keys terminals send. */
const ESCAPES: Readonly<Record<string, Key["kind"]>> = {
  "[A": "up",
  "[B": "down",
  "[C": "right",
  "[D": "left",
  "[H": "home",
  "[F": "end",
  "OA": "up",
  "OB": "down",
  "OC": "right",
  "OD": "left",
  "OH": "home",
  "OF": "end",
  "[1~": "home",
  "[7~": "home",
  "[4~": "end",
  "[8~": "end",
  "[3~": "delete",
};

/**
 * Turns terminal input into keys. An escape sequence cut at the end of the
 * input is returned as `rest`, to be put before the next input.
 *
 * @param input Decoded terminal input.
 * @returns The keys, and what is left over.
 */
export function decodeKeys(input: string): { keys: Key[]; rest: string } {
  const keys: Key[] = [];
  let text = "";
  const flush = () => {
    if (text !== "") keys.push({ kind: "text", text });
    text = "";
  };
  for (let i = 0; i < input.length; i++) {
    const char = input[i];
    if (char === "\x1b") {
      // ESC [ params final, or ESC O final
      // deno-lint-ignore no-control-regex
      const match = /^\x1b(?:\[[0-9;]*[\x40-\x7e]|O[\x40-\x7e])/.exec(input.slice(i));
      if (match === null) {
        // deno-lint-ignore no-control-regex
        if (/^\x1b(?:\[[0-9;]*|O)?$/.test(input.slice(i))) {
          flush();
          return { keys, rest: input.slice(i) };
        }
        continue; // a lone ESC: dropped
      }
      flush();
      const kind = ESCAPES[match[0].slice(1)];
      if (kind !== undefined) keys.push({ kind } as Key);
      i += match[0].length - 1;
      continue;
    }
    const control = CONTROL_KEYS[char];
    if (control !== undefined) {
      flush();
      if (!(char === "\n" && input[i - 1] === "\r")) keys.push({ kind: control } as Key);
      continue;
    }
    if (char < " ") continue; // other control characters are ignored
    text += char;
  }
  flush();
  return { keys, rest: "" };
}

/**
 * The line being edited and the history to move through; applies keys. The
 * cursor counts UTF-16 units and never splits a surrogate pair.
 */
export class LineEditor {
  /** The line. */
  text = "";
  /** Where the cursor is in `text`. */
  cursor = 0;
  readonly #history: readonly string[];
  /** Which history line is shown: `history.length` for the line being typed. */
  #index: number;
  /** The line being typed, kept while the history is shown. */
  #draft = "";

  /** @param history Earlier lines, oldest first. */
  constructor(history: readonly string[] = []) {
    this.#history = history;
    this.#index = history.length;
  }

  /**
   * Applies a key.
   *
   * @param key The key.
   * @returns "line" for Enter, "eof" for Ctrl-D on an empty line,
   * "interrupt" for Ctrl-C (the line is cleared), "complete" for Tab, else null.
   */
  press(key: Key): KeyResult {
    switch (key.kind) {
      case "text":
        this.insert(key.text);
        return null;
      case "enter":
        return "line";
      case "tab":
        return "complete";
      case "interrupt":
        this.#set("");
        this.#index = this.#history.length;
        return "interrupt";
      case "eof":
        if (this.text === "") return "eof";
        this.#deleteAt(this.cursor);
        return null;
      case "backspace":
        if (this.cursor > 0) this.#deleteAt(this.#previous(this.cursor));
        return null;
      case "delete":
        this.#deleteAt(this.cursor);
        return null;
      case "left":
        this.cursor = this.#previous(this.cursor);
        return null;
      case "right":
        this.cursor = this.#next(this.cursor);
        return null;
      case "home":
        this.cursor = 0;
        return null;
      case "end":
        this.cursor = this.text.length;
        return null;
      case "kill-before":
        this.text = this.text.slice(this.cursor);
        this.cursor = 0;
        return null;
      case "kill-after":
        this.text = this.text.slice(0, this.cursor);
        return null;
      case "kill-word": {
        const before = this.text.slice(0, this.cursor).replace(/\S*\s*$/, "");
        this.text = before + this.text.slice(this.cursor);
        this.cursor = before.length;
        return null;
      }
      case "up":
        if (this.#index > 0) {
          if (this.#index === this.#history.length) this.#draft = this.text;
          this.#index--;
          this.#set(this.#history[this.#index]);
        }
        return null;
      case "down":
        if (this.#index < this.#history.length) {
          this.#index++;
          this.#set(this.#index === this.#history.length ? this.#draft : this.#history[this.#index]);
        }
        return null;
    }
  }

  /**
   * Inserts text at the cursor.
   *
   * @param text The text.
   */
  insert(text: string): void {
    this.text = this.text.slice(0, this.cursor) + text + this.text.slice(this.cursor);
    this.cursor += text.length;
  }

  #set(text: string): void {
    this.text = text;
    this.cursor = text.length;
  }

  #deleteAt(at: number): void {
    if (at >= this.text.length) return;
    this.text = this.text.slice(0, at) + this.text.slice(this.#next(at));
    this.cursor = Math.min(this.cursor, at);
  }

  #previous(at: number): number {
    if (at <= 0) return 0;
    const low = this.text.charCodeAt(at - 1);
    return low >= 0xdc00 && low <= 0xdfff && at >= 2 ? at - 2 : at - 1;
  }

  #next(at: number): number {
    if (at >= this.text.length) return this.text.length;
    const high = this.text.charCodeAt(at);
    return high >= 0xd800 && high <= 0xdbff && at + 1 < this.text.length ? at + 2 : at + 1;
  }
}

/** What Tab offers: text to insert at the cursor, or, when there is none, the choices to show. */
export interface Completion {
  /** Inserted at the cursor ("" when the choices share nothing more). */
  insert: string;
  /** The candidates, shown when more than one and nothing is inserted. */
  candidates: string[];
}

/** What {@linkcode TerminalLineReader.readLine} returns for Ctrl-C when asked to end there. */
export const INTERRUPTED: unique symbol = Symbol("interrupted");

/** Options for {@linkcode TerminalLineReader.readLine}. */
export interface ReadLineOptions {
  /** Earlier lines, oldest first, for Up and Down. */
  history: readonly string[];
  /** Completes the line for Tab. */
  complete?: Completer;
  /**
   * Ctrl-C ends the reading with {@linkcode INTERRUPTED} instead of clearing the line.
   *
   * @default {false}
   */
  endOnInterrupt?: boolean;
}

/** Completes the line before the cursor. */
export type Completer = (before: string) => Promise<Completion>;

/** Reads lines from the terminal with a {@linkcode LineEditor}, drawing them on standard output. */
export class TerminalLineReader {
  #rest = "";
  /**
   * A read of the terminal under way. A read cannot be taken back: one left
   * by a question that was given up (Ctrl-C) is the next one's.
   */
  #reading: Promise<string | null> | null = null;
  readonly #decoder = new TextDecoder();
  readonly #encoder = new TextEncoder();

  /**
   * Asks a question on standard error and reads the answer, a line, in the
   * terminal's normal mode (echoed, edited by the terminal).
   *
   * @param question The question.
   * @param signal Gives up the question when aborted.
   * @returns The answer, or null at the end of input or when given up.
   */
  async readAnswer(question: string, signal?: AbortSignal): Promise<string | null> {
    Deno.stderr.writeSync(this.#encoder.encode(question));
    let answer = this.#rest;
    this.#rest = "";
    const aborted = new Promise<null>((resolve) => {
      if (signal?.aborted) resolve(null);
      signal?.addEventListener("abort", () => resolve(null), { once: true });
    });
    while (!/[\r\n]/.test(answer)) {
      const chunk = await Promise.race([this.#read(), aborted]);
      if (chunk === null) return null;
      answer += chunk;
    }
    const end = answer.search(/[\r\n]/);
    this.#rest = answer.slice(end + (answer.startsWith("\r\n", end) ? 2 : 1));
    return answer.slice(0, end);
  }

  /** The next input from the terminal, or null at its end. */
  #read(): Promise<string | null> {
    if (this.#reading === null) {
      const buffer = new Uint8Array(1024);
      this.#reading = Deno.stdin.read(buffer).then((n) => {
        this.#reading = null;
        return n === null ? null : this.#decoder.decode(buffer.subarray(0, n), { stream: true });
      });
    }
    return this.#reading;
  }

  /**
   * Shows `prompt` and reads one line in raw mode.
   *
   * @param prompt The prompt.
   * @param options The history, the completer, what Ctrl-C does.
   * @returns The line; null for Ctrl-D on an empty line or the end of input;
   * {@linkcode INTERRUPTED} for Ctrl-C with `endOnInterrupt`.
   */
  async readLine(prompt: string, options: ReadLineOptions): Promise<string | null | typeof INTERRUPTED> {
    const editor = new LineEditor(options.history);
    Deno.stdin.setRaw(true);
    try {
      let pending = this.#rest;
      this.#rest = "";
      while (true) {
        const { keys, rest } = decodeKeys(pending);
        pending = rest;
        for (let k = 0; k < keys.length; k++) {
          const result = editor.press(keys[k]);
          if (result === "line" || result === "eof") {
            // What was typed ahead waits for the next prompt.
            this.#rest = keys.slice(k + 1).map(encodeKey).join("") + rest;
            this.#draw(prompt, editor);
            this.#write("\r\n");
            return result === "line" ? editor.text : null;
          }
          if (result === "interrupt") {
            this.#write("^C\r\n");
            if (options.endOnInterrupt) return INTERRUPTED;
          } else if (result === "complete" && options.complete !== undefined) {
            const { insert, candidates } = await options.complete(editor.text.slice(0, editor.cursor));
            if (insert !== "") editor.insert(insert);
            else if (candidates.length > 1) this.#write(`\r\n${candidates.join("  ")}\r\n`);
          }
        }
        this.#draw(prompt, editor);
        const chunk = await this.#read();
        if (chunk === null) {
          this.#write("\r\n");
          return null;
        }
        pending += chunk;
      }
    } finally {
      Deno.stdin.setRaw(false);
    }
  }

  #draw(prompt: string, editor: LineEditor): void {
    const after = [...editor.text.slice(editor.cursor)].length;
    this.#write(`\r${prompt}${visible(editor.text)}\x1b[K${after > 0 ? `\x1b[${after}D` : ""}`);
  }

  #write(text: string): void {
    const bytes = this.#encoder.encode(text);
    for (let written = 0; written < bytes.length;) written += Deno.stdout.writeSync(bytes.subarray(written));
  }
}

/** The line as drawn: control characters (which the decoder drops anyway) shown escaped. */
function visible(text: string): string {
  // deno-lint-ignore no-control-regex
  return text.replace(/[\x00-\x1f\x7f]/g, (char) => `^${String.fromCharCode(char.charCodeAt(0) ^ 0x40)}`);
}

/** A key back as the input that gives it (for what was typed ahead of Enter). */
function encodeKey(key: Key): string {
  if (key.kind === "text") return key.text;
  const control = Object.entries(CONTROL_KEYS).find(([, kind]) => kind === key.kind);
  if (control !== undefined) return control[0];
  const escape = Object.entries(ESCAPES).find(([, kind]) => kind === key.kind);
  return escape === undefined ? "" : `\x1b${escape[0]}`;
}
