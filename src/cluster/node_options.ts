/**
 * What a node's life (`runNode`, node.ts) takes: its options, its collaborators (spawn, consul
 * client, registry, clock, sleep, random, stop signal, log), the backoff of its retries and the
 * mode decision's options it shares with `set_mode`.
 */
import type { ConsulClient } from "../consul/client.ts";
import type { ConsulProcess, LineHandler } from "../consul/process.ts";
import type { ConsulVersion } from "../consul/version.ts";
import type { Logger } from "../log.ts";
import type { Registry } from "../registry/registry.ts";
import type { Sleep } from "../util/backoff.ts";
import type { ModeOptions } from "./mode.ts";
import type { ServersLostPolicy } from "./recovery.ts";

/** Backoff of the mode decision's retries and of consul's restarts. */
export const NODE_BACKOFF = { initialMs: 1000, maxMs: 30_000 };

/** How often the node asks whether its consul answers yet, at start. */
export const AGENT_POLL_MS = 50;

/** Upper bound of the advisory settle delay of the mode decision. */
export const SETTLE_MS = 5000;

export interface NodeOptions {
  node: string;
  /**
   * "decide": decide the mode from the registry at start (`run`; a client may later be
   * promoted). "recorded": run the mode recorded in the data dir (`direct_run`).
   */
  modeFrom: "decide" | "recorded";
  /** Desired number of servers. */
  servers: number;
  expirySeconds: number;
  ticksSeconds: number;
  dataDir: string;
  advisory: boolean;
  /** The version of the consul binary `spawn` starts. */
  version: ConsulVersion;
  bind: string;
  advertise?: string;
  /** consul `-client`, only when given. */
  client?: string;
  configDir?: string;
  datacenter?: string;
  /** Everything after `--`, passed to consul unchanged. */
  consulArgs: readonly string[];
  gossipKey?: string;
  token?: string;
  /**
   * Seconds a live consul's HTTP API may stay silent (after it answered once) before it is
   * killed and started again. Default: max(30, 3 ticks).
   */
  hangTimeoutSeconds?: number;
  /** docs/recovery.md: auto-recovery, the I5 policy and the wait W (defaults: on, wait, 5 -e). */
  recovery?: RecoveryConfig;
}

export interface RecoveryConfig {
  autoRecover: boolean;
  serversLost: ServersLostPolicy;
  recoverAfterSeconds: number;
}

/** A started consul (reporting what its start found, e.g. a leftover, is the spawner's job). */
export type NodeConsul = ConsulProcess;

export interface NodeDeps {
  /** Starts `consul <args>` with the given output handler. */
  spawn: (args: readonly string[], onLine: LineHandler) => Promise<NodeConsul>;
  consul: Pick<
    ConsulClient,
    | "self"
    | "members"
    | "leader"
    | "join"
    | "raftConfiguration"
    | "leave"
    | "catalogNode"
    | "catalogDeregister"
    | "raftRemovePeer"
  >;
  /** The registry; required when `modeFrom` is "decide". Without it: no heartbeat, no join. */
  registry?: Registry;
  sleep: Sleep;
  random: () => number;
  /** Milliseconds clock (Date.now). */
  now: () => number;
  /** Aborts to stop the node; its reason is the signal received ("SIGINT" or "SIGTERM"). */
  stop: AbortSignal;
  log: Logger;
}

/** The mode decision's options, shared with `set_mode`. */
export function modeOptions(
  o:
    & Pick<NodeOptions, "node" | "servers" | "expirySeconds" | "dataDir" | "advisory">
    & { recovery?: RecoveryConfig },
): ModeOptions {
  return {
    node: o.node,
    servers: o.servers,
    expirySeconds: o.expirySeconds,
    dataDir: o.dataDir,
    advisory: o.advisory,
    settleMs: SETTLE_MS,
    ...o.recovery,
  };
}
