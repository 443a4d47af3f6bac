/**
 * The invariant monitor's place rule (tests/harness/invariants.ts, V3) on an in-memory
 * registry: a new holder of a place is a violation unless allowed; a claim withdrawn (the top
 * claim deleted, the place back with its previous holder) is not a takeover.
 */
import assert from "node:assert/strict";
import { InvariantMonitor } from "./harness/invariants.ts";
import { MemoryRegistry } from "./fakes/memory_registry.ts";

function monitor(allowed: (from: string, to: string) => boolean = () => false) {
  const registry = new MemoryRegistry(() => Date.UTC(2026, 0, 1));
  const m = new InvariantMonitor({
    servers: 3,
    nodes: () => [],
    registry,
    allowedTakeover: (_place, from, to) => allowed(from, to),
  });
  return { registry, m };
}

Deno.test("monitor: a place claimed by another node is a violation unless allowed", async () => {
  const { registry, m } = monitor();
  registry.plant("slots/0/0000000001", "s0");
  await m.sample();
  registry.plant("slots/0/0000000002", "c4");
  await m.sample();
  assert.deepEqual(m.violations.map((v) => [v.kind, v.detail]), [[
    "place-taken",
    "place 0: s0 -> c4",
  ]]);
});

Deno.test("monitor: a withdrawn claim gives the place back without a violation", async () => {
  // s0 is killed (allowed: a client may claim its place); c4 claims, then s0 comes back while
  // c4 confirms: c4 deletes its claim and the place is s0's again.
  const { registry, m } = monitor((from) => from === "s0");
  registry.plant("slots/0/0000000001", "s0");
  await m.sample();
  registry.plant("slots/0/0000000002", "c4");
  await m.sample();
  registry.objects.delete("slots/0/0000000002");
  await m.sample();
  assert.deepEqual(m.violations, []);
  // A later real takeover from s0 by another node is still seen (here not allowed for c5).
  const strict = monitor();
  strict.registry.plant("slots/0/0000000001", "s0");
  await strict.m.sample();
  strict.registry.plant("slots/0/0000000002", "c4");
  await strict.m.sample();
  strict.registry.objects.delete("slots/0/0000000002");
  await strict.m.sample();
  assert.equal(strict.m.violations.length, 1, "c4's claim itself was not allowed");
  strict.registry.plant("slots/0/0000000003", "c5");
  await strict.m.sample();
  assert.deepEqual(strict.m.violations.map((v) => v.detail), [
    "place 0: s0 -> c4",
    "place 0: s0 -> c5",
  ]);
});
