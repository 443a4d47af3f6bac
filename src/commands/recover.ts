/**
 * `auto-consul recover` (docs/recovery.md): by hand, on a surviving server (its agent at
 * --http-addr). `--dry-run` prints the plan and why; `--yes` publishes it in the registry,
 * and the running nodes named in it carry it out (consul restarted with raft/peers.json).
 * `--new-cluster` publishes a new-cluster plan instead: every stale place may be taken at
 * once and a new, empty cluster forms (the old servers' data dirs are kept and reported).
 * Exit 0: a plan was printed or published; 1: there is nothing to recover (said why).
 */
import type { Config } from "../cli/config.ts";
import { readClaims } from "../cluster/decision_view.ts";
import { publishPlan, raftFromSelf, readPlans, readRecords } from "../cluster/holder.ts";
import { parseLatestConfiguration } from "../cluster/observe.ts";
import { decideRecovery, leaderInRecords } from "../cluster/recovery.ts";
import type { RecoveryPlan } from "../cluster/records.ts";
import { describe } from "../errors.ts";
import type { ConsulClient } from "../consul/client.ts";
import type { Logger } from "../log.ts";
import type { Registry } from "../registry/registry.ts";

export interface RecoverDeps {
  log: Logger;
  consul: Pick<ConsulClient, "leader" | "self" | "raftConfiguration">;
  openRegistry: () => Promise<Registry>;
  print: (text: string) => void;
}

export async function recoverCommand(
  config: Config,
  deps: RecoverDeps,
): Promise<number> {
  const { print, log } = deps;
  const registry = await deps.openRegistry();
  try {
    const [records, plans, claims] = await Promise.all([
      readRecords(registry, log),
      readPlans(registry, log),
      readClaims(registry, config.servers, log),
    ]);
    const leader = await deps.consul.leader().catch(() => undefined);
    if (leader !== undefined || leaderInRecords(records, config.expiry)) {
      print(
        `nothing to recover: a leader exists (${leader ?? "reported in the registry"}); ` +
          `recovery never runs while one does`,
      );
      return 1;
    }
    if (config.recovery.newCluster) {
      const places: Record<string, number> = {};
      for (const c of claims) places[String(c.place)] = c.epoch;
      const plan: Omit<RecoveryPlan, "n"> = {
        kind: "new-cluster",
        by: config.node,
        reason: `recover --new-cluster by hand on ${config.node}`,
        survivors: [],
        places,
        survivorIndex: 0,
        highestIndex: Math.max(0, ...records.map((r) => r.raft.lastIndex)),
      };
      print(
        `plan: NEW CLUSTER — new servers may take every place now (${
          Object.keys(places).length
        } places); the old cluster's data (raft index up to ${plan.highestIndex}) stays in the ` +
          `old servers' data dirs and is not part of the new cluster`,
      );
      return await publish(config, registry, plan, plans, print);
    }
    let self, raft;
    try {
      self = await deps.consul.self();
      // The server's own copy first (consul 1.8 refuses the raft API to a server that has not
      // heard from a leader since it started).
      const stats = (self.raw.Stats ?? {}) as Record<string, Record<string, unknown>>;
      raft = parseLatestConfiguration(stats.raft?.latest_configuration) ??
        await deps.consul.raftConfiguration({ stale: true });
    } catch (err) {
      print(
        `cannot read the local consul agent at ${config.httpAddr} (${describe(err)}): run ` +
          `recover on a surviving server, or --new-cluster when none is left`,
      );
      return 1;
    }
    const d = decideRecovery({
      node: self.node,
      autoRecover: true,
      manual: true,
      expirySeconds: config.expiry,
      waitSeconds: config.recovery.recoverAfterSeconds,
      leaderlessSeconds: Infinity,
      leaderNow: false,
      self: { nodeId: self.nodeId, address: self.memberAddr, ...raftFromSelf(self) },
      voters: raft.servers.filter((s) => s.voter).map((s) => ({ id: s.id, address: s.address })),
      records,
      plans,
      lastApplied: 0,
      servers: config.servers,
    });
    if (d.kind !== "publish") {
      print(`nothing to recover: ${"why" in d ? d.why : d.kind}`);
      return 1;
    }
    print(
      `plan: rebuild raft from ${d.plan.survivors.length} survivor(s): ${
        d.plan.survivors.map((s) => `${s.node} (${s.nodeId}, ${s.address})`).join(", ")
      }\nwhy: ${d.plan.reason}`,
    );
    if (d.lossWarning) print(`may lose: ${d.lossWarning}`);
    return await publish(config, registry, d.plan, plans, print);
  } finally {
    registry.close();
  }
}

async function publish(
  config: Config,
  registry: Registry,
  plan: Omit<RecoveryPlan, "n">,
  plans: RecoveryPlan[],
  print: (text: string) => void,
): Promise<number> {
  if (config.recovery.dryRun) {
    print("dry run: nothing published (--yes publishes it; the running nodes carry it out)");
    return 0;
  }
  const done = await publishPlan(registry, plan, plans);
  if (!done) {
    print("another plan was published at the same moment: run recover --dry-run again");
    return 1;
  }
  print(`published recovery plan ${done.n} in ${registry.url}`);
  return 0;
}
