import assert from "node:assert/strict";
import { deriveKeys } from "../../shared/scram.ts";
import { formatSecret, isStoredSecret, makeSecret, parseSecret } from "./scram_secret.ts";

/** The salt of RFC 7677's example exchange (user "user", password "pencil"). */
const RFC = { password: "pencil", salt: "W22ZaJ0SNY7soEsUEjb6gQ==", iterations: 4096 };

const fromBase64 = (text: string) => Uint8Array.fromBase64(text);

Deno.test("formatSecret writes the PostgreSQL form and parseSecret reads it back", async () => {
  const stored = await deriveKeys(RFC.password, fromBase64(RFC.salt), RFC.iterations);
  const secret = { iterations: 4096, salt: fromBase64(RFC.salt), ...stored };
  const text = formatSecret(secret);
  assert.equal(
    text,
    `SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$${stored.storedKey.toBase64()}:${stored.serverKey.toBase64()}`,
  );
  assert.equal(isStoredSecret(text), true);
  assert.equal(isStoredSecret("pencil"), false);
  const read = parseSecret(text);
  assert.deepEqual(read, {
    iterations: 4096,
    salt: secret.salt,
    storedKey: stored.storedKey,
    serverKey: stored.serverKey,
  });

  const made = await makeSecret("pencil", 5000);
  assert.equal(made.iterations, 5000);
  assert.equal(made.salt.length, 16);
  assert.deepEqual(parseSecret(formatSecret(made)), made);
  assert.notDeepEqual((await makeSecret("pencil")).salt, (await makeSecret("pencil")).salt);
});

Deno.test("parseSecret refuses malformed secrets, short keys and iteration counts out of range", () => {
  const key = new Uint8Array(32).toBase64();
  const good = `SCRAM-SHA-256$4096:c2FsdA==$${key}:${key}`;
  assert.equal(parseSecret(good).iterations, 4096);
  for (
    const bad of [
      "SCRAM-SHA-256$",
      `SCRAM-SHA-1$4096:c2FsdA==$${key}:${key}`,
      `SCRAM-SHA-256$4096:c2FsdA==$${key}`,
      `SCRAM-SHA-256$4096:c2FsdA$${key}:${key}`,
      `SCRAM-SHA-256$4096:c2FsdA==$${key.slice(4)}:${key}`,
      `SCRAM-SHA-256$4096:c2FsdA==$${key}:${new Uint8Array(16).toBase64()}`,
      `SCRAM-SHA-256$1000:c2FsdA==$${key}:${key}`,
      `SCRAM-SHA-256$99999999999:c2FsdA==$${key}:${key}`,
      `SCRAM-SHA-256$x:c2FsdA==$${key}:${key}`,
      `${good} `,
    ]
  ) {
    assert.throws(() => parseSecret(bad), SyntaxError, bad);
  }
});
