/**
 * `elect --watch`: a long-running election. Each round passes the elector's alive check
 * (alive.ts: bound to the session, so a killed elector loses the lock one TTL later) and renews
 * the session; between rounds a blocking query on the lock key wakes it at once when the lock
 * changes, and otherwise half the session TTL after the round started (the renewal). A free
 * lock it could not take (lock-delay) or a missing session (a critical check) is retried soon.
 * Errors after the first round are logged and retried with backoff. On abort (SIGTERM/SIGINT)
 * it tags itself slave, releases the lock (an explicit release has no lock-delay, so another
 * instance takes over at once), destroys its session, then deregisters its alive check.
 */
import type { ElectOptions } from "./options.ts";
import type { ConsulClient } from "../consul/client.ts";
import { nextBlockingIndex } from "../consul/types.ts";
import { describe } from "../errors.ts";
import type { Logger } from "../log.ts";
import { backoffDelay, type Sleep } from "../util/backoff.ts";
import { hookFor, runHook, type SpawnHook } from "./hooks.ts";
import { sessionCandidate } from "./lock.ts";
import { electRound, type RoundResult } from "./round.ts";
import { type ElectState, readState, sameState, statePath, writeState } from "./state.ts";
import { reregistration } from "./tags.ts";
import { vouchKey } from "./vouch.ts";
import { aliveCheckId } from "./alive.ts";

export interface WatchContext {
  consul: ConsulClient;
  opts: ElectOptions;
  dataDir: string;
  log: Logger;
  spawnHook: SpawnHook;
  /** Aborting it stops the watch (then the lock is released). */
  signal: AbortSignal;
  sleep: Sleep;
  random: () => number;
  /** Called after every round; `changed`: role or master differ from the round before. */
  onRound?: (result: RoundResult, changed: boolean) => void;
  callTimeoutMs?: number;
  hookTimeoutMs?: number;
  /** ACL token for the vouch check's header (vouch.ts). */
  checkToken?: string;
}

/** A holder seen unhealthy this long without releasing is deposed (its elector may be dead). */
export const DEPOSE_GRACE_MS = 800;

/**
 * Pure: how long to wait for a change before the next round: what the round asked for, else
 * the renewal period counted from the start of the round (a round passes the alive check at
 * its start, so rounds start at most `renewMs` apart and the check keeps half its TTL spare).
 */
export function nextRoundInMs(
  retryInMs: number | undefined,
  renewMs: number,
  roundTookMs: number,
): number {
  const renewIn = Math.max(1, renewMs - Math.max(0, roundTookMs));
  return Math.min(retryInMs ?? renewIn, renewIn);
}

/** Pure: how long the blocking query on the lock may wait before the next renewal round. */
export function renewEveryMs(sessionTtlSeconds: number): number {
  return Math.max(1000, Math.floor(sessionTtlSeconds * 1000 / 2));
}

export async function electWatch(ctx: WatchContext): Promise<void> {
  const { consul, opts, signal } = ctx;
  let log = ctx.log;
  const callTimeoutMs = ctx.callTimeoutMs ?? 5_000;
  const hookTimeoutMs = ctx.hookTimeoutMs ?? 60_000;
  const path = statePath(ctx.dataDir, opts.service);
  const read = await readState(path);
  if (read.problem) log.warn(read.problem);
  let state: ElectState = read.state;
  const call = { timeoutMs: callTimeoutMs, signal };

  const self = await consul.self(call);
  const me = { node: self.node, address: self.advertiseAddr ?? self.memberAddr };
  // lines name the consul node (not the host)
  if (self.node) log = log.withNode(self.node);
  const agentBaseUrl = consul.address.startsWith("unix:") ? undefined : consul.baseUrl;
  let healthIndex = 0;
  const unhealthySince = new Map<string, number>();
  let session = state.session;
  let first = true;
  /** Sessions this watch created: whatever a round cut short by the signal took, they hold. */
  const created = new Set<string>();
  let failures = 0;
  let hooks: Promise<unknown> = Promise.resolve();
  const renewMs = renewEveryMs(opts.sessionTtl);
  // retries come within the renewal period too: the alive check must not lapse meanwhile
  const backoffMaxMs = Math.min(10_000, renewMs);

  try {
    while (!signal.aborted) {
      let result: RoundResult;
      const roundStart = Date.now();
      try {
        result = await electRound(
          {
            consul,
            opts,
            me,
            log,
            call,
            agentBaseUrl,
            checkToken: ctx.checkToken,
            aliveTtlSeconds: opts.sessionTtl,
            deposeGraceMs: DEPOSE_GRACE_MS,
            unhealthySince,
            onSessionCreated: (id) => created.add(id),
          },
          session,
        );
      } catch (err) {
        if (signal.aborted) break;
        if (first) throw err;
        const delay = backoffDelay(failures++, { initialMs: 500, maxMs: backoffMaxMs }, ctx.random);
        log.warn(`election round failed, retrying in ${delay} ms: ${describe(err)}`);
        await ctx.sleep(delay, signal);
        continue;
      }
      failures = 0;
      session = result.session;
      const hook = hookFor(
        state.hooked,
        result.role,
        opts,
        { node: me.node, service: opts.service },
        result.master,
      );
      const next: ElectState = {
        session,
        role: result.role,
        master: result.master,
        hooked: hook.handled,
      };
      const changed = state.role !== result.role || state.master?.node !== result.master?.node;
      const plan = hook.plan;
      if (state.role !== result.role) {
        log.info(`role ${state.role ?? "(none)"} -> ${result.role}`, {
          master: result.master?.node ?? "(unknown)",
        });
      }
      if (!sameState(state, next)) {
        try {
          await writeState(path, next);
        } catch (err) {
          // local state is an optimisation: the session is found again through the lock
          log.warn(`${describe(err)}; going on without local state`);
        }
      }
      state = next;
      ctx.onRound?.(result, changed || first);
      first = false;
      // hooks run one after another, in order, without holding up the election
      if (plan) hooks = hooks.then(() => runHook(plan, ctx.spawnHook, hookTimeoutMs, log));

      // wake on a change of the lock or of the service's health (a check at warning), or
      // after half the session TTL (the renewal), or sooner when the round asked to retry
      const woken = new AbortController();
      const both = {
        ...call,
        signal: AbortSignal.any([signal, woken.signal]),
        waitMs: nextRoundInMs(result.retryInMs, renewMs, Date.now() - roundStart),
      };
      const waits = [
        consul.kvGet(opts.lockKey, { ...both, index: nextBlockingIndex(0, result.lockIndex) }),
        consul.healthService(result.serviceName, { ...both, index: healthIndex }).then((h) => {
          healthIndex = nextBlockingIndex(healthIndex, h.index);
        }),
      ];
      try {
        await Promise.race(waits);
      } catch (err) {
        if (signal.aborted) break;
        const delay = backoffDelay(failures++, { initialMs: 500, maxMs: backoffMaxMs }, ctx.random);
        log.warn(`watching the lock failed, retrying in ${delay} ms: ${describe(err)}`);
        await ctx.sleep(delay, signal);
      } finally {
        woken.abort();
        await Promise.allSettled(waits);
      }
    }
  } finally {
    // a round that ran, or one cut short after taking a session: step down (only what is ours)
    if (!first || created.size > 0 || (signal.aborted && session !== undefined)) {
      await stepDown(consul, opts, [session, ...created], me, log);
      await writeState(path, {}).catch((err) => log.error(describe(err)));
    }
    const giveUp = new AbortController();
    await Promise.race([hooks, ctx.sleep(hookTimeoutMs, giveUp.signal)]);
    giveUp.abort();
  }
}

/**
 * Leaving the election: tag slave first (the query must never answer with two masters), then
 * release the vouch key and the lock (no lock-delay for an explicit release), then destroy the session. Each
 * step is bounded and logged when it fails; none throws.
 */
async function stepDown(
  consul: ConsulClient,
  opts: ElectOptions,
  sessions: readonly (string | undefined)[],
  me: { node: string },
  log: Logger,
): Promise<void> {
  const call = { timeoutMs: 2_000 };
  try {
    const service = await consul.agentService(opts.service, call);
    const reg = service && reregistration(service, "slave", opts);
    if (reg) await consul.serviceRegister(reg, call);
  } catch (err) {
    log.warn(`could not tag the service slave on the way out: ${describe(err)}`);
  }
  const ours = new Set(sessions.filter((id) => id !== undefined));
  try {
    const lock = await consul.kvGet(opts.lockKey, call);
    // a round cut short by the signal may have taken the lock with a session whose creation
    // it could not report
    const found = sessionCandidate(sessions[0], lock, { node: me.node, service: opts.service });
    if (found?.adopted && (await consul.sessionInfo(found.id, call))?.node === me.node) {
      ours.add(found.id);
    }
    // the vouch key before the lock (round.ts's order), so it stays a slave's plain key even
    // when destroying the session fails below
    const vKey = vouchKey(opts.lockKey, me.node);
    const vouch = await consul.kvGet(vKey, call);
    if (vouch.session && ours.has(vouch.session)) {
      await consul.kvPut(vKey, "", { ...call, release: vouch.session });
    }
    if (lock.session && ours.has(lock.session)) {
      await consul.kvPut(opts.lockKey, lock.value ?? "", { ...call, release: lock.session });
      log.info("released the lock");
    }
  } catch (err) {
    log.warn(`could not release the lock: ${describe(err)}`);
  }
  for (const id of ours) {
    try {
      await consul.sessionDestroy(id, call);
    } catch (err) {
      log.warn(`could not destroy session ${id}: ${describe(err)}`);
    }
  }
  // a stopped elector is not a failing instance: its alive check goes (alive.ts)
  try {
    await consul.checkDeregister(aliveCheckId(opts.service), call);
  } catch (err) {
    log.warn(`could not deregister the alive check: ${describe(err)}`);
  }
}
