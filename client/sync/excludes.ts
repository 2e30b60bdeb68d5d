/**
 * `excludeMatcher()`: the `--exclude GLOB` patterns of push and pull, matched
 * against a path relative to DIR (`/`-separated). `*` matches within one
 * segment, `**` across segments, `?` one character, `[abc]` one of a set. A
 * pattern without `/` matches any one segment (`node_modules`, `*.tmp`), so
 * it excludes a folder with all it holds; a pattern with `/` matches from
 * the top of DIR (`build/out`, `docs/**.pdf`), and a folder it matches is
 * excluded whole.
 *
 * @module
 */

/** True for a relative path some pattern excludes. */
export type ExcludeMatcher = (path: string) => boolean;

/**
 * Compiles the patterns.
 *
 * @param patterns The `--exclude` values, in any order.
 * @returns The matcher (false for every path when there are none).
 *
 * @example Usage
 * ```ts
 * import assert from "node:assert/strict";
 * import { excludeMatcher } from "./excludes.ts";
 * const excluded = excludeMatcher(["*.tmp", "build/out"]);
 * assert.ok(excluded("a/b/c.tmp"));
 * assert.ok(excluded("build/out/x.o"));
 * assert.ok(!excluded("src/build/out/x.o"));
 * ```
 */
export function excludeMatcher(patterns: readonly string[]): ExcludeMatcher {
  const compiled = patterns.map((pattern) => {
    const trimmed = pattern.replace(/^\/+|\/+$/g, "");
    return { anchored: trimmed.includes("/"), regex: new RegExp(`^${globSource(trimmed)}$`, "u") };
  });
  return (path) => {
    if (compiled.length === 0) return false;
    const segments = path.split("/");
    for (const { anchored, regex } of compiled) {
      if (anchored) {
        for (let end = 1; end <= segments.length; end++) {
          if (regex.test(segments.slice(0, end).join("/"))) return true;
        }
      } else if (segments.some((segment) => regex.test(segment))) {
        return true;
      }
    }
    return false;
  };
}

/** The regular expression source of one glob. */
function globSource(glob: string): string {
  let source = "";
  for (let i = 0; i < glob.length; i++) {
    const char = glob[i];
    if (char === "*" && glob[i + 1] === "*") {
      source += ".*";
      i++;
    } else if (char === "*") {
      source += "[^/]*";
    } else if (char === "?") {
      source += "[^/]";
    } else if (char === "[" && glob.indexOf("]", i + 2) > i) {
      const end = glob.indexOf("]", i + 2);
      const body = glob.slice(i + 1, end).replace(/^!/, "^").replace(/\\/g, "\\\\");
      source += `[${body}]`;
      i = end;
    } else {
      source += char.replace(/[.+^${}()|[\]\\]/g, "\\$&");
    }
  }
  return source;
}
