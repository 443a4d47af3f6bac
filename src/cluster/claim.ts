/**
 * Taking a server place: fetch the claims (decision_view.ts), decide (places.ts), then race
 * with create-if-absent. Exactly one of many concurrent claimants of an epoch wins.
 */
import type { Logger } from "../log.ts";
import { freshestPerNode, readHeartbeats } from "../registry/heartbeats.ts";
import type { Registry } from "../registry/registry.ts";
import {
  currentClaims,
  decidePlace,
  type HeldPlace,
  type PlaceClaim,
  type PlaceDecision,
} from "./places.ts";
import { slotKey } from "../registry/layout.ts";
import { publishPlan, readPlans, readRecords } from "./holder.ts";
import {
  decideAllLost,
  leaderInRecords,
  RECOVER_AFTER_EXPIRIES,
  type ServersLostPolicy,
} from "./recovery.ts";
import type { SeenPlan, SeenRecord } from "./records.ts";
import type { Mode } from "./state.ts";
import { type DecisionView, listClaims, withHolders } from "./decision_view.ts";

export interface PlaceOptions {
  node: string;
  servers: number;
  /** Patience: a holder silent this long is stale (the expiry; twice it for a running client). */
  expirySeconds: number;
  /** The real expiry, for freshness of records and the leader they report (default: patience). */
  freshSeconds?: number;
  held?: HeldPlace;
  /** This node's own agent knows a leader (a running client). */
  leaderKnown?: boolean;
  /** I5: what to do when every server is gone. Default "wait". */
  serversLost?: ServersLostPolicy;
  autoRecover?: boolean;
  /** W: the recovery wait, seconds. Default RECOVER_AFTER_EXPIRIES expiry windows. */
  recoverAfterSeconds?: number;
  /** Called once before the first claim is sent (to record the intent in local state). */
  onClaiming?: () => Promise<void>;
}

export interface PlaceResult {
  mode: Mode;
  place?: HeldPlace;
  /** One sentence for the log: why this mode. */
  reason: string;
  /** No stale place may be taken (no leader): the node waits for servers with data. */
  waiting?: boolean;
  /** The place was claimed just now (its claim is released if what follows locally fails). */
  created?: boolean;
  /**
   * A stale place was taken: its previous holder, and consul's node-id from its holder record
   * (its raft server ID). Its raft voter is removed before this node runs as a server (I1).
   */
  replaced?: { node: string; nodeId?: string };
}

/**
 * Gives back a place claimed just now, when what had to follow it locally failed (the mode
 * could not be recorded, consul cannot start): deletes this node's claim, so the place is free
 * again at once instead of held for nothing until it goes stale. Never throws.
 */
export async function releaseClaim(
  registry: Registry,
  place: HeldPlace,
  log: Logger,
): Promise<void> {
  const key = slotKey(place.place, place.epoch);
  try {
    await registry.delete(key);
    log.warn(`released server place ${place.place}: this node cannot run it`, { key });
  } catch (err) {
    log.error("could not release a server place claimed by this node", {
      key,
      error: (err as Error).message,
    });
  }
}

/**
 * Decides this node's mode from the registry and, when a place is free or stale, claims it.
 * `held` is the place local state says this node held.
 */
export async function takePlace(
  registry: Registry,
  opts: PlaceOptions,
  log: Logger,
): Promise<PlaceResult> {
  const [listed, servers, records, plans] = await Promise.all([
    listClaims(registry, opts.servers, log),
    readHeartbeats(registry, "servers", log),
    readRecords(registry, log),
    readPlans(registry, log),
  ]);
  return await claimFromView(
    registry,
    { listed, servers, liveServers: [], records, plans },
    opts,
    log,
  );
}

/**
 * `takePlace` from what was already read (`readDecisionView`): claims that were not read
 * because they could not matter mean every place is held.
 */
export async function claimFromView(
  registry: Registry,
  view: DecisionView,
  opts: PlaceOptions,
  log: Logger,
): Promise<PlaceResult> {
  const { listed, servers } = view;
  if (view.bodiesSkipped) {
    return {
      mode: "agent",
      reason: `all ${opts.servers} server places are held (claimed within the expiry): ` +
        `running as a client`,
    };
  }
  const records = view.records ?? [];
  const plans = view.plans ?? [];
  const fresh = opts.freshSeconds ?? opts.expirySeconds;
  // A holder is alive while its record (never absent while it lives) or heartbeat is fresh.
  const liveServers = new Set([
    ...freshestPerNode(servers, opts.expirySeconds).map((h) => h.node),
    ...records.filter((r) => r.ageSeconds <= opts.expirySeconds).map((r) => r.node),
  ]);
  const seen = lastSeen(servers, records);
  const leaderKnown = (opts.leaderKnown ?? false) ||
    leaderInRecords(records, fresh, opts.expirySeconds);
  // A claim created here can let objects written out of sequence above it count (see
  // currentClaims): then they hold the place, and the decision is taken again with them.
  let claiming = false;
  for (let round = 1;; round++) {
    const claims = round === 1 && view.claims
      ? view.claims
      : await withHolders(registry, listed, log);
    const recorded = new Set(records.map((r) => r.node));
    const decision = decidePlace({ ...opts, claims, liveServers, leaderKnown, plans, recorded });
    if (decision.kind === "waiting") {
      return await whileWaiting(registry, opts, log, { claims, seen, plans, fresh, decision });
    }
    if (decision.kind !== "claim") return outcomeOf(decision);
    const body = new TextEncoder().encode(opts.node);
    let superseded = false;
    for (const a of decision.attempts) {
      if (!claiming) {
        claiming = true;
        await opts.onClaiming?.();
      }
      const key = slotKey(a.place, a.epoch);
      const outcome = await registry.createIfAbsent(key, body);
      if (outcome !== "created") {
        log.debug("place taken by another node", { place: a.place, epoch: a.epoch });
        continue;
      }
      if (a.why === "stale") {
        // Claim, then confirm (I1): the old holder may have come back while we claimed.
        const old = claims.find((c) => c.place === a.place)?.node;
        if (old !== undefined && await cameBack(registry, old, fresh, log)) {
          await registry.delete(key);
          log.warn("the holder of a stale place came back while it was claimed: claim retracted", {
            place: a.place,
            epoch: a.epoch,
            holder: old,
          });
          return {
            mode: "agent",
            reason: `the holder of server place ${a.place} came back while it was claimed: ` +
              `claim retracted, running as a client`,
          };
        }
      }
      listed.push({ place: a.place, epoch: a.epoch, key, ageSeconds: 0 });
      const now = currentClaims(listed.filter((c) => c.place === a.place))[0];
      if (now.epoch === a.epoch) {
        const old = a.why === "stale" ? claims.find((c) => c.place === a.place)?.node : undefined;
        return {
          mode: "server",
          place: { place: a.place, epoch: a.epoch },
          reason: `claimed ${a.why} server place ${a.place} (epoch ${a.epoch})`,
          created: true,
          ...(old === undefined
            ? {}
            : { replaced: { node: old, nodeId: records.find((r) => r.node === old)?.nodeId } }),
        };
      }
      log.warn("claims written out of sequence continue the place past this node's claim", {
        place: a.place,
        epoch: a.epoch,
        current: now.key,
      });
      superseded = true;
      break;
    }
    if (!superseded || round >= MAX_CLAIM_ROUNDS) {
      const others = decision.placeless ?? [];
      return {
        mode: "agent",
        reason: decision.attempts.length > 0
          ? `lost the race for every free server place: running as a client`
          : others.length > 0
          ? `all ${opts.servers} server places are held (${others.length} by live servers ` +
            `without a place: ${others.slice(0, 5).join(", ")}): running as a client`
          : `all ${opts.servers} server places are held: running as a client`,
      };
    }
  }
}

/** How many times a claim superseded by out-of-sequence objects is taken again. */
const MAX_CLAIM_ROUNDS = 4;

function outcomeOf(
  decision: Exclude<PlaceDecision, { kind: "claim" } | { kind: "waiting" }>,
): PlaceResult {
  switch (decision.kind) {
    case "hold":
      return {
        mode: "server",
        place: { place: decision.place, epoch: decision.epoch },
        reason: `this node holds server place ${decision.place}`,
      };
    case "lost":
      return {
        mode: "agent",
        reason: `server place ${decision.place} was taken by ${
          decision.takenBy ?? "another node"
        } while this node was away: running as a client`,
      };
  }
}

/** Seconds since each node was last heard of: its holder record or its server heartbeat. */
function lastSeen(
  beats: readonly { node: string; ageSeconds: number }[],
  records: readonly SeenRecord[],
): Map<string, number> {
  const seen = new Map<string, number>();
  for (const h of [...beats, ...records]) {
    seen.set(h.node, Math.min(h.ageSeconds, seen.get(h.node) ?? Infinity));
  }
  return seen;
}

/** Whether `node`'s record or server heartbeat is fresh again (read anew). */
async function cameBack(
  registry: Registry,
  node: string,
  fresh: number,
  log: Logger,
): Promise<boolean> {
  const [beats, records] = await Promise.all([
    readHeartbeats(registry, "servers", log),
    readRecords(registry, log),
  ]);
  return (lastSeen(beats, records).get(node) ?? Infinity) <= fresh;
}

/** No stale place may be taken: say why, and apply the I5 policy when every server is gone. */
async function whileWaiting(
  registry: Registry,
  opts: PlaceOptions,
  log: Logger,
  s: {
    claims: PlaceClaim[];
    seen: Map<string, number>;
    plans: SeenPlan[];
    fresh: number;
    decision: { stale: number; why: string };
  },
): Promise<PlaceResult> {
  const holders = s.claims.map((c) => c.node ?? "?").join(", ");
  const silent = Math.min(
    ...s.claims.map((c) => c.node ? s.seen.get(c.node) ?? c.ageSeconds : c.ageSeconds),
  );
  const anyAlive = [...s.seen.values()].some((age) => age <= s.fresh);
  if (anyAlive) {
    return {
      mode: "agent",
      waiting: true,
      reason: `${s.decision.stale} server place(s) stale but ${s.decision.why} (places held by ` +
        `${holders}): running as a client`,
    };
  }
  const places: Record<string, number> = {};
  for (const c of s.claims) places[String(c.place)] = c.epoch;
  const d = decideAllLost({
    policy: opts.serversLost ?? "wait",
    autoRecover: opts.autoRecover ?? true,
    waitSeconds: opts.recoverAfterSeconds ?? RECOVER_AFTER_EXPIRIES * s.fresh,
    silentSeconds: silent,
    places,
    plans: s.plans,
  }, opts.node);
  if (d.kind === "publish") {
    const plan = await publishPlan(registry, d.plan, s.plans);
    if (plan) {
      log.error(`every server is gone: published new-cluster plan ${plan.n}`, {
        reason: plan.reason,
      });
    }
    return await takePlace(registry, { ...opts, serversLost: "wait" }, log);
  }
  return {
    mode: "agent",
    waiting: true,
    reason: `${d.why}; places held by ${holders}, last heard of ${
      Math.round(silent)
    } s ago: running as a client`,
  };
}
