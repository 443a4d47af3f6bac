/**
 * The registry records of docs/recovery.md: `holders/<node>` (written by each server every
 * tick, overwritten in place), recovery plans `recovery/<n>`, `cluster/formed`; and the
 * holder's conditional re-assertion of its place (I1). Pure parts are in recovery.ts.
 */
import type { ConsulClient } from "../consul/client.ts";
import type { AgentSelf } from "../consul/types.ts";
import { describe } from "../errors.ts";
import type { Logger } from "../log.ts";
import type { Registry } from "../registry/registry.ts";
import type { Sleep } from "../util/backoff.ts";
import { mapLimit } from "../util/pool.ts";
import { parseSlotKey, SLOTS_DIR } from "../registry/layout.ts";
import { currentClaims, parseClaimBody } from "./places.ts";
import {
  CLUSTER_FORMED_KEY,
  encodeHolderRecord,
  encodePlan,
  holderKey,
  type HolderRecord,
  HOLDERS_DIR,
  MAX_RECORD_BODY,
  parseHolderRecord,
  parsePlan,
  parseRecoveryKey,
  RECOVERY_DIR,
  recoveryKey,
  type RecoveryPlan,
  type SeenPlan,
  type SeenRecord,
} from "./records.ts";

const decoder = new TextDecoder();

async function readBody(registry: Registry, key: string): Promise<string | undefined> {
  try {
    const body = await registry.get(key, MAX_RECORD_BODY);
    return body && decoder.decode(body);
  } catch (err) {
    if (err instanceof RangeError) return undefined;
    throw err;
  }
}

/** Every holder record, with its age on the store's clock; malformed ones skipped (warned). */
export async function readRecords(registry: Registry, log: Logger): Promise<SeenRecord[]> {
  const listing = await registry.list(`${HOLDERS_DIR}/`);
  const out = await mapLimit(listing.objects, 16, async (o) => {
    const r = parseHolderRecord(await readBody(registry, o.key));
    if (!r || holderKey(r.node) !== o.key) {
      log.warn("skipping registry key", { key: o.key, expected: "a holder record" });
      return undefined;
    }
    const ageSeconds = Math.max(0, (listing.storeNow.getTime() - o.lastModified.getTime()) / 1000);
    return { ...r, ageSeconds };
  });
  return out.filter((r): r is SeenRecord => r !== undefined);
}

/** Every recovery plan, oldest first. */
export async function readPlans(registry: Registry, log: Logger): Promise<SeenPlan[]> {
  const listing = await registry.list(`${RECOVERY_DIR}/`);
  const out = await mapLimit(listing.objects, 8, async (o) => {
    const n = parseRecoveryKey(o.key);
    const plan = n === undefined ? undefined : parsePlan(n, await readBody(registry, o.key));
    if (!plan) {
      log.warn("skipping registry key", { key: o.key, expected: "a recovery plan" });
      return undefined;
    }
    const ageSeconds = Math.max(0, (listing.storeNow.getTime() - o.lastModified.getTime()) / 1000);
    return { ...plan, ageSeconds };
  });
  return out.filter((p): p is SeenPlan => p !== undefined).sort((a, b) => a.n - b.n);
}

/** Publishes a plan as the next `recovery/<n>` (create-if-absent); undefined when beaten. */
export async function publishPlan(
  registry: Registry,
  plan: Omit<RecoveryPlan, "n">,
  existing: readonly RecoveryPlan[],
): Promise<RecoveryPlan | undefined> {
  const n = Math.max(0, ...existing.map((p) => p.n)) + 1;
  const outcome = await registry.createIfAbsent(
    recoveryKey(n),
    new TextEncoder().encode(encodePlan(plan)),
  );
  return outcome === "created" ? { n, ...plan } : undefined;
}

/** The record of this holder (`opts`: its name, join address and place) with raft's view. */
export function recordOf(
  opts: { node: string; address: string; held: { place: number; epoch: number } },
  nodeId: string,
  raft: HolderRecord["raft"],
): HolderRecord {
  return {
    node: opts.node,
    nodeId,
    address: opts.address,
    place: opts.held.place,
    epoch: opts.held.epoch,
    raft,
  };
}

/** Raft as a holder's record says it while its consul starts (it has not answered yet). */
const STARTING: HolderRecord["raft"] = {
  state: "Starting",
  lastIndex: 0,
  lastTerm: 0,
  leader: false,
  leaderFor: 0,
};

export async function writeRecord(registry: Registry, r: HolderRecord): Promise<void> {
  await registry.put(holderKey(r.node), new TextEncoder().encode(encodeHolderRecord(r)));
}

/** Records once that a cluster existed (the first time a server sees a leader). */
export async function markFormed(registry: Registry, node: string): Promise<void> {
  const body = JSON.stringify({ v: 1, by: node, at: new Date().toISOString() });
  await registry.createIfAbsent(CLUSTER_FORMED_KEY, new TextEncoder().encode(body));
}

/** consul's raft state from /v1/agent/self (`Stats.raft`); zeros when absent (a client). */
export function raftFromSelf(self: Pick<AgentSelf, "raw">): HolderRecord["raft"] {
  const stats = (self.raw.Stats ?? {}) as Record<string, Record<string, unknown>>;
  const raft = stats.raft ?? {};
  const count = (v: unknown) => {
    const n = Number(v);
    return Number.isSafeInteger(n) && n >= 0 ? n : 0;
  };
  const state = typeof raft.state === "string" && /^[A-Za-z]{1,20}$/.test(raft.state)
    ? raft.state
    : "Unknown";
  return {
    state,
    lastIndex: count(raft.last_log_index),
    lastTerm: count(raft.last_log_term),
    leader: false,
  };
}

/** The current (highest-epoch) claim of one place and its holder's name. */
export async function currentClaim(
  registry: Registry,
  place: number,
): Promise<{ epoch: number; node?: string } | undefined> {
  const listing = await registry.list(`${SLOTS_DIR}/${place}/`);
  const parsed = listing.objects.flatMap((o) => {
    const p = parseSlotKey(o.key);
    return p && p.place === place ? [{ ...p, key: o.key }] : [];
  });
  // the same rule as every reader (places.ts): an epoch written far ahead does not count
  const best = currentClaims(parsed)[0];
  if (!best) return undefined;
  return { epoch: best.epoch, node: parseClaimBody(await readBody(registry, best.key)) };
}

/**
 * The holder's conditional re-assertion (I1), called right after it wrote its record: is the
 * place still this node's? A higher epoch by another node is read again after `recheckMs`
 * (a claimant that sees the fresh record retracts its claim in that time).
 */
export async function stillHolds(
  registry: Registry,
  held: { place: number; epoch: number },
  node: string,
  wait: (ms: number) => Promise<void>,
  recheckMs = 1000,
): Promise<{ holds: true } | { holds: false; takenBy?: string; epoch: number }> {
  for (let attempt = 0;; attempt++) {
    const c = await currentClaim(registry, held.place);
    if (!c || c.epoch <= held.epoch || c.node === node) return { holds: true };
    if (attempt >= 1) return { holds: false, takenBy: c.node, epoch: c.epoch };
    await wait(recheckMs);
  }
}

export interface HolderLoopOptions {
  node: string;
  /** The join address announced (already validated). */
  address: string;
  held: { place: number; epoch: number };
  ticksMs: number;
}

export interface HolderLoopDeps {
  registry: Registry;
  consul: Pick<ConsulClient, "self" | "leader">;
  sleep: Sleep;
  log: Logger;
}

/** How this server lost its place (I1: it must stop running as its holder). */
export interface PlaceLost {
  takenBy?: string;
  epoch: number;
}

/**
 * A holder's loop (docs/recovery.md): every tick, while its agent answers, it writes its
 * record (node-id, raft progress, whether a leader is known), records once that a cluster was
 * formed, and re-asserts its place conditionally. Resolves with how the place was lost, or
 * undefined when `signal` aborts. Failures are logged (at most one warning per minute) and
 * retried next tick.
 */
export async function holderLoop(
  opts: HolderLoopOptions,
  deps: HolderLoopDeps,
  signal: AbortSignal,
): Promise<PlaceLost | undefined> {
  let formed = false;
  let warnedAt = -Infinity;
  let elapsed = 0;
  let leaderSince: number | undefined;
  while (!signal.aborted) {
    try {
      const self = await deps.consul.self({ signal });
      const leader = await deps.consul.leader({ signal }).catch(() => undefined);
      if (leader === undefined) leaderSince = undefined;
      else leaderSince ??= elapsed;
      const raft = {
        ...raftFromSelf(self),
        leader: leader !== undefined,
        leaderFor: leaderSince === undefined ? 0 : Math.floor((elapsed - leaderSince) / 1000),
      };
      await writeRecord(deps.registry, recordOf(opts, self.nodeId, raft));
      if (raft.leader && !formed) {
        await markFormed(deps.registry, opts.node);
        formed = true;
      }
      const held = await stillHolds(
        deps.registry,
        opts.held,
        opts.node,
        (ms) => deps.sleep(ms, signal),
      );
      if (!held.holds) return { takenBy: held.takenBy, epoch: held.epoch };
    } catch (err) {
      if (signal.aborted) break;
      if (elapsed - warnedAt >= 60_000) {
        deps.log.warn("could not write this server's holder record", { error: describe(err) });
        warnedAt = elapsed;
      }
    }
    await deps.sleep(opts.ticksMs, signal);
    elapsed += opts.ticksMs;
  }
  return undefined;
}

/** consul's node-id in its data dir, created (a random UUID) when absent: consul reads it. */
export async function ensureNodeId(consulDataDir: string): Promise<string> {
  const path = `${consulDataDir}/node-id`;
  try {
    const id = (await Deno.readTextFile(path)).trim().toLowerCase();
    if (/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(id)) return id;
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  const id = crypto.randomUUID();
  await Deno.mkdir(consulDataDir, { recursive: true, mode: 0o700 });
  await Deno.writeTextFile(path, id, { mode: 0o600 });
  return id;
}

export interface StartingOptions {
  node: string;
  /** The join address from the flags (advertise, else bind); none when bind is 0.0.0.0. */
  address: string;
  held: { place: number; epoch: number };
  ticksMs: number;
  /** consul's data dir of this server (its node-id is read or made there). */
  consulDataDir: string;
  /** How long at most (a consul that never answers must not keep the place alive). */
  maxMs: number;
}

/**
 * A new holder announces itself from the moment it claimed its place until its consul first
 * answers (I1): a record every tick, state "Starting", bounded by `maxMs`. Without it a slow
 * start (seconds on a loaded machine) looked like a dead or junk holder, and another node took
 * the place while this one still started as a server: four voters for `-s 3`.
 */
export async function announceStarting(
  opts: StartingOptions,
  deps: { registry: Registry; sleep: Sleep; log: Logger },
  signal: AbortSignal,
): Promise<void> {
  let nodeId: string;
  try {
    nodeId = await ensureNodeId(opts.consulDataDir);
  } catch (err) {
    deps.log.warn("cannot prepare consul's node-id: no record before consul answers", {
      error: describe(err),
    });
    return;
  }
  for (let elapsed = 0; !signal.aborted && elapsed <= opts.maxMs; elapsed += opts.ticksMs) {
    try {
      await writeRecord(deps.registry, recordOf(opts, nodeId, STARTING));
    } catch (err) {
      if (signal.aborted) return;
      deps.log.debug("starting record not written", { error: describe(err) });
    }
    await deps.sleep(opts.ticksMs, signal).catch(() => {});
  }
}

/** A running `announceStarting`: stopped (and awaited) by its owner. */
export interface Announcing {
  stop(): Promise<void>;
}

/** Starts `announceStarting` on its own switch: it runs until `stop()` or its `maxMs`. */
export function startAnnouncing(
  opts: StartingOptions,
  deps: { registry: Registry; sleep: Sleep; log: Logger },
): Announcing {
  const ctl = new AbortController();
  const running = announceStarting(opts, deps, ctl.signal).catch(() => {});
  return {
    stop: () => {
      ctl.abort();
      return running;
    },
  };
}
