/** `status`: registry members merged with the local agent's serf and raft view. */
import type { Config } from "../cli/config.ts";
import { readClaims } from "../cluster/decision_view.ts";
import { MAX_PLACES, readAgentView, readRegistryView } from "../cluster/observe.ts";
import { buildStatus, renderStatus } from "../cluster/status_view.ts";
import type { ConsulClient } from "../consul/client.ts";
import type { Logger } from "../log.ts";
import type { Registry } from "../registry/registry.ts";

export interface StatusDeps {
  log: Logger;
  consul: ConsulClient;
  openRegistry: () => Promise<Registry>;
  print: (text: string) => void;
}

export async function statusCommand(config: Config, deps: StatusDeps): Promise<number> {
  const registry = await deps.openRegistry();
  try {
    const [reg, claims, agent] = await Promise.all([
      readRegistryView(registry, deps.log),
      readClaims(registry, MAX_PLACES, deps.log),
      readAgentView(deps.consul, deps.log),
    ]);
    const view = buildStatus({ ...reg, expirySeconds: config.expiry, agent, claims });
    if (config.json) {
      const leader = view.leader;
      deps.print(JSON.stringify(
        {
          registry: registry.url,
          expirySeconds: config.expiry,
          agent: agent
            ? {
              reachable: true,
              leader: leader.state === "elected" ? leader.node ?? null : null,
              raft: agent.raft ? "read" : "unknown",
              raftSource: agent.raftSource,
              raftError: agent.raftError,
            }
            : { reachable: false },
          leader,
          members: view.rows,
          places: view.places,
        },
        null,
        2,
      ));
    } else {
      deps.print(renderStatus(view, agent));
    }
    return 0;
  } finally {
    registry.close();
  }
}
