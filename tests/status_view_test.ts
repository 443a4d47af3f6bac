/** The status view (pure): raft matched by node ID and address, unknown kept unknown, roles, places. */
import assert from "node:assert/strict";
import { parseLatestConfiguration } from "../src/cluster/observe.ts";
import { buildStatus, leaderLine, renderStatus } from "../src/cluster/status_view.ts";
import type { RaftServer, SerfMember } from "../src/consul/types.ts";
import { serverMember } from "./fakes/consul_world.ts";
import type { Heartbeat } from "../src/registry/heartbeats.ts";

const NOW = Date.parse("2026-12-02T05:00:00Z");

function beat(dir: "servers" | "agents", node: string, ageSeconds: number): Heartbeat {
  const t = new Date(NOW - ageSeconds * 1000);
  return { key: `${dir}/x-${node}`, dir, node, stamp: t, lastModified: t, ageSeconds };
}

function member(
  name: string,
  addr: string,
  server: boolean,
  id: string,
  status = "alive",
): SerfMember {
  return {
    ...serverMember(name, addr, status),
    isServer: server,
    tags: server ? { role: "consul", id, port: "8300" } : { id },
  };
}

function raft(id: string, node: string, address: string, leader = false): RaftServer {
  return { id, node, address, leader, voter: true, protocolVersion: "3" };
}

const serversMoved = [
  member("s1", "10.0.1.1", true, "id-1"),
  member("s2", "10.0.1.2", true, "id-2"),
  member("s3", "10.0.1.3", true, "id-3"),
];

Deno.test("raft entries are matched by node ID: servers that moved keep voter and leader", () => {
  // consul names a raft entry "(unknown)" when its address is not in serf: only the ID matches.
  const view = buildStatus({
    servers: [],
    agents: [],
    addresses: new Map(),
    expirySeconds: 120,
    agent: {
      members: serversMoved,
      leaderAddress: "10.0.0.1:8300",
      raft: {
        index: 1,
        servers: [
          raft("id-1", "(unknown)", "10.0.0.1:8300", true),
          raft("id-2", "(unknown)", "10.0.0.2:8300"),
          raft("id-3", "s3", "10.0.1.3:8300"),
        ],
      },
    },
  });
  const rows = new Map(view.rows.map((r) => [r.node, r]));
  assert.deepEqual([...rows.keys()], ["s1", "s2", "s3"], "no extra rows for the moved entries");
  assert.deepEqual(
    view.rows.map((r) => [r.node, r.voter, r.leader, r.raftAddress]),
    [["s1", true, true, "10.0.0.1:8300"], ["s2", true, false, "10.0.0.2:8300"], [
      "s3",
      true,
      false,
      undefined,
    ]],
  );
  assert.deepEqual(view.leader, { state: "elected", node: "s1", address: "10.0.0.1:8300" });
  assert.match(renderStatus(view, { members: serversMoved }), /raft has s1 at 10\.0\.0\.1:8300/);
});

Deno.test("raft matched by address when the member carries no ID", () => {
  const m = { ...member("s1", "10.0.1.1", true, ""), tags: { role: "consul", port: "8300" } };
  const view = buildStatus({
    servers: [],
    agents: [],
    addresses: new Map(),
    expirySeconds: 120,
    agent: {
      members: [m],
      raft: { index: 1, servers: [raft("x", "(unknown)", "10.0.1.1:8300", true)] },
    },
  });
  assert.deepEqual([view.rows[0].voter, view.rows[0].leader], [true, true]);
});

Deno.test("raft not readable: VOTER and LEADER unknown, not no; the leader state unknown", () => {
  const agent = { members: serversMoved, raftError: "timed out", leaderAddress: undefined };
  const view = buildStatus({
    servers: [],
    agents: [],
    addresses: new Map(),
    expirySeconds: 120,
    agent,
  });
  for (const r of view.rows) assert.deepEqual([r.voter, r.leader], [undefined, undefined], r.node);
  assert.equal(view.leader.state, "unknown");
  const text = renderStatus(view, agent);
  assert.match(text.split("\n")[1], /\bunknown\s+unknown\s+-$/, text);
  assert.match(text, /raft configuration not read: VOTER and LEADER unknown: timed out/);
});

Deno.test("no leader is said plainly", () => {
  const agent = {
    members: serversMoved,
    leaderAddress: "",
    raft: { index: 1, servers: [raft("id-1", "s1", "10.0.1.1:8300")] },
  };
  const view = buildStatus({
    servers: [],
    agents: [],
    addresses: new Map(),
    expirySeconds: 120,
    agent,
  });
  assert.equal(view.leader.state, "none");
  assert.match(renderStatus(view, agent), /^Leader: NO LEADER: /m);
  assert.equal(view.rows.filter((r) => r.leader).length, 0);
  assert.match(leaderLine({ state: "unknown", why: "x" }), /^Leader: unknown: x$/);
});

Deno.test("a server whose heartbeat expired is still a server; a demoted node is a client", () => {
  const view = buildStatus({
    servers: [beat("servers", "old-server", 900), beat("servers", "demoted", 900)],
    agents: [beat("agents", "old-server", 900), beat("agents", "demoted", 10)],
    addresses: new Map([["old-server", "10.0.0.9"]]),
    expirySeconds: 120,
  });
  const rows = new Map(view.rows.map((r) => [r.node, r]));
  assert.deepEqual([rows.get("old-server")!.role, rows.get("old-server")!.registry], [
    "server",
    "expired",
  ]);
  assert.deepEqual([rows.get("demoted")!.role, rows.get("demoted")!.registry], ["client", "live"]);
});

Deno.test("places and their holders are shown, with each holder's registry and serf state", () => {
  const agent = { members: [member("s1", "10.0.1.1", true, "id-1")], leaderAddress: "" };
  const view = buildStatus({
    servers: [beat("servers", "s1", 5), beat("servers", "gone", 900)],
    agents: [beat("agents", "s1", 5)],
    addresses: new Map([["s1", "10.0.1.1"]]),
    expirySeconds: 120,
    agent,
    claims: [
      { place: 1, epoch: 3, node: "gone", ageSeconds: 1000 },
      { place: 0, epoch: 1, node: "s1", ageSeconds: 50 },
      { place: 2, epoch: 1, node: undefined, ageSeconds: 50 },
    ],
  });
  assert.deepEqual(view.places, [
    { place: 0, epoch: 1, holder: "s1", holderRegistry: "live", holderSerf: "alive" },
    { place: 1, epoch: 3, holder: "gone", holderRegistry: "expired", holderSerf: undefined },
    { place: 2, epoch: 1, holder: undefined, holderRegistry: "absent", holderSerf: undefined },
  ]);
  assert.equal(view.rows.find((r) => r.node === "gone")!.role, "server");
  assert.equal(view.rows.find((r) => r.node === "s1")!.place, 0);
  const text = renderStatus(view, agent);
  assert.match(text, /^PLACE\s+EPOCH\s+HOLDER\s+HOLDER REGISTRY\s+HOLDER SERF$/m);
  assert.match(text, /^1\s+3\s+gone\s+expired\s+-$/m);
  assert.match(text, /^2\s+1\s+\(unreadable\)\s+absent\s+-$/m);
});

Deno.test("a raft voter serf does not know gets a row of its own", () => {
  const agent = {
    members: [member("s1", "10.0.1.1", true, "id-1")],
    leaderAddress: "",
    raft: {
      index: 1,
      servers: [raft("id-1", "s1", "10.0.1.1:8300"), raft("id-9", "(unknown)", "10.0.0.9:8300")],
    },
  };
  const view = buildStatus({
    servers: [],
    agents: [],
    addresses: new Map(),
    expirySeconds: 120,
    agent,
  });
  const ghost = view.rows.find((r) => r.node === "(raft id-9)")!;
  assert.deepEqual([ghost.role, ghost.address, ghost.serf, ghost.voter], [
    "server",
    "10.0.0.9",
    "absent",
    true,
  ]);
});

Deno.test("a server's own raft copy (agent self stats) parses; anything else does not", () => {
  assert.deepEqual(
    parseLatestConfiguration(
      "[{Suffrage:Voter ID:aa-1 Address:10.0.0.1:8300} {Suffrage:Nonvoter ID:bb-2 Address:10.0.0.2:8300}]",
    ),
    {
      index: 0,
      servers: [
        {
          id: "aa-1",
          node: "(unknown)",
          address: "10.0.0.1:8300",
          leader: false,
          voter: true,
          protocolVersion: "",
        },
        {
          id: "bb-2",
          node: "(unknown)",
          address: "10.0.0.2:8300",
          leader: false,
          voter: false,
          protocolVersion: "",
        },
      ],
    },
  );
  assert.deepEqual(parseLatestConfiguration("[]"), { index: 0, servers: [] });
  assert.equal(parseLatestConfiguration("garbage"), undefined);
  assert.equal(parseLatestConfiguration("[garbage]"), undefined);
  assert.equal(parseLatestConfiguration(undefined), undefined);
});
