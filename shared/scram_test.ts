import assert from "node:assert/strict";
import {
  authMessage,
  clientProof,
  deriveKeys,
  escapeSaslName,
  formatClientFinalWithoutProof,
  formatClientFirst,
  formatServerFinal,
  formatServerFirst,
  GS2_HEADER,
  makeNonce,
  parseClientFinal,
  parseClientFirst,
  parseServerFinal,
  parseServerFirst,
  saslPrep,
  serverSignature,
  unescapeSaslName,
  verifyClientProof,
} from "./scram.ts";

/** The example exchange of RFC 7677, section 3: user "user", password "pencil". */
const RFC = {
  user: "user",
  password: "pencil",
  clientNonce: "rOprNGfwEbeRWgbNEkqO",
  serverNonce: "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
  salt: "W22ZaJ0SNY7soEsUEjb6gQ==",
  iterations: 4096,
  clientFirst: "n,,n=user,r=rOprNGfwEbeRWgbNEkqO",
  serverFirst: "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
  clientFinal: "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0," +
    "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
  serverFinal: "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
};

const fromBase64 = (text: string) => Uint8Array.fromBase64(text);

Deno.test("scram reproduces the RFC 7677 example exchange, client side and server side", async () => {
  // Client: client-first.
  const clientFirst = formatClientFirst(RFC.user, RFC.clientNonce);
  assert.equal(clientFirst, RFC.clientFirst);

  // Server: reads it, answers server-first from the user's stored secret.
  const first = parseClientFirst(clientFirst);
  assert.deepEqual(
    { ...first },
    {
      gs2Header: "n,,",
      channelBinding: "n",
      authzid: "",
      user: "user",
      nonce: RFC.clientNonce,
      bare: "n=user,r=rOprNGfwEbeRWgbNEkqO",
    },
  );
  const stored = await deriveKeys(RFC.password, fromBase64(RFC.salt), RFC.iterations);
  const serverFirst = formatServerFirst({
    nonce: first.nonce + RFC.serverNonce,
    salt: fromBase64(RFC.salt),
    iterations: RFC.iterations,
  });
  assert.equal(serverFirst, RFC.serverFirst);

  // Client: reads server-first, derives its keys, answers client-final with the proof.
  const challenge = parseServerFirst(serverFirst);
  assert.equal(challenge.iterations, 4096);
  const keys = await deriveKeys(RFC.password, challenge.salt, challenge.iterations);
  const withoutProof = formatClientFinalWithoutProof(GS2_HEADER, challenge.nonce);
  const clientSide = authMessage("n=user,r=rOprNGfwEbeRWgbNEkqO", serverFirst, withoutProof);
  const proof = await clientProof(keys, clientSide);
  const clientFinal = `${withoutProof},p=${proof.toBase64()}`;
  assert.equal(clientFinal, RFC.clientFinal);

  // Server: checks the proof against StoredKey alone, signs with ServerKey.
  const final = parseClientFinal(clientFinal);
  assert.equal(final.channelBinding, "biws");
  assert.equal(final.nonce, first.nonce + RFC.serverNonce);
  assert.equal(final.withoutProof, withoutProof);
  const serverSide = authMessage(first.bare, serverFirst, final.withoutProof);
  assert.equal(serverSide, clientSide);
  assert.equal(await verifyClientProof(stored.storedKey, serverSide, final.proof), true);
  const serverFinal = formatServerFinal(await serverSignature(stored.serverKey, serverSide));
  assert.equal(serverFinal, RFC.serverFinal);

  // Client: the signature it expects is the one the server sent.
  const expected = await serverSignature(keys.serverKey, clientSide);
  assert.deepEqual(parseServerFinal(serverFinal), { signature: expected });
});

Deno.test("verifyClientProof refuses a proof made with another password or for another message", async () => {
  const salt = fromBase64(RFC.salt);
  const stored = await deriveKeys(RFC.password, salt, RFC.iterations);
  const message = authMessage("n=user,r=abc", "r=abcdef,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096", "c=biws,r=abcdef");
  const right = await clientProof(stored, message);
  assert.equal(await verifyClientProof(stored.storedKey, message, right), true);
  const wrongKeys = await deriveKeys("pencil2", salt, RFC.iterations);
  assert.equal(await verifyClientProof(stored.storedKey, message, await clientProof(wrongKeys, message)), false);
  assert.equal(await verifyClientProof(stored.storedKey, `${message}x`, right), false);
  const flipped = right.slice();
  flipped[31] ^= 1;
  assert.equal(await verifyClientProof(stored.storedKey, message, flipped), false);
  assert.equal(await verifyClientProof(stored.storedKey, message, right.subarray(0, 31)), false);
});

Deno.test("saslPrep maps spaces, removes invisible characters and normalises to NFKC", () => {
  assert.equal(saslPrep("pencil"), "pencil");
  assert.equal(saslPrep("I\u00ADX"), "IX"); // soft hyphen: mapped to nothing (RFC 4013 example)
  assert.equal(saslPrep("a\u00A0b\u3000c\u200Bd"), "a b c d"); // non-ASCII spaces
  assert.equal(saslPrep("\uFB01le"), "file"); // ligature, NFKC
  assert.equal(saslPrep("\u2168"), "IX"); // roman numeral nine, NFKC (RFC 4013 example)
  assert.equal(saslPrep("e\u0301"), "\u00E9"); // composed
  assert.equal(saslPrep("\u00AA"), "a"); // RFC 4013 example: ordinal indicator
  assert.equal(saslPrep(" spaced "), " spaced "); // ASCII spaces kept
});

Deno.test("deriveKeys prepares the password: NFKC-equal passwords give the same keys", async () => {
  const salt = new Uint8Array(16);
  const a = await deriveKeys("\uFB01le", salt, 4096);
  const b = await deriveKeys("file", salt, 4096);
  const c = await deriveKeys("fi1e", salt, 4096);
  assert.deepEqual(a, b);
  assert.notDeepEqual(a.storedKey, c.storedKey);
});

Deno.test("escapeSaslName and unescapeSaslName handle = and , as RFC 5802 says", () => {
  assert.equal(escapeSaslName("a=b,c"), "a=3Db=2Cc");
  assert.equal(escapeSaslName("plain"), "plain");
  assert.equal(unescapeSaslName("a=3Db=2Cc"), "a=b,c");
  assert.equal(unescapeSaslName(escapeSaslName("=2C=3D,,==")), "=2C=3D,,==");
  for (const bad of ["a=", "a=3", "a=3d", "a=2c", "a==", "a=41"]) {
    assert.throws(() => unescapeSaslName(bad), SyntaxError, bad);
  }
  assert.equal(formatClientFirst("x,y=z", "nonce"), "n,,n=x=2Cy=3Dz,r=nonce");
  assert.equal(parseClientFirst("n,,n=x=2Cy=3Dz,r=nonce").user, "x,y=z");
});

Deno.test("parseClientFirst reads the gs2 header and refuses what it does not know", () => {
  const y = parseClientFirst("y,,n=bob,r=abc");
  assert.equal(y.gs2Header, "y,,");
  assert.equal(y.channelBinding, "y");
  const p = parseClientFirst("p=tls-server-end-point,,n=bob,r=abc");
  assert.equal(p.channelBinding, "p=tls-server-end-point");
  assert.equal(p.gs2Header, "p=tls-server-end-point,,");
  const a = parseClientFirst("n,a=b=3Dob,n=bob,r=abc,x=ext");
  assert.equal(a.authzid, "b=ob");
  assert.equal(a.bare, "n=bob,r=abc,x=ext");
  for (
    const bad of [
      "",
      "n",
      "n,",
      "x,,n=bob,r=abc",
      "n,b=c,n=bob,r=abc",
      "n,,m=ext,n=bob,r=abc",
      "n,,r=abc,n=bob",
      "n,,n=bob",
      "n,,n=bob,r=",
      "n,,n=bob,r=a b",
      "n,,n=bo=b,r=abc",
      "n,,n=bob,r=abc,",
      "n,,n=bob,r=abc,junk",
    ]
  ) {
    assert.throws(() => parseClientFirst(bad), SyntaxError, JSON.stringify(bad));
  }
});

Deno.test("parseServerFirst and parseClientFinal refuse malformed messages", () => {
  for (
    const bad of [
      "",
      "m=x,r=abc,s=c2FsdA==,i=4096",
      "r=abc,s=c2FsdA,i=4096",
      "r=abc,s=,i=4096",
      "r=abc,s=c2FsdA==",
      "r=abc,s=c2FsdA==,i=0",
      "r=abc,s=c2FsdA==,i=4096x",
      "r=abc,s=c2FsdA==,i=-1",
      "s=c2FsdA==,r=abc,i=4096",
      "r=abc,s=c2FsdA==,i=4096,junk",
    ]
  ) {
    assert.throws(() => parseServerFirst(bad), SyntaxError, JSON.stringify(bad));
  }
  const proof = new Uint8Array(32).fill(7).toBase64();
  assert.equal(parseClientFinal(`c=biws,r=abc,x=ext,p=${proof}`).withoutProof, "c=biws,r=abc,x=ext");
  for (
    const bad of [
      "",
      "c=biws,r=abc",
      `r=abc,c=biws,p=${proof}`,
      `c=biws,r=abc,p=${proof.slice(0, -1)}`,
      `c=biws,r=abc,p=${new Uint8Array(31).toBase64()}`,
      `c=biws,r=abc,p=${proof},x=late`,
      `c=biws,r=abc,junk,p=${proof}`,
    ]
  ) {
    assert.throws(() => parseClientFinal(bad), SyntaxError, JSON.stringify(bad));
  }
  assert.deepEqual(parseServerFinal("e=invalid-proof"), { error: "invalid-proof" });
  assert.throws(() => parseServerFinal("x=1"), SyntaxError);
  assert.throws(() => parseServerFinal("v=***"), SyntaxError);
});

Deno.test("makeNonce returns fresh printable nonces without commas", () => {
  const nonces = new Set(Array.from({ length: 100 }, makeNonce));
  assert.equal(nonces.size, 100);
  for (const nonce of nonces) assert.match(nonce, /^[\x21-\x2b\x2d-\x7e]{24}$/);
});
