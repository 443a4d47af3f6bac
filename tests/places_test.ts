import assert from "node:assert/strict";
import {
  advisoryIsServer,
  currentClaims,
  decidePlace,
  MAX_EPOCH_LEAD,
  parseClaimBody,
  type PlaceInput,
} from "../src/cluster/places.ts";
import { parseSlotKey, slotKey } from "../src/registry/layout.ts";

const NO_LEADER = "no leader exists: a leaderless cluster's places are not taken";

const base = (over: Partial<PlaceInput>): PlaceInput => ({
  node: "me",
  servers: 3,
  expirySeconds: 120,
  claims: [],
  liveServers: new Set(),
  ...over,
});

Deno.test("slot keys round-trip and reject garbage", () => {
  assert.equal(slotKey(2, 7), "slots/2/0000000007");
  assert.deepEqual(parseSlotKey("slots/2/0000000007"), { place: 2, epoch: 7 });
  for (
    const bad of [
      "slots/2/7",
      "slots/x/0000000007",
      "slots/2/0000000007/x",
      "slots/../0000000001",
      "servers/2/0000000001",
      "slots/02/0000000007", // same claim as slots/2/0000000007 under another name
      "slots/2/00000000007", // 11 digits with a leading zero: likewise
      "slots/2/0000000000", // epochs start at 1
      "slots/2/1234567890123456", // 16 digits: beyond what a gap-free chain reaches
      "slots/100/0000000001",
      "slots/2/+000000007",
      "slots/2/0x00000007",
    ]
  ) {
    assert.equal(parseSlotKey(bad), undefined, bad);
  }
  // Every successor a writer creates from a readable epoch is readable and orders after it.
  for (const e of [1, 9_999_999_998, 9_999_999_999, 10_000_000_000, 99_999_999_999_999]) {
    const next = parseSlotKey(slotKey(4, e + 1));
    assert.deepEqual(next, { place: 4, epoch: e + 1 }, `successor of ${e}`);
  }
  assert.equal(parseSlotKey(slotKey(4, 999_999_999_999_999 + 1)), undefined);
  assert.equal(parseClaimBody("node-1\n"), "node-1");
  assert.equal(parseClaimBody("$(rm -rf /)"), undefined);
  assert.equal(parseClaimBody(undefined), undefined);
});

Deno.test("the current claim of a place: the highest epoch within reach of the claims below it", () => {
  const L = MAX_EPOCH_LEAD;
  const c = (place: number, ...epochs: number[]) => epochs.map((epoch) => ({ place, epoch }));
  const table: [string, { place: number; epoch: number }[], [number, number][]][] = [
    ["a normal chain", c(0, 1, 2, 3), [[0, 3]]],
    ["one entry per place, sorted", [...c(2, 1), ...c(0, 1, 2)], [[0, 2], [2, 1]]],
    ["an object far ahead is ignored", c(0, 1, 2, 9_999_999_999), [[0, 2]]],
    ["a far-ahead object alone is ignored: the place is free", c(0, 9_999_999_999), []],
    ["a chain whose oldest claims were deleted", c(1, 5, 6, 7), [[1, 7]]],
    ["a gap within reach counts", c(0, 1, 4), [[0, 4]]],
    ["exactly at the lead counts", c(0, L), [[0, L]]],
    ["one beyond the lead does not", c(0, L + 1), []],
    ["each counted claim extends the reach", c(0, 1, L + 1, L + 2), [[0, L + 2]]],
    ["out of order input", c(3, 3, 1, 2, 7), [[3, 7]]],
  ];
  for (const [name, input, want] of table) {
    assert.deepEqual(currentClaims(input).map((x) => [x.place, x.epoch]), want, name);
  }
  // Property: whatever is listed, the successor of the current epoch counts once created.
  const random = (() => {
    let a = 7;
    return () => ((a = (a * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  })();
  for (let i = 0; i < 2000; i++) {
    const pool = [1, 2, 3, L - 1, L, L + 1, L + 2, 2 * L, 9_999_999_999, 10 ** 14];
    const epochs = [
      ...new Set(Array.from({ length: Math.floor(random() * 8) }, () => {
        const e = pool[Math.floor(random() * pool.length)];
        return e + Math.floor(random() * 3);
      })),
    ];
    const cur = currentClaims(c(0, ...epochs))[0]?.epoch ?? 0;
    const next = currentClaims(
      c(0, ...epochs, cur + 1).filter((x, j, all) =>
        all.findIndex((y) => y.epoch === x.epoch) === j
      ),
    )[0]?.epoch;
    assert.ok(next !== undefined && next >= cur + 1, `${epochs}: current ${cur}, then ${next}`);
  }
});

Deno.test("place decisions", () => {
  const table: [string, Partial<PlaceInput>, ReturnType<typeof decidePlace>][] = [
    ["empty registry: all places free, lowest first", {}, {
      kind: "claim",
      attempts: [
        { place: 0, epoch: 1, why: "free" },
        { place: 1, epoch: 1, why: "free" },
        { place: 2, epoch: 1, why: "free" },
      ],
    }],
    ["a held place is skipped", {
      claims: [{ place: 0, epoch: 1, node: "a", ageSeconds: 500 }],
      liveServers: new Set(["a"]),
    }, {
      kind: "claim",
      attempts: [{ place: 1, epoch: 1, why: "free" }, { place: 2, epoch: 1, why: "free" }],
    }],
    ["all held by live servers: client", {
      claims: [0, 1, 2].map((k) => ({ place: k, epoch: 3, node: `s${k}`, ageSeconds: 9 })),
      liveServers: new Set(["s0", "s1", "s2"]),
    }, { kind: "claim", attempts: [] }],
    ["my own claim is kept across restarts (latest epoch wins)", {
      claims: [
        { place: 1, epoch: 1, node: "other", ageSeconds: 900 },
        { place: 1, epoch: 2, node: "me", ageSeconds: 900 },
      ],
    }, { kind: "hold", place: 1, epoch: 2 }],
    ["dead holder, old claim, a leader exists: stale, taken after the free ones", {
      leaderKnown: true,
      claims: [{ place: 0, epoch: 4, node: "dead", ageSeconds: 121 }],
    }, {
      kind: "claim",
      attempts: [
        { place: 1, epoch: 1, why: "free" },
        { place: 2, epoch: 1, why: "free" },
        { place: 0, epoch: 5, why: "stale" },
      ],
    }],
    ["a stale holder that never recorded itself (junk, a ghost): taken without a leader", {
      claims: [{ place: 0, epoch: 4, node: "ghost", ageSeconds: 121 }],
      recorded: new Set(["someone-else"]),
    }, {
      kind: "claim",
      attempts: [
        { place: 1, epoch: 1, why: "free" },
        { place: 2, epoch: 1, why: "free" },
        { place: 0, epoch: 5, why: "stale" },
      ],
    }],
    ["dead holder that recorded itself, no leader: only the free places (I2)", {
      recorded: new Set(["dead"]),
      claims: [{ place: 0, epoch: 4, node: "dead", ageSeconds: 121 }],
    }, {
      kind: "claim",
      attempts: [{ place: 1, epoch: 1, why: "free" }, { place: 2, epoch: 1, why: "free" }],
    }],
    ["dead holder but a fresh claim: not stale yet (it may be starting)", {
      servers: 1,
      claims: [{ place: 0, epoch: 4, node: "new", ageSeconds: 5 }],
    }, { kind: "claim", attempts: [] }],
    ["live holder with an old claim: not stale", {
      servers: 1,
      claims: [{ place: 0, epoch: 4, node: "old", ageSeconds: 9999 }],
      liveServers: new Set(["old"]),
    }, { kind: "claim", attempts: [] }],
    ["unreadable claim body counts as a dead holder", {
      servers: 1,
      leaderKnown: true,
      claims: [{ place: 0, epoch: 2, node: undefined, ageSeconds: 200 }],
    }, { kind: "claim", attempts: [{ place: 0, epoch: 3, why: "stale" }] }],
    ["my place was taken while I was away: lost, run as client", {
      servers: 1,
      held: { place: 0, epoch: 2 },
      claims: [{ place: 0, epoch: 3, node: "usurper", ageSeconds: 10 }],
      liveServers: new Set(["usurper"]),
    }, { kind: "lost", place: 0, takenBy: "usurper" }],
    ["whole-site outage: no leader, stale places are not taken (I2)", {
      claims: [0, 1, 2].map((k) => ({ place: k, epoch: 1, node: `s${k}`, ageSeconds: 300 })),
    }, { kind: "waiting", stale: 3, why: NO_LEADER }],
    ["whole-site outage of any length: still not taken (no grace any more)", {
      claims: [0, 1, 2].map((k) => ({ place: k, epoch: 1, node: `s${k}`, ageSeconds: 9e6 })),
    }, { kind: "waiting", stale: 3, why: NO_LEADER }],
    ["one dead server among live ones with a leader: replaced (I3)", {
      leaderKnown: true,
      claims: [
        { place: 0, epoch: 1, node: "s0", ageSeconds: 300 },
        { place: 1, epoch: 1, node: "s1", ageSeconds: 300 },
      ],
      liveServers: new Set(["s1"]),
    }, {
      kind: "claim",
      attempts: [{ place: 2, epoch: 1, why: "free" }, { place: 0, epoch: 2, why: "stale" }],
    }],
    ["a new-cluster plan frees the stale places it names (I5)", {
      claims: [0, 1, 2].map((k) => ({ place: k, epoch: 1, node: `s${k}`, ageSeconds: 300 })),
      plans: [{
        n: 1,
        kind: "new-cluster",
        by: "x",
        reason: "r",
        survivors: [],
        places: { "0": 1, "1": 1 },
        survivorIndex: 0,
        highestIndex: 0,
      }],
    }, {
      kind: "claim",
      attempts: [0, 1].map((k) => ({ place: k, epoch: 2, why: "stale" as const })),
    }],
    ["places beyond -s are ignored (N was lowered)", {
      servers: 1,
      claims: [{ place: 2, epoch: 1, node: "me", ageSeconds: 1 }],
    }, { kind: "claim", attempts: [{ place: 0, epoch: 1, why: "free" }] }],
  ];
  for (const [name, over, want] of table) {
    assert.deepEqual(decidePlace(base(over)), want, name);
  }
});

Deno.test("the gem's advisory rule", () => {
  assert.equal(advisoryIsServer("me", 3, new Set(["a", "b"])), true);
  assert.equal(advisoryIsServer("me", 3, new Set(["a", "b", "c"])), false);
  assert.equal(advisoryIsServer("a", 3, new Set(["a", "b", "c"])), true);
});

Deno.test("mixed fleets: every live server counts, a placeless one occupies a place", () => {
  const free = (place: number) => ({ place, epoch: 1, why: "free" as const });
  const claim = (place: number, node: string, ageSeconds = 5, epoch = 1) => ({
    place,
    epoch,
    node,
    ageSeconds,
  });
  const table: [string, Partial<PlaceInput>, ReturnType<typeof decidePlace>][] = [
    ["-s 1, a live gem server (no slots/): client, no second bootstrap", {
      servers: 1,
      liveServers: new Set(["gem-1"]),
    }, { kind: "claim", attempts: [], placeless: ["gem-1"] }],
    ["-s 3, one live gem server: only two places may be tried, lowest first", {
      servers: 3,
      liveServers: new Set(["gem-1"]),
    }, { kind: "claim", attempts: [free(0), free(1)], placeless: ["gem-1"] }],
    ["-s 3, a gem server and one of ours: one spare place", {
      servers: 3,
      claims: [claim(0, "ours-0")],
      liveServers: new Set(["gem-1", "ours-0"]),
    }, { kind: "claim", attempts: [free(1)], placeless: ["gem-1"] }],
    ["-s 3, a gem server and two of ours (places 1 and 2): full, place 0 not taken", {
      servers: 3,
      claims: [claim(1, "ours-1"), claim(2, "ours-2")],
      liveServers: new Set(["gem-1", "ours-1", "ours-2"]),
    }, { kind: "claim", attempts: [], placeless: ["gem-1"] }],
    ["-s 3, three gem servers: client", {
      servers: 3,
      liveServers: new Set(["gem-1", "gem-2", "gem-3"]),
    }, { kind: "claim", attempts: [], placeless: ["gem-1", "gem-2", "gem-3"] }],
    ["-s 3, two gem servers and a stale place of ours: one place, free ones first", {
      servers: 3,
      claims: [claim(0, "dead", 500)],
      liveServers: new Set(["gem-1", "gem-2"]),
    }, { kind: "claim", attempts: [free(1)], placeless: ["gem-1", "gem-2"] }],
    ["-s 1, a gem server and a stale place of ours: no place", {
      servers: 1,
      claims: [claim(0, "dead", 500)],
      liveServers: new Set(["gem-1"]),
    }, { kind: "claim", attempts: [], placeless: ["gem-1"] }],
    ["-s 2, a gem server, one of ours and a stale place: full", {
      servers: 2,
      claims: [claim(0, "dead", 500), claim(1, "ours-1")],
      liveServers: new Set(["gem-1"]),
    }, { kind: "claim", attempts: [], placeless: ["gem-1"] }],
    ["-s 3, a just-claimed place (no heartbeat yet) counts as held", {
      servers: 3,
      claims: [claim(0, "starting", 1)],
      liveServers: new Set(["gem-1"]),
    }, { kind: "claim", attempts: [free(1)], placeless: ["gem-1"] }],
    ["the gem server expired (not live any more): its capacity is freed", {
      servers: 1,
      liveServers: new Set(),
    }, { kind: "claim", attempts: [free(0)] }],
    ["my own live server heartbeat does not count against me", {
      servers: 1,
      liveServers: new Set(["me"]),
    }, { kind: "claim", attempts: [free(0)] }],
    ["a live holder of a place beyond -s (it was lowered) occupies one", {
      servers: 2,
      claims: [claim(0, "ours-0"), claim(2, "ours-2")],
      liveServers: new Set(["ours-0", "ours-2"]),
    }, { kind: "claim", attempts: [], placeless: ["ours-2"] }],
    ["a holder keeps its place whatever the count", {
      servers: 1,
      claims: [claim(0, "me")],
      liveServers: new Set(["gem-1", "me"]),
    }, { kind: "hold", place: 0, epoch: 1 }],
    ["no leader: stale places refused, the free one within the spare capacity", {
      servers: 3,
      claims: [claim(0, "dead-0", 500), claim(1, "dead-1", 500)],
      liveServers: new Set(["gem-1"]),
    }, { kind: "claim", attempts: [free(2)], placeless: ["gem-1"] }],
  ];
  for (const [what, over, want] of table) {
    assert.deepEqual(decidePlace(base(over)), want, what);
  }
});
