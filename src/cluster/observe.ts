/**
 * What `status` and `doctor` read (fetch only; `status.ts` and the doctor's findings decide):
 * the registry's heartbeats with each node's address, and the local agent's members, leader
 * and raft configuration, every agent call bounded so a leaderless cluster cannot hang them.
 */
import type { AgentView } from "./status_view.ts";
import type { ConsulClient } from "../consul/client.ts";
import type { RaftConfiguration, RaftServer } from "../consul/types.ts";
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
/**
 * Bound on the raft configuration call: without a leader consul holds it for its RPC hold
 * timeout (7 s) and fails; the server's own copy is read instead, so `status` stays near 1 s.
 */
export const RAFT_CALL_MS = 1_000;
/** Places are listed up to this number, whatever -s says (status shows every claim). */
export const MAX_PLACES = 100;
/** Re-reads after a heartbeat vanished between the listing and the read. */
// Each round costs two listings, and only when a key listed was gone when read: a node rotates
// at most once a tick, so a second round is rare and an eighth one needs a node rotating faster
// than the reads (tests/status_race_test.ts rotates in a tight loop: 4 rounds lost 1 in 200).
const ADDRESS_ROUNDS = 8;

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

/**
 * The raft configuration a server keeps in its own stats (GET /v1/agent/self,
 * `Stats.raft.latest_configuration`, e.g. "[{Suffrage:Voter ID:abc Address:10.0.0.1:8300}]").
 * Pure; undefined when the text is not that shape. Node names are not in it: "(unknown)".
 */
export function parseLatestConfiguration(text: unknown): RaftConfiguration | undefined {
  if (typeof text !== "string" || !/^\[.*\]$/s.test(text.trim())) return undefined;
  const servers: RaftServer[] = [];
  for (const m of text.matchAll(/\{Suffrage:(\w+) ID:(\S+) Address:(\S+?)\}/g)) {
    servers.push({
      id: m[2],
      node: "(unknown)",
      address: m[3],
      leader: false,
      voter: m[1] === "Voter",
      protocolVersion: "",
    });
  }
  const inner = text.trim().slice(1, -1).trim();
  if (servers.length === 0 && inner !== "") return undefined;
  return { servers, index: 0 };
}

/**
 * Members, leader and raft configuration (`?stale`: no leader needed), each call bounded.
 * Consul 1.8 serves a stale raft read only on a server that has heard from a leader since it
 * started; a server that restarted into an outage answers "No cluster leader" after its RPC
 * hold timeout. Then the server's own copy (agent self stats) is used.
 */
export async function readAgentView(
  consul: ConsulClient,
  log: Logger,
): Promise<AgentView | undefined> {
  const opts = { timeoutMs: AGENT_CALL_MS };
  const [members, leader, raft, self] = await Promise.allSettled([
    consul.members(opts),
    consul.leader(opts),
    consul.raftConfiguration({ timeoutMs: RAFT_CALL_MS, stale: true }),
    consul.self(opts),
  ]);
  if (members.status === "rejected") {
    if (members.reason instanceof ConsulUnreachableError) return undefined;
    throw members.reason;
  }
  let config = raft.status === "fulfilled" ? raft.value : undefined;
  let raftSource: AgentView["raftSource"] = config ? "api" : undefined;
  if (raft.status === "rejected") {
    log.debug("no raft view from the local agent", { error: describe(raft.reason) });
    const stats = self.status === "fulfilled" ? obj(obj(self.value.raw.Stats).raft) : {};
    config = parseLatestConfiguration(stats.latest_configuration);
    if (config) raftSource = "agent-stats";
  }
  return {
    members: members.value,
    leaderAddress: leader.status === "fulfilled" ? leader.value ?? "" : undefined,
    raft: config,
    raftSource,
    raftError: raft.status === "rejected" ? describe(raft.reason) : undefined,
  };
}

function obj(v: unknown): Record<string, unknown> {
  return v && typeof v === "object" ? v as Record<string, unknown> : {};
}
