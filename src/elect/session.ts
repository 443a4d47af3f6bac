/**
 * The election session: bound to the node's `serfHealth` and every check of the service
 * (so a dead node or a failing instance loses the lock by itself) — with `--watch` that includes
 * the elector's own alive check (alive.ts), so a killed elector loses it after one TTL —, behavior "delete" (the keys it
 * holds, the lock and its vouch key (vouch.ts), are deleted when it ends without a release), with a
 * TTL renewed by every round. The session ID is kept in local state and reused across runs.
 */
import type { ConsulClient } from "../consul/client.ts";
import type { CallOptions, Check, SessionInfo } from "../consul/types.ts";
import { ConsulError, describe } from "../errors.ts";
import type { Logger } from "../log.ts";

export const NODE_CHECK = "serfHealth";

/** What the session must look like. */
export interface SessionSpec {
  node: string;
  service: string;
  /** IDs of the service's checks on this agent (sorted). */
  serviceChecks: string[];
  ttlSeconds: number;
  lockDelaySeconds: number;
}

export function sessionName(service: string): string {
  return `auto-consul elect ${service}`;
}

/** The IDs of the checks of `serviceId` among the agent's checks, sorted. */
export function serviceCheckIds(checks: Record<string, Check>, serviceId: string): string[] {
  return Object.entries(checks)
    .filter(([, c]) => c.serviceId === serviceId)
    .map(([id]) => id)
    .sort();
}

/** Go duration text ("15s", "1m30s", "250ms") in ms; undefined when not one. */
export function parseGoDuration(text: string): number | undefined {
  if (text === "0") return 0;
  const re = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/gy;
  const unit: Record<string, number> = {
    ns: 1e-6,
    us: 1e-3,
    "µs": 1e-3,
    ms: 1,
    s: 1000,
    m: 60_000,
    h: 3_600_000,
  };
  let total = 0;
  let at = 0;
  let m: RegExpExecArray | null;
  while ((m = re.exec(text)) !== null) {
    total += Number(m[1]) * unit[m[2]];
    at = re.lastIndex;
  }
  return at === text.length && at > 0 ? total : undefined;
}

/**
 * Pure: why an existing session does not fit the spec (undefined when it fits): another node,
 * other checks, another TTL, lock delay or behavior. A session that does not fit is replaced.
 */
export function sessionMismatch(info: SessionInfo, spec: SessionSpec): string | undefined {
  if (info.node !== spec.node) return `it belongs to node ${info.node}`;
  const bound = new Set([
    ...info.checks,
    ...info.nodeChecks,
    ...info.serviceChecks.map((c) => c.id),
  ]);
  const want = new Set([NODE_CHECK, ...spec.serviceChecks]);
  if (bound.size !== want.size || [...want].some((c) => !bound.has(c))) {
    return `it is bound to checks [${[...bound].sort().join(", ")}], ` +
      `the service now has [${[...want].sort().join(", ")}]`;
  }
  if (parseGoDuration(info.ttl) !== spec.ttlSeconds * 1000) {
    return `its TTL is ${info.ttl || "none"}, not ${spec.ttlSeconds}s`;
  }
  if (Math.round(info.lockDelayNs / 1e6) !== Math.round(spec.lockDelaySeconds * 1000)) {
    return `its lock delay is ${info.lockDelayNs / 1e9}s, not ${spec.lockDelaySeconds}s`;
  }
  if (info.behavior !== "delete") return `its behavior is ${info.behavior}`;
  return undefined;
}

export interface SessionOutcome {
  /** The session to use; undefined when none could be created (a bound check is critical). */
  id?: string;
  created: boolean;
  /** Why no session could be created (consul's message). */
  blockedBy?: string;
}

/**
 * Renews `candidate` when it still exists and fits the spec, else creates a new session.
 * An adopted candidate (found through the lock, not in local state) is only looked at, and
 * renewed only when it belongs to this node. A session that exists but no longer fits is
 * replaced: the new one is created first and `handOver` moves what the old one holds (the lock,
 * the vouch key) to it in one transaction, then the old one is destroyed — so a master stays
 * master across a change of its bound checks or TTL (an upgrade, `--once` → `--watch`) instead
 * of losing the lock to lock-delay. When a bound check is critical, consul refuses to create the
 * session: the outcome has no ID and says why.
 */
export async function ensureSession(
  consul: ConsulClient,
  spec: SessionSpec,
  candidate: { id: string; adopted: boolean } | undefined,
  call: CallOptions,
  log: Logger,
  handOver?: (from: string, to: string) => Promise<void>,
): Promise<SessionOutcome> {
  if (candidate) {
    let info: SessionInfo | undefined;
    if (candidate.adopted) {
      info = await consul.sessionInfo(candidate.id, call);
      if (info && info.node !== spec.node) info = undefined;
    }
    if (!candidate.adopted || info) info = await consul.sessionRenew(candidate.id, call);
    if (info) {
      const why = sessionMismatch(info, spec);
      if (why === undefined) {
        if (candidate.adopted) log.info("adopted this node's session found on the lock");
        return { id: info.id, created: false };
      }
      if (info.node === spec.node) {
        log.info(`replacing session ${info.id}: ${why}`);
        // the new one first: what the old one holds moves over without a lock-delay
        const next = await createSession(consul, spec, call, log);
        if (next.id !== undefined && handOver) {
          await handOver(info.id, next.id).catch((err) =>
            log.warn(`could not hand over from session ${info.id}: ${describe(err)}`)
          );
        }
        await consul.sessionDestroy(info.id, call);
        return next;
      }
    }
  }
  return await createSession(consul, spec, call, log);
}

async function createSession(
  consul: ConsulClient,
  spec: SessionSpec,
  call: CallOptions,
  log: Logger,
): Promise<SessionOutcome> {
  try {
    const id = await consul.sessionCreate({
      ...call,
      name: sessionName(spec.service),
      nodeChecks: [NODE_CHECK],
      serviceChecks: spec.serviceChecks.map((id) => ({ id })),
      ttlMs: spec.ttlSeconds * 1000,
      lockDelayMs: spec.lockDelaySeconds * 1000,
      behavior: "delete",
    });
    log.debug("created session", { session: id });
    return { id, created: true };
  } catch (err) {
    if (err instanceof ConsulError && /is in critical state|missing check/i.test(err.body)) {
      return { created: false, blockedBy: err.body.trim() };
    }
    throw err;
  }
}
