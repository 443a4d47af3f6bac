/** The commands of auto-consul and the shape of one flag (the table itself is in flags.ts). */

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

/** The flag's own environment variable: AUTO_CONSUL_<NAME>. */
export const auto = (name: string) => `AUTO_CONSUL_${name.toUpperCase().replaceAll("-", "_")}`;
