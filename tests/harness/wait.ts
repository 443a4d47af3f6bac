/**
 * Bounded polling for tests: every wait has a deadline and says what it waited for.
 */
import { errorText } from "../../src/errors.ts";

export interface WaitOptions {
  /** Give up after this long (default 30 s: generous for a loaded 2-core CI machine). */
  timeoutMs?: number;
  /** Pause between attempts (default 100 ms). */
  intervalMs?: number;
  /** What is awaited, for the timeout message: "a raft leader", "3 alive members". */
  what: string;
  signal?: AbortSignal;
}

/**
 * Calls `cond` until it returns a truthy value, and returns that value. A throw from `cond`
 * counts as "not yet" and its message is shown if the wait times out. Rejects with an Error
 * naming `what` and the last error after `timeoutMs`.
 */
export async function waitFor<T>(
  cond: () => T | Promise<T>,
  opts: WaitOptions,
): Promise<NonNullable<T>> {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const intervalMs = opts.intervalMs ?? 100;
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  let attempts = 0;
  while (true) {
    opts.signal?.throwIfAborted();
    attempts++;
    try {
      const value = await cond();
      if (value) return value as NonNullable<T>;
      lastError = undefined;
    } catch (err) {
      lastError = err;
    }
    const left = deadline - Date.now();
    if (left <= 0) break;
    await sleep(Math.min(intervalMs, left), opts.signal);
  }
  const last = lastError === undefined ? "" : `; last error: ${errorText(lastError)}`;
  throw new Error(
    `timed out after ${timeoutMs} ms (${attempts} attempts) waiting for ${opts.what}${last}`,
    { cause: lastError },
  );
}

/** Resolves after `ms`, or rejects with the signal's reason when it aborts first. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
