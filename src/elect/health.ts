/**
 * Who may be master: an instance that is healthy in consul's own sense, the sense of the
 * prepared query (`OnlyPassing`): every check of its node and of the service passing
 * (`--allow-warning`: warning is enough, and the query then leaves out critical ones only).
 * Pure: the checks come from the local agent (this instance) or from the catalog (the holder).
 *
 * Not counted, and never bound to the session: the election check itself — the consul check
 * that runs `elect --once` — whose state is that of the last election run, not of the service.
 * It is found by `--check-id`, or as a script check whose output is an elect run's (the
 * query's DNS name on stdout, or an `[elect ...]` log line); and, only when this run was
 * started by consul, a script check that has never run yet (critical, no output): consul runs
 * a new script check first at a random moment of its first interval, so on the first run of
 * the election check that is how it looks. The vouch check (vouch.ts) is not counted either:
 * it says whether an instance's session lives, which the lock already says.
 */
import type { Check } from "../consul/types.ts";

export interface HealthOptions {
  queryName: string;
  /** IDs given with --check-id. */
  checkIds: readonly string[];
  allowWarning: boolean;
}

/** Pure: whether a check's output is that of an `auto-consul elect` run. */
export function isElectOutput(output: string, queryName: string): boolean {
  return output.includes(`${queryName}.query.consul`) || /\[elect(?: [^\]]*)?\]/.test(output);
}

/** Pure: the IDs among `checks` that are election checks (see the module comment). */
export function electionCheckIds(
  checks: readonly Check[],
  opts: Pick<HealthOptions, "queryName" | "checkIds">,
  runByConsul: boolean,
): Set<string> {
  const ids = new Set(opts.checkIds);
  for (const c of checks) {
    if (c.type !== "script") continue;
    if (isElectOutput(c.output, opts.queryName)) ids.add(c.checkId);
    else if (runByConsul && c.output === "" && c.status === "critical") ids.add(c.checkId);
  }
  return ids;
}

export interface Health {
  healthy: boolean;
  /** Why not: "check redis-ttl (redis alive) is warning". */
  why?: string;
}

/** Pure: the health of an instance from its node's and service's checks, minus `ignore`. */
export function healthOf(
  checks: readonly Check[],
  ignore: ReadonlySet<string>,
  allowWarning: boolean,
): Health {
  const bad = checks.filter((c) =>
    !ignore.has(c.checkId) && c.status !== "passing" &&
    !(allowWarning && c.status === "warning")
  ).sort((a, b) => a.checkId.localeCompare(b.checkId));
  if (bad.length === 0) return { healthy: true };
  const c = bad[0];
  const more = bad.length > 1 ? ` (and ${bad.length - 1} more)` : "";
  return {
    healthy: false,
    why: `check ${c.checkId}${c.name ? ` (${c.name})` : ""} is ${c.status}${more}`,
  };
}

/** Pure: the agent's checks that count for `serviceId`: the node's own and the service's. */
export function instanceChecks(checks: Record<string, Check>, serviceId: string): Check[] {
  return Object.entries(checks)
    .filter(([, c]) => c.serviceId === serviceId || c.serviceId === "")
    .map(([id, c]) => ({ ...c, checkId: c.checkId || id }));
}

/** Whether this process was started by consul (a check): its parent or grandparent is consul. */
export function startedByConsul(readText: (p: string) => string = Deno.readTextFileSync): boolean {
  try {
    let pid = Deno.ppid;
    for (let depth = 0; depth < 2 && pid > 1; depth++) {
      if (readText(`/proc/${pid}/comm`).trim() === "consul") return true;
      // /proc/PID/stat: "pid (comm) state ppid ..."; comm may hold spaces and parentheses
      const stat = readText(`/proc/${pid}/stat`);
      pid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
    }
  } catch {
    // no /proc (not Linux) or the parent is gone: not known, so not assumed
  }
  return false;
}
