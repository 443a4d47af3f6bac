/**
 * The elector's own liveness, for `elect --watch` (issue 12, acceptance 2): a TTL check
 * `auto-consul-elect-alive:<service>` on the instance, passed by every round, with the session
 * TTL as its TTL, and bound to the election session.
 *
 * Why: consul ends a session whose TTL ran out only at about twice the TTL (its documented
 * lower bound: "sessions may not be reaped for up to double this TTL"; 1.8.7 and current
 * consul alike), so a `--watch` master killed with `kill -9` kept the lock for 2 × TTL
 * (20-22 s at `--session-ttl 10`). A TTL check is timed by the agent itself: it goes critical
 * exactly one TTL after the last pass, the agent syncs a status change at once, and consul
 * invalidates every session bound to a check that goes critical ("any of the health checks go
 * to the critical state", consul's session contract, both versions). So after `kill -9`:
 * at most one TTL, then the session ends (behavior "delete": the lock and the vouch key go,
 * the lock through lock-delay), and the critical check itself takes the instance out of the
 * `OnlyPassing` query at the same moment. A new master: TTL + lock-delay + one round.
 *
 * The session is bound to it, so it must be passing in the catalog before a session is
 * created (consul refuses a session bound to a missing or critical check): a round that
 * registers it or brings it back from critical waits (bounded) for the agent's sync.
 * `--watch` rounds come at most TTL / 2 apart (watch.ts), so a live elector passes it with
 * half the TTL to spare.
 *
 * Effect on the service's health: one more check per instance while its `--watch` runs. An
 * elector stopped cleanly (SIGTERM) deregisters it; an elector that died (`kill -9`, OOM) leaves
 * it critical after one TTL, so that instance is critical (out of DNS and `?passing`) until an
 * elector runs there again — it is not in the election any more. After an agent restart the
 * check comes back with the state the agent saved (consul keeps a TTL check's state across a
 * restart until its TTL runs out); the vouch check (vouch.ts) covers that moment.
 * `elect --once` does not use it (the check's runs already say whether it is alive, and a
 * check interval is not a renewal period): a once run deregisters one a `--watch` left.
 */
import type { ConsulClient } from "../consul/client.ts";
import type { CallOptions, Check } from "../consul/types.ts";
import type { Logger } from "../log.ts";

export function aliveCheckId(serviceId: string): string {
  return `auto-consul-elect-alive:${serviceId}`;
}

/** The name says the TTL: a check with another TTL is registered again. */
export function aliveCheckName(ttlSeconds: number): string {
  return `auto-consul elect --watch alive (ttl ${ttlSeconds}s)`;
}

/** The output every pass writes (constant: a changed output would be synced every time). */
export const ALIVE_OUTPUT = "auto-consul elect --watch is running";

/** Pure: the check's definition (PUT /v1/agent/check/register). */
export function aliveCheck(serviceId: string, ttlSeconds: number) {
  return {
    ID: aliveCheckId(serviceId),
    Name: aliveCheckName(ttlSeconds),
    Notes: "passed by every round of auto-consul elect --watch; bound to its election session",
    ServiceID: serviceId,
    TTL: `${ttlSeconds}s`,
    Status: "passing",
  };
}

/** Pure: what a round must do with the check as the agent has it. */
export function aliveAction(
  current: Pick<Check, "name" | "status" | "type"> | undefined,
  ttlSeconds: number,
): "register" | "pass" {
  if (!current || current.type !== "ttl" || current.name !== aliveCheckName(ttlSeconds)) {
    return "register";
  }
  return "pass";
}

/**
 * Registers or passes this instance's alive check. Returns true when the catalog may not have
 * it passing yet (registered now, or it was not passing): the caller waits before creating a
 * session bound to it.
 */
export async function keepAlive(
  consul: ConsulClient,
  serviceId: string,
  ttlSeconds: number,
  checks: readonly Check[],
  call: CallOptions,
  log: Logger,
): Promise<boolean> {
  const id = aliveCheckId(serviceId);
  const current = checks.find((c) => c.checkId === id);
  if (aliveAction(current, ttlSeconds) === "register") {
    await consul.checkRegister(aliveCheck(serviceId, ttlSeconds), call);
    log.info("registered the alive check", { check: id });
    return true;
  }
  await consul.checkUpdate(id, "passing", ALIVE_OUTPUT, call);
  return current?.status !== "passing";
}

/** Waits (bounded, ~3 s) until the catalog has this instance's alive check passing. */
export async function aliveInCatalog(
  consul: ConsulClient,
  serviceName: string,
  me: { node: string; service: string },
  call: CallOptions,
): Promise<boolean> {
  const id = aliveCheckId(me.service);
  for (let n = 0; n < 30; n++) {
    const { entries } = await consul.healthService(serviceName, call);
    const mine = entries.find((e) => e.node === me.node && e.service.id === me.service);
    if (mine?.checks.some((c) => c.checkId === id && c.status === "passing")) return true;
    await new Promise((r) => setTimeout(r, 100));
    call.signal?.throwIfAborted();
  }
  return false;
}
