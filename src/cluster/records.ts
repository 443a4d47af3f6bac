/**
 * What the registry holds for recovery (docs/recovery.md): each place holder's record
 * (`holders/<node>`), recovery plans (`recovery/<n>`) and the cluster-formed mark, with their
 * keys and their codecs (a bad body reads as absent), and raft's `peers.json`. Pure; the
 * decisions on them are in recovery.ts.
 */
import { parseJoinAddress } from "../registry/layout.ts";
import { nodeNameProblem } from "../util/validate.ts";

export const HOLDERS_DIR = "holders";

export const RECOVERY_DIR = "recovery";

export const CLUSTER_FORMED_KEY = "cluster/formed";

/** Largest record or plan body read. */
export const MAX_RECORD_BODY = 4096;

/** Consul's server RPC port: raft addresses are `IP:8300`. */
export const RAFT_PORT = 8300;

/** What a server writes about itself every tick (`holders/<node>`). */
export interface HolderRecord {
  node: string;
  /** consul's node-id (a UUID). */
  nodeId: string;
  /** The join IP (raft address is `address:8300`). */
  address: string;
  place: number;
  epoch: number;
  raft: {
    /** consul's raft state: Leader, Follower, Candidate, Shutdown. */
    state: string;
    lastIndex: number;
    lastTerm: number;
    /** Its agent named a leader when the record was written. */
    leader: boolean;
    /** For how many seconds, continuously, its agent has named a leader (0: none). */
    leaderFor?: number;
  };
}

/** A record as read, with its age on the store's clock. */
export interface SeenRecord extends HolderRecord {
  ageSeconds: number;
}

export function holderKey(node: string): string {
  return `${HOLDERS_DIR}/${node}`;
}

export function recoveryKey(n: number): string {
  return `${RECOVERY_DIR}/${String(n).padStart(10, "0")}`;
}

export function parseRecoveryKey(key: string): number | undefined {
  const m = /^recovery\/(\d{10})$/.exec(key);
  return m ? Number(m[1]) : undefined;
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const isCount = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;

/** Parses a holder record; undefined when it is not one (registry contents are untrusted). */
export function parseHolderRecord(text: string | undefined): HolderRecord | undefined {
  const v = parseJson(text);
  if (!v) return undefined;
  const raft = v.raft as Record<string, unknown> | undefined;
  if (
    typeof v.node !== "string" || nodeNameProblem(v.node) !== undefined ||
    typeof v.nodeId !== "string" || !UUID_RE.test(v.nodeId) ||
    typeof v.address !== "string" || parseJoinAddress(v.address) === undefined ||
    !isCount(v.place) || !isCount(v.epoch) || typeof raft !== "object" || raft === null ||
    typeof raft.state !== "string" || !/^[A-Za-z]{1,20}$/.test(raft.state) ||
    !isCount(raft.lastIndex) || !isCount(raft.lastTerm) || typeof raft.leader !== "boolean"
  ) return undefined;
  return {
    node: v.node,
    nodeId: v.nodeId.toLowerCase(),
    address: parseJoinAddress(v.address)!,
    place: v.place,
    epoch: v.epoch,
    raft: {
      state: raft.state,
      lastIndex: raft.lastIndex,
      lastTerm: raft.lastTerm,
      leader: raft.leader,
      leaderFor: isCount(raft.leaderFor) ? raft.leaderFor : 0,
    },
  };
}

export function encodeHolderRecord(r: HolderRecord): string {
  return JSON.stringify({ v: 1, ...r });
}

/** One server named by a plan. */
export interface Survivor {
  node: string;
  nodeId: string;
  address: string;
}

export interface RecoveryPlan {
  n: number;
  /** peers: rebuild raft from the survivors; new-cluster: stale places may be taken (I5). */
  kind: "peers" | "new-cluster";
  by: string;
  reason: string;
  survivors: Survivor[];
  /** Each place's highest epoch when the plan was made: those claims may be replaced. */
  places: Record<string, number>;
  survivorIndex: number;
  highestIndex: number;
}

export interface SeenPlan extends RecoveryPlan {
  ageSeconds: number;
}

export function encodePlan(p: Omit<RecoveryPlan, "n">): string {
  return JSON.stringify({ v: 1, ...p });
}

/** Parses a plan read at `recovery/<n>`; undefined when malformed. */
export function parsePlan(n: number, text: string | undefined): RecoveryPlan | undefined {
  const v = parseJson(text);
  if (!v || (v.kind !== "peers" && v.kind !== "new-cluster")) return undefined;
  if (typeof v.by !== "string" || typeof v.reason !== "string" || v.reason.length > 1000) {
    return undefined;
  }
  if (!Array.isArray(v.survivors) || v.survivors.length > 100) return undefined;
  const survivors: Survivor[] = [];
  for (const s of v.survivors as Record<string, unknown>[]) {
    if (
      typeof s?.node !== "string" || nodeNameProblem(s.node) !== undefined ||
      typeof s.nodeId !== "string" || !UUID_RE.test(s.nodeId) ||
      typeof s.address !== "string" || parseJoinAddress(s.address) === undefined
    ) return undefined;
    survivors.push({
      node: s.node,
      nodeId: s.nodeId.toLowerCase(),
      address: parseJoinAddress(s.address)!,
    });
  }
  const places: Record<string, number> = {};
  if (typeof v.places !== "object" || v.places === null) return undefined;
  for (const [k, e] of Object.entries(v.places as Record<string, unknown>)) {
    if (!/^\d{1,2}$/.test(k) || !isCount(e)) return undefined;
    places[k] = e;
  }
  return {
    n,
    kind: v.kind,
    by: v.by.slice(0, 128),
    reason: v.reason,
    survivors,
    places,
    survivorIndex: isCount(v.survivorIndex) ? v.survivorIndex : 0,
    highestIndex: isCount(v.highestIndex) ? v.highestIndex : 0,
  };
}

/** `raft/peers.json` (raft protocol 3) for the given servers. */
export function peersJson(survivors: readonly Survivor[]): string {
  const list = survivors.map((s) => ({
    id: s.nodeId,
    address: s.address.includes(":") ? `[${s.address}]:${RAFT_PORT}` : `${s.address}:${RAFT_PORT}`,
    non_voter: false,
  }));
  return JSON.stringify(list, null, 2) + "\n";
}

function parseJson(text: string | undefined): Record<string, unknown> | undefined {
  if (text === undefined || text.length > MAX_RECORD_BODY) return undefined;
  try {
    const v = JSON.parse(text);
    return typeof v === "object" && v !== null && !Array.isArray(v) ? v : undefined;
  } catch {
    return undefined;
  }
}
