/**
 * `elect --once`: one run, the tagger's use as a consul check. The session is kept in local
 * state and reused, so the master holds the lock between runs; the role of the last run is
 * kept too, so hooks fire on a change only. Local state is an optimisation: when it cannot be
 * read or written the run goes on (a warning), and the session is found again through the lock.
 *
 * A run is normally one round. When the lock is free but could not be taken (the old master's
 * lock-delay, or our session was just lost), the run waits the delay and contends again, as
 * long as that fits in the run's deadline: a check never reports "no master" for a lock nobody
 * holds (issue 15). Bounded: every consul call has a short timeout and the whole run a
 * deadline, and a hook is stopped after its own bound, so a run ends well inside a 10 s check
 * timeout.
 */
import type { ElectOptions } from "./options.ts";
import type { ConsulClient } from "../consul/client.ts";
import { ConsulUnreachableError, describe } from "../errors.ts";
import type { Logger } from "../log.ts";
import { type Sleep, sleep as realSleep } from "../util/backoff.ts";
import { hookFor, runHook, type SpawnHook } from "./hooks.ts";
import { electRound, type RoundContext, type RoundResult } from "./round.ts";
import { type ElectState, readState, sameState, statePath, writeState } from "./state.ts";

export interface OnceLimits {
  /** Each consul call (default 3 s). */
  callTimeoutMs: number;
  /** The whole run, retries after a lock-delay included (default 8 s). */
  roundTimeoutMs: number;
  /** A hook (default 3 s, then it is stopped). */
  hookTimeoutMs: number;
}

export const ONCE_LIMITS: OnceLimits = {
  callTimeoutMs: 3_000,
  roundTimeoutMs: 8_000,
  hookTimeoutMs: 3_000,
};

/** Rounds in one run at most (the first and its retries). */
export const ONCE_MAX_ROUNDS = 4;

export interface OnceContext {
  consul: ConsulClient;
  opts: ElectOptions;
  dataDir: string;
  log: Logger;
  spawnHook: SpawnHook;
  limits?: Partial<OnceLimits>;
  /** This run was started by consul as a check (see health.ts). */
  runByConsul?: boolean;
  /** ACL token for the vouch check's header (vouch.ts). */
  checkToken?: string;
  /** Told the consul node's name once known (the caller's log lines name it then). */
  onNode?: (node: string) => void;
  /** Injected for tests: the clock, the sleep and the round. */
  now?: () => number;
  sleep?: Sleep;
  round?: (ctx: RoundContext, keptSession: string | undefined) => Promise<RoundResult>;
}

export interface OnceResult extends RoundResult {
  previousRole?: ElectState["role"];
  /** Whether a hook ran and exited 0 (undefined: none was due). */
  hookOk?: boolean;
  /** Rounds this run made (1 unless it waited out a lock-delay). */
  rounds: number;
}

/**
 * Pure: after round number `rounds` of a run (1-based) that started `elapsedMs` ago, how long
 * to wait before contending again, or undefined to end the run with this result. Retried: a
 * free lock this instance could not take (lock-delay) or a session lost while acquiring.
 * Not retried: a master, a lock held by another, no session because a bound check is critical
 * (that lasts longer than a run), or when the wait plus one more round (allowed one call
 * timeout) would not fit before the deadline.
 */
export function onceRetryMs(
  r: Pick<RoundResult, "role" | "retryInMs" | "blockedBy">,
  rounds: number,
  elapsedMs: number,
  limits: Pick<OnceLimits, "roundTimeoutMs" | "callTimeoutMs">,
): number | undefined {
  if (r.role === "master" || r.retryInMs === undefined || r.blockedBy !== undefined) {
    return undefined;
  }
  if (rounds >= ONCE_MAX_ROUNDS) return undefined;
  if (elapsedMs + r.retryInMs + limits.callTimeoutMs > limits.roundTimeoutMs) return undefined;
  return r.retryInMs;
}

export async function electOnce(ctx: OnceContext): Promise<OnceResult> {
  const limits = { ...ONCE_LIMITS, ...ctx.limits };
  const { consul, opts } = ctx;
  // lines name the consul node once it is known (the host name until then)
  let log = ctx.log;
  const now = ctx.now ?? Date.now;
  const sleep = ctx.sleep ?? realSleep;
  const round = ctx.round ?? electRound;
  const path = statePath(ctx.dataDir, opts.service);
  const { state, problem } = await readState(path);
  if (problem) log.warn(problem);

  const started = now();
  const deadline = AbortSignal.timeout(limits.roundTimeoutMs);
  const call = { timeoutMs: limits.callTimeoutMs, signal: deadline };
  const cutShort = (err: unknown) => deadline.aborted && err === deadline.reason;
  let result: RoundResult | undefined;
  let rounds = 0;
  /** This instance, for the hook (a slave's hook never names it as master). */
  const instance = { node: "", service: opts.service };
  try {
    const self = await consul.self(call);
    const me = { node: self.node, address: self.advertiseAddr ?? self.memberAddr };
    instance.node = self.node;
    if (self.node) {
      log = log.withNode(self.node);
      ctx.onNode?.(self.node);
    }
    let session = state.session;
    while (true) {
      let r: RoundResult;
      try {
        r = await round({
          consul,
          opts,
          me,
          log,
          call,
          runByConsul: ctx.runByConsul,
          agentBaseUrl: consul.address.startsWith("unix:") ? undefined : consul.baseUrl,
          checkToken: ctx.checkToken,
        }, session);
      } catch (err) {
        // a retry cut short by the deadline: the round before stands
        if (result && cutShort(err)) break;
        throw err;
      }
      result = r;
      rounds++;
      session = r.session;
      const wait = onceRetryMs(r, rounds, now() - started, limits);
      if (wait === undefined) break;
      log.info(`lock free but not taken (lock-delay), contending again in ${wait} ms`);
      await sleep(wait, deadline);
      if (deadline.aborted) break;
    }
  } catch (err) {
    if (cutShort(err)) {
      throw new ConsulUnreachableError(
        `consul at ${consul.address} did not complete an election round within ${limits.roundTimeoutMs} ms`,
        { cause: err },
      );
    }
    throw err;
  }

  let hook = hookFor(state.hooked, result.role, opts, instance, result.master);
  const next: ElectState = {
    session: result.session,
    role: result.role,
    master: result.master,
    hooked: hook.handled,
  };
  if (!sameState(state, next)) {
    try {
      await writeState(path, next);
    } catch (err) {
      // Local state only saves lookups: without it the session is found again through the
      // lock, and a role change is judged against the role the service's tags said before
      // this round (so a hook still runs once per change, not on every run).
      log.warn(`${describe(err)}; going on without local state`);
      hook = hookFor(result.tagRoleBefore, result.role, opts, instance, result.master);
    }
  }
  if (state.role !== result.role) {
    log.info(`role ${state.role ?? "(none)"} -> ${result.role}`, {
      master: result.master?.node ?? "(unknown)",
    });
  }
  const hookOk = hook.plan
    ? await runHook(hook.plan, ctx.spawnHook, limits.hookTimeoutMs, log)
    : undefined;
  return { ...result, previousRole: state.role, hookOk, rounds };
}
