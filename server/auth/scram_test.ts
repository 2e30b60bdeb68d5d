import assert from "node:assert/strict";
import { join } from "node:path";
import { deriveKeys } from "../../shared/scram.ts";
import { formatSecret } from "./scram_secret.ts";
import { DfosError, Status } from "../../shared/status.ts";
import { scramMechanism } from "../../client/auth/scram.ts";
import { UserFile } from "../users.ts";
import type { AuthStep } from "./mechanism.ts";
import { ScramMechanism } from "./scram.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** RFC 7677, section 3. */
const RFC = {
  salt: "W22ZaJ0SNY7soEsUEjb6gQ==",
  serverNonce: "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
  clientFirst: "n,,n=user,r=rOprNGfwEbeRWgbNEkqO",
  serverFirst: "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
  clientFinal: "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0," +
    "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
  serverFinal: "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
};

/** Runs `fn` with a users file holding `lines` in a fresh temp folder, removed afterwards. */
async function withUsers(lines: string[], fn: (users: UserFile) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "dfos-scram-" });
  try {
    const path = join(dir, "passwd.txt");
    await Deno.writeTextFile(path, lines.join("\n") + "\n");
    await fn(new UserFile(path));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** The RFC example's user as `dfos passwd` would store it, with the RFC's salt. */
async function rfcLine(): Promise<string> {
  const salt = Uint8Array.fromBase64(RFC.salt);
  const keys = await deriveKeys("pencil", salt, 4096);
  return `user:${formatSecret({ iterations: 4096, salt, ...keys })}`;
}

function text(step: AuthStep): string {
  assert.notEqual(step.kind, "failure");
  return decoder.decode((step as { data: Uint8Array }).data);
}

/** Runs a whole exchange between the real client and server mechanisms. */
async function login(mechanism: ScramMechanism, user: string, password: string): Promise<AuthStep> {
  const client = scramMechanism({ user, password });
  const exchange = mechanism.start();
  const challenge = await exchange.step(await client.start());
  assert.equal(challenge.kind, "continue");
  const result = await exchange.step(await client.step((challenge as { data: Uint8Array }).data));
  if (result.kind === "success") await client.finish(result.data);
  return result;
}

Deno.test("ScramMechanism plays the server's part of the RFC 7677 example", async () => {
  await withUsers([await rfcLine()], async (users) => {
    const mechanism = new ScramMechanism(users, { serverNonce: () => RFC.serverNonce });
    assert.equal(mechanism.name, "SCRAM-SHA-256");
    assert.equal(mechanism.sendsPassword, false);
    const exchange = mechanism.start();
    const first = await exchange.step(encoder.encode(RFC.clientFirst));
    assert.equal(first.kind, "continue");
    assert.equal(text(first), RFC.serverFirst);
    const final = await exchange.step(encoder.encode(RFC.clientFinal));
    assert.equal(final.kind, "success");
    assert.equal((final as { user: string }).user, "user");
    assert.equal(text(final), RFC.serverFinal);
  });
});

Deno.test("ScramMechanism logs in users stored hashed and in clear, and refuses a wrong password", async () => {
  await withUsers([await rfcLine(), "alice:apple", "a=b,c:odd name"], async (users) => {
    const mechanism = new ScramMechanism(users);
    assert.equal((await login(mechanism, "user", "pencil")).kind, "success");
    assert.equal((await login(mechanism, "alice", "apple")).kind, "success");
    assert.equal((await login(mechanism, "a=b,c", "odd name")).kind, "success");
    assert.equal((await login(mechanism, "user", "pencil2")).kind, "failure");
    assert.equal((await login(mechanism, "alice", "Apple")).kind, "failure");
    assert.equal((await login(mechanism, "alice", "pencil")).kind, "failure");
  });
});

Deno.test("ScramMechanism runs a full exchange for an unknown user, with a stable made-up salt, and fails it", async () => {
  await withUsers([await rfcLine()], async (users) => {
    const mechanism = new ScramMechanism(users);
    const challenges: string[] = [];
    for (let i = 0; i < 2; i++) {
      const exchange = mechanism.start();
      const first = await exchange.step(encoder.encode(`n,,n=mallory,r=nonce${i}`));
      assert.equal(first.kind, "continue");
      const serverFirst = text(first);
      assert.match(serverFirst, new RegExp(`^r=nonce${i}[A-Za-z0-9+/]{24},s=[A-Za-z0-9+/]{22}==,i=4096$`));
      challenges.push(serverFirst.replace(/^r=[^,]*,/, ""));
    }
    assert.equal(challenges[0], challenges[1], "the same salt for the same unknown name");
    assert.equal((await login(mechanism, "mallory", "pencil")).kind, "failure");
  });
});

Deno.test("ScramMechanism refuses channel binding, other identities and malformed messages clearly", async () => {
  await withUsers([await rfcLine()], async (users) => {
    const mechanism = new ScramMechanism(users);
    const refused = async (messages: string[], code: number, pattern: RegExp) => {
      const exchange = mechanism.start();
      for (const message of messages.slice(0, -1)) await exchange.step(encoder.encode(message));
      await assert.rejects(exchange.step(encoder.encode(messages.at(-1)!)), (error) => {
        assert.ok(error instanceof DfosError, String(error));
        assert.equal(error.code, code);
        assert.match(error.message, pattern);
        return true;
      });
    };
    await refused(
      ["p=tls-server-end-point,,n=user,r=abc"],
      Status.UNSUPPORTED,
      /^Cannot log in with SCRAM-SHA-256: channel binding \("p=tls-server-end-point"\) is not supported/,
    );
    await refused(["n,a=admin,n=user,r=abc"], Status.BAD_REQUEST, /for another \("admin"\) is not supported/);
    await refused(["n,,n=user"], Status.BAD_REQUEST, /^Cannot log in with SCRAM-SHA-256: client-first message/);
    await refused(["n,,n=user,r=abc,\xff"], Status.BAD_REQUEST, /client-first message has "\xff" where an extension/);
    const proof = new Uint8Array(32).toBase64();
    await refused(
      ["n,,n=user,r=abc", `c=biws,r=abcWRONG,p=${proof}`],
      Status.BAD_REQUEST,
      /another nonce than the server's/,
    );
    await refused(["n,,n=user,r=abc", "c=biws,r=abc"], Status.BAD_REQUEST, /no proof/);
  });
  // Not UTF-8 at all, in either message: said once, without the prefix twice.
  await withUsers([await rfcLine()], async (users) => {
    const notUtf8 = { message: "Cannot log in with SCRAM-SHA-256: message is not UTF-8" };
    const exchange = new ScramMechanism(users).start();
    await assert.rejects(exchange.step(new Uint8Array([0x6e, 0x2c, 0x2c, 0xff])), notUtf8);
    const second = new ScramMechanism(users).start();
    await second.step(encoder.encode("n,,n=user,r=abc"));
    await assert.rejects(second.step(new Uint8Array([0x63, 0x3d, 0xff])), notUtf8);
  });
});

Deno.test("ScramMechanism refuses channel binding data that does not match the gs2 header", async () => {
  await withUsers([await rfcLine()], async (users) => {
    const mechanism = new ScramMechanism(users, { serverNonce: () => "S" });
    const exchange = mechanism.start();
    await exchange.step(encoder.encode("y,,n=user,r=abc"));
    // "biws" is the header "n,,"; this client said "y,,", whose base64 is "eSws".
    await assert.rejects(
      exchange.step(encoder.encode(`c=biws,r=abcS,p=${new Uint8Array(32).toBase64()}`)),
      /channel binding data \("c="\) that does not match its gs2 header/,
    );
    const honest = mechanism.start();
    await honest.step(encoder.encode("y,,n=user,r=abc"));
    const result = await honest.step(encoder.encode(`c=eSws,r=abcS,p=${new Uint8Array(32).toBase64()}`));
    assert.equal(result.kind, "failure", "a well-formed final message with a wrong proof fails the login");
  });
});
