/**
 * A holder's re-assertion (`stillHolds`) reads its place the way every claimant does
 * (places.ts `currentClaims`): a key written far ahead of the place's claims does not count,
 * so planting `slots/<p>/9999999999` under a running holder does not make it step down, while
 * a legitimate successor (the next epoch) does.
 */
import assert from "node:assert/strict";
import { currentClaim, stillHolds } from "../src/cluster/holder.ts";
import { slotKey } from "../src/registry/layout.ts";
import { MemoryRegistry } from "./fakes/memory_registry.ts";

const enc = (s: string) => new TextEncoder().encode(s);
const noWait = () => Promise.resolve();

Deno.test("stillHolds: a far-ahead junk epoch does not unseat the holder; the next epoch does", async () => {
  const registry = new MemoryRegistry(() => Date.now());
  await registry.put(slotKey(0, 1), enc("server-a\n"));
  await registry.put("slots/0/9999999999", enc("intruder\n"));
  assert.deepEqual(await currentClaim(registry, 0), { epoch: 1, node: "server-a" });
  assert.deepEqual(await stillHolds(registry, { place: 0, epoch: 1 }, "server-a", noWait), {
    holds: true,
  });

  await registry.put(slotKey(0, 2), enc("server-b\n"));
  assert.deepEqual(await stillHolds(registry, { place: 0, epoch: 1 }, "server-a", noWait), {
    holds: false,
    takenBy: "server-b",
    epoch: 2,
  });
  // another place's claims are not this place's
  await registry.put(slotKey(1, 7), enc("server-c\n"));
  assert.deepEqual(await currentClaim(registry, 1), { epoch: 7, node: "server-c" });
  assert.equal(await currentClaim(registry, 2), undefined);
});
