/**
 * One election round, the same for `--once` and `--watch`: read the service and its checks,
 * keep (or create) the session, take or observe the lock, put the role's tag on the service
 * (only when it is not there yet), and make sure the prepared query is right.
 */
import type { ElectOptions } from "./options.ts";
import type { ConsulClient } from "../consul/client.ts";
import type { CallOptions, ServiceEntry } from "../consul/types.ts";
import { ConsulError, describe } from "../errors.ts";
import type { Logger } from "../log.ts";
import {
  contend,
  type LockHolder,
  type LockOutcome,
  masterOfSlave,
  sessionCandidate,
} from "./lock.ts";
import {
  otherPassingMasters,
  takeVouchKey,
  vouchCheck,
  vouchCheckId,
  vouchCheckName,
  vouchFor,
  vouchKey,
} from "./vouch.ts";
import { ensureQuery, queryDnsName, type QueryOutcome, queryTags } from "./query.ts";
import { electionCheckIds, healthOf, instanceChecks } from "./health.ts";
import { ensureSession, NODE_CHECK } from "./session.ts";
import { handOverHeld } from "../consul/txn.ts";
import { aliveCheckId, aliveInCatalog, keepAlive } from "./alive.ts";
import { reregistration, type Role, roleOfTags } from "./tags.ts";

export interface RoundContext {
  consul: ConsulClient;
  opts: ElectOptions;
  /** This agent's node name and address (from /v1/agent/self). */
  me: { node: string; address: string };
  log: Logger;
  /** Timeout and signal of every consul call. */
  call: CallOptions;
  /** This run was started by consul (a check): see health.ts. */
  runByConsul?: boolean;
  /** The agent's HTTP base URL for the vouch check (undefined: a unix socket). */
  agentBaseUrl?: string;
  /** ACL token for the vouch check's header. */
  checkToken?: string;
  /** --watch: the alive check's TTL (alive.ts); undefined for --once (no alive check). */
  aliveTtlSeconds?: number;
  /** --watch: end an unhealthy holder's session only after this long (see deposeUnhealthy). */
  deposeGraceMs?: number;
  /** --watch: since when each holder session was seen unhealthy (kept across rounds). */
  unhealthySince?: Map<string, number>;
  /** Told each session this round creates (--watch ends them on the way out). */
  onSessionCreated?: (id: string) => void;
  now?: () => number;
}

export interface RoundResult {
  role: Role;
  /** The master when known. */
  master?: LockHolder;
  /** The session to keep (undefined when none could be had). */
  session?: string;
  /** Why there is no session (a bound check is critical). */
  blockedBy?: string;
  /** Why this instance may not be master now (a check not passing). */
  unhealthy?: string;
  /** Another round is worth it after this long (lock free but not taken, or no session). */
  retryInMs?: number;
  /** Index for a blocking query on the lock key. */
  lockIndex: number;
  /** The service's name (not its ID): for a blocking query on its health. */
  serviceName: string;
  tagsWritten: boolean;
  /** The role the service's tags said before this round (undefined: none or both). */
  tagRoleBefore?: Role;
  query: QueryOutcome & { dns: string };
}

/** How long to wait before retrying a free lock we could not take (lock-delay, then a bit). */
export function retryDelayMs(lockDelaySeconds: number): number {
  return Math.max(500, lockDelaySeconds * 1000 + 250);
}

/** Retry interval while this instance cannot hold a session (a check of it is critical). */
export const BLOCKED_RETRY_MS = 2000;

export async function electRound(
  ctx: RoundContext,
  keptSession: string | undefined,
): Promise<RoundResult> {
  const { consul, opts, me, log, call } = ctx;
  const service = await consul.agentService(opts.service, call);
  if (!service) {
    throw new ConsulError(
      `service ID "${opts.service}" is not registered on the consul agent at ${consul.address}: ` +
        "register it there first (--service takes the service ID)",
      404,
      "",
    );
  }
  const checks = instanceChecks(await consul.agentChecks(call), opts.service);
  const election = electionCheckIds(checks, opts, ctx.runByConsul ?? false);
  // the elector's own liveness (alive.ts): passed first, so that it is the round's heartbeat
  const aliveId = aliveCheckId(opts.service);
  let aliveSyncing = false;
  if (ctx.aliveTtlSeconds !== undefined) {
    aliveSyncing = await keepAlive(consul, opts.service, ctx.aliveTtlSeconds, checks, call, log);
  } else if (checks.some((c) => c.checkId === aliveId)) {
    await consul.checkDeregister(aliveId, call);
    log.info("deregistered the alive check a --watch left (--once does not use it)");
  }
  // the vouch and alive checks are about the election, which this round settles: not counted;
  // the vouch check is never bound, the alive check always (--watch)
  const notCounted = new Set([...election, vouchCheckId(opts.service), aliveId]);
  const health = healthOf(checks, notCounted, opts.allowWarning);
  // bound to the session: the service's checks, never the election or vouch checks
  const bound = checks.filter((c) => c.serviceId === opts.service && !notCounted.has(c.checkId))
    .map((c) => c.checkId);
  if (ctx.aliveTtlSeconds !== undefined) bound.push(aliveId);
  bound.sort();
  if (aliveSyncing) {
    // consul refuses a session bound to a check its catalog does not have passing yet
    const self = { node: me.node, service: opts.service };
    if (!await aliveInCatalog(consul, service.Service, self, call)) {
      log.warn(`the catalog does not show the alive check ${aliveId} passing yet`);
    }
  }
  let lock = await consul.kvGet(opts.lockKey, call);

  const candidate = sessionCandidate(keptSession, lock, { node: me.node, service: opts.service });
  const session = await ensureSession(
    consul,
    {
      node: me.node,
      service: opts.service,
      serviceChecks: bound,
      ttlSeconds: opts.sessionTtl,
      lockDelaySeconds: opts.lockDelay,
    },
    candidate,
    call,
    log,
    (from, to) =>
      handOverHeld(consul, [opts.lockKey, vouchKey(opts.lockKey, me.node)], from, to, call, log),
  );
  if (candidate?.adopted && session.id === candidate.id && keptSession) {
    await consul.sessionDestroy(keptSession, call).catch(() => {});
  }
  if (session.created && session.id !== undefined) ctx.onSessionCreated?.(session.id);
  // the lock read above is stale when this round made a session or lost the one it tried (consul
  // ended it with a critical check, or it was replaced and destroyed): what it holds has moved
  if (session.created || (candidate && session.id !== candidate.id)) {
    lock = await consul.kvGet(opts.lockKey, call);
  }
  if (session.blockedBy) log.info(`no session, so slave: ${session.blockedBy}`);
  if (!health.healthy) log.info(`not healthy, so not master: ${health.why}`);

  const me_: LockHolder = {
    node: me.node,
    address: service.Address || me.address,
    port: service.Port ?? 0,
    service: opts.service,
  };
  let tagsWritten = false;
  const tag = async (role: Role) => {
    const reg = reregistration(service, role, opts);
    if (!reg || tagsWritten) return;
    await consul.serviceRegister(reg, call);
    tagsWritten = true;
    log.info(`tagged ${role}`, { tags: (reg.Tags ?? []).join(",") });
  };
  const vKey = vouchKey(opts.lockKey, me.node);

  let outcome: LockOutcome;
  if (session.id !== undefined && lock.session === session.id && !health.healthy) {
    // stepping down: slave tag first, then the vouch key, then the lock (an explicit release
    // has no lock-delay: a healthy instance takes over at once)
    await tag("slave");
    await vouchFor(consul, vKey, "slave", session.id, call);
    await consul.kvPut(opts.lockKey, lock.value ?? "", { ...call, release: session.id });
    log.info(`released the lock: ${health.why}`);
    outcome = { role: "slave", free: true, sessionLost: false, index: lock.index };
  } else {
    outcome = await contend(consul, opts.lockKey, session.id, me_, lock, call, health.healthy);
  }
  const sessionId = outcome.sessionLost ? undefined : session.id;
  // a slave names a master only when another instance holds the lock (never itself)
  const ours = new Set([keptSession, candidate?.id, session.id].filter((s) => s !== undefined));
  const master = outcome.role === "master"
    ? outcome.holder
    : masterOfSlave(outcome.holder, outcome.holderSession, ours, me_);
  if (outcome.role === "slave" && outcome.holder && !master) {
    log.info("the lock still names this instance (an old session of it): master not known yet");
  }

  // a healthy slave ends the session of a holder that is not healthy (its elector may be
  // slow or dead, or its agent unable to release): the lock then goes after its lock-delay
  let deposed = false;
  let recheck = false;
  const holderSession = outcome.holderSession;
  if (outcome.role === "slave" && health.healthy && sessionId && master && holderSession) {
    const d = await deposeUnhealthy(ctx, service.Service, master, holderSession);
    deposed = d === "deposed";
    recheck = d === "later";
  }

  let waitForTags = false;
  if (outcome.role === "master") {
    if (!await takeVouchKey(consul, vKey, sessionId, me.node, call, log)) {
      throw new ConsulError(
        `could not take this node's vouch key ${vKey} (held by a session of another node)`,
        409,
        "",
      );
    }
    // becoming master: tag only once no other passing instance is tagged master (a holder
    // whose session just ended stays so until its vouch check runs, 1 s; a tagger's master
    // in a mixed fleet until it is switched over)
    if (roleOfTags(service.Tags ?? [], opts) !== "master") {
      waitForTags = !await noOtherMaster(ctx, service.Service);
    }
    if (!waitForTags) await tag("master");
  } else {
    await tag("slave");
    // a slave's vouch key missing: its session ended while it was master. Vouch again only
    // once the catalog has its slave tag (after an agent restart the catalog can lag behind
    // the agent: the check must not pass while the catalog still says master)
    const missing = !(await consul.kvGet(vKey, call)).entry;
    if (!missing || await catalogSaysNotMaster(ctx, service.Service)) {
      await vouchFor(consul, vKey, "slave", sessionId, call);
    } else waitForTags = true;
  }
  const vouchId = vouchCheckId(opts.service);
  if (!checks.some((c) => c.checkId === vouchId && c.name === vouchCheckName(vKey))) {
    const def = vouchCheck(opts.service, ctx.agentBaseUrl, vKey, ctx.checkToken);
    if (def) {
      await consul.checkRegister(def, call);
      log.info("registered the vouch check", { check: vouchId });
    } else log.warn(`no vouch check (${vouchId}): the agent is not reachable over TCP`);
  }

  const query = await ensureQuery(consul, {
    name: opts.queryName,
    service: service.Service,
    tags: queryTags(opts.masterTag, opts.queryTags),
    onlyPassing: !opts.allowWarning,
  }, call);
  if (query.action !== "none") log.info(`prepared query ${query.action}d`, { id: query.id });

  let retryInMs: number | undefined;
  if ((outcome.free && health.healthy) || deposed) retryInMs = retryDelayMs(opts.lockDelay);
  if (waitForTags || recheck) retryInMs = 1_000;
  if (!sessionId) retryInMs = session.blockedBy ? BLOCKED_RETRY_MS : retryDelayMs(0);
  return {
    role: outcome.role,
    master,
    session: sessionId,
    blockedBy: session.blockedBy,
    unhealthy: health.why,
    retryInMs,
    lockIndex: outcome.index,
    serviceName: service.Service,
    tagsWritten,
    tagRoleBefore: roleOfTags(service.Tags ?? [], opts),
    query: { ...query, dns: queryDnsName(opts.queryName) },
  };
}

/**
 * Ends the holder's session when the catalog says its instance is not healthy (as the
 * prepared query sees it, election and vouch checks aside). With `deposeGraceMs` (--watch),
 * only once the holder has been seen unhealthy for that long: a live elector releases by itself
 * (no lock-delay) within a moment, which is faster than ending its session (lock-delay).
 * Best effort: a refusal (ACLs) is logged and the holder steps down by itself in its next round.
 */
async function deposeUnhealthy(
  ctx: RoundContext,
  serviceName: string,
  holder: LockHolder,
  holderSession: string,
): Promise<"deposed" | "later" | "no"> {
  const { consul, opts, log, call } = ctx;
  const { entries } = await consul.healthService(serviceName, call);
  const entry = entries.find((e) => e.node === holder.node && e.service.id === holder.service);
  if (!entry) return "no";
  // its vouch check says whether its session lives (and starts critical): not a reason; and a
  // script check that has not run yet may be its election check, in its first run
  const ignore = electionCheckIds(entry.checks, opts, true);
  ignore.add(vouchCheckId(holder.service));
  ignore.add(aliveCheckId(holder.service));
  const health = healthOf(entry.checks, ignore, opts.allowWarning);
  const seen = ctx.unhealthySince;
  if (health.healthy) {
    seen?.delete(holderSession);
    return "no";
  }
  if (seen && ctx.deposeGraceMs !== undefined) {
    const now = (ctx.now ?? Date.now)();
    const since = seen.get(holderSession) ?? now;
    seen.set(holderSession, since);
    if (now - since < ctx.deposeGraceMs) return "later";
  }
  try {
    await consul.sessionDestroy(holderSession, call);
    seen?.delete(holderSession);
    log.info(`ended the session of master ${holder.node}: ${health.why}`);
    return "deposed";
  } catch (err) {
    log.warn(
      `master ${holder.node} is not healthy (${health.why}) but its session could not be ended: ${
        describe(err)
      }`,
    );
    return "no";
  }
}

/**
 * Another instance tagged master whose node is down keeps, in the catalog, the passing vouch
 * check it had when it died; when its agent comes back, its node turns passing before that
 * agent has synced its own (critical) view. Marking that stale check critical in the catalog
 * closes the gap; the owning agent overwrites it with its own status at its next sync.
 * Best effort (it needs node:write for that node under ACLs).
 */
async function markStaleVouches(ctx: RoundContext, entries: ServiceEntry[]): Promise<void> {
  const { consul, opts, me, log, call } = ctx;
  for (const e of entries) {
    if (e.node === me.node || !e.service.tags.includes(opts.masterTag)) continue;
    const down = e.checks.some((c) => c.checkId === NODE_CHECK && c.status !== "passing");
    const vouch = e.checks.find((c) => c.checkId === vouchCheckId(e.service.id));
    if (!down || !vouch || vouch.status === "critical") continue;
    try {
      await consul.catalogCheckStatus(
        { node: e.node, checkId: vouch.checkId, name: vouch.name, serviceId: e.service.id },
        "critical",
        `node down while tagged master: not vouched for (marked by ${me.node})`,
        call,
      );
      log.info(`marked the vouch check of ${e.node} critical (node down, tagged master)`);
    } catch (err) {
      log.warn(`could not mark the vouch check of ${e.node} critical: ${describe(err)}`);
    }
  }
}

/** Waits (bounded, 3 s) until the catalog shows this instance without the master tag. */
async function catalogSaysNotMaster(ctx: RoundContext, serviceName: string): Promise<boolean> {
  const { consul, opts, me, call } = ctx;
  for (let n = 0; n < 13; n++) {
    const { entries } = await consul.healthService(serviceName, call);
    const mine = entries.find((e) => e.node === me.node && e.service.id === opts.service);
    if (mine && !mine.service.tags.includes(opts.masterTag)) return true;
    if (n === 12) break;
    await new Promise((r) => setTimeout(r, 250));
    call.signal?.throwIfAborted();
  }
  ctx.log.warn("the catalog still shows this instance as master: not vouched for yet");
  return false;
}

/** Waits (bounded, 3 s) until no other passing instance is tagged master in the catalog. */
async function noOtherMaster(ctx: RoundContext, serviceName: string): Promise<boolean> {
  const { consul, opts, me, log, call } = ctx;
  const self = { node: me.node, service: opts.service };
  for (let n = 0; n < 13; n++) {
    const { entries } = await consul.healthService(serviceName, call);
    if (n === 0) await markStaleVouches(ctx, entries);
    const others = otherPassingMasters(entries, self, opts.masterTag, opts.allowWarning);
    if (others.length === 0) return true;
    if (n === 12) {
      log.warn(
        `holding the lock, but ${others.join(", ")} still answers as master: not tagged yet`,
      );
      break;
    }
    await new Promise((r) => setTimeout(r, 250));
    call.signal?.throwIfAborted();
  }
  return false;
}
