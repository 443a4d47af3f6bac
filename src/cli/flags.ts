/**
 * Every flag of auto-consul, in one table. Parsing, environment fallbacks, help text and the
 * README check are all driven by it. Long names are kebab-case; each has an environment
 * fallback (AUTO_CONSUL_<NAME>, or a standard variable) unless `env` is null. The commands and
 * the shape of a flag are in flag_types.ts, elect's flags in elect_flags.ts.
 */
import { auto, type Command, type FlagSpec } from "./flag_types.ts";
import { ELECT_FLAGS } from "./elect_flags.ts";

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
  ...ELECT_FLAGS,
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
