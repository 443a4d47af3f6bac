/** doctor's findings (pure): a healthy 3+2 cluster has none; each broken state has its finding. */
import assert from "node:assert/strict";
import type { RaftServer, SerfMember } from "../src/consul/types.ts";
import { summarizeSnapshot } from "../src/doctor/checks_local.ts";
import { diagnose, exitCodeFor, renderFindings } from "../src/doctor/diagnose.ts";
import {
  type AgentFacts,
  type DoctorFacts,
  type Finding,
  FINDING_IDS,
  type RegistryFacts,
} from "../src/doctor/facts.ts";
import type { Heartbeat } from "../src/registry/heartbeats.ts";

const T = Date.parse("2026-12-02T05:00:00Z");

function beat(dir: "servers" | "agents", node: string, ageSeconds = 10): Heartbeat {
  const t = new Date(T - ageSeconds * 1000);
  return { key: `${dir}/20261202045950-${node}`, dir, node, stamp: t, lastModified: t, ageSeconds };
}

function server(i: number, status = "alive", tags: Record<string, string> = {}): SerfMember {
  return {
    name: `s${i}`,
    addr: `10.0.0.${i}`,
    port: 8301,
    status: status as SerfMember["status"],
    statusCode: 1,
    isServer: true,
    tags: {
      role: "consul",
      id: `id-s${i}`,
      port: "8300",
      expect: "3",
      build: "1.8.7:abc",
      ...tags,
    },
  };
}

function client(i: number): SerfMember {
  return {
    name: `c${i}`,
    addr: `10.0.1.${i}`,
    port: 8301,
    status: "alive",
    statusCode: 1,
    isServer: false,
    tags: { id: `id-c${i}`, build: "1.8.7:abc" },
  };
}

function voter(i: number, leader = false, address = `10.0.0.${i}:8300`): RaftServer {
  return { id: `id-s${i}`, node: `s${i}`, address, leader, voter: true, protocolVersion: "3" };
}

/** A healthy 3-server, 2-client cluster, seen from server s1. */
function healthy(): DoctorFacts & { agent: AgentFacts; registry: RegistryFacts } {
  const members = [server(1), server(2), server(3), client(1), client(2)];
  const nodes = ["s1", "s2", "s3"];
  return {
    servers: 3,
    expirySeconds: 120,
    registry: {
      servers: nodes.map((n) => beat("servers", n)),
      agents: [...nodes, "c1", "c2"].map((n) => beat("agents", n)),
      addresses: new Map(members.map((m) => [m.name, m.addr])),
      claims: nodes.map((n, i) => ({ place: i, epoch: 1, node: n, ageSeconds: 500 })),
    },
    agent: {
      self: {
        node: "s1",
        nodeId: "id-s1",
        isServer: true,
        version: "1.8.7",
        raftState: "Leader",
        lastContact: "0",
        encrypted: true,
        leaveOnTerm: false,
        skipLeaveOnInt: true,
      },
      members,
      raft: { index: 10, servers: [voter(1, true), voter(2), voter(3)] },
      leaderAddress: "10.0.0.1:8300",
      autopilot: { healthy: true, failureTolerance: 1, servers: [] },
      catalog: members.map((m) => ({ id: m.tags.id, node: m.name, address: m.addr })),
    },
    local: { dataDir: "/var/lib/auto-consul", mode: "server" },
  };
}

function only(findings: Finding[], id: string): Finding {
  const hit = findings.filter((f) => f.id === id);
  assert.equal(hit.length, 1, `one ${id} in ${JSON.stringify(findings.map((f) => f.id))}`);
  return hit[0];
}

Deno.test("a healthy 3+2 cluster: no finding, exit 0", () => {
  const findings = diagnose(healthy());
  assert.deepEqual(findings, []);
  assert.equal(exitCodeFor(findings), 0);
  assert.match(renderFindings(findings), /no findings/);
});

interface Case {
  name: string;
  id: string;
  severity: Finding["severity"];
  mutate: (f: ReturnType<typeof healthy>) => void;
  evidence: RegExp;
  next: RegExp;
}

const CASES: Case[] = [
  {
    name: "no leader, quorum lost (2 of 3 voters failed)",
    id: "no-leader",
    severity: "critical",
    mutate: (f) => {
      f.agent.leaderAddress = "";
      f.agent.raft!.servers = [voter(1), voter(2), voter(3)];
      f.agent.members = [server(1), server(2, "failed"), server(3, "failed")];
      f.agent.self.raftState = "Candidate";
      f.agent.self.lastContact = "1m30.5s";
    },
    evidence: /last contact with a leader: 1m30\.5s ago/,
    next:
      /quorum is lost: on a surviving server run `auto-consul recover --dry-run`.*`auto-consul recover --yes`/,
  },
  {
    name: "raft voter missing from serf",
    id: "raft-voter-not-in-serf",
    severity: "critical",
    mutate: (f) => {
      f.agent.raft!.servers.push({ ...voter(9), node: "(unknown)" });
    },
    evidence: /raft voter \(unknown\) \(id id-s9, 10\.0\.0\.9:8300\)/,
    next: /^consul operator raft remove-peer -id=id-s9$/,
  },
  {
    name: "raft voter that serf calls failed",
    id: "raft-voter-failed",
    severity: "critical",
    mutate: (f) => {
      f.agent.members[2] = server(3, "failed");
    },
    evidence: /serf: s3 10\.0\.0\.3 failed/,
    next: /consul force-leave s3/,
  },
  {
    name: "raft voter whose address differs from serf's for its node-id",
    id: "raft-address-mismatch",
    severity: "critical",
    mutate: (f) => {
      f.agent.raft!.servers[1] = { ...voter(2), node: "(unknown)", address: "10.9.9.2:8300" };
    },
    evidence: /serf: s2 id id-s2 at 10\.0\.0\.2:8300/,
    next: /restart consul on s2/,
  },
  {
    name: "single-entry peer set in a 3-server cluster",
    id: "peer-set-degenerate",
    severity: "critical",
    mutate: (f) => {
      f.agent.raft!.servers = [voter(1, true)];
    },
    evidence: /raft configuration .*: s1 10\.0\.0\.1:8300/,
    next: /peers\.json/,
  },
  {
    name: "empty peer set (raft configuration [])",
    id: "peer-set-degenerate",
    severity: "critical",
    mutate: (f) => {
      f.agent.raft!.servers = [];
      f.agent.leaderAddress = "";
    },
    evidence: /: \[\]$/,
    next: /peers\.json/,
  },
  {
    name: "peers.json null in the data dir",
    id: "peer-set-degenerate",
    severity: "critical",
    mutate: (f) => {
      f.local.serverData = { path: "/d/server", raftDb: true, peersJson: "null\n" };
    },
    evidence: /\/d\/server\/raft\/peers\.json: null/,
    next: /write every live server into it/,
  },
  {
    name: "more voters than -s",
    id: "too-many-voters",
    severity: "warning",
    mutate: (f) => {
      f.agent.members.push(server(4));
      f.agent.raft!.servers.push(voter(4));
    },
    evidence: /voters: s1, s2, s3, s4/,
    next: /set_agent/,
  },
  {
    name: "fewer live servers than -s (one left)",
    id: "too-few-live-servers",
    severity: "warning",
    mutate: (f) => {
      f.agent.members[2] = server(3, "left");
      f.agent.raft!.servers.pop();
    },
    evidence: /server s3 10\.0\.0\.3: left/,
    next: /start the missing servers/,
  },
  {
    name: "servers with different bootstrap_expect",
    id: "bootstrap-expect-differs",
    severity: "warning",
    mutate: (f) => {
      f.agent.members[1] = server(2, "alive", { expect: "1" });
      f.agent.members[2] = { ...server(3), tags: { ...server(3).tags, bootstrap: "1" } };
    },
    evidence: /expect=1: s2/,
    next: /same -s/,
  },
  {
    name: "a place held by a node serf calls dead",
    id: "place-holder-dead",
    severity: "warning",
    mutate: (f) => {
      f.agent.members[2] = server(3, "failed");
      f.agent.raft!.servers.pop(); // autopilot removed it already
      f.registry.servers[2] = beat("servers", "s3", 400);
    },
    evidence: /slots\/2 epoch 1: s3/,
    next: /start s3 again/,
  },
  {
    name: "a live server heartbeat with no place (a gem server)",
    id: "server-without-place",
    severity: "warning",
    mutate: (f) => {
      f.registry.servers.push(beat("servers", "gem-server"));
    },
    evidence: /servers\/20261202045950-gem-server/,
    next: /set_agent/,
  },
  {
    name: "a client holding server raft data",
    id: "client-with-server-data",
    severity: "warning",
    mutate: (f) => {
      f.agent.self = { ...f.agent.self, node: "c1", nodeId: "id-c1", isServer: false };
      f.local.serverData = { path: "/d/server", raftDb: true, nodeId: "id-old" };
    },
    evidence: /\/d\/server\/raft\/raft\.db exists \(node-id id-old\)/,
    next: /set_server/,
  },
  {
    name: "serf name conflict: another agent holds this node's name",
    id: "name-conflict",
    severity: "critical",
    mutate: (f) => {
      f.agent.self.nodeId = "id-other";
    },
    evidence: /serf member s1: id id-s1/,
    next: /-n NAME/,
  },
  {
    name: "name conflict seen from the registry: heartbeat address differs from serf's",
    id: "name-conflict",
    severity: "warning",
    mutate: (f) => {
      f.registry.addresses.set("c2", "10.7.7.7");
    },
    evidence: /registry agents\/20261202045950-c2: 10\.7\.7\.7/,
    next: /two machines use the name c2/,
  },
  {
    name: "name conflict: the catalog has this node's name for another machine",
    id: "name-conflict",
    severity: "critical",
    mutate: (f) => {
      f.agent.catalog![0] = { id: "id-x", node: "s1", address: "10.9.9.9" };
    },
    evidence: /catalog: s1 id id-x at 10\.9\.9\.9/,
    next: /-n NAME/,
  },
  {
    name: "the catalog's 'reserved by node' loop",
    id: "catalog-reserved",
    severity: "critical",
    mutate: (f) => {
      f.agent.catalog![3] = { id: "id-old-c1", node: "c1", address: "10.0.1.1" };
    },
    evidence: /catalog: c1 id id-old-c1/,
    next: /v1\/catalog\/deregister/,
  },
  {
    name: "leave-on-signal settings on a server",
    id: "leave-on-signal",
    severity: "warning",
    mutate: (f) => {
      f.agent.self.leaveOnTerm = true;
    },
    evidence: /leave_on_terminate = true/,
    next: /config dir given with -c/,
  },
  {
    name: "no gossip encryption",
    id: "no-gossip-encryption",
    severity: "warning",
    mutate: (f) => {
      f.agent.self.encrypted = false;
    },
    evidence: /encrypted = false/,
    next: /--gossip-key-file/,
  },
  {
    name: "consul versions that differ across servers",
    id: "version-mismatch",
    severity: "warning",
    mutate: (f) => {
      f.agent.members[0] = server(1, "alive", { build: "1.9.1:def" });
    },
    evidence: /1\.9\.1: s1/,
    next: /rolling upgrade/,
  },
  {
    name: "autopilot says unhealthy",
    id: "autopilot-unhealthy",
    severity: "warning",
    mutate: (f) => {
      f.agent.autopilot = {
        healthy: false,
        failureTolerance: 0,
        servers: [{
          id: "id-s2",
          name: "s2",
          address: "10.0.0.2:8300",
          version: "1.8.7",
          leader: false,
          voter: true,
          healthy: false,
          lastContact: "3s",
          serfStatus: "alive",
        }],
      };
    },
    evidence: /s2 10\.0\.0\.2:8300: serf alive, last contact 3s/,
    next: /other findings/,
  },
  {
    name: "agent unreachable",
    id: "agent-unreachable",
    severity: "critical",
    mutate: (f) => {
      (f as DoctorFacts).agent = { error: "consul at 127.0.0.1:8500 is unreachable" };
    },
    evidence: /unreachable/,
    next: /--http-addr/,
  },
  {
    name: "registry unreadable",
    id: "registry-unreadable",
    severity: "critical",
    mutate: (f) => {
      (f as DoctorFacts).registry = { error: "no such bucket" };
    },
    evidence: /no such bucket/,
    next: /-r URL/,
  },
  {
    name: "peers.json waiting with 3 servers",
    id: "peers-json-pending",
    severity: "info",
    mutate: (f) => {
      f.local.serverData = {
        path: "/d/server",
        raftDb: true,
        peersJson: JSON.stringify(
          [1, 2, 3].map((i) => ({ id: `id-s${i}`, address: `10.0.0.${i}:8300` })),
        ),
      };
    },
    evidence: /peers\.json: \[/,
    next: /restart consul on every server/,
  },
];

for (const c of CASES) {
  Deno.test(`finding ${c.id}: ${c.name}`, () => {
    const f = healthy();
    c.mutate(f);
    const findings = diagnose(f);
    const hit = only(findings, c.id);
    assert.equal(hit.severity, c.severity);
    assert.ok(hit.evidence.some((e) => c.evidence.test(e)), JSON.stringify(hit.evidence));
    assert.match(hit.next, c.next);
    assert.ok(hit.title.length > 0);
    assert.equal(
      exitCodeFor(findings),
      findings.some((x) => x.severity === "critical")
        ? 6
        : findings.some((x) => x.severity === "warning")
        ? 5
        : 0,
    );
    const text = renderFindings(findings);
    assert.match(text, new RegExp(`^${c.severity.toUpperCase()} ${c.id}: `, "m"));
  });
}

Deno.test("every finding id has a case above", () => {
  assert.deepEqual([...new Set(CASES.map((c) => c.id))].sort(), [...FINDING_IDS].sort());
});

Deno.test("no leader while a quorum is still alive: wait, not recover", () => {
  const f = healthy();
  f.agent.leaderAddress = "";
  f.agent.raft!.servers = [voter(1), voter(2), voter(3)];
  const hit = only(diagnose(f), "no-leader");
  assert.match(hit.next, /an election takes seconds/);
  assert.match(hit.evidence.join("\n"), /raft voters: 3 \(3 alive in serf at their raft address\)/);
});

Deno.test("no leader seen from a client: since when is not knowable there, and it says so", () => {
  const f = healthy();
  f.agent.self = { ...f.agent.self, node: "c1", isServer: false, raftState: undefined };
  f.agent.leaderAddress = "";
  assert.match(only(diagnose(f), "no-leader").evidence.join("\n"), /unknown from a client/);
});

Deno.test("without a leader, a dead voter's advice is recovery, not remove-peer", () => {
  const f = healthy();
  f.agent.leaderAddress = "";
  f.agent.raft!.servers.push({ ...voter(9), node: "(unknown)" });
  assert.match(only(diagnose(f), "raft-voter-not-in-serf").next, /peers\.json/);
});

Deno.test("critical findings come first; exit code 6 beats 5", () => {
  const f = healthy();
  f.agent.self.encrypted = false;
  f.agent.self.nodeId = "id-other";
  const findings = diagnose(f);
  assert.deepEqual(findings.map((x) => x.severity), ["critical", "warning"]);
  assert.equal(exitCodeFor(findings), 6);
  assert.equal(exitCodeFor(findings.slice(1)), 5);
});

Deno.test("the serf snapshot's end state is summarized into no-leader's evidence", () => {
  const lines = [
    "alive: s1 10.0.0.1:8301",
    "alive: s2 10.0.0.2:8301",
    "clock: 7",
    "alive: s3 10.0.0.3:8301",
    "not-alive: s3",
    "coordinate: s1 {}",
  ];
  assert.equal(summarizeSnapshot(lines), "serf snapshot: alive s1, s2; not alive s3");
  assert.match(summarizeSnapshot([...lines, "leave"])!, /ends with this node's leave/);
  assert.equal(summarizeSnapshot(["clock: 1"]), undefined);
  assert.equal(summarizeSnapshot(undefined), undefined);
  const f = healthy();
  f.agent.leaderAddress = "";
  f.local.serverData = { path: "/d/server", raftDb: true, serfSnapshotTail: lines };
  assert.ok(
    only(diagnose(f), "no-leader").evidence.includes(
      "serf snapshot: alive s1, s2; not alive s3 (/d/server)",
    ),
  );
});
