/**
 * The consul HTTP API's data as auto-consul sees it: the types the client returns and takes
 * (see client.ts for the conventions; the decoders from consul's JSON are in decode.ts).
 */

/** Options every call takes. */
export interface CallOptions {
  signal?: AbortSignal;
  /** Overrides the client's timeout for this call. */
  timeoutMs?: number;
}

/** Options of a blocking query: returns when the data's index passes `index`, or after `waitMs`. */
export interface BlockingOptions extends CallOptions {
  index?: number;
  /** Longest wait in ms (consul caps it at 10 minutes; default 5 minutes when `index` is set). */
  waitMs?: number;
}

/** The agent's own identity, from GET /v1/agent/self. */
export interface AgentSelf {
  node: string;
  nodeId: string;
  datacenter: string;
  version: string;
  /** Config.Server */
  isServer: boolean;
  /** Member.Addr: the address other agents reach this one at (LAN gossip). */
  memberAddr: string;
  memberPort: number;
  /** DebugConfig.AdvertiseAddrLAN / AdvertiseAddrWAN / BindAddr (absent without agent:read). */
  advertiseAddr?: string;
  advertiseAddrWan?: string;
  bindAddr?: string;
  raw: Record<string, unknown>;
}

export type MemberStatus = "none" | "alive" | "leaving" | "left" | "failed";
export const MEMBER_STATUS: readonly MemberStatus[] = [
  "none",
  "alive",
  "leaving",
  "left",
  "failed",
];

/** A serf member, from GET /v1/agent/members. */
export interface SerfMember {
  name: string;
  addr: string;
  port: number;
  status: MemberStatus;
  statusCode: number;
  /** Tags.role === "consul" */
  isServer: boolean;
  tags: Record<string, string>;
}

export interface RaftServer {
  id: string;
  node: string;
  /** "ip:8300" */
  address: string;
  leader: boolean;
  voter: boolean;
  protocolVersion: string;
}

export interface RaftConfiguration {
  servers: RaftServer[];
  index: number;
}

/** One server in GET /v1/operator/autopilot/health. */
export interface AutopilotServerHealth {
  id: string;
  name: string;
  address: string;
  version: string;
  leader: boolean;
  voter: boolean;
  healthy: boolean;
  /** A Go duration ("12.3ms"), "" when absent. */
  lastContact: string;
  serfStatus: string;
}

export interface AutopilotHealth {
  healthy: boolean;
  failureTolerance: number;
  servers: AutopilotServerHealth[];
}

/** A node in the catalog (GET /v1/catalog/nodes). */
export interface CatalogNode {
  id: string;
  node: string;
  address: string;
}

export interface KvEntry {
  key: string;
  /** The value as UTF-8 text ("" for an empty value). */
  value: string;
  flags: number;
  /** The session holding the lock on this key, if any. */
  session?: string;
  lockIndex: number;
  createIndex: number;
  modifyIndex: number;
}

export interface KvGetResult {
  /** The entry, undefined when the key does not exist. */
  entry?: KvEntry;
  /** Shortcut for entry?.value. */
  value?: string;
  /** Shortcut for entry?.session. */
  session?: string;
  /** X-Consul-Index: pass it back as `index` to block until the key changes. */
  index: number;
}

export interface KvPutOptions extends CallOptions {
  /** Acquire the lock on the key for this session (returns false when held by another). */
  acquire?: string;
  /** Release the lock held by this session. */
  release?: string;
  /** Check-and-set: write only if ModifyIndex equals this (0: only if the key is absent). */
  cas?: number;
  flags?: number;
}

export type SessionBehavior = "release" | "delete";

export interface SessionCreateOptions extends CallOptions {
  name?: string;
  /** Node, or node and service check IDs the session is bound to. Omitted: ["serfHealth"]. */
  checks?: string[];
  /** Node check IDs only (Consul ≥ 1.7); when given with serviceChecks, `checks` may be omitted. */
  nodeChecks?: string[];
  /** Service checks of services on the session's node (Consul ≥ 1.7). */
  serviceChecks?: { id: string; namespace?: string }[];
  /** TTL in ms (consul: 10 s to 24 h); none when omitted. */
  ttlMs?: number;
  /** Lock delay in ms (consul default 15 s; 0 turns it off). */
  lockDelayMs?: number;
  behavior?: SessionBehavior;
  /** Node the session belongs to (default: the agent's node). */
  node?: string;
}

export interface SessionInfo {
  id: string;
  name: string;
  node: string;
  checks: string[];
  nodeChecks: string[];
  serviceChecks: { id: string; namespace?: string }[];
  /** "" when the session has no TTL. */
  ttl: string;
  /** Nanoseconds, as consul reports it. */
  lockDelayNs: number;
  behavior: SessionBehavior;
  createIndex: number;
  raw: Record<string, unknown>;
}

/** Weights of a service for DNS SRV answers. */
export interface ServiceWeights {
  Passing: number;
  Warning: number;
}

/**
 * A service as the local agent holds it (GET /v1/agent/service/:id), consul's own JSON.
 * Turn it back into a registration with `registrationOf` (the name is `Service` here).
 */
export interface AgentService {
  ID: string;
  Service: string;
  Tags?: string[] | null;
  Meta?: Record<string, string> | null;
  Port?: number;
  Address?: string;
  Weights?: ServiceWeights;
  EnableTagOverride?: boolean;
  ContentHash?: string;
  [field: string]: unknown;
}

/** A check definition inside a service registration (consul's JSON). */
export interface ServiceCheckDefinition {
  CheckID?: string;
  Name?: string;
  TTL?: string;
  HTTP?: string;
  TCP?: string;
  Args?: string[];
  Interval?: string;
  Timeout?: string;
  Status?: string;
  DeregisterCriticalServiceAfter?: string;
  [field: string]: unknown;
}

/** Body of PUT /v1/agent/service/register (consul's JSON); every field round-trips. */
export interface ServiceRegistration {
  Name: string;
  ID?: string;
  Tags?: string[] | null;
  Meta?: Record<string, string> | null;
  Port?: number;
  Address?: string;
  Weights?: ServiceWeights;
  EnableTagOverride?: boolean;
  Check?: ServiceCheckDefinition;
  Checks?: ServiceCheckDefinition[];
  [field: string]: unknown;
}

export interface ServiceRegisterOptions extends CallOptions {
  /**
   * Delete the service's checks missing from this definition. Default false: consul keeps
   * the checks already registered for the service, so a re-registration that only changes
   * tags does not need the checks.
   */
  replaceExistingChecks?: boolean;
}

export type CheckStatus = "passing" | "warning" | "critical" | "maintenance";

/** A health check, from the agent's or the catalog's view. */
export interface Check {
  node: string;
  checkId: string;
  name: string;
  status: CheckStatus;
  output: string;
  serviceId: string;
  serviceName: string;
  type: string;
}

/** One instance of a service with its node and checks (health and prepared query answers). */
export interface ServiceEntry {
  node: string;
  nodeAddress: string;
  service: {
    id: string;
    name: string;
    tags: string[];
    address: string;
    port: number;
    meta: Record<string, string>;
  };
  checks: Check[];
  raw: Record<string, unknown>;
}

export interface HealthServiceOptions extends BlockingOptions {
  /** Only instances whose checks all pass. */
  passing?: boolean;
  tag?: string;
}

/** The service part of a prepared query (consul's JSON). */
export interface PreparedQueryService {
  Service: string;
  Tags?: string[] | null;
  OnlyPassing?: boolean;
  Near?: string;
  Failover?: { NearestN?: number; Datacenters?: string[] | null };
  IgnoreCheckIDs?: string[] | null;
  NodeMeta?: Record<string, string> | null;
  ServiceMeta?: Record<string, string> | null;
  [field: string]: unknown;
}

/** Body of POST /v1/query and PUT /v1/query/:id (consul's JSON). */
export interface PreparedQueryDefinition {
  Name?: string;
  Session?: string;
  Token?: string;
  Service: PreparedQueryService;
  DNS?: { TTL?: string };
  Template?: { Type?: string; Regexp?: string; RemoveEmptyTags?: boolean };
  [field: string]: unknown;
}

/** A stored prepared query (GET /v1/query). */
export interface PreparedQuery extends PreparedQueryDefinition {
  ID: string;
  CreateIndex: number;
  ModifyIndex: number;
}

export interface PreparedQueryResult {
  service: string;
  datacenter: string;
  failovers: number;
  nodes: ServiceEntry[];
}

/** Autopilot settings (consul's JSON, GET/PUT /v1/operator/autopilot/configuration). */
export interface AutopilotConfiguration {
  CleanupDeadServers: boolean;
  LastContactThreshold: string;
  MaxTrailingLogs: number;
  MinQuorum: number;
  ServerStabilizationTime: string;
  RedundancyZoneTag?: string;
  DisableUpgradeMigration?: boolean;
  UpgradeVersionTag?: string;
  CreateIndex?: number;
  ModifyIndex?: number;
  [field: string]: unknown;
}

/**
 * The index to pass to the next blocking query, per consul's guidance: reset to 0 when the
 * index went backwards (e.g. after a snapshot restore) and never go below 1 once seen.
 */
export function nextBlockingIndex(previous: number, returned: number): number {
  if (returned < previous) return 0;
  return Math.max(returned, 1);
}

/**
 * The registration that re-creates a service read with `agentService`: `Service` becomes
 * `Name`, `ContentHash` is dropped, every other field is kept as is.
 */
export function registrationOf(service: AgentService): ServiceRegistration {
  const { Service, ContentHash: _hash, ...rest } = service;
  return { ...rest, Name: Service };
}
