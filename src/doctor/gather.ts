/**
 * Fetches everything `doctor` looks at (adapters only; `diagnose` decides): the registry's
 * heartbeats and places, the local agent (self, members, raft configuration with `?stale`,
 * leader, autopilot health when there is a leader, catalog nodes), and this machine's server
 * data dir. A source that fails becomes `{ error }`, not a crash: doctor reports it.
 */
import { readClaims } from "../cluster/decision_view.ts";
import { MAX_PLACES, readAgentView, readRegistryView } from "../cluster/observe.ts";
import { readMode } from "../cluster/state.ts";
import type { ConsulClient } from "../consul/client.ts";
import type { AgentSelf } from "../consul/types.ts";
import { describe } from "../errors.ts";
import type { Logger } from "../log.ts";
import type { Registry } from "../registry/registry.ts";
import type { AgentFacts, DataDirFacts, DoctorFacts, LocalFacts, SelfFacts } from "./facts.ts";
import { AGENT_CALL_MS } from "../cluster/observe.ts";

/** The fields of GET /v1/agent/self that doctor needs (pure). */
export function selfFacts(self: AgentSelf): SelfFacts {
  const raw = self.raw;
  const stats = obj(raw.Stats);
  const raft = obj(stats.raft);
  const serf = obj(stats.serf_lan);
  const debug = obj(raw.DebugConfig);
  return {
    node: self.node,
    nodeId: self.nodeId,
    isServer: self.isServer,
    version: self.version,
    raftState: typeof raft.state === "string" ? raft.state : undefined,
    lastContact: typeof raft.last_contact === "string" ? raft.last_contact : undefined,
    encrypted: serf.encrypted === "true" ? true : serf.encrypted === "false" ? false : undefined,
    leaveOnTerm: typeof debug.LeaveOnTerm === "boolean" ? debug.LeaveOnTerm : undefined,
    skipLeaveOnInt: typeof debug.SkipLeaveOnInt === "boolean" ? debug.SkipLeaveOnInt : undefined,
    bootstrapExpect: typeof debug.BootstrapExpect === "number" ? debug.BootstrapExpect : undefined,
    bootstrap: typeof debug.Bootstrap === "boolean" ? debug.Bootstrap : undefined,
    dataDir: typeof debug.DataDir === "string" && debug.DataDir ? debug.DataDir : undefined,
  };
}

async function gatherAgent(
  consul: ConsulClient,
  log: Logger,
): Promise<AgentFacts | { error: string }> {
  const opts = { timeoutMs: AGENT_CALL_MS };
  let self: AgentSelf;
  try {
    self = await consul.self(opts);
  } catch (err) {
    return { error: describe(err) };
  }
  const [view, catalog] = await Promise.all([
    readAgentView(consul, log).catch((err) => ({ error: describe(err) })),
    consul.catalogNodes({ ...opts, stale: true }).catch((err) => {
      log.debug("catalog not read", { error: describe(err) });
      return undefined;
    }),
  ]);
  if (view === undefined) return { error: `consul at ${consul.address} stopped answering` };
  if ("error" in view) return view;
  let autopilot;
  if (view.leaderAddress) {
    autopilot = await consul.autopilotHealth(opts).catch((err) => {
      log.debug("autopilot health not read", { error: describe(err) });
      return undefined;
    });
  }
  return { self: selfFacts(self), ...view, autopilot, catalog };
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound || err instanceof Deno.errors.NotADirectory) {
      return false;
    }
    throw err;
  }
}

async function readIfPresent(path: string, max = 64 * 1024): Promise<string | undefined> {
  try {
    const bytes = await Deno.readFile(path);
    return new TextDecoder().decode(bytes.subarray(Math.max(0, bytes.length - max)));
  } catch (err) {
    if (err instanceof Deno.errors.NotFound || err instanceof Deno.errors.NotADirectory) {
      return undefined;
    }
    throw err;
  }
}

/** A consul data dir: raft/raft.db, raft/peers.json, node-id, the serf snapshot's tail. */
export async function readDataDir(path: string): Promise<DataDirFacts | undefined> {
  if (!(await exists(path))) return undefined;
  const snapshot = await readIfPresent(`${path}/serf/local.snapshot`);
  return {
    path,
    raftDb: await exists(`${path}/raft/raft.db`),
    peersJson: await readIfPresent(`${path}/raft/peers.json`),
    nodeId: (await readIfPresent(`${path}/node-id`))?.trim() || undefined,
    serfSnapshotTail: snapshot?.trimEnd().split("\n").slice(-2000),
  };
}

async function gatherLocal(dataDir: string, log: Logger): Promise<LocalFacts> {
  let mode: LocalFacts["mode"];
  try {
    mode = await readMode(dataDir);
  } catch (err) {
    log.warn("mode file not readable", { error: describe(err) });
  }
  let serverData: DataDirFacts | undefined;
  try {
    serverData = await readDataDir(`${dataDir}/server`);
  } catch (err) {
    log.warn("server data dir not readable", { error: describe(err) });
  }
  return { dataDir, mode, serverData };
}

export interface GatherOptions {
  servers: number;
  expirySeconds: number;
  dataDir: string;
}

export async function gather(
  opts: GatherOptions,
  deps: { consul: ConsulClient; openRegistry: () => Promise<Registry>; log: Logger },
): Promise<DoctorFacts> {
  const registry = (async () => {
    let reg: Registry;
    try {
      reg = await deps.openRegistry();
    } catch (err) {
      return { error: describe(err) };
    }
    try {
      const [view, claims] = await Promise.all([
        readRegistryView(reg, deps.log),
        readClaims(reg, MAX_PLACES, deps.log),
      ]);
      return { ...view, claims };
    } catch (err) {
      return { error: describe(err) };
    } finally {
      reg.close();
    }
  })();
  const [reg, agent, local] = await Promise.all([
    registry,
    gatherAgent(deps.consul, deps.log),
    gatherLocal(opts.dataDir, deps.log),
  ]);
  // The running agent's own data dir, when it is a server here and not where -d points.
  if (
    !("error" in agent) && agent.self.isServer && agent.self.dataDir &&
    agent.self.dataDir !== local.serverData?.path
  ) {
    local.serverData = await readDataDir(agent.self.dataDir).catch(() => local.serverData);
  }
  return { servers: opts.servers, expirySeconds: opts.expirySeconds, registry: reg, agent, local };
}

function obj(v: unknown): Record<string, unknown> {
  return v && typeof v === "object" ? v as Record<string, unknown> : {};
}
