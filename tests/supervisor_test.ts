/**
 * The supervisor's restart and stop logic with a fake spawn, a fake clock and a recorded
 * sleep: pure logic, nothing waits. The real-consul side is in supervisor_consul_test.ts.
 */
import assert from "node:assert/strict";
import type { ConsulProcess, ExitStatus, LineHandler } from "../src/consul/process.ts";
import {
  consulLineLevel,
  restartDelay,
  type Sleep,
  stopSignalOf,
  superviseConsul,
  type SuperviseOptions,
} from "../src/consul/supervisor.ts";
import { ConsulStartError, UsageError } from "../src/errors.ts";
import { Logger } from "../src/log.ts";

/** A fake consul: exits when told to, or on a signal it is set to obey. */
class FakeConsul implements ConsulProcess {
  readonly signals: Deno.Signal[] = [];
  readonly status: Promise<ExitStatus>;
  #resolve!: (s: ExitStatus) => void;
  #done = false;
  constructor(
    readonly pid: number,
    readonly obeys: ReadonlySet<Deno.Signal> = new Set(["SIGINT", "SIGTERM", "SIGKILL"]),
    readonly lines: string[] = [],
  ) {
    this.status = new Promise((r) => this.#resolve = r);
  }
  exit(code: number, signal: Deno.Signal | null = null): void {
    if (this.#done) return;
    this.#done = true;
    this.#resolve({ code, signal });
  }
  kill(signal: Deno.Signal): void {
    this.signals.push(signal);
    if (this.obeys.has(signal)) {
      this.exit(
        signal === "SIGKILL" ? 137 : signal === "SIGINT" ? 0 : 1,
        signal === "SIGKILL" ? signal : null,
      );
    }
  }
  tail(n = 50): string[] {
    return this.lines.slice(-n);
  }
}

interface Harness {
  opts: SuperviseOptions;
  ac: AbortController;
  logs: string[];
  sleeps: number[];
  started: number[];
  clock: { t: number };
  /** The fakes spawned so far. */
  procs: FakeConsul[];
}

/**
 * `plan` decides each spawn: a function from the spawn number (0-based) and the output handler
 * to a fake (or a thrown error). `onSleep` runs on every sleep (after it is recorded).
 */
function harness(
  plan: (i: number, onLine: LineHandler, h: Harness) => FakeConsul,
  extra: Partial<SuperviseOptions> = {},
  onSleep: (ms: number, h: Harness) => void = () => {},
): Harness {
  const ac = new AbortController();
  const h: Harness = {
    ac,
    logs: [],
    sleeps: [],
    started: [],
    clock: { t: 1_000_000 },
    procs: [],
    opts: undefined as unknown as SuperviseOptions,
  };
  const sleep: Sleep = (ms) => {
    h.sleeps.push(ms);
    h.clock.t += ms;
    onSleep(ms, h);
    return Promise.resolve();
  };
  h.opts = {
    spawn: (onLine) => {
      if (h.procs.length > 100) throw new Error("runaway restart loop in test");
      const p = plan(h.procs.length, onLine, h);
      h.procs.push(p);
      return Promise.resolve(p);
    },
    log: new Logger({ level: "debug", sink: (l) => h.logs.push(l), node: "n1" }),
    signal: ac.signal,
    sleep,
    random: () => 0.5,
    now: () => h.clock.t,
    restartBackoff: { initialMs: 100, maxMs: 500, resetAfterMs: 60_000 },
    stopTimeoutMs: 30_000,
    onStart: (pid) => h.started.push(pid),
    ...extra,
  };
  return h;
}

/** Resolves after pending microtasks and a macrotask: lets the supervisor reach its next await. */
const tick = () => new Promise((r) => setTimeout(r, 0));

Deno.test("restarts an unexpected exit with exponential backoff, jitter and a cap", async () => {
  const h = harness((i, onLine) => {
    const p = new FakeConsul(100 + i, undefined, [`boom ${i}`]);
    onLine("stdout", `2021-01-01T00:00:00Z [INFO]  agent: run ${i}`);
    if (i < 5) queueMicrotask(() => p.exit(1));
    return p;
  });
  const run = superviseConsul(h.opts);
  for (let i = 0; i < 20 && h.started.length < 6; i++) await tick();
  assert.deepEqual(h.started, [100, 101, 102, 103, 104, 105]);
  // base 100, 200, 400, 500 (cap), 500; random 0.5 → 3/4 of each
  assert.deepEqual(h.sleeps, [75, 150, 300, 375, 375]);
  h.ac.abort("SIGTERM");
  const res = await run;
  assert.deepEqual(res, { code: 1, signal: null, restarts: 5 });
  assert.deepEqual(h.procs[5].signals, ["SIGTERM"]);
  const exits = h.logs.filter((l) => l.includes("consul exited unexpectedly"));
  assert.equal(exits.length, 5);
  assert.match(exits[0], /ERROR.*pid=100 code=1 .*error="boom 0"/);
  assert.ok(h.logs.some((l) => /INFO +\[consul n1\] .*agent: run 3/.test(l)), h.logs.join("\n"));
});

Deno.test("backoff starts over after consul stayed up for resetAfterMs", async () => {
  const h = harness((i, _onLine, h) => {
    const p = new FakeConsul(200 + i);
    if (i < 3) {
      queueMicrotask(() => {
        if (i === 2) h.clock.t += 61_000; // the third one ran for a minute
        p.exit(2);
      });
    }
    return p;
  });
  const run = superviseConsul(h.opts);
  for (let i = 0; i < 20 && h.started.length < 4; i++) await tick();
  assert.deepEqual(h.sleeps, [75, 150, 75]);
  h.ac.abort("SIGINT");
  const res = await run;
  assert.equal(res.restarts, 3);
  assert.deepEqual(h.procs[3].signals, ["SIGINT"]);
});

Deno.test("the received signal is forwarded as is: SIGINT, SIGTERM (default)", async () => {
  for (
    const [reason, want] of [["SIGINT", "SIGINT"], ["SIGTERM", "SIGTERM"], [undefined, "SIGTERM"], [
      "SIGHUP",
      "SIGTERM",
    ]] as const
  ) {
    const h = harness((i) => new FakeConsul(300 + i));
    const run = superviseConsul(h.opts);
    await tick();
    h.ac.abort(reason);
    const res = await run;
    assert.deepEqual(h.procs.map((p) => p.signals), [[want]], String(reason));
    assert.equal(res.code, want === "SIGINT" ? 0 : 1);
    assert.equal(res.restarts, 0);
    assert.deepEqual(h.sleeps, [30_000]); // only the bounded wait for the exit
  }
  assert.equal(stopSignalOf(new DOMException("x", "AbortError")), "SIGTERM");
});

Deno.test("consul that ignores the signal gets SIGKILL after the stop timeout", async () => {
  const h = harness((i) => new FakeConsul(400 + i, new Set(["SIGKILL"])), {
    stopTimeoutMs: 12_345,
  });
  const run = superviseConsul(h.opts);
  await tick();
  h.ac.abort("SIGTERM");
  const res = await run;
  assert.deepEqual(h.procs[0].signals, ["SIGTERM", "SIGKILL"]);
  assert.deepEqual(h.sleeps, [12_345, 10_000]); // the stop timeout, then the SIGKILL bound
  assert.deepEqual(res, { code: 137, signal: "SIGKILL", restarts: 0 });
  assert.ok(h.logs.some((l) => /WARN .*did not exit in time: sending SIGKILL/.test(l)));
});

Deno.test("consul exiting within the stop timeout is not killed", async () => {
  // The fake ignores signals but exits on its own while the supervisor waits; the wait's
  // timer is then cancelled (the sleep resolves through its abort signal, not by time).
  const h = harness((i) => new FakeConsul(450 + i, new Set()));
  let cancelled = 0;
  h.opts.sleep = (_ms, signal) =>
    new Promise<void>((resolve) => {
      signal?.addEventListener("abort", () => (cancelled++, resolve()), { once: true });
      queueMicrotask(() => h.procs[0].exit(0));
    });
  const run = superviseConsul(h.opts);
  await tick();
  h.ac.abort("SIGTERM");
  const res = await run;
  assert.deepEqual(h.procs[0].signals, ["SIGTERM"]);
  assert.deepEqual(res, { code: 0, signal: null, restarts: 0 });
  assert.equal(cancelled, 1);
});

Deno.test("abort while waiting to restart: no new consul, the last exit status", async () => {
  const h = harness(
    (i) => {
      const p = new FakeConsul(500 + i);
      queueMicrotask(() => p.exit(3));
      return p;
    },
    {},
    (_ms, h) => h.ac.abort("SIGTERM"), // the signal arrives during the first backoff
  );
  const res = await superviseConsul(h.opts);
  assert.deepEqual(res, { code: 3, signal: null, restarts: 0 });
  assert.equal(h.procs.length, 1);
});

Deno.test("aborted before the start: consul is never started", async () => {
  const h = harness((i) => new FakeConsul(600 + i));
  h.ac.abort("SIGTERM");
  const res = await superviseConsul(h.opts);
  assert.equal(h.procs.length, 0);
  assert.deepEqual(res, { code: 0, signal: null, restarts: 0 });
});

Deno.test("abort during a slow spawn: the new consul is stopped at once", async () => {
  const h = harness((i) => new FakeConsul(650 + i));
  const spawn = h.opts.spawn;
  h.opts.spawn = async (onLine) => {
    h.ac.abort("SIGINT");
    await tick();
    return spawn(onLine);
  };
  const res = await superviseConsul(h.opts);
  assert.deepEqual(h.procs[0].signals, ["SIGINT"]);
  assert.equal(res.code, 0);
});

Deno.test("a missing binary is fatal; other start failures are retried", async () => {
  const missing = harness(() => {
    throw new UsageError('consul binary "nope" not found: install consul or give --consul-bin');
  });
  await assert.rejects(superviseConsul(missing.opts), /not found: install consul/);
  assert.deepEqual(missing.sleeps, []);

  let calls = 0;
  const flaky = harness((i) => {
    if (calls++ < 2) throw new Error(`port in use ${i}`);
    return new FakeConsul(700 + i);
  });
  const run = superviseConsul(flaky.opts);
  for (let i = 0; i < 20 && flaky.started.length < 1; i++) await tick();
  assert.deepEqual(flaky.started, [700]);
  assert.deepEqual(flaky.sleeps, [75, 150]);
  assert.equal(
    flaky.logs.filter((l) => /consul could not be started.*port in use/.test(l)).length,
    2,
  );
  flaky.ac.abort("SIGTERM");
  assert.equal((await run).restarts, 2);
});

Deno.test("maxRestarts bounds the loop", async () => {
  const h = harness((i) => {
    const p = new FakeConsul(800 + i);
    queueMicrotask(() => p.exit(9));
    return p;
  }, { maxRestarts: 3, failFast: { exits: 100, withinMs: 10_000 } });
  await assert.rejects(superviseConsul(h.opts), /gave up after 3 restarts \(last exit code 9\)/);
  assert.equal(h.procs.length, 4);
  assert.equal(h.sleeps.length, 3);
});

Deno.test("consul exiting at once the same way 3 times: ConsulStartError quoting its own line, usage text at debug", async () => {
  const h = harness((i, onLine) => {
    const p = new FakeConsul(900 + i, undefined, ["  -ui-dir value", "    Path to UI"]);
    onLine("stderr", "flag provided but not defined: -bogus-flag");
    onLine("stderr", "Usage: consul agent [options]");
    for (let k = 0; k < 20; k++) onLine("stderr", `  -flag${k} value`);
    queueMicrotask(() => p.exit(1));
    return p;
  });
  await assert.rejects(
    superviseConsul(h.opts),
    (err: Error) =>
      err instanceof ConsulStartError && !err.ranBefore &&
      /^consul cannot start: flag provided but not defined: -bogus-flag \(exit code 1, 3 times in a row at once\)$/
        .test(err.message),
  );
  assert.equal(h.procs.length, 3);
  const loud = h.logs.filter((l) => !/ DEBUG /.test(l) && /-flag\d+ value|Usage:/.test(l));
  assert.deepEqual(loud, [], "usage text only at debug");
  assert.ok(h.logs.some((l) => / WARN .*flag provided but not defined/.test(l)), h.logs.join("\n"));
});

Deno.test("fail-fast needs the same way, at once: different lines, or a consul that ran a while, keep restarting", async () => {
  // Different error lines each time (a transient cause): restarted, no error.
  const varied = harness((i, onLine) => {
    const p = new FakeConsul(1000 + i);
    onLine("stdout", `2021-01-01T00:00:0${i}Z [ERROR] agent: something ${i}`);
    if (i < 5) queueMicrotask(() => p.exit(1));
    return p;
  });
  const a = superviseConsul(varied.opts);
  for (let i = 0; i < 30 && varied.started.length < 6; i++) await tick();
  assert.equal(varied.started.length, 6);
  varied.ac.abort("SIGTERM");
  assert.equal((await a).restarts, 5);

  // The same line, but each consul ran for a minute (crashed after a while): restarted.
  const slow = harness((i, onLine, h) => {
    const p = new FakeConsul(1100 + i);
    onLine("stdout", "2021-01-01T00:00:00Z [ERROR] agent: Error starting agent: boom");
    if (i < 4) {
      queueMicrotask(() => {
        h.clock.t += 61_000;
        p.exit(1);
      });
    }
    return p;
  });
  const b = superviseConsul(slow.opts);
  for (let i = 0; i < 30 && slow.started.length < 5; i++) await tick();
  assert.equal(slow.started.length, 5);
  slow.ac.abort("SIGTERM");
  assert.equal((await b).restarts, 4);

  // The same [ERROR] line with different timestamps counts as the same way.
  const stamped = harness((i, onLine) => {
    const p = new FakeConsul(1200 + i);
    onLine("stdout", `2021-01-01T00:00:0${i}.5Z [ERROR] agent: Error starting agent: bind`);
    queueMicrotask(() => p.exit(1));
    return p;
  });
  await assert.rejects(
    superviseConsul(stamped.opts),
    /consul cannot start: \[ERROR\] agent: Error starting agent: bind/,
  );
});

Deno.test("hung consul (alive, API silent after answering): killed with SIGKILL and started again; never before a first answer", async () => {
  let answering = true;
  let asked = 0;
  const h = harness(
    (i) => new FakeConsul(1300 + i),
    {
      watchdog: {
        hungAfterMs: 3_000,
        intervalMs: 1_000,
        answers: () => {
          asked++;
          return Promise.resolve(answering);
        },
      },
    },
  );
  // The watchdog's sleeps move the clock and yield (so the loop never spins unseen).
  h.opts.sleep = (ms, signal) => {
    h.sleeps.push(ms);
    h.clock.t += ms;
    return new Promise((r) => {
      const t = setTimeout(r, 0);
      signal?.addEventListener("abort", () => {
        clearTimeout(t);
        r();
      }, { once: true });
    });
  };
  const run = superviseConsul(h.opts);
  for (let i = 0; i < 200 && asked < 3; i++) await tick();
  assert.deepEqual(h.procs[0].signals, [], "answering: left alone");
  answering = false; // SIGSTOP
  for (let i = 0; i < 500 && h.started.length < 2; i++) await tick();
  assert.deepEqual(h.procs[0].signals, ["SIGKILL"]);
  assert.deepEqual(h.started, [1300, 1301], "started again");
  assert.ok(
    h.logs.some((l) =>
      /ERROR .*consul is alive but its HTTP API has not answered.*pid=1300/.test(l)
    ),
    h.logs.join("\n"),
  );
  // The new consul has not answered yet: however long that lasts, it is not killed for it.
  const before = asked;
  for (let i = 0; i < 500 && asked < before + 20; i++) await tick();
  assert.ok(asked >= before + 20, "asked on");
  assert.deepEqual(h.procs[1].signals, [], "not hung before its first answer");
  h.ac.abort("SIGTERM");
  const res = await run;
  assert.equal(res.restarts, 1);
  assert.deepEqual(h.procs[1].signals, ["SIGTERM"]);
});

Deno.test("invalid backoff is rejected: no busy loop", async () => {
  for (
    const b of [{ initialMs: 0, maxMs: 10 }, { initialMs: 10, maxMs: 5 }, {
      initialMs: NaN,
      maxMs: 5,
    }]
  ) {
    const h = harness((i) => new FakeConsul(900 + i), { restartBackoff: b });
    await assert.rejects(superviseConsul(h.opts), RangeError);
    assert.equal(h.procs.length, 0);
  }
});

Deno.test("restartDelay: between half and all of the capped exponential", () => {
  const b = { initialMs: 1000, maxMs: 30_000 };
  const table: [number, number, number][] = [
    [0, 500, 1000],
    [1, 1000, 2000],
    [4, 8000, 16_000],
    [5, 15_000, 30_000],
    [50, 15_000, 30_000],
    [10_000, 15_000, 30_000],
  ];
  for (const [attempt, lo, hi] of table) {
    assert.equal(restartDelay(attempt, b, () => 0), lo);
    assert.equal(restartDelay(attempt, b, () => 0.999999), hi);
  }
  assert.equal(restartDelay(0, { initialMs: 1, maxMs: 1 }, () => 0), 1);
});

Deno.test("consulLineLevel maps consul's own level tags", () => {
  const table: [string, "stdout" | "stderr", string][] = [
    ["2021-01-01T00:00:00.000Z [ERROR] agent: failed", "stdout", "error"],
    ["    2021/01/01 00:00:00 [ERR] agent: failed", "stdout", "error"],
    ["2021-01-01T00:00:00.000Z [WARN]  agent: slow", "stdout", "warn"],
    ["2021-01-01T00:00:00.000Z [INFO]  agent: ok", "stderr", "info"],
    ["2021-01-01T00:00:00.000Z [DEBUG] agent: x", "stdout", "debug"],
    ["2021-01-01T00:00:00.000Z [TRACE] agent: x", "stdout", "debug"],
    ["==> Starting Consul agent...", "stdout", "info"],
    ["==> Error starting agent", "stderr", "warn"],
  ];
  for (const [line, stream, want] of table) assert.equal(consulLineLevel(stream, line), want, line);
});
