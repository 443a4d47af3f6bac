/**
 * "Every member alive and a leader elected", by polling the agents' HTTP APIs: every agent
 * answers /v1/status/leader with a leader (a client only can when it is joined to a server
 * that knows one), and an agent's /v1/agent/members lists the whole fleet alive with the
 * expected number of servers. The same test for auto-consul and for the baselines.
 */
import type { FleetNode } from "./fleet.ts";

export interface Want {
  /** Alive members expected (the whole fleet). */
  members: number;
  /** Alive servers among them. */
  servers: number;
}

/** One look: true when the fleet is formed. `known` remembers agents that named a leader. */
export async function formedNow(
  nodes: FleetNode[],
  want: Want,
  known: Set<FleetNode>,
  round: number,
): Promise<boolean> {
  await Promise.all(
    nodes.filter((n) => !known.has(n)).map(async (n) => {
      try {
        if (await n.client.leader({ timeoutMs: 1_000 })) known.add(n);
      } catch {
        // not up, or no leader yet
      }
    }),
  );
  if (known.size < nodes.length) return false;
  const viewer = nodes[round % nodes.length];
  try {
    const members = await viewer.client.members({ timeoutMs: 1_000 });
    const alive = members.filter((m) => m.status === "alive");
    return alive.length === want.members && alive.filter((m) => m.isServer).length === want.servers;
  } catch {
    return false;
  }
}

/**
 * Polls every `intervalMs` until formed; returns the ms from `t0` (a `performance.now()`)
 * to the first look that saw it formed, or undefined after `timeoutMs`.
 */
export async function waitFormed(
  nodes: FleetNode[],
  want: Want,
  t0: number,
  timeoutMs: number,
  intervalMs = 100,
): Promise<number | undefined> {
  const known = new Set<FleetNode>();
  const maxRounds = Math.ceil(timeoutMs / intervalMs) + 1;
  for (let round = 0; round < maxRounds && performance.now() - t0 < timeoutMs; round++) {
    if (await formedNow(nodes, want, known, round)) return performance.now() - t0;
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  return undefined;
}
