/**
 * I1, placeless raft servers (src/cluster/placeless.ts; docs/recovery.md I1): real
 * `auto-consul run` servers (folder registry, `-s 3 -t 1 -e 5`) and two bare consul servers
 * that hold no place and write no heartbeat — what a client carries into a new cluster (I5)
 * when it joins it while its consul still sees the old servers alive: consul's leader adds
 * every live server member to raft, and autopilot makes the healthy ones voters.
 *
 * While alive the two are reported (error level) and never removed: 5 voters for 3 places.
 * Then both are killed (kill -9). Consul's autopilot would prune them here (2 dead of 5, 3
 * left ≥ min_quorum) — but not when it is told not to (`cleanup_dead_servers = false`, as a
 * user's `-c` file may say; it is what this test sets), nor when pruning would leave fewer
 * voters than min_quorum (a dead place holder beside them), nor when the dead are not fewer
 * than half. The leader removes them: raft is back to the 3 place holders. With the guard off
 * this test fails (checked by hand: 5 voters at the bound).
 *
 * Gated by AUTO_CONSUL_RECOVERY_FULL=1 (about 40 s).
 */
import assert from "node:assert/strict";
import { type Agent, startAgent } from "../harness/consul.ts";
import { type NodeSpec, withNodes } from "../harness/nodes.ts";
import { waitForCluster } from "../harness/cluster_view.ts";
import { waitFor } from "../harness/wait.ts";

const FULL = Deno.env.get("AUTO_CONSUL_RECOVERY_FULL") === "1";

Deno.test({
  name:
    "I1: raft servers that hold no place — reported while alive, removed by the leader once dead",
  ignore: !FULL,
  fn: async () => {
    await withNodes(async (nodes) => {
      const spec: NodeSpec = {
        registry: `file://${await nodes.dir("registry")}`,
        servers: 3,
        ticks: 1,
        expiry: 5,
        logLevel: "info",
        // Autopilot leaves dead servers alone: only the guard can remove them (see above).
        consulArgs: ["-hcl=autopilot { cleanup_dead_servers = false }"],
      };
      const group = nodes.start(3, { ...spec, prefix: "place" });
      const intruders: Agent[] = [];
      try {
        const view = await waitForCluster(group, { servers: 3, clients: 0, timeoutMs: 120_000 });
        const servers = view.servers;
        const raftOf = async () => {
          for (const s of servers) {
            const cfg = await s.client.raftConfiguration().catch(() => undefined);
            if (cfg) return cfg;
          }
          return undefined;
        };
        for (let i = 0; i < 2; i++) {
          intruders.push(
            await startAgent({
              server: true,
              bootstrapExpect: 3, // sees a cluster with raft peers: joins it, never bootstraps
              join: servers.map((s) => `${s.ip}:8301`),
              startTimeoutMs: 60_000,
            }),
          );
        }
        const names = new Set(intruders.map((a) => a.node));
        // Consul's leader adds them, autopilot makes them voters: 5 voters for 3 places.
        await waitFor(async () => {
          const cfg = await raftOf();
          return cfg && cfg.servers.filter((s) => s.voter).length === 5 &&
            [...names].every((n) => cfg.servers.some((s) => s.node === n && s.voter));
        }, { what: "the two placeless servers as raft voters", timeoutMs: 90_000 });

        // Alive: reported at error level by the leader, not removed.
        await waitFor(
          () =>
            servers.some((s) =>
              s.logs().some((l) =>
                l.level === "error" && /holds no place .* alive: not removed/.test(l.msg) &&
                names.has(String(l.node))
              )
            ),
          { what: "the leader reporting a live placeless server", timeoutMs: 30_000 },
        );
        assert.equal(
          servers.flatMap((s) => s.logged(/removed raft server/)).length,
          0,
          "a live placeless server is never removed",
        );
        const voters = (await raftOf())?.servers.filter((s) => s.voter).length;
        assert.equal(voters, 5, "both still voters while alive");

        await Promise.all(intruders.map((a) => a.kill9()));
        const healed = await waitFor(async () => {
          const cfg = await raftOf();
          return cfg && cfg.servers.length === 3 &&
              cfg.servers.every((s) => servers.some((n) => n.name === s.node) && s.voter)
            ? cfg
            : undefined;
        }, {
          what: "raft back to the 3 place holders (the dead placeless servers removed)",
          timeoutMs: 60_000,
        });
        assert.equal(healed.servers.filter((s) => s.leader).length, 1, "a leader");
        const removals = servers.flatMap((s) => s.logged(/removed raft server/));
        assert.deepEqual(
          [...new Set(removals.map((l) => String(l.node)))].sort(),
          [...names].sort(),
          "the leader removed both, and only them",
        );
        assert.ok(removals.every((l) => l.serf !== "alive"), "none of them alive when removed");
        // The cluster still works.
        assert.ok(await servers[0].client.kvPut("placeless/check", "ok"));
      } catch (err) {
        throw new Error(`${(err as Error).message}\n${nodes.tails()}`, { cause: err });
      } finally {
        await Promise.all(intruders.map((a) => a.dispose()));
      }
    });
  },
});
