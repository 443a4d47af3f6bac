/**
 * A node's life (src/cluster/node.ts) with fake collaborators: a scripted consul (no
 * process), an in-memory registry, virtual time (nothing sleeps). Promotion, leaving
 * cleanup, the mode decision and its retries, and restarts.
 */
import assert from "node:assert/strict";
import { runNode } from "../src/cluster/node.ts";
import type { NodeDeps, NodeOptions } from "../src/cluster/node_options.ts";
import { readMode, readPlace, writeMode } from "../src/cluster/state.ts";
import { RegistryError, UsageError } from "../src/errors.ts";
import { Logger } from "../src/log.ts";
import { heartbeatKey } from "../src/registry/layout.ts";
import { encodeHolderRecord } from "../src/cluster/records.ts";
import { ConsulWorld, serverMember } from "./fakes/consul_world.ts";
import { MemoryRegistry } from "./fakes/memory_registry.ts";
import { FakeTime } from "./fakes/time.ts";

interface Line {
  level: string;
  component: string;
  msg: string;
  [k: string]: unknown;
}

/** Everything one test needs: time, registry, consul, a log, a stop switch, a data dir. */
async function world(node = "c1", address = "10.0.0.9", opts: { ignoreConditions?: boolean } = {}) {
  const time = new FakeTime();
  const registry = new MemoryRegistry(time.now, opts);
  const consul = new ConsulWorld(node, address);
  const lines: Line[] = [];
  const log = new Logger({
    level: "debug",
    format: "json",
    component: "run",
    node,
    sink: (l) => lines.push(JSON.parse(l)),
    now: () => new Date(time.now()),
  });
  const stop = new AbortController();
  const dataDir = await Deno.makeTempDir({ prefix: "node_test_" });
  const options = (o: Partial<NodeOptions> = {}): NodeOptions => ({
    node,
    modeFrom: "decide",
    servers: 3,
    expirySeconds: 6,
    ticksSeconds: 2,
    dataDir,
    advisory: false,
    version: { major: 1, minor: 8, patch: 7 },
    bind: address,
    client: "127.0.0.1",
    consulArgs: [],
    ...o,
  });
  const deps = (d: Partial<NodeDeps> = {}): NodeDeps => ({
    spawn: consul.spawn,
    consul: consul.client,
    registry,
    sleep: time.sleep,
    random: () => 0.5,
    now: time.now,
    stop: stop.signal,
    log,
    ...d,
  });
  const logged = (re: RegExp) => lines.filter((l) => re.test(l.msg));
  return {
    time,
    registry,
    consul,
    lines,
    logged,
    stop,
    dataDir,
    options,
    deps,
    [Symbol.asyncDispose]: () => Deno.remove(dataDir, { recursive: true }),
  };
}

/** A server `name` holding place `place` (epoch 1), with a heartbeat written at `atMs`. */
function plantServer(
  w: Awaited<ReturnType<typeof world>>,
  name: string,
  place: number,
  address: string,
  atMs = w.time.now(),
) {
  w.registry.plant(`slots/${place}/0000000001`, name, w.time.epochMs);
  w.registry.plant(heartbeatKey("servers", new Date(atMs), name), address, atMs);
}

/** s0, s1 and s2 hold places 0-2; this agent sees s2 failed (its heartbeat is never renewed). */
function threeServersS2Failed(w: Awaited<ReturnType<typeof world>>) {
  plantServer(w, "s0", 0, "10.0.0.1");
  plantServer(w, "s1", 1, "10.0.0.2");
  plantServer(w, "s2", 2, "10.0.0.3");
  w.consul.others = [
    serverMember("s0", "10.0.0.1"),
    serverMember("s1", "10.0.0.2"),
    serverMember("s2", "10.0.0.3", "failed"),
  ];
}

/** A fresh server heartbeat of s0 and s1 (they live on). */
function beatS0S1(w: Awaited<ReturnType<typeof world>>) {
  for (const [name, addr] of [["s0", "10.0.0.1"], ["s1", "10.0.0.2"]]) {
    w.registry.plant(heartbeatKey("servers", new Date(w.time.now()), name), addr);
  }
}

const myKeys = (w: Awaited<ReturnType<typeof world>>, dir: string) =>
  w.registry.keys(`${dir}/`).filter((k) => k.endsWith(`-${w.consul.node}`));

Deno.test("node: a client takes a server place that went stale and restarts consul as a server", async () => {
  await using w = await world();
  // s2 dies at once: its agent says so and its heartbeat is never renewed; s0 and s1 live on.
  threeServersS2Failed(w);
  let promotedAt: number | undefined;
  const code = await w.time.drive(runNode(w.options(), w.deps()), 120_000, (t) => {
    beatS0S1(w);
    if (promotedAt === undefined && w.consul.agents.length === 2) promotedAt = t;
    if (promotedAt !== undefined && t > promotedAt + 10_000) w.stop.abort("SIGTERM");
  });

  assert.equal(code, 0);
  const [asClient, asServer] = w.consul.agents;
  assert.equal(w.consul.agents.length, 2, "one restart, as a server");
  assert.ok(!asClient.isServer, asClient.args.join(" "));
  assert.deepEqual(asClient.killedWith, ["SIGTERM"], "the client left like on SIGTERM");
  assert.ok(asServer.isServer, asServer.args.join(" "));
  assert.ok(asServer.args.includes("-bootstrap-expect=3"));
  assert.equal(w.logged(/all 3 server places are held/).length, 1);
  const [promotion] = w.logged(/restarting consul as a server/);
  assert.match(promotion.msg, /claimed stale server place 2 \(epoch 2\)/);
  // Not before the place was stale for twice the expiry (CLIENT_PATIENCE), from s2's last beat.
  assert.ok(promotedAt! > 12_000, `promoted at ${promotedAt} ms`);
  assert.equal(new TextDecoder().decode(w.registry.objects.get("slots/2/0000000002")!.body), "c1");
  assert.equal(await readMode(w.dataDir), "server");
  assert.deepEqual(await readPlace(w.dataDir), { place: 2, epoch: 2 });
  // It announced itself as a server after the restart, and a server keeps its heartbeat on stop.
  assert.equal(myKeys(w, "servers").length, 1);
  assert.equal(myKeys(w, "agents").length, 1);
});

/** A holder record of `name` (node-id `nodeId`) for place `place`, epoch 1, written at `atMs`. */
function plantRecord(
  w: Awaited<ReturnType<typeof world>>,
  name: string,
  nodeId: string,
  place: number,
  opts: { atMs?: number; leaderFor?: number } = {},
) {
  const raft = {
    state: "Follower",
    lastIndex: 10,
    lastTerm: 2,
    leader: opts.leaderFor !== undefined,
    leaderFor: opts.leaderFor ?? 0,
  };
  const record = { node: name, nodeId, address: "10.0.0.3", place, epoch: 1, raft };
  w.registry.plant(`holders/${name}`, encodeHolderRecord(record), opts.atMs);
}

const S2_ID = "22222222-2222-4222-8222-222222222222";

Deno.test("node: a client that takes a stale place removes the old holder's raft voter before it restarts as a server (I1)", async () => {
  await using w = await world();
  threeServersS2Failed(w);
  plantRecord(w, "s2", S2_ID, 2);
  w.consul.raftVoters = [
    { id: "00000000-0000-4000-8000-000000000001", node: "s0", address: "10.0.0.1:8300" },
    { id: "00000000-0000-4000-8000-000000000002", node: "s1", address: "10.0.0.2:8300" },
    { id: S2_ID, node: "s2", address: "10.0.0.3:8300" },
  ];
  await w.time.drive(runNode(w.options(), w.deps()), 120_000, () => {
    beatS0S1(w);
    if (w.consul.agents.length === 2) w.stop.abort("SIGTERM");
  });
  assert.equal(w.consul.agents.length, 2, "promoted: restarted once, as a server");
  assert.deepEqual(
    w.consul.removedPeers,
    [{ id: S2_ID, agents: 1, byServer: false }],
    "s2's voter removed through the client agent, before the server agent started",
  );
  assert.deepEqual(w.consul.raftVoters.map((v) => v.node), ["s0", "s1"]);
  assert.equal(w.logged(/^removed the raft voter of s2, whose place this node took$/).length, 1);
});

Deno.test("node: a new node that takes a stale place at start removes the old holder's voter once its agent answers (I1)", async () => {
  await using w = await world("n9", "10.0.0.9");
  plantServer(w, "s2", 2, "10.0.0.3");
  plantRecord(w, "s2", S2_ID, 2);
  w.time.t = 30_000; // s2 silent for 30 s; s0 and s1 alive, s0 has led for a minute
  plantServer(w, "s0", 0, "10.0.0.1");
  plantServer(w, "s1", 1, "10.0.0.2");
  plantRecord(w, "s0", "00000000-0000-4000-8000-000000000001", 0, { leaderFor: 60 });
  w.consul.raftVoters = [{ id: S2_ID, node: "s2", address: "10.0.0.3:8300" }];
  await w.time.drive(runNode(w.options(), w.deps()), 60_000, () => {
    if (w.consul.removedPeers.length > 0) w.stop.abort("SIGTERM");
  });
  assert.equal(w.consul.agents.length, 1);
  assert.ok(w.consul.agents[0].isServer, "took the stale place at start");
  assert.deepEqual(w.consul.removedPeers, [{ id: S2_ID, agents: 1, byServer: true }]);
});

Deno.test("node: a client stopped with SIGINT forwards it, removes its heartbeat and exits with consul's code", async () => {
  await using w = await world();
  plantServer(w, "s0", 0, "10.0.0.1");
  const codes = new Map([["SIGINT", 7]]);
  const consul = new ConsulWorld("c1", "10.0.0.9", (sig) => codes.get(sig) ?? 0);
  let beatsSeen = 0;
  const code = await w.time.drive(
    runNode(w.options({ servers: 1 }), w.deps({ spawn: consul.spawn, consul: consul.client })),
    60_000,
    (t) => {
      w.registry.plant(heartbeatKey("servers", new Date(w.time.now()), "s0"), "10.0.0.1");
      // Its agent sees the server once it joined it.
      if (consul.joins.length > 0) consul.others = [serverMember("s0", "10.0.0.1")];
      beatsSeen = Math.max(
        beatsSeen,
        w.registry.keys("agents/").filter((k) => /-c1$/.test(k)).length,
      );
      if (t >= 10_000) w.stop.abort("SIGINT");
    },
  );
  assert.equal(code, 7, "consul's exit code");
  assert.equal(consul.agents.length, 1);
  assert.deepEqual(consul.agents[0].killedWith, ["SIGINT"]);
  assert.equal(beatsSeen, 1, "it was announced while it ran");
  assert.deepEqual(w.registry.keys("agents/").filter((k) => /-c1$/.test(k)), [], "and left");
  assert.ok(consul.joins.includes("10.0.0.1"), String(consul.joins));
  assert.equal(w.logged(/consul exited/).at(-1)?.code, 7);
});

Deno.test("node: a server stopped by a signal exits 0 though consul exits 1 (it never leaves); a client keeps consul's 1", async () => {
  for (
    const [servers, sig, want] of [[1, "SIGINT", 0], [1, "SIGTERM", 0], [0, "SIGINT", 1]] as const
  ) {
    await using w = await world();
    if (servers === 0) plantServer(w, "s0", 0, "10.0.0.1"); // a server exists: this node is a client
    // consul 1.8: exit 1 when it does not leave on a signal (a server), or its leave failed
    const consul = new ConsulWorld("c1", "10.0.0.9", () => 1);
    const code = await w.time.drive(
      runNode(w.options({ servers: 1 }), w.deps({ spawn: consul.spawn, consul: consul.client })),
      60_000,
      (t) => {
        if (servers === 0) {
          w.registry.plant(heartbeatKey("servers", new Date(w.time.now()), "s0"), "10.0.0.1");
        }
        if (t >= 10_000) w.stop.abort(sig);
      },
    );
    const what = `${servers ? "server" : "client"} stopped by ${sig}`;
    assert.equal(consul.agents[0].isServer, servers === 1, what);
    assert.deepEqual(consul.agents[0].killedWith, [sig], what);
    assert.equal(code, want, what);
    assert.equal(w.logged(/consul exited/).at(0)?.code, 1, `${what}: consul's code logged`);
  }
});

Deno.test("node: a server stopped keeps its place and its heartbeats", async () => {
  await using w = await world();
  const code = await w.time.drive(runNode(w.options({ servers: 1 }), w.deps()), 60_000, (t) => {
    if (t >= 10_000) w.stop.abort("SIGTERM");
  });
  assert.equal(code, 0);
  assert.ok(w.consul.agents[0].isServer);
  assert.deepEqual(w.consul.agents[0].killedWith, ["SIGTERM"]);
  assert.equal(myKeys(w, "servers").length, 1);
  assert.equal(myKeys(w, "agents").length, 1);
  assert.deepEqual(w.registry.keys("slots/"), ["slots/0/0000000001"]);
  assert.deepEqual(await readPlace(w.dataDir), { place: 0, epoch: 1 });
});

Deno.test("node: the mode decision is retried with backoff while the registry fails, then consul starts", async () => {
  await using w = await world();
  w.registry.failing = /^create probe\//;
  w.registry.failures = 2;
  await w.time.drive(runNode(w.options({ servers: 1 }), w.deps()), 60_000, () => {
    if (w.consul.agents.length > 0) w.stop.abort("SIGTERM");
  });
  const retries = w.logged(/mode decision failed; retrying/);
  assert.deepEqual(retries.map((l) => l.retryInMs), [750, 1500], "1 s then 2 s, equal jitter");
  assert.match(String(retries[0].error), /unreachable/);
  assert.deepEqual(w.time.sleeps.slice(0, 2), [750, 1500]);
  assert.equal(w.consul.agents.length, 1);
  assert.ok(w.consul.agents[0].isServer);
});

Deno.test("node: stopped while the mode decision is still failing, nothing is started", async () => {
  await using w = await world();
  w.registry.failures = Infinity;
  const code = await w.time.drive(runNode(w.options(), w.deps()), 300_000, (t) => {
    if (t >= 100_000) w.stop.abort("SIGINT");
  });
  assert.equal(code, 0);
  assert.equal(w.consul.agents.length, 0);
  assert.ok(w.logged(/mode decision failed/).length >= 4);
  // Capped at 30 s.
  assert.ok(Math.max(...w.time.sleeps) <= 30_000, String(w.time.sleeps));
});

Deno.test("node: a store that ignores conditional writes is refused at once, no retry", async () => {
  await using w = await world("c1", "10.0.0.9", { ignoreConditions: true });
  await assert.rejects(
    w.time.drive(runNode(w.options(), w.deps()), 60_000),
    (err) => err instanceof RegistryError && err.reason === "conditions-ignored",
  );
  assert.equal(w.consul.agents.length, 0);
  assert.equal(w.logged(/retrying/).length, 0);
});

Deno.test("node: --advisory on such a store settles, re-reads and decides by the gem's rule", async () => {
  await using w = await world("c1", "10.0.0.9", { ignoreConditions: true });
  await w.time.drive(runNode(w.options({ advisory: true }), w.deps()), 60_000, () => {
    if (w.consul.agents.length > 0) w.stop.abort("SIGTERM");
  });
  assert.equal(w.time.sleeps[0], 2500, "half of the 5 s settle bound (random 0.5)");
  assert.ok(w.consul.agents[0].isServer, "no live server seen: server");
  assert.equal(w.registry.ops.filter((o) => o === "list servers/").length >= 2, true);
});

Deno.test("node: a mode set by hand is kept, and such a client never watches for places", async () => {
  await using w = await world();
  await writeMode(w.dataDir, "agent", true);
  w.consul.others = []; // no server at all: a watching client would claim a place
  await w.time.drive(runNode(w.options({ servers: 1 }), w.deps()), 120_000, (t) => {
    if (t >= 60_000) w.stop.abort("SIGTERM");
  });
  assert.equal(w.consul.agents.length, 1);
  assert.ok(!w.consul.agents[0].isServer);
  assert.equal(w.logged(/keeping the recorded mode agent/).length, 1);
  assert.deepEqual(w.registry.keys("slots/"), []);
});

Deno.test("node: direct_run runs the recorded mode, without a registry", async () => {
  await using w = await world();
  await assert.rejects(
    w.time.drive(runNode(w.options({ modeFrom: "recorded" }), w.deps({ registry: undefined })), 1),
    (err) => err instanceof UsageError && /no mode recorded in .*\/mode/.test(err.message),
  );
  await writeMode(w.dataDir, "server");
  const code = await w.time.drive(
    runNode(w.options({ modeFrom: "recorded" }), w.deps({ registry: undefined })),
    60_000,
    () => {
      if (w.consul.agents.length > 0) w.stop.abort("SIGTERM");
    },
  );
  assert.equal(code, 0);
  assert.ok(w.consul.agents[0].isServer);
  assert.deepEqual(w.registry.ops, [], "no registry: no heartbeat, no join read");
});

Deno.test("node: consul that exits unexpectedly is restarted with the same command, heartbeats go on", async () => {
  await using w = await world();
  let crashed = false;
  let beatsAfterRestart = 0;
  const code = await w.time.drive(runNode(w.options({ servers: 1 }), w.deps()), 120_000, (t) => {
    if (!crashed && t >= 5_000) {
      crashed = true;
      w.consul.running!.exit(1);
    }
    if (w.consul.agents.length === 2) {
      beatsAfterRestart = w.registry.ops.filter((o) => /^put servers\/.*-c1$/.test(o)).length;
    }
    if (t >= 30_000) w.stop.abort("SIGTERM");
  });
  assert.equal(code, 0);
  assert.equal(w.consul.agents.length, 2);
  assert.deepEqual(w.consul.agents[1].args, w.consul.agents[0].args);
  const [exit] = w.logged(/consul exited unexpectedly/);
  assert.equal(exit.code, 1);
  assert.equal(w.logged(/restarting consul$/)[0].retryInMs, 750);
  assert.ok(beatsAfterRestart > 3, `heartbeats written: ${beatsAfterRestart}`);
  assert.equal(w.logged(/mode decision/).length, 0, "the mode is not decided again");
  assert.equal(w.logged(/claimed free server place 0/).length, 1);
});

Deno.test("node: a holder whose consul is slow to answer records itself from its claim on, so its place is not taken", async () => {
  await using w = await world();
  w.consul.silent = true;
  const records: string[] = [];
  const code = await w.time.drive(runNode(w.options({ servers: 1 }), w.deps()), 60_000, (t) => {
    const r = w.registry.objects.get("holders/c1");
    if (r) records.push(new TextDecoder().decode(r.body));
    if (t >= 20_000) w.consul.silent = false; // more than 3 expiry windows of silence
    if (t >= 40_000) w.stop.abort("SIGTERM");
  });
  assert.equal(code, 0);
  const starting = records.filter((r) => JSON.parse(r).raft.state === "Starting");
  assert.ok(starting.length > 0, "a starting record while consul was silent");
  const first = JSON.parse(starting[0]);
  assert.equal(first.place, 0);
  assert.equal(first.address, "10.0.0.9");
  const nodeId = (await Deno.readTextFile(`${w.dataDir}/server/node-id`)).trim();
  assert.equal(first.nodeId, nodeId, "the node-id consul will read from its data dir");
  // written every tick while silent: never older than the expiry while the place was claimed
  const distinct = new Set(starting).size;
  assert.ok(distinct >= 1 && starting.length >= 5, `records: ${starting.length}`);
  assert.deepEqual(w.registry.keys("slots/"), ["slots/0/0000000001"], "nobody took the place");
});

Deno.test("node: a promoted client records itself from its claim on, while its consul is slow to stop and start again (I1)", async () => {
  await using w = await world();
  threeServersS2Failed(w);
  // The client's consul ignores SIGTERM: killed after 30 s, longer than the others' patience
  // (twice the expiry, 20 s).
  const expirySeconds = 10;
  w.consul.holdExit = true;
  let killedAt: number | undefined;
  let serverAt: number | undefined;
  /** How old this node's holder record was at each step of its consul's slow stop. */
  const ages: number[] = [];
  let lastStarting = "";
  await w.time.drive(runNode(w.options({ expirySeconds }), w.deps()), 600_000, (t) => {
    beatS0S1(w);
    const client = w.consul.agents[0];
    if (killedAt === undefined && client?.killedWith.length > 0) {
      killedAt = t;
      w.consul.holdExit = false; // the server agent stops at once at the end
    }
    if (serverAt === undefined && w.consul.agents.length === 2) serverAt = t;
    if (killedAt !== undefined && serverAt === undefined) {
      const record = w.registry.objects.get("holders/c1");
      ages.push(record ? w.time.now() - record.lastModified.getTime() : Infinity);
      if (record) lastStarting = new TextDecoder().decode(record.body);
    }
    if (serverAt !== undefined && t > serverAt + 10_000) w.stop.abort("SIGTERM");
  });
  assert.ok(killedAt !== undefined && serverAt !== undefined, `${killedAt} ${serverAt}`);
  assert.deepEqual(w.consul.agents[0].killedWith, ["SIGTERM", "SIGKILL"]);
  assert.ok(serverAt - killedAt >= 30_000, `the restart took ${serverAt - killedAt} ms`);
  assert.ok(ages.length > 10, `${ages.length} samples`);
  // A record every tick (2 s) while consul stops: never near the 20 s of the others' patience.
  assert.ok(Math.max(...ages) <= 4_000, `record ages while consul stopped: ${ages.join(",")}`);
  const record = JSON.parse(lastStarting);
  assert.equal(record.raft.state, "Starting");
  assert.equal(record.place, 2);
  assert.equal(record.epoch, 2);
  const nodeId = (await Deno.readTextFile(`${w.dataDir}/server/node-id`)).trim();
  assert.equal(record.nodeId, nodeId, "the node-id its server consul reads");
  assert.equal(w.consul.agents.length, 2, "restarted once, as a server");
  assert.ok(w.consul.agents[1].isServer);
  assert.equal(w.logged(/claimed stale server place 2 \(epoch 2\)/).length, 1);
});

Deno.test("node: a server whose place was taken leaves raft before running as a client", async () => {
  await using w = await world();
  let planted = false;
  await w.time.drive(runNode(w.options({ servers: 1 }), w.deps()), 120_000, (t) => {
    if (!planted && t >= 10_000 && w.consul.running?.isServer) {
      w.registry.plant("slots/0/0000000002", "other");
      planted = true;
    }
    if (planted && w.consul.running && !w.consul.running.isServer) w.stop.abort("SIGTERM");
  });
  assert.ok(planted);
  assert.equal(w.consul.leaves, 1, "one graceful leave before stepping down");
  assert.equal(w.consul.agents[0].isServer, true);
  assert.equal(w.consul.agents.at(-1)!.isServer, false, "running as a client afterwards");
  assert.equal(w.logged(/stepping down to a client/).length, 1);
});
