/**
 * argv + environment → a typed Config. Pure: throws UsageError, never exits, never reads
 * the outside world (hostname, env and files are passed in).
 */
import {
  RECOVER_AFTER_EXPIRIES,
  SERVERS_LOST_POLICIES,
  type ServersLostPolicy,
} from "../cluster/recovery.ts";
import { parseArgs } from "node:util";
import type { ElectOptions } from "../elect/options.ts";
import { errorText, UsageError } from "../errors.ts";
import type { Level, LogFormat } from "../log.ts";
import { parseRegistryUrl } from "../registry/open.ts";
import {
  canonicalAliases,
  commandAfterDoubleDash,
  expandLongPrefixes,
  extraWordsWarning,
  findCommandWord,
  joinValues,
  normaliseSingleDash,
} from "./argv.ts";
import { type Command, COMMANDS } from "./flag_types.ts";
import { FLAGS, flagsFor, usesRegistry } from "./flags.ts";
import {
  datacenter,
  endpoint,
  hook,
  integer,
  ip,
  level,
  logFormat,
  nodeProblem,
  path,
  seconds,
  tag,
} from "./values.ts";

/** docs/recovery.md: auto-recovery, the I5 policy, the wait W, and `recover`'s flags. */
export interface RecoveryOptions {
  autoRecover: boolean;
  serversLost: ServersLostPolicy;
  /** W in seconds (default: RECOVER_AFTER_EXPIRIES expiry windows). */
  recoverAfterSeconds: number;
  dryRun: boolean;
  yes: boolean;
  newCluster: boolean;
}

export interface Config {
  command: Command;
  registry?: string;
  bind: string;
  advertise?: string;
  /** The node name; `nodeExplicit` says whether it came from a flag or env var. */
  node: string;
  nodeExplicit: boolean;
  dataDir: string;
  configDir?: string;
  expiry: number;
  ticks: number;
  servers: number;
  httpAddr: string;
  /** consul `-client`, only when given (else the user's config or consul's default decide). */
  client?: string;
  datacenter?: string;
  consulBin: string;
  /** Seconds a live consul's HTTP API may stay silent before it is restarted (run). */
  hangTimeout: number;
  gossipKeyFile?: string;
  /** Refuse to start run/direct_run when no gossip key is in force. */
  requireEncryption: boolean;
  tokenFile?: string;
  s3Endpoint?: string;
  region: string;
  logLevel: Level;
  logFormat: LogFormat;
  advisory: boolean;
  json: boolean;
  recovery: RecoveryOptions;
  /** Everything after `--`, passed to consul unchanged. */
  consulArgs: string[];
  elect?: ElectOptions;
}

export type Parsed =
  /** `missingCommand`: no command was given (usage on stderr, exit 2), not a request for help. */
  | { kind: "help"; command?: Command; missingCommand?: boolean }
  | { kind: "version" }
  /** `warnings`: what was ignored (extra words after the command), for the log. */
  | { kind: "command"; config: Config; warnings: string[] };

export interface ParseInput {
  argv: string[];
  env: Record<string, string | undefined>;
  hostname: string;
}

export function parseConfig(input: ParseInput): Parsed {
  // The gem's OptionParser conventions: `-- COMMAND`, unique prefixes of long flags.
  const moved = commandAfterDoubleDash(normaliseSingleDash(input.argv, FLAGS), FLAGS);
  const word = findCommandWord(moved.argv, FLAGS)?.word;
  const guess = word !== undefined && word in COMMANDS ? word : undefined;
  const argv = joinValues(
    canonicalAliases(expandLongPrefixes(moved.argv, FLAGS, guess), FLAGS),
    FLAGS,
  );
  const dd = argv.indexOf("--");
  const mine = dd >= 0 ? argv.slice(0, dd) : argv;
  const consulArgs = dd >= 0 ? argv.slice(dd + 1) : [];

  // First pass: every flag known, to find the command and report unknown flags well.
  const options: Record<
    string,
    { type: "string" | "boolean"; short?: string; multiple?: boolean }
  > = {};
  for (const f of FLAGS) {
    options[f.name] = {
      type: f.type,
      ...(f.short ? { short: f.short } : {}),
      multiple: !!f.multiple,
    };
  }
  let parsed;
  try {
    parsed = parseArgs({ args: mine, options, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError(usageMessage(err));
  }
  const values = parsed.values as Record<string, string | boolean | string[] | undefined>;
  const positionals = parsed.positionals;

  if (positionals[0] === "help") {
    return { kind: "help", command: positionals[1] ? toCommand(positionals[1]) : undefined };
  }
  if (values.version) return { kind: "version" };
  const command = positionals[0] === undefined ? undefined : toCommand(positionals[0]);
  if (values.help) return { kind: "help", command };
  if (command === undefined) return { kind: "help", command, missingCommand: true };
  // Extra words after the command: the gem ignored them; so do we, with a warning.
  const extra = [...positionals.slice(1), ...moved.extra];
  const warnings = extra.length > 0 ? [extraWordsWarning(command, extra)] : [];
  if (consulArgs.length > 0 && command !== "run" && command !== "direct_run") {
    throw new UsageError(
      `arguments after "--" are passed to consul: only run and direct_run take them`,
    );
  }

  // Flags that do not apply to this command are errors, not silently ignored.
  const applicable = new Set(flagsFor(command).map((f) => f.name));
  for (const [name, v] of Object.entries(values)) {
    if (v !== undefined && !applicable.has(name)) {
      throw new UsageError(`flag --${name} does not apply to command ${command}`);
    }
  }

  const env = input.env;
  /** A flag's value: argv first, then its environment variables. */
  const str = (name: string): { value?: string; from: string } => {
    const v = values[name];
    if (typeof v === "string") return { value: v, from: `--${name}` };
    const spec = FLAGS.find((f) => f.name === name)!;
    for (const e of spec.env) {
      const ev = env[e];
      if (ev !== undefined && ev !== "") return { value: ev, from: e };
    }
    return { from: `--${name}` };
  };
  const bool = (name: string): boolean => {
    if (values[name] === true) return true;
    const spec = FLAGS.find((f) => f.name === name)!;
    for (const e of spec.env) {
      const ev = env[e];
      if (ev === undefined || ev === "") continue;
      if (/^(1|true|yes|on)$/i.test(ev)) return true;
      if (/^(0|false|no|off)$/i.test(ev)) return false;
      throw new UsageError(`invalid ${e} "${ev}": expected true or false`);
    }
    return false;
  };

  const address = ip(str("address"));
  const bind = ip(str("bind")) ?? address ?? "0.0.0.0";
  const advertise = ip(str("advertise")) ?? address;
  if (advertise === "0.0.0.0" || advertise === "::") {
    throw new UsageError(`invalid advertise address "${advertise}": expected a routable IP`);
  }

  const nodeIn = str("node");
  const node = nodeIn.value ?? input.hostname.split(".")[0];
  const nodeWhy = nodeProblem(node);
  if (nodeWhy) {
    throw new UsageError(
      nodeIn.value === undefined
        ? `hostname "${input.hostname}" is not a usable node name (${nodeWhy}): set --node`
        : `invalid ${nodeIn.from} "${node}": ${nodeWhy}`,
    );
  }

  const registryIn = str("registry");
  const registry = registryIn.value;
  if (registry !== undefined) {
    try {
      parseRegistryUrl(registry);
    } catch (err) {
      throw new UsageError(`${(err as Error).message} (from ${registryIn.from})`);
    }
  }
  if (usesRegistry(command) && registry === undefined) {
    throw new UsageError(
      `command ${command} needs a registry: give -r s3://bucket/prefix or -r file:///path`,
    );
  }

  const config: Config = {
    command,
    registry,
    bind,
    advertise,
    node,
    nodeExplicit: nodeIn.value !== undefined,
    dataDir: path(str("data-dir")) ?? "/var/lib/auto-consul",
    configDir: path(str("config-dir")),
    expiry: seconds(str("expiry"), 120, 1, 86400),
    ticks: seconds(str("ticks"), 60, 1, 86400),
    servers: integer(str("servers"), 1, 1, 9),
    httpAddr: str("http-addr").value ?? "",
    client: ip(str("client")),
    datacenter: datacenter(str("datacenter")),
    consulBin: str("consul-bin").value ?? "consul",
    hangTimeout: 0, // set below from the ticks when not given
    gossipKeyFile: path(str("gossip-key-file")),
    requireEncryption: bool("require-encryption"),
    tokenFile: path(str("token-file")),
    s3Endpoint: endpoint(str("s3-endpoint")),
    region: str("region").value ?? "us-east-1",
    logLevel: level(str("log-level")),
    logFormat: logFormat(str("log-format")),
    advisory: bool("advisory"),
    json: bool("json"),
    recovery: recoveryOptions(command, str, bool, seconds(str("expiry"), 120, 1, 86400)),
    consulArgs,
  };
  // A few ticks, at least 30 s by default; any bound from 2 s when given (tests use short ones).
  config.hangTimeout = seconds(str("hang-timeout"), Math.max(30, 3 * config.ticks), 2, 86400);
  if (config.ticks > config.expiry && (command === "run" || command === "direct_run")) {
    throw new UsageError(
      `ticks ${config.ticks}s is longer than expiry ${config.expiry}s: heartbeats would expire between ticks`,
    );
  }
  if (config.httpAddr === "") {
    // The HTTP API run talks to: --http-addr / CONSUL_HTTP_ADDR, else --client, else consul's
    // default. A client_addr set only in a -config-dir file needs --http-addr to match.
    const c = config.client;
    const client = c === undefined || c === "0.0.0.0" || c === "::" ? "127.0.0.1" : c;
    config.httpAddr = client.includes(":") ? `[${client}]:8500` : `${client}:8500`;
  }
  if (command === "elect") config.elect = electOptions(values, str, bool);
  return { kind: "command", config, warnings };
}

function recoveryOptions(
  command: Command,
  str: (n: string) => { value?: string; from: string },
  bool: (n: string) => boolean,
  expiry: number,
): RecoveryOptions {
  const lost = str("servers-lost");
  const policy = lost.value ?? "wait";
  if (!(SERVERS_LOST_POLICIES as readonly string[]).includes(policy)) {
    throw new UsageError(
      `invalid ${lost.from} "${policy}": expected ${SERVERS_LOST_POLICIES.join(" or ")}`,
    );
  }
  const r: RecoveryOptions = {
    autoRecover: !bool("no-auto-recover"),
    serversLost: policy as ServersLostPolicy,
    recoverAfterSeconds: seconds(str("recover-after"), RECOVER_AFTER_EXPIRIES * expiry, 1, 864000),
    dryRun: bool("dry-run"),
    yes: bool("yes"),
    newCluster: bool("new-cluster"),
  };
  if (command === "recover" && r.dryRun === r.yes) {
    throw new UsageError(
      "recover needs exactly one of --dry-run (print the plan) or --yes (carry it out)",
    );
  }
  return r;
}

function electOptions(
  values: Record<string, string | boolean | string[] | undefined>,
  str: (n: string) => { value?: string; from: string },
  bool: (n: string) => boolean,
): ElectOptions {
  const service = str("service").value;
  if (!service) {
    throw new UsageError(
      "elect needs the service ID: give --service ID (or -consul-service-name ID)",
    );
  }
  if (!/^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/.test(service)) {
    throw new UsageError(
      `invalid service ID "${service}": expected letters, digits, '.', '_', ':' or '-'`,
    );
  }
  const watch = bool("watch");
  if (watch && bool("once")) {
    throw new UsageError("--once and --watch exclude each other: give one");
  }
  const masterTag = tag(str("master-tag"), "master");
  const slaveTag = tag(str("slave-tag"), "slave");
  if (masterTag === slaveTag) {
    throw new UsageError(
      `--master-tag and --slave-tag are both "${masterTag}": expected two different tags`,
    );
  }
  const queryTags = ((values["query-tag"] as string[] | undefined) ?? []).map((t) =>
    tag({ value: t, from: "--query-tag" }, "")
  );
  const lockKey = str("lock-key").value ?? `auto-consul/elect/${service}/leader`;
  if (lockKey.startsWith("/") || lockKey.includes("..") || lockKey.length > 512) {
    throw new UsageError(
      `invalid --lock-key "${lockKey}": expected a relative KV path without ".."`,
    );
  }
  const queryName = str("query-name").value ?? `${service}-master`;
  if (!/^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$/.test(queryName)) {
    throw new UsageError(
      `invalid --query-name "${queryName}": expected a DNS label (letters, digits, '-', '_')`,
    );
  }
  return {
    service,
    queryName,
    queryTags,
    masterTag,
    slaveTag,
    lockKey,
    sessionTtl: seconds(str("session-ttl"), 15, 10, 86400),
    lockDelay: seconds(str("lock-delay"), 1, 0, 60),
    watch,
    roleExitCodes: bool("role-exit-codes"),
    allowWarning: bool("allow-warning"),
    checkIds: ((values["check-id"] as string[] | undefined) ?? []).map((id) => {
      if (!/^[^\s/]{1,256}$/.test(id)) {
        throw new UsageError(`invalid --check-id "${id}": expected a consul check ID`);
      }
      return id;
    }),
    onMaster: hook(str("on-master")),
    onSlave: hook(str("on-slave")),
  };
}

function toCommand(s: string): Command {
  if (s in COMMANDS) return s as Command;
  throw new UsageError(
    `unknown command "${s}": expected one of ${Object.keys(COMMANDS).join(", ")}`,
  );
}

function usageMessage(err: unknown): string {
  const msg = errorText(err);
  let m = /Unknown option '([^']+)'/.exec(msg);
  if (m) return `unknown flag "${m[1]}": see auto-consul --help`;
  m = /Option '([^']+)' argument missing/.exec(msg);
  if (m) return `flag "${m[1].replace(/ <value>$/, "").split(", ").pop()}" needs a value`;
  m = /Option '([^']+)' does not take an argument/.exec(msg);
  if (m) return `flag "${m[1].split(", ").pop()}" takes no value`;
  return msg.split("\n")[0];
}
