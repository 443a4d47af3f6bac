/**
 * Checks of this machine: its agent's leave settings, server raft data under a client, a
 * raft/peers.json waiting to be read. Pure.
 */
import {
  type AgentFacts,
  type DataDirFacts,
  type Finding,
  type LocalFacts,
  readmeRef,
  RECOVER_ADVICE,
} from "./facts.ts";

export function checkLeaveSettings(a: AgentFacts): Finding[] {
  if (!a.self.isServer) return [];
  const bad: string[] = [];
  if (a.self.leaveOnTerm === true) bad.push("leave_on_terminate = true (leaves on SIGTERM)");
  if (a.self.skipLeaveOnInt === false) {
    bad.push("skip_leave_on_interrupt = false (leaves on SIGINT)");
  }
  if (bad.length === 0) return [];
  return [{
    id: "leave-on-signal",
    severity: "warning",
    title: `server ${a.self.node} leaves the cluster when stopped: a whole-cluster restart then ` +
      `empties every raft peer set`,
    evidence: bad.map((b) => `DebugConfig: ${b}`),
    next: `remove these settings from the config dir given with -c (auto-consul writes ` +
      `leave_on_terminate = false, skip_leave_on_interrupt = true for servers, and a -c file ` +
      `overrides it); ${readmeRef("leave-on-signal")}`,
  }];
}

export function checkServerDataOnClient(a: AgentFacts | undefined, l: LocalFacts): Finding[] {
  const d = l.serverData;
  if (!d?.raftDb) return [];
  const client = a ? !a.self.isServer : l.mode === "agent";
  if (!client) return [];
  return [{
    id: "client-with-server-data",
    severity: "warning",
    title: "this node holds server raft data but runs as a client",
    evidence: [
      `${d.path}/raft/raft.db exists${d.nodeId ? ` (node-id ${d.nodeId})` : ""}`,
      a ? `the local agent ${a.self.node} runs as a client` : `recorded mode: agent`,
    ],
    next: `if the cluster lost this server, make it one again: \`auto-consul set_server\` and ` +
      `restart; if it was replaced on purpose, the data is stale (keep it until the cluster is ` +
      `healthy); ${readmeRef("client-with-server-data")}`,
  }];
}

/** Parses a peers.json: its entries, or the reason it is unusable. */
export function peersJsonEntries(text: string): { entries?: unknown[]; problem?: string } {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return { problem: "is not JSON" };
  }
  if (v === null) return { problem: "is null" };
  if (!Array.isArray(v)) return { problem: "is not a list" };
  return { entries: v };
}

export function checkPeersJson(d: DataDirFacts | undefined, servers: number): Finding[] {
  if (d?.peersJson === undefined) return [];
  const p = peersJsonEntries(d.peersJson);
  const n = p.entries?.length ?? 0;
  const bad = p.problem ??
    (n === 0 ? "is empty ([])" : n === 1 && servers > 1 ? "has a single entry" : undefined);
  const evidence = [`${d.path}/raft/peers.json: ${d.peersJson.trim().slice(0, 200)}`];
  if (bad) {
    return [{
      id: "peer-set-degenerate",
      severity: "critical",
      title: `raft/peers.json ${bad}: consul reads it at the next start and gets no quorum`,
      evidence,
      next: `write every live server into it ({"id","address","non_voter"} per server) or remove ` +
        `it before restarting: ${RECOVER_ADVICE}`,
    }];
  }
  return [{
    id: "peers-json-pending",
    severity: "info",
    title: `raft/peers.json with ${n} servers is waiting: consul reads it at its next start`,
    evidence,
    next: `restart consul on every server listed in it; ${readmeRef("peers-json-pending")}`,
  }];
}

/**
 * What a serf snapshot (`serf/local.snapshot`, one event per line: "alive: NAME ADDR",
 * "not-alive: NAME", "leave", clocks, coordinates) says at its end: who was alive, who was not,
 * and whether this node left. Pure; undefined when there is nothing to say.
 */
export function summarizeSnapshot(lines: string[] | undefined): string | undefined {
  if (!lines || lines.length === 0) return undefined;
  const state = new Map<string, boolean>();
  let left = false;
  for (const line of lines) {
    const alive = /^alive: (\S+) /.exec(line);
    const gone = /^not-alive: (\S+)/.exec(line);
    if (alive) state.set(alive[1], true), left = false;
    else if (gone) state.set(gone[1], false);
    else if (line.trim() === "leave") left = true;
  }
  const up = [...state].filter(([, a]) => a).map(([n]) => n);
  const down = [...state].filter(([, a]) => !a).map(([n]) => n);
  if (up.length === 0 && down.length === 0 && !left) return undefined;
  return `serf snapshot: alive ${up.join(", ") || "none"}; not alive ${down.join(", ") || "none"}` +
    (left ? "; it ends with this node's leave (it will not rejoin its old peers by itself)" : "");
}
