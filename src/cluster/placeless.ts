/**
 * I1 beyond a place taken: a raft server that holds no place (docs/recovery.md, I1 "Placeless
 * servers"). Consul's leader adds every server member serf shows alive to raft; a client whose
 * consul still sees the old servers alive carries them into a new cluster (I5) when it joins
 * it. Consul's autopilot prunes dead servers only within limits (not when a `-c` file turns
 * `cleanup_dead_servers` off, not below `min_quorum` voters — it cannot tell which dead voter
 * has a place to come back to — not when the dead are too many). So the leader of a cluster — when it holds a place itself — removes from raft every
 * server that holds no place, has no live server heartbeat (the gem's servers write one, and
 * count: issue 11) and that serf does not show alive, once it saw it so on two checks in a
 * row. A live placeless server is never removed (consul would add it back at once, and a
 * removed live server campaigns against the leader): it is reported at error level instead,
 * and its data dir — on its own machine — is never touched by anything here.
 *
 * The decision is pure (`placelessVerdict`); `prunePlaceless` only reads and removes.
 */
import type { ConsulClient } from "../consul/client.ts";
import type { RaftServer, SerfMember } from "../consul/types.ts";
import { ConsulError, describe } from "../errors.ts";
import type { Logger } from "../log.ts";
import { freshestPerNode, readHeartbeats } from "../registry/heartbeats.ts";
import type { Registry } from "../registry/registry.ts";
import type { Sleep } from "../util/backoff.ts";
import { listClaims, withHolders } from "./decision_view.ts";
import { raftFromSelf } from "./holder.ts";
import { MAX_PLACES } from "./observe.ts";

/** A raft server that holds no place, as decided. */
export interface Placeless {
  id: string;
  node: string;
  address: string;
  voter: boolean;
  /** Its serf status ("none": serf does not know the name with this ID). */
  serf: string;
}

export interface PlacelessInput {
  /** This agent's node-id. */
  selfId: string;
  /** This node's name. */
  node: string;
  /** The raft configuration, as the leader serves it. */
  raft: readonly RaftServer[];
  /** The current holder of every place (any place, not only those below -s). */
  holders: readonly (string | undefined)[];
  /** Nodes with a live heartbeat in `servers/`. */
  liveServers: ReadonlySet<string>;
  members: readonly SerfMember[];
  /** Raft IDs found removable on the previous check. */
  previous: ReadonlySet<string>;
}

export type PlacelessVerdict =
  /** This node does not lead, or the registry does not show it holding a place: nothing. */
  | { kind: "none"; why: string }
  | {
    kind: "check";
    /** Placeless, not alive, seen so on the previous check too: remove now. */
    remove: Placeless[];
    /** Placeless and not alive for the first time: remove on the next check if still so. */
    pending: Placeless[];
    /** Placeless but alive in serf: reported, never removed. */
    alive: Placeless[];
  };

/**
 * Which raft servers a leader removes. Only the leader decides (one writer), and only when the
 * registry shows it holding a place (a registry that does not know this cluster — another
 * prefix, wiped — removes nothing). A server is kept when it holds a place, has a live server
 * heartbeat, or is this node; otherwise it is placeless, and it is removed when serf does not
 * show its name alive with its ID, on two checks in a row (a claim being written, a listing
 * that missed one, a member not yet gossiped: one check is not enough).
 */
export function placelessVerdict(input: PlacelessInput): PlacelessVerdict {
  const self = input.raft.find((s) => s.id.toLowerCase() === input.selfId.toLowerCase());
  if (!self?.leader) return { kind: "none", why: "this server does not lead raft" };
  const holders = new Set(input.holders.filter((h): h is string => h !== undefined));
  if (!holders.has(input.node)) {
    return { kind: "none", why: `the registry does not show ${input.node} holding a place` };
  }
  const remove: Placeless[] = [];
  const pending: Placeless[] = [];
  const alive: Placeless[] = [];
  for (const s of input.raft) {
    if (s === self || holders.has(s.node) || input.liveServers.has(s.node)) continue;
    const member = input.members.find((m) =>
      m.name === s.node && (m.tags.id ?? "").toLowerCase() === s.id.toLowerCase()
    );
    const p: Placeless = {
      id: s.id,
      node: s.node,
      address: s.address,
      voter: s.voter,
      serf: member?.status ?? "none",
    };
    if (member?.status === "alive") alive.push(p);
    else if (input.previous.has(s.id)) remove.push(p);
    else pending.push(p);
  }
  return { kind: "check", remove, pending, alive };
}

export interface PruneOptions {
  node: string;
  ticksMs: number;
  expirySeconds: number;
}

export interface PruneDeps {
  registry: Registry;
  consul: Pick<ConsulClient, "self" | "members" | "raftConfiguration" | "raftRemovePeer">;
  sleep: Sleep;
  log: Logger;
}

/** An alive placeless server is reported again after this many checks (not every tick). */
const REPORT_EVERY = 30;

/**
 * Every tick until `signal` aborts: when this server leads, reads the raft configuration, the
 * places and the server heartbeats and removes dead placeless servers (`placelessVerdict`).
 * A failed read decides nothing. Returns how many servers it removed.
 */
export async function prunePlaceless(
  opts: PruneOptions,
  deps: PruneDeps,
  signal: AbortSignal,
): Promise<number> {
  const { log } = deps;
  let previous = new Set<string>();
  const reported = new Map<string, number>();
  /** Removals refused by ACLs (operator:write): said once, not asked again. */
  const refusedIds = new Set<string>();
  let removed = 0;
  for (let check = 0; !signal.aborted; check++) {
    await deps.sleep(opts.ticksMs, signal).catch(() => {});
    if (signal.aborted) break;
    try {
      const self = await deps.consul.self({ signal });
      // Only the leader reads on (its own copy, `stale`): a follower asks nothing more.
      if (raftFromSelf(self).state !== "Leader") {
        previous = new Set();
        continue;
      }
      const raft = await deps.consul.raftConfiguration({ signal, stale: true });
      const me = raft.servers.find((s) => s.id.toLowerCase() === self.nodeId.toLowerCase());
      if (!me?.leader) {
        previous = new Set();
        continue;
      }
      const [claims, beats, members] = await Promise.all([
        listClaims(deps.registry, MAX_PLACES, log).then((l) => withHolders(deps.registry, l, log)),
        readHeartbeats(deps.registry, "servers", log),
        deps.consul.members({ signal }),
      ]);
      const v = placelessVerdict({
        selfId: self.nodeId,
        node: opts.node,
        raft: raft.servers,
        holders: claims.map((c) => c.node),
        liveServers: new Set(freshestPerNode(beats, opts.expirySeconds).map((b) => b.node)),
        members,
        previous,
      });
      if (v.kind === "none") {
        previous = new Set();
        continue;
      }
      for (const p of v.alive) {
        const last = reported.get(p.id);
        if (last !== undefined && check - last < REPORT_EVERY) continue;
        reported.set(p.id, check);
        log.error(
          `raft server ${p.node} holds no place and has no server heartbeat, but it is alive: ` +
            `not removed (consul would add it back). If it is a server of a former cluster ` +
            `(I5), its data dir on its machine is kept: stop it, or run it under auto-consul ` +
            `(it then runs as a client, data kept)`,
          { ...p },
        );
      }
      const retry: string[] = [];
      for (const p of v.remove) {
        if (refusedIds.has(p.id)) continue;
        try {
          await deps.consul.raftRemovePeer(p.id, { signal });
          removed++;
          log.warn(
            `removed raft server ${p.node}: it holds no place, has no server heartbeat and ` +
              `serf shows it ${p.serf} (never more raft servers than places, I1)`,
            { ...p },
          );
        } catch (err) {
          if (signal.aborted) break;
          const refused = err instanceof ConsulError && err.status === 403;
          if (refused) refusedIds.add(p.id);
          else retry.push(p.id);
          (refused ? log.warn : log.debug).call(log, "cannot remove a placeless raft server", {
            ...p,
            error: describe(err),
          });
        }
      }
      previous = new Set([...v.pending.map((p) => p.id), ...retry]);
    } catch (err) {
      if (!signal.aborted) log.debug("placeless check: cannot read", { error: describe(err) });
      previous = new Set();
    }
  }
  return removed;
}
