/**
 * The chaos soak in the suite (issue 15, acceptance 1): AUTO_CONSUL_SOAK_MINUTES (default 3) of
 * faults from the fixed seed AUTO_CONSUL_SOAK_SEED (default 11), then the heal of the last one.
 * The registry alternates with the seed: odd → S3, even → folder. Seed 11 on S3 draws every
 * kind in its first round, the slowest last: kill -9 of run, kill -9 of consul, a partition, a
 * SIGSTOP of consul, the registry cut, all servers restarted, a server moved to a new address
 * (which heals only after consul's 30 s gossip reclaim: 55-110 s seen). At least 3 faults are
 * injected whatever the time; AUTO_CONSUL_SOAK_FAULTS caps their number (no cap by default).
 * AUTO_CONSUL_SOAK=0 skips this test. The 30-minute run is `deno task soak --minutes 30`
 * (RELIABILITY.md). Also: the schedule is a function of the seed.
 */
import assert from "node:assert/strict";
import { FAULT_KINDS, runSoak, schedule } from "../harness/soak.ts";

Deno.test("soak schedule: same seed, same schedule; every kind comes up in each round", () => {
  assert.deepEqual(schedule(42, "s3", 50), schedule(42, "s3", 50));
  assert.notDeepEqual(schedule(42, "s3", 50), schedule(43, "s3", 50));
  const first = schedule(7, "s3", FAULT_KINDS.length).map((f) => f.kind).sort();
  assert.deepEqual(first, [...FAULT_KINDS].sort());
  const folder = schedule(7, "folder", 60);
  assert.ok(folder.every((f) => f.kind !== "registry-outage"), "no registry cut on a folder");
  // The suite's seed: every kind in its first round, the server move (the slowest heal) last.
  const suite = schedule(11, "s3", FAULT_KINDS.length).map((f) => f.kind);
  assert.deepEqual([...suite].sort(), [...FAULT_KINDS].sort());
  assert.equal(suite.at(-1), "server-move");
});

Deno.test({
  name: "soak: seeded faults (a short run) → no invariant violated, no acknowledged write lost",
  ignore: Deno.env.get("AUTO_CONSUL_SOAK") === "0",
}, async () => {
  // The run injects no fault after its minutes; it ends once the last one healed (or a
  // violation, within HEALTHY_BOUND_MS).
  const minutes = Number(Deno.env.get("AUTO_CONSUL_SOAK_MINUTES") ?? 3);
  const maxFaults = Number(Deno.env.get("AUTO_CONSUL_SOAK_FAULTS") ?? Infinity);
  const seed = Number(Deno.env.get("AUTO_CONSUL_SOAK_SEED") ?? 11);
  const registry = seed % 2 === 1 ? "s3" : "folder";
  const report = await runSoak({
    seed,
    minutes,
    maxFaults,
    minFaults: 3,
    registry,
    log: (l) => console.log(l),
  });
  console.log(JSON.stringify({ ...report, violations: report.violations.length }));
  assert.deepEqual(report.violations, [], "no invariant violated");
  assert.deepEqual(report.lost, [], "every acknowledged write is readable");
  assert.deepEqual(report.dead, [], "every run process is alive at the end");
  const injected = Object.values(report.faults).reduce((a, b) => a + b, 0);
  // The run goes on past its minutes until 3 faults were injected (a cap asks for fewer).
  const expected = Math.min(maxFaults, 3);
  assert.ok(injected >= expected, `at least ${expected} faults: ${JSON.stringify(report.faults)}`);
  const healed = Object.values(report.healthyMs).reduce((a, b) => a + b.length, 0);
  assert.equal(healed, injected, "one healthy cluster after each fault");
  assert.ok(report.acknowledged >= 20, `the workload wrote (${report.acknowledged} acknowledged)`);
});
