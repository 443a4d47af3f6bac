/**
 * Pure decoders of consul's JSON answers into the summaries of `types.ts` (camelCase, with
 * `raw` where a caller may need a field not typed there).
 */
import {
  type AgentSelf,
  type AutopilotHealth,
  type Check,
  type CheckStatus,
  type KvEntry,
  MEMBER_STATUS,
  type RaftConfiguration,
  type SerfMember,
  type ServiceEntry,
  type SessionInfo,
} from "./types.ts";

const decoder = new TextDecoder();

/** GET /v1/agent/self's answer. */
export function agentSelf(raw: Record<string, unknown>): AgentSelf {
  const config = obj(raw.Config);
  const member = obj(raw.Member);
  const debug = raw.DebugConfig ? obj(raw.DebugConfig) : undefined;
  return {
    node: str(config.NodeName),
    nodeId: str(config.NodeID),
    datacenter: str(config.Datacenter),
    version: str(config.Version),
    isServer: config.Server === true,
    memberAddr: str(member.Addr),
    memberPort: num(member.Port),
    advertiseAddr: optStr(debug?.AdvertiseAddrLAN),
    advertiseAddrWan: optStr(debug?.AdvertiseAddrWAN),
    bindAddr: optStr(debug?.BindAddr),
    raw,
  };
}

/** One entry of GET /v1/agent/members. */
export function serfMember(m: Record<string, unknown>): SerfMember {
  const tags = (m.Tags ?? {}) as Record<string, string>;
  const statusCode = num(m.Status);
  return {
    name: str(m.Name),
    addr: str(m.Addr),
    port: num(m.Port),
    status: MEMBER_STATUS[statusCode] ?? "none",
    statusCode,
    isServer: tags.role === "consul",
    tags,
  };
}

/** GET /v1/operator/raft/configuration's answer. */
export function raftConfiguration(raw: Record<string, unknown>): RaftConfiguration {
  const servers = ((raw.Servers ?? []) as Record<string, unknown>[]).map((s) => ({
    id: str(s.ID),
    node: str(s.Node),
    address: str(s.Address),
    leader: s.Leader === true,
    voter: s.Voter === true,
    protocolVersion: str(s.ProtocolVersion),
  }));
  return { servers, index: num(raw.Index) };
}

/** GET /v1/operator/autopilot/health's answer. */
export function autopilotHealth(raw: Record<string, unknown>): AutopilotHealth {
  return {
    healthy: raw.Healthy === true,
    failureTolerance: num(raw.FailureTolerance),
    servers: ((raw.Servers ?? []) as Record<string, unknown>[]).map((s) => ({
      id: str(s.ID),
      name: str(s.Name),
      address: str(s.Address),
      version: str(s.Version),
      leader: s.Leader === true,
      voter: s.Voter === true,
      healthy: s.Healthy === true,
      lastContact: str(s.LastContact),
      serfStatus: str(s.SerfStatus),
    })),
  };
}

export function kvEntry(e: Record<string, unknown>): KvEntry {
  const b64 = typeof e.Value === "string" ? e.Value : "";
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  return {
    key: str(e.Key),
    value: decoder.decode(bytes),
    flags: num(e.Flags),
    session: optStr(e.Session),
    lockIndex: num(e.LockIndex),
    createIndex: num(e.CreateIndex),
    modifyIndex: num(e.ModifyIndex),
  };
}

export function sessionInfo(s: Record<string, unknown>): SessionInfo {
  const ids = (v: unknown) => (Array.isArray(v) ? v.map(String) : []);
  const serviceChecks = Array.isArray(s.ServiceChecks)
    ? (s.ServiceChecks as Record<string, unknown>[]).map((c) => ({
      id: str(c.ID),
      namespace: optStr(c.Namespace),
    }))
    : [];
  return {
    id: str(s.ID),
    name: str(s.Name),
    node: str(s.Node),
    checks: ids(s.Checks),
    nodeChecks: ids(s.NodeChecks),
    serviceChecks,
    ttl: str(s.TTL),
    lockDelayNs: num(s.LockDelay),
    behavior: s.Behavior === "delete" ? "delete" : "release",
    createIndex: num(s.CreateIndex),
    raw: s,
  };
}

export function check(c: Record<string, unknown>): Check {
  return {
    node: str(c.Node),
    checkId: str(c.CheckID),
    name: str(c.Name),
    status: str(c.Status) as CheckStatus,
    output: str(c.Output),
    serviceId: str(c.ServiceID),
    serviceName: str(c.ServiceName),
    type: str(c.Type),
  };
}

export function serviceEntry(e: Record<string, unknown>): ServiceEntry {
  const node = obj(e.Node);
  const svc = obj(e.Service);
  return {
    node: str(node.Node),
    nodeAddress: str(node.Address),
    service: {
      id: str(svc.ID),
      name: str(svc.Service),
      tags: Array.isArray(svc.Tags) ? svc.Tags.map(String) : [],
      address: str(svc.Address),
      port: num(svc.Port),
      meta: (svc.Meta ?? {}) as Record<string, string>,
    },
    checks: ((e.Checks ?? []) as Record<string, unknown>[]).map(check),
    raw: e,
  };
}

export function obj(v: unknown): Record<string, unknown> {
  return v && typeof v === "object" ? v as Record<string, unknown> : {};
}
export function str(v: unknown): string {
  return typeof v === "string" ? v : "";
}
export function optStr(v: unknown): string | undefined {
  return typeof v === "string" && v !== "" ? v : undefined;
}
export function num(v: unknown): number {
  return typeof v === "number" ? v : 0;
}
