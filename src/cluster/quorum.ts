/**
 * Quorum recovery (I4, docs/recovery.md): a server watches for a lost quorum every tick and,
 * after the wait W with no leader anywhere, publishes or carries out a recovery plan: consul
 * is stopped, `<data-dir>/server/raft/peers.json` written from the plan, consul started again.
 * The decision is `decideRecovery` (recovery.ts); this module only reads and writes.
 */
import type { ConsulClient } from "../consul/client.ts";
import { describe } from "../errors.ts";
import type { Logger } from "../log.ts";
import type { Registry } from "../registry/registry.ts";
import type { Sleep } from "../util/backoff.ts";
import { publishPlan, raftFromSelf, readPlans, readRecords } from "./holder.ts";
import { decideRecovery, leaderInRecords } from "./recovery.ts";
import type { RecoveryPlan } from "./records.ts";
import { writeStateFile } from "../util/atomic.ts";
import { parseLatestConfiguration } from "./observe.ts";
import type { AgentSelf, RaftConfiguration } from "../consul/types.ts";

/** Local state: the highest plan this node carried out. */
export const RECOVERY_FILE = "recovery.json";

export interface QuorumOptions {
  node: string;
  address: string;
  ticksMs: number;
  expirySeconds: number;
  /** W, seconds. */
  waitSeconds: number;
  autoRecover: boolean;
  dataDir: string;
  /** `-s`: an address rewrite names every fresh place holder with raft data, never more. */
  servers?: number;
}

export interface QuorumDeps {
  registry: Registry;
  consul: Pick<ConsulClient, "self" | "leader" | "raftConfiguration">;
  sleep: Sleep;
  /** Monotonic milliseconds. */
  now: () => number;
  log: Logger;
}

/** A plan to carry out: stop consul, write `peers` as raft/peers.json, start consul. */
export interface Recovery {
  plan: RecoveryPlan;
  peers: string;
}

/**
 * Watches until a recovery plan naming this server must be carried out (resolves with it), or
 * until `signal` aborts (undefined). Says what it waits for when that changes.
 */
export async function watchQuorum(
  opts: QuorumOptions,
  deps: QuorumDeps,
  signal: AbortSignal,
): Promise<Recovery | undefined> {
  const { log } = deps;
  const movedWaitSeconds = Math.min(opts.waitSeconds, Math.max(3, (3 * opts.ticksMs) / 1000));
  let lastLeader = deps.now();
  /** Last time a leader known for `movedWaitSeconds` was seen (only the move looks at it). */
  let lastStable = deps.now();
  /** Since when the local agent names a leader without a break. */
  let localSince: number | undefined;
  let said = "";
  while (!signal.aborted) {
    await deps.sleep(opts.ticksMs, signal);
    if (signal.aborted) break;
    try {
      const leader = await deps.consul.leader({ signal });
      if (leader !== undefined) {
        lastLeader = deps.now();
        localSince ??= deps.now();
        if (deps.now() - localSince >= movedWaitSeconds * 1000) {
          lastStable = deps.now();
          said = "";
          continue;
        }
      } else localSince = undefined;
      // Read everything before deciding: a failed read decides nothing (I6).
      const [records, plans, self] = await Promise.all([
        readRecords(deps.registry, log),
        readPlans(deps.registry, log),
        deps.consul.self({ signal }),
      ]);
      // The server's own copy first: consul 1.8 serves no raft read (not even ?stale) on a
      // server that has not heard from a leader since it started — exactly the servers that
      // need recovery; the API held each call ~7 s and then failed, so no tick decided.
      const raft = raftFromStats(self) ??
        await deps.consul.raftConfiguration({ signal, stale: true });
      if (leaderInRecords(records, opts.expirySeconds)) lastLeader = deps.now();
      const stableLeader = leaderInRecords(records, opts.expirySeconds, movedWaitSeconds);
      if (stableLeader) lastStable = deps.now();
      const progress = raftFromSelf(self);
      const d = decideRecovery({
        node: opts.node,
        autoRecover: opts.autoRecover,
        expirySeconds: opts.expirySeconds,
        waitSeconds: opts.waitSeconds,
        movedWaitSeconds,
        leaderlessSeconds: (deps.now() - lastLeader) / 1000,
        leaderNow: leader !== undefined,
        stableLeader,
        stableLeaderlessSeconds: (deps.now() - lastStable) / 1000,
        self: { nodeId: self.nodeId, address: opts.address, ...progress },
        voters: raft.servers.filter((s) => s.voter).map((s) => ({ id: s.id, address: s.address })),
        records,
        plans,
        lastApplied: await lastApplied(opts.dataDir),
        servers: opts.servers,
      });
      switch (d.kind) {
        case "apply":
          return { plan: d.plan, peers: d.peers };
        case "publish": {
          const plan = await publishPlan(deps.registry, d.plan, plans);
          if (plan) {
            log.error(`published quorum recovery plan ${plan.n}: ${plan.reason}`, {
              survivors: plan.survivors.map((s) => s.node).join(","),
            });
            if (d.lossWarning) log.error(d.lossWarning);
          }
          break;
        }
        case "wait":
        case "none": {
          const text = d.kind === "wait"
            ? `${d.why} (in ${Math.ceil(d.remainingSeconds)} s)`
            : `no leader: ${d.why}`;
          // Once per change of reason (the countdown itself is not news).
          const key = d.kind === "wait" ? d.why : text;
          if (key !== said) (d.kind === "wait" ? log.warn : log.info).call(log, text);
          said = key;
        }
      }
    } catch (err) {
      if (!signal.aborted) log.debug("quorum watch: cannot read", { error: describe(err) });
    }
  }
  return undefined;
}

/** Writes the plan's peers.json into consul's raft dir and records the plan as carried out. */
export async function prepareRecovery(dataDir: string, r: Recovery): Promise<string> {
  const path = `${dataDir}/server/raft/peers.json`;
  await writeStateFile(path, r.peers);
  await writeStateFile(`${dataDir}/${RECOVERY_FILE}`, JSON.stringify({ applied: r.plan.n }) + "\n");
  return path;
}

/** The raft configuration in the agent's own stats (`Stats.raft.latest_configuration`). */
function raftFromStats(self: Pick<AgentSelf, "raw">): RaftConfiguration | undefined {
  const stats = (self.raw.Stats ?? {}) as Record<string, Record<string, unknown> | undefined>;
  return parseLatestConfiguration(stats.raft?.latest_configuration);
}

async function lastApplied(dataDir: string): Promise<number> {
  try {
    const v = JSON.parse(await Deno.readTextFile(`${dataDir}/${RECOVERY_FILE}`));
    return Number.isSafeInteger(v?.applied) ? v.applied : 0;
  } catch {
    return 0;
  }
}
