/**
 * Mixed fleets with the gem (issue 11, acceptance 1): one bucket, one cluster. Real
 * `auto-consul run` processes beside "gem nodes" (tests/harness/gem.ts: consul started as the
 * gem starts it, the gem's join, heartbeats in the gem's exact bytes, no `slots/`), on the
 * folder registry and on the S3 server:
 * (a) a live gem server, `-s 1`: new nodes become clients of its cluster, one leader, one
 *     raft peer;
 * (b) one gem server, `-s 3`, four new nodes started at once: exactly 3 servers in total, one
 *     leader, 3 voters;
 * (c) the gem server stops (no more heartbeats): a new node takes the freed place after the
 *     expiry;
 * (d) an auto-consul server and a gem-style agent joining it;
 * (e) a mode recorded by the gem (`set_server`) is kept by `run`, and that server joins the
 *     live gem server instead of bootstrapping a second cluster (acceptance 4).
 *
 * Repetitions of (a) and (b): AUTO_CONSUL_MIXED_REPS (default 1; the issue's count is 10).
 */
import assert from "node:assert/strict";
import type { TestConsulClient } from "../harness/test_consul_client.ts";
import { readHeartbeats } from "../../src/registry/heartbeats.ts";
import type { Registry } from "../../src/registry/registry.ts";
import { captureLog } from "../registry/fixtures.ts";
import { type GemNode, gemPickJoin, startGemNode } from "../harness/gem.ts";
import { inspectRegistry, readSlots } from "../harness/registry_view.ts";
import { type Node, type Nodes, withNodes } from "../harness/nodes.ts";
import { type S3Server, withS3Server } from "../harness/s3.ts";
import { waitFor } from "../harness/wait.ts";

const REPS = (() => {
  const raw = Deno.env.get("AUTO_CONSUL_MIXED_REPS") ?? "1";
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > 100) {
    throw new RangeError(`invalid AUTO_CONSUL_MIXED_REPS "${raw}": expected a whole number 1..100`);
  }
  return n;
})();

/** Short ticks and expiry for the new nodes and the gem nodes alike. */
const TICKS_S = 1;
const EXPIRY_S = 5;

interface Fresh {
  url: string;
  env: Record<string, string>;
}

type FreshFn = (label: string) => Promise<Fresh>;

const folder = (nodes: Nodes): FreshFn => async (label) => ({
  url: `file://${await nodes.dir(`registry-${label}`)}`,
  env: {},
});

const s3Prefix = (s3: S3Server): FreshFn => (label) =>
  Promise.resolve({
    url: `s3://${s3.bucket}/mixed/${label}-${crypto.randomUUID().slice(0, 6)}`,
    env: { ...s3.env, AWS_ENDPOINT_URL_S3: s3.endpoint },
  });

/** Anything with a consul HTTP API and a name: an auto-consul node or a gem node. */
interface Member {
  name: string;
  client: TestConsulClient;
  rpcAddr: string;
}

const fromNode = (n: Node): Member => ({ name: n.name, client: n.client, rpcAddr: n.rpcAddr });
const fromGem = (g: GemNode): Member => ({
  name: g.name,
  client: g.agent.client,
  rpcAddr: g.agent.rpcAddr,
});

/**
 * One look at a mixed cluster: every member answers; the servers are exactly `servers`; all
 * name the same leader (one of them); all see every member alive; raft voters (and peers) are
 * exactly the servers. Throws saying what is not so yet.
 */
async function mixedView(members: Member[], servers: Member[]): Promise<string> {
  const names = members.map((m) => m.name).sort();
  const want = servers.map((s) => s.rpcAddr).sort();
  const leaders = new Set<string>();
  for (const m of members) {
    const [self, alive, leader, peers, raft] = await Promise.all([
      m.client.self(),
      m.client.members(),
      m.client.leader(),
      m.client.peers(),
      m.client.raftConfiguration(),
    ]);
    const isServer = servers.some((s) => s.name === m.name);
    if (self.isServer !== isServer) throw new Error(`${m.name}: server ${self.isServer}`);
    const seen = alive.filter((a) => a.status === "alive").map((a) => a.name).sort();
    if (seen.join(",") !== names.join(",")) throw new Error(`${m.name} sees ${seen}`);
    leaders.add(leader ?? "(none)");
    if ([...peers].sort().join(",") !== want.join(",")) {
      throw new Error(`${m.name}: raft peers ${peers}, expected ${want}`);
    }
    const voters = raft.servers.filter((s) => s.voter).map((s) => s.address).sort();
    if (voters.join(",") !== want.join(",") || raft.servers.length !== voters.length) {
      throw new Error(`${m.name}: raft servers ${raft.servers.map((s) => s.address)}`);
    }
  }
  if (leaders.size !== 1) throw new Error(`members name different leaders: ${[...leaders]}`);
  const [leader] = leaders;
  if (!want.includes(leader)) throw new Error(`leader ${leader} is not one of ${want}`);
  return leader;
}

async function waitMixed(members: Member[], servers: Member[], what: string): Promise<string> {
  return await waitFor(() => mixedView(members, servers), {
    what,
    timeoutMs: 60_000,
    intervalMs: 250,
  });
}

/** A gem server that bootstrapped its cluster, heartbeating into `registry`. */
async function gemServer(registry: Registry, tag: string): Promise<GemNode> {
  const gem = await startGemNode({
    registry,
    node: `gem-server-${tag}`,
    server: true,
    bootstrap: true,
    ticksMs: TICKS_S * 1000,
    expirySeconds: EXPIRY_S,
  });
  await waitFor(() => gem.agent.client.leader(), {
    what: "the gem server leads",
    timeoutMs: 20_000,
  });
  await waitFor(() => gem.lastBeatAt > 0, { what: "the gem server's first heartbeat" });
  return gem;
}

function spec(fresh: Fresh, servers: number) {
  return {
    registry: fresh.url,
    servers,
    env: fresh.env,
    ticks: TICKS_S,
    expiry: EXPIRY_S,
    prefix: "new",
  };
}

async function withFresh<T>(
  fresh: Fresh,
  fn: (registry: Registry) => Promise<T>,
): Promise<T> {
  const registry = await inspectRegistry(fresh.url, fresh.env);
  try {
    return await fn(registry);
  } finally {
    registry.close();
  }
}

/** (a): a live gem server, -s 1, two new nodes at once → two clients of its cluster. */
async function caseA(nodes: Nodes, fresh: Fresh, rep: number): Promise<void> {
  await withFresh(fresh, async (registry) => {
    const gem = await gemServer(registry, `a${rep}`);
    const group: Node[] = [];
    try {
      group.push(...nodes.start(2, spec(fresh, 1)));
      const leader = await waitMixed(
        [fromGem(gem), ...group.map(fromNode)],
        [fromGem(gem)],
        "(a) the new nodes as clients of the gem server's cluster",
      );
      assert.equal(leader, gem.agent.rpcAddr, "one leader: the gem server");
      for (const n of group) {
        assert.equal(await n.mode(), "agent", `${n.name} mode`);
        const why = n.logs().find((l) => l.component === "run" && typeof l.mode === "string");
        assert.match(String(why?.msg), /live servers without a place: gem-server/, n.tail());
        assert.equal(n.logged("restarting consul").length, 0, n.tail());
      }
      assert.equal((await readSlots(registry)).size, 0, "no place claimed");
      // still one cluster a moment later (a second leader would show here)
      await mixedView([fromGem(gem), ...group.map(fromNode)], [fromGem(gem)]);
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${nodes.tails(group)}`, { cause: err });
    } finally {
      await Promise.allSettled(group.map((n) => n.dispose(1_000)));
      await gem.dispose();
    }
  });
}

/** (b): one gem server, -s 3, four new nodes at once → exactly 3 servers, 3 voters. */
async function caseB(nodes: Nodes, fresh: Fresh, rep: number): Promise<void> {
  await withFresh(fresh, async (registry) => {
    const gem = await gemServer(registry, `b${rep}`);
    const group: Node[] = [];
    try {
      group.push(...nodes.start(4, spec(fresh, 3)));
      // Who became a server: decided before consul starts, recorded in the mode file.
      const modes = await waitFor(async () => {
        const m = await Promise.all(group.map((n) => n.mode()));
        return m.every((x) => x !== undefined) ? m : undefined;
      }, { what: "every new node's mode", timeoutMs: 30_000 });
      const ours = group.filter((_, i) => modes[i] === "server");
      assert.equal(ours.length, 2, `two new servers beside the gem's: ${modes}`);
      const servers = [fromGem(gem), ...ours.map(fromNode)];
      const all = [fromGem(gem), ...group.map(fromNode)];
      await waitMixed(all, servers, "(b) 3 servers (the gem's and 2 new), 2 clients");
      const slots = await readSlots(registry);
      assert.deepEqual([...slots.keys()].sort(), [0, 1], "places 0 and 1 only");
      for (const [place, claims] of slots) {
        assert.equal(claims.length, 1, `place ${place} claimed once`);
      }
      assert.deepEqual(
        [...slots.values()].map((c) => c[0].node).sort(),
        ours.map((n) => n.name).sort(),
      );
      for (const n of group) assert.equal(n.logged("restarting consul").length, 0, n.tail());
      await mixedView(all, servers);
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${nodes.tails(group)}`, { cause: err });
    } finally {
      await Promise.allSettled(group.map((n) => n.dispose(1_000)));
      await gem.dispose();
    }
  });
}

/** (c): the gem server stops; a new node (a client of it until then) takes the freed place. */
async function caseC(nodes: Nodes, fresh: Fresh): Promise<void> {
  await withFresh(fresh, async (registry) => {
    const gem = await gemServer(registry, "c");
    const [node] = nodes.start(1, spec(fresh, 1));
    try {
      await waitMixed([fromGem(gem), fromNode(node)], [fromGem(gem)], "(c) a client of the gem's");
      // The gem machine dies: no more heartbeats, consul gone.
      await gem.dispose();
      const lastBeat = gem.lastBeatAt;
      const view = await waitFor(async () => {
        const self = await node.client.self();
        const leader = await node.client.leader();
        return self.isServer && leader === node.rpcAddr ? leader : undefined;
      }, { what: "(c) the new node a server and leader", timeoutMs: 90_000, intervalMs: 250 });
      assert.equal(view, node.rpcAddr);
      const slots = await readSlots(registry);
      assert.deepEqual([...slots.entries()].map(([k, c]) => [k, c.map((x) => x.node)]), [
        [0, [node.name]],
      ]);
      // ... and only after the gem server's heartbeat expired
      const listing = await registry.list("slots/");
      const claimedAt = listing.objects[0].lastModified.getTime();
      assert.ok(
        claimedAt - lastBeat >= EXPIRY_S * 1000 - 1000,
        `claimed ${claimedAt - lastBeat} ms after the gem's last heartbeat (expiry ${EXPIRY_S} s)`,
      );
      assert.equal(await node.mode(), "server");
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${node.tail()}`, { cause: err });
    } finally {
      await node.dispose(1_000);
      await gem.dispose();
    }
  });
}

/** (d): an auto-consul server, then a gem-style agent joining it as the gem does. */
async function caseD(nodes: Nodes, fresh: Fresh): Promise<void> {
  await withFresh(fresh, async (registry) => {
    const [server] = nodes.start(1, spec(fresh, 1));
    let gem: GemNode | undefined;
    try {
      await waitFor(async () => (await server.client.leader()) === server.rpcAddr, {
        what: "the auto-consul server leads",
        timeoutMs: 30_000,
      });
      // The gem's agent_runner: join the first live member of agents/ (the server's own key).
      const join = await waitFor(() => gemPickJoin(registry, "agents", EXPIRY_S), {
        what: "a live heartbeat in agents/",
        timeoutMs: 20_000,
      });
      assert.equal(join, server.ip);
      gem = await startGemNode({
        registry,
        node: "gem-agent-d",
        server: false,
        join,
        ticksMs: TICKS_S * 1000,
        expirySeconds: EXPIRY_S,
      });
      const all = [fromNode(server), fromGem(gem)];
      await waitMixed(all, [fromNode(server)], "(d) the gem agent in the auto-consul cluster");
      // Both read each other's heartbeats: the gem agent's is live for auto-consul, ...
      const { log } = captureLog();
      await waitFor(async () => {
        const agents = await readHeartbeats(registry, "agents", log);
        return agents.some((h) => h.node === "gem-agent-d" && h.ageSeconds <= EXPIRY_S);
      }, { what: "the gem agent's heartbeat live in agents/" });
      // ... and the server's keys are in the gem's format (it just joined through one).
      const servers = await registry.list("servers/");
      assert.ok(
        servers.objects.some((o) => new RegExp(`^servers/\\d{14}-${server.name}$`).test(o.key)),
      );
      assert.equal(await gem.agent.client.leader(), server.rpcAddr);
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${server.tail()}`, { cause: err });
    } finally {
      await server.dispose(1_000);
      await gem?.dispose();
    }
  });
}

/**
 * (e): a node whose mode the gem recorded (`set_server`: "server", no newline), -s 1, while
 * the gem server is live: run keeps the mode, and the server joins (no second bootstrap).
 */
async function caseE(nodes: Nodes, fresh: Fresh): Promise<void> {
  await withFresh(fresh, async (registry) => {
    const gem = await gemServer(registry, "e");
    const node = nodes.create(spec(fresh, 1));
    try {
      await Deno.mkdir(node.dataDir, { recursive: true });
      await Deno.writeTextFile(`${node.dataDir}/mode`, "server"); // the gem's set_server
      node.start();
      const servers = [fromGem(gem), fromNode(node)];
      const leader = await waitMixed(
        servers,
        servers,
        "(e) the pinned server in the gem's cluster",
      );
      assert.equal(leader, gem.agent.rpcAddr, "the gem server still leads: no second cluster");
      assert.equal(node.logged(/^keeping the recorded mode server/).length, 1, node.tail());
      assert.equal(await Deno.readTextFile(`${node.dataDir}/mode`), "server", "mode kept");
      const pid = await node.consulPid();
      const argv = (await Deno.readTextFile(`/proc/${pid}/cmdline`)).split("\0");
      assert.ok(argv.includes("-server"), argv.join(" "));
      assert.ok(!argv.some((a) => a.startsWith("-bootstrap")), argv.join(" "));
      assert.equal((await readSlots(registry)).size, 0, "a pinned server claims no place");
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${node.tail()}`, { cause: err });
    } finally {
      await node.dispose(1_000);
      await gem.dispose();
    }
  });
}

async function allCases(t: Deno.TestContext, nodes: Nodes, fresh: FreshFn, label: string) {
  await t.step(
    `(a) live gem server, -s 1: new nodes are its clients (${REPS}×, ${label})`,
    async () => {
      for (let rep = 1; rep <= REPS; rep++) {
        await caseA(nodes, await fresh(`a${rep}`), rep).catch((err) => {
          throw new Error(`(a) ${label} repetition ${rep}/${REPS}: ${(err as Error).message}`);
        });
      }
      console.log(`(a) ${label}: ${REPS}/${REPS} passed`);
    },
  );
  await t.step(
    `(b) gem server, -s 3, 4 new nodes at once: 3 servers (${REPS}×, ${label})`,
    async () => {
      for (let rep = 1; rep <= REPS; rep++) {
        await caseB(nodes, await fresh(`b${rep}`), rep).catch((err) => {
          throw new Error(`(b) ${label} repetition ${rep}/${REPS}: ${(err as Error).message}`);
        });
      }
      console.log(`(b) ${label}: ${REPS}/${REPS} passed`);
    },
  );
  await t.step(
    `(c) the gem server stops: a new node takes the freed place (${label})`,
    async () => {
      await caseC(nodes, await fresh("c"));
    },
  );
  await t.step(`(d) an auto-consul server and a gem agent joining it (${label})`, async () => {
    await caseD(nodes, await fresh("d"));
  });
  await t.step(`(e) a mode the gem recorded is kept; the server joins (${label})`, async () => {
    await caseE(nodes, await fresh("e"));
  });
}

Deno.test("mixed fleet with gem nodes, folder registry", async (t) => {
  await withNodes((nodes) => allCases(t, nodes, folder(nodes), "folder"));
});

Deno.test("mixed fleet with gem nodes, S3 registry", async (t) => {
  await withNodes((nodes) => withS3Server((s3) => allCases(t, nodes, s3Prefix(s3), "S3")));
});
