/**
 * A registry that stays clean without `run`: the one-shot `heartbeat` (cron use) also removes
 * other nodes' long-expired heartbeats, bounded per call and not on every call, so a client's
 * steady cost stays near one PUT (and one free DELETE of its previous key, remembered in
 * `<data-dir>/heartbeat.json` instead of listing for it).
 *
 * - When: every PURGE_EVERY-th call of a node, counted in the memo and offset by a hash of
 *   the node name (nodes started together do not all purge at once); without a memo (a data
 *   dir that cannot be written) with probability 1/PURGE_EVERY.
 * - What: heartbeats in servers/ and agents/ dead for longer than PURGE_AFTER_EXPIRIES expiry
 *   windows (the outage grace: the outage rule still sees how long ago a holder was heard
 *   of), at most MAX_PURGE_PER_CALL, oldest first.
 */
import type { Logger } from "../log.ts";
import { expired, type Heartbeat, readHeartbeats } from "../registry/heartbeats.ts";
import { HEARTBEAT_DIRS, type HeartbeatDir, parseHeartbeatKey } from "../registry/layout.ts";
import type { Registry } from "../registry/registry.ts";
import { writeStateFile } from "../util/atomic.ts";

export const PURGE_EVERY = 10;
/** Dead heartbeats are purged after this many expiry windows (holder records are never purged). */
export const PURGE_AFTER_EXPIRIES = 10;
export const MAX_PURGE_PER_CALL = 100;
export const HEARTBEAT_MEMO = "heartbeat.json";

/** What the one-shot heartbeat remembers between calls. */
export interface HeartbeatMemo {
  /** The node it is about (a data dir shared by several -n names: each starts afresh). */
  node: string;
  /** The keys this node wrote last time (deleted after the next write: no LIST). */
  keys: string[];
  /** How many heartbeats were written through this memo. */
  count: number;
}

/** A small stable hash of the node name (FNV-1a), to spread purge turns across nodes. */
export function nodeHash(node: string): number {
  let h = 0x811c9dc5;
  for (const b of new TextEncoder().encode(node)) {
    h ^= b;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

/** Pure: whether this call purges. `count` is this call's number (1-based); none: no memo. */
export function purgeTurn(node: string, count: number | undefined, random: () => number): boolean {
  if (count === undefined) return random() < 1 / PURGE_EVERY;
  return (count + nodeHash(node)) % PURGE_EVERY === 0;
}

/** Pure: the heartbeats to delete now: long-expired, oldest first, at most `max`. */
export function purgeCandidates<T extends Heartbeat>(
  beats: T[],
  expirySeconds: number,
  max = MAX_PURGE_PER_CALL,
): T[] {
  return expired(beats, PURGE_AFTER_EXPIRIES * expirySeconds)
    .sort((a, b) => b.ageSeconds - a.ageSeconds || a.key.localeCompare(b.key))
    .slice(0, max);
}

/** Deletes long-expired heartbeats of both directories (bounded); returns the keys removed. */
export async function purgeLongExpired(
  registry: Registry,
  expirySeconds: number,
  log: Logger,
): Promise<string[]> {
  const removed: string[] = [];
  for (const dir of HEARTBEAT_DIRS) {
    const beats = await readHeartbeats(registry, dir, log);
    const old = purgeCandidates(beats, expirySeconds, MAX_PURGE_PER_CALL - removed.length);
    await Promise.all(old.map((h) => registry.delete(h.key)));
    removed.push(...old.map((h) => h.key));
  }
  return removed;
}

/**
 * Pure: parses a memo; keys that are not this node's heartbeat keys in `dirs` are dropped
 * (the memo is never a way to delete someone else's key). Undefined when it is no memo or
 * another node's.
 */
export function parseMemo(
  text: string | undefined,
  node: string,
  dirs: readonly HeartbeatDir[],
): HeartbeatMemo | undefined {
  if (text === undefined) return undefined;
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return undefined;
  }
  const o = v as { node?: unknown; keys?: unknown; count?: unknown };
  if (
    !o || o.node !== node || !Array.isArray(o.keys) || !Number.isSafeInteger(o.count) ||
    (o.count as number) < 0
  ) {
    return undefined;
  }
  const keys = o.keys.filter((k): k is string => {
    if (typeof k !== "string") return false;
    const p = parseHeartbeatKey(k);
    return p !== undefined && p.node === node && dirs.includes(p.dir);
  });
  return { node, keys, count: o.count as number };
}

export async function readMemo(
  dataDir: string,
  node: string,
  dirs: readonly HeartbeatDir[],
): Promise<HeartbeatMemo | undefined> {
  try {
    return parseMemo(await Deno.readTextFile(`${dataDir}/${HEARTBEAT_MEMO}`), node, dirs);
  } catch {
    return undefined; // absent or unreadable: list for older keys this once
  }
}

/** Writes the memo; false (not an error) when the data dir cannot be written. */
export async function writeMemo(dataDir: string, memo: HeartbeatMemo): Promise<boolean> {
  try {
    await writeStateFile(`${dataDir}/${HEARTBEAT_MEMO}`, JSON.stringify(memo) + "\n");
    return true;
  } catch {
    return false;
  }
}
