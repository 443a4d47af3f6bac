/**
 * Reading and writing heartbeats. Fetch (`readHeartbeats`), then decide (`liveMembers`,
 * `expired`, pure). Registry contents are untrusted: malformed keys and bodies are skipped
 * with one warning each.
 */
import type { Logger } from "../log.ts";
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
  /** The store's LastModified (the store's clock): used for freshness. */
  lastModified: Date;
  /** Age in seconds measured on the store's clock. */
  ageSeconds: number;
}

export interface Member extends Heartbeat {
  address: string;
}

/**
 * Parses a listing into heartbeats; malformed keys are reported through `warn` and skipped.
 * Age is measured against the store's clock, so clock skew between nodes does not matter.
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
    const ageSeconds = Math.max(0, (storeNow.getTime() - o.lastModified.getTime()) / 1000);
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

/** Freshest heartbeat per node, freshest first, only those younger than `expirySeconds`. */
export function freshestPerNode<T extends Heartbeat>(beats: T[], expirySeconds: number): T[] {
  const best = new Map<string, T>();
  for (const b of beats) {
    if (b.ageSeconds > expirySeconds) continue;
    const cur = best.get(b.node);
    if (!cur || b.lastModified > cur.lastModified) best.set(b.node, b);
  }
  return [...best.values()].sort((a, b) => b.lastModified.getTime() - a.lastModified.getTime());
}

/** Heartbeats older than the expiry (candidates for purge). */
export function expired<T extends Heartbeat>(beats: T[], expirySeconds: number): T[] {
  return beats.filter((b) => b.ageSeconds > expirySeconds);
}

/** Lists one heartbeat directory (no bodies read). */
export async function readHeartbeats(
  registry: Registry,
  dir: HeartbeatDir,
  log: Logger,
): Promise<Heartbeat[]> {
  const listing = await registry.list(`${dir}/`);
  return parseListing(
    dir,
    listing.objects,
    listing.storeNow,
    (key, why) => log.warn("skipping registry key", { key, expected: why }),
  );
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
