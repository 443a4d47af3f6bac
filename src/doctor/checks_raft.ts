/**
 * Quorum checks: leader, raft peers against serf members, server counts and settings that
 * must agree across servers. Pure: facts in, findings out.
 */
import { matchRaftServer, raftIp } from "../cluster/status_view.ts";
import type { SerfMember } from "../consul/types.ts";
import { type AgentFacts, type Finding, readmeRef, RECOVER_ADVICE } from "./facts.ts";

const serversOf = (members: SerfMember[]) => members.filter((m) => m.isServer);

/** A server's bootstrap setting as serf tags carry it: "expect=3", "bootstrap", or "none". */
export function bootstrapSetting(m: SerfMember): string {
  if (m.tags.bootstrap === "1") return "bootstrap";
  if (m.tags.expect !== undefined) return `expect=${m.tags.expect}`;
  return "none";
}

/** The consul version in a member's `build` tag ("1.8.7:abc" → "1.8.7"). */
export function buildVersion(m: SerfMember): string | undefined {
  const b = m.tags.build;
  return b ? b.split(":")[0] : undefined;
}

export function checkLeader(a: AgentFacts, servers: number): Finding[] {
  if (a.leaderAddress === undefined || a.leaderAddress !== "") return [];
  const evidence = [`GET /v1/status/leader on ${a.self.node} answered "" (no leader)`];
  if (a.self.isServer) {
    evidence.push(
      `this server's raft state: ${a.self.raftState ?? "?"}, last contact with a leader: ${
        a.self.lastContact ?? "?"
      }${a.self.lastContact && a.self.lastContact !== "never" ? " ago" : ""}`,
    );
  } else {
    evidence.push("since when: unknown from a client (run doctor on a server: raft last contact)");
  }
  const voters = a.raft?.servers.filter((s) => s.voter) ?? [];
  const alive = new Set(
    serversOf(a.members).filter((m) => m.status === "alive").map((m) => m.name),
  );
  const reachable = voters.filter((v) => {
    const m = matchRaftServer(v, a.members);
    return m !== undefined && alive.has(m.name) && `${m.addr}:${m.tags.port}` === v.address;
  });
  if (a.raft) {
    evidence.push(
      `raft voters: ${voters.length} (${reachable.length} alive in serf at their raft address); ` +
        `a quorum needs ${Math.floor(voters.length / 2) + 1}`,
    );
  }
  const lost = a.raft !== undefined && reachable.length < Math.floor(voters.length / 2) + 1;
  return [{
    id: "no-leader",
    severity: "critical",
    title: "the cluster has no raft leader: no writes, no consistent reads",
    evidence,
    next: lost || (a.raft && voters.length <= 1 && servers > 1)
      ? `quorum is lost: ${RECOVER_ADVICE}`
      : `an election takes seconds; if it lasts, check the other findings and ${
        readmeRef("no-leader")
      }`,
  }];
}

export function checkRaftPeers(a: AgentFacts, leader: boolean): Finding[] {
  if (!a.raft) return [];
  const out: Finding[] = [];
  for (const v of a.raft.servers.filter((s) => s.voter)) {
    const m = matchRaftServer(v, a.members);
    const who = `raft voter ${v.node} (id ${v.id || "?"}, ${v.address})`;
    if (!m) {
      out.push({
        id: "raft-voter-not-in-serf",
        severity: "critical",
        title: `${who} is not a serf member: it counts toward the quorum but can never vote`,
        evidence: [`${who}`, `serf members: ${a.members.map((x) => x.name).join(", ") || "none"}`],
        next: leader
          ? `consul operator raft remove-peer -id=${v.id || v.address}`
          : `force-leave cannot remove it without a leader: ${RECOVER_ADVICE}`,
      });
      continue;
    }
    if (m.status === "failed" || m.status === "left") {
      out.push({
        id: "raft-voter-failed",
        severity: "critical",
        title: `${who} is ${m.status} in serf but still a raft voter`,
        evidence: [`${who}`, `serf: ${m.name} ${m.addr} ${m.status}`],
        next: leader
          ? `bring ${m.name} back, or remove it: consul force-leave ${m.name} ` +
            `(autopilot's cleanup_dead_servers also removes it once a replacement is healthy)`
          : `without a leader: ${RECOVER_ADVICE}`,
      });
    }
    const serfAddr = `${m.addr}:${m.tags.port ?? "8300"}`;
    if (m.tags.id === v.id && v.id !== "" && serfAddr !== v.address) {
      out.push({
        id: "raft-address-mismatch",
        severity: "critical",
        title: `server ${m.name} moved: raft has it at ${v.address}, serf at ${serfAddr}`,
        evidence: [`${who}`, `serf: ${m.name} id ${m.tags.id} at ${serfAddr} (${m.status})`],
        next: leader
          ? `restart consul on ${m.name} so the leader re-adds it at its new address`
          : `raft cannot reach the old address: ${RECOVER_ADVICE} (with the new addresses)`,
      });
    }
  }
  return out;
}

export function checkPeerSet(a: AgentFacts, servers: number): Finding[] {
  if (!a.raft || servers <= 1) return [];
  const n = a.raft.servers.length;
  if (n > 1) return [];
  return [{
    id: "peer-set-degenerate",
    severity: "critical",
    title: `the raft peer set has ${
      n === 0 ? "no entry" : "a single entry"
    } in a ${servers}-server cluster`,
    evidence: [
      `raft configuration (${
        a.raftSource === "agent-stats" ? "the server's own copy" : "stale read"
      } on ${a.self.node}): ${
        n === 0 ? "[]" : a.raft.servers.map((s) => `${s.node} ${s.address}`).join(", ")
      }`,
      `-s ${servers}`,
    ],
    next:
      `the servers do not know each other (left on shutdown, or bootstrapped alone): ${RECOVER_ADVICE}`,
  }];
}

export function checkServerCounts(a: AgentFacts, servers: number): Finding[] {
  const out: Finding[] = [];
  const voters = a.raft?.servers.filter((s) => s.voter) ?? [];
  if (a.raft && voters.length > servers) {
    out.push({
      id: "too-many-voters",
      severity: "warning",
      title: `${voters.length} raft voters, more than -s ${servers}`,
      evidence: [`voters: ${voters.map((v) => v.node).join(", ")}`],
      next: `find the extra server with \`auto-consul status\` (no place), then on it: ` +
        `\`auto-consul set_agent\` and restart it, or \`consul leave\`; ${
          readmeRef("too-many-voters")
        }`,
    });
  }
  const alive = serversOf(a.members).filter((m) => m.status === "alive");
  if (alive.length < servers) {
    const quorum = Math.floor(Math.max(voters.length, servers) / 2) + 1;
    out.push({
      id: "too-few-live-servers",
      severity: alive.length < quorum ? "critical" : "warning",
      title: `${alive.length} live servers, fewer than -s ${servers}`,
      evidence: [
        `alive servers in serf: ${alive.map((m) => m.name).join(", ") || "none"}`,
        ...serversOf(a.members).filter((m) => m.status !== "alive").map((m) =>
          `server ${m.name} ${m.addr}: ${m.status}`
        ),
      ],
      next: `start the missing servers (or new nodes: they take free or stale places); ` +
        readmeRef("too-few-live-servers"),
    });
  }
  return out;
}

export function checkServerSettings(a: AgentFacts): Finding[] {
  const out: Finding[] = [];
  const servers = serversOf(a.members).filter((m) => m.status !== "left");
  const settings = new Map<string, string[]>();
  for (const m of servers) {
    const s = bootstrapSetting(m);
    settings.set(s, [...(settings.get(s) ?? []), m.name]);
  }
  if (settings.size > 1) {
    out.push({
      id: "bootstrap-expect-differs",
      severity: "warning",
      title: "servers were started with different bootstrap settings",
      evidence: [...settings].map(([s, names]) => `${s}: ${names.join(", ")}`),
      next: `give every server the same -s (auto-consul passes -bootstrap-expect=N); a server in ` +
        `bootstrap mode elects itself alone: ${readmeRef("bootstrap-expect-differs")}`,
    });
  }
  const versions = new Map<string, string[]>();
  for (const m of servers) {
    const v = buildVersion(m) ?? "unknown";
    versions.set(v, [...(versions.get(v) ?? []), m.name]);
  }
  if (versions.size > 1) {
    out.push({
      id: "version-mismatch",
      severity: "warning",
      title: "the servers run different consul versions",
      evidence: [...versions].map(([v, names]) => `${v}: ${names.join(", ")}`),
      next: `finish the rolling upgrade one server at a time (leader last): ${
        readmeRef("version-mismatch")
      }`,
    });
  }
  const bad = a.autopilot?.servers.filter((s) => !s.healthy) ?? [];
  // Healthy false with no server named unhealthy: autopilot has not looked yet (a new leader).
  if (a.autopilot && !a.autopilot.healthy && bad.length > 0) {
    out.push({
      id: "autopilot-unhealthy",
      severity: "warning",
      title:
        `autopilot reports the servers unhealthy (failure tolerance ${a.autopilot.failureTolerance})`,
      evidence: bad.map((s) =>
        `${s.name} ${s.address}: serf ${s.serfStatus}, last contact ${s.lastContact || "?"}`
      ),
      next: `see the other findings for these servers; ${readmeRef("autopilot-unhealthy")}`,
    });
  }
  return out;
}

export function checkEncryption(a: AgentFacts): Finding[] {
  if (a.self.encrypted !== false) return [];
  return [{
    id: "no-gossip-encryption",
    severity: "warning",
    title: "gossip is not encrypted: anyone who reaches port 8301 can join or read the cluster",
    evidence: [`GET /v1/agent/self on ${a.self.node}: Stats.serf_lan.encrypted = false`],
    next: `make a key (\`consul keygen\`), give it to every node with --gossip-key-file; ` +
      readmeRef("no-gossip-encryption"),
  }];
}

export { raftIp };
