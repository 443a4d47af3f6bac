/**
 * Server places: the race-free mode decision. Pure functions only; `claim.ts` does the I/O.
 *
 * Place k (0..N-1) is a sequence of claims `slots/<k>/<epoch>` whose body is the claiming
 * node's name. The highest epoch is the current holder. A node takes a place by creating the
 * next epoch with create-if-absent, so of many concurrent claimants exactly one wins.
 */
import { nodeNameProblem } from "../util/validate.ts";
import { mayTakeStale } from "./recovery.ts";
import type { RecoveryPlan } from "./records.ts";

/**
 * How far an epoch may lie beyond the number of claims of its place that precede it and still
 * count. A legitimate claimant creates the successor of the current epoch, which then always
 * counts (see currentClaims); one object written far ahead (say epoch 9999999999, or one whose
 * successor would be unreadable) is ignored instead of taking the place. A million takeovers of
 * one place, each after its holder went stale, take years.
 */
export const MAX_EPOCH_LEAD = 1_000_000;

/**
 * The current claim of each place, from every claim listed. A place's claims are taken in
 * epoch order; a claim counts when its epoch is at most MAX_EPOCH_LEAD beyond the number of
 * claims counted before it, and the highest one counted is current. Whatever else is in the
 * store, the successor of the current epoch (what a claimant creates) counts too, so a place
 * can always be taken by creating it: the object at that key, if one exists, counts as well
 * and is then the current claim itself. Generic over what else a claim carries. Pure.
 */
export function currentClaims<T extends { place: number; epoch: number }>(claims: T[]): T[] {
  const byPlace = new Map<number, T[]>();
  for (const c of claims) {
    const list = byPlace.get(c.place);
    if (list) list.push(c);
    else byPlace.set(c.place, [c]);
  }
  const out: T[] = [];
  for (const list of byPlace.values()) {
    list.sort((a, b) => a.epoch - b.epoch);
    let counted = 0;
    let current: T | undefined;
    for (const c of list) {
      if (c.epoch > counted + MAX_EPOCH_LEAD) break; // and so is every later one
      if (c.epoch === current?.epoch) continue;
      counted++;
      current = c;
    }
    if (current) out.push(current);
  }
  return out.sort((a, b) => a.place - b.place);
}

/** A claim body is a node name; anything else is untrusted garbage. */
export function parseClaimBody(text: string | undefined): string | undefined {
  const node = text?.trim();
  return node !== undefined && nodeNameProblem(node) === undefined ? node : undefined;
}

/** The current (highest-epoch) claim of one place, as read. */
export interface PlaceClaim {
  place: number;
  epoch: number;
  /** The holder; undefined when the body was unreadable (treated as held by nobody alive). */
  node?: string;
  /** Age of the claim on the store's clock, in seconds. */
  ageSeconds: number;
}

/** The place this node held when it last ran (local state). */
export interface HeldPlace {
  place: number;
  epoch: number;
}

export interface PlaceInput {
  node: string;
  servers: number;
  expirySeconds: number;
  /** Latest claim per place (places with no claim are absent). */
  claims: PlaceClaim[];
  /** Nodes with a fresh holder record or server heartbeat. */
  liveServers: ReadonlySet<string>;
  /** What local state says this node held, if anything. */
  held?: HeldPlace;
  /** A leader exists (a fresh holder record says so, or this client's own agent). */
  leaderKnown?: boolean;
  /** Recovery plans in the registry (a new-cluster plan frees the places it names). */
  plans?: readonly RecoveryPlan[];
  /** Nodes that ever wrote a holder record; undefined: unknown (every holder counts as one). */
  recorded?: ReadonlySet<string>;
}

export type PlaceDecision =
  /** This node is the current holder of a place: keep it. */
  | { kind: "hold"; place: number; epoch: number }
  /** This node held a place that another node took while it was away: run as a client. */
  | { kind: "lost"; place: number; takenBy?: string }
  /**
   * Try these claims in order; the first one created wins. Empty: run as a client.
   * `placeless`: live servers that hold no place (the gem's, hand-started), each occupying one.
   */
  | {
    kind: "claim";
    attempts: { place: number; epoch: number; why: "free" | "stale" }[];
    placeless?: string[];
  }
  /**
   * Places are stale but may not be taken (no leader exists and no plan frees them: a
   * whole-site outage or a lost quorum, whose servers keep their data and places): run as a
   * client and say why.
   */
  | { kind: "waiting"; stale: number; why: string };

/**
 * Decides what to do with server places, from what was read (docs/recovery.md).
 * - current holder of a place (by node name) → hold it;
 * - held a place per local state but someone else holds it now → lost (client);
 * - otherwise try free places (lowest first), then stale ones (the holder's record and server
 *   heartbeat expired and the claim itself is older than the expiry) — stale ones only while a
 *   leader exists or a new-cluster plan covers them (`mayTakeStale`);
 * - every live server counts: a live server heartbeat whose node holds no place (a gem
 *   server, a hand-started one) occupies one, so only `servers - held - placeless` places
 *   may be tried, the lowest first (concurrent deciders contend for the same keys). With no
 *   spare capacity the node is a client: it joins the live servers' cluster.
 */
export function decidePlace(input: PlaceInput): PlaceDecision {
  const current = new Map<number, PlaceClaim>();
  for (const c of input.claims) {
    if (c.place >= input.servers) continue;
    const cur = current.get(c.place);
    if (!cur || c.epoch > cur.epoch) current.set(c.place, c);
  }
  for (const c of current.values()) {
    if (c.node === input.node) return { kind: "hold", place: c.place, epoch: c.epoch };
  }
  if (input.held && input.held.place < input.servers) {
    const now = current.get(input.held.place);
    if (now && now.epoch > input.held.epoch) {
      return { kind: "lost", place: input.held.place, takenBy: now.node };
    }
  }
  const free: { place: number; epoch: number; why: "free" }[] = [];
  const stale: { place: number; epoch: number; why: "stale" }[] = [];
  let refused = 0;
  let why = "";
  for (let k = 0; k < input.servers; k++) {
    const c = current.get(k);
    if (!c) free.push({ place: k, epoch: 1, why: "free" });
    else if (isStale(c, input.liveServers, input.expirySeconds)) {
      const may = mayTakeStale({
        leaderKnown: input.leaderKnown ?? false,
        place: k,
        epoch: c.epoch,
        plans: input.plans ?? [],
        holderRecorded: input.recorded === undefined ||
          (c.node !== undefined && input.recorded.has(c.node)),
      });
      if (may.ok) stale.push({ place: k, epoch: c.epoch + 1, why: "stale" });
      else {
        refused++;
        why = may.why;
      }
    }
  }
  const placeless = placelessServers(input, current);
  const held =
    [...current.values()].filter((c) => !isStale(c, input.liveServers, input.expirySeconds)).length;
  const spare = Math.max(0, input.servers - held - placeless.length);
  const limit = <T>(attempts: T[]) => attempts.slice(0, spare);
  const extra = placeless.length > 0 ? { placeless } : {};
  if (refused > 0 && free.length === 0 && stale.length === 0 && spare > 0) {
    return { kind: "waiting", stale: refused, why };
  }
  return { kind: "claim", attempts: limit([...free, ...stale]), ...extra };
}

/**
 * Live servers (other than this node) that hold none of the current places: the gem's
 * servers (the gem never writes `slots/`), hand-started ones, or holders of places beyond
 * `servers`. Sorted by name.
 */
export function placelessServers(
  input: Pick<PlaceInput, "node" | "liveServers">,
  current: ReadonlyMap<number, PlaceClaim>,
): string[] {
  const holders = new Set([...current.values()].map((c) => c.node));
  return [...input.liveServers].filter((n) => n !== input.node && !holders.has(n)).sort();
}

export function isStale(c: PlaceClaim, live: ReadonlySet<string>, expirySeconds: number): boolean {
  const holderAlive = c.node !== undefined && live.has(c.node);
  return !holderAlive && c.ageSeconds > expirySeconds;
}

/**
 * The gem's advisory rule, for stores that ignore conditional writes (opt-in): be a server
 * when fewer than N live servers are seen, or when this node is already one of them.
 */
export function advisoryIsServer(
  node: string,
  servers: number,
  liveServers: ReadonlySet<string>,
): boolean {
  return liveServers.has(node) || liveServers.size < servers;
}
