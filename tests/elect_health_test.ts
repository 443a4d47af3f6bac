/**
 * Who may be master (issue 12 build 1 and 3), pure: health in the prepared query's sense,
 * the election check left out, the vouch check, the query's OnlyPassing.
 */
import assert from "node:assert/strict";
import type { Check, PreparedQuery, ServiceEntry } from "../src/consul/types.ts";
import {
  electionCheckIds,
  healthOf,
  instanceChecks,
  isElectOutput,
  startedByConsul,
} from "../src/elect/health.ts";
import { otherPassingMasters, vouchCheck, vouchCheckId, vouchKey } from "../src/elect/vouch.ts";
import { planQuery } from "../src/elect/query.ts";

function check(id: string, over: Partial<Check> = {}): Check {
  return {
    node: "web-1",
    checkId: id,
    name: id,
    status: "passing",
    output: "",
    serviceId: "redis",
    serviceName: "redis",
    type: "ttl",
    ...over,
  };
}

const opts = { queryName: "redis-master", checkIds: [] as string[] };

Deno.test("isElectOutput: an elect run's stdout or log line, nothing else", () => {
  assert.ok(isElectOutput("redis-master.query.consul\n", "redis-master"));
  assert.ok(isElectOutput('{"role":"slave","query":"redis-master.query.consul"}', "redis-master"));
  assert.ok(isElectOutput("2026-12-02T04:37:07Z ERROR [elect web-1] consul at ...", "x"));
  assert.ok(isElectOutput("ERROR [elect] no service", "x"));
  assert.ok(!isElectOutput("PONG", "redis-master"));
  assert.ok(!isElectOutput("other-master.query.consul", "redis-master"));
  assert.ok(!isElectOutput("[election] done", "redis-master"));
});

Deno.test("electionCheckIds: --check-id, an elect run's output, a never-run script check under consul", () => {
  const checks = [
    check("redis-ttl"),
    check("ping", { type: "script", output: "PONG" }),
    check("zeroconf", { type: "script", output: "redis-master.query.consul\n", status: "warning" }),
    check("fresh", { type: "script", output: "", status: "critical" }),
    check("http", { type: "http", output: "", status: "critical" }),
  ];
  assert.deepEqual([...electionCheckIds(checks, opts, false)].sort(), ["zeroconf"]);
  assert.deepEqual([...electionCheckIds(checks, opts, true)].sort(), ["fresh", "zeroconf"]);
  assert.deepEqual(
    [...electionCheckIds(checks, { ...opts, checkIds: ["ping"] }, false)].sort(),
    ["ping", "zeroconf"],
  );
});

Deno.test("healthOf: passing only (or warning with --allow-warning), election checks aside", () => {
  const none = new Set<string>();
  assert.deepEqual(healthOf([check("a"), check("b")], none, false), { healthy: true });
  assert.deepEqual(healthOf([], none, false), { healthy: true });
  const warn = [check("a"), check("b", { status: "warning", name: "redis alive" })];
  assert.deepEqual(healthOf(warn, none, false), {
    healthy: false,
    why: "check b (redis alive) is warning",
  });
  assert.deepEqual(healthOf(warn, none, true), { healthy: true });
  assert.deepEqual(healthOf(warn, new Set(["b"]), false), { healthy: true });
  const crit = [check("c", { status: "critical" }), check("b", { status: "warning" })];
  assert.equal(healthOf(crit, none, true).healthy, false);
  assert.equal(healthOf(crit, none, false).why, "check b (b) is warning (and 1 more)");
  // a node check (maintenance) counts as the query counts it
  const maint = check("_node_maintenance", { serviceId: "", status: "critical" });
  assert.equal(healthOf([check("a"), maint], none, false).healthy, false);
});

Deno.test("instanceChecks: the node's checks and the service's, not other services'", () => {
  const all: Record<string, Check> = {
    a: check("a"),
    n: check("n", { serviceId: "" }),
    o: check("o", { serviceId: "postgres" }),
  };
  assert.deepEqual(instanceChecks(all, "redis").map((c) => c.checkId).sort(), ["a", "n"]);
});

Deno.test("startedByConsul: the parent or grandparent process is consul", () => {
  const procs: Record<string, string> = {
    [`/proc/${Deno.ppid}/comm`]: "sh\n",
    [`/proc/${Deno.ppid}/stat`]: `${Deno.ppid} (sh (x)) S 4242 1 1`,
    "/proc/4242/comm": "consul\n",
  };
  const read = (p: string) => {
    if (p in procs) return procs[p];
    throw new Deno.errors.NotFound(p);
  };
  assert.equal(startedByConsul(read), true);
  procs["/proc/4242/comm"] = "bash\n";
  assert.equal(startedByConsul(read), false);
  assert.equal(
    startedByConsul(() => {
      throw new Deno.errors.NotFound("no /proc");
    }),
    false,
  );
  assert.equal(startedByConsul(), false, "the test runner is not consul");
});

Deno.test("vouch check: consul reads this node's vouch key (stale), starts critical", () => {
  assert.equal(vouchCheckId("redis"), "auto-consul-elect:redis");
  const key = vouchKey("auto-consul/elect/redis/leader", "web-1");
  assert.equal(key, "auto-consul/elect/redis/leader/vouch/web-1");
  const def = vouchCheck("redis", "http://127.0.0.1:8500", key);
  assert.equal(def?.ServiceID, "redis");
  assert.equal(def?.HTTP, `http://127.0.0.1:8500/v1/kv/${key}?stale`);
  assert.equal(def?.Interval, "1s");
  assert.equal(def?.Status, undefined, "no Status: a restarted agent starts it critical");
  assert.equal(def?.Header, undefined);
  const withToken = vouchCheck("redis", "https://h:8501", "a b/c", "tok");
  assert.equal(withToken?.HTTP, "https://h:8501/v1/kv/a%20b/c?stale");
  assert.deepEqual(withToken?.Header, { "X-Consul-Token": ["tok"] });
  assert.equal(vouchCheck("redis", undefined, key), undefined, "unix socket: no check");
});

Deno.test("otherPassingMasters: tagged master and passing, not this instance", () => {
  const entry = (node: string, tags: string[], statuses: string[]): ServiceEntry => ({
    node,
    nodeAddress: "10.0.0.1",
    service: { id: "redis", name: "redis", tags, address: "", port: 1, meta: {} },
    checks: statuses.map((s, i) => check(`c${i}`, { node, status: s as Check["status"] })),
    raw: {},
  });
  const entries = [
    entry("web-1", ["master"], ["passing"]),
    entry("web-2", ["master"], ["passing", "passing"]),
    entry("web-3", ["master"], ["passing", "critical"]),
    entry("web-4", ["master"], ["warning"]),
    entry("web-5", ["slave"], ["passing"]),
  ];
  const self = { node: "web-1", service: "redis" };
  assert.deepEqual(otherPassingMasters(entries, self, "master", false), ["web-2"]);
  assert.deepEqual(otherPassingMasters(entries, self, "master", true), ["web-2", "web-4"]);
  assert.deepEqual(otherPassingMasters(entries, self, "primary", false), []);
});

Deno.test("planQuery: OnlyPassing, or not with --allow-warning, updated in place", () => {
  const spec = { name: "redis-master", service: "redis", tags: ["master"] };
  const created = planQuery(undefined, spec);
  assert.equal(created.action === "create" && created.def.Service.OnlyPassing, true);
  const loose = planQuery(undefined, { ...spec, onlyPassing: false });
  assert.equal(loose.action === "create" && loose.def.Service.OnlyPassing, false);
  const stored: PreparedQuery = {
    ID: "q1",
    CreateIndex: 1,
    ModifyIndex: 1,
    Name: "redis-master",
    Service: { Service: "redis", Tags: ["master"], OnlyPassing: true },
  };
  assert.equal(planQuery(stored, spec).action, "none");
  const upd = planQuery(stored, { ...spec, onlyPassing: false });
  assert.equal(upd.action, "update");
  assert.equal(upd.action === "update" && upd.id, "q1");
  assert.equal(upd.action === "update" && upd.def.Service.OnlyPassing, false);
});
