/** All of doctor's checks over the facts, in a stable order; the exit code they imply. Pure. */
import {
  checkCatalogReserved,
  checkNameConflicts,
  checkPlaceHolders,
  checkPlacelessServers,
} from "./checks_registry.ts";
import {
  checkLeaveSettings,
  checkPeersJson,
  checkServerDataOnClient,
  summarizeSnapshot,
} from "./checks_local.ts";
import {
  checkEncryption,
  checkLeader,
  checkPeerSet,
  checkRaftPeers,
  checkServerCounts,
  checkServerSettings,
} from "./checks_raft.ts";
import { type DoctorFacts, type Finding, hasAgent, hasRegistry, readmeRef } from "./facts.ts";

/** Exit codes of `doctor`. */
export const DOCTOR_EXIT = {
  /** No finding needs action (info findings may be there). */
  healthy: 0,
  /** At least one warning, no critical finding. */
  warning: 5,
  /** At least one critical finding. */
  critical: 6,
} as const;

const ORDER = { critical: 0, warning: 1, info: 2 } as const;

export function diagnose(f: DoctorFacts): Finding[] {
  const out: Finding[] = [];
  const agent = hasAgent(f) ? f.agent : undefined;
  const registry = hasRegistry(f) ? f.registry : undefined;
  if (!registry) {
    out.push({
      id: "registry-unreadable",
      severity: "critical",
      title: "the registry could not be read: no node can find its peers or decide its mode",
      evidence: [(f.registry as { error: string }).error],
      next: `check the -r URL, credentials and network; ${readmeRef("registry-unreadable")}`,
    });
  }
  if (!agent) {
    out.push({
      id: "agent-unreachable",
      severity: "critical",
      title: "the local consul agent did not answer: only the registry and data dir were checked",
      evidence: [(f.agent as { error: string }).error],
      next: `is consul running here (\`systemctl status auto-consul\`)? Point --http-addr at it; ` +
        readmeRef("agent-unreachable"),
    });
  } else {
    const leader = agent.leaderAddress !== undefined && agent.leaderAddress !== "";
    out.push(
      ...checkLeader(agent, f.servers),
      ...checkPeerSet(agent, f.servers),
      ...checkRaftPeers(agent, leader),
      ...checkServerCounts(agent, f.servers),
      ...checkServerSettings(agent),
      ...checkNameConflicts(registry, agent, f.expirySeconds),
      ...checkCatalogReserved(agent),
      ...checkLeaveSettings(agent),
      ...checkEncryption(agent),
    );
  }
  if (registry) {
    out.push(
      ...checkPlaceHolders(registry, agent),
      ...checkPlacelessServers(registry, f.expirySeconds),
    );
  }
  const snapshot = summarizeSnapshot(f.local.serverData?.serfSnapshotTail);
  const noLeader = out.find((x) => x.id === "no-leader");
  if (snapshot && noLeader) noLeader.evidence.push(`${snapshot} (${f.local.serverData!.path})`);
  out.push(
    ...checkServerDataOnClient(agent, f.local),
    ...checkPeersJson(f.local.serverData, f.servers),
  );
  // stable: by severity, then in check order
  return out.map((x, i) => ({ x, i })).sort((a, b) =>
    ORDER[a.x.severity] - ORDER[b.x.severity] || a.i - b.i
  ).map((e) => e.x);
}

export function exitCodeFor(findings: Finding[]): number {
  if (findings.some((x) => x.severity === "critical")) return DOCTOR_EXIT.critical;
  if (findings.some((x) => x.severity === "warning")) return DOCTOR_EXIT.warning;
  return DOCTOR_EXIT.healthy;
}

/** One line: what doctor could look at. */
export function checkedLine(f: DoctorFacts): string {
  const agent = hasAgent(f)
    ? `agent ${f.agent.self.node} (${
      f.agent.self.isServer ? "server" : "client"
    }, consul ${f.agent.self.version}, raft ${
      f.agent.raft
        ? f.agent.raftSource === "agent-stats" ? "from its own copy" : "read"
        : "not read"
    })`
    : "agent: not reachable";
  const registry = hasRegistry(f)
    ? `registry: ${
      new Set(f.registry.agents.map((h) => h.node)).size
    } nodes, ${f.registry.claims.length} places`
    : "registry: not readable";
  const data = f.local.serverData ? `data dir ${f.local.serverData.path}` : "no server data dir";
  return `doctor: checked ${agent}; ${registry}; ${data}; -s ${f.servers}`;
}

export function renderFindings(findings: Finding[], facts?: DoctorFacts): string {
  const head = facts ? [checkedLine(facts)] : [];
  if (findings.length === 0) {
    return [...head, "doctor: no findings: the cluster looks healthy"].join("\n");
  }
  const out: string[] = [...head];
  for (const x of findings) {
    out.push(`${x.severity.toUpperCase()} ${x.id}: ${x.title}`);
    for (const e of x.evidence) out.push(`  evidence: ${e}`);
    out.push(`  next: ${x.next}`, "");
  }
  const count = (s: string) => findings.filter((x) => x.severity === s).length;
  out.push(
    `doctor: ${count("critical")} critical, ${count("warning")} warning, ${count("info")} info`,
  );
  return out.join("\n");
}
