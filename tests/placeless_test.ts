/**
 * Placeless raft servers (src/cluster/placeless.ts, I1): the leader of a cluster, when the
 * registry shows it holding a place, removes raft servers that hold no place, have no live
 * server heartbeat and are not alive in serf — on the second check in a row; a live one is
 * reported, never removed.
 */
import assert from "node:assert/strict";
import { type PlacelessInput, placelessVerdict, prunePlaceless } from "../src/cluster/placeless.ts";
import type { RaftServer, SerfMember } from "../src/consul/types.ts";
import { ConsulError } from "../src/errors.ts";
import { Logger } from "../src/log.ts";
import { heartbeatKey, slotKey } from "../src/registry/layout.ts";
import { MemoryRegistry } from "./fakes/memory_registry.ts";

const id = (n: number) => `0000000${n}-0000-4000-8000-000000000000`;

function raft(names: string[], leader = "new-0"): RaftServer[] {
  return names.map((node, i) => ({
    id: id(i),
    node,
    address: `10.0.0.${i + 1}:8300`,
    leader: node === leader,
    voter: true,
    protocolVersion: "3",
  }));
}

function member(node: string, i: number, status: SerfMember["status"]): SerfMember {
  return {
    name: node,
    addr: `10.0.0.${i + 1}`,
    port: 8301,
    status,
    statusCode: 0,
    isServer: true,
    tags: { role: "consul", id: id(i) },
  };
}

const NEW = ["new-0", "new-1", "new-2"];
const OLD = ["old-0", "old-1"];
const ALL = [...NEW, ...OLD];

Deno.test("placelessVerdict: who is kept, who is removed, and when", () => {
  const base: PlacelessInput = {
    selfId: id(0),
    node: "new-0",
    raft: raft(ALL),
    holders: NEW,
    liveServers: new Set<string>(),
    members: [
      ...NEW.map((n, i) => member(n, i, "alive")),
      member("old-0", 3, "failed"),
    ],
    previous: new Set<string>(),
  };
  const cases: [
    string,
    Partial<typeof base>,
    string | { remove: string[]; pending: string[]; alive: string[] },
  ][] = [
    [
      "first sight: pending (failed in serf, and unknown to serf)",
      {},
      { remove: [], pending: ["old-0", "old-1"], alive: [] },
    ],
    [
      "second sight: removed",
      { previous: new Set([id(3), id(4)]) },
      { remove: ["old-0", "old-1"], pending: [], alive: [] },
    ],
    [
      "seen before only one of them: that one removed, the other pending",
      { previous: new Set([id(4)]) },
      { remove: ["old-1"], pending: ["old-0"], alive: [] },
    ],
    [
      "alive in serf: reported, never removed, even when seen before",
      {
        members: [...NEW.map((n, i) => member(n, i, "alive")), member("old-0", 3, "alive")],
        previous: new Set([id(3), id(4)]),
      },
      { remove: ["old-1"], pending: [], alive: ["old-0"] },
    ],
    [
      "alive under its name but another ID: not this server (removed)",
      {
        members: [{ ...member("old-0", 3, "alive"), tags: { role: "consul", id: id(9) } }],
        previous: new Set([id(3), id(4)]),
      },
      { remove: ["old-0", "old-1"], pending: [], alive: [] },
    ],
    [
      "left in serf: removed like failed",
      { members: [member("old-0", 3, "left")], previous: new Set([id(3)]) },
      { remove: ["old-0"], pending: ["old-1"], alive: [] },
    ],
    [
      "a live server heartbeat (the gem's server): kept",
      { liveServers: new Set(["old-0"]), previous: new Set([id(3), id(4)]) },
      { remove: ["old-1"], pending: [], alive: [] },
    ],
    [
      "a place holder, whatever serf says (a promoted client restarting): kept",
      { holders: [...NEW, "old-1"], previous: new Set([id(3), id(4)]) },
      { remove: ["old-0"], pending: [], alive: [] },
    ],
    [
      "a place beyond -s still counts as a place",
      { holders: [...NEW, undefined, "old-0", "old-1"], previous: new Set([id(3), id(4)]) },
      { remove: [], pending: [], alive: [] },
    ],
    ["not the leader: nothing", { raft: raft(ALL, "new-1") }, "none"],
    ["no leader at all: nothing", { raft: raft(ALL, "nobody") }, "none"],
    ["this agent not in raft: nothing", { selfId: id(8) }, "none"],
    [
      "the registry does not show this node holding a place: nothing",
      { holders: ["x", "y", "z"], previous: new Set([id(3), id(4)]) },
      "none",
    ],
    ["no claims read at all: nothing", { holders: [] }, "none"],
    ["only its own place holders in raft: nothing to do", { raft: raft(NEW) }, {
      remove: [],
      pending: [],
      alive: [],
    }],
  ];
  for (const [what, change, want] of cases) {
    const v = placelessVerdict({ ...base, ...change });
    if (want === "none") {
      assert.equal(v.kind, "none", what);
      continue;
    }
    assert.equal(v.kind, "check", what);
    if (v.kind !== "check") continue;
    const names = (l: { node: string }[]) => l.map((p) => p.node);
    assert.deepEqual(
      { remove: names(v.remove), pending: names(v.pending), alive: names(v.alive) },
      want,
      what,
    );
  }
});

Deno.test("placelessVerdict: never the leader itself, even when it holds no place by name", () => {
  // The registry shows new-0 holding a place; the leader entry is never a candidate.
  const v = placelessVerdict({
    selfId: id(0),
    node: "new-0",
    raft: raft(["new-0", "x"]),
    holders: ["new-0"],
    liveServers: new Set(),
    members: [],
    previous: new Set([id(0), id(1)]),
  });
  assert.equal(v.kind, "check");
  if (v.kind === "check") assert.deepEqual(v.remove.map((p) => p.node), ["x"]);
});

/** A consul that leads (or not) with the given raft servers and serf members. */
function fakeConsul(
  o: { leads: () => boolean; servers: RaftServer[]; members: SerfMember[]; deny?: boolean },
) {
  const removed: string[] = [];
  const consul = {
    self: () =>
      Promise.resolve({
        node: "new-0",
        nodeId: id(0),
        datacenter: "dc1",
        version: "1.8.7",
        isServer: true,
        memberAddr: "10.0.0.1",
        memberPort: 8301,
        raw: { Stats: { raft: { state: o.leads() ? "Leader" : "Follower" } } },
      }),
    members: () => Promise.resolve(o.members),
    raftConfiguration: () =>
      Promise.resolve({
        servers: o.servers.filter((s) => !removed.includes(s.id)).map((s) => ({
          ...s,
          leader: s.node === "new-0" && o.leads(),
        })),
        index: 9,
      }),
    raftRemovePeer: (rid: string) => {
      if (o.deny) {
        return Promise.reject(new ConsulError("refused by ACLs: 403", 403, ""));
      }
      removed.push(rid);
      return Promise.resolve();
    },
  };
  return { consul, removed };
}

function world(now: number) {
  const registry = new MemoryRegistry(() => now);
  NEW.forEach((n, k) => registry.plant(slotKey(k, 1), n));
  // old-0 held place 0 before (epoch 1 was its; the new cluster took epoch 2 of place 0)
  registry.plant(slotKey(0, 2), "new-0");
  registry.plant(slotKey(0, 1), "old-0");
  registry.plant(heartbeatKey("servers", new Date(now), "new-0"), "10.0.0.1");
  return registry;
}

Deno.test("prunePlaceless: removes a dead placeless server on the second check, reports a live one once", async () => {
  const now = Date.UTC(2026, 0, 1);
  const registry = world(now);
  const lines: { level: string; msg: string }[] = [];
  const log = new Logger({
    level: "debug",
    format: "json",
    sink: (l) => lines.push(JSON.parse(l)),
  });
  let leads = false;
  const f = fakeConsul({
    leads: () => leads,
    servers: raft(ALL),
    members: [
      ...NEW.map((n, i) => member(n, i, "alive")),
      member("old-0", 3, "failed"),
      member("old-1", 4, "alive"),
    ],
  });
  const stop = new AbortController();
  let ticks = 0;
  const sleep = (_ms: number, signal?: AbortSignal) => {
    ticks++;
    if (ticks === 3) leads = true; // a follower for two ticks: nothing asked of the registry
    if (ticks === 8) stop.abort();
    return signal?.aborted ? Promise.reject(new Error("aborted")) : Promise.resolve();
  };
  const removed = await prunePlaceless(
    { node: "new-0", ticksMs: 1000, expirySeconds: 10 },
    { registry, consul: f.consul, sleep, log },
    stop.signal,
  );
  assert.equal(removed, 1);
  assert.deepEqual(f.removed, [id(3)], "old-0 (failed) removed; old-1 (alive) kept");
  assert.equal(
    registry.ops.filter((o) => o.startsWith("list slots/")).length,
    5,
    "read only while leading",
  );
  const errors = lines.filter((l) => l.level === "error");
  assert.equal(errors.length, 1, "the live placeless server reported once (not every tick)");
  assert.match(errors[0].msg, /old-1 holds no place .* alive: not removed/);
  assert.match(
    lines.find((l) => /removed raft server old-0/.test(l.msg))?.msg ?? "",
    /serf shows it failed/,
  );
});

Deno.test("prunePlaceless: a removal refused by ACLs is said once and not asked again", async () => {
  const now = Date.UTC(2026, 0, 1);
  const lines: { level: string; msg: string }[] = [];
  const log = new Logger({
    level: "debug",
    format: "json",
    sink: (l) => lines.push(JSON.parse(l)),
  });
  const f = fakeConsul({
    leads: () => true,
    servers: raft(ALL),
    members: NEW.map((n, i) => member(n, i, "alive")),
    deny: true,
  });
  let asked = 0;
  const consul = {
    ...f.consul,
    raftRemovePeer: (rid: string) => {
      asked++;
      return f.consul.raftRemovePeer(rid);
    },
  };
  const stop = new AbortController();
  let ticks = 0;
  const sleep = (_ms: number, signal?: AbortSignal) => {
    if (++ticks === 10) stop.abort();
    return signal?.aborted ? Promise.reject(new Error("aborted")) : Promise.resolve();
  };
  const removed = await prunePlaceless(
    { node: "new-0", ticksMs: 1000, expirySeconds: 10 },
    { registry: world(now), consul, sleep, log },
    stop.signal,
  );
  assert.equal(removed, 0);
  assert.equal(asked, 2, "each of old-0 and old-1 asked once");
  assert.equal(lines.filter((l) => l.level === "warn").length, 2);
});

Deno.test("prunePlaceless: a failed registry read removes nothing and restarts the count", async () => {
  const now = Date.UTC(2026, 0, 1);
  const registry = world(now);
  const log = new Logger({ level: "warn", format: "json", sink: () => {} });
  const f = fakeConsul({ leads: () => true, servers: raft(ALL), members: [] });
  const stop = new AbortController();
  let ticks = 0;
  const sleep = (_ms: number, signal?: AbortSignal) => {
    ticks++;
    // checks 1, 3 and 5 see the servers; 2 and 4 cannot read the registry
    if (ticks === 2 || ticks === 4) {
      registry.failures = 1;
      registry.failing = /^list slots/;
    }
    if (ticks === 6) stop.abort();
    return signal?.aborted ? Promise.reject(new Error("aborted")) : Promise.resolve();
  };
  await prunePlaceless(
    { node: "new-0", ticksMs: 1000, expirySeconds: 10 },
    { registry, consul: f.consul, sleep, log },
    stop.signal,
  );
  assert.deepEqual(f.removed, [], "never two successful checks in a row");
});
