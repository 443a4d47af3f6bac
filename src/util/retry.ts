/**
 * Retry what may fail for a while, give up on what cannot work: the one retry loop of the
 * start of `run`. Failures are sorted by `classify` (errors.ts): permanent ones are thrown at
 * once; "denied" ones (access denied, no credentials) are retried for `deniedGraceMs`, then
 * thrown; transient ones are retried with backoff and jitter until `signal` aborts. Warnings
 * come at a bounded rate: the first failure, then at most one per `warnEveryMs` with the
 * number of failures since the last one.
 */
import { classify, DENIED_GRACE_MS, describe } from "../errors.ts";
import type { Logger } from "../log.ts";
import { backoffDelay, type BackoffOptions, type Sleep } from "./backoff.ts";

export interface RetryDeps {
  log: Logger;
  sleep: Sleep;
  random: () => number;
  /** Milliseconds clock. */
  now: () => number;
}

export interface RetryOptions {
  backoff: BackoffOptions;
  /** How long access-denied failures are retried before they count as permanent. */
  deniedGraceMs?: number;
  /** At most one warning per this many milliseconds. Default 60 s. */
  warnEveryMs?: number;
}

/** The value of `fn`, or undefined when `signal` aborted first. Throws permanent failures. */
export async function retryTransient<T>(
  what: string,
  fn: () => Promise<T>,
  opts: RetryOptions,
  deps: RetryDeps,
  signal: AbortSignal,
): Promise<T | undefined> {
  const grace = opts.deniedGraceMs ?? DENIED_GRACE_MS;
  const warnEvery = opts.warnEveryMs ?? 60_000;
  let deniedSince: number | undefined;
  let lastWarn = -Infinity;
  let unreported = 0;
  for (let attempt = 0; !signal.aborted; attempt++) {
    try {
      return await fn();
    } catch (err) {
      const kind = classify(err);
      if (kind === "permanent") throw err;
      const t = deps.now();
      if (kind === "denied") {
        deniedSince ??= t;
        if (t - deniedSince >= grace) throw err;
      } else {
        deniedSince = undefined;
      }
      const delay = backoffDelay(attempt, opts.backoff, deps.random);
      unreported++;
      if (t - lastWarn >= warnEvery) {
        deps.log.warn(`${what} failed; retrying`, {
          error: describe(err),
          retryInMs: delay,
          ...(unreported > 1 ? { failures: unreported } : {}),
          ...(kind === "denied" ? { givingUpInMs: Math.max(0, grace - (t - deniedSince!)) } : {}),
        });
        lastWarn = t;
        unreported = 0;
      } else {
        deps.log.debug(`${what} failed; retrying`, { error: describe(err), retryInMs: delay });
      }
      await deps.sleep(delay, signal);
    }
  }
  return undefined;
}
