/** `status`: registry members merged with the local agent's serf and raft view. */
import type { Config } from "../cli/config.ts";
import { type AgentView, buildStatus, renderTable } from "../cluster/status.ts";
import type { ConsulClient } from "../consul/client.ts";
import { ConsulUnreachableError, describe } from "../errors.ts";
import type { Logger } from "../log.ts";
import {
  freshestPerNode,
  type Heartbeat,
  readHeartbeats,
  withAddresses,
} from "../registry/heartbeats.ts";
import type { Registry } from "../registry/registry.ts";

export interface StatusDeps {
  log: Logger;
  consul: ConsulClient;
  openRegistry: () => Promise<Registry>;
  print: (text: string) => void;
}

/** Addresses from each node's freshest heartbeat, expired ones included. */
async function readAddresses(
  registry: Registry,
  beats: Heartbeat[],
  log: Logger,
): Promise<Map<string, string>> {
  const freshest = freshestPerNode(beats, Infinity);
  return new Map((await withAddresses(registry, freshest, log)).map((m) => [m.node, m.address]));
}

async function agentView(consul: ConsulClient, log: Logger): Promise<AgentView | undefined> {
  try {
    const members = await consul.members();
    let raft;
    try {
      raft = await consul.raftConfiguration();
    } catch (err) {
      log.debug("no raft view from the local agent", { error: describe(err) });
    }
    return { members, raft };
  } catch (err) {
    if (err instanceof ConsulUnreachableError) return undefined;
    throw err;
  }
}

export async function statusCommand(config: Config, deps: StatusDeps): Promise<number> {
  const registry = await deps.openRegistry();
  try {
    const [servers, agents, agent] = await Promise.all([
      readHeartbeats(registry, "servers", deps.log),
      readHeartbeats(registry, "agents", deps.log),
      agentView(deps.consul, deps.log),
    ]);
    const addresses = await readAddresses(registry, [...servers, ...agents], deps.log);
    const rows = buildStatus({ servers, agents, addresses, expirySeconds: config.expiry, agent });
    if (config.json) {
      const leader = agent?.raft?.servers.find((s) => s.leader)?.node;
      deps.print(JSON.stringify(
        {
          registry: registry.url,
          expirySeconds: config.expiry,
          agent: agent ? { reachable: true, leader: leader ?? null } : { reachable: false },
          members: rows,
        },
        null,
        2,
      ));
    } else {
      deps.print(renderTable(rows, agent !== undefined));
    }
    return 0;
  } finally {
    registry.close();
  }
}
