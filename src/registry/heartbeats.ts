/**
 * Reading and writing heartbeats. Fetch (`readHeartbeats`), then decide (`liveMembers`,
 * `expired`, pure). Registry contents are untrusted: malformed keys and bodies are skipped
 * with one warning each.
 *
 * Freshness that no clock can fool: a heartbeat is live only when the store's time says it
 * was written within the expiry AND the stamp in its key (the writer's clock, which is what
 * the gem judged by) is within the expiry plus MAX_CLOCK_SKEW_SECONDS of the store's clock.
 * Either time lying more than the skew allowance in the future makes it untrusted (never
 * live): a file touched to 2099 or a key stamped in 2020 but rewritten now both expire.
 */
import type { Logger } from "../log.ts";
import { BadKeyReport } from "./bad_keys.ts";
import type { Registry } from "./registry.ts";
import { mapLimit } from "../util/pool.ts";
import {
  type HeartbeatDir,
  heartbeatKey,
  MAX_HEARTBEAT_BODY,
  parseHeartbeatKey,
  parseJoinAddress,
} from "./layout.ts";

export interface Heartbeat {
  key: string;
  dir: HeartbeatDir;
  node: string;
  /** The stamp in the key (the writer's clock). */
  stamp: Date;
  /** The store's LastModified (the store's clock). */
  lastModified: Date;
  /**
   * Age in seconds by the freshness rule (`heartbeatAge`): the larger of the store's age and
   * the stamp's age less the skew allowance; Infinity when either time is in the future
   * beyond the allowance. Live means `ageSeconds <= expiry`.
   */
  ageSeconds: number;
}

/** How far the writer's clock (the key's stamp) may be off the store's clock, in seconds. */
export const MAX_CLOCK_SKEW_SECONDS = 30;

/**
 * The freshness rule, pure. `storeAgeSeconds` = store's now − the store's LastModified;
 * `stampAgeSeconds` = store's now − the key's stamp (both may be negative). Returns the age
 * to compare with the expiry: live ⇔ result ≤ expiry, i.e. store age ≤ expiry AND stamp age
 * ≤ expiry + skew. A time more than `skewSeconds` in the future is not believed: Infinity.
 */
export function heartbeatAge(
  storeAgeSeconds: number,
  stampAgeSeconds: number,
  skewSeconds = MAX_CLOCK_SKEW_SECONDS,
): number {
  if (!Number.isFinite(storeAgeSeconds) || !Number.isFinite(stampAgeSeconds)) return Infinity;
  if (storeAgeSeconds < -skewSeconds || stampAgeSeconds < -skewSeconds) return Infinity;
  return Math.max(0, storeAgeSeconds, stampAgeSeconds - skewSeconds);
}

/** True when a heartbeat of this age is live under `expirySeconds`. */
export function isLive(ageSeconds: number, expirySeconds: number): boolean {
  return ageSeconds <= expirySeconds;
}

export interface Member extends Heartbeat {
  address: string;
}

/**
 * Parses a listing into heartbeats; malformed keys are reported through `warn` and skipped.
 * Ages are measured against the store's clock (`heartbeatAge`), so a node's clock can neither
 * keep its heartbeat alive nor kill it by more than the skew allowance.
 */
export function parseListing(
  dir: HeartbeatDir,
  objects: { key: string; lastModified: Date }[],
  storeNow: Date,
  warn: (key: string, why: string) => void,
): Heartbeat[] {
  const out: Heartbeat[] = [];
  for (const o of objects) {
    const p = parseHeartbeatKey(o.key);
    if (!p || p.dir !== dir) {
      warn(o.key, `expected "${dir}/<14-digit UTC stamp>-<node>"`);
      continue;
    }
    const ageSeconds = heartbeatAge(
      (storeNow.getTime() - o.lastModified.getTime()) / 1000,
      (storeNow.getTime() - p.stamp.getTime()) / 1000,
    );
    out.push({
      key: o.key,
      dir,
      node: p.node,
      stamp: p.stamp,
      lastModified: o.lastModified,
      ageSeconds,
    });
  }
  return out;
}

/** Freshest heartbeat per node, freshest first, only the live ones (age ≤ `expirySeconds`). */
export function freshestPerNode<T extends Heartbeat>(beats: T[], expirySeconds: number): T[] {
  const best = new Map<string, T>();
  for (const b of beats) {
    if (!isLive(b.ageSeconds, expirySeconds)) continue;
    const cur = best.get(b.node);
    if (!cur || fresher(b, cur)) best.set(b.node, b);
  }
  return [...best.values()].sort((a, b) => fresher(a, b) ? -1 : fresher(b, a) ? 1 : 0);
}

/** `a` is fresher than `b`: a lower age, then a later store time. */
function fresher(a: Heartbeat, b: Heartbeat): boolean {
  if (a.ageSeconds !== b.ageSeconds) return a.ageSeconds < b.ageSeconds;
  return a.lastModified > b.lastModified;
}

/** Heartbeats that are not live under the expiry (candidates for purge). */
export function expired<T extends Heartbeat>(beats: T[], expirySeconds: number): T[] {
  return beats.filter((b) => !isLive(b.ageSeconds, expirySeconds));
}

/** Lists one heartbeat directory (no bodies read). */
export async function readHeartbeats(
  registry: Registry,
  dir: HeartbeatDir,
  log: Logger,
): Promise<Heartbeat[]> {
  const listing = await registry.list(`${dir}/`);
  const bad = new BadKeyReport(log, registry.url, `${dir}/`);
  const beats = parseListing(
    dir,
    listing.objects,
    listing.storeNow,
    (key, why) => bad.skip(key, { expected: why }),
  );
  bad.done();
  return beats;
}

/**
 * The live members of a directory with their addresses, freshest first. Reads the body of
 * the freshest heartbeat of each live node; bad bodies are skipped with a warning.
 */
export async function liveMembers(
  registry: Registry,
  dir: HeartbeatDir,
  expirySeconds: number,
  log: Logger,
): Promise<Member[]> {
  const live = freshestPerNode(await readHeartbeats(registry, dir, log), expirySeconds);
  return await withAddresses(registry, live, log);
}

/**
 * Reads the body of each heartbeat (at most 16 at a time) and keeps those whose body is a
 * usable IP address, in the given order; bad and oversized bodies are skipped with a warning.
 */
export async function withAddresses<T extends Heartbeat>(
  registry: Registry,
  beats: T[],
  log: Logger,
): Promise<(T & { address: string })[]> {
  const members = await mapLimit(beats, 16, async (hb) => {
    let body: Uint8Array | undefined;
    try {
      body = await registry.get(hb.key, MAX_HEARTBEAT_BODY);
    } catch (err) {
      if (err instanceof RangeError) {
        log.warn("skipping oversized heartbeat body", { key: hb.key });
        return undefined;
      }
      throw err;
    }
    if (body === undefined) return undefined; // deleted between list and get
    const text = decodeBody(body);
    const address = text === undefined ? undefined : parseJoinAddress(text);
    if (address === undefined) {
      log.warn("skipping heartbeat whose body is not an IP address", {
        key: hb.key,
        body: printable(text ?? "<binary>"),
      });
      return undefined;
    }
    return { ...hb, address };
  });
  return members.filter((m): m is T & { address: string } => m !== undefined);
}

/** The key written and the previous keys of this node that were removed. */
export interface HeartbeatWrite {
  keys: string[];
  removed: string[];
}

/**
 * Writes this node's heartbeat to each of `dirs` (servers write both, agents only agents/),
 * then deletes this node's older heartbeats. `previous` are keys this process wrote before
 * (no LIST needed); when it is undefined the directories are listed to find them.
 */
export async function writeHeartbeat(
  registry: Registry,
  opts: { node: string; address: string; dirs: HeartbeatDir[]; now: Date; previous?: string[] },
  log: Logger,
): Promise<HeartbeatWrite> {
  const body = new TextEncoder().encode(opts.address);
  const keys = opts.dirs.map((d) => heartbeatKey(d, opts.now, opts.node));
  await Promise.all(keys.map((k) => registry.put(k, body)));
  let older: string[];
  if (opts.previous) {
    older = opts.previous.filter((k) => !keys.includes(k));
  } else {
    older = [];
    for (const dir of opts.dirs) {
      for (const hb of await readHeartbeats(registry, dir, log)) {
        if (hb.node === opts.node && !keys.includes(hb.key)) older.push(hb.key);
      }
    }
  }
  await Promise.all(older.map((k) => registry.delete(k)));
  return { keys, removed: older };
}

/** Deletes heartbeats older than the expiry in `dir`; returns the keys removed. */
export async function purgeExpired(
  registry: Registry,
  dir: HeartbeatDir,
  expirySeconds: number,
  log: Logger,
): Promise<string[]> {
  const old = expired(await readHeartbeats(registry, dir, log), expirySeconds).map((h) => h.key);
  await Promise.all(old.map((k) => registry.delete(k)));
  return old;
}

function decodeBody(body: Uint8Array): string | undefined {
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(body);
  } catch {
    return undefined;
  }
}

/** A short, log-safe rendering of untrusted text. */
export function printable(s: string, max = 40): string {
  const t = s.replace(/[^\x20-\x7e]/g, "?");
  return t.length > max ? t.slice(0, max) + "…" : t;
}
