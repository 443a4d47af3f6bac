/** The join loop's logic with an injected clock: no waiting, every loop bounded. */
import assert from "node:assert/strict";
import { joinCandidates, stayJoined, unknownLiveServers } from "../src/cluster/join.ts";
import type { SerfMember } from "../src/consul/types.ts";
import { Logger } from "../src/log.ts";
import type { Member } from "../src/registry/heartbeats.ts";

const quiet = new Logger({ sink: () => {} });

function member(node: string, address: string, age: number): Member {
  const t = new Date(Date.UTC(2026, 0, 1, 0, 0, 0) - age * 1000);
  return {
    key: `servers/x-${node}`,
    dir: "servers",
    node,
    stamp: t,
    lastModified: t,
    ageSeconds: age,
    address,
  };
}

Deno.test("join candidates: live servers except this node, freshest first, no duplicates", () => {
  const servers = [
    member("a", "10.0.0.1", 1),
    member("me", "10.0.0.9", 2),
    member("b", "10.0.0.2", 5),
    member("c", "10.0.0.1", 7),
  ];
  assert.deepEqual(joinCandidates(servers, { node: "me", address: "10.0.0.9" }), [
    "10.0.0.1",
    "10.0.0.2",
  ]);
  assert.deepEqual(joinCandidates(servers, { node: "x", address: "10.0.0.2" }), [
    "10.0.0.1",
    "10.0.0.9",
  ]);
});

/** A scripted world: the clock advances only through sleep; the loop stops after `untilMs`. */
function world(opts: {
  untilMs: number;
  servers: (t: number) => Member[];
  healthy: (t: number, joins: string[]) => boolean;
  joinable: (addr: string, t: number) => boolean;
  /** Members the agent shows (default: one live server "s" while healthy). */
  members?: (t: number) => SerfMember[];
}) {
  let t = 0;
  const joins: string[] = [];
  const attempts: { t: number; addr: string }[] = [];
  const sleeps: number[] = [];
  const ctrl = new AbortController();
  const alive = (): SerfMember[] =>
    opts.healthy(t, joins)
      ? [{
        name: "s",
        addr: "x",
        port: 8301,
        status: "alive",
        statusCode: 1,
        isServer: true,
        tags: {},
      }]
      : [];
  const deps = {
    consul: {
      leader: () => Promise.resolve(opts.healthy(t, joins) ? "10.0.0.1:8300" : ""),
      members: () => Promise.resolve(opts.members ? opts.members(t) : alive()),
      join: (addr: string) => {
        attempts.push({ t, addr });
        if (!opts.joinable(addr, t)) return Promise.reject(new Error(`cannot join ${addr}`));
        joins.push(addr);
        return Promise.resolve();
      },
    } as never,
    readServers: () => Promise.resolve(opts.servers(t)),
    sleep: (ms: number) => {
      sleeps.push(ms);
      t += ms;
      if (t >= opts.untilMs) ctrl.abort();
      return Promise.resolve();
    },
    random: () => 0.5,
    now: () => t,
    log: quiet,
  };
  return { deps, ctrl, joins, attempts, sleeps, time: () => t };
}

const OPTS = {
  node: "me",
  ticksMs: 10_000,
  checkMs: 1_000,
  backoff: { initialMs: 1_000, maxMs: 8_000 },
};

Deno.test("before any server exists it backs off (capped) and joins as soon as one appears", async () => {
  const w = world({
    untilMs: 120_000,
    servers: (t) => (t >= 60_000 ? [member("s1", "10.0.0.1", 1)] : []),
    healthy: (_t, joins) => joins.length > 0,
    joinable: () => true,
  });
  await stayJoined(OPTS, w.deps, w.ctrl.signal);
  assert.deepEqual(w.joins, ["10.0.0.1"], "joined exactly once");
  assert.ok(
    w.attempts[0].t >= 60_000 && w.attempts[0].t <= 60_000 + 8_000,
    `joined at ${w.attempts[0].t}`,
  );
  const backoffs = w.sleeps.filter((_, i) => i < 6);
  assert.deepEqual(backoffs, [750, 1500, 3000, 6000, 6000, 6000], "exponential, jittered, capped");
});

Deno.test("a dead candidate is skipped for the next one", async () => {
  const w = world({
    untilMs: 20_000,
    servers: () => [member("dead", "10.0.0.5", 1), member("ok", "10.0.0.6", 3)],
    healthy: (_t, joins) => joins.length > 0,
    joinable: (addr) => addr === "10.0.0.6",
  });
  await stayJoined(OPTS, w.deps, w.ctrl.signal);
  assert.deepEqual(w.attempts.map((a) => a.addr), ["10.0.0.5", "10.0.0.6"]);
  assert.deepEqual(w.joins, ["10.0.0.6"]);
});

Deno.test("every live server is joined at once, not only the freshest (no islands at a cold start)", async () => {
  const w = world({
    untilMs: 5_000,
    servers:
      () => [member("s3", "10.0.0.3", 1), member("s2", "10.0.0.2", 2), member("s1", "10.0.0.1", 3)],
    healthy: (_t, joins) => joins.length === 3,
    joinable: () => true,
  });
  await stayJoined(OPTS, w.deps, w.ctrl.signal);
  assert.deepEqual(w.joins, ["10.0.0.3", "10.0.0.2", "10.0.0.1"]);
  assert.ok(w.attempts.every((a) => a.t === 0), "all in the first round");
});

Deno.test("the watch re-joins after more than two ticks without a leader, not before", async () => {
  // Healthy until 30 s; then the servers are replaced by new ones on new addresses at 30 s.
  const w = world({
    untilMs: 90_000,
    servers: (t) => (t < 30_000 ? [member("old", "10.0.0.1", 1)] : [member("new", "10.0.1.1", 1)]),
    healthy: (t, joins) => (t < 30_000 ? joins.length > 0 : joins.includes("10.0.1.1")),
    joinable: (addr, t) => (t < 30_000 ? addr === "10.0.0.1" : addr === "10.0.1.1"),
  });
  await stayJoined(OPTS, w.deps, w.ctrl.signal);
  assert.deepEqual(w.joins, ["10.0.0.1", "10.0.1.1"]);
  const rejoin = w.attempts.find((a) => a.addr === "10.0.1.1")!;
  assert.ok(rejoin.t > 30_000 + 2 * OPTS.ticksMs, `not before two ticks: ${rejoin.t}`);
  assert.ok(rejoin.t <= 30_000 + 3 * OPTS.ticksMs, `within three ticks: ${rejoin.t}`);
});

Deno.test("a short blip (under two ticks) causes no re-join", async () => {
  const w = world({
    untilMs: 60_000,
    servers: () => [member("s", "10.0.0.1", 1)],
    healthy: (t, joins) => joins.length > 0 && !(t >= 20_000 && t < 35_000),
    joinable: () => true,
  });
  await stayJoined(OPTS, w.deps, w.ctrl.signal);
  assert.deepEqual(w.joins, ["10.0.0.1"]);
});

function serf(name: string, status: string, isServer = true): SerfMember {
  return {
    name,
    addr: "10.9.9.9",
    port: 8301,
    status: status as SerfMember["status"],
    statusCode: 1,
    isServer,
    tags: {},
  };
}

Deno.test("unknown live servers: alive server members the registry has no live server of", () => {
  const members = [
    serf("me", "alive"),
    serf("old1", "alive"),
    serf("old2", "failed"),
    serf("old3", "left"),
    serf("new1", "alive"),
    serf("client", "alive", false),
    serf("old0", "alive"),
  ];
  const registry = [member("new1", "10.0.1.1", 1), member("new2", "10.0.1.2", 1)];
  assert.deepEqual(unknownLiveServers(members, registry, "me"), ["old0", "old1"]);
  assert.deepEqual(unknownLiveServers(members.slice(2, 6), registry, "me"), []);
  assert.deepEqual(unknownLiveServers([serf("me", "alive")], [], "me"), [], "itself");
});

Deno.test("no join while the agent shows old servers alive that the registry does not know (I1)", async () => {
  // Every old server is gone; a new one is in the registry. The agent's gossip shows the old
  // ones alive until 25 s (failure detection), then failed.
  const lines: string[] = [];
  const w = world({
    untilMs: 60_000,
    servers: () => [member("new", "10.0.1.1", 1)],
    healthy: (_t, joins) => joins.length > 0,
    joinable: () => true,
    members: (t) =>
      t < 25_000
        ? [serf("me", "alive", false), serf("old1", "alive")]
        : [serf("me", "alive", false), serf("old1", "failed"), serf("new", "alive")],
  });
  const log = new Logger({ format: "json", sink: (l) => lines.push(JSON.parse(l).msg) });
  await stayJoined(OPTS, { ...w.deps, log }, w.ctrl.signal);
  assert.deepEqual(w.joins, ["10.0.1.1"]);
  assert.ok(w.attempts[0].t >= 25_000, `joined at ${w.attempts[0].t}, not while old1 was alive`);
  assert.ok(w.attempts[0].t <= 25_000 + OPTS.checkMs, `joined at ${w.attempts[0].t}`);
  const held = lines.filter((l) => /^not joining the registry's servers/.test(l));
  assert.equal(held.length, 1, `said once: ${lines.join(" | ")}`);
  assert.match(held[0], /\(old1\)/);
});

Deno.test("a server the registry knows as live does not hold the join back", async () => {
  const w = world({
    untilMs: 5_000,
    servers: () => [member("new", "10.0.1.1", 1), member("old1", "10.0.0.1", 2)],
    healthy: (_t, joins) => joins.length > 0,
    joinable: () => true,
    members: () => [serf("me", "alive", false), serf("old1", "alive")],
  });
  await stayJoined(OPTS, w.deps, w.ctrl.signal);
  assert.equal(w.attempts[0].t, 0, "joined at once");
});
