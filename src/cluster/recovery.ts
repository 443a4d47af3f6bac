/**
 * Recovery decisions (docs/recovery.md). Pure functions only: when a stale place may be taken,
 * when a lost quorum is rebuilt with `raft/peers.json`, and what to do when every server is
 * lost. What they read (holder records, recovery plans) and its codecs are in records.ts; the
 * I/O is in holder.ts and quorum.ts.
 */
import {
  peersJson,
  type RecoveryPlan,
  type SeenPlan,
  type SeenRecord,
  type Survivor,
} from "./records.ts";

/** Default recovery wait, in expiry windows (the issue bounds it at 10). */
export const RECOVER_AFTER_EXPIRIES = 5;

export type ServersLostPolicy = "wait" | "new-cluster";

export const SERVERS_LOST_POLICIES: readonly ServersLostPolicy[] = ["wait", "new-cluster"];

// ---- who may take a stale place --------------------------------------------------------------

export interface TakeInput {
  /** A fresh holder record (or, for a running client, its own agent) knows a leader. */
  leaderKnown: boolean;
  place: number;
  /** The epoch of the stale claim. */
  epoch: number;
  plans: readonly RecoveryPlan[];
  /**
   * The holder ever wrote a holder record (default true). A holder that never did (junk, a
   * ghost, a node that died before its first tick) has no raft data to protect.
   */
  holderRecorded?: boolean;
}

/** Whether a stale place may be taken (docs/recovery.md, "Who may take a place"). */
export function mayTakeStale(i: TakeInput): { ok: boolean; why: string } {
  if (i.leaderKnown) return { ok: true, why: "a leader exists: replacing a lost server" };
  if (i.holderRecorded === false) {
    return { ok: true, why: "its holder never recorded itself as a server (no data to keep)" };
  }
  const plan = i.plans.find((p) =>
    p.kind === "new-cluster" && (p.places[String(i.place)] ?? -1) >= i.epoch
  );
  if (plan) return { ok: true, why: `new-cluster plan ${plan.n} (${plan.reason})` };
  return { ok: false, why: "no leader exists: a leaderless cluster's places are not taken" };
}

/**
 * True when a fresh record says its agent knows a leader — for at least `forSeconds`: a
 * leader that has just appeared (servers returning from an outage) gives the servers still on
 * their way time to write their records before their places count as stale.
 */
export function leaderInRecords(
  records: readonly SeenRecord[],
  expirySeconds: number,
  forSeconds = 0,
): boolean {
  return records.some((r) =>
    r.ageSeconds <= expirySeconds && r.raft.leader && (r.raft.leaderFor ?? 0) >= forSeconds
  );
}

// ---- quorum recovery (I4) ------------------------------------------------------------------

export interface RecoveryInput {
  node: string;
  autoRecover: boolean;
  expirySeconds: number;
  /** W: how long no leader must have been seen, continuously. */
  waitSeconds: number;
  /**
   * How long without a leader before servers that all came back on new addresses get their
   * addresses rewritten (nothing can be lost: every voter is in the plan). Default W.
   */
  movedWaitSeconds?: number;
  /** Seconds since this server last saw a leader (its agent or a fresh record). */
  leaderlessSeconds: number;
  leaderNow: boolean;
  /**
   * A leader known continuously for `movedWaitSeconds` (the local agent, or a fresh record's
   * `leaderFor`). Only the address rewrite looks at it: servers all back on new addresses elect
   * short-lived leaders through the addresses serf happens to resolve, and each steps down (or
   * removes itself: consul's "duplicate ID") within a second. Default: any leader is stable.
   */
  stableLeader?: boolean;
  /** Seconds since a stable leader was last seen. Default `leaderlessSeconds`. */
  stableLeaderlessSeconds?: number;
  self: { nodeId: string; address: string; lastIndex: number; lastTerm: number };
  /** Voters of this server's raft configuration (read locally, `?stale`). */
  voters: readonly { id: string; address: string }[];
  records: readonly SeenRecord[];
  plans: readonly SeenPlan[];
  /** The highest plan number this node applied (local state), 0 for none. */
  lastApplied: number;
  /** `recover --yes` by hand: no wait, no coordinator; the guards of I6 still hold. */
  manual?: boolean;
  /**
   * `-s`: how many places there are. Given, an address rewrite also names the fresh place
   * holders with raft data that are not voters of this configuration (`rewriteExtras`).
   */
  servers?: number;
}

export type RecoveryDecision =
  | { kind: "none"; why: string }
  | { kind: "wait"; why: string; remainingSeconds: number }
  | { kind: "publish"; plan: Omit<RecoveryPlan, "n">; lossWarning?: string }
  | { kind: "apply"; plan: RecoveryPlan; peers: string };

/** What a server does about a missing leader (I4, I6). */
export function decideRecovery(i: RecoveryInput): RecoveryDecision {
  const leader = i.leaderNow || leaderInRecords(i.records, i.expirySeconds);
  if (i.stableLeader ?? leader) return { kind: "none", why: "a leader exists" };
  if (i.voters.length === 0) return { kind: "none", why: "no raft configuration known yet" };
  const selfId = i.self.nodeId.toLowerCase();
  // A plan naming this node, newer than the last applied, fresh enough: carry it out.
  const pending = i.plans
    .filter((p) =>
      p.kind === "peers" && p.n > i.lastApplied &&
      p.ageSeconds <= Math.max(i.waitSeconds, 3 * i.expirySeconds) &&
      p.survivors.some((s) => s.nodeId === selfId && s.node === i.node)
    )
    .sort((a, b) => b.n - a.n)[0];
  // A published plan is carried out even with auto-recovery off: it was asked for (by hand,
  // or by a node that recovers automatically). Never while any leader is seen, even one of a
  // moment: a node that leads does not restart, so the others' rewrite would be partial —
  // seen: their configurations then differ from the leader's for good (docs/recovery.md).
  if (pending && !i.manual && !leader) {
    return { kind: "apply", plan: pending, peers: peersJson(pending.survivors) };
  }
  const fresh = new Map<string, SeenRecord>();
  for (const r of i.records) {
    if (r.ageSeconds <= i.expirySeconds && r.node !== i.node) fresh.set(r.nodeId, r);
  }
  const survivors: (Survivor & { lastIndex: number; lastTerm: number })[] = [];
  for (const v of i.voters) {
    const id = v.id.toLowerCase();
    if (id === selfId) {
      survivors.push({ ...i.self, node: i.node, nodeId: selfId });
      continue;
    }
    const r = fresh.get(id);
    if (r) {
      survivors.push({
        node: r.node,
        nodeId: id,
        address: r.address,
        lastIndex: r.raft.lastIndex,
        lastTerm: r.raft.lastTerm,
      });
    }
  }
  const quorum = Math.floor(i.voters.length / 2) + 1;
  if (!survivors.some((s) => s.nodeId === selfId)) {
    return { kind: "none", why: "this server is not a voter of its raft configuration" };
  }
  if (survivors.length >= quorum) return moved(i, survivors, leader);
  // Dropping voters (I4) never happens while any leader is seen, however briefly (I6).
  if (leader) return { kind: "none", why: "a leader exists" };
  const lost = `${survivors.length} of ${i.voters.length} voters alive, ${quorum} needed`;
  if (!i.autoRecover && !i.manual) {
    return { kind: "none", why: `quorum lost (${lost}); auto-recovery is off (--no-auto-recover)` };
  }
  if (i.leaderlessSeconds < i.waitSeconds && !i.manual) {
    return {
      kind: "wait",
      why: `quorum lost (${lost}): rebuilding from the survivors unless a leader appears`,
      remainingSeconds: i.waitSeconds - i.leaderlessSeconds,
    };
  }
  const recent = i.plans.find((p) => p.kind === "peers" && p.ageSeconds < i.waitSeconds);
  if (recent && !i.manual) {
    return { kind: "none", why: `recovery plan ${recent.n} is being carried out` };
  }
  const best =
    [...survivors].sort((a, b) =>
      b.lastTerm - a.lastTerm || b.lastIndex - a.lastIndex || (a.node < b.node ? -1 : 1)
    )[0];
  if (best.nodeId !== selfId && !i.manual) {
    return { kind: "none", why: `quorum lost (${lost}): ${best.node} coordinates the recovery` };
  }
  const survivorIndex = Math.max(...survivors.map((s) => s.lastIndex));
  const highestIndex = Math.max(survivorIndex, ...i.records.map((r) => r.raft.lastIndex));
  const plan = {
    kind: "peers" as const,
    by: i.node,
    reason: i.manual
      ? `recover --yes by hand on ${i.node} (${lost})`
      : `quorum lost for ${Math.round(i.leaderlessSeconds)} s (${lost})`,
    survivors: survivors.map(({ node, nodeId, address }) => ({ node, nodeId, address })),
    places: {},
    survivorIndex,
    highestIndex,
  };
  return {
    kind: "publish",
    plan,
    lossWarning: highestIndex > survivorIndex
      ? `raft entries ${
        survivorIndex + 1
      }..${highestIndex} were recorded by servers that are gone and may be lost`
      : undefined,
  };
}

// ---- all servers lost (I5) -----------------------------------------------------------------

export interface AllLostInput {
  policy: ServersLostPolicy;
  autoRecover: boolean;
  waitSeconds: number;
  /** Seconds since any holder was last heard of (record or server heartbeat); Infinity: never. */
  silentSeconds: number;
  /** Highest epoch per place now. */
  places: Record<string, number>;
  plans: readonly RecoveryPlan[];
}

export type AllLostDecision =
  | { kind: "wait"; why: string }
  | { kind: "publish"; plan: Omit<RecoveryPlan, "n"> };

/** What a node does when a cluster existed and no server of it is alive (I5). */
export function decideAllLost(i: AllLostInput, node: string): AllLostDecision {
  const covered = i.plans.some((p) =>
    p.kind === "new-cluster" &&
    Object.entries(i.places).every(([k, e]) => (p.places[k] ?? -1) >= e)
  );
  if (covered) return { kind: "wait", why: "a new-cluster plan covers every place" };
  if (i.policy === "wait") {
    return {
      kind: "wait",
      why: "every server is gone: waiting for a server with the cluster's data to return " +
        "(--servers-lost wait; `auto-consul recover --new-cluster` forms a new cluster)",
    };
  }
  if (!i.autoRecover) {
    return { kind: "wait", why: "every server is gone; auto-recovery is off (--no-auto-recover)" };
  }
  if (i.silentSeconds < i.waitSeconds) {
    return {
      kind: "wait",
      why: `every server is gone: a new cluster forms in ${
        Math.ceil(i.waitSeconds - i.silentSeconds)
      } s (--servers-lost new-cluster)`,
    };
  }
  return {
    kind: "publish",
    plan: {
      kind: "new-cluster",
      by: node,
      reason: `no server alive for ${Math.round(i.silentSeconds)} s (--servers-lost new-cluster)`,
      survivors: [],
      places: { ...i.places },
      survivorIndex: 0,
      highestIndex: 0,
    },
  };
}

/** "ip:8300" or "[v6]:8300" → the IP. */
function hostOf(addr: string): string {
  const m = /^\[(.+)\]:\d+$/.exec(addr) ?? /^(.+):\d+$/.exec(addr);
  return (m ? m[1] : addr).toLowerCase();
}

/**
 * A majority is alive and still no leader. When every voter is alive but some on a new
 * address (servers back on new addresses: raft still dials the old ones), the addresses are
 * rewritten with peers.json — every voter kept, nothing lost. Otherwise: an election (I6).
 */
function moved(
  i: RecoveryInput,
  survivors: readonly (Survivor & { lastIndex: number; lastTerm: number })[],
  leader: boolean,
): RecoveryDecision {
  const at = new Map(i.voters.map((v) => [v.id.toLowerCase(), hostOf(v.address)]));
  const movedOnes = survivors.filter((s) => at.get(s.nodeId) !== s.address.toLowerCase());
  if (movedOnes.length === 0 || survivors.length < i.voters.length) {
    if (leader) return { kind: "none", why: "a leader exists" };
    return {
      kind: "none",
      why: `${survivors.length} of ${i.voters.length} voters are alive (a quorum): ` +
        `an election, not a lost quorum`,
    };
  }
  const names = movedOnes.map((s) => s.node).join(", ");
  if (!i.autoRecover && !i.manual) {
    return { kind: "none", why: `servers on new addresses (${names}); auto-recovery is off` };
  }
  const wait = i.movedWaitSeconds ?? i.waitSeconds;
  const leaderless = i.stableLeaderlessSeconds ?? i.leaderlessSeconds;
  if (leaderless < wait && !i.manual) {
    return {
      kind: "wait",
      why: `servers back on new addresses (${names}): rewriting raft's addresses unless a ` +
        `leader appears`,
      remainingSeconds: wait - leaderless,
    };
  }
  if (i.plans.some((p) => p.kind === "peers" && p.ageSeconds < wait) && !i.manual) {
    return { kind: "none", why: "a recovery plan is being carried out" };
  }
  const best =
    [...survivors].sort((a, b) =>
      b.lastTerm - a.lastTerm || b.lastIndex - a.lastIndex || (a.node < b.node ? -1 : 1)
    )[0];
  if (best.nodeId !== i.self.nodeId.toLowerCase() && !i.manual) {
    return {
      kind: "none",
      why: `servers on new addresses: ${best.node} rewrites raft's addresses`,
    };
  }
  const extra = rewriteExtras(i, survivors);
  const all = [...survivors, ...extra.added];
  const index = Math.max(...all.map((s) => s.lastIndex));
  return {
    kind: "publish",
    plan: {
      kind: "peers",
      by: i.node,
      reason: `every voter is alive but ${names} on new addresses, no stable leader for ${
        Math.round(leaderless)
      } s${extra.added.length ? `; place holders ${extra.added.map((s) => s.node)} added` : ""}${
        extra.left.length ? `; left to consul: ${extra.left.join(", ")}` : ""
      }`,
      survivors: all.map(({ node, nodeId, address }) => ({ node, nodeId, address })),
      places: {},
      survivorIndex: index,
      highestIndex: index,
    },
  };
}

type Progressed = Survivor & { lastIndex: number; lastTerm: number };

const behind = (a: Progressed, b: Progressed) =>
  a.lastTerm < b.lastTerm || (a.lastTerm === b.lastTerm && a.lastIndex < b.lastIndex);

/**
 * The place holders an address rewrite names besides the voters (docs/recovery.md, "place
 * holders in a rewrite"): fresh records with raft data (lastIndex > 0) of nodes that are not
 * voters of this configuration — a leader of a moment removed them (consul's reap of a server
 * not yet in serf, or its "duplicate ID" fix) — one per place (highest epoch), places < `-s`,
 * never more than `-s` in all (I1). A lagging one (its log behind the best voter's) is named
 * only while the voters that hold every committed entry stay a part of every majority of the
 * new configuration; otherwise it is left to consul (its leader adds it back).
 */
export function rewriteExtras(
  i: RecoveryInput,
  voters: readonly Progressed[],
): { added: Progressed[]; left: string[] } {
  const none = { added: [], left: [] };
  if (i.servers === undefined) return none;
  const ids = new Set(voters.map((v) => v.nodeId));
  const byPlace = new Map<number, SeenRecord>();
  for (const r of i.records) {
    if (r.ageSeconds > i.expirySeconds || r.place >= i.servers) continue;
    const had = byPlace.get(r.place);
    if (!had || r.epoch > had.epoch) byPlace.set(r.place, r);
  }
  const candidates: Progressed[] = [...byPlace.values()]
    .filter((r) => !ids.has(r.nodeId) && r.node !== i.node && r.raft.lastIndex > 0)
    .map((r) => ({
      node: r.node,
      nodeId: r.nodeId,
      address: r.address,
      lastIndex: r.raft.lastIndex,
      lastTerm: r.raft.lastTerm,
    }));
  if (candidates.length === 0) return none;
  if (voters.length + candidates.length > i.servers) {
    return { added: [], left: candidates.map((c) => `${c.node} (more than -s ${i.servers})`) };
  }
  const best = [...voters].sort((a, b) => behind(a, b) ? 1 : behind(b, a) ? -1 : 0)[0];
  const lagging = candidates.filter((c) => behind(c, best));
  const complete = candidates.filter((c) => !behind(c, best));
  // Voters missing a committed entry: at most |C| - majority(C). With the lagging ones, they
  // must stay fewer than a majority of the new configuration.
  const majority = (n: number) => Math.floor(n / 2) + 1;
  const incomplete = voters.length - majority(voters.length);
  if (incomplete + lagging.length < majority(voters.length + candidates.length)) {
    return { added: candidates, left: [] };
  }
  return { added: complete, left: lagging.map((c) => `${c.node} (its log is behind)`) };
}
