/** Help text, generated from the flag table so it can never drift from what is parsed. */
import { type Command, COMMANDS, type FlagSpec } from "./flag_types.ts";
import { flagsFor } from "./flags.ts";

const EXIT_CODES = `Exit codes:
  0  success
  1  heartbeat: consul is not running; elect --role-exit-codes: this instance is a slave
  2  usage error (bad flag, value, environment variable or command)
  3  registry error (no such bucket, access denied, unreachable)
  4  consul error (API error, ACL denied); elect: 2 for every error, like the tagger
  5  doctor: a finding needs action (warning)
  6  doctor: a critical finding (no leader, lost quorum, ...)
  other: consul's own exit code (run, direct_run; a server stopped by SIGINT/SIGTERM: 0)`;

function flagLine(f: FlagSpec): string {
  const names = (f.short ? `-${f.short}, ` : "    ") + `--${f.name}` + (f.arg ? ` ${f.arg}` : "");
  const extra: string[] = [];
  if (f.def) extra.push(`default ${f.def}`);
  if (f.env.length) extra.push(`env ${f.env.join(", ")}`);
  const tail = extra.length ? ` (${extra.join("; ")})` : "";
  return `  ${names.padEnd(30)} ${f.help}${tail}`;
}

export function helpText(command?: Command): string {
  if (command) {
    return [
      `Usage: auto-consul [options] ${command}${
        command === "run" || command === "direct_run" ? " [-- consul-args...]" : ""
      }`,
      "",
      `  ${COMMANDS[command]}`,
      "",
      "Options:",
      ...flagsFor(command).map(flagLine),
      "",
      EXIT_CODES,
    ].join("\n");
  }
  const width = Math.max(...Object.keys(COMMANDS).map((c) => c.length));
  return [
    "Usage: auto-consul [options] COMMAND",
    "",
    "Makes this machine a correctly placed member of a Consul cluster: peers are found through",
    "a shared registry (an S3 bucket prefix, or a local folder), no IP lists needed.",
    "",
    "Commands:",
    ...Object.entries(COMMANDS).map(([c, h]) => `  ${c.padEnd(width)}  ${h}`),
    "",
    "Options for every command:",
    ...flagsFor(undefined).map(flagLine),
    "",
    "Run `auto-consul help COMMAND` (or `auto-consul COMMAND --help`) for a command's own options.",
    "",
    EXIT_CODES,
  ].join("\n");
}
