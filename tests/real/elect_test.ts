/**
 * `elect` against real consul: 3 servers + 3 clients, the service "redis" (ID "redis")
 * registered on the 3 clients with a TTL check the test passes or fails through the API.
 * Proves acceptance points 1–7 of issue 4 (the step names say which) and the errors of
 * build point 7. The CLI runs as a process (CONSUL_HTTP_ADDR=<client ip>:8500, -d <tempdir>)
 * except where many fast rounds are needed (50 handovers: in-process `electCommand`).
 * Every process is stopped and every directory removed in `finally`; every loop is bounded.
 */
import { assertWithin } from "../harness/timing.ts";
import assert from "node:assert/strict";
import { parseConfig } from "../../src/cli/config.ts";
import { electCommand } from "../../src/commands/elect.ts";
import type { ConsulClient } from "../../src/consul/client.ts";
import type { AgentService, ServiceRegistration } from "../../src/consul/types.ts";
import { ConsulClient as Client } from "../../src/consul/client.ts";
import { reregistration } from "../../src/elect/tags.ts";
import { Logger } from "../../src/log.ts";
import { type CliProcess, runCli, spawnCli } from "../harness/cli.ts";
import { type Agent, randomLoopbackIp, startAgent, startCluster } from "../harness/consul.ts";
import { sleep, waitFor } from "../harness/wait.ts";

const SERVICE = "redis";
const QUERY = "sensu-redis-master";
const LOCK = `auto-consul/elect/${SERVICE}/leader`;
const TTL_S = 15;
const LOCK_DELAY_S = 1;
/** The tagger's README invocation. */
const README = [
  "--consul-service-name",
  SERVICE,
  "--consul-query-name",
  QUERY,
  "--consul-query-tag",
  "sensu",
];
const ROUND_EVERY_MS = 2_000;
const names = { masterTag: "master", slaveTag: "slave" };

interface Instance {
  i: number;
  agent: Agent;
  /** The registration the test made (what must survive role changes). */
  reg: ServiceRegistration;
  dir: string;
  env: Record<string, string>;
}

interface Round {
  inst: number;
  at: number;
  ms: number;
  code: number;
  role?: "master" | "slave";
  master?: string;
  stderr: string;
}

function registration(i: number, ip: string): ServiceRegistration {
  return {
    ID: SERVICE,
    Name: SERVICE,
    Tags: ["v1", "sensu"],
    Port: 6379 + i,
    Address: ip,
    Meta: { instance: String(i), owner: "team-a" },
    Weights: { Passing: 3, Warning: 1 },
    EnableTagOverride: false,
    Check: { CheckID: "redis-ttl", Name: "redis alive", TTL: "10m", Notes: "set by the test" },
  };
}

/** One `elect --once` run of the CLI on an instance, --json added. */
async function cliOnce(inst: Instance, extra: string[] = [], dir = inst.dir): Promise<Round> {
  const t0 = Date.now();
  const r = await runCli(["elect", ...README, "-d", dir, "--json", ...extra], {
    env: inst.env,
    timeoutMs: 30_000, // a run ends within its 8 s deadline; the harness only stops a wedged one
  });
  const round: Round = {
    inst: inst.i,
    at: t0,
    ms: Date.now() - t0,
    code: r.code,
    stderr: r.stderr,
  };
  if (r.code !== 2 && r.stdout.trim()) {
    const j = JSON.parse(r.stdout.trim());
    round.role = j.role;
    round.master = j.master?.node;
  }
  return round;
}

/** Runs `--once` on every instance every 2 s (all three at once) until stopped; bounded. */
class OnceDriver {
  readonly rounds: Round[][] = [];
  #stop = false;
  #done: Promise<void>;

  constructor(insts: Instance[], maxMs: number) {
    this.#done = (async () => {
      const deadline = Date.now() + maxMs;
      for (let n = 0; n < Math.ceil(maxMs / ROUND_EVERY_MS) + 1; n++) {
        if (this.#stop || Date.now() >= deadline) break;
        const tick = Date.now();
        this.rounds.push(await Promise.all(insts.map((inst) => cliOnce(inst))));
        await sleep(Math.max(0, ROUND_EVERY_MS - (Date.now() - tick)));
      }
    })();
  }

  get last(): Round[] | undefined {
    return this.rounds.at(-1);
  }

  async waitRounds(n: number): Promise<void> {
    await waitFor(() => this.rounds.length >= n, {
      what: `${n} rounds of elect --once`,
      timeoutMs: n * ROUND_EVERY_MS + 15_000,
    });
  }

  async stop(): Promise<void> {
    this.#stop = true;
    await this.#done;
  }
}

Deno.test("elect against a real cluster of 3 servers and 3 clients", async (t) => {
  const cluster = await startCluster({ servers: 3, clients: 3 });
  const tmp = await Deno.makeTempDir({ prefix: "elect-test-" });
  const procs: CliProcess[] = [];
  try {
    const viewer = cluster.servers[0].client;
    const insts: Instance[] = [];
    for (const [i, agent] of cluster.clients.entries()) {
      const reg = registration(i, agent.ip);
      await agent.client.serviceRegister(reg);
      await agent.client.checkUpdate("redis-ttl", "passing");
      const dir = `${tmp}/inst${i}`;
      insts.push({ i, agent, reg, dir, env: { CONSUL_HTTP_ADDR: agent.httpAddr } });
    }
    const byNode = (node: string | undefined) => insts.find((x) => x.agent.node === node);

    /** Nodes of passing instances tagged master, as the servers see them. */
    const catalogMasters = async (tag = "master") =>
      (await viewer.healthService(SERVICE, { passing: true })).entries
        .filter((e) => e.service.tags.includes(tag)).map((e) => e.node).sort();
    /** The node whose session holds the lock. */
    const holderNode = async (key = LOCK) => {
      const lock = await viewer.kvGet(key);
      if (!lock.session) return undefined;
      return (await viewer.sessionInfo(lock.session))?.node;
    };
    const queryNodes = async () =>
      (await viewer.queryExecute(QUERY)).nodes.map((n) => n.node).sort();
    /** Exactly one master everywhere: catalog tags, lock, prepared query. */
    const oneMaster = async (): Promise<string | undefined> => {
      const [masters, holder, query] = await Promise.all([
        catalogMasters(),
        holderNode(),
        queryNodes(),
      ]);
      const ok = masters.length === 1 && masters[0] === holder && query.length === 1 &&
        query[0] === holder;
      return ok ? holder : undefined;
    };

    await t.step("7: the tagger's README invocation works unchanged (CLI)", async () => {
      // one instance with the tagger's single-dash spelling, as in its README and Go flags
      const single = README.map((a) => a.startsWith("--") ? a.slice(1) : a);
      const results = await Promise.all(
        insts.map((inst) =>
          runCli(["elect", ...(inst.i === 0 ? single : README), "-d", inst.dir], {
            env: inst.env,
            timeoutMs: 30_000,
          })
        ),
      );
      for (const r of results) {
        assert.equal(r.code, 0, r.stderr);
        assert.equal(r.stdout, `${QUERY}.query.consul\n`);
        assert.doesNotMatch(r.stderr, /ERROR/);
      }
      const master = await waitFor(oneMaster, { what: "one master after the first round" });
      const queries = (await viewer.queryList()).filter((q) => q.Name === QUERY);
      assert.equal(queries.length, 1);
      assert.equal(queries[0].Service.Service, SERVICE);
      assert.deepEqual(queries[0].Service.Tags, ["master", "sensu"]);
      assert.equal(queries[0].Service.OnlyPassing, true);
      // the slaves answer once their vouch check (issue 12, registered critical) has run
      const want = insts.map((x) => x.agent.node).filter((n) => n !== master).sort();
      await waitFor(async () => (await catalogMasters("slave")).join() === want.join(), {
        what: `the slaves ${want} passing and tagged slave`,
      });
    });

    await t.step(
      "1 (issue 12: 1, 6): --once every 2 s on all three for 60 s, warnings flipped at random: one master at every sample, handover within one round",
      async () => {
        const driver = new OnceDriver(insts, 60_000);
        const samples: { at: number; query: string[]; masters: string[] }[] = [];
        /** Warnings set on the master: when, on whom, for how long. */
        const flips: { at: number; until: number; node: string; onMaster: boolean }[] = [];
        // a seeded random schedule (printed, so a failure can be replayed)
        let seed = Number(Deno.env.get("AUTO_CONSUL_ELECT_SEED") ?? Date.now() % 100_000);
        console.log(`  seed ${seed} (AUTO_CONSUL_ELECT_SEED)`);
        const random = () => (seed = (seed * 48271) % 2147483647) / 2147483647;
        let stop = false;
        const flipper = (async () => {
          await driver.waitRounds(2);
          const end = driver.rounds[0][0].at + 55_000;
          for (let n = 0; n < 30 && !stop && Date.now() < end - 8_000; n++) {
            await sleep(1_000 + random() * 2_000);
            const master = await holderNode().catch(() => undefined);
            const target = random() < 0.6 && master
              ? byNode(master)!
              : insts[Math.floor(random() * insts.length)];
            // mostly longer than a round; sometimes a blip shorter than one
            const ms = random() < 0.3 ? 300 + random() * 1_200 : 3_000 + random() * 4_000;
            const at = Date.now();
            await target.agent.client.checkUpdate("redis-ttl", "warning", "test: degraded");
            flips.push({
              at,
              until: at + ms,
              node: target.agent.node,
              onMaster: master === target.agent.node,
            });
            await sleep(ms);
            await target.agent.client.checkUpdate("redis-ttl", "passing");
          }
        })();
        try {
          await driver.waitRounds(2);
          const end = driver.rounds[0][0].at + 60_000;
          for (let n = 0; n < 400 && Date.now() < end; n++) {
            const tick = Date.now();
            const [masters, query] = await Promise.all([catalogMasters(), queryNodes()]);
            samples.push({ at: tick, query, masters });
            await sleep(Math.max(0, 200 - (Date.now() - tick)));
          }
        } finally {
          stop = true;
          await flipper;
          await driver.stop();
          for (const x of insts) await x.agent.client.checkUpdate("redis-ttl", "passing");
        }
        const two = samples.filter((s) => s.query.length > 1 || s.masters.length > 1);
        assert.equal(two.length, 0, `two masters at: ${JSON.stringify(two.slice(0, 5))}`);
        assert.ok(samples.length >= 150, `only ${samples.length} samples`);
        for (const r of driver.rounds.flat()) assert.equal(r.code, 0, r.stderr);
        // (two runs of one round may both say master: the old master's run can end before
        // another run of the same round deposes it; what the query answers is what counts)
        // A sample without exactly one master is allowed only while a handover is due: from a
        // warning on the master (or a blip seen by a round) to the end of the first round that
        // started after it, plus 1 s (the vouch check's interval and the catalog's update).
        const roundEnd = (t: number) => {
          const r = driver.rounds.find((round) => round[0].at >= t);
          return r ? Math.max(...r.map((x) => x.at + x.ms)) : Infinity;
        };
        const due = flips.map((f) => ({ from: f.at, to: roundEnd(f.at) + 1_000 }));
        const one = (s: { query: string[]; masters: string[] }) =>
          s.query.length === 1 && s.masters.length === 1 && s.query[0] === s.masters[0];
        const gaps = samples.filter((s) =>
          !one(s) && !due.some((d) => s.at >= d.from && s.at <= d.to)
        );
        assert.equal(
          gaps.length,
          0,
          `no master outside a handover: ${JSON.stringify(gaps.slice(0, 5))}`,
        );
        // every warning on the master lasting two rounds: another master within one round
        const handovers: number[] = [];
        for (const f of flips.filter((f) => f.onMaster && f.until - f.at >= 2 * ROUND_EVERY_MS)) {
          const next = samples.find((s) => s.at >= f.at && one(s) && s.query[0] !== f.node);
          assert.ok(next, `no new master after the warning on ${f.node} at ${f.at}`);
          assert.ok(next.at <= roundEnd(f.at) + 1_000, `handover after ${next.at - f.at} ms`);
          handovers.push(next.at - f.at);
        }
        assert.ok(flips.length >= 4, `only ${flips.length} warnings`);
        assert.ok(flips.some((f) => f.onMaster), "a warning on the master");
        const maxMs = Math.max(...driver.rounds.flat().map((r) => r.ms));
        console.log(
          `  ${driver.rounds.length} rounds x 3 instances over 60 s, ${samples.length} samples (200 ms), ` +
            `${flips.length} warnings (${flips.filter((f) => f.onMaster).length} on the master), ` +
            `handovers ${
              handovers.map((ms) => `${ms} ms`).join(", ")
            }, slowest --once run ${maxMs} ms`,
        );
      },
    );

    const failoverBoundMs = (TTL_S + LOCK_DELAY_S) * 1000 + ROUND_EVERY_MS;

    await t.step(
      "2a: the master's health check failing: a slave is master within TTL + lock-delay + one round",
      async () => {
        const driver = new OnceDriver(insts, 40_000);
        let failed: Instance | undefined;
        try {
          await driver.waitRounds(1);
          failed = byNode(driver.last!.find((r) => r.role === "master")?.master)!;
          const t0 = Date.now();
          await failed.agent.client.checkUpdate("redis-ttl", "critical", "test: failing");
          const next = await waitFor(async () => {
            const r = driver.last?.find((x) => x.role === "master" && x.at >= t0);
            if (!r || r.inst === failed!.i) return undefined;
            const masters = await catalogMasters();
            return masters.length === 1 && masters[0] === insts[r.inst].agent.node ? r : undefined;
          }, { what: "another master", timeoutMs: failoverBoundMs + 60_000, intervalMs: 50 });
          const ms = Date.now() - t0;
          console.log(`  check failing -> new master in ${ms} ms (bound ${failoverBoundMs} ms)`);
          assertWithin(ms, failoverBoundMs, "failover");
          assert.equal(await holderNode(), insts[next.inst].agent.node);
          // the failed instance is a slave and, once healthy again, does not take master back
          await failed.agent.client.checkUpdate("redis-ttl", "passing");
          const n = driver.rounds.length;
          await driver.waitRounds(n + 2);
          for (const round of driver.rounds.slice(n)) {
            assert.equal(round[failed.i].role, "slave");
            assert.equal(round.filter((r) => r.role === "master").length, 1);
            assert.equal(round.find((r) => r.role === "master")!.inst, next.inst);
          }
          assert.equal(
            await waitFor(oneMaster, { what: "one master" }),
            insts[next.inst].agent.node,
          );
        } finally {
          await driver.stop();
          await failed?.agent.client.checkUpdate("redis-ttl", "passing").catch(() => {});
        }
      },
    );

    await t.step(
      "2b: kill -9 of the master's consul agent: a slave is master within TTL + lock-delay + one round",
      async () => {
        const driver = new OnceDriver(insts, 40_000);
        let killed: Instance | undefined;
        try {
          await driver.waitRounds(1);
          killed = byNode(driver.last!.find((r) => r.role === "master")?.master)!;
          const t0 = Date.now();
          await killed.agent.kill9();
          const next = await waitFor(async () => {
            const r = driver.last?.find((x) => x.role === "master" && x.at >= t0);
            if (!r || r.inst === killed!.i) return undefined;
            const masters = await catalogMasters();
            return masters.length === 1 && masters[0] === insts[r.inst].agent.node ? r : undefined;
          }, { what: "another master", timeoutMs: failoverBoundMs + 60_000, intervalMs: 50 });
          const ms = Date.now() - t0;
          console.log(`  agent kill -9 -> new master in ${ms} ms (bound ${failoverBoundMs} ms)`);
          assertWithin(ms, failoverBoundMs, "failover");
          assert.equal(await holderNode(), insts[next.inst].agent.node);
          // the dead agent's elect runs: exit 2, one clear line
          const dead = driver.rounds.flat().filter((r) => r.inst === killed!.i && r.at > t0);
          assert.ok(dead.length > 0);
          for (const r of dead) {
            assert.equal(r.code, 2);
            const lines = r.stderr.trim().split("\n").filter((l) => /ERROR/.test(l));
            assert.equal(lines.length, 1, r.stderr);
            assert.match(lines[0], /consul at .* is unreachable|did not answer/);
          }
        } finally {
          await driver.stop();
          if (killed) {
            await killed.agent.restart();
            await cluster.waitHealthy();
            await killed.agent.client.checkUpdate("redis-ttl", "passing");
          }
        }
      },
    );

    await t.step(
      "3: --watch, SIGTERM to the master's elect process: another master within 2 s (CLI)",
      async () => {
        const hook = `${tmp}/hook.sh`;
        await Deno.writeTextFile(
          hook,
          '#!/bin/sh\necho "$2 $AUTO_CONSUL_ROLE $AUTO_CONSUL_SERVICE $AUTO_CONSUL_MASTER_NODE ' +
            '$AUTO_CONSUL_MASTER_ADDRESS $AUTO_CONSUL_MASTER_PORT" >> "$1"\n',
        );
        await Deno.chmod(hook, 0o755);
        // the --once steps' master holds the lock; its --watch replaces that session (bound to
        // its alive check now, src/elect/alive.ts) handing the lock over: it stays master
        const before = await holderNode();
        const hookLog = (i: number) => `${tmp}/watch-hooks-${i}.log`;
        const readHooks = async (i: number) =>
          (await Deno.readTextFile(hookLog(i)).catch(() => "")).split("\n").filter((l) => l);
        const watchers = insts.map((inst) =>
          spawnCli([
            "elect",
            ...README,
            "-d",
            `${inst.dir}-watch`,
            "--watch",
            "--json",
            "--on-master",
            `${hook} ${hookLog(inst.i)} on-master`,
            "--on-slave",
            `${hook} ${hookLog(inst.i)} on-slave`,
          ], { env: inst.env })
        );
        procs.push(...watchers);
        const first = await waitFor(async () => {
          const m = await oneMaster();
          const hooked = await Promise.all(insts.map((x) => readHooks(x.i)));
          return m && hooked.every((h) => h.length === 1) ? m : undefined;
        }, { what: "one master among the watchers", timeoutMs: 15_000 });
        if (before) assert.equal(first, before, "the --once master stays master under --watch");
        const old = byNode(first)!;
        const hostOf = (x: Instance) => `${x.agent.node} ${x.agent.ip} ${x.reg.Port}`;
        for (const x of insts) {
          const role = x === old ? "master" : "slave";
          assert.deepEqual(await readHooks(x.i), [`on-${role} ${role} ${SERVICE} ${hostOf(old)}`]);
        }

        const t0 = performance.now();
        watchers[old.i].signal("SIGTERM");
        const now = await waitFor(async () => {
          const h = await holderNode();
          if (!h || h === old.agent.node) return undefined;
          const tags = (await byNode(h)!.agent.client.agentService(SERVICE))?.Tags ?? [];
          if (!tags.includes("master")) return undefined;
          const masters = await catalogMasters();
          return masters.length === 1 && masters[0] === h ? byNode(h) : undefined;
        }, { what: "another master after SIGTERM", timeoutMs: 60_000, intervalMs: 20 });
        const ms = Math.round(performance.now() - t0);
        console.log(`  --watch SIGTERM -> new master in ${ms} ms`);
        assertWithin(ms, 2_000, "failover after SIGTERM");
        const st = await watchers[old.i].stop("SIGTERM", 10_000);
        assert.equal(st.code, 0, watchers[old.i].tail());
        assert.deepEqual(await queryNodes(), [now!.agent.node]);
        assert.ok((await old.agent.client.agentService(SERVICE))?.Tags?.includes("slave"));
        assert.deepEqual(await readHooks(old.i), [`on-master master ${SERVICE} ${hostOf(old)}`]);
        await waitFor(async () => (await readHooks(now!.i)).length === 2, { what: "the hook" });
        assert.deepEqual(await readHooks(now!.i), [
          `on-slave slave ${SERVICE} ${hostOf(old)}`,
          `on-master master ${SERVICE} ${hostOf(now!)}`,
        ]);
        const third = insts.find((x) => x !== old && x !== now)!;
        assert.equal((await readHooks(third.i)).length, 1, "a slave staying slave runs no hook");

        // --watch reacts to a failing check too: lock-delay, then the other watcher takes over
        const t1 = performance.now();
        await now!.agent.client.checkUpdate("redis-ttl", "critical", "test: failing");
        try {
          await waitFor(async () => (await oneMaster()) === third.agent.node, {
            what: "the third instance as master",
            timeoutMs: 60_000,
            intervalMs: 20,
          });
          const ms2 = Math.round(performance.now() - t1);
          console.log(`  --watch check failing -> new master in ${ms2} ms`);
          assertWithin(ms2, LOCK_DELAY_S * 1000 + 2_000, "failover on a failing check");
        } finally {
          await now!.agent.client.checkUpdate("redis-ttl", "passing");
        }
        await waitFor(async () => (await readHooks(now!.i)).length === 3, { what: "the hook" });
        // the slave hook names the new master, never the stepping-down instance itself (its
        // round may read the lock while its own ended session still held it: docs/elect.md;
        // tests/real/elect_hook_master_test.ts makes that state deterministically)
        assert.equal(
          (await readHooks(now!.i))[2],
          `on-slave slave ${SERVICE} ${hostOf(third)}`,
          watchers[now!.i].tail(),
        );
        await waitFor(async () => (await readHooks(third.i)).length === 2, { what: "the hook" });
        assert.equal((await readHooks(third.i))[1], `on-master master ${SERVICE} ${hostOf(third)}`);
        for (const w of watchers) {
          const st = await w.stop("SIGTERM", 10_000);
          assert.equal(st.code, 0, w.tail());
        }
        const lock = await viewer.kvGet(LOCK);
        assert.equal(lock.session, undefined, "the last watcher released the lock");
      },
    );

    await t.step(
      "4: the query returns exactly the master; its ID is unchanged after a change of query tags",
      async () => {
        // watchers left running by a failed step 3 would keep electing: stop them first
        await Promise.allSettled(procs.map((p) => p.stop("SIGTERM", 10_000)));
        const id0 = (await viewer.queryList()).find((q) => q.Name === QUERY)!.ID;
        for (const extra of [["--consul-query-tag", "v1"], []]) {
          const rounds = await Promise.all(insts.map((x) => cliOnce(x, extra)));
          for (const r of rounds) assert.equal(r.code, 0, r.stderr);
          const named = (await viewer.queryList()).filter((q) => q.Name === QUERY);
          assert.deepEqual(named.map((q) => q.ID), [id0]);
          assert.deepEqual(named[0].Service.Tags, ["master", "sensu", ...extra.slice(1)]);
          const master = await waitFor(oneMaster, { what: "the query answering the master" });
          assert.equal(rounds.find((r) => r.role === "master")?.master, master);
        }
        // --role-exit-codes: 0 for the master, 1 for the slaves
        const rounds = await Promise.all(insts.map((x) => cliOnce(x, ["--role-exit-codes"])));
        for (const r of rounds) assert.equal(r.code, r.role === "master" ? 0 : 1, r.stderr);
        assert.equal(rounds.filter((r) => r.code === 0).length, 1);
      },
    );

    await t.step(
      "5+6: 50 role changes keep meta, port, weights, other tags and checks; hooks fire once per change",
      async () => {
        const key = `auto-consul/elect/${SERVICE}/handover`;
        const hook = `${tmp}/hook.sh`;
        const logs: string[] = [];
        const log = new Logger({ sink: (l) => logs.push(l), level: "warn" });
        const hookLog = (i: number) => `${tmp}/once-hooks-${i}.log`;
        const run = async (inst: Instance) => {
          const parsed = parseConfig({
            argv: [
              "elect",
              ...README,
              "-d",
              `${inst.dir}-handover`,
              "--json",
              "--lock-key",
              key,
              "--lock-delay",
              "0",
              "--on-master",
              `${hook} ${hookLog(inst.i)} on-master`,
              "--on-slave",
              `${hook} ${hookLog(inst.i)} on-slave`,
            ],
            env: { CONSUL_HTTP_ADDR: inst.agent.httpAddr },
            hostname: "test",
          });
          assert.equal(parsed.kind, "command");
          if (parsed.kind !== "command") throw new Error("unreachable");
          const out: string[] = [];
          const code = await electCommand(parsed.config, {
            log,
            consul: inst.agent.client,
            print: (s) => out.push(s),
          });
          assert.equal(code, 0, logs.join("\n"));
          return JSON.parse(out[0]) as { role: string; master: { node: string } };
        };
        // expected hook lines per instance: the first role, then every change
        const want: string[][] = insts.map(() => []);
        const role: string[] = insts.map(() => "");
        const hostOf = (x: Instance) => `${x.agent.node} ${x.agent.ip} ${x.reg.Port}`;
        const expect = (x: Instance, r: string, master: Instance) => {
          if (role[x.i] !== r) want[x.i].push(`on-${r} ${r} ${SERVICE} ${hostOf(master)}`);
          role[x.i] = r;
        };
        for (const x of insts) {
          const r = await run(x);
          assert.equal(r.role, x.i === 0 ? "master" : "slave");
          expect(x, r.role, insts[0]);
        }
        const sessionOf = async (x: Instance) =>
          JSON.parse(await Deno.readTextFile(`${x.dir}-handover/elect-${SERVICE}.json`)).session;
        const sessions = await Promise.all(insts.map(sessionOf));
        let cur = 0;
        const t0 = Date.now();
        const changes = 50;
        for (let n = 1; n <= changes; n++) {
          const next = n % 2 === 1 ? 1 : 0; // hand over between instances 0 and 1
          const lock = await viewer.kvGet(key);
          assert.ok(lock.session);
          // what a --watch master does on SIGTERM (an operator can do the same): tag slave,
          // then release (a new master tags itself only once no other passing one is tagged)
          const old = insts[cur].agent.client;
          const svc = (await old.agentService(SERVICE))!;
          const reg = reregistration(svc, "slave", names);
          if (reg) await old.serviceRegister(reg);
          assert.equal(await viewer.kvPut(key, lock.value ?? "", { release: lock.session }), true);
          const a = await run(insts[next]);
          assert.equal(a.role, "master", `change ${n}`);
          expect(insts[next], "master", insts[next]);
          const b = await run(insts[cur]);
          assert.equal(b.role, "slave", `change ${n}`);
          assert.equal(b.master.node, insts[next].agent.node);
          expect(insts[cur], "slave", insts[next]);
          if (n % 10 === 0) {
            const c = await run(insts[2]); // the third instance stays slave: no hook
            assert.equal(c.role, "slave");
            assert.equal(c.master.node, insts[next].agent.node);
          }
          cur = next;
        }
        const ms = Date.now() - t0;
        console.log(`  ${changes} master changes (in-process --once rounds) in ${ms} ms`);

        for (const x of insts) {
          const lines = (await Deno.readTextFile(hookLog(x.i))).split("\n").filter((l) => l);
          assert.deepEqual(lines, want[x.i], `hooks of instance ${x.i}`);
        }
        assert.equal(want[0].length + want[1].length, 2 + 2 * changes);
        assert.equal(want[2].length, 1);

        // re-registering never touched the checks: each session, bound to serfHealth and the
        // service's check, lived through every role change
        assert.deepEqual(await Promise.all(insts.map(sessionOf)), sessions);
        for (const id of sessions) {
          const info = await viewer.sessionInfo(id);
          assert.deepEqual(info?.nodeChecks, ["serfHealth"]);
          assert.deepEqual(info?.serviceChecks.map((c) => c.id), ["redis-ttl"]);
        }
        // every field but the role tag is what the test registered; the check is still there
        for (const x of insts) {
          const svc = (await x.agent.client.agentService(SERVICE)) as AgentService;
          const r = role[x.i];
          assert.deepEqual(svc.Tags, ["v1", "sensu", r]);
          assert.equal(svc.Service, x.reg.Name);
          assert.equal(svc.Port, x.reg.Port);
          assert.equal(svc.Address, x.reg.Address);
          assert.deepEqual(svc.Meta, x.reg.Meta);
          assert.deepEqual(svc.Weights, x.reg.Weights);
          assert.equal(svc.EnableTagOverride, false);
          const all = Object.values(await x.agent.client.agentChecks())
            .filter((c) => c.serviceId === SERVICE);
          // the vouch check elect adds (issue 12), reading this node's key under the lock
          const vouch = all.find((c) => c.checkId === `auto-consul-elect:${SERVICE}`);
          assert.equal(vouch?.type, "http");
          assert.equal(vouch?.name, `auto-consul elect vouch ${key}/vouch/${x.agent.node}`);
          const checks = all.filter((c) => c !== vouch);
          assert.deepEqual(
            checks.map((c) => [c.checkId, c.name, c.type, c.status]),
            [["redis-ttl", "redis alive", "ttl", "passing"]],
          );
          // still a live TTL check: it takes updates
          await x.agent.client.checkUpdate("redis-ttl", "warning", "probe");
          await x.agent.client.checkUpdate("redis-ttl", "passing");
        }
        const catalog = await waitFor(async () => {
          const { entries } = await viewer.healthService(SERVICE);
          const ok = entries.length === 3 &&
            entries.every((e) => e.service.tags.join() === `v1,sensu,${role[byNode(e.node)!.i]}`);
          return ok ? entries : undefined;
        }, { what: "the catalog in sync" });
        for (const e of catalog) {
          const x = byNode(e.node)!;
          assert.equal(e.service.port, x.reg.Port);
          assert.deepEqual(e.service.meta, x.reg.Meta);
          assert.deepEqual((e.raw.Service as Record<string, unknown>).Weights, x.reg.Weights);
        }
      },
    );

    await t.step("build 7: unknown service and unreachable consul: one line, exit 2", async () => {
      const unknown = await runCli(
        ["elect", "--service", "nope", "-d", `${tmp}/errors`, "--role-exit-codes"],
        { env: insts[0].env, timeoutMs: 15_000 },
      );
      assert.equal(unknown.code, 2);
      assert.equal(unknown.stdout, "");
      assert.equal(unknown.stderr.trim().split("\n").length, 1, unknown.stderr);
      assert.match(unknown.stderr, /service ID "nope" is not registered on the consul agent at /);

      const t0 = Date.now();
      const down = await runCli(["elect", ...README, "-d", `${tmp}/errors`], {
        env: { CONSUL_HTTP_ADDR: `${randomLoopbackIp()}:8500` },
        timeoutMs: 15_000,
      });
      assert.equal(down.code, 2);
      assert.equal(down.stdout, "");
      assert.equal(down.stderr.trim().split("\n").length, 1, down.stderr);
      assert.match(down.stderr, /consul at 127\.[\d.]+:8500 is unreachable/);
      assert.ok(Date.now() - t0 < 10_000);
    });
  } finally {
    await Promise.allSettled(procs.map((p) => p.stop("SIGKILL", 5_000)));
    await cluster.stopAll();
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
  }
});

Deno.test("elect: ACL denied is one clear line and exit 2; a token from CONSUL_HTTP_TOKEN works", async () => {
  const token = crypto.randomUUID();
  const agent = await startAgent({
    server: true,
    token,
    hcl: [
      `acl {\n enabled = true\n default_policy = "deny"\n tokens {\n master = "${token}"\n }\n}`,
    ],
  });
  const tmp = await Deno.makeTempDir({ prefix: "elect-acl-" });
  try {
    const admin: ConsulClient = new Client({ baseUrl: agent.baseUrl, token, timeoutMs: 5_000 });
    await waitFor(async () => {
      await admin.serviceRegister({ ID: SERVICE, Name: SERVICE, Port: 6379 });
      return true;
    }, { what: "ACLs ready", timeoutMs: 20_000, intervalMs: 250 });
    const env = { CONSUL_HTTP_ADDR: agent.httpAddr };
    const denied = await runCli(["elect", ...README, "-d", tmp], { env, timeoutMs: 15_000 });
    assert.equal(denied.code, 2);
    assert.equal(denied.stdout, "");
    assert.equal(denied.stderr.trim().split("\n").length, 1, denied.stderr);
    assert.match(denied.stderr, /refused by ACLs: 403/);
    assert.doesNotMatch(denied.stderr, new RegExp(token));

    const ok = await runCli(["elect", ...README, "-d", tmp, "--role-exit-codes"], {
      env: { ...env, CONSUL_HTTP_TOKEN: token },
      timeoutMs: 15_000,
    });
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(ok.stdout, `${QUERY}.query.consul\n`);
    assert.ok((await admin.agentService(SERVICE))?.Tags?.includes("master"));
  } finally {
    await agent.dispose();
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
  }
});
