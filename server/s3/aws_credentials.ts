/**
 * `loadAwsCredentials`: the S3 access key the way AWS's own tools find it.
 * First the environment (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
 * `AWS_SESSION_TOKEN`); else the profile `AWS_PROFILE` (default `default`)
 * of the shared credentials file (`AWS_SHARED_CREDENTIALS_FILE`, default
 * `~/.aws/credentials`), else of the config file (`AWS_CONFIG_FILE`, default
 * `~/.aws/config`, where the section is `[profile NAME]` but for
 * `[default]`). Only static keys: no SSO, no role assumption, no instance
 * metadata.
 *
 * @module
 */

/** An access key. */
export interface AwsCredentials {
  /** The access key id. */
  accessKeyId: string;
  /** The secret access key. */
  secretAccessKey: string;
  /** The session token of temporary credentials, if any. */
  sessionToken?: string;
  /** Where they were found: `environment` or the file and profile (for messages, never the secret). */
  source: string;
}

/** Options of {@linkcode loadAwsCredentials}. */
export interface LoadCredentialsOptions {
  /** The environment to read (default: the process's, `Deno.env`). */
  env?: Record<string, string | undefined>;
}

/**
 * Parses an AWS INI file (credentials or config) into its sections: names
 * as written between the brackets, keys lower-case, values trimmed. Lines
 * starting with `#` or `;` are comments.
 *
 * @example Usage
 * ```ts
 * import { parseAwsIni } from "./aws_credentials.ts";
 * const sections = parseAwsIni("[default]\naws_access_key_id = AK\n# note\n");
 * if (sections.get("default")?.get("aws_access_key_id") !== "AK") throw new Error("not parsed");
 * ```
 *
 * @param text The file's text.
 * @returns Each section's keys and values.
 */
export function parseAwsIni(text: string): Map<string, Map<string, string>> {
  const sections = new Map<string, Map<string, string>>();
  let current: Map<string, string> | undefined;
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#") || line.startsWith(";")) continue;
    const header = /^\[\s*([^\]]*?)\s*\]$/.exec(line);
    if (header) {
      current = sections.get(header[1]) ?? new Map();
      sections.set(header[1], current);
      continue;
    }
    const eq = line.indexOf("=");
    if (current === undefined || eq <= 0) continue;
    current.set(line.slice(0, eq).trim().toLowerCase(), line.slice(eq + 1).trim());
  }
  return sections;
}

/**
 * Finds the access key (see the module's doc for the order).
 *
 * @param options Where to look.
 * @returns The credentials.
 * @throws {Error} `Cannot find S3 credentials: ...` when none are found, or
 * a profile file lacks one of the two keys.
 */
export async function loadAwsCredentials(options: LoadCredentialsOptions = {}): Promise<AwsCredentials> {
  const env = options.env ?? Deno.env.toObject();
  const id = env.AWS_ACCESS_KEY_ID;
  const secret = env.AWS_SECRET_ACCESS_KEY;
  if (id && secret) {
    return {
      accessKeyId: id,
      secretAccessKey: secret,
      sessionToken: env.AWS_SESSION_TOKEN || undefined,
      source: "environment",
    };
  }
  if (id || secret) {
    throw new Error(
      `Cannot find S3 credentials: ${id ? "AWS_SECRET_ACCESS_KEY" : "AWS_ACCESS_KEY_ID"} is not set but ${
        id ? "AWS_ACCESS_KEY_ID" : "AWS_SECRET_ACCESS_KEY"
      } is`,
    );
  }
  const profile = env.AWS_PROFILE || env.AWS_DEFAULT_PROFILE || "default";
  const home = env.HOME ?? env.USERPROFILE ?? "";
  const files = [
    { path: env.AWS_SHARED_CREDENTIALS_FILE || `${home}/.aws/credentials`, section: profile },
    {
      path: env.AWS_CONFIG_FILE || `${home}/.aws/config`,
      section: profile === "default" ? "default" : `profile ${profile}`,
    },
  ];
  for (const file of files) {
    let text: string;
    try {
      text = await Deno.readTextFile(file.path);
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) continue;
      throw new Error(`Cannot read S3 credentials from "${file.path}": ${(error as Error).message}`, { cause: error });
    }
    const keys = parseAwsIni(text).get(file.section);
    if (keys === undefined) continue;
    const accessKeyId = keys.get("aws_access_key_id");
    const secretAccessKey = keys.get("aws_secret_access_key");
    if (!accessKeyId && !secretAccessKey) continue;
    if (!accessKeyId || !secretAccessKey) {
      throw new Error(
        `Cannot find S3 credentials: profile "${profile}" in "${file.path}" lacks ${
          accessKeyId ? "aws_secret_access_key" : "aws_access_key_id"
        }`,
      );
    }
    return {
      accessKeyId,
      secretAccessKey,
      sessionToken: keys.get("aws_session_token") || undefined,
      source: `profile "${profile}" in ${file.path}`,
    };
  }
  throw new Error(
    `Cannot find S3 credentials: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set, and profile "${profile}" is not in "${
      files[0].path
    }" or "${files[1].path}"`,
  );
}
