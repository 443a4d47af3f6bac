/**
 * Pure decisions of `elect` (src/elect/): lock value, session reuse, prepared query plan,
 * hooks, local state, exit codes, timings. Role tags are in elect_tags_test.ts.
 */
import assert from "node:assert/strict";
import type { Check, PreparedQuery, SessionInfo } from "../src/consul/types.ts";
import { roleExitCode, roundJson } from "../src/commands/elect.ts";
import { hookEnv, hookFor, runHook, type SpawnHook, spawnHook } from "../src/elect/hooks.ts";
import {
  encodeHolder,
  masterOfSlave,
  parseHolder,
  roleOf,
  sessionCandidate,
} from "../src/elect/lock.ts";
import { planQuery, queryDnsName, queryTags } from "../src/elect/query.ts";
import { BLOCKED_RETRY_MS, retryDelayMs } from "../src/elect/round.ts";
import {
  parseGoDuration,
  serviceCheckIds,
  sessionMismatch,
  type SessionSpec,
} from "../src/elect/session.ts";
import { formatState, parseState, statePath } from "../src/elect/state.ts";
import { nextRoundInMs, renewEveryMs } from "../src/elect/watch.ts";
import { aliveAction, aliveCheck, aliveCheckId, aliveCheckName } from "../src/elect/alive.ts";
import { Logger } from "../src/log.ts";

const holder = { node: "web-1", address: "10.0.0.5", port: 6379, service: "redis" };
/** The instance deciding (not the holder above). */
const ME = { node: "web-2", service: "redis" };
const S1 = "d5305bd7-4532-8c47-ae07-89b57be961a9";
const S2 = "8e70e529-2081-b46f-4a84-8f5664d37a96";

Deno.test("lock value: encode/parse round trip and untrusted values", () => {
  assert.deepEqual(parseHolder(encodeHolder(holder)), holder);
  const bad = [
    undefined,
    "",
    "v",
    "null",
    "[]",
    '{"node":"a"}',
    '{"node":"a b","address":"10.0.0.1","service":"s"}',
    '{"node":"a","address":"$(rm -rf /)","service":"s"}',
    '{"node":"a","address":"10.0.0.1","service":""}',
    JSON.stringify({ ...holder, node: "x".repeat(3000) }),
  ];
  for (const v of bad) assert.equal(parseHolder(v), undefined, String(v));
  assert.equal(parseHolder(JSON.stringify({ ...holder, port: "80" }))?.port, 0);
  assert.equal(parseHolder(JSON.stringify({ ...holder, port: 70000 }))?.port, 0);
  assert.equal(
    parseHolder(JSON.stringify({ ...holder, address: "db.example" }))?.address,
    "db.example",
  );
});

Deno.test("roleOf: only the holder's own session is master", () => {
  assert.equal(roleOf(S1, S1), "master");
  assert.equal(roleOf(S1, S2), "slave");
  assert.equal(roleOf(undefined, S1), "slave");
  assert.equal(roleOf(undefined, undefined), "slave");
});

Deno.test("sessionCandidate: kept session, or this node's session found on the lock", () => {
  const me = { node: "web-1", service: "redis" };
  const mine = encodeHolder(holder);
  const table: [string | undefined, { session?: string; value?: string }, unknown][] = [
    [undefined, {}, undefined],
    [S1, {}, { id: S1, adopted: false }],
    [S1, { session: S1, value: mine }, { id: S1, adopted: false }],
    [undefined, { session: S2, value: mine }, { id: S2, adopted: true }],
    [S1, { session: S2, value: mine }, { id: S2, adopted: true }],
    [S1, { session: S2, value: encodeHolder({ ...holder, node: "web-2" }) }, {
      id: S1,
      adopted: false,
    }],
    [S1, { session: S2, value: encodeHolder({ ...holder, service: "other" }) }, {
      id: S1,
      adopted: false,
    }],
    [undefined, { session: S2, value: "garbage" }, undefined],
  ];
  for (const [kept, lock, want] of table) {
    assert.deepEqual(sessionCandidate(kept, lock, me), want, `${kept} ${JSON.stringify(lock)}`);
  }
});

Deno.test("parseGoDuration: table", () => {
  const table: [string, number | undefined][] = [
    ["15s", 15_000],
    ["1m30s", 90_000],
    ["250ms", 250],
    ["1h", 3_600_000],
    ["1.5s", 1_500],
    ["0", 0],
    ["", undefined],
    ["15", undefined],
    ["15s ", undefined],
    ["abc", undefined],
  ];
  for (const [text, want] of table) assert.equal(parseGoDuration(text), want, text);
});

Deno.test("serviceCheckIds: the service's own checks only, sorted", () => {
  const c = (serviceId: string) => ({ serviceId } as Check);
  const checks = { serfHealth: c(""), "b-ttl": c("redis"), "a-http": c("redis"), x: c("other") };
  assert.deepEqual(serviceCheckIds(checks, "redis"), ["a-http", "b-ttl"]);
  assert.deepEqual(serviceCheckIds(checks, "none"), []);
});

Deno.test("sessionMismatch: reuse only a session that fits", () => {
  const spec: SessionSpec = {
    node: "web-1",
    service: "redis",
    serviceChecks: ["redis-ttl"],
    ttlSeconds: 15,
    lockDelaySeconds: 1,
  };
  const info: SessionInfo = {
    id: S1,
    name: "auto-consul elect redis",
    node: "web-1",
    checks: [],
    nodeChecks: ["serfHealth"],
    serviceChecks: [{ id: "redis-ttl" }],
    ttl: "15s",
    lockDelayNs: 1e9,
    behavior: "delete",
    createIndex: 1,
    raw: {},
  };
  assert.equal(sessionMismatch(info, spec), undefined);
  assert.equal(sessionMismatch({ ...info, checks: ["serfHealth"] }, spec), undefined);
  const table: [Partial<SessionInfo>, RegExp][] = [
    [{ node: "web-2" }, /node web-2/],
    [{ serviceChecks: [] }, /bound to checks \[serfHealth\]/],
    [{ serviceChecks: [{ id: "redis-ttl" }, { id: "old" }] }, /checks/],
    [{ nodeChecks: [] }, /checks/],
    [{ ttl: "30s" }, /TTL is 30s/],
    [{ ttl: "" }, /TTL is none/],
    [{ lockDelayNs: 15e9 }, /lock delay is 15s/],
    [{ behavior: "release" }, /behavior is release/],
  ];
  for (const [change, why] of table) {
    assert.match(sessionMismatch({ ...info, ...change }, spec) ?? "", why, JSON.stringify(change));
  }
  assert.match(
    sessionMismatch(info, { ...spec, serviceChecks: ["redis-ttl", "redis-http"] }) ?? "",
    /the service now has \[redis-http, redis-ttl, serfHealth\]/,
  );
});

Deno.test("planQuery: create, keep, update in place keeping other fields", () => {
  const spec = { name: "sensu-redis-master", service: "redis", tags: ["master", "sensu"] };
  assert.deepEqual(planQuery(undefined, spec), {
    action: "create",
    def: {
      Name: "sensu-redis-master",
      Service: { Service: "redis", Tags: ["master", "sensu"], OnlyPassing: true },
    },
  });
  const stored: PreparedQuery = {
    ID: "q-1",
    Name: "sensu-redis-master",
    Session: "",
    Token: "",
    Service: {
      Service: "redis",
      Tags: ["sensu", "master"],
      OnlyPassing: true,
      Failover: { NearestN: 2, Datacenters: null },
      Near: "_agent",
    },
    DNS: { TTL: "10s" },
    CreateIndex: 5,
    ModifyIndex: 9,
  };
  assert.deepEqual(planQuery(stored, spec), { action: "none", id: "q-1" });
  for (
    const change of [
      { service: "redis2" },
      { tags: ["master", "sensu", "eu"] },
      { tags: ["master"] },
    ]
  ) {
    const plan = planQuery(stored, { ...spec, ...change });
    assert.equal(plan.action, "update");
    if (plan.action !== "update") continue;
    assert.equal(plan.id, "q-1");
    assert.deepEqual(plan.def, {
      Name: "sensu-redis-master",
      Session: "",
      Token: "",
      DNS: { TTL: "10s" },
      Service: {
        ...stored.Service,
        Service: change.service ?? "redis",
        Tags: change.tags ?? spec.tags,
        OnlyPassing: true,
      },
    });
  }
  const notPassing = { ...stored, Service: { ...stored.Service, OnlyPassing: false } };
  assert.equal(planQuery(notPassing, spec).action, "update");
});

Deno.test("queryTags and queryDnsName", () => {
  assert.deepEqual(queryTags("master", []), ["master"]);
  assert.deepEqual(queryTags("master", ["sensu"]), ["master", "sensu"]);
  assert.deepEqual(queryTags("master", ["sensu", "master", "sensu"]), ["master", "sensu"]);
  assert.equal(queryDnsName("sensu-redis-master"), "sensu-redis-master.query.consul");
});

Deno.test("hookFor: once per role change; a slave's hook waits until the master is known", () => {
  const hooks = { onMaster: ["/bin/promote", "x"], onSlave: ["/bin/follow"] };
  type R = "master" | "slave" | undefined;
  const table: [R, "master" | "slave", boolean, string[] | undefined, R][] = [
    // handled before, role now, master known, hook argv, handled after
    [undefined, "master", true, ["/bin/promote", "x"], "master"],
    [undefined, "slave", true, ["/bin/follow"], "slave"],
    ["slave", "master", true, ["/bin/promote", "x"], "master"],
    ["master", "slave", true, ["/bin/follow"], "slave"],
    ["master", "master", true, undefined, "master"],
    ["slave", "slave", true, undefined, "slave"],
    ["slave", "slave", false, undefined, "slave"],
    // the lock is free (lock-delay after the old master was lost): not yet
    ["master", "slave", false, undefined, "master"],
    [undefined, "slave", false, undefined, undefined],
  ];
  for (const [handled, role, known, argv, after] of table) {
    const master = known ? holder : undefined;
    const d = hookFor(handled, role, hooks, ME, master);
    assert.deepEqual(d.plan?.argv, argv, `${handled}->${role} known=${known}`);
    assert.equal(d.handled, after, `${handled}->${role} known=${known}`);
  }
  // no hook set for that role: the change is handled all the same
  assert.deepEqual(hookFor("slave", "master", { onSlave: ["/x"] }, ME, holder), {
    handled: "master",
  });
  assert.deepEqual(hookFor("master", "slave", hooks, ME, holder).plan?.env, {
    AUTO_CONSUL_ROLE: "slave",
    AUTO_CONSUL_SERVICE: "redis",
    AUTO_CONSUL_MASTER_NODE: "web-1",
    AUTO_CONSUL_MASTER_ADDRESS: "10.0.0.5",
    AUTO_CONSUL_MASTER_PORT: "6379",
  });
  assert.deepEqual(hookEnv("master", "redis", { ...holder, port: 0 }).AUTO_CONSUL_MASTER_PORT, "");
});

Deno.test("hookFor: an on-slave hook never names this instance as master", () => {
  const hooks = { onMaster: ["/bin/promote"], onSlave: ["/bin/follow"] };
  const self = { ...holder, node: ME.node };
  for (const handled of [undefined, "master", "slave"] as const) {
    // the lock's value still names this instance (its old session): not yet, nothing handled
    const d = hookFor(handled, "slave", hooks, ME, self);
    assert.equal(d.plan, undefined, `${handled}`);
    assert.equal(d.handled, handled, `${handled}`);
  }
  // another instance of the same node (another service ID) is another instance
  const sibling = { ...self, service: "redis-2" };
  assert.equal(
    hookFor("master", "slave", hooks, ME, sibling).plan?.env.AUTO_CONSUL_MASTER_NODE,
    ME.node,
  );
  // becoming master names this instance, as it should
  assert.deepEqual(hookFor("slave", "master", hooks, ME, self).plan?.argv, ["/bin/promote"]);
});

Deno.test("masterOfSlave: a slave names the lock's holder only when another instance holds it", () => {
  const me = { ...holder, node: ME.node };
  const ours = new Set([S1]);
  type Row = [string, typeof holder | undefined, string | undefined, boolean];
  const table: Row[] = [
    // what, holder named by the lock's value, the session holding the lock, named as master
    ["another instance's session", holder, S2, true],
    ["the lock is free", undefined, undefined, false],
    ["held, value not a holder", undefined, S2, false],
    ["a value naming another, no session (stale read)", holder, undefined, false],
    ["one of our sessions (kept, adopted or created)", holder, S1, false],
    ["another session, value naming this instance (ended, stale read)", me, S2, false],
    ["our session naming this instance", me, S1, false],
    ["this node, another service ID", { ...me, service: "redis-2" }, S2, true],
    ["another node, this service ID", { ...me, node: "web-3" }, S2, true],
  ];
  for (const [what, h, session, named] of table) {
    assert.equal(masterOfSlave(h, session, ours, ME), named ? h : undefined, what);
  }
});

function quietLog(lines: string[]): Logger {
  return new Logger({ sink: (l) => lines.push(l), level: "debug" });
}

Deno.test("runHook: failures are logged, never thrown", async () => {
  const plan = hookFor(undefined, "master", { onMaster: ["promote"] }, ME, holder).plan!;
  const cases: [SpawnHook, boolean, RegExp][] = [
    [
      () => Promise.resolve({ code: 0, timedOut: false, output: "" }),
      true,
      /on-master hook promote ran/,
    ],
    [
      () => Promise.resolve({ code: 3, timedOut: false, output: "boom" }),
      false,
      /exit code 3.*boom/,
    ],
    [() => Promise.resolve({ timedOut: true, output: "" }), false, /did not finish within 50 ms/],
    [() => Promise.reject(new Error("No such file")), false, /could not be started: No such file/],
  ];
  for (const [spawn, ok, line] of cases) {
    const lines: string[] = [];
    assert.equal(await runHook(plan, spawn, 50, quietLog(lines)), ok);
    assert.match(lines.join("\n"), line);
  }
});

Deno.test("spawnHook: argv without a shell, extra env, exit code, timeout", async () => {
  const dir = await Deno.makeTempDir({ prefix: "elect-hook-" });
  try {
    const script = `${dir}/hook.sh`;
    await Deno.writeTextFile(
      script,
      '#!/bin/sh\necho "role=$AUTO_CONSUL_ROLE arg=$1"\n[ "$1" = sleep ] && sleep 5\nexit ${EXIT_WITH:-0}\n',
    );
    await Deno.chmod(script, 0o755);
    const ok = await spawnHook([script, "$(echo injected)"], { AUTO_CONSUL_ROLE: "master" }, 5_000);
    assert.deepEqual(ok, { code: 0, timedOut: false, output: "role=master arg=$(echo injected)" });
    const bad = await spawnHook(
      [script, "x"],
      { EXIT_WITH: "4", AUTO_CONSUL_ROLE: "slave" },
      5_000,
    );
    assert.equal(bad.code, 4);
    const t0 = Date.now();
    const slow = await spawnHook([script, "sleep"], {}, 300);
    assert.equal(slow.timedOut, true);
    assert.ok(Date.now() - t0 < 3_000, "a hook past its bound is stopped");
    await assert.rejects(spawnHook([`${dir}/missing`], {}, 1_000));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("elect state: path, parse, format", () => {
  assert.equal(statePath("/var/lib/auto-consul", "redis"), "/var/lib/auto-consul/elect-redis.json");
  assert.equal(statePath("/tmp/x/", "redis"), "/tmp/x/elect-redis.json");
  const state = { session: S1, role: "master" as const, master: holder, hooked: "slave" as const };
  assert.deepEqual(parseState(formatState(state)), state);
  assert.deepEqual(parseState("{}"), {});
  assert.deepEqual(parseState(formatState({})), {});
  const bad: [string, RegExp][] = [
    ["", /not JSON/],
    ["[]", /not a JSON object/],
    ['{"session":"abc"}', /not a session ID/],
    ['{"session":"../../etc"}', /not a session ID/],
    ['{"role":"king"}', /role "king" is not "master" or "slave"/],
    ['{"hooked":1}', /hooked 1 is not "master" or "slave"/],
  ];
  for (const [text, why] of bad) assert.throws(() => parseState(text), why, text);
  assert.equal(parseState('{"master":{"node":"a b"}}').master, undefined);
});

Deno.test("exit codes: the tagger's by default, the role's with --role-exit-codes", () => {
  assert.equal(roleExitCode("master", false), 0);
  assert.equal(roleExitCode("slave", false), 0);
  assert.equal(roleExitCode("master", true), 0);
  assert.equal(roleExitCode("slave", true), 1);
});

Deno.test("roundJson: role, master, query", () => {
  const query = { id: "q-1", action: "none" as const, dns: "x.query.consul" };
  assert.deepEqual(JSON.parse(roundJson({ role: "slave", master: holder, query })), {
    role: "slave",
    master: holder,
    query: "x.query.consul",
    queryId: "q-1",
  });
  assert.equal(JSON.parse(roundJson({ role: "slave", query })).master, null);
});

Deno.test("timings: renewal at TTL/2, retry after the lock delay", () => {
  assert.equal(renewEveryMs(15), 7_500);
  assert.equal(renewEveryMs(10), 5_000);
  assert.equal(retryDelayMs(1), 1_250);
  assert.equal(retryDelayMs(0), 500);
  assert.ok(BLOCKED_RETRY_MS <= 2_000);
});

Deno.test("timings: a --watch round starts at most the renewal period after the last one", () => {
  // nothing asked: the rest of the renewal period, counted from the round's start
  assert.equal(nextRoundInMs(undefined, 5_000, 300), 4_700);
  // a retry sooner than that is kept; a later one is cut to the renewal
  assert.equal(nextRoundInMs(1_250, 5_000, 300), 1_250);
  assert.equal(nextRoundInMs(9_000, 5_000, 300), 4_700);
  // a round that took the whole period (or a clock step back): the next at once, never < 1 ms
  assert.equal(nextRoundInMs(undefined, 5_000, 7_000), 1);
  assert.equal(nextRoundInMs(undefined, 5_000, -50), 5_000);
});

Deno.test("alive check: a TTL check of the instance, the session TTL as its TTL", () => {
  assert.equal(aliveCheckId("redis"), "auto-consul-elect-alive:redis");
  assert.deepEqual(aliveCheck("redis", 10), {
    ID: "auto-consul-elect-alive:redis",
    Name: "auto-consul elect --watch alive (ttl 10s)",
    Notes: "passed by every round of auto-consul elect --watch; bound to its election session",
    ServiceID: "redis",
    TTL: "10s",
    Status: "passing",
  });
  const ttl = (name: string, status: Check["status"] = "passing") => ({
    name,
    status,
    type: "ttl",
  });
  assert.equal(aliveAction(undefined, 10), "register");
  assert.equal(aliveAction(ttl(aliveCheckName(10)), 10), "pass");
  // critical (its elector was dead for a TTL): passed again, not registered again
  assert.equal(aliveAction(ttl(aliveCheckName(10), "critical"), 10), "pass");
  // another TTL (the session TTL changed) or another kind of check with its ID: registered
  assert.equal(aliveAction(ttl(aliveCheckName(15)), 10), "register");
  assert.equal(aliveAction({ ...ttl(aliveCheckName(10)), type: "http" }, 10), "register");
});
