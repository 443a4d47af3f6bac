/**
 * The `consul agent` command line and its generated config file. Pure: no I/O.
 *
 * The argv never holds a secret: the gossip key and the ACL token go only into the generated
 * JSON config file (written 0600 by `writeAgentConfig`), which also carries the leave
 * behaviour and the autopilot settings. Servers start with `-bootstrap-expect N`, never
 * `-bootstrap`; with `joinOnly` (N = 1 while another server is live: `-bootstrap-expect=1`
 * would make a second cluster at once) a server starts with neither and joins. Every flag is one `-name=value` token, so no value can be mistaken for
 * a flag. Order: our flags, our config file, the user's `-config-dir` (so the user's files
 * override our defaults), then the user's extra args (consul gives flags precedence anyway).
 */
import { isIPv4, isIPv6 } from "node:net";
import { join } from "node:path";
import { isIpLiteral, nodeNameProblem } from "../util/validate.ts";
import { type ConsulVersion, versionAtLeast } from "./version.ts";

export type AgentMode = "server" | "client";

/**
 * `autopilot.min_quorum` exists since Consul 1.6.2 (hashicorp/consul#6654, merged 2019-10-29);
 * older agents reject the unknown key, so it is left out for them.
 */
export const MIN_QUORUM_SINCE: ConsulVersion = { major: 1, minor: 6, patch: 2 };
/** `acl.tokens.agent` since Consul 1.4.0; older agents read `acl_agent_token`. */
export const ACL_TOKENS_SINCE: ConsulVersion = { major: 1, minor: 4, patch: 0 };

export interface AgentOptions {
  mode: AgentMode;
  /** Desired number of servers: `-bootstrap-expect N` for servers, `min_quorum` N. */
  servers: number;
  /** A server that must not bootstrap (another server is live): no `-bootstrap-expect`. */
  joinOnly?: boolean;
  /** The version of the consul binary that will run this command. */
  version: ConsulVersion;
  bind: string;
  advertise?: string;
  /**
   * Address of the client interfaces (HTTP, DNS): consul `-client`, only when given (a
   * `client_addr` in the user's `-config-dir` then decides; consul's default is 127.0.0.1).
   */
  client?: string;
  node: string;
  /** auto-consul's base data dir: consul gets `<dataDir>/server` or `<dataDir>/agent` (the gem's). */
  dataDir: string;
  configDir?: string;
  datacenter?: string;
  /** Join addresses, IPs (an optional `:port`); IPv6 is bracketed. */
  retryJoin?: readonly string[];
  /** Seconds between consul's own join retries (`-retry-interval`); consul's default is 30. */
  retryIntervalSeconds?: number;
  /** consul `-log-level` (trace, debug, info, warn, err). */
  logLevel?: string;
  /** Everything the user put after `--`: appended unchanged, last. */
  extraArgs?: readonly string[];
  gossipKey?: string;
  token?: string;
}

/** The generated config file: where it goes and what it holds. */
export interface AgentConfigFile {
  /** The file name, inside `dir`. */
  name: string;
  /** The directory (auto-consul's base data dir). */
  dir: string;
  /** `dir/name`: what `-config-file` points at. */
  path: string;
  json: Record<string, unknown>;
}

export interface AgentCommand {
  /** Arguments of the consul binary, starting with "agent". */
  args: string[];
  configFile: AgentConfigFile;
}

/** The safe leave settings of a server, as -hcl fragments that override -config-dir files. */
export const SERVER_LEAVE_OVERRIDE: readonly string[] = [
  "-hcl=leave_on_terminate = false",
  "-hcl=skip_leave_on_interrupt = true",
];

/**
 * The unsafe leave settings a consul config file's text sets for a server (JSON or HCL):
 * `leave_on_terminate = true` or `skip_leave_on_interrupt = false`.
 */
export function leaveSettingsIn(text: string): string[] {
  const found: string[] = [];
  const set = (key: string, value: string) =>
    new RegExp(`["']?${key}["']?\\s*[:=]\\s*"?${value}"?\\b`).test(text);
  if (set("leave_on_terminate", "true")) found.push("leave_on_terminate = true");
  if (set("skip_leave_on_interrupt", "false")) found.push("skip_leave_on_interrupt = false");
  return found;
}

/** Builds the `consul agent` argv and the config file. Throws TypeError/RangeError on bad input. */
export function agentCommand(o: AgentOptions): AgentCommand {
  if (o.mode !== "server" && o.mode !== "client") {
    throw new TypeError(`invalid agent mode "${o.mode}": expected "server" or "client"`);
  }
  if (!Number.isInteger(o.servers) || o.servers < 1) {
    throw new RangeError(`invalid number of servers ${o.servers}: expected a whole number >= 1`);
  }
  ipOrThrow("bind", o.bind);
  if (o.advertise !== undefined) ipOrThrow("advertise", o.advertise);
  if (o.client !== undefined) ipOrThrow("client", o.client);
  const nodeWhy = nodeNameProblem(o.node);
  if (nodeWhy) throw new TypeError(`invalid node name "${o.node}": ${nodeWhy}`);
  if (o.dataDir === "" || o.dataDir.includes("\0")) {
    throw new TypeError(`invalid data dir ${JSON.stringify(o.dataDir)}: expected a path`);
  }
  if (o.datacenter !== undefined && !/^[A-Za-z0-9_-]{1,64}$/.test(o.datacenter)) {
    throw new TypeError(
      `invalid datacenter "${o.datacenter}": expected letters, digits, '_' or '-'`,
    );
  }
  const interval = o.retryIntervalSeconds;
  if (interval !== undefined && !(Number.isFinite(interval) && interval > 0)) {
    throw new RangeError(`invalid retry interval ${interval}: expected seconds > 0`);
  }
  if (o.logLevel !== undefined && !/^[a-z]{3,5}$/i.test(o.logLevel)) {
    throw new TypeError(
      `invalid consul log level "${o.logLevel}": expected trace, debug, info, warn or err`,
    );
  }

  const configFile = agentConfigFile(o);
  const args = ["agent"];
  if (o.mode === "server") {
    args.push("-server");
    if (!o.joinOnly) args.push(`-bootstrap-expect=${o.servers}`);
  }
  args.push(`-node=${o.node}`, `-bind=${o.bind}`);
  if (o.advertise !== undefined) args.push(`-advertise=${o.advertise}`);
  if (o.client !== undefined) args.push(`-client=${o.client}`);
  args.push(`-data-dir=${consulDataDir(o.dataDir, o.mode)}`);
  if (o.datacenter !== undefined) args.push(`-datacenter=${o.datacenter}`);
  for (const addr of o.retryJoin ?? []) args.push(`-retry-join=${retryJoinArg(addr)}`);
  if (interval !== undefined) args.push(`-retry-interval=${formatSeconds(interval)}`);
  if (o.logLevel !== undefined) args.push(`-log-level=${o.logLevel}`);
  args.push(`-config-file=${configFile.path}`);
  if (o.configDir !== undefined) args.push(`-config-dir=${o.configDir}`);
  // A server never leaves on a signal, whatever a -config-dir file says: consul applies -hcl
  // fragments after every config file (issue 10; `leaveSettingsIn` names the file overridden).
  if (o.mode === "server" && o.configDir !== undefined) args.push(...SERVER_LEAVE_OVERRIDE);
  args.push(...(o.extraArgs ?? []));
  return { args, configFile };
}

/** consul's data dir in the gem's layout: `<dataDir>/server` or `<dataDir>/agent`. */
export function consulDataDir(dataDir: string, mode: AgentMode): string {
  return join(dataDir, mode === "server" ? "server" : "agent");
}

/** The generated config file alone (leave behaviour, autopilot, secrets). */
export function agentConfigFile(o: AgentOptions): AgentConfigFile {
  // No calls home to HashiCorp's update-check service (a -config-dir file can turn it on).
  const json: Record<string, unknown> = {
    disable_update_check: true,
    disable_anonymous_signature: true,
  };
  if (o.mode === "server") {
    // A server never leaves on a signal: a whole-cluster restart keeps its raft peers.
    json.leave_on_terminate = false;
    json.skip_leave_on_interrupt = true;
    const autopilot: Record<string, unknown> = { cleanup_dead_servers: true };
    if (versionAtLeast(o.version, MIN_QUORUM_SINCE)) autopilot.min_quorum = o.servers;
    json.autopilot = autopilot;
  } else {
    json.leave_on_terminate = true;
    json.skip_leave_on_interrupt = false;
  }
  if (o.gossipKey !== undefined) json.encrypt = o.gossipKey;
  if (o.token !== undefined) {
    if (versionAtLeast(o.version, ACL_TOKENS_SINCE)) json.acl = { tokens: { agent: o.token } };
    else json.acl_agent_token = o.token;
  }
  const name = `${o.mode}-auto-consul.json`;
  return { name, dir: o.dataDir, path: join(o.dataDir, name), json };
}

/** A `-retry-join` value: IPv4 as is, IPv6 bracketed, an explicit port kept. */
export function retryJoinArg(addr: string): string {
  const bad = () =>
    new TypeError(
      `invalid join address "${addr}": expected an IP, "IPv4:port" or "[IPv6]:port"`,
    );
  const s = addr.trim();
  if (isIPv4(s)) return s;
  if (isIPv6(s) && !s.includes("%")) return `[${s}]`;
  const m = /^\[([^\]]+)\](?::(\d{1,5}))?$/.exec(s) ?? /^([\d.]+):(\d{1,5})$/.exec(s);
  if (!m || !isIpLiteral(m[1]) || m[1].includes("%")) throw bad();
  if (m[2] !== undefined && (Number(m[2]) < 1 || Number(m[2]) > 65535)) throw bad();
  return s;
}

function ipOrThrow(what: string, value: string): void {
  if (!isIpLiteral(value)) {
    throw new TypeError(`invalid ${what} address "${value}": expected an IPv4 or IPv6 address`);
  }
}

/** Seconds as a Go duration: 5 → "5s", 0.5 → "500ms". */
function formatSeconds(s: number): string {
  return Number.isInteger(s) ? `${s}s` : `${Math.round(s * 1000)}ms`;
}

/**
 * Pure: whether a server must start without `-bootstrap-expect` and join. Only N = 1 can
 * bootstrap alone (`-bootstrap-expect=1` is `-bootstrap`); for N > 1 consul itself asks the
 * servers it sees for raft peers before bootstrapping, and a gem server's `-bootstrap` tag
 * disables it. So: N = 1 while any other server is live in the registry (the gem's, a
 * hand-started one, a pinned mode): join it, never a second bootstrap.
 */
export function serverJoinsOnly(servers: number, otherLiveServers: number): boolean {
  return servers === 1 && otherLiveServers > 0;
}
