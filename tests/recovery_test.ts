/** Table tests of the recovery deciders (src/cluster/recovery.ts, docs/recovery.md). */
import assert from "node:assert/strict";
import {
  decideAllLost,
  decideRecovery,
  mayTakeStale,
  type RecoveryInput,
} from "../src/cluster/recovery.ts";
import {
  encodeHolderRecord,
  encodePlan,
  type HolderRecord,
  parseHolderRecord,
  parsePlan,
  parseRecoveryKey,
  peersJson,
  recoveryKey,
  type SeenPlan,
  type SeenRecord,
} from "../src/cluster/records.ts";

const id = (n: number) => `0000000${n}-aaaa-bbbb-cccc-000000000000`;

function rec(n: number, over: Partial<SeenRecord> = {}, raft: Partial<HolderRecord["raft"]> = {}) {
  return {
    node: `s${n}`,
    nodeId: id(n),
    address: `127.0.0.${n}`,
    place: n,
    epoch: 1,
    ageSeconds: 1,
    ...over,
    raft: { state: "Candidate", lastIndex: 100 + n, lastTerm: 5, leader: false, ...raft },
  } satisfies SeenRecord;
}

const voters3 = [1, 2, 3].map((n) => ({ id: id(n), address: `127.0.0.${n}:8300` }));

function input(over: Partial<RecoveryInput> = {}): RecoveryInput {
  return {
    node: "s1",
    autoRecover: true,
    expirySeconds: 3,
    waitSeconds: 15,
    leaderlessSeconds: 20,
    leaderNow: false,
    self: { nodeId: id(1), address: "127.0.0.1", lastIndex: 101, lastTerm: 5 },
    voters: voters3,
    records: [rec(2, { ageSeconds: 30 }), rec(3, { ageSeconds: 30 }, { lastIndex: 140 })],
    plans: [],
    lastApplied: 0,
    ...over,
  };
}

Deno.test("holder records and plans round-trip; garbage is rejected", () => {
  const r: HolderRecord = {
    node: "s-1",
    nodeId: id(1),
    address: "127.0.0.1",
    place: 0,
    epoch: 3,
    raft: { state: "Leader", lastIndex: 7, lastTerm: 2, leader: true, leaderFor: 30 },
  };
  assert.deepEqual(parseHolderRecord(encodeHolderRecord(r)), r);
  for (
    const bad of [
      undefined,
      "",
      "[]",
      "null",
      "{",
      JSON.stringify({ ...r, node: "$(x)" }),
      JSON.stringify({ ...r, nodeId: "nope" }),
      JSON.stringify({ ...r, address: "0.0.0.0" }),
      JSON.stringify({ ...r, place: -1 }),
      JSON.stringify({ ...r, raft: { ...r.raft, lastIndex: "7" } }),
      JSON.stringify({ ...r, raft: { ...r.raft, state: "x y" } }),
      "x".repeat(5000),
    ]
  ) assert.equal(parseHolderRecord(bad), undefined, String(bad).slice(0, 40));
  const plan = {
    kind: "peers" as const,
    by: "s1",
    reason: "r",
    survivors: [{ node: "s1", nodeId: id(1), address: "127.0.0.1" }],
    places: { "0": 2 },
    survivorIndex: 5,
    highestIndex: 9,
  };
  assert.deepEqual(parsePlan(4, encodePlan(plan)), { n: 4, ...plan });
  assert.equal(parsePlan(4, encodePlan({ ...plan, kind: "x" as "peers" })), undefined);
  assert.equal(parsePlan(4, encodePlan({ ...plan, places: { "../x": 1 } })), undefined);
  assert.equal(
    parsePlan(4, encodePlan({ ...plan, survivors: [{ node: "s", nodeId: "x", address: "1" }] })),
    undefined,
  );
  assert.equal(recoveryKey(12), "recovery/0000000012");
  assert.equal(parseRecoveryKey("recovery/0000000012"), 12);
  assert.equal(parseRecoveryKey("recovery/12"), undefined);
});

Deno.test("peers.json is raft protocol 3: id, address IP:8300, non_voter", () => {
  assert.deepEqual(
    JSON.parse(peersJson([
      { node: "a", nodeId: id(1), address: "10.0.0.1" },
      { node: "b", nodeId: id(2), address: "fd00::1" },
    ])),
    [
      { id: id(1), address: "10.0.0.1:8300", non_voter: false },
      { id: id(2), address: "[fd00::1]:8300", non_voter: false },
    ],
  );
});

Deno.test("who may take a stale place", () => {
  const newCluster = {
    n: 3,
    kind: "new-cluster" as const,
    by: "x",
    reason: "policy",
    survivors: [],
    places: { "0": 4, "1": 2 },
    survivorIndex: 0,
    highestIndex: 0,
  };
  const table: [string, Parameters<typeof mayTakeStale>[0], boolean][] = [
    ["a leader exists (I3)", { leaderKnown: true, place: 0, epoch: 4, plans: [] }, true],
    ["no leader, no plan (I2)", { leaderKnown: false, place: 0, epoch: 4, plans: [] }, false],
    ["a new-cluster plan covers the claim", {
      leaderKnown: false,
      place: 0,
      epoch: 4,
      plans: [newCluster],
    }, true],
    ["a newer claim than the plan knew", {
      leaderKnown: false,
      place: 1,
      epoch: 3,
      plans: [newCluster],
    }, false],
    ["a place the plan does not name", {
      leaderKnown: false,
      place: 2,
      epoch: 1,
      plans: [newCluster],
    }, false],
    ["a peers plan does not free places", {
      leaderKnown: false,
      place: 0,
      epoch: 4,
      plans: [{ ...newCluster, kind: "peers" }],
    }, false],
  ];
  for (const [what, i, ok] of table) assert.equal(mayTakeStale(i).ok, ok, what);
});

Deno.test("quorum recovery decisions (I4, I6)", () => {
  const plan: SeenPlan = {
    n: 2,
    kind: "peers",
    by: "s3",
    reason: "r",
    survivors: [{ node: "s1", nodeId: id(1), address: "127.0.0.1" }],
    places: {},
    survivorIndex: 101,
    highestIndex: 140,
    ageSeconds: 2,
  };
  const table: [string, Partial<RecoveryInput>, string, RegExp?][] = [
    ["the local agent knows a leader", { leaderNow: true }, "none", /a leader exists/],
    [
      "a fresh record knows a leader",
      {
        records: [rec(2, {}, { leader: true }), rec(3, { ageSeconds: 30 })],
      },
      "none",
      /a leader exists/,
    ],
    ["a stale record's leader does not count", {
      records: [rec(2, { ageSeconds: 30 }, { leader: true }), rec(3, { ageSeconds: 30 })],
    }, "publish"],
    [
      "two of three alive: an election, not a lost quorum",
      {
        records: [rec(2), rec(3, { ageSeconds: 30 })],
      },
      "none",
      /an election/,
    ],
    [
      "a partitioned server still writes its record: counted",
      {
        records: [rec(2, { ageSeconds: 2.9 }), rec(3, { ageSeconds: 2.9 })],
      },
      "none",
      /a quorum/,
    ],
    ["no raft configuration", { voters: [] }, "none", /no raft configuration/],
    [
      "not a voter",
      {
        voters: voters3.filter((v) => v.id !== id(1)),
      },
      "none",
      /not a voter/,
    ],
    ["quorum lost, W not over", { leaderlessSeconds: 10 }, "wait", /quorum lost/],
    ["quorum lost, opted out", { autoRecover: false }, "none", /--no-auto-recover/],
    ["quorum lost for W, sole survivor: publish", {}, "publish"],
    ["a record with another node-id is not a survivor", {
      records: [rec(2, { nodeId: id(9) }), rec(3, { ageSeconds: 30 })],
    }, "publish"],
    [
      "two survivors of five: the better log coordinates",
      {
        voters: [1, 2, 3, 4, 5].map((n) => ({ id: id(n), address: `127.0.0.${n}:8300` })),
        records: [rec(2, {}, { lastIndex: 150 })],
      },
      "none",
      /s2 coordinates/,
    ],
    ["two survivors of five, this one the better", {
      voters: [1, 2, 3, 4, 5].map((n) => ({ id: id(n), address: `127.0.0.${n}:8300` })),
      records: [rec(2, {}, { lastIndex: 50 })],
    }, "publish"],
    ["a plan names this node: apply", { plans: [plan] }, "apply"],
    ["a plan already applied: not again", { plans: [plan], lastApplied: 2 }, "none", /being/],
    ["an old plan is not applied", { plans: [{ ...plan, ageSeconds: 100 }] }, "publish"],
    [
      "a plan naming others only: wait for it",
      {
        plans: [{ ...plan, survivors: [{ node: "s2", nodeId: id(2), address: "127.0.0.2" }] }],
      },
      "none",
      /being carried out/,
    ],
  ];
  for (const [what, over, kind, why] of table) {
    const d = decideRecovery(input(over));
    assert.equal(d.kind, kind, `${what}: ${JSON.stringify(d)}`);
    if (why) assert.match((d as { why: string }).why, why, what);
  }
  const d = decideRecovery(input());
  assert.equal(d.kind, "publish");
  if (d.kind === "publish") {
    assert.deepEqual(d.plan.survivors, [{ node: "s1", nodeId: id(1), address: "127.0.0.1" }]);
    assert.equal(d.plan.survivorIndex, 101);
    assert.equal(d.plan.highestIndex, 140);
    assert.match(d.lossWarning ?? "", /102\.\.140/);
  }
  const a = decideRecovery(input({ plans: [plan] }));
  assert.equal(a.kind, "apply");
  if (a.kind === "apply") assert.equal(JSON.parse(a.peers)[0].id, id(1));
});

Deno.test("servers back on new addresses: raft's addresses rewritten, every voter kept", () => {
  // Raft still names the old addresses 127.0.0.1-3; the records say 10.0.0.1-3.
  const at = (n: number) => ({ address: `10.0.0.${n}` });
  const fresh = [rec(2, at(2)), rec(3, at(3))];
  const base: Partial<RecoveryInput> = {
    self: { nodeId: id(1), address: "10.0.0.1", lastIndex: 200, lastTerm: 6 },
    records: fresh,
    movedWaitSeconds: 3,
    leaderlessSeconds: 4,
  };
  const table: [string, Partial<RecoveryInput>, string, RegExp?][] = [
    ["all moved, no leader for the short wait: publish", base, "publish"],
    ["not yet the short wait", { ...base, leaderlessSeconds: 2 }, "wait", /new addresses/],
    ["a leader exists", { ...base, leaderNow: true }, "none", /a leader exists/],
    [
      "one voter missing: an election (or W's lost quorum), not a move",
      {
        ...base,
        records: [rec(2, at(2))],
      },
      "none",
      /an election/,
    ],
    [
      "nobody moved: an election",
      {
        ...base,
        self: { nodeId: id(1), address: "127.0.0.1", lastIndex: 200, lastTerm: 6 },
        records: [rec(2), rec(3)],
      },
      "none",
      /an election/,
    ],
    [
      "another has the better log: it rewrites",
      {
        ...base,
        self: { nodeId: id(1), address: "10.0.0.1", lastIndex: 1, lastTerm: 1 },
      },
      "none",
      /s2 rewrites|s3 rewrites/,
    ],
    ["opted out", { ...base, autoRecover: false }, "none", /auto-recovery is off/],
  ];
  for (const [what, over, kind, why] of table) {
    const d = decideRecovery(input(over));
    assert.equal(d.kind, kind, `${what}: ${JSON.stringify(d)}`);
    if (why) assert.match((d as { why: string }).why, why, what);
  }
  const d = decideRecovery(input(base));
  if (d.kind !== "publish") throw new Error("expected a plan");
  assert.deepEqual(
    d.plan.survivors.map((s) => s.address).sort(),
    ["10.0.0.1", "10.0.0.2", "10.0.0.3"],
    "every voter, at its new address",
  );
  assert.equal(d.lossWarning, undefined, "nothing lost");
});

Deno.test("short-lived leaders: they hold back no address rewrite, and every I4 step", () => {
  const at = (n: number) => ({ address: `10.0.0.${n}` });
  const moved: Partial<RecoveryInput> = {
    self: { nodeId: id(1), address: "10.0.0.1", lastIndex: 200, lastTerm: 6 },
    records: [rec(2, at(2)), rec(3, at(3), { leader: true, leaderFor: 0 })],
    movedWaitSeconds: 3,
    leaderlessSeconds: 0,
    leaderNow: true,
    stableLeader: false,
    stableLeaderlessSeconds: 4,
  };
  const plan = (survivors: number[]): SeenPlan => ({
    n: 1,
    kind: "peers",
    by: "s1",
    reason: "r",
    survivors: survivors.map((n) => ({ node: `s${n}`, nodeId: id(n), address: `10.0.0.${n}` })),
    places: {},
    survivorIndex: 1,
    highestIndex: 1,
    ageSeconds: 1,
  });
  const table: [string, Partial<RecoveryInput>, string, RegExp?][] = [
    ["moved, a leader of a moment: rewrite", moved, "publish"],
    ["moved, a stable leader: nothing", { ...moved, stableLeader: true }, "none", /a leader/],
    [
      "moved, the stable wait not over",
      { ...moved, stableLeaderlessSeconds: 1 },
      "wait",
      /new addresses/,
    ],
    [
      "a plan keeping every voter is not carried out under a leader of a moment either",
      { ...moved, plans: [plan([1, 2, 3])] },
      "none",
      /being carried out/,
    ],
    [
      "… and is once no leader is seen",
      {
        ...moved,
        leaderNow: false,
        records: [rec(2, at(2)), rec(3, at(3))],
        plans: [plan([1, 2, 3])],
      },
      "apply",
    ],
    [
      "a plan dropping a voter never is",
      { ...moved, plans: [plan([1])], records: [] },
      "none",
      /a leader exists/,
    ],
    [
      "quorum lost (I4) with a leader of a moment: nothing",
      { leaderNow: true, stableLeader: false, stableLeaderlessSeconds: 60 },
      "none",
      /a leader exists/,
    ],
    [
      "nobody moved, all alive, a leader of a moment: nothing",
      {
        ...moved,
        self: { nodeId: id(1), address: "127.0.0.1", lastIndex: 1, lastTerm: 1 },
        records: [rec(2), rec(3)],
      },
      "none",
      /a leader exists/,
    ],
  ];
  for (const [what, over, kind, why] of table) {
    const d = decideRecovery(input(over));
    assert.equal(d.kind, kind, `${what}: ${JSON.stringify(d)}`);
    if (why) assert.match((d as { why: string }).why, why, what);
  }
});

Deno.test("all servers lost (I5): each policy does what it says", () => {
  const base = {
    policy: "wait" as const,
    autoRecover: true,
    waitSeconds: 15,
    silentSeconds: 100,
    places: { "0": 1, "1": 1, "2": 1 },
    plans: [],
  };
  const w = decideAllLost(base, "n");
  assert.equal(w.kind, "wait");
  assert.match((w as { why: string }).why, /waiting for a server with the cluster's data/);
  const early = decideAllLost({ ...base, policy: "new-cluster", silentSeconds: 5 }, "n");
  assert.equal(early.kind, "wait");
  assert.match((early as { why: string }).why, /new cluster forms in 10 s/);
  const off = decideAllLost({ ...base, policy: "new-cluster", autoRecover: false }, "n");
  assert.equal(off.kind, "wait");
  const go = decideAllLost({ ...base, policy: "new-cluster" }, "n");
  assert.equal(go.kind, "publish");
  if (go.kind === "publish") assert.deepEqual(go.plan.places, base.places);
  const covered = decideAllLost({
    ...base,
    policy: "new-cluster",
    plans: go.kind === "publish" ? [{ ...go.plan, n: 1 }] : [],
  }, "n");
  assert.equal(covered.kind, "wait");
});

Deno.test("place holders in a rewrite: a voter removed by a leader of a moment is named again (I1 kept)", () => {
  // s1 (this node) and s3 are the voters of s1's configuration; s2 was removed from raft by a
  // leader of a moment. All three hold a place, all three on new addresses 10.0.0.x.
  const at = (n: number) => ({ address: `10.0.0.${n}` });
  const voters2 = [1, 3].map((n) => ({ id: id(n), address: `127.0.0.${n}:8300` }));
  const base: Partial<RecoveryInput> = {
    self: { nodeId: id(1), address: "10.0.0.1", lastIndex: 200, lastTerm: 6 },
    voters: voters2,
    records: [rec(2, at(2), { lastIndex: 150, lastTerm: 5 }), rec(3, at(3))],
    movedWaitSeconds: 3,
    leaderlessSeconds: 4,
    servers: 3,
  };
  const named = (over: Partial<RecoveryInput>) => {
    const d = decideRecovery(input({ ...base, ...over }));
    if (d.kind !== "publish") throw new Error(`expected a plan: ${JSON.stringify(d)}`);
    return d.plan.survivors.map((s) => s.node).sort();
  };
  // 2 voters: both hold every committed entry; a lagging third cannot form a majority alone.
  assert.deepEqual(named({}), ["s1", "s2", "s3"], "the removed place holder is named again");
  assert.deepEqual(named({ servers: undefined }), ["s1", "s3"], "without -s: voters only");
  assert.deepEqual(
    named({ records: [rec(2, { ...at(2), ageSeconds: 30 }), rec(3, at(3))] }),
    ["s1", "s3"],
    "a silent place holder is not named",
  );
  assert.deepEqual(
    named({ records: [rec(2, at(2), { lastIndex: 0, lastTerm: 0 }), rec(3, at(3))] }),
    ["s1", "s3"],
    "a place holder with no raft data is not named",
  );
  assert.deepEqual(
    named({ records: [rec(2, { ...at(2), place: 3 }), rec(3, at(3))] }),
    ["s1", "s3"],
    "a place beyond -s is not named",
  );
  assert.deepEqual(
    named({ records: [rec(2, at(2)), rec(4, { ...at(4), place: 2, epoch: 2 }), rec(3, at(3))] }),
    ["s1", "s3", "s4"],
    "one per place: the highest epoch",
  );
  assert.deepEqual(
    named({ servers: 2 }),
    ["s1", "s3"],
    "never more than -s voters (I1): s2's place 2 is beyond -s 2",
  );
  assert.deepEqual(
    named({
      servers: 4,
      records: [
        rec(2, at(2)),
        rec(3, { ...at(3), place: 0, epoch: 1 }),
        rec(4, {
          ...at(4),
          place: 3,
        }),
      ],
    }),
    ["s1", "s2", "s3", "s4"],
    "-s 4: both extra place holders",
  );
  // One voter (a leader of a moment alone in its configuration) and two lagging place
  // holders: they would be a majority of the new configuration without the entries only the
  // voter may hold — not named; a place holder whose log is as far as the voter's is.
  const alone: Partial<RecoveryInput> = {
    voters: [{ id: id(1), address: "127.0.0.1:8300" }],
    records: [
      rec(2, at(2), { lastIndex: 150, lastTerm: 5 }),
      rec(3, { ...at(3), place: 0 }, { lastIndex: 199 }),
    ],
  };
  assert.deepEqual(named(alone), ["s1"], "lagging place holders are left to consul");
  const d = decideRecovery(input({ ...base, ...alone }));
  assert.match((d as { plan: { reason: string } }).plan.reason, /left to consul: s2.*s3/);
  assert.deepEqual(
    named({
      ...alone,
      records: [
        rec(2, at(2), { lastIndex: 200, lastTerm: 6 }),
        rec(3, { ...at(3), place: 0 }, { lastIndex: 10 }),
      ],
    }),
    ["s1", "s2", "s3"],
    "a place holder as far as the voter is named; with it, a lagging one cannot make a majority",
  );
  // A stable leader: nothing, however the plan would look (I6).
  const led = decideRecovery(input({ ...base, leaderNow: true, stableLeader: true }));
  assert.equal(led.kind, "none");
  // The removed place holder carries out the plan that names it (not a voter of its own
  // configuration any more).
  const plan: SeenPlan = {
    n: 4,
    kind: "peers",
    by: "s1",
    reason: "r",
    survivors: [1, 2, 3].map((n) => ({ node: `s${n}`, nodeId: id(n), address: `10.0.0.${n}` })),
    places: {},
    survivorIndex: 200,
    highestIndex: 200,
    ageSeconds: 1,
  };
  const applied = decideRecovery(input({
    ...base,
    node: "s2",
    self: { nodeId: id(2), address: "10.0.0.2", lastIndex: 150, lastTerm: 5 },
    voters: voters2,
    plans: [plan],
  }));
  assert.equal(applied.kind, "apply", JSON.stringify(applied));
});
