/**
 * I1 when a stale place is taken: never more raft voters than `-s`. Consul's autopilot (1.8)
 * removes dead servers only while they are fewer than half of the voters — one dead voter out
 * of three is never pruned (1 < 3/2 is false in its integer arithmetic) — and it promotes a
 * healthy new server to voter before it prunes. A replacement left alone is therefore a 4th
 * voter beside the dead one. So the node that took the place removes the previous holder's
 * voter itself (by consul's node-id, from the holder record) before its consul runs as a
 * server (a promoted client, through its running agent), or as soon as its agent knows a
 * leader (a node that took the place at start: autopilot's stabilization time, 10 s by
 * default, comes before any promotion to voter). docs/recovery.md, I1.
 */
import type { ConsulClient } from "../consul/client.ts";
import { ConsulError, describe } from "../errors.ts";
import type { Logger } from "../log.ts";
import type { Sleep } from "../util/backoff.ts";

/** The holder whose stale place was taken. */
export interface Replaced {
  node: string;
  /** consul's node-id (its raft server ID), from its holder record; unknown without one. */
  nodeId?: string;
}

export interface RemoveVoterDeps {
  consul: Pick<ConsulClient, "raftConfiguration" | "raftRemovePeer">;
  sleep: Sleep;
  log: Logger;
}

export type RemoveOutcome = "removed" | "absent" | "refused" | "failed" | "stopped";

/**
 * Removes `replaced`'s server from the raft configuration (read through the leader). Tries
 * `attempts` times, `intervalMs` apart (no leader yet, a timeout); never throws. "absent": it is
 * not in the configuration (already removed, or it never was a server); "refused": it is the
 * leader (it is alive: never removed by this rule).
 */
export async function removeReplacedVoter(
  replaced: Replaced,
  deps: RemoveVoterDeps,
  opts: { attempts: number; intervalMs: number },
  signal: AbortSignal,
): Promise<RemoveOutcome> {
  const { log } = deps;
  const id = replaced.nodeId?.toLowerCase();
  let lastError = "";
  for (let attempt = 1; attempt <= opts.attempts && !signal.aborted; attempt++) {
    try {
      const cfg = await deps.consul.raftConfiguration({ signal });
      const voter = cfg.servers.find((s) =>
        id !== undefined ? s.id.toLowerCase() === id : s.node === replaced.node
      );
      if (!voter) {
        log.debug("the replaced server is not in the raft configuration", { ...replaced });
        return "absent";
      }
      if (voter.leader) {
        log.warn("the replaced server leads raft: its voter is kept", {
          ...replaced,
          address: voter.address,
        });
        return "refused";
      }
      await deps.consul.raftRemovePeer(voter.id, { signal });
      log.info(`removed the raft voter of ${replaced.node}, whose place this node took`, {
        id: voter.id,
        address: voter.address,
      });
      return "removed";
    } catch (err) {
      if (signal.aborted) break;
      lastError = describe(err);
      // Refused by ACLs (the token lacks operator:write): asking again changes nothing.
      if (err instanceof ConsulError && err.status === 403) break;
      log.debug("cannot remove the replaced server's raft voter yet", { error: lastError });
    }
    if (attempt < opts.attempts) await deps.sleep(opts.intervalMs, signal).catch(() => {});
  }
  if (signal.aborted) return "stopped";
  log.warn(
    `could not remove the raft voter of ${replaced.node}, whose place this node took: ` +
      `autopilot may count it beside this server until it prunes it`,
    { error: lastError },
  );
  return "failed";
}
