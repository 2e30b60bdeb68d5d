/**
 * Tests of recipes (shared/recipe.ts) and chunk lists (shared/chunk_list.ts):
 * a recipe decodes to the same steps however its bytes are split, bad steps
 * are refused, a recipe cut inside a step is refused at its end, a flood of
 * one-byte pieces costs no more than the step's bytes, and groups cut where
 * the rule says, whatever surrounds them.
 *
 * @module
 */

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import fc from "fast-check";
import { propertyParameters } from "./_property_params.ts";
import { CHUNK_MAX_BYTES } from "./chunker.ts";
import { type ChunkEntry, endsGroup } from "./chunk_list.ts";
import { groupsOf, rootOf } from "./chunk_groups.ts";
import { chunkStep, dataStepHeader, groupStep, RecipeDecoder, type RecipeStep } from "./recipe.ts";
import { DfosError, Status } from "./status.ts";

function hashOf(n: number): Uint8Array {
  return new Uint8Array(createHash("sha256").update(String(n)).digest());
}

/** A recipe's bytes and the steps they hold. */
function recipe(kinds: number[]): { bytes: Uint8Array; steps: RecipeStep[] } {
  const parts: Uint8Array[] = [];
  const steps: RecipeStep[] = [];
  kinds.forEach((kind, i) => {
    if (kind === 0) {
      parts.push(groupStep(hashOf(i)));
      steps.push({ kind: "group", key: hashOf(i) });
    } else if (kind === 1) {
      parts.push(chunkStep(hashOf(i), 1000 + i));
      steps.push({ kind: "chunk", hash: hashOf(i), length: 1000 + i });
    } else {
      const bytes = new Uint8Array(1 + (i * 37) % 300).fill(i & 255);
      parts.push(dataStepHeader(bytes.length), bytes);
      steps.push({ kind: "data", bytes });
    }
  });
  const bytes = new Uint8Array(parts.reduce((n, part) => n + part.length, 0));
  let at = 0;
  for (const part of parts) {
    bytes.set(part, at);
    at += part.length;
  }
  return { bytes, steps };
}

function decodeAll(pieces: Uint8Array[]): RecipeStep[] {
  const decoder = new RecipeDecoder();
  const steps = pieces.flatMap((piece) => [...decoder.push(piece)]);
  decoder.finish();
  return steps;
}

Deno.test("a recipe decodes to the same steps however its bytes are split", () => {
  fc.assert(
    fc.property(
      fc.array(fc.integer({ min: 0, max: 2 }), { maxLength: 30 }),
      fc.array(fc.integer({ min: 1, max: 200 }), { minLength: 1, maxLength: 20 }),
      (kinds, cuts) => {
        const { bytes, steps } = recipe(kinds);
        const pieces: Uint8Array[] = [];
        let at = 0;
        for (let i = 0; at < bytes.length; i++) {
          const length = cuts[i % cuts.length];
          pieces.push(bytes.subarray(at, at + length));
          at += length;
        }
        assert.deepEqual(decodeAll(pieces), steps);
      },
    ),
    propertyParameters("recipe decoding for any split", 200),
  );
});

Deno.test("a recipe with an unknown step, an empty or oversized chunk, or cut inside a step is refused", () => {
  const refused = (pieces: Uint8Array[], pattern: RegExp) =>
    assert.throws(() => decodeAll(pieces), (error: unknown) => {
      assert.ok(error instanceof DfosError);
      assert.equal(error.code, Status.BAD_REQUEST);
      assert.match(error.message, pattern);
      return true;
    });
  refused([new Uint8Array([0x07])], /unknown recipe step 0x7/);
  refused([dataStepHeader(0)], /chunk of 0 bytes/);
  refused([dataStepHeader(CHUNK_MAX_BYTES + 1)], /chunk of 262145 bytes/);
  refused([chunkStep(hashOf(1), CHUNK_MAX_BYTES + 1)], /chunk of 262145 bytes/);
  refused([groupStep(hashOf(1)).subarray(0, 20)], /ends inside a step/);
  refused([dataStepHeader(10), new Uint8Array(9)], /ends inside a step/);
});

Deno.test("a chunk sent one byte at a time is joined once, not once per byte", () => {
  // A quadratic join would copy ~34 GB here (262,144 pieces times the bytes held); a linear one about 256 KiB.
  const decoder = new RecipeDecoder();
  const steps: RecipeStep[] = [...decoder.push(dataStepHeader(CHUNK_MAX_BYTES))];
  const one = new Uint8Array([42]);
  for (let i = 0; i < CHUNK_MAX_BYTES; i++) steps.push(...decoder.push(one));
  decoder.finish();
  assert.equal(steps.length, 1);
  assert.equal((steps[0] as { bytes: Uint8Array }).bytes.length, CHUNK_MAX_BYTES);
});

Deno.test("groups end after each chunk the rule marks, and a change touches only its own group", () => {
  const chunks: ChunkEntry[] = Array.from({ length: 2000 }, (_, i) => ({ hash: hashOf(i), length: 100 }));
  const groups = groupsOf(chunks);
  assert.equal(groups.reduce((n, group) => n + group.chunks, 0), chunks.length);
  let at = 0;
  for (const group of groups.slice(0, -1)) {
    at += group.chunks;
    assert.ok(endsGroup(chunks[at - 1].hash));
    for (let i = at - group.chunks; i < at - 1; i++) assert.ok(!endsGroup(chunks[i].hash));
  }
  // 2,000 chunks at 1 in 64: about 31 groups.
  assert.ok(groups.length > 15 && groups.length < 60, `${groups.length} groups`);
  const changed = chunks.slice();
  changed[1000] = { hash: hashOf(-1), length: 100 };
  const before = new Set(groups.map((group) => group.key.join()));
  const differing = groupsOf(changed).filter((group) => !before.has(group.key.join()));
  assert.ok(differing.length >= 1 && differing.length <= 2, `${differing.length} groups differ`);
  assert.notEqual(rootOf(changed), rootOf(chunks));
});
