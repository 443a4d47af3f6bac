/**
 * ConsulClient against real consul agents: one cluster of 3 servers and 1 client shared by
 * every step (always stopped), plus a few error-path tests against tiny loopback servers.
 */
import assert from "node:assert/strict";
import { ConsulClient } from "../../src/consul/client.ts";
import {
  nextBlockingIndex,
  registrationOf,
  type ServiceRegistration,
} from "../../src/consul/types.ts";
import { ConsulError, ConsulUnreachableError } from "../../src/errors.ts";
import { randomLoopbackIp, startAgent, startCluster } from "../harness/consul.ts";
import { waitFor } from "../harness/wait.ts";

Deno.test("ConsulClient against a real cluster of 3 servers and 1 client", async (t) => {
  const cluster = await startCluster({ servers: 3, clients: 1 });
  try {
    const [s0, s1] = cluster.servers;
    const agent = cluster.clients[0];
    const serverRpcAddrs = cluster.servers.map((s) => s.rpcAddr).sort();

    await t.step("self() of a server and of a client", async () => {
      const srv = await s0.client.self();
      assert.equal(srv.isServer, true);
      assert.equal(srv.node, s0.node);
      assert.equal(srv.memberAddr, s0.ip);
      assert.equal(srv.memberPort, 8301);
      assert.equal(srv.advertiseAddr, s0.ip);
      assert.equal(srv.bindAddr, s0.ip);
      assert.equal(srv.datacenter, "dc1");
      assert.match(srv.version, /^1\.8\./);
      assert.match(srv.nodeId, /^[0-9a-f-]{36}$/);

      const cli = await agent.client.self();
      assert.equal(cli.isServer, false);
      assert.equal(cli.node, agent.node);
      assert.equal(cli.memberAddr, agent.ip);
      assert.equal(cli.advertiseAddr, agent.ip);
    });

    await t.step("members(), LAN and WAN", async () => {
      for (const viewer of [s1, agent]) {
        const members = await viewer.client.members();
        assert.deepEqual(
          members.map((m) => [m.name, m.addr, m.status, m.isServer]).sort(),
          cluster.agents.map((a) => [a.node, a.ip, "alive", a.server]).sort(),
        );
      }
      const wan = await s0.client.members({ wan: true });
      assert.deepEqual(
        wan.map((m) => m.name).sort(),
        cluster.servers.map((s) => `${s.node}.dc1`).sort(),
      );
    });

    await t.step("leader() and peers() agree on every agent", async () => {
      for (const a of cluster.agents) {
        const leader = await a.client.leader();
        assert.ok(leader && serverRpcAddrs.includes(leader), `leader ${leader}`);
        assert.deepEqual((await a.client.peers()).sort(), serverRpcAddrs);
      }
    });

    await t.step("raftConfiguration(): 3 voters, one leader", async () => {
      const raft = await s1.client.raftConfiguration();
      assert.equal(raft.servers.length, 3);
      assert.ok(raft.servers.every((s) => s.voter));
      assert.deepEqual(raft.servers.map((s) => s.address).sort(), serverRpcAddrs);
      assert.deepEqual(
        raft.servers.map((s) => s.node).sort(),
        cluster.servers.map((s) => s.node).sort(),
      );
      const leaders = raft.servers.filter((s) => s.leader);
      assert.equal(leaders.length, 1);
      assert.equal(leaders[0].address, await s1.client.leader());
      assert.equal((await cluster.leader()).rpcAddr, leaders[0].address);
    });

    await t.step("join() through the HTTP API, leave(), forceLeave()", async () => {
      const extra = await startAgent({ server: false });
      try {
        await extra.client.join(s0.serfLanAddr);
        await waitFor(async () => {
          const m = (await s1.client.members()).find((m) => m.name === extra.node);
          return m?.status === "alive";
        }, { what: `${extra.node} alive in the cluster`, timeoutMs: 60_000 });
        assert.ok(await extra.client.leader(), "the joined client knows the leader");

        await extra.client.leave();
        const status = await waitFor(() => extra.running ? undefined : extra.exited, {
          what: `${extra.node} to exit after leave`,
        });
        assert.equal(status?.code, 0, "the agent exits after a graceful leave");
        const left = (await s0.client.members()).find((m) => m.name === extra.node);
        assert.equal(left?.status, "left");
        await s0.client.forceLeave(extra.node);
      } finally {
        await extra.dispose();
      }

      await assert.rejects(s0.client.join(`${randomLoopbackIp()}:8301`), (err: unknown) => {
        assert.ok(err instanceof ConsulError && !(err instanceof ConsulUnreachableError));
        assert.equal(err.status, 500);
        assert.match(err.message, /^consul PUT \/v1\/agent\/join\/127\.[\d.]+%3A8301 failed: 500 /);
        return true;
      });
    });

    await t.step("KV put, get, list, cas, delete", async () => {
      const c = agent.client;
      const missing = await c.kvGet("auto-consul-test/none");
      assert.equal(missing.value, undefined);
      assert.equal(missing.entry, undefined);
      assert.ok(missing.index > 0);

      assert.equal(await c.kvPut("auto-consul-test/a", "héllo wörld"), true);
      assert.equal(await c.kvPut("auto-consul-test/b/c d", new Uint8Array([104, 105])), true);
      const a = await s0.client.kvGet("auto-consul-test/a");
      assert.equal(a.value, "héllo wörld");
      assert.equal(a.session, undefined);
      assert.ok(a.entry && a.entry.modifyIndex > 0);

      assert.deepEqual(
        (await c.kvList("auto-consul-test/")).map((e) => [e.key, e.value]),
        [["auto-consul-test/a", "héllo wörld"], ["auto-consul-test/b/c d", "hi"]],
      );
      assert.deepEqual(await c.kvList("auto-consul-test-none/"), []);

      assert.equal(
        await c.kvPut("auto-consul-test/a", "x", { cas: 0 }),
        false,
        "cas 0: absent only",
      );
      assert.equal(
        await c.kvPut("auto-consul-test/a", "x", { cas: a.entry.modifyIndex - 1 }),
        false,
      );
      assert.equal(await c.kvPut("auto-consul-test/a", "x", { cas: a.entry.modifyIndex }), true);
      assert.equal((await c.kvGet("auto-consul-test/a")).value, "x");

      await c.kvDelete("auto-consul-test/a");
      assert.equal((await c.kvGet("auto-consul-test/a")).value, undefined);
      await c.kvDelete("auto-consul-test/", { recurse: true });
      assert.deepEqual(await c.kvList("auto-consul-test/"), []);
    });

    await t.step("KV blocking query returns when the key changes, or after the wait", async () => {
      const key = "auto-consul-test/blocking";
      await s0.client.kvPut(key, "one");
      const first = await agent.client.kvGet(key);

      // Lower bounds only (a loaded machine makes calls slower, never faster): consul held the
      // query for its wait and answered with the unchanged index.
      const started = Date.now();
      const quiet = await agent.client.kvGet(key, { index: first.index, waitMs: 500 });
      const quietMs = Date.now() - started;
      assert.equal(quiet.value, "one");
      assert.equal(quiet.index, first.index);
      assert.ok(quietMs >= 400, `an unchanged key waits ~500 ms, took ${quietMs}`);

      // Woken by the change, not by the end of its wait: the wait (120 s) is far longer than
      // any write takes, so an answer before it ends can only come from the change.
      const t0 = Date.now();
      const blocked = agent.client.kvGet(key, { index: first.index, waitMs: 120_000 });
      setTimeout(() => s1.client.kvPut(key, "two"), 300);
      const changed = await blocked;
      const tookMs = Date.now() - t0;
      assert.equal(changed.value, "two");
      assert.ok(changed.index > first.index);
      assert.ok(tookMs >= 250 && tookMs < 120_000, `returned on change after ${tookMs} ms`);
      assert.equal(nextBlockingIndex(first.index, changed.index), changed.index);
      await s0.client.kvDelete(key);
    });

    await t.step("sessions: bound to serfHealth, lock, contention, destroy releases", async () => {
      const key = "auto-consul-test/lock";
      const a = await agent.client.sessionCreate({ name: "test-a", lockDelayMs: 0 });
      const infoA = await s0.client.sessionInfo(a);
      assert.ok(infoA);
      assert.equal(infoA.node, agent.node);
      assert.equal(infoA.name, "test-a");
      assert.deepEqual([...infoA.checks, ...infoA.nodeChecks], ["serfHealth"]);
      assert.equal(infoA.lockDelayNs, 0);
      assert.equal(infoA.behavior, "release");

      const b = await s1.client.sessionCreate({
        name: "test-b",
        checks: ["serfHealth"],
        ttlMs: 10_000,
      });
      assert.equal((await s1.client.sessionInfo(b))?.node, s1.node);

      assert.equal(await agent.client.kvPut(key, agent.node, { acquire: a }), true);
      assert.equal((await s1.client.kvGet(key)).session, a);
      assert.equal(await s1.client.kvPut(key, s1.node, { acquire: b }), false, "held by a");
      assert.equal((await s1.client.kvGet(key)).value, agent.node);

      await agent.client.sessionDestroy(a);
      const released = await s1.client.kvGet(key);
      assert.equal(released.session, undefined, "destroy releases the lock");
      assert.equal(released.value, agent.node, "behavior release keeps the value");
      assert.equal(await agent.client.sessionRenew(a), undefined, "a destroyed session is gone");
      assert.equal(await agent.client.sessionInfo(a), undefined);

      assert.equal(await s1.client.kvPut(key, s1.node, { acquire: b }), true);
      const renewed = await s1.client.sessionRenew(b);
      assert.equal(renewed?.id, b);
      assert.ok(renewed.ttl !== "");
      assert.equal(await s1.client.kvPut(key, "", { release: b }), true);
      assert.equal((await s1.client.kvGet(key)).session, undefined);
      await s1.client.sessionDestroy(b);
      await s1.client.kvDelete(key);
    });

    await t.step(
      "sessions bound to a service check: refused while critical, dropped on critical",
      async () => {
        const c = agent.client;
        await c.serviceRegister({
          Name: "guard",
          ID: "guard-1",
          Check: { CheckID: "guard-1-ttl", TTL: "30s" },
        });
        const create = () =>
          c.sessionCreate({
            name: "guarded",
            serviceChecks: [{ id: "guard-1-ttl" }],
            lockDelayMs: 0,
          });
        await assert.rejects(create(), (err: unknown) => {
          assert.ok(err instanceof ConsulError);
          assert.equal(err.status, 500);
          assert.match(err.body, /critical/);
          return true;
        });
        await c.checkUpdate("guard-1-ttl", "passing");
        const id = await create();
        const info = await c.sessionInfo(id);
        assert.deepEqual(info?.serviceChecks.map((s) => s.id), ["guard-1-ttl"]);
        assert.deepEqual(info?.nodeChecks, ["serfHealth"], "consul adds serfHealth by itself");
        assert.equal(await c.kvPut("auto-consul-test/guarded", "x", { acquire: id }), true);

        await c.checkUpdate("guard-1-ttl", "critical", "down");
        await waitFor(async () => (await c.sessionInfo(id)) === undefined, {
          what: "the session to be invalidated by its critical check",
          timeoutMs: 60_000,
        });
        assert.equal((await c.kvGet("auto-consul-test/guarded")).session, undefined);
        await c.kvDelete("auto-consul-test/guarded");
        await c.serviceDeregister("guard-1");
      },
    );

    const web: ServiceRegistration = {
      Name: "web",
      ID: "web-1",
      Tags: ["a", "b"],
      Meta: { version: "1.2.3", owner: "tests" },
      Port: 8080,
      Address: agent.ip,
      Weights: { Passing: 7, Warning: 3 },
      EnableTagOverride: true,
      TaggedAddresses: { lan: { Address: agent.ip, Port: 8080 } },
      Check: { CheckID: "web-1-ttl", TTL: "30s" },
    };

    await t.step("service register, read, re-register round-trips every field", async () => {
      const c = agent.client;
      await c.serviceRegister(web);
      const read = await c.agentService("web-1");
      assert.ok(read);
      assert.equal(read.Service, "web");
      assert.deepEqual(read.Tags, ["a", "b"]);
      assert.deepEqual(read.Meta, web.Meta);
      assert.deepEqual(read.Weights, web.Weights);
      assert.equal(read.Port, 8080);
      assert.equal(read.Address, agent.ip);
      assert.equal(read.EnableTagOverride, true);
      // consul adds lan_ipv4 and wan_ipv4 beside the given lan address
      assert.deepEqual((read.TaggedAddresses as Record<string, unknown>).lan, {
        Address: agent.ip,
        Port: 8080,
      });
      assert.equal(typeof read.ContentHash, "string");

      // rewrite the tags only, the way election does: read, change, register again
      await c.serviceRegister({ ...registrationOf(read), Tags: ["a", "b", "master"] });
      const again = await c.agentService("web-1");
      assert.ok(again);
      const { Tags, ContentHash, ...rest } = again;
      const { Tags: _t, ContentHash: _h, ...restBefore } = read;
      assert.deepEqual(Tags, ["a", "b", "master"]);
      assert.deepEqual(rest, restBefore, "every other field survives");
      assert.notEqual(ContentHash, read.ContentHash);
      assert.ok((await c.agentChecks())["web-1-ttl"], "checks survive a re-registration");
      assert.equal((await c.agentChecks())["web-1-ttl"].serviceId, "web-1");

      assert.ok((await c.agentServices())["web-1"]);
      assert.equal(await c.agentService("no-such-service"), undefined);
    });

    await t.step("healthService() with passing and tag filters", async () => {
      const c = s0.client;
      await waitFor(async () => (await c.healthService("web")).entries.length === 1, {
        what: "web in the catalog",
      });
      const { entries, index } = await c.healthService("web", { tag: "master" });
      assert.ok(index > 0);
      assert.equal(entries.length, 1);
      assert.equal(entries[0].node, agent.node);
      assert.equal(entries[0].nodeAddress, agent.ip);
      assert.equal(entries[0].service.id, "web-1");
      assert.equal(entries[0].service.port, 8080);
      assert.deepEqual(entries[0].service.meta, web.Meta);
      assert.ok(entries[0].checks.some((ch) => ch.checkId === "serfHealth"));
      assert.equal((await c.healthService("web", { tag: "nope" })).entries.length, 0);
      assert.equal(
        (await c.healthService("web", { passing: true })).entries.length,
        0,
        "ttl critical",
      );

      await agent.client.checkUpdate("web-1-ttl", "passing", "ok");
      const passing = await waitFor(async () => {
        const r = await c.healthService("web", { passing: true, index, waitMs: 2_000 });
        return r.entries.length === 1 ? r : undefined;
      }, { what: "web passing" });
      assert.ok(passing.index > index);
    });

    await t.step("prepared query: create, update in place, execute, delete", async () => {
      const c = agent.client;
      const name = `web-master-${crypto.randomUUID().slice(0, 8)}`;
      const id = await c.queryCreate({
        Name: name,
        Service: { Service: "web", Tags: ["primary"], OnlyPassing: true },
      });
      assert.match(id, /^[0-9a-f-]{36}$/);
      assert.equal((await c.queryExecute(name)).nodes.length, 0, "no instance tagged primary");

      await c.queryUpdate(id, {
        Name: name,
        Service: { Service: "web", Tags: ["master"], OnlyPassing: true },
        DNS: { TTL: "5s" },
      });
      const listed = (await s1.client.queryList()).filter((q) => q.Name === name);
      assert.equal(listed.length, 1);
      assert.equal(listed[0].ID, id, "update keeps the ID");
      assert.deepEqual(listed[0].Service.Tags, ["master"]);
      assert.equal((await c.queryGet(id))?.DNS?.TTL, "5s");

      for (const idOrName of [name, id]) {
        const result = await s0.client.queryExecute(idOrName);
        assert.equal(result.service, "web");
        assert.equal(result.datacenter, "dc1");
        assert.deepEqual(
          result.nodes.map((n) => [n.node, n.service.id, n.service.port]),
          [[agent.node, "web-1", 8080]],
        );
      }

      await c.queryDelete(id);
      assert.equal(await c.queryGet(id), undefined);
      await assert.rejects(c.queryExecute(id), (err: unknown) => {
        assert.ok(err instanceof ConsulError);
        assert.equal(err.status, 404);
        assert.match(err.message, /^consul GET \/v1\/query\/[0-9a-f-]+\/execute failed: 404 /);
        return true;
      });
      await c.serviceDeregister("web-1");
      assert.equal(await c.agentService("web-1"), undefined);
    });

    await t.step("autopilot configuration read and check-and-set write", async () => {
      const c = s0.client;
      const before = await c.autopilotConfiguration();
      assert.equal(typeof before.CleanupDeadServers, "boolean");
      assert.ok(before.ModifyIndex !== undefined);
      const changed = { ...before, ServerStabilizationTime: "7s" };
      assert.equal(
        await c.setAutopilotConfiguration(changed, { cas: before.ModifyIndex - 1 }),
        false,
      );
      assert.equal(await c.setAutopilotConfiguration(changed, { cas: before.ModifyIndex }), true);
      assert.equal((await s1.client.autopilotConfiguration()).ServerStabilizationTime, "7s");
      assert.equal(await c.setAutopilotConfiguration(before), true);
    });
  } finally {
    await cluster.stopAll();
  }
});

// "Fast" is read from what ended the call, not from a clock: the connection was refused; a call
// that waited for its (long) timeout would say "did not answer ... within".
Deno.test("ConsulClient: an address nobody listens on fails fast with ConsulUnreachableError", async () => {
  const ip = randomLoopbackIp();
  const client = new ConsulClient({ baseUrl: `${ip}:8500`, timeoutMs: 120_000 });
  await assert.rejects(client.self(), (err: unknown) => {
    assert.ok(err instanceof ConsulUnreachableError);
    assert.equal(err.status, 0);
    assert.match(
      err.message,
      new RegExp(`^consul at ${ip.replaceAll(".", "\\.")}:8500 is unreachable`),
    );
    assert.doesNotMatch(err.message, /did not answer/, "refused, not timed out");
    return true;
  });
});

/** A loopback HTTP server answering every request with `respond`, recording request headers. */
async function withServer(
  respond: (req: Request) => Response | Promise<Response>,
  fn: (baseUrl: string, seen: Headers[]) => Promise<void>,
): Promise<void> {
  const seen: Headers[] = [];
  const server = Deno.serve(
    { hostname: randomLoopbackIp(), port: 0, onListen: () => {} },
    (req) => {
      seen.push(req.headers);
      return respond(req);
    },
  );
  try {
    await fn(`http://${server.addr.hostname}:${server.addr.port}`, seen);
  } finally {
    await server.shutdown();
  }
}

Deno.test("ConsulClient: the token is a header, never in an error message", async () => {
  const token = "b1gs3cr3t-0000-4000-8000-token0000001";
  await withServer((req) => {
    const url = new URL(req.url);
    if (url.pathname === "/v1/status/leader") return Response.json("127.1.2.3:8300");
    if (url.pathname === "/v1/kv/echo") return new Response(`bad token ${token}`, { status: 500 });
    return new Response("ACL not found", { status: 403 });
  }, async (baseUrl, seen) => {
    const client = new ConsulClient({ baseUrl, token });
    assert.equal(await client.leader(), "127.1.2.3:8300");
    assert.equal(seen[0].get("x-consul-token"), token);
    assert.ok(!seen.some((h) => h.has("authorization")));

    await assert.rejects(client.kvPut("secret/path", "v"), (err: unknown) => {
      assert.ok(err instanceof ConsulError);
      assert.equal(err.status, 403);
      assert.match(
        err.message,
        /^consul PUT \/v1\/kv\/secret\/path was refused by ACLs: 403 ACL not found/,
      );
      assert.match(err.message, /token is unknown or lacks the permission/);
      assert.ok(!err.message.includes(token) && !err.body.includes(token));
      return true;
    });
    await assert.rejects(client.kvGet("echo"), (err: unknown) => {
      assert.ok(err instanceof ConsulError);
      assert.equal(err.message, "consul GET /v1/kv/echo failed: 500 bad token [redacted]");
      assert.ok(!err.body.includes(token));
      return true;
    });
    assert.ok(seen.every((h) => h.get("x-consul-token") === token));

    const anonymous = new ConsulClient({ baseUrl });
    await assert.rejects(anonymous.self(), /refused by ACLs.*no ACL token was given/);
    assert.equal(seen.at(-1)?.has("x-consul-token"), false);
  });
});

Deno.test("ConsulClient: timeouts and caller aborts", async () => {
  let release!: () => void;
  const hang = new Promise<void>((r) => release = r);
  await withServer(async () => {
    await hang;
    return new Response("late");
  }, async (baseUrl) => {
    try {
      // The server never answers (until `release`): only the 300 ms timeout can end the call,
      // and the message says it did.
      const client = new ConsulClient({ baseUrl, timeoutMs: 300 });
      await assert.rejects(client.self(), (err: unknown) => {
        assert.ok(err instanceof ConsulUnreachableError);
        assert.match(err.message, /did not answer GET \/v1\/agent\/self within 300 ms$/);
        return true;
      });

      const ac = new AbortController();
      const call = client.leader({ signal: ac.signal, timeoutMs: 5_000 });
      setTimeout(() => ac.abort(new Error("caller gave up")), 50);
      await assert.rejects(call, /^Error: caller gave up$/);
    } finally {
      release();
    }
  });
});

Deno.test("nextBlockingIndex resets when the index goes backwards", () => {
  assert.equal(nextBlockingIndex(0, 0), 1);
  assert.equal(nextBlockingIndex(5, 9), 9);
  assert.equal(nextBlockingIndex(9, 9), 9);
  assert.equal(nextBlockingIndex(9, 4), 0);
});

Deno.test("ConsulClient rejects a bad base URL and timeout at construction", () => {
  assert.throws(() => new ConsulClient({ baseUrl: "unix:///tmp/consul.sock" }), TypeError);
  assert.throws(() => new ConsulClient({ baseUrl: "127.0.0.1:8500", timeoutMs: 0 }), RangeError);
});
