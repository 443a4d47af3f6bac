/**
 * `elect`: master/slave election for a local service (replaces consul-master-election-tagger).
 * `--once` (the default) runs one round; `--watch` keeps running until SIGTERM/SIGINT.
 * Exit codes are the tagger's (0 master or slave, 2 on any error); `--role-exit-codes` gives
 * 0 master, 1 slave, 2 error. Errors are one line on stderr. The logic is in src/elect/.
 */
import type { Config } from "../cli/config.ts";
import type { ConsulClient } from "../consul/client.ts";
import { describe, UsageError } from "../errors.ts";
import type { Logger } from "../log.ts";
import { type Sleep, sleep as realSleep } from "../util/backoff.ts";
import { stopOnSignals } from "../util/signals.ts";
import { type SpawnHook, spawnHook } from "../elect/hooks.ts";
import type { LockHolder } from "../elect/lock.ts";
import { startedByConsul } from "../elect/health.ts";
import { electOnce, type OnceLimits } from "../elect/once.ts";
import type { RoundResult } from "../elect/round.ts";
import type { Role } from "../elect/tags.ts";
import { electWatch } from "../elect/watch.ts";

export interface ElectDeps {
  log: Logger;
  consul: ConsulClient;
  print: (text: string) => void;
  /** Hooks are run through this (default: Deno.Command). */
  spawnHook?: SpawnHook;
  /** --watch stops when it aborts; default: SIGTERM or SIGINT. */
  signal?: AbortSignal;
  sleep?: Sleep;
  random?: () => number;
  /** The ACL token (for the vouch check's header). */
  token?: string;
  /** --once bounds (tests). */
  onceLimits?: Partial<OnceLimits>;
  /** Whether consul started this run (default: read from /proc; see src/elect/health.ts). */
  runByConsul?: boolean;
}

/** The tagger's exit code for errors (a consul check: critical). */
export const ELECT_ERROR_EXIT = 2;

/** Pure: the exit code of a finished round. */
export function roleExitCode(role: Role, roleExitCodes: boolean): number {
  return roleExitCodes && role === "slave" ? 1 : 0;
}

/** Pure: what --json prints for a round. */
export function roundJson(r: Pick<RoundResult, "role" | "master" | "query">): string {
  const master: LockHolder | null = r.master ?? null;
  return JSON.stringify({ role: r.role, master, query: r.query.dns, queryId: r.query.id });
}

export async function electCommand(config: Config, deps: ElectDeps): Promise<number> {
  const opts = config.elect;
  if (!opts) throw new UsageError("elect needs its options: give --service ID");
  let log = deps.log;
  try {
    if (opts.watch) {
      await watch(config, deps);
      return 0;
    }
    const r = await electOnce({
      consul: deps.consul,
      opts,
      dataDir: config.dataDir,
      log,
      spawnHook: deps.spawnHook ?? spawnHook,
      limits: deps.onceLimits,
      runByConsul: deps.runByConsul ?? startedByConsul(),
      checkToken: deps.token,
      onNode: (node) => log = log.withNode(node),
    });
    deps.print(config.json ? roundJson(r) : r.query.dns);
    log.info(`${r.role}`, {
      master: r.master ? `${r.master.node} ${r.master.address}` : "(unknown)",
      query: r.query.dns,
    });
    return roleExitCode(r.role, opts.roleExitCodes);
  } catch (err) {
    log.error(describe(err));
    return ELECT_ERROR_EXIT;
  }
}

async function watch(config: Config, deps: ElectDeps): Promise<void> {
  const opts = config.elect!;
  // without a caller's signal, --watch stops on SIGTERM or SIGINT
  const stop = deps.signal ? undefined : stopOnSignals(["SIGTERM", "SIGINT"]);
  const signal = deps.signal ?? stop!.signal;
  let printedQuery = false;
  try {
    await electWatch({
      consul: deps.consul,
      opts,
      dataDir: config.dataDir,
      log: deps.log,
      spawnHook: deps.spawnHook ?? spawnHook,
      signal,
      sleep: deps.sleep ?? realSleep,
      random: deps.random ?? Math.random,
      checkToken: deps.token,
      onRound: (r, changed) => {
        if (config.json) {
          if (changed) deps.print(roundJson(r));
        } else if (!printedQuery) {
          deps.print(r.query.dns);
        }
        printedQuery = true;
      },
    });
  } finally {
    stop?.dispose();
  }
}
