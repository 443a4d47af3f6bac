/**
 * One election round, the same for `--once` and `--watch`: read the service and its checks,
 * keep (or create) the session, take or observe the lock, put the role's tag on the service
 * (only when it is not there yet), and make sure the prepared query is right.
 */
import type { ElectOptions } from "./options.ts";
import type { ConsulClient } from "../consul/client.ts";
import type { CallOptions } from "../consul/types.ts";
import { ConsulError } from "../errors.ts";
import type { Logger } from "../log.ts";
import { contend, type LockHolder, sessionCandidate } from "./lock.ts";
import { ensureQuery, queryDnsName, type QueryOutcome, queryTags } from "./query.ts";
import { ensureSession, serviceCheckIds } from "./session.ts";
import { reregistration, type Role, roleOfTags } from "./tags.ts";

export interface RoundContext {
  consul: ConsulClient;
  opts: ElectOptions;
  /** This agent's node name and address (from /v1/agent/self). */
  me: { node: string; address: string };
  log: Logger;
  /** Timeout and signal of every consul call. */
  call: CallOptions;
}

export interface RoundResult {
  role: Role;
  /** The master when known. */
  master?: LockHolder;
  /** The session to keep (undefined when none could be had). */
  session?: string;
  /** Why there is no session (a bound check is critical). */
  blockedBy?: string;
  /** Another round is worth it after this long (lock free but not taken, or no session). */
  retryInMs?: number;
  /** Index for a blocking query on the lock key. */
  lockIndex: number;
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
  const checks = serviceCheckIds(await consul.agentChecks(call), opts.service);
  let lock = await consul.kvGet(opts.lockKey, call);

  const candidate = sessionCandidate(keptSession, lock, { node: me.node, service: opts.service });
  const session = await ensureSession(
    consul,
    {
      node: me.node,
      service: opts.service,
      serviceChecks: checks,
      ttlSeconds: opts.sessionTtl,
      lockDelaySeconds: opts.lockDelay,
    },
    candidate,
    call,
    log,
  );
  if (candidate?.adopted && session.id === candidate.id && keptSession) {
    await consul.sessionDestroy(keptSession, call).catch(() => {});
  }
  if (session.created) lock = await consul.kvGet(opts.lockKey, call);
  if (session.blockedBy) log.info(`no session, so slave: ${session.blockedBy}`);

  const me_: LockHolder = {
    node: me.node,
    address: service.Address || me.address,
    port: service.Port ?? 0,
    service: opts.service,
  };
  const outcome = await contend(consul, opts.lockKey, session.id, me_, lock, call);
  const sessionId = outcome.sessionLost ? undefined : session.id;

  const reg = reregistration(service, outcome.role, opts);
  if (reg) {
    await consul.serviceRegister(reg, call);
    log.info(`tagged ${outcome.role}`, { tags: (reg.Tags ?? []).join(",") });
  }

  const query = await ensureQuery(consul, {
    name: opts.queryName,
    service: service.Service,
    tags: queryTags(opts.masterTag, opts.queryTags),
  }, call);
  if (query.action !== "none") log.info(`prepared query ${query.action}d`, { id: query.id });

  let retryInMs: number | undefined;
  if (outcome.free) retryInMs = retryDelayMs(opts.lockDelay);
  if (!sessionId) retryInMs = session.blockedBy ? BLOCKED_RETRY_MS : retryDelayMs(0);
  return {
    role: outcome.role,
    master: outcome.holder,
    session: sessionId,
    blockedBy: session.blockedBy,
    retryInMs,
    lockIndex: outcome.index,
    tagsWritten: reg !== undefined,
    tagRoleBefore: roleOfTags(service.Tags ?? [], opts),
    query: { ...query, dns: queryDnsName(opts.queryName) },
  };
}
