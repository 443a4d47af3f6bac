/**
 * A client of `run` watches for a server place that needs a holder (a server died and its
 * place went stale, or -s was raised). It reads the registry only when its own agent sees
 * fewer live servers than wanted, so a healthy cluster's clients never list anything. The
 * same rules as at start apply (places.ts), including the outage rule for former clients,
 * with twice the expiry: a replacement node started for a dead server (an auto-scaling group
 * relaunching it) gets the first chance, and a client takes the place only as a fallback.
 */
import type { ConsulClient } from "../consul/client.ts";
import { describe } from "../errors.ts";
import type { Logger } from "../log.ts";
import type { Registry } from "../registry/registry.ts";
import type { Sleep } from "../util/backoff.ts";
import { type PlaceResult, takePlace } from "./claim.ts";
import type { ServersLostPolicy } from "./recovery.ts";

/** A client waits this many expiry windows before taking a stale place. */
export const CLIENT_PATIENCE = 2;

export interface PromoteOptions {
  node: string;
  servers: number;
  expirySeconds: number;
  intervalMs: number;
  /** I5 policy, auto-recovery and its wait (docs/recovery.md). */
  serversLost?: ServersLostPolicy;
  autoRecover?: boolean;
  recoverAfterSeconds?: number;
}

export interface PromoteDeps {
  registry: Registry;
  consul: Pick<ConsulClient, "members" | "leader">;
  sleep: Sleep;
  log: Logger;
}

/** Resolves with the place claimed, or undefined when `signal` aborts first. */
export async function watchForPlace(
  opts: PromoteOptions,
  deps: PromoteDeps,
  signal: AbortSignal,
): Promise<PlaceResult | undefined> {
  let lastSaid = "";
  let saidAt = -Infinity;
  let now = 0;
  let leaderSince: number | undefined;
  while (!signal.aborted) {
    await deps.sleep(opts.intervalMs, signal);
    now += opts.intervalMs;
    if (signal.aborted) break;
    try {
      const members = await deps.consul.members({ signal });
      const alive = members.filter((m) => m.isServer && m.status === "alive").length;
      // A leaderless cluster's places are not taken (I2): its servers hold the data. A leader
      // that has just appeared (servers returning from an outage) is not yet reason to replace
      // anyone either: the servers still on their way get the patience to announce.
      const leader = await deps.consul.leader({ signal }).catch(() => undefined);
      if (leader === undefined) leaderSince = undefined;
      else leaderSince ??= now;
      if (alive >= opts.servers) continue;
      const patienceMs = CLIENT_PATIENCE * opts.expirySeconds * 1000;
      const r = await takePlace(deps.registry, {
        node: opts.node,
        servers: opts.servers,
        expirySeconds: CLIENT_PATIENCE * opts.expirySeconds,
        freshSeconds: opts.expirySeconds,
        leaderKnown: leaderSince !== undefined && now - leaderSince >= patienceMs,
        serversLost: opts.serversLost,
        autoRecover: opts.autoRecover,
        recoverAfterSeconds: opts.recoverAfterSeconds,
      }, deps.log);
      if (r.mode === "server") return r;
      // Say what this node waits for, once per expiry window (or when it changes).
      if (r.waiting && (r.reason !== lastSaid || now - saidAt >= opts.expirySeconds * 1000)) {
        deps.log.warn(r.reason, { aliveServers: alive });
        lastSaid = r.reason;
        saidAt = now;
      } else deps.log.debug("no server place to take", { reason: r.reason, aliveServers: alive });
    } catch (err) {
      if (!signal.aborted) deps.log.warn("place watch failed", { error: describe(err) });
    }
  }
  return undefined;
}
