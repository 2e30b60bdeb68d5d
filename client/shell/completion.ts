/**
 * Tab completion in the shell: the command name first, then each argument
 * by what it names (client/shell/arguments.ts): a remote name from a
 * listing of its remote folder (the shell caches it: `RemoteListing`), a
 * local path from the local folder, a command name after `help`. A flag's
 * value is not completed. What is inserted is quoted as the line needs
 * (client/shell/words.ts); a single match that is not a folder is closed
 * with a space.
 *
 * @module
 */

import type { ParseArgsOptionsConfig } from "node:util";
import { COMMON_OPTIONS } from "../../shared/cli.ts";
import type { DfosClient } from "../connection.ts";
import type { Completion } from "./line_editor.ts";
import { argumentKind, resolveRemote } from "./arguments.ts";
import { connectionLost } from "./shell_connection.ts";
import { partialWord, quoteWord } from "./words.ts";

/** What completion reads. */
export interface CompletionSources {
  /** Every command name. */
  commands: readonly string[];
  /** A command's flags (those that take a value are skipped with it), or null. */
  options(command: string): ParseArgsOptionsConfig | null;
  /** The remote folder ("" for the top). */
  remoteFolder: string;
  /** The names directly under a remote folder ("" for the top), folders ending in "/". */
  remoteChildren(folder: string): Promise<string[]>;
}

/**
 * Completes the word before the cursor.
 *
 * @param before The line up to the cursor.
 * @param sources Commands, flags and remote names.
 * @returns What to insert, and the candidates.
 */
export async function complete(before: string, sources: CompletionSources): Promise<Completion> {
  const { words, partial, quote } = partialWord(before);
  let dir = "";
  let names: string[];
  if (words.length === 0) {
    names = [...sources.commands];
  } else {
    const command = words[0];
    const index = positionalIndex(words.slice(1), { ...COMMON_OPTIONS, ...sources.options(command) });
    const kind = index === null || partial.startsWith("-") ? null : argumentKind(command, index);
    dir = partial.slice(0, partial.lastIndexOf("/") + 1);
    if (kind === "remote") {
      let folder: string;
      try {
        folder = resolveRemote(sources.remoteFolder, dir === "" ? "." : dir).replace(/\/$/, "");
      } catch {
        return { insert: "", candidates: [] };
      }
      names = await sources.remoteChildren(folder).catch(() => []);
      if (command === "cd") names = names.filter((name) => name.endsWith("/"));
    } else if (kind === "local") {
      names = await localChildren(dir === "" ? "." : dir, partial.slice(dir.length).startsWith("."));
      if (command === "lcd") names = names.filter((name) => name.endsWith("/"));
    } else if (kind === "command") {
      names = [...sources.commands];
    } else {
      return { insert: "", candidates: [] };
    }
  }
  const base = partial.slice(dir.length);
  const matches = names.filter((name) => name.startsWith(base)).sort();
  if (matches.length === 0) return { insert: "", candidates: [] };
  const common = commonPrefix(matches);
  const closing = matches.length === 1 && !common.endsWith("/") ? `${quote ?? ""} ` : "";
  return { insert: quoteWord(common.slice(base.length), quote) + closing, candidates: matches };
}

/**
 * The place among the positionals of the word being typed after `words`,
 * or null when it is a flag's value.
 */
function positionalIndex(words: string[], options: ParseArgsOptionsConfig): number | null {
  let index = 0;
  for (let i = 0; i < words.length; i++) {
    const word = words[i];
    if (word === "-" || !word.startsWith("-")) {
      index++;
      continue;
    }
    const long = word.startsWith("--");
    const name = long
      ? word.slice(2).split("=")[0]
      : Object.keys(options).find((key) => options[key].short === word[word.length - 1]);
    const takesValue = name !== undefined && options[name]?.type === "string" && !word.includes("=");
    if (takesValue) {
      if (i === words.length - 1) return null;
      i++;
    }
  }
  return index;
}

/** The names in a local folder, folders ending in "/"; hidden ones only when asked. */
async function localChildren(dir: string, hidden: boolean): Promise<string[]> {
  const names: string[] = [];
  try {
    for await (const entry of Deno.readDir(dir)) {
      if (entry.name.startsWith(".") && !hidden) continue;
      let folder = entry.isDirectory;
      if (entry.isSymlink) {
        folder = await Deno.stat(`${dir}/${entry.name}`).then((info) => info.isDirectory, () => false);
      }
      names.push(folder ? `${entry.name}/` : entry.name);
    }
  } catch {
    // not a readable folder: nothing to offer
  }
  return names;
}

function commonPrefix(names: string[]): string {
  let prefix = names[0];
  for (const name of names) {
    while (!name.startsWith(prefix)) prefix = prefix.slice(0, -1);
  }
  return prefix;
}

/**
 * The names under remote folders, listed once and kept until
 * {@linkcode RemoteListing.invalidate} (after anything that changes them).
 */
export class RemoteListing {
  readonly #client: () => Promise<DfosClient>;
  readonly #onLost: (() => void) | undefined;
  readonly #cache = new Map<string, Promise<string[]>>();

  /**
   * @param client The shell's connection, asked for when a listing is needed.
   * @param onLost Called when the connection was found lost (closed for
   * idleness): the listing is then asked once more, of a new connection.
   */
  constructor(client: () => Promise<DfosClient>, onLost?: () => void) {
    this.#client = client;
    this.#onLost = onLost;
  }

  /**
   * The names directly under `folder`, folders ending in "/".
   *
   * @param folder A remote folder ("" for the top).
   * @returns The names, sorted.
   */
  children(folder: string): Promise<string[]> {
    let listing = this.#cache.get(folder);
    if (listing === undefined) {
      listing = this.#list(folder);
      this.#cache.set(folder, listing);
      listing.catch(() => this.#cache.delete(folder));
    }
    return listing;
  }

  /** Forgets every listing. */
  invalidate(): void {
    this.#cache.clear();
  }

  async #list(folder: string): Promise<string[]> {
    try {
      return await this.#listOnce(folder);
    } catch (error) {
      if (this.#onLost === undefined || !connectionLost(error)) throw error;
      this.#onLost();
      return await this.#listOnce(folder);
    }
  }

  async #listOnce(folder: string): Promise<string[]> {
    const prefix = folder === "" ? "" : `${folder}/`;
    const names = new Set<string>();
    for await (const entry of (await this.#client()).list(prefix)) {
      if (!entry.name.startsWith(prefix)) continue;
      const rest = entry.name.slice(prefix.length);
      const slash = rest.indexOf("/");
      names.add(slash === -1 ? rest : rest.slice(0, slash + 1));
    }
    return [...names].sort();
  }
}
