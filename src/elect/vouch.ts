/**
 * Never two masters in the query (issue 12 build 2). An instance's `master` tag can outlive its
 * mastership: its elector killed (the session expires, another instance takes the lock), its
 * agent restarted with the tag saved in its local service definition, or deposed (round.ts)
 * while its warning clears. Editing another node's catalog entry does not help: its agent's
 * anti-entropy writes its own definition back (at the latest with its next check update).
 *
 * So each instance carries a check that consul itself runs: the **vouch check**
 * `auto-consul-elect:<service>`, an HTTP check of the agent's own KV endpoint for the vouch key
 * `<lock-key>/vouch/<node>`. The key exists for a slave (a plain key) and, for the master, is
 * held by its election session, whose behavior is "delete": when that session ends without a
 * release (expired, destroyed, node failed) consul deletes the key, the check turns critical
 * within its 1 s interval, and the prepared query (OnlyPassing) drops the instance. Order keeps
 * it true: the vouch key is taken before tagging master, and freed after tagging slave. An
 * agent restarted with a saved `master` tag starts the check critical (as every HTTP check
 * without a Status), so a starting instance is not answered until the check has run.
 *
 * Effect on the service's health: one more check per instance. A slave's is passing while its
 * key exists (even with its elector stopped); a master's is critical once its session is gone,
 * until its elector tags it slave. The check reads with `?stale` (any server answers, no leader
 * needed), so a leader election does not fail it. It needs the agent's HTTP API over TCP (not a
 * unix socket) and, with ACLs, a token with key read (sent in the check's header); an agent
 * that requires client certificates needs `enable_agent_tls_for_checks`.
 */
import type { ConsulClient } from "../consul/client.ts";
import type { CallOptions, ServiceCheckDefinition, ServiceEntry } from "../consul/types.ts";
import type { Logger } from "../log.ts";

export function vouchCheckId(serviceId: string): string {
  return `auto-consul-elect:${serviceId}`;
}

export function vouchKey(lockKey: string, node: string): string {
  return `${lockKey}/vouch/${node}`;
}

/** The check's name says which key it reads: a check reading another key is registered again. */
export function vouchCheckName(key: string): string {
  return `auto-consul elect vouch ${key}`;
}

/** Consul runs the check this often (and this is its timeout). */
export const VOUCH_INTERVAL = "1s";

/** Body of PUT /v1/agent/check/register (its ID field is `ID`, not a service check's `CheckID`). */
export type VouchCheckDefinition = Omit<ServiceCheckDefinition, "CheckID"> & {
  ID: string;
  ServiceID: string;
};

/** Pure: the check's definition; undefined when the agent cannot be reached over TCP. */
export function vouchCheck(
  serviceId: string,
  agentBaseUrl: string | undefined,
  key: string,
  token?: string,
): VouchCheckDefinition | undefined {
  if (!agentBaseUrl || !/^https?:\/\//.test(agentBaseUrl)) return undefined;
  const path = key.split("/").map(encodeURIComponent).join("/");
  return {
    ID: vouchCheckId(serviceId),
    Name: vouchCheckName(key),
    Notes: "passes while this instance is a slave or holds the election lock (auto-consul elect)",
    ServiceID: serviceId,
    HTTP: `${agentBaseUrl}/v1/kv/${path}?stale`,
    Method: "GET",
    Interval: VOUCH_INTERVAL,
    Timeout: VOUCH_INTERVAL,
    ...(token ? { Header: { "X-Consul-Token": [token] } } : {}),
  };
}

/**
 * Makes the vouch key say `role`: for the master, held by `session` (acquired); for a slave,
 * present and held by no session of ours (released, or written when missing). Returns false
 * when the master's key could not be acquired (then the caller must not tag master).
 */
export async function vouchFor(
  consul: ConsulClient,
  key: string,
  role: "master" | "slave",
  session: string | undefined,
  call: CallOptions,
): Promise<boolean> {
  const cur = await consul.kvGet(key, call);
  if (role === "master") {
    if (session === undefined) return false;
    if (cur.session === session) return true;
    return await consul.kvPut(key, "", { ...call, acquire: session });
  }
  if (cur.entry && cur.session === undefined) return true;
  if (cur.session !== undefined && cur.session === session) {
    return await consul.kvPut(key, "", { ...call, release: session });
  }
  // missing (deleted with an ended session), or held by an older session of this node
  if (cur.session !== undefined) return true;
  return await consul.kvPut(key, "", call);
}

/**
 * The master's side of vouchFor: take the vouch key with `session`. When the key is held by
 * another session of this same node (an elector of this node whose session outlived it: a
 * `--watch` stopped while its session could not be destroyed, a `--once` run with another data
 * dir), that session is stale — this node's elector holding `session` holds the lock — so it
 * is ended (consul deletes the key, behavior "delete") and the key is taken. A key held by a
 * session of another node is not touched: false, the caller must not tag master.
 */
export async function takeVouchKey(
  consul: ConsulClient,
  key: string,
  session: string | undefined,
  node: string,
  call: CallOptions,
  log: Logger,
): Promise<boolean> {
  if (await vouchFor(consul, key, "master", session, call)) return true;
  if (session === undefined) return false;
  const holder = (await consul.kvGet(key, call)).session;
  if (holder === undefined || holder === session) {
    return await vouchFor(consul, key, "master", session, call);
  }
  const info = await consul.sessionInfo(holder, call);
  if (info !== undefined && info.node !== node) return false;
  if (info !== undefined) {
    await consul.sessionDestroy(holder, call);
    log.warn(`ended session ${holder} of this node: it held the vouch key ${key}, stale`);
  }
  return await vouchFor(consul, key, "master", session, call);
}

/**
 * Pure: the nodes among `entries` (the catalog's view) that the prepared query could answer
 * as master besides `self`: tagged `masterTag` and passing (or not critical with allowWarning).
 */
export function otherPassingMasters(
  entries: readonly ServiceEntry[],
  self: { node: string; service: string },
  masterTag: string,
  allowWarning: boolean,
): string[] {
  return entries.filter((e) =>
    !(e.node === self.node && e.service.id === self.service) &&
    e.service.tags.includes(masterTag) &&
    e.checks.every((c) => c.status === "passing" || (allowWarning && c.status === "warning"))
  ).map((e) => e.node).sort();
}
