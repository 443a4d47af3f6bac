/**
 * Keeps one consul agent running until told to stop.
 *
 * - Output is forwarded line by line to the logger (component "consul"), at the level the
 *   consul line itself carries.
 * - When `signal` aborts, its reason names the signal auto-consul received ("SIGINT" or
 *   "SIGTERM", anything else counts as SIGTERM): that signal goes to consul, which then leaves
 *   the cluster or not as its generated config says (a client leaves, a server does not).
 *   After `stopTimeoutMs` consul gets SIGKILL. The result is consul's exit status.
 * - An unexpected exit is logged with the last output lines and consul is started again
 *   after an exponential backoff with jitter (capped; reset once consul stayed up for
 *   `resetAfterMs`). A start that fails (other than a missing binary) counts as an exit.
 *
 * Spawn, sleep, clock and random are parameters, so the restart loop is tested without
 * waiting. Model: consul `agent/retry_join.go`, std `async/retry.ts`.
 */
import { classify, ConsulStartError, describe } from "../errors.ts";
import type { Level, Logger } from "../log.ts";
import { backoffDelay, type Sleep, sleep as realSleep } from "../util/backoff.ts";
import type { ConsulProcess, ExitStatus, LineHandler } from "./process.ts";

export type { Sleep };

export interface RestartBackoff {
  /** First delay; must be >= 1 ms (no busy loop). */
  initialMs: number;
  /** Cap of the delay. */
  maxMs: number;
  /** Uptime after which the next failure starts again from `initialMs`. Default 60 s. */
  resetAfterMs?: number;
}

export interface SuperviseOptions {
  /** Starts consul with the given output handler. */
  spawn: (onLine: LineHandler) => Promise<ConsulProcess>;
  log: Logger;
  /** Aborted to stop; `signal.reason` is "SIGINT" or "SIGTERM". */
  signal: AbortSignal;
  /** Resolves after `ms`, or early when its signal aborts. Default: a timer. */
  sleep?: Sleep;
  /** In [0, 1). Default Math.random. */
  random?: () => number;
  /** Milliseconds clock. Default Date.now. */
  now?: () => number;
  restartBackoff?: RestartBackoff;
  /** How long consul gets to exit after the forwarded signal before SIGKILL (STOP_TIMEOUT_MS). */
  stopTimeoutMs?: number;
  /** Give up (throw) after this many consecutive restarts. Default: never. */
  maxRestarts?: number;
  /**
   * Consul exiting this many times in a row, each within `withinMs` of its start, with the
   * same exit code and error line, cannot start (a bad flag or config, a port taken): a
   * ConsulStartError quoting consul's own error line is thrown. Default 3 times, 10 s.
   */
  failFast?: { exits: number; withinMs: number };
  /**
   * Hung-consul watchdog: `answers` asks consul's HTTP API once (resolving true when it
   * answered at all, an HTTP error included). Once a consul has answered, one that stays
   * silent for `hungAfterMs` while its process lives (SIGSTOP, a deadlock) is logged, killed
   * with SIGKILL and started again like any unexpected exit. Asked every `intervalMs`.
   */
  watchdog?: {
    answers: (signal: AbortSignal) => Promise<boolean>;
    hungAfterMs: number;
    intervalMs: number;
  };
  /** Called with each new consul pid. */
  onStart?: (pid: number) => void;
  /** Replaces the default forwarding of consul's output to `log`. */
  onLine?: LineHandler;
}

export interface SupervisorResult {
  /** Consul's exit code (the last one, when stopped while waiting to restart). */
  code: number;
  signal: Deno.Signal | null;
  /** How many times consul was restarted after an unexpected exit. */
  restarts: number;
}

/** How long a stopped consul gets to exit before SIGKILL, unless told otherwise. */
export const STOP_TIMEOUT_MS = 30_000;

export const DEFAULT_BACKOFF: Required<RestartBackoff> = {
  initialMs: 1_000,
  maxMs: 30_000,
  resetAfterMs: 60_000,
};

/** The stop signal for an abort reason: SIGINT when that is what was received, else SIGTERM. */
export function stopSignalOf(reason: unknown): "SIGINT" | "SIGTERM" {
  return reason === "SIGINT" ? "SIGINT" : "SIGTERM";
}

/**
 * Delay before restart number `attempt` (0-based): "equal jitter", half fixed and half
 * random, so it is never below half of min(maxMs, initialMs * 2^attempt).
 */
export function restartDelay(
  attempt: number,
  backoff: RestartBackoff,
  random: () => number,
): number {
  return Math.max(1, backoffDelay(attempt, backoff, random));
}

/** The level of a consul log line ("... [WARN]  agent: ..."). */
export function consulLineLevel(stream: "stdout" | "stderr", line: string): Level {
  const m = /\[(TRACE|DEBUG|INFO|WARN|ERROR|ERR)\]/.exec(line.slice(0, 80));
  if (m) {
    const tag = m[1];
    if (tag === "ERROR" || tag === "ERR") return "error";
    if (tag === "WARN") return "warn";
    if (tag === "INFO") return "info";
    return "debug";
  }
  return stream === "stderr" ? "warn" : "info";
}

export async function superviseConsul(opts: SuperviseOptions): Promise<SupervisorResult> {
  const backoff = { ...DEFAULT_BACKOFF, ...opts.restartBackoff };
  if (!(backoff.initialMs >= 1 && backoff.maxMs >= backoff.initialMs)) {
    throw new RangeError(
      `invalid restart backoff ${backoff.initialMs}..${backoff.maxMs} ms: expected 1 <= initial <= max`,
    );
  }
  const sleep = opts.sleep ?? realSleep;
  const random = opts.random ?? Math.random;
  const now = opts.now ?? Date.now;
  const stopTimeoutMs = opts.stopTimeoutMs ?? STOP_TIMEOUT_MS;
  const maxRestarts = opts.maxRestarts ?? Infinity;
  const { log, signal } = opts;
  const consulLog = log.child("consul");
  const forward: LineHandler = opts.onLine ??
    ((stream, line) => consulLog[consulLineLevel(stream, line)](line.trim()));
  const failFast = opts.failFast ?? { exits: 3, withinMs: 10_000 };
  let output = new OutputWatch();
  // Consul's usage text (printed after a bad flag, ~130 lines) is logged at debug only.
  const onLine: LineHandler = (stream, line) => {
    const w = output;
    if (w.see(line)) forward(stream, line);
    else consulLog.debug(line.trim());
  };
  let streak = 0;
  let lastWay = "";
  let ranBefore = false;

  let onAbort: () => void = () => {};
  const aborted = new Promise<"abort">((resolve) => {
    onAbort = () => resolve("abort");
    if (signal.aborted) resolve("abort");
    else signal.addEventListener("abort", onAbort, { once: true });
  });

  let last: ExitStatus = { code: 0, signal: null };
  let restarts = 0;
  let attempt = 0;
  try {
    while (!signal.aborted) {
      let child: ConsulProcess | undefined;
      const startedAt = now();
      output = new OutputWatch();
      try {
        child = await opts.spawn(onLine);
      } catch (err) {
        // A missing binary, a leftover that cannot be verified: restarting cannot help.
        if (classify(err) === "permanent") throw err;
        log.error("consul could not be started", { error: describe(err) });
      }
      if (child !== undefined) {
        opts.onStart?.(child.pid);
        log.info("consul started", { pid: child.pid });
        const watching = new AbortController();
        const hung = opts.watchdog ? watch(opts.watchdog, child, watching.signal) : undefined;
        const first = await Promise.race([child.status, aborted]).finally(() => watching.abort());
        await hung;
        if (first === "abort") return { ...(await stop(child)), restarts };
        last = first;
        if (signal.aborted) break;
        const uptimeMs = now() - startedAt;
        if (uptimeMs >= backoff.resetAfterMs) attempt = 0;
        const errorLine = output.errorLine() ?? child.tail(1)[0] ?? "";
        log.error("consul exited unexpectedly", {
          pid: child.pid,
          code: first.code,
          signal: first.signal,
          uptimeSeconds: Math.round(uptimeMs / 100) / 10,
          error: errorLine.slice(0, 500),
        });
        if (uptimeMs < failFast.withinMs) {
          const way = `${first.code}|${first.signal}|${withoutStamp(errorLine)}`;
          streak = way === lastWay ? streak + 1 : 1;
          lastWay = way;
          if (streak >= failFast.exits) {
            throw new ConsulStartError(
              `consul cannot start: ${withoutStamp(errorLine).slice(0, 300)} (exit code ` +
                `${first.code}, ${streak} times in a row at once)`,
              { ranBefore },
            );
          }
        } else {
          streak = 0;
          ranBefore = true;
        }
      }
      if (restarts >= maxRestarts) {
        throw new Error(
          `consul keeps exiting: gave up after ${restarts} restarts (last exit code ${last.code})`,
        );
      }
      const delay = restartDelay(attempt++, backoff, random);
      log.info("restarting consul", { retryInMs: delay, restart: restarts + 1 });
      await sleep(delay, signal);
      if (signal.aborted) break;
      restarts++;
    }
    return { ...last, restarts };
  } finally {
    signal.removeEventListener("abort", onAbort);
  }

  /**
   * Watches one consul until `until` aborts (it exited, or auto-consul stops): kills it when
   * its API, having answered once, stays silent for `hungAfterMs`.
   */
  async function watch(
    w: NonNullable<SuperviseOptions["watchdog"]>,
    child: ConsulProcess,
    until: AbortSignal,
  ): Promise<void> {
    let lastAnswer: number | undefined;
    while (!until.aborted) {
      await sleep(w.intervalMs, until);
      if (until.aborted) return;
      const ask = new AbortController();
      const stopAsking = () => ask.abort();
      until.addEventListener("abort", stopAsking, { once: true });
      const timer = sleep(Math.max(1, Math.min(w.intervalMs, w.hungAfterMs / 2)), ask.signal)
        .then(() => false);
      let answered: boolean;
      try {
        answered = await Promise.race([w.answers(ask.signal).catch(() => false), timer]);
      } finally {
        ask.abort();
        until.removeEventListener("abort", stopAsking);
      }
      if (until.aborted) return;
      const t = now();
      if (answered) {
        lastAnswer = t;
        continue;
      }
      if (lastAnswer !== undefined && t - lastAnswer >= w.hungAfterMs) {
        log.error(
          "consul is alive but its HTTP API has not answered: killing it to start it again",
          {
            pid: child.pid,
            silentSeconds: Math.round((t - lastAnswer) / 100) / 10,
            hungAfterSeconds: w.hungAfterMs / 1000,
          },
        );
        child.kill("SIGKILL"); // a stopped process cannot act on SIGTERM
        return;
      }
    }
  }

  async function stop(child: ConsulProcess): Promise<ExitStatus> {
    const sig = stopSignalOf(signal.reason);
    log.info("stopping consul", { pid: child.pid, signal: sig });
    child.kill(sig);
    let status = await within(child.status, stopTimeoutMs);
    if (status === undefined) {
      log.warn("consul did not exit in time: sending SIGKILL", {
        pid: child.pid,
        waitedSeconds: stopTimeoutMs / 1000,
      });
      child.kill("SIGKILL");
      status = await within(child.status, 10_000);
      if (status === undefined) throw new Error(`consul (pid ${child.pid}) survived SIGKILL`);
    }
    log.info("consul stopped", { pid: child.pid, code: status.code, signal: status.signal });
    return status;
  }

  /** The value of `p`, or undefined after `ms` (the timer is cancelled either way). */
  async function within<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
    const timer = new AbortController();
    try {
      return await Promise.race([p, sleep(ms, timer.signal).then(() => undefined)]);
    } finally {
      timer.abort();
    }
  }
}

/**
 * What one consul process printed that matters when it exits: its own error line (a bad
 * flag, a config that does not parse, "Error starting agent"), and whether its usage text
 * has begun (lines from there on are not worth a log line each).
 */
class OutputWatch {
  #flag: string | undefined;
  #banner: string | undefined;
  #lastError: string | undefined;
  #inUsage = false;

  /** Records a line; false when it belongs to the usage text. */
  see(line: string): boolean {
    const t = line.trim();
    if (this.#inUsage) return false;
    if (/^flag provided but not defined|^invalid value .* for flag/.test(t)) this.#flag ??= t;
    else if (/^Usage:/.test(t) && this.#flag !== undefined) {
      this.#inUsage = true;
      return false;
    } else if (/^==> .*(error|fail|invalid|cannot|unknown)/i.test(t)) this.#banner ??= t;
    else if (/\[ERROR\]/.test(t.slice(0, 80))) this.#lastError = t;
    return true;
  }

  /** Consul's own error line, if it printed one. */
  errorLine(): string | undefined {
    return this.#flag ?? this.#banner ?? this.#lastError;
  }
}

/** A consul log line without its leading timestamp (so that repeats compare equal). */
function withoutStamp(line: string): string {
  return line.trim().replace(/^\d{4}-\d\d-\d\dT[\d:.]+Z?\s+/, "");
}
