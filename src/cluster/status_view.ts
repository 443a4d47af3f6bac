/**
 * The status view: registry members merged with what the local agent knows. Pure: the
 * command fetches, this decides and renders.
 *
 * Raft entries are matched to serf members by node ID (raft's server ID is the node ID, serf
 * carries it in the `id` tag), then by address (serf address + `port` tag), and only then by
 * name: consul names a raft entry "(unknown)" when its address is not in serf, which is
 * exactly the state of servers that moved.
 */
import type { RaftConfiguration, RaftServer, SerfMember } from "../consul/types.ts";
import { freshestPerNode, type Heartbeat, isLive } from "../registry/heartbeats.ts";
import type { PlaceClaim } from "./places.ts";

export interface StatusRow {
  node: string;
  /** Serf's role when the agent knows the node, else the registry's (a place or a server beat). */
  role: "server" | "client";
  address?: string;
  /** Age of the freshest heartbeat in seconds (the freshness rule); absent when untrusted. */
  ageSeconds?: number;
  registry: "live" | "expired" | "absent";
  /** Serf status as the local agent sees it; undefined when the agent did not answer. */
  serf?: string;
  /** Raft: undefined when the raft configuration could not be read (unknown, not "no"). */
  voter?: boolean;
  leader?: boolean;
  /** The raft entry's address when it differs from serf's (a server that moved). */
  raftAddress?: string;
  /** The server place this node holds, if any. */
  place?: number;
}

export interface AgentView {
  members: SerfMember[];
  /** Undefined when it could not be read (`raftError` says why). */
  raft?: RaftConfiguration;
  /** "api": GET /v1/operator/raft/configuration; "agent-stats": the server's own copy. */
  raftSource?: "api" | "agent-stats";
  raftError?: string;
  /** GET /v1/status/leader: "ip:port", "" when there is none, undefined when not read. */
  leaderAddress?: string;
}

export interface StatusInput {
  servers: Heartbeat[];
  agents: Heartbeat[];
  /** Address read from each node's freshest heartbeat (keyed by node). */
  addresses: Map<string, string>;
  expirySeconds: number;
  agent?: AgentView;
  /** The latest claim of each place. */
  claims?: PlaceClaim[];
}

export type LeaderState =
  | { state: "elected"; node?: string; address: string }
  | { state: "none"; why: string }
  | { state: "unknown"; why: string };

export interface PlaceRow {
  place: number;
  epoch: number;
  holder?: string;
  /** The holder's registry state ("absent": no heartbeat at all). */
  holderRegistry: "live" | "expired" | "absent";
  /** The holder's serf status, when the agent knows it. */
  holderSerf?: string;
}

export interface StatusView {
  leader: LeaderState;
  rows: StatusRow[];
  places: PlaceRow[];
}

function freshest(beats: Heartbeat[]): Map<string, Heartbeat> {
  return new Map(freshestPerNode(beats, Infinity).map((b) => [b.node, b]));
}

/** The serf member a raft entry belongs to: by node ID, then address, then name. */
export function matchRaftServer(
  r: RaftServer,
  members: SerfMember[],
): SerfMember | undefined {
  return (r.id ? members.find((m) => m.tags.id === r.id) : undefined) ??
    members.find((m) => m.tags.port !== undefined && `${m.addr}:${m.tags.port}` === r.address) ??
    members.find((m) => m.name === r.node);
}

/** The raft entry's IP (without the port). */
export function raftIp(address: string): string {
  const m = /^\[?([^\]]*)\]?:\d+$/.exec(address);
  return m ? m[1] : address;
}

export function leaderState(agent: AgentView | undefined): LeaderState {
  if (!agent) return { state: "unknown", why: "the local consul agent did not answer" };
  const fromRaft = agent.raft?.servers.find((s) => s.leader);
  const address = agent.leaderAddress || fromRaft?.address;
  if (address) {
    const r = agent.raft?.servers.find((s) => s.address === address) ?? fromRaft;
    const m = r ? matchRaftServer(r, agent.members) : undefined;
    return {
      state: "elected",
      node: m?.name ?? (r?.node !== "(unknown)" ? r?.node : undefined),
      address,
    };
  }
  if (agent.leaderAddress === "" || agent.raft) {
    return { state: "none", why: "raft has no leader (as the local agent sees it)" };
  }
  return { state: "unknown", why: agent.raftError ?? "raft could not be read" };
}

export function buildStatus(input: StatusInput): StatusView {
  const servers = freshest(input.servers);
  const agents = freshest(input.agents);
  const holders = new Map<string, number>();
  for (const c of input.claims ?? []) if (c.node !== undefined) holders.set(c.node, c.place);
  const rows = new Map<string, StatusRow>();
  for (const node of new Set([...servers.keys(), ...agents.keys()])) {
    const s = servers.get(node);
    const a = agents.get(node);
    const best = freshestPerNode([s, a].filter((h) => h !== undefined), Infinity)[0];
    // A server writes both directories with one stamp; a node that became a client keeps
    // writing agents/ only, so its server heartbeat falls behind.
    const asServer = s !== undefined && (!a || s.stamp.getTime() >= a.stamp.getTime() - 1000);
    rows.set(node, {
      node,
      role: asServer || holders.has(node) ? "server" : "client",
      address: input.addresses.get(node),
      ageSeconds: Number.isFinite(best.ageSeconds) ? Math.round(best.ageSeconds) : undefined,
      registry: isLive(best.ageSeconds, input.expirySeconds) ? "live" : "expired",
    });
  }
  const agent = input.agent;
  if (agent) {
    const byMember = new Map<string, RaftServer>();
    const unmatched: RaftServer[] = [];
    for (const r of agent.raft?.servers ?? []) {
      const m = matchRaftServer(r, agent.members);
      if (m) byMember.set(m.name, r);
      else unmatched.push(r);
    }
    const leader = leaderState(agent);
    const leaderAddr = leader.state === "elected" ? leader.address : undefined;
    for (const m of agent.members) {
      const row: StatusRow = rows.get(m.name) ??
        { node: m.name, role: "client", address: m.addr, registry: "absent" };
      row.serf = m.status;
      row.role = m.isServer ? "server" : "client";
      if (agent.raft) {
        const r = byMember.get(m.name);
        row.voter = r ? r.voter : false;
        row.leader = r ? r.leader || r.address === leaderAddr : false;
        if (r && m.tags.port !== undefined && r.address !== `${m.addr}:${m.tags.port}`) {
          row.raftAddress = r.address;
        }
      }
      rows.set(m.name, row);
    }
    // Raft voters serf does not know at all (dead servers, or servers that moved away).
    for (const r of unmatched) {
      const name = r.node && r.node !== "(unknown)" ? r.node : `(raft ${r.id || r.address})`;
      const row: StatusRow = rows.get(name) ??
        { node: name, role: "server", address: raftIp(r.address), registry: "absent" };
      row.role = "server";
      row.serf = "absent";
      row.voter = r.voter;
      row.leader = r.leader || r.address === leaderAddr;
      row.raftAddress = r.address;
      rows.set(name, row);
    }
  }
  for (const row of rows.values()) {
    const p = holders.get(row.node);
    if (p !== undefined) row.place = p;
  }
  const places: PlaceRow[] = [...(input.claims ?? [])].sort((a, b) => a.place - b.place).map(
    (c) => ({
      place: c.place,
      epoch: c.epoch,
      holder: c.node,
      holderRegistry: c.node === undefined ? "absent" : rows.get(c.node)?.registry ?? "absent",
      holderSerf: c.node === undefined ? undefined : rows.get(c.node)?.serf,
    }),
  );
  return {
    leader: leaderState(agent),
    rows: [...rows.values()].sort((a, b) =>
      (a.role === b.role ? 0 : a.role === "server" ? -1 : 1) || a.node.localeCompare(b.node)
    ),
    places,
  };
}

const yesNo = (v: boolean | undefined) => v === undefined ? "unknown" : v ? "yes" : "no";

function table(head: string[], body: string[][]): string[] {
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((row) => row[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i])).join("  ").trimEnd();
  return [line(head), ...body.map(line)];
}

export function leaderLine(leader: LeaderState): string {
  switch (leader.state) {
    case "elected":
      return `Leader: ${leader.node ?? "(node unknown)"} (${leader.address})`;
    case "none":
      return `Leader: NO LEADER: ${leader.why}; run \`auto-consul doctor\``;
    case "unknown":
      return `Leader: unknown: ${leader.why}`;
  }
}

export function renderStatus(view: StatusView, agent: AgentView | undefined): string {
  const out = table(
    ["NODE", "ROLE", "ADDRESS", "AGE", "REGISTRY", "SERF", "VOTER", "LEADER", "PLACE"],
    view.rows.map((r) => [
      r.node,
      r.role,
      r.address ?? "-",
      r.ageSeconds === undefined ? "-" : `${r.ageSeconds}s`,
      r.registry,
      r.serf ?? "-",
      agent ? yesNo(r.voter) : "-",
      agent ? yesNo(r.leader) : "-",
      r.place === undefined ? "-" : String(r.place),
    ]),
  );
  out.push("", leaderLine(view.leader));
  if (!agent) out.push("(local consul agent not reachable: registry view only)");
  else if (agent.raftSource === "agent-stats") {
    out.push(
      `(raft read from this server's own copy: the raft API did not answer: ${
        agent.raftError ?? "?"
      })`,
    );
  } else if (!agent.raft) {
    out.push(`(raft configuration not read: VOTER and LEADER unknown: ${agent.raftError ?? "?"})`);
  }
  for (const r of view.rows) {
    if (r.raftAddress && r.serf !== "absent") {
      out.push(`(raft has ${r.node} at ${r.raftAddress}, serf at ${r.address})`);
    }
  }
  out.push("");
  if (view.places.length === 0) out.push("Places: none claimed");
  else {
    out.push(
      ...table(
        ["PLACE", "EPOCH", "HOLDER", "HOLDER REGISTRY", "HOLDER SERF"],
        view.places.map((p) => [
          String(p.place),
          String(p.epoch),
          p.holder ?? "(unreadable)",
          p.holderRegistry,
          p.holderSerf ?? "-",
        ]),
      ),
    );
  }
  return out.join("\n");
}
