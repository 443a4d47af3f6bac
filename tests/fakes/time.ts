/**
 * Virtual time for loops that take `sleep` and a clock as parameters: `sleep` registers a
 * timer, and `drive` runs a promise to completion, moving the clock to the next timer
 * whenever the code under test waits on nothing but timers. Nothing really sleeps.
 */
import type { Sleep } from "../../src/util/backoff.ts";

interface Timer {
  at: number;
  fire: () => void;
}

/** One turn of the event loop (lets real I/O, e.g. a temp-dir write, complete). */
const turn = () => new Promise<void>((resolve) => setTimeout(resolve, 0));

export class FakeTime {
  /** Milliseconds since the start of the test. */
  t = 0;
  /** Every sleep asked for, in ms. */
  readonly sleeps: number[] = [];
  #timers: Timer[] = [];

  constructor(readonly epochMs = Date.UTC(2026, 0, 1)) {}

  /** The clock in epoch milliseconds (Date.now's shape). */
  now = (): number => this.epochMs + this.t;

  sleep: Sleep = (ms, signal) =>
    new Promise<void>((resolve) => {
      this.sleeps.push(ms);
      if (signal?.aborted) return resolve();
      const timer: Timer = {
        at: this.t + Math.max(0, ms),
        fire: () => {
          signal?.removeEventListener("abort", onAbort);
          resolve();
        },
      };
      const onAbort = () => {
        this.#timers = this.#timers.filter((x) => x !== timer);
        resolve();
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#timers.push(timer);
    });

  /**
   * Runs `p` to completion. Before each step `step(t)` may change the world (kill a process,
   * stop the node). Fails when virtual time passes `limitMs` (a loop that never ends).
   */
  async drive<T>(p: Promise<T>, limitMs: number, step?: (t: number) => void): Promise<T> {
    let outcome: { ok: true; value: T } | { ok: false; error: unknown } | undefined;
    p.then((value) => outcome = { ok: true, value }, (error) => outcome = { ok: false, error });
    let idle = 0;
    for (let i = 0; i < 100_000; i++) {
      await turn();
      if (outcome) break;
      step?.(this.t);
      if (this.#timers.length === 0) {
        // Waiting on real I/O (a temp-dir write) for a few turns; never on nothing at all.
        if (++idle > 200) throw new Error(`waiting on no timer at ${this.t} ms: a deadlock`);
        continue;
      }
      idle = 0;
      const at = Math.min(...this.#timers.map((x) => x.at));
      if (at > limitMs) throw new Error(`still running at ${at} ms of virtual time`);
      this.t = at;
      const due = this.#timers.filter((x) => x.at <= at);
      this.#timers = this.#timers.filter((x) => x.at > at);
      for (const x of due) x.fire();
    }
    if (!outcome) throw new Error("still running after 100000 steps");
    if (!outcome.ok) throw outcome.error;
    return outcome.value;
  }
}
