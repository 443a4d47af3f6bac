/**
 * I1 under a server move (issue 15: the soak's "server moved → client promoted → 4 voters").
 * Real `auto-consul run` processes and consul 1.8.7 agents, folder registry, `-s 3 -t 1 -e 3`.
 *
 * A server is stopped (SIGTERM: a server keeps its raft entry) and stays away longer than the
 * patience, so a running client takes its place (docs/recovery.md, I3); then the server comes
 * back on a NEW address with its name and data dir — it finds its place taken and runs as a
 * client. Consul's autopilot never prunes one dead voter out of three (it removes dead servers
 * only while they are fewer than half of the voters: 1 < 3/2 is false in its integer
 * arithmetic) and promotes a healthy new server before it prunes: left alone, the replacement
 * becomes a 4th voter. So the new holder removes the old holder's voter (by the node-id of its
 * holder record) before its consul runs as a server.
 *
 * Evidence, both counted, not timed: every raft configuration the leader logged ("updating
 * configuration ... servers=[...]") has at most 3 voters — deterministic, it is the leader's own
 * record of every change — and the invariant monitor's samples (voters ≤ 3 everywhere, no place
 * taken from anyone but the stopped server). Then one healthy cluster: the two old servers and
 * the promoted client as servers, the moved node and the other client as clients.
 */
import assert from "node:assert/strict";
import { randomLoopbackIp } from "../harness/consul.ts";
import { InvariantMonitor, loggedVoterCounts } from "../harness/invariants.ts";
import { Node, type NodeSpec, withNodes } from "../harness/nodes.ts";
import { inspectRegistry, readSlots } from "../harness/registry_view.ts";
import { waitForCluster } from "../harness/cluster_view.ts";
import { waitFor } from "../harness/wait.ts";

const SERVERS = 3;

Deno.test("a server moved to a new address after its place was taken: never 4 voters, it returns as a client", async () => {
  await withNodes(async (nodes) => {
    const spec: NodeSpec = {
      registry: `file://${await nodes.dir("registry")}`,
      servers: SERVERS,
      ticks: 1,
      expiry: 3,
      logLevel: "info",
    };
    const group = nodes.start(5, { ...spec, prefix: "move" });
    const registry = await inspectRegistry(spec.registry);
    let monitor: InvariantMonitor | undefined;
    try {
      const view = await waitForCluster(group, { servers: 3, clients: 2, timeoutMs: 120_000 });
      const leader = view.servers.find((s) => s.rpcAddr === view.leader)!;
      const old = view.servers.find((s) => s !== leader)!;
      const slots = await readSlots(registry);
      const place = [...slots].find(([, claims]) => claims.at(-1)?.node === old.name)?.[0];
      assert.ok(place !== undefined, `${old.name} holds a place: ${JSON.stringify([...slots])}`);

      monitor = new InvariantMonitor({
        servers: SERVERS,
        nodes: () => nodes.all.filter((n) => n.running),
        registry,
        allowedTakeover: (_p, from) => from === old.name,
        intervalMs: 250,
      });
      monitor.start();

      await old.stop("SIGTERM");
      // Away past the patience (2 expiry windows for a running client): a client takes it.
      const taker = await waitFor(async () => {
        const holder = (await readSlots(registry)).get(place)?.at(-1)?.node;
        return view.clients.find((c) => c.name === holder);
      }, { what: `a client claiming place ${place} of ${old.name}`, timeoutMs: 90_000 });

      const moved = new Node({
        name: old.name,
        ip: randomLoopbackIp(),
        dataDir: old.dataDir,
        spec: old.spec,
      });
      nodes.all.push(moved);
      moved.start();

      const other = view.clients.find((c) => c !== taker)!;
      const servers = [...view.servers.filter((s) => s !== old), taker];
      const whole = await waitForCluster([...servers, other, moved], {
        servers: 3,
        clients: 2,
        timeoutMs: 180_000,
      });
      const violations = await monitor.stop();
      const samples = monitor.samples;
      monitor = undefined;

      assert.deepEqual(
        whole.servers.map((s) => s.name).sort(),
        servers.map((s) => s.name).sort(),
        "the old servers and the promoted client are the servers",
      );
      assert.equal(await moved.mode(), "agent", "the moved node runs as a client");
      assert.ok(moved.logged(/was taken by/).length >= 1, moved.tail());
      const configs = nodes.all.flatMap(loggedVoterCounts);
      console.log(
        `raft configurations logged: ${configs.length}, most voters in one: ${
          Math.max(0, ...configs.map((c) => c.voters))
        }; monitor samples: ${samples}`,
      );
      assert.ok(configs.length >= 2, "the leader logged the raft configuration changes");
      const over = configs.filter((c) => c.voters > SERVERS);
      assert.deepEqual(
        over.map((c) => c.line),
        [],
        "no raft configuration with more than 3 voters",
      );
      assert.deepEqual(violations, [], "no invariant violated in any sample");
      const removed = taker.logged(/^removed the raft voter of /);
      assert.equal(removed.length, 1, `the new holder removed ${old.name}'s voter`);
      const claims = (await readSlots(registry)).get(place)!;
      assert.equal(claims.at(-1)?.node, taker.name, "the place stays with its new holder");
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${nodes.tails(nodes.all, 25)}`, { cause: err });
    } finally {
      await monitor?.stop();
      registry.close();
    }
  });
});
