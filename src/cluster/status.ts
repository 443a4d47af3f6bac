/**
 * The status view: registry members merged with what the local agent knows. Pure: the
 * command fetches, this decides and renders.
 */
import type { Member as SerfMember, RaftConfiguration } from "../consul/client.ts";
import type { Heartbeat } from "../registry/heartbeats.ts";

export interface StatusRow {
  node: string;
  /** Role per the registry: "server" when it has a server heartbeat, else "client". */
  role: "server" | "client" | "unknown";
  address?: string;
  /** Age of the freshest heartbeat in seconds (the freshness rule); absent when untrusted. */
  ageSeconds?: number;
  registry: "live" | "expired" | "absent";
  /** Serf status as the local agent sees it, when it answered. */
  serf?: string;
  voter?: boolean;
  leader?: boolean;
}

export interface AgentView {
  members: SerfMember[];
  raft?: RaftConfiguration;
}

export interface StatusInput {
  servers: Heartbeat[];
  agents: Heartbeat[];
  /** Address read from each node's freshest heartbeat (keyed by node). */
  addresses: Map<string, string>;
  expirySeconds: number;
  agent?: AgentView;
}

function freshest(beats: Heartbeat[]): Map<string, Heartbeat> {
  const m = new Map<string, Heartbeat>();
  for (const b of beats) {
    const cur = m.get(b.node);
    if (
      !cur || b.ageSeconds < cur.ageSeconds ||
      (b.ageSeconds === cur.ageSeconds && b.lastModified > cur.lastModified)
    ) m.set(b.node, b);
  }
  return m;
}

export function buildStatus(input: StatusInput): StatusRow[] {
  const servers = freshest(input.servers);
  const agents = freshest(input.agents);
  const rows = new Map<string, StatusRow>();
  for (const node of new Set([...servers.keys(), ...agents.keys()])) {
    const s = servers.get(node);
    const a = agents.get(node);
    const sLive = s !== undefined && s.ageSeconds <= input.expirySeconds;
    const best = [s, a].filter((h): h is Heartbeat => h !== undefined)
      .sort((x, y) => x.ageSeconds - y.ageSeconds)[0];
    rows.set(node, {
      node,
      role: sLive || (s && !a) ? "server" : "client",
      address: input.addresses.get(node),
      ageSeconds: Number.isFinite(best.ageSeconds) ? Math.round(best.ageSeconds) : undefined,
      registry: best.ageSeconds <= input.expirySeconds ? "live" : "expired",
    });
  }
  if (input.agent) {
    const raftByNode = new Map((input.agent.raft?.servers ?? []).map((r) => [r.node, r]));
    for (const m of input.agent.members) {
      const row = rows.get(m.name) ??
        {
          node: m.name,
          role: m.isServer ? "server" : "client",
          address: m.addr,
          registry: "absent",
        };
      row.serf = m.status;
      const r = raftByNode.get(m.name);
      row.voter = r ? r.voter : false;
      row.leader = r ? r.leader : false;
      if (row.role === "unknown") row.role = m.isServer ? "server" : "client";
      rows.set(m.name, row);
    }
  }
  return [...rows.values()].sort((a, b) =>
    (a.role === b.role ? 0 : a.role === "server" ? -1 : 1) || a.node.localeCompare(b.node)
  );
}

export function renderTable(rows: StatusRow[], agentReachable: boolean): string {
  const head = ["NODE", "ROLE", "ADDRESS", "AGE", "REGISTRY", "SERF", "VOTER", "LEADER"];
  const body = rows.map((r) => [
    r.node,
    r.role,
    r.address ?? "-",
    r.ageSeconds === undefined ? "-" : `${r.ageSeconds}s`,
    r.registry,
    r.serf ?? "-",
    r.voter === undefined ? "-" : r.voter ? "yes" : "no",
    r.leader === undefined ? "-" : r.leader ? "yes" : "no",
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((row) => row[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i])).join("  ").trimEnd();
  const out = [line(head), ...body.map(line)];
  if (!agentReachable) out.push("(local consul agent not reachable: registry view only)");
  return out.join("\n");
}
