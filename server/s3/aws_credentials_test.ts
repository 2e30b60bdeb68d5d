import { deepStrictEqual, rejects, strictEqual } from "node:assert/strict";
import { join } from "node:path";
import { loadAwsCredentials, parseAwsIni } from "./aws_credentials.ts";

/** Runs `fn` with a fresh folder, removed after. */
async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "dfos-aws-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("loadAwsCredentials takes the environment's keys first", async () => {
  const credentials = await loadAwsCredentials({
    env: { AWS_ACCESS_KEY_ID: "AK", AWS_SECRET_ACCESS_KEY: "SK", AWS_SESSION_TOKEN: "T", HOME: "/nonexistent" },
  });
  deepStrictEqual(credentials, { accessKeyId: "AK", secretAccessKey: "SK", sessionToken: "T", source: "environment" });
});

Deno.test("loadAwsCredentials refuses half a key in the environment", async () => {
  await rejects(
    loadAwsCredentials({ env: { AWS_ACCESS_KEY_ID: "AK", HOME: "/nonexistent" } }),
    /Cannot find S3 credentials: AWS_SECRET_ACCESS_KEY is not set but AWS_ACCESS_KEY_ID is/,
  );
});

Deno.test("loadAwsCredentials reads ~/.aws/credentials: the default profile, or AWS_PROFILE's", async () => {
  await withDir(async (home) => {
    await Deno.mkdir(join(home, ".aws"));
    await Deno.writeTextFile(
      join(home, ".aws", "credentials"),
      "# keys\n[default]\naws_access_key_id = DEF\naws_secret_access_key=DEFSECRET\n\n" +
        "[work]\r\n; a comment\r\naws_access_key_id = WORK\r\naws_secret_access_key = WORKSECRET\r\naws_session_token = TOK\r\n",
    );
    const plain = await loadAwsCredentials({ env: { HOME: home } });
    strictEqual(plain.accessKeyId, "DEF");
    strictEqual(plain.secretAccessKey, "DEFSECRET");
    strictEqual(plain.sessionToken, undefined);
    strictEqual(plain.source, `profile "default" in ${join(home, ".aws", "credentials")}`);
    const work = await loadAwsCredentials({ env: { HOME: home, AWS_PROFILE: "work" } });
    deepStrictEqual([work.accessKeyId, work.secretAccessKey, work.sessionToken], ["WORK", "WORKSECRET", "TOK"]);
  });
});

Deno.test("loadAwsCredentials reads AWS_SHARED_CREDENTIALS_FILE, then the config file's [profile NAME]", async () => {
  await withDir(async (dir) => {
    const shared = join(dir, "creds");
    const config = join(dir, "config");
    await Deno.writeTextFile(shared, "[other]\naws_access_key_id = O\naws_secret_access_key = OS\n");
    await Deno.writeTextFile(
      config,
      "[profile ops]\nregion = x\naws_access_key_id = OPS\naws_secret_access_key = OPSS\n",
    );
    const fromShared = await loadAwsCredentials({
      env: { HOME: "/nonexistent", AWS_SHARED_CREDENTIALS_FILE: shared, AWS_PROFILE: "other" },
    });
    strictEqual(fromShared.accessKeyId, "O");
    const fromConfig = await loadAwsCredentials({
      env: { HOME: "/nonexistent", AWS_SHARED_CREDENTIALS_FILE: shared, AWS_CONFIG_FILE: config, AWS_PROFILE: "ops" },
    });
    strictEqual(fromConfig.accessKeyId, "OPS");
    strictEqual(fromConfig.source, `profile "ops" in ${config}`);
  });
});

Deno.test("loadAwsCredentials says where it looked when there is no key, and what a profile lacks", async () => {
  await withDir(async (home) => {
    await rejects(
      loadAwsCredentials({ env: { HOME: home } }),
      new RegExp(`profile "default" is not in "${home}/.aws/credentials" or "${home}/.aws/config"`),
    );
    await Deno.mkdir(join(home, ".aws"));
    await Deno.writeTextFile(join(home, ".aws", "credentials"), "[default]\naws_access_key_id = AK\n");
    await rejects(loadAwsCredentials({ env: { HOME: home } }), /lacks aws_secret_access_key/);
  });
});

Deno.test("parseAwsIni keeps sections apart and lower-cases keys", () => {
  const sections = parseAwsIni("[a]\nKey = 1\n[ b ]\nkey=2 = 3\n");
  strictEqual(sections.get("a")?.get("key"), "1");
  strictEqual(sections.get("b")?.get("key"), "2 = 3");
});
