import assert from "node:assert/strict";
import { DfosError, Status } from "../../shared/status.ts";
import { scramMechanism } from "./scram.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** RFC 7677, section 3. */
const RFC = {
  nonce: "rOprNGfwEbeRWgbNEkqO",
  clientFirst: "n,,n=user,r=rOprNGfwEbeRWgbNEkqO",
  serverFirst: "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
  clientFinal: "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0," +
    "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
  serverFinal: "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
};

function rfcClient() {
  return scramMechanism({ user: "user", password: "pencil" }, { nonce: RFC.nonce });
}

/** Expects a refusal of the server (BAD_REQUEST, so exit code 1) whose message matches. */
async function assertRefused(promise: Promise<unknown>, message: RegExp): Promise<void> {
  await assert.rejects(promise, (error) => {
    assert.ok(error instanceof DfosError, String(error));
    assert.equal(error.code, Status.BAD_REQUEST);
    assert.match(error.message, message);
    return true;
  });
}

Deno.test("scramMechanism plays the client's part of the RFC 7677 example", async () => {
  const client = rfcClient();
  assert.equal(client.name, "SCRAM-SHA-256");
  assert.equal(client.sendsPassword, false);
  assert.equal(decoder.decode(await client.start()), RFC.clientFirst);
  assert.equal(decoder.decode(await client.step(encoder.encode(RFC.serverFirst))), RFC.clientFinal);
  await client.finish(encoder.encode(RFC.serverFinal));
});

Deno.test("scramMechanism refuses a server whose signature is wrong", async () => {
  const client = rfcClient();
  await client.start();
  await client.step(encoder.encode(RFC.serverFirst));
  await assertRefused(
    client.finish(encoder.encode("v=7rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")),
    /^Cannot log in with SCRAM-SHA-256: the server's signature is wrong: it does not know the password/,
  );
});

Deno.test("scramMechanism refuses a server that accepts the login without a challenge", async () => {
  const client = rfcClient();
  await client.start();
  await assertRefused(client.finish(encoder.encode(RFC.serverFinal)), /accepted the login without a challenge/);
  await assertRefused(rfcClient().finish(new Uint8Array(0)), /without a challenge/);
});

Deno.test("scramMechanism refuses a server-final error, an empty one, and a second challenge", async () => {
  const failing = rfcClient();
  await failing.start();
  await failing.step(encoder.encode(RFC.serverFirst));
  await assertRefused(failing.finish(encoder.encode("e=invalid-proof")), /the server answered "e=invalid-proof"/);

  const empty = rfcClient();
  await empty.start();
  await empty.step(encoder.encode(RFC.serverFirst));
  await assertRefused(empty.finish(new Uint8Array(0)), /server-final message/);

  const twice = rfcClient();
  await twice.start();
  await twice.step(encoder.encode(RFC.serverFirst));
  await assertRefused(twice.step(encoder.encode(RFC.serverFirst)), /second challenge/);
});

Deno.test("scramMechanism refuses a challenge with a foreign nonce or an iteration count out of range", async () => {
  const cases: [string, RegExp][] = [
    ["r=someoneElsesNonce,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096", /nonce does not extend the client's/],
    ["r=rOprNGfwEbeRWgbNEkqO,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096", /nonce does not extend the client's/],
    ["r=rOprNGfwEbeRWgbNEkqOxyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=1", /asks for 1 iterations; dfos takes 4096 to 10000000/],
    ["r=rOprNGfwEbeRWgbNEkqOxyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4000000000", /asks for 4000000000 iterations/],
    ["r=rOprNGfwEbeRWgbNEkqOxyz,i=4096", /server-first message has "i=4096" where "s=" belongs/],
    ["m=ext,r=rOprNGfwEbeRWgbNEkqOxyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096", /extension/],
  ];
  for (const [serverFirst, message] of cases) {
    const client = rfcClient();
    await client.start();
    await assertRefused(client.step(encoder.encode(serverFirst)), message);
  }
});

Deno.test("scramMechanism escapes = and , in the user name and makes a fresh nonce each time", async () => {
  const first = decoder.decode(await scramMechanism({ user: "a=b,c", password: "x" }).start());
  assert.match(first, /^n,,n=a=3Db=2Cc,r=[A-Za-z0-9+/]{24}$/);
  const again = decoder.decode(await scramMechanism({ user: "a=b,c", password: "x" }).start());
  assert.notEqual(first, again);
});
