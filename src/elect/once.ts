/**
 * `elect --once`: one round, the tagger's use as a consul check. The session is kept in local
 * state and reused, so the master holds the lock between runs; the role of the last run is
 * kept too, so hooks fire on a change only. Bounded: every consul call has a short timeout and
 * the whole round a deadline, and a hook is stopped after its own bound, so a run ends well
 * inside a 10 s check timeout.
 */
import type { ElectOptions } from "../cli/config.ts";
import type { ConsulClient } from "../consul/client.ts";
import { ConsulUnreachableError } from "../errors.ts";
import type { Logger } from "../log.ts";
import { hookFor, runHook, type SpawnHook } from "./hooks.ts";
import { electRound, type RoundResult } from "./round.ts";
import { type ElectState, readState, sameState, statePath, writeState } from "./state.ts";

export interface OnceLimits {
  /** Each consul call (default 2 s). */
  callTimeoutMs: number;
  /** The whole round (default 5 s). */
  roundTimeoutMs: number;
  /** A hook (default 3 s, then it is stopped). */
  hookTimeoutMs: number;
}

export const ONCE_LIMITS: OnceLimits = {
  callTimeoutMs: 2_000,
  roundTimeoutMs: 5_000,
  hookTimeoutMs: 3_000,
};

export interface OnceContext {
  consul: ConsulClient;
  opts: ElectOptions;
  dataDir: string;
  log: Logger;
  spawnHook: SpawnHook;
  limits?: Partial<OnceLimits>;
}

export interface OnceResult extends RoundResult {
  previousRole?: ElectState["role"];
  /** Whether a hook ran and exited 0 (undefined: none was due). */
  hookOk?: boolean;
}

export async function electOnce(ctx: OnceContext): Promise<OnceResult> {
  const limits = { ...ONCE_LIMITS, ...ctx.limits };
  const { consul, opts, log } = ctx;
  const path = statePath(ctx.dataDir, opts.service);
  const { state, problem } = await readState(path);
  if (problem) log.warn(problem);

  const deadline = AbortSignal.timeout(limits.roundTimeoutMs);
  const call = { timeoutMs: limits.callTimeoutMs, signal: deadline };
  let result: RoundResult;
  try {
    const self = await consul.self(call);
    const me = { node: self.node, address: self.advertiseAddr ?? self.memberAddr };
    result = await electRound({ consul, opts, me, log, call }, state.session);
  } catch (err) {
    if (deadline.aborted && err === deadline.reason) {
      throw new ConsulUnreachableError(
        `consul at ${consul.address} did not complete an election round within ${limits.roundTimeoutMs} ms`,
        { cause: err },
      );
    }
    throw err;
  }

  const hook = hookFor(state.hooked, result.role, opts, opts.service, result.master);
  const next: ElectState = {
    session: result.session,
    role: result.role,
    master: result.master,
    hooked: hook.handled,
  };
  if (!sameState(state, next)) await writeState(path, next);
  if (state.role !== result.role) {
    log.info(`role ${state.role ?? "(none)"} -> ${result.role}`, {
      master: result.master?.node ?? "(unknown)",
    });
  }
  const hookOk = hook.plan
    ? await runHook(hook.plan, ctx.spawnHook, limits.hookTimeoutMs, log)
    : undefined;
  return { ...result, previousRole: state.role, hookOk };
}
