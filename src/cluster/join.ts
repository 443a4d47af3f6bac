/**
 * Joining and staying joined. Candidates are the live servers' addresses from the registry
 * (except this node), freshest first, all joined through the agent's HTTP API; when none
 * answers, a fresh registry read after backoff with jitter. Once joined, a watch checks
 * that the agent still has a leader and a live server; after more than two ticks without,
 * while the registry shows live servers, it joins them again (servers replaced on new
 * addresses, a partition that outlived the reconnect window). No join while the agent still
 * shows servers alive that the registry does not know (`unknownLiveServers`, I1).
 */
import type { ConsulClient } from "../consul/client.ts";
import type { SerfMember } from "../consul/types.ts";
import { handshakeRefusal, refusalMessage } from "../consul/encryption.ts";
import { describe } from "../errors.ts";
import type { Logger } from "../log.ts";
import type { Member } from "../registry/heartbeats.ts";
import { backoffDelay, type Sleep } from "../util/backoff.ts";

/** Join addresses: live servers except this node (by name and address), freshest first. */
export function joinCandidates(
  servers: Member[],
  self: { node: string; address?: string },
): string[] {
  const out: string[] = [];
  for (const m of servers) {
    if (m.node === self.node || m.address === self.address) continue;
    if (!out.includes(m.address)) out.push(m.address);
  }
  return out;
}

/**
 * Servers the local agent still shows alive that the registry does not know as live servers
 * (by name; this node excepted). Joining the registry's servers while they are there carries
 * them into that cluster as alive: consul's `-bootstrap-expect` counts every server member it
 * knows, and a leader adds alive server members to raft — dead servers of an old cluster in
 * a new one's configuration, and its quorum lost (I1, docs/recovery.md). Gossip marks them
 * failed within seconds when they are really gone.
 */
export function unknownLiveServers(
  members: readonly SerfMember[],
  servers: readonly Member[],
  self: string,
): string[] {
  const known = new Set(servers.map((m) => m.node));
  return members
    .filter((m) => m.isServer && m.status === "alive" && m.name !== self && !known.has(m.name))
    .map((m) => m.name)
    .sort();
}

export type Health = "healthy" | "no-leader" | "unreachable";

/** Whether the local agent is in a working cluster: a leader and at least one live server. */
export async function agentHealth(
  consul: Pick<ConsulClient, "leader" | "members">,
  signal?: AbortSignal,
): Promise<Health> {
  try {
    const [leader, members] = await Promise.all([
      consul.leader({ signal }),
      consul.members({ signal }),
    ]);
    const liveServer = members.some((m) => m.isServer && m.status === "alive");
    return leader && liveServer ? "healthy" : "no-leader";
  } catch {
    // A client with no known servers answers /v1/status/leader with 500: not healthy.
    return "no-leader";
  }
}

export interface JoinDeps {
  consul: Pick<ConsulClient, "join" | "leader" | "members">;
  /** A fresh read of the registry's live servers. */
  readServers: () => Promise<Member[]>;
  sleep: Sleep;
  random: () => number;
  now: () => number;
  log: Logger;
}

export interface JoinOptions {
  node: string;
  address?: string;
  ticksMs: number;
  /** How often the watch looks at the agent. */
  checkMs: number;
  backoff: { initialMs: number; maxMs: number };
  /** Called after each successful join (for tests and metrics). */
  onJoin?: (addr: string) => void;
}

/**
 * Joins every candidate at once, as consul does with a -retry-join list, and returns the
 * addresses joined (empty when none answered). Joining only the first would let servers
 * that start together form islands: a server whose first registry read came before the
 * others' heartbeats is joined by nobody (later nodes pick the freshest) until its backoff
 * ends, and a cluster waiting for -bootstrap-expect waits with it.
 */
export async function joinAll(
  candidates: string[],
  consul: Pick<ConsulClient, "join">,
  log: Logger,
  signal?: AbortSignal,
): Promise<string[]> {
  const results = await Promise.all(candidates.map(async (addr) => {
    if (signal?.aborted) return undefined;
    try {
      await consul.join(addr, { signal });
      return addr;
    } catch (err) {
      const refused = handshakeRefusal(describe(err));
      if (refused) log.warn(refusalMessage(addr, refused), { addr });
      else log.debug("join failed", { addr, error: describe(err) });
      return undefined;
    }
  }));
  return results.filter((a): a is string => a !== undefined);
}

/**
 * Runs until `signal` aborts: joins at start (retrying until it works or the agent is
 * healthy by other means), then watches and re-joins. Never throws: every failure is
 * logged and retried.
 */
export async function stayJoined(
  opts: JoinOptions,
  deps: JoinDeps,
  signal: AbortSignal,
): Promise<void> {
  const { log } = deps;
  let attempt = 0;
  let joined = false;
  let unhealthySince: number | undefined;
  let wasHealthy = false;
  /** The unknown live servers last reported (said again only when they change). */
  let heldBack = "";
  while (!signal.aborted) {
    const health = await agentHealth(deps.consul, signal);
    if (signal.aborted) break;
    if (health === "healthy") {
      if (!wasHealthy) log.info("in a cluster with a leader");
      wasHealthy = true;
      joined = true;
      unhealthySince = undefined;
      attempt = 0;
      await deps.sleep(opts.checkMs, signal);
      continue;
    }
    if (wasHealthy) log.warn("the local agent has no leader or no live server");
    wasHealthy = false;
    unhealthySince ??= deps.now();
    // Before the first join: keep trying. After: give the agent two ticks to recover alone.
    if (joined && deps.now() - unhealthySince <= 2 * opts.ticksMs) {
      await deps.sleep(opts.checkMs, signal);
      continue;
    }
    let servers: Member[] = [];
    try {
      servers = await deps.readServers();
    } catch (err) {
      log.warn("cannot read servers from the registry", { error: describe(err) });
    }
    const candidates = joinCandidates(servers, { node: opts.node, address: opts.address });
    const unknown = candidates.length > 0
      ? await deps.consul.members({ signal }).then(
        (members) => unknownLiveServers(members, servers, opts.node),
        () => [],
      )
      : [];
    if (unknown.length > 0) {
      // I1: wait for gossip to see them failed (or the registry to see them live).
      if (unknown.join(",") !== heldBack) {
        log.warn(
          `not joining the registry's servers while consul shows servers alive that the ` +
            `registry does not know (${unknown.join(", ")}): joining now would carry them into ` +
            `that cluster`,
          { candidates: candidates.join(",") },
        );
      }
      heldBack = unknown.join(",");
      await deps.sleep(opts.checkMs, signal);
      continue;
    }
    if (heldBack !== "") log.info("consul no longer shows servers the registry does not know");
    heldBack = "";
    if (candidates.length > 0) {
      if (joined) {
        log.warn("no leader or live server for more than two ticks: re-joining", {
          candidates: candidates.join(","),
        });
      }
      const joinedNow = await joinAll(candidates, deps.consul, log, signal);
      if (joinedNow.length > 0) {
        log.info("joined", { addr: joinedNow.join(",") });
        for (const addr of joinedNow) opts.onJoin?.(addr);
        attempt = 0;
        // Joined: the cluster may still be electing (bootstrap-expect); give it two ticks
        // before joining again.
        joined = true;
        unhealthySince = deps.now();
        // Let gossip settle before judging health again.
        await deps.sleep(opts.checkMs, signal);
        continue;
      }
      log.warn("could not join any live server", { candidates: candidates.join(",") });
    } else {
      log.debug("no live server in the registry to join yet");
    }
    const delay = backoffDelay(attempt++, opts.backoff, deps.random);
    await deps.sleep(delay, signal);
  }
}
