/**
 * What `status` and `doctor` read (fetch only; `status.ts` and the doctor's findings decide):
 * the registry's heartbeats with each node's address, and the local agent's members, leader
 * and raft configuration, every agent call bounded so a leaderless cluster cannot hang them.
 */
import type { AgentView } from "./status.ts";
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

/** Bound on each agent call of `status` and `doctor`: a leaderless cluster must not hang them. */
export const AGENT_CALL_MS = 1_500;
/** Places are listed up to this number, whatever -s says (status shows every claim). */
export const MAX_PLACES = 100;
/** Re-reads after a heartbeat vanished between the listing and the read. */
const ADDRESS_ROUNDS = 4;

export interface RegistryView {
  servers: Heartbeat[];
  agents: Heartbeat[];
  /** Address from each node's freshest heartbeat. */
  addresses: Map<string, string>;
  /** How many times the directories were listed again (a heartbeat rotated under the read). */
  rereads: number;
}

/**
 * Heartbeats of both directories with each node's address. A node rotates its heartbeat
 * (writes a new key, deletes the old one), so a key listed may be gone when its body is read:
 * the directories are then listed again and the node's newer key read, at most
 * `ADDRESS_ROUNDS` times. A key that is still there but unreadable is not retried.
 */
export async function readRegistryView(registry: Registry, log: Logger): Promise<RegistryView> {
  const addresses = new Map<string, string>();
  const tried = new Map<string, string>();
  let servers: Heartbeat[] = [];
  let agents: Heartbeat[] = [];
  let rereads = 0;
  for (let round = 0; round < ADDRESS_ROUNDS; round++) {
    if (round > 0) rereads++;
    [servers, agents] = await Promise.all([
      readHeartbeats(registry, "servers", log),
      readHeartbeats(registry, "agents", log),
    ]);
    const todo = freshestPerNode([...servers, ...agents], Infinity)
      .filter((b) => !addresses.has(b.node) && tried.get(b.node) !== b.key);
    if (todo.length === 0) break;
    for (const b of todo) tried.set(b.node, b.key);
    for (const m of await withAddresses(registry, todo, log)) addresses.set(m.node, m.address);
  }
  return { servers, agents, addresses, rereads };
}

/** Members, leader and raft configuration (`?stale`: no leader needed), each call bounded. */
export async function readAgentView(
  consul: ConsulClient,
  log: Logger,
): Promise<AgentView | undefined> {
  const opts = { timeoutMs: AGENT_CALL_MS };
  const [members, leader, raft] = await Promise.allSettled([
    consul.members(opts),
    consul.leader(opts),
    consul.raftConfiguration({ ...opts, stale: true }),
  ]);
  if (members.status === "rejected") {
    if (members.reason instanceof ConsulUnreachableError) return undefined;
    throw members.reason;
  }
  if (raft.status === "rejected") {
    log.debug("no raft view from the local agent", { error: describe(raft.reason) });
  }
  return {
    members: members.value,
    leaderAddress: leader.status === "fulfilled" ? leader.value ?? "" : undefined,
    raft: raft.status === "fulfilled" ? raft.value : undefined,
    raftError: raft.status === "rejected" ? describe(raft.reason) : undefined,
  };
}
