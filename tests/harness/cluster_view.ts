/**
 * What a set of auto-consul nodes agrees on: `clusterView` takes one look (servers, clients,
 * one leader, alive members, raft voters) and `waitForCluster` waits, bounded, until it holds.
 */
import type { RaftServer, SerfMember } from "../../src/consul/types.ts";
import type { Node } from "./nodes.ts";
import { waitFor } from "./wait.ts";

/** What every agent agreed on when `waitForCluster` returned. */
export interface ClusterView {
  servers: Node[];
  clients: Node[];
  /** The leader's "ip:8300". */
  leader: string;
  voters: RaftServer[];
}

/**
 * One look at the cluster: every node's agent answers, says whether it is a server, sees
 * exactly `nodes` as alive members, names the same leader (one of the servers), and reports
 * raft peers and raft voters = the servers. Returns the view, or throws saying what is not so
 * yet.
 */
export async function clusterView(
  nodes: Node[],
  want: { servers: number; clients: number },
): Promise<ClusterView> {
  const names = nodes.map((n) => n.name).sort();
  const answers = await Promise.all(nodes.map(async (n) => {
    const [self, members, leader, peers, raft] = await Promise.all([
      n.client.self(),
      n.client.members(),
      n.client.leader(),
      n.client.peers(),
      n.client.raftConfiguration(),
    ]);
    return { node: n, self, members, leader, peers, raft };
  }));
  const servers = answers.filter((a) => a.self.isServer).map((a) => a.node);
  const clients = answers.filter((a) => !a.self.isServer).map((a) => a.node);
  if (servers.length !== want.servers || clients.length !== want.clients) {
    throw new Error(
      `${servers.length} servers and ${clients.length} clients: expected ${want.servers} and ${want.clients}`,
    );
  }
  const serverAddrs = servers.map((s) => s.rpcAddr).sort();
  const leaders = new Set(answers.map((a) => a.leader ?? "(none)"));
  if (leaders.size !== 1) throw new Error(`agents name different leaders: ${[...leaders]}`);
  const leader = answers[0].leader;
  if (leader === undefined || !serverAddrs.includes(leader)) {
    throw new Error(`leader ${leader} is not one of the servers ${serverAddrs}`);
  }
  for (const a of answers) {
    const alive = aliveNames(a.members);
    if (alive.join(",") !== names.join(",")) {
      throw new Error(`${a.node.name} sees alive members ${alive}: expected ${names}`);
    }
    if ([...a.peers].sort().join(",") !== serverAddrs.join(",")) {
      throw new Error(`${a.node.name} reports raft peers ${a.peers}: expected ${serverAddrs}`);
    }
    const voters = a.raft.servers.filter((s) => s.voter).map((s) => s.address).sort();
    const all = a.raft.servers.map((s) => s.address).sort();
    if (voters.join(",") !== serverAddrs.join(",") || all.length !== voters.length) {
      throw new Error(
        `${a.node.name} reports raft servers ${all} (voters ${voters}): expected voters ${serverAddrs}`,
      );
    }
  }
  const voters = answers[0].raft.servers;
  return { servers, clients, leader, voters };
}

/**
 * Waits (bounded) until `clusterView` holds: exactly `servers` servers and `clients` clients
 * among `nodes`, one leader, all alive, raft voters = the servers.
 */
export async function waitForCluster(
  nodes: Node[],
  want: { servers: number; clients: number; timeoutMs?: number },
): Promise<ClusterView> {
  try {
    return await waitFor(() => clusterView(nodes, want), {
      what: `${want.servers} servers, ${want.clients} clients, one leader, ${nodes.length} alive`,
      timeoutMs: want.timeoutMs ?? 60_000,
      intervalMs: 250,
    });
  } catch (err) {
    const dead = nodes.filter((n) => !n.running).map((n) => n.name);
    throw new Error(
      `${(err as Error).message}${dead.length ? `\nrun exited on: ${dead}` : ""}\n` +
        nodes.map((n) => n.tail(15)).join("\n"),
      { cause: err },
    );
  }
}

function aliveNames(members: SerfMember[]): string[] {
  return members.filter((m) => m.status === "alive").map((m) => m.name).sort();
}
