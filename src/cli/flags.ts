/**
 * Every flag of auto-consul, in one table. Parsing, environment fallbacks, help text and the
 * README check are all driven by it. Long names are kebab-case; each has an environment
 * fallback (AUTO_CONSUL_<NAME>, or a standard variable) unless `env` is null.
 */

export type Command =
  | "run"
  | "heartbeat"
  | "direct_run"
  | "set_mode"
  | "set_server"
  | "set_agent"
  | "status"
  | "doctor"
  | "recover"
  | "elect";

export const COMMANDS: Record<Command, string> = {
  run: "decide server or client (race-free), start and supervise consul, join, heartbeat",
  heartbeat: "write this node's heartbeat once (exit 1 when consul is not running)",
  direct_run: "start and supervise consul in the mode already decided (see set_mode)",
  set_mode: "decide server or client from the registry and record it, without starting consul",
  set_server: "record server mode",
  set_agent: "record client (agent) mode",
  status: "show registry members merged with what the local consul agent knows",
  doctor: "check the cluster for known outage causes: findings with evidence and the next step",
  recover:
    "print (--dry-run) or publish (--yes) the quorum recovery plan; --new-cluster forms a new cluster",
  elect: "master/slave election for a local service (replaces consul-master-election-tagger)",
};

/** Commands that take the registry flag. */
const REGISTRY_COMMANDS: Command[] = [
  "run",
  "heartbeat",
  "set_mode",
  "status",
  "doctor",
  "recover",
];
const RUN_COMMANDS: Command[] = ["run", "direct_run"];

export interface FlagSpec {
  name: string;
  short?: string;
  type: "string" | "boolean";
  multiple?: boolean;
  /** Environment variables consulted in order when the flag is absent. */
  env: string[];
  arg?: string;
  help: string;
  /** Shown as the default in help. */
  def?: string;
  /** Commands the flag applies to; undefined means every command (the gem's global flags). */
  commands?: Command[];
  /** Hidden aliases (the tagger's flag names) map onto this flag. */
  aliases?: string[];
  /** One of the gem's flags: a prefix unique among them means this flag, as with the gem. */
  gem?: boolean;
}

const auto = (name: string) => `AUTO_CONSUL_${name.toUpperCase().replaceAll("-", "_")}`;

export const FLAGS: FlagSpec[] = [
  // The gem's flags (accepted by every command, like the gem).
  {
    name: "registry",
    gem: true,
    short: "r",
    type: "string",
    env: [auto("registry")],
    arg: "URL",
    help: "registry: s3://bucket/prefix or file:///path",
  },
  {
    name: "address",
    gem: true,
    short: "a",
    type: "string",
    env: [auto("address")],
    arg: "IP",
    help: "sets both bind and advertise",
  },
  {
    name: "bind",
    gem: true,
    short: "b",
    type: "string",
    env: [auto("bind")],
    arg: "IP",
    def: "0.0.0.0",
    help: "consul -bind address",
  },
  {
    name: "advertise",
    gem: true,
    type: "string",
    env: [auto("advertise")],
    arg: "IP",
    help: "consul -advertise address (also the address written to the registry)",
  },
  {
    name: "node",
    gem: true,
    short: "n",
    type: "string",
    env: [auto("node")],
    arg: "NAME",
    def: "short hostname",
    help: "consul node name",
  },
  {
    name: "data-dir",
    gem: true,
    short: "d",
    type: "string",
    env: [auto("data-dir")],
    arg: "PATH",
    def: "/var/lib/auto-consul",
    help: "local state (mode, place, elect sessions); consul data in <data-dir>/server or " +
      "<data-dir>/agent",
  },
  {
    name: "config-dir",
    gem: true,
    short: "c",
    type: "string",
    env: [auto("config-dir")],
    arg: "DIR",
    help: "passed to consul -config-dir",
  },
  {
    name: "expiry",
    gem: true,
    short: "e",
    type: "string",
    env: [auto("expiry")],
    arg: "S",
    def: "120",
    help: "heartbeat freshness window in seconds",
  },
  {
    name: "ticks",
    gem: true,
    short: "t",
    type: "string",
    env: [auto("ticks")],
    arg: "S",
    def: "60",
    help: "heartbeat interval in seconds",
  },
  {
    name: "servers",
    gem: true,
    short: "s",
    type: "string",
    env: [auto("servers")],
    arg: "N",
    def: "1",
    help: "desired number of servers",
  },
  // Ours, shared.
  {
    name: "http-addr",
    type: "string",
    env: ["CONSUL_HTTP_ADDR"],
    arg: "ADDR",
    def: "127.0.0.1:8500",
    help: "the local consul agent's HTTP API ([scheme://]host[:port])",
  },
  {
    name: "s3-endpoint",
    type: "string",
    env: ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"],
    arg: "URL",
    help: "S3 endpoint for MinIO, Ceph, R2, moto (path-style addressing)",
  },
  {
    name: "region",
    type: "string",
    env: ["AWS_REGION", "AWS_DEFAULT_REGION"],
    arg: "REGION",
    def: "us-east-1",
    help: "S3 region",
  },
  {
    name: "log-level",
    type: "string",
    env: [auto("log-level")],
    arg: "LEVEL",
    def: "info",
    help: "debug, info, warn or error",
  },
  {
    name: "log-format",
    type: "string",
    env: [auto("log-format")],
    arg: "FORMAT",
    def: "text",
    help: "text or json (JSON lines)",
  },
  // run / direct_run
  {
    name: "client",
    type: "string",
    env: [auto("client")],
    arg: "IP",
    help: "consul -client address (run, direct_run; only when given: else a client_addr in " +
      "-c, or consul's 127.0.0.1); every command talks to its agent there unless --http-addr " +
      "says otherwise",
  },
  {
    name: "datacenter",
    type: "string",
    env: [auto("datacenter")],
    arg: "DC",
    help: "consul -datacenter",
    commands: RUN_COMMANDS,
  },
  {
    name: "consul-bin",
    type: "string",
    env: [auto("consul-bin")],
    arg: "PATH",
    def: "consul",
    help: "the consul binary to run",
    commands: RUN_COMMANDS,
  },
  {
    name: "hang-timeout",
    type: "string",
    env: [auto("hang-timeout")],
    arg: "S",
    def: "max(30, 3 ticks)",
    help: "restart a consul whose HTTP API stopped answering for this long (process alive)",
    commands: RUN_COMMANDS,
  },
  {
    name: "gossip-key-file",
    type: "string",
    env: [auto("gossip-key-file")],
    arg: "PATH",
    help: "file holding the gossip encryption key (or env AUTO_CONSUL_GOSSIP_KEY)",
    commands: RUN_COMMANDS,
  },
  {
    name: "require-encryption",
    type: "boolean",
    env: [auto("require-encryption")],
    help: "refuse to start when no gossip key is in force (see --gossip-key-file)",
    commands: RUN_COMMANDS,
  },
  {
    name: "token-file",
    type: "string",
    env: ["CONSUL_HTTP_TOKEN_FILE"],
    arg: "PATH",
    help: "file holding the ACL token (or env CONSUL_HTTP_TOKEN)",
  },
  {
    name: "advisory",
    type: "boolean",
    env: [auto("advisory")],
    help: "allow a store that ignores conditional writes (the gem's advisory placement)",
    commands: ["run", "set_mode"],
  },
  // recovery (docs/recovery.md)
  {
    name: "no-auto-recover",
    type: "boolean",
    env: [auto("no-auto-recover")],
    help: "never rebuild a lost quorum nor form a new cluster by policy; say what would be done",
    commands: ["run"],
  },
  {
    name: "servers-lost",
    type: "string",
    env: [auto("servers-lost")],
    arg: "POLICY",
    def: "wait",
    help:
      "when every server is gone: wait for one with the data, or new-cluster after --recover-after",
    commands: ["run"],
  },
  {
    name: "recover-after",
    type: "string",
    env: [auto("recover-after")],
    arg: "S",
    def: "5 expiry windows",
    help: "how long with no leader before a lost quorum is rebuilt (or a new cluster formed)",
    commands: ["run", "recover"],
  },
  {
    name: "dry-run",
    type: "boolean",
    env: [],
    help: "recover: print the plan and why, change nothing",
    commands: ["recover"],
  },
  {
    name: "yes",
    type: "boolean",
    env: [],
    help: "recover: publish the plan (the running nodes carry it out)",
    commands: ["recover"],
  },
  {
    name: "new-cluster",
    type: "boolean",
    env: [],
    help: "recover: let new servers take every place and form a new, empty cluster (loudly)",
    commands: ["recover"],
  },
  // status
  {
    name: "json",
    type: "boolean",
    env: [],
    help: "machine-readable output",
    commands: ["status", "doctor", "elect"],
  },
  // elect (the tagger's flags are aliases, with one or two dashes)
  {
    name: "service",
    type: "string",
    env: [auto("service")],
    arg: "ID",
    help: "the local service's ID",
    commands: ["elect"],
    aliases: ["consul-service-name"],
  },
  {
    name: "query-name",
    type: "string",
    env: [auto("query-name")],
    arg: "NAME",
    def: "<service>-master",
    help: "prepared query to create or update",
    commands: ["elect"],
    aliases: ["consul-query-name"],
  },
  {
    name: "query-tag",
    type: "string",
    multiple: true,
    env: [],
    arg: "TAG",
    help: "extra tag the prepared query requires (repeatable)",
    commands: ["elect"],
    aliases: ["consul-query-tag"],
  },
  {
    name: "master-tag",
    type: "string",
    env: [auto("master-tag")],
    arg: "TAG",
    def: "master",
    help: "tag of the master",
    commands: ["elect"],
  },
  {
    name: "slave-tag",
    type: "string",
    env: [auto("slave-tag")],
    arg: "TAG",
    def: "slave",
    help: "tag of the others",
    commands: ["elect"],
  },
  {
    name: "lock-key",
    type: "string",
    env: [auto("lock-key")],
    arg: "KEY",
    def: "auto-consul/elect/<service>/leader",
    help: "KV key of the lock",
    commands: ["elect"],
  },
  {
    name: "session-ttl",
    type: "string",
    env: [auto("session-ttl")],
    arg: "S",
    def: "15",
    help: "session TTL in seconds (10-86400)",
    commands: ["elect"],
  },
  {
    name: "lock-delay",
    type: "string",
    env: [auto("lock-delay")],
    arg: "S",
    def: "1",
    help: "lock delay in seconds after a master is lost (0-60)",
    commands: ["elect"],
  },
  {
    name: "once",
    type: "boolean",
    env: [],
    help: "one round, for use as a consul check (the default)",
    commands: ["elect"],
  },
  {
    name: "watch",
    type: "boolean",
    env: [],
    help: "keep running: hold the lock, react to changes, release on SIGTERM",
    commands: ["elect"],
  },
  {
    name: "role-exit-codes",
    type: "boolean",
    env: [],
    help: "exit 0 as master, 1 as slave, 2 on error",
    commands: ["elect"],
  },
  {
    name: "allow-warning",
    type: "boolean",
    env: [],
    help: "a master at warning stays master (default: it hands over)",
    commands: ["elect"],
  },
  {
    name: "check-id",
    type: "string",
    multiple: true,
    env: [],
    arg: "ID",
    help: "the consul check that runs this elect: not counted, never bound (repeatable)",
    commands: ["elect"],
  },
  {
    name: "on-master",
    type: "string",
    env: [],
    arg: "CMD",
    help: "command run (no shell) on becoming master",
    commands: ["elect"],
  },
  {
    name: "on-slave",
    type: "string",
    env: [],
    arg: "CMD",
    help: "command run (no shell) on becoming slave",
    commands: ["elect"],
  },
  // always
  { name: "help", short: "h", type: "boolean", env: [], help: "show help", gem: true },
  { name: "version", short: "v", type: "boolean", env: [], help: "show version and build" },
];

export function flagsFor(command: Command | undefined): FlagSpec[] {
  return FLAGS.filter((f) => !f.commands || (command && f.commands.includes(command)));
}

export function usesRegistry(command: Command): boolean {
  return REGISTRY_COMMANDS.includes(command);
}
