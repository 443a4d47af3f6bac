/**
 * `elect --once` without consul: the retry after a lock-delay (issue 15 build 1) and a run
 * without local state (issue 12 build 3). The round is injected, and so are the clock and the
 * sleep: a fake clock that only moves when the run sleeps.
 */
import assert from "node:assert/strict";
import type { ElectOptions } from "../src/elect/options.ts";
import type { ConsulClient } from "../src/consul/client.ts";
import type { LockHolder } from "../src/elect/lock.ts";
import { electOnce, ONCE_MAX_ROUNDS, onceRetryMs } from "../src/elect/once.ts";
import { retryDelayMs, type RoundResult } from "../src/elect/round.ts";
import { Logger } from "../src/log.ts";

const S1 = "d5305bd7-4532-8c47-ae07-89b57be961a9";
const me: LockHolder = { node: "web-1", address: "10.0.0.5", port: 6379, service: "redis" };
const other: LockHolder = { ...me, node: "web-2", address: "10.0.0.6" };
const limits = { roundTimeoutMs: 8_000, callTimeoutMs: 2_000 };

const opts: ElectOptions = {
  service: "redis",
  queryName: "redis-master",
  queryTags: [],
  masterTag: "master",
  slaveTag: "slave",
  lockKey: "auto-consul/elect/redis/leader",
  sessionTtl: 15,
  lockDelay: 1,
  watch: false,
  roleExitCodes: false,
  allowWarning: false,
  checkIds: [],
};

function result(over: Partial<RoundResult>): RoundResult {
  return {
    role: "slave",
    lockIndex: 7,
    serviceName: "redis",
    tagsWritten: false,
    query: { action: "none", id: "q1", dns: "redis-master.query.consul" },
    ...over,
  } as RoundResult;
}

const freeLock = result({ session: S1, retryInMs: retryDelayMs(1) });

Deno.test("onceRetryMs: contend again only for a free lock, within the run's deadline", () => {
  const table: [string, Partial<RoundResult>, number, number, number | undefined][] = [
    ["free lock (lock-delay), first round", { session: S1, retryInMs: 1250 }, 1, 100, 1250],
    ["free lock, third round", { session: S1, retryInMs: 1250 }, 3, 3000, 1250],
    ["session lost while acquiring", { retryInMs: 500 }, 1, 100, 500],
    ["master", { role: "master", session: S1 }, 1, 100, undefined],
    ["held by another", { session: S1, master: other }, 1, 100, undefined],
    [
      "no session: a check is critical",
      { retryInMs: 2000, blockedBy: "critical" },
      1,
      0,
      undefined,
    ],
    ["the wait does not fit", { session: S1, retryInMs: 1250 }, 1, 4_800, undefined],
    ["exactly fits", { session: S1, retryInMs: 1250 }, 1, 4_750, 1250],
    ["a 15 s lock-delay never fits 8 s", { session: S1, retryInMs: 15_250 }, 1, 0, undefined],
    ["round limit", { session: S1, retryInMs: 1250 }, ONCE_MAX_ROUNDS, 100, undefined],
  ];
  for (const [what, over, rounds, elapsed, want] of table) {
    assert.equal(onceRetryMs(result(over), rounds, elapsed, limits), want, what);
  }
});

interface Fake {
  clock: number;
  sleeps: number[];
  sessions: (string | undefined)[];
}

/** A run with scripted rounds; the clock moves by each sleep plus 50 ms per round. */
async function run(script: RoundResult[], dataDir: string, logs: string[] = []) {
  const fake: Fake = { clock: 1_000_000, sleeps: [], sessions: [] };
  const consul = {
    address: "127.0.0.1:8500",
    self: () => Promise.resolve({ node: "web-1", memberAddr: "10.0.0.5" }),
  } as unknown as ConsulClient;
  let n = 0;
  const r = await electOnce({
    consul,
    opts,
    dataDir,
    log: new Logger({ sink: (l) => logs.push(l), level: "info" }),
    spawnHook: () => Promise.reject(new Error("no hooks here")),
    now: () => fake.clock,
    sleep: (ms) => {
      fake.sleeps.push(ms);
      fake.clock += ms;
      return Promise.resolve();
    },
    round: (_ctx, kept) => {
      fake.sessions.push(kept);
      fake.clock += 50;
      const next = script[Math.min(n++, script.length - 1)];
      return Promise.resolve(next);
    },
  });
  return { r, fake };
}

Deno.test("electOnce: a free lock in its lock-delay is contended again in the same run", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const master = result({ role: "master", master: me, session: S1 });
    const { r, fake } = await run([freeLock, master], dir);
    assert.equal(r.role, "master");
    assert.equal(r.rounds, 2);
    assert.deepEqual(fake.sleeps, [1250]);
    // the session made in the first round is the one the second round uses
    assert.deepEqual(fake.sessions, [undefined, S1]);
    const saved = JSON.parse(await Deno.readTextFile(`${dir}/elect-redis.json`));
    assert.equal(saved.session, S1);
    assert.equal(saved.role, "master");

    // someone else won the lock meanwhile: slave, with the master known, no third round
    const slave = result({ session: S1, master: other });
    const b = await run([freeLock, slave], `${dir}/b`);
    assert.equal(b.r.role, "slave");
    assert.equal(b.r.master?.node, "web-2");
    assert.equal(b.r.rounds, 2);

    // a lock that stays free: retried while it fits the 8 s deadline, then the run ends
    const c = await run([freeLock], `${dir}/c`);
    assert.equal(c.r.role, "slave");
    assert.equal(c.r.rounds, ONCE_MAX_ROUNDS);
    assert.ok(c.fake.clock - 1_000_000 <= limits.roundTimeoutMs);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("electOnce: an unwritable data dir costs a warning, and hooks follow the tags", async () => {
  const dir = await Deno.makeTempDir();
  try {
    // a file where the data dir should be: nothing can be written below it
    await Deno.writeTextFile(`${dir}/file`, "");
    const logs: string[] = [];
    const master = result({ role: "master", master: me, session: S1, tagRoleBefore: "master" });
    const { r } = await run([master], `${dir}/file/sub`, logs);
    assert.equal(r.role, "master");
    assert.equal(r.hookOk, undefined, "no hook: the tags already said master");
    assert.ok(
      logs.some((l) => /WARN.*cannot write elect state.*without local state/.test(l)),
      logs.join("\n"),
    );
    assert.ok(!logs.some((l) => /ERROR/.test(l)), logs.join("\n"));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
