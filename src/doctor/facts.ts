/**
 * What `doctor` looks at, as plain data. `gather.ts` fills it (registry, local agent, data
 * dir); the checks in `checks_*.ts` read only this, so every finding is a pure function with
 * table tests.
 */
import type { PlaceClaim } from "../cluster/places.ts";
import type {
  AutopilotHealth,
  CatalogNode,
  RaftConfiguration,
  SerfMember,
} from "../consul/types.ts";
import type { Heartbeat } from "../registry/heartbeats.ts";

export type Severity = "critical" | "warning" | "info";

/** Every finding doctor can report; each has a README heading under "Doctor findings". */
export const FINDING_IDS = [
  "no-leader",
  "raft-voter-not-in-serf",
  "raft-voter-failed",
  "raft-address-mismatch",
  "peer-set-degenerate",
  "too-many-voters",
  "too-few-live-servers",
  "bootstrap-expect-differs",
  "version-mismatch",
  "autopilot-unhealthy",
  "place-holder-dead",
  "server-without-place",
  "client-with-server-data",
  "name-conflict",
  "catalog-reserved",
  "leave-on-signal",
  "no-gossip-encryption",
  "peers-json-pending",
  "agent-unreachable",
  "registry-unreadable",
] as const;

export type FindingId = typeof FINDING_IDS[number];

export interface Finding {
  /** Stable id, also the README heading under "Outages › Doctor findings". */
  id: FindingId;
  severity: Severity;
  /** One sentence: what is wrong. */
  title: string;
  /** What was read that shows it (one line each). */
  evidence: string[];
  /** The exact next step: a command, or the README section. */
  next: string;
}

export interface RegistryFacts {
  servers: Heartbeat[];
  agents: Heartbeat[];
  /** Address from each node's freshest heartbeat. */
  addresses: Map<string, string>;
  /** Latest claim of each place. */
  claims: PlaceClaim[];
}

/** The local agent's own view (GET /v1/agent/self), the fields doctor needs. */
export interface SelfFacts {
  node: string;
  nodeId: string;
  isServer: boolean;
  version: string;
  /** Stats.raft.state: "Leader", "Follower", "Candidate" (servers only). */
  raftState?: string;
  /** Stats.raft.last_contact: a Go duration or "never" (servers only). */
  lastContact?: string;
  /** Stats.serf_lan.encrypted. */
  encrypted?: boolean;
  /** DebugConfig (absent without agent:read). */
  leaveOnTerm?: boolean;
  skipLeaveOnInt?: boolean;
  bootstrapExpect?: number;
  bootstrap?: boolean;
  dataDir?: string;
}

export interface AgentFacts {
  self: SelfFacts;
  members: SerfMember[];
  raft?: RaftConfiguration;
  /** "api": the raft API; "agent-stats": a server's own copy (the API refused: no leader). */
  raftSource?: "api" | "agent-stats";
  raftError?: string;
  /** "ip:port"; "" when there is no leader; undefined when not read. */
  leaderAddress?: string;
  /** Read only when there is a leader. */
  autopilot?: AutopilotHealth;
  catalog?: CatalogNode[];
}

/** A consul data dir on this machine (`raft/`, `node-id`, `serf/` snapshot). */
export interface DataDirFacts {
  path: string;
  /** raft/raft.db exists: this dir holds server raft data. */
  raftDb: boolean;
  /** raft/peers.json as text, when present (a recovery not yet ingested). */
  peersJson?: string;
  nodeId?: string;
  /** The last lines of serf/local.snapshot (its last 64 KiB). */
  serfSnapshotTail?: string[];
}

export interface LocalFacts {
  /** auto-consul's data dir (-d). */
  dataDir: string;
  /** The recorded mode (`<data-dir>/mode`). */
  mode?: "server" | "agent";
  /** The consul data dir of server mode, when it exists. */
  serverData?: DataDirFacts;
}

export interface DoctorFacts {
  /** -s */
  servers: number;
  expirySeconds: number;
  registry: RegistryFacts | { error: string };
  agent: AgentFacts | { error: string };
  local: LocalFacts;
}

export function hasRegistry(f: DoctorFacts): f is DoctorFacts & { registry: RegistryFacts } {
  return !("error" in f.registry);
}

export function hasAgent(f: DoctorFacts): f is DoctorFacts & { agent: AgentFacts } {
  return !("error" in f.agent);
}

/** Where the README explains a finding. */
export function readmeRef(id: FindingId): string {
  return `README.md, "Outages" › "Doctor findings" › \`${id}\``;
}

/**
 * The advice for a lost quorum: `auto-consul recover` (issue 10), or the same by hand.
 * `run` also recovers by itself after --recover-after unless --no-auto-recover.
 */
export const RECOVER_ADVICE =
  "on a surviving server run `auto-consul recover --dry-run` to see the plan, then " +
  "`auto-consul recover --yes` (`run` does it by itself after --recover-after unless " +
  `--no-auto-recover); by hand: peers.json on every server, ${readmeRef("no-leader")}`;
