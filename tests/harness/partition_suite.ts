/**
 * Network partitions (issue 15, build 3) with real `auto-consul run` processes and real consul
 * agents, 3 servers + 2 clients (`-s 3 -t 1 -e 4`), on the folder registry and on S3. The
 * network is cut with nftables rules on the loopback addresses the test owns
 * (tests/harness/partition.ts); every rule is removed at the end, even on failure.
 *
 * Used by tests/real/partition_folder_test.ts and tests/real/partition_s3_test.ts (two files, so the suite
 * runs them side by side). One cluster per registry goes through, in order:
 *   A. a follower server cut from the other servers (not from the clients or the registry);
 *   B. the leader cut from every other node;
 *   C. a client cut from every other node;
 *   D. (S3 only) the registry cut from one server: its path to the S3 server goes through a
 *      forwarder of its own, and every packet to that forwarder is dropped. (A folder registry
 *      cannot be cut by the network; its outages are the S3 outage test's business.)
 * Each cut holds for HOLD (2.5 expiry windows, so any heartbeat-based decision has had time to
 * go wrong), then heals. Checked throughout by a background monitor: never more raft voters
 * than 3, never two leaders in one term, no place claimed away from its holder (nobody here
 * dies, so no place may change hands at all). After each heal: one healthy cluster (3 servers,
 * 2 clients, one leader, all alive, voters = the servers) within HEAL_BOUND_MS, the same run
 * and consul processes, and 20 KV keys written before the cut all readable.
 */
import assert from "node:assert/strict";
import { inspectRegistry, readSlots } from "./registry_view.ts";
import { type Node, type NodeSpec, withNodes } from "./nodes.ts";
import { waitForCluster } from "./cluster_view.ts";
import { InvariantMonitor, raftSelf } from "./invariants.ts";
import { type Partitions, withPartitions } from "./partition.ts";
import { sleep, waitFor } from "./wait.ts";

const TICKS_S = 1;
const EXPIRY_S = 4;
const HOLD_MS = Number(Deno.env.get("AUTO_CONSUL_PARTITION_HOLD_MS") ?? 2.5 * EXPIRY_S * 1000);
/** The bound stated in README "Outages" for a healed partition to be one healthy cluster. */
const HEAL_BOUND_MS = 60_000;

async function writeKeys(node: Node, tag: string, n = 20): Promise<void> {
  for (let i = 0; i < n; i++) {
    assert.ok(
      await node.client.kvPut(`partition/${tag}/${i}`, `${tag}-${i}`),
      `kv put ${tag}/${i}`,
    );
  }
}

async function checkKeys(node: Node, tag: string, n = 20): Promise<void> {
  const entries = await node.client.kvList(`partition/${tag}/`);
  assert.equal(entries.length, n, `${tag}: ${entries.length}/${n} keys readable after the heal`);
}

async function leaderNode(group: Node[]): Promise<Node> {
  return await waitFor(async () => {
    for (const n of group) {
      if ((await raftSelf(n.ip))?.state === "Leader") return n;
    }
    return undefined;
  }, { what: "a server that says it is the leader", timeoutMs: 30_000 });
}

async function healed(group: Node[], what: string, timings: string[]): Promise<void> {
  const t0 = Date.now();
  await waitForCluster(group, { servers: 3, clients: 2, timeoutMs: HEAL_BOUND_MS });
  timings.push(`${what}: healthy ${Date.now() - t0} ms after the heal`);
}

export async function partitionSuite(
  kind: "folder" | "s3",
  registry: string,
  envFor: (i: number) => Record<string, string>,
  registryEnv: Record<string, string>,
  forwarders: { ip: string }[],
): Promise<void> {
  await withPartitions(async (net: Partitions) => {
    await withNodes(async (nodes) => {
      const group = Array.from({ length: 5 }, (_, i) => {
        const spec: NodeSpec & { prefix: string } = {
          registry,
          servers: 3,
          ticks: TICKS_S,
          expiry: EXPIRY_S,
          env: envFor(i),
          prefix: `p${kind}`,
        };
        return nodes.create(spec);
      });
      group.forEach((n) => n.start());
      const inspect = await inspectRegistry(registry, registryEnv);
      const monitor = new InvariantMonitor({ servers: 3, nodes: () => group, registry: inspect });
      const timings: string[] = [];
      try {
        const view = await waitForCluster(group, { servers: 3, clients: 2 });
        const holders = await waitFor(async () => {
          const slots = await readSlots(inspect);
          return slots.size === 3 ? slots : undefined;
        }, { what: "3 places claimed" });
        const runPids = group.map((n) => n.proc.pid);
        const consulPids = await Promise.all(group.map((n) => n.waitConsulPid()));
        monitor.start();
        const ips = group.map((n) => n.ip);
        const servers = view.servers;

        // A. a follower server cut from the other servers.
        const leader = await leaderNode(servers);
        const follower = servers.find((s) => s !== leader)!;
        await writeKeys(leader, "a");
        const termBefore = (await raftSelf(follower.ip, 5_000))?.term ?? 0;
        const cutA = await net.cut(
          [follower.ip],
          servers.filter((s) => s !== follower).map((s) => s.ip),
        );
        // Candidate now, or a term past the cut's (it campaigned): a candidate's agent can be
        // slow to answer on a loaded machine, and a 1 s read missed every Candidate state once.
        await waitFor(async () => {
          const r = await raftSelf(follower.ip, 5_000);
          return r !== undefined &&
            (r.state === "Candidate" || (termBefore > 0 && r.term > termBefore));
        }, {
          what: `${follower.name} cut off from the servers turns candidate`,
          timeoutMs: 60_000,
        });
        await sleep(HOLD_MS);
        await net.heal(cutA);
        await healed(group, "A follower cut from servers", timings);
        await checkKeys(follower, "a");

        // B. the leader cut from every other node.
        const oldLeader = await leaderNode(servers);
        const oldTerm = (await raftSelf(oldLeader.ip))!.term;
        await writeKeys(oldLeader, "b");
        const cutB = await net.isolate(oldLeader.ip, ips);
        const others = servers.filter((s) => s !== oldLeader);
        await waitFor(async () => {
          for (const s of others) {
            const r = await raftSelf(s.ip);
            if (r?.state === "Leader" && r.term > oldTerm) return true;
          }
          return false;
        }, { what: "a new leader among the servers left", timeoutMs: 30_000 });
        await sleep(HOLD_MS);
        await net.heal(cutB);
        await healed(group, "B leader cut from all", timings);
        await checkKeys(oldLeader, "b");

        // C. a client cut from every other node.
        const client = view.clients[0];
        const cutC = await net.isolate(client.ip, ips);
        await waitFor(async () => {
          const members = await servers[0].client.members();
          return members.some((m) => m.name === client.name && m.status === "failed");
        }, { what: `${client.name} seen failed by the servers`, timeoutMs: 30_000 });
        await sleep(HOLD_MS);
        await net.heal(cutC);
        await healed(group, "C client cut from all", timings);

        // D. the registry cut from one server (S3: its own forwarder blackholed).
        if (kind === "s3") {
          const target = (await leaderNode(servers)) === servers[0] ? servers[1] : servers[0];
          const fwd = forwarders[group.indexOf(target)];
          await writeKeys(target, "d");
          const cutD = await net.blackhole(fwd.ip);
          await waitFor(async () => {
            const listing = await inspect.list("servers/");
            const mine = listing.objects.filter((o) => o.key.endsWith(`-${target.name}`));
            const newest = Math.max(0, ...mine.map((o) => o.lastModified.getTime()));
            return listing.storeNow.getTime() - newest > EXPIRY_S * 1000;
          }, {
            what: `${target.name}'s heartbeats expired while its registry is cut`,
            timeoutMs: 60_000,
          });
          await sleep(HOLD_MS);
          await net.heal(cutD);
          await waitFor(async () => {
            const listing = await inspect.list("servers/");
            const mine = listing.objects.filter((o) => o.key.endsWith(`-${target.name}`));
            const newest = Math.max(0, ...mine.map((o) => o.lastModified.getTime()));
            return listing.storeNow.getTime() - newest < EXPIRY_S * 1000;
          }, { what: `${target.name}'s heartbeats resumed`, timeoutMs: HEAL_BOUND_MS });
          await healed(group, "D registry cut from one server", timings);
          await checkKeys(target, "d");
        }

        const violations = await monitor.stop();
        console.log(`partitions (${kind}): ${timings.join("; ")}; ${monitor.samples} samples`);
        assert.deepEqual(violations, [], "no invariant violated");
        assert.ok(monitor.samples >= 10, `the monitor looked (${monitor.samples} samples)`);
        const after = await readSlots(inspect);
        for (const [place, claims] of holders) {
          assert.equal(
            after.get(place)?.at(-1)?.node,
            claims.at(-1)?.node,
            `place ${place} kept its holder`,
          );
        }
        for (const [i, n] of group.entries()) {
          assert.ok(n.running, `${n.name}: run lives on`);
          assert.equal(n.proc.pid, runPids[i], `${n.name}: same run process`);
          assert.equal(await n.consulPid(), consulPids[i], `${n.name}: same consul`);
        }
      } catch (err) {
        await monitor.stop();
        throw new Error(
          `${(err as Error).message}\nviolations: ${
            JSON.stringify(monitor.violations)
          }\n${nodes.tails()}`,
          { cause: err },
        );
      } finally {
        inspect.close();
      }
    });
  });
}
