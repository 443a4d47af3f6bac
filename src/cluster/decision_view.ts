/**
 * What the mode decision reads from the registry (`readDecisionView`): the claims of `slots/`,
 * the servers' heartbeats with their join addresses and, when they can change the decision
 * (`claimBodiesNeeded`), the claim bodies, holder records and recovery plans — in as few rounds
 * of requests as possible. claim.ts decides and races on what it returns.
 */
import type { Logger } from "../log.ts";
import {
  freshestPerNode,
  type Heartbeat,
  type Member,
  readHeartbeats,
  withAddresses,
} from "../registry/heartbeats.ts";
import { BadKeyReport } from "../registry/bad_keys.ts";
import type { Registry } from "../registry/registry.ts";
import { currentClaims, parseClaimBody, type PlaceClaim } from "./places.ts";
import { parseSlotKey, SLOTS_DIR } from "../registry/layout.ts";
import { readPlans, readRecords } from "./holder.ts";
import type { SeenPlan, SeenRecord } from "./records.ts";

export const MAX_CLAIM_BODY = 256;

/** A claim as listed: its place, epoch, key and age on the store's clock. */
export interface ListedClaim {
  place: number;
  epoch: number;
  key: string;
  ageSeconds: number;
}

/** Every well-formed claim of the places below `servers` (bad keys skipped with a warning). */
export async function listClaims(
  registry: Registry,
  servers: number,
  log: Logger,
): Promise<ListedClaim[]> {
  const listing = await registry.list(`${SLOTS_DIR}/`);
  const all: ListedClaim[] = [];
  const bad = new BadKeyReport(log, registry.url, `${SLOTS_DIR}/`);
  for (const o of listing.objects) {
    const p = parseSlotKey(o.key);
    if (!p) {
      bad.skip(o.key, { expected: "slots/<place>/<10-digit epoch>" });
      continue;
    }
    if (p.place >= servers) continue;
    const ageSeconds = Math.max(0, (listing.storeNow.getTime() - o.lastModified.getTime()) / 1000);
    all.push({ ...p, key: o.key, ageSeconds });
  }
  bad.done();
  return all;
}

/** The current claim of each place (places.ts currentClaims), bodies read and validated. */
export async function withHolders(
  registry: Registry,
  listed: ListedClaim[],
  log: Logger,
): Promise<PlaceClaim[]> {
  return await Promise.all(
    currentClaims(listed).map(async (c) => {
      let node: string | undefined;
      try {
        const body = await registry.get(c.key, MAX_CLAIM_BODY);
        node = parseClaimBody(body && new TextDecoder().decode(body));
      } catch (err) {
        if (!(err instanceof RangeError)) throw err;
      }
      if (node === undefined) log.warn("claim body is not a node name", { key: c.key });
      return { place: c.place, epoch: c.epoch, node, ageSeconds: c.ageSeconds };
    }),
  );
}

/** The current claim of each place below `servers`, bodies read and validated. */
export async function readClaims(
  registry: Registry,
  servers: number,
  log: Logger,
): Promise<PlaceClaim[]> {
  return await withHolders(registry, await listClaims(registry, servers, log), log);
}

/**
 * Whether the claims' holders can change the decision. They cannot when this node holds no
 * place (`mightHold` false) and every place has a current claim younger than the expiry:
 * such a claim is never stale whoever holds it, no place is free, so the node is a client —
 * in a boot storm every node after the first few saves a GET per place.
 */
export function claimBodiesNeeded(
  current: readonly { place: number; ageSeconds: number }[],
  opts: { servers: number; expirySeconds: number; mightHold: boolean },
): boolean {
  if (opts.mightHold) return true;
  const places = new Set(current.filter((c) => c.place < opts.servers).map((c) => c.place));
  if (places.size < opts.servers) return true; // a free place: the holders decide how many
  return current.some((c) => c.ageSeconds > opts.expirySeconds);
}

/** What the mode decision reads: the claims, the servers' heartbeats, their addresses. */
export interface DecisionView {
  listed: ListedClaim[];
  /** The current claims with their holders, when read. */
  claims?: PlaceClaim[];
  /** The holders could not change the decision (`claimBodiesNeeded`): not read, a client. */
  bodiesSkipped?: boolean;
  /** Every heartbeat in `servers/` (expired ones included). */
  servers: Heartbeat[];
  /** The live servers with their join addresses, freshest first (for -retry-join). */
  liveServers: Member[];
  /** Holder records and recovery plans (docs/recovery.md), read with the claim bodies. */
  records?: SeenRecord[];
  plans?: SeenPlan[];
}

/**
 * Reads the registry for the mode decision in two rounds of requests: the listings of
 * `slots/` and `servers/` together, then the claim bodies that can change the decision
 * (`claimBodiesNeeded`) together with the live servers' bodies (their join addresses, which
 * `run` passes to consul as -retry-join: no second read). `mightHold`: local state says this
 * node may hold a place; a heartbeat of its name in `servers/` says so too.
 */
export async function readDecisionView(
  registry: Registry,
  opts: { node: string; servers: number; expirySeconds: number; mightHold: boolean },
  log: Logger,
): Promise<DecisionView> {
  // A node that held a place before (local state) will need the records and plans: they go
  // out beside the listings, so a restart waits for two requests in a row, not three.
  const early = opts.mightHold
    ? Promise.all([readRecords(registry, log), readPlans(registry, log)])
    : undefined;
  early?.catch(() => {}); // awaited below when needed; a failure then surfaces there
  const [listed, servers] = await Promise.all([
    listClaims(registry, opts.servers, log),
    readHeartbeats(registry, "servers", log),
  ]);
  const mightHold = opts.mightHold || servers.some((h) => h.node === opts.node);
  const needed = claimBodiesNeeded(currentClaims(listed), { ...opts, mightHold });
  const [claims, liveServers, records, plans] = await Promise.all([
    needed ? withHolders(registry, listed, log) : undefined,
    withAddresses(registry, freshestPerNode(servers, opts.expirySeconds), log),
    needed ? (early ? early.then((r) => r[0]) : readRecords(registry, log)) : undefined,
    needed ? (early ? early.then((r) => r[1]) : readPlans(registry, log)) : undefined,
  ]);
  return { listed, claims, bodiesSkipped: !needed, servers, liveServers, records, plans };
}
