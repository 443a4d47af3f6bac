/**
 * The election lock: a KV key held by a session. The holder is the master; its value names the
 * holder (node, address, port, service) so that slaves and hooks know where the master is.
 * The value is untrusted input: it is parsed defensively and bounded.
 */
import type { ConsulClient } from "../consul/client.ts";
import type { CallOptions, KvGetResult } from "../consul/types.ts";
import { ConsulError } from "../errors.ts";
import { isIpLiteral } from "../util/validate.ts";
import type { Role } from "./tags.ts";

/** Who holds the lock, as written in the lock's value by the holder. */
export interface LockHolder {
  node: string;
  address: string;
  port: number;
  service: string;
}

const MAX_VALUE = 2048;

export function encodeHolder(h: LockHolder): string {
  return JSON.stringify({ node: h.node, address: h.address, port: h.port, service: h.service });
}

/** The holder named by a lock value; undefined for anything that is not a valid holder. */
export function parseHolder(value: string | undefined): LockHolder | undefined {
  if (!value || value.length > MAX_VALUE) return undefined;
  let v: unknown;
  try {
    v = JSON.parse(value);
  } catch {
    return undefined;
  }
  if (!v || typeof v !== "object") return undefined;
  const o = v as Record<string, unknown>;
  const okText = (s: unknown, max: number): s is string =>
    typeof s === "string" && s.length > 0 && s.length <= max && !/[\s\0]/.test(s);
  if (!okText(o.node, 128) || !okText(o.service, 128) || !okText(o.address, 255)) return undefined;
  if (!isIpLiteral(o.address) && !/^[A-Za-z0-9.-]+$/.test(o.address)) return undefined;
  const port = typeof o.port === "number" && Number.isInteger(o.port) && o.port >= 0 &&
      o.port <= 65535
    ? o.port
    : 0;
  return { node: o.node, address: o.address, port, service: o.service };
}

/**
 * The session to try for this round: the one kept in local state, or, when the lock is held by
 * another session whose value names this node and service, that one (local state was lost or
 * is stale: adopting it keeps the master instead of flapping). `adopted` sessions must be
 * checked (their node) before use.
 */
export function sessionCandidate(
  kept: string | undefined,
  lock: { session?: string; value?: string },
  me: { node: string; service: string },
): { id: string; adopted: boolean } | undefined {
  if (lock.session && lock.session !== kept) {
    const h = parseHolder(lock.value);
    if (h && isInstance(h, me)) {
      return { id: lock.session, adopted: true };
    }
  }
  return kept ? { id: kept, adopted: false } : undefined;
}

/**
 * Pure: the master a slave may name (in its round's result, its state and its on-slave hook):
 * the lock's holder only when another instance holds it — the lock is held by a session that is
 * none of this instance's (`ours`: kept, adopted, created this round) and its value does not name
 * this instance. A lock that still names this instance is its own old state (a session consul
 * just ended with a critical check, or one being replaced), read before it was gone: the master
 * is then not known yet (undefined), and the on-slave hook waits for a round that knows it.
 * Invariant (docs/elect.md): a slave never names itself as master.
 */
export function masterOfSlave(
  holder: LockHolder | undefined,
  holderSession: string | undefined,
  ours: ReadonlySet<string>,
  me: { node: string; service: string },
): LockHolder | undefined {
  if (!holder || holderSession === undefined || ours.has(holderSession)) return undefined;
  return isInstance(holder, me) ? undefined : holder;
}

/** Pure: the holder names this instance (node and service ID). */
export function isInstance(h: LockHolder, me: { node: string; service: string }): boolean {
  return h.node === me.node && h.service === me.service;
}

export interface LockOutcome {
  role: Role;
  /** The master, when known (ours when master; from the lock's value otherwise). */
  holder?: LockHolder;
  /** The session holding the lock whose value named `holder` (not ours when slave). */
  holderSession?: string;
  /** The lock is free but was not taken (lock-delay, or no session): worth trying again soon. */
  free: boolean;
  /** Our session turned out to be invalid when acquiring: drop it. */
  sessionLost: boolean;
  /** Index for a blocking query on the lock key. */
  index: number;
  /** We held the lock and released it (not eligible: unhealthy). */
  released?: boolean;
}

/** Pure: the role for a lock state, before any acquisition. */
export function roleOf(lockSession: string | undefined, ours: string | undefined): Role {
  return ours !== undefined && lockSession === ours ? "master" : "slave";
}

/**
 * Takes the lock when it is free and we have a session; keeps it (refreshing the value when
 * it changed) when we hold it; otherwise reports the holder. `current` is the lock as read at
 * the start of the round. When not `eligible` (this instance is not healthy) it never takes
 * the lock, and releases it when it holds it: an explicit release has no lock-delay, so a
 * healthy instance takes over at once.
 */
export async function contend(
  consul: ConsulClient,
  key: string,
  session: string | undefined,
  me: LockHolder,
  current: KvGetResult,
  call: CallOptions,
  eligible = true,
): Promise<LockOutcome> {
  const value = encodeHolder(me);
  const lost: LockOutcome = {
    role: "slave",
    free: true,
    sessionLost: true,
    index: current.index,
  };
  /** Acquire (or, when held, rewrite the value); undefined when the session is invalid. */
  const acquire = async (id: string): Promise<boolean | undefined> => {
    try {
      return await consul.kvPut(key, value, { ...call, acquire: id });
    } catch (err) {
      if (err instanceof ConsulError && /invalid session/i.test(err.body)) return undefined;
      throw err;
    }
  };
  /** What a lock state says of this instance when it did not take the lock. */
  const seen = (l: typeof current): LockOutcome => ({
    role: "slave",
    holder: l.session ? parseHolder(l.value) : undefined,
    holderSession: l.session,
    free: !l.session,
    sessionLost: false,
    index: l.index,
  });
  const mastered: LockOutcome = {
    role: "master",
    holder: me,
    holderSession: session,
    free: false,
    sessionLost: false,
    index: current.index,
  };
  if (session !== undefined && current.session === session && !eligible) {
    await consul.kvPut(key, current.value ?? "", { ...call, release: session });
    return { role: "slave", free: true, sessionLost: false, index: current.index, released: true };
  }
  if (!eligible) return seen(current);
  if (session !== undefined && current.session === session) {
    if (current.value !== value && await acquire(session) === undefined) return lost;
    return mastered;
  }
  if (current.session || session === undefined) return seen(current);
  const acquired = await acquire(session);
  if (acquired === undefined) return lost;
  if (acquired) return mastered;
  const after = await consul.kvGet(key, call);
  return { ...seen(after), role: roleOf(after.session, session) };
}
