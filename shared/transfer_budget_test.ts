import assert from "node:assert/strict";
import { activeTransfers, beginTransfer, pieceBytes, TRANSFER_BUDGET_BYTES } from "./transfer_budget.ts";

Deno.test("pieceBytes is 1 MiB for a lone transfer and shrinks as transfers are added, down to 64 KiB", () => {
  const before = activeTransfers();
  const ends = [beginTransfer()];
  assert.equal(pieceBytes(), 1 << 20);
  while (activeTransfers() < before + 32) ends.push(beginTransfer());
  assert.ok(pieceBytes() * 4 * activeTransfers() <= TRANSFER_BUDGET_BYTES, "32 transfers stay within the budget");
  assert.equal(pieceBytes(), 512 * 1024);
  while (activeTransfers() < before + 2000) ends.push(beginTransfer());
  assert.equal(pieceBytes(), 64 * 1024);
  for (const end of ends) end();
  assert.equal(activeTransfers(), before);
});

Deno.test("beginTransfer's end counts once, however often it is called", () => {
  const before = activeTransfers();
  const end = beginTransfer();
  end();
  end();
  assert.equal(activeTransfers(), before);
});
