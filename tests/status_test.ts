/** `status` against a real 3-server cluster: registry rows merged with serf and raft. */
import assert from "node:assert/strict";
import { runCli } from "./harness/cli.ts";
import { withCluster } from "./harness/consul.ts";

Deno.test("status --json: leader and voters right on a real 3-server cluster, expired rows marked", async () => {
  const root = await Deno.makeTempDir();
  try {
    await withCluster({ servers: 3, clients: 1 }, async (cluster) => {
      for (const a of cluster.agents) {
        const r = await runCli(["-r", `file://${root}`, "heartbeat"], {
          env: { CONSUL_HTTP_ADDR: a.httpAddr },
        });
        assert.equal(r.code, 0, r.stderr);
      }
      // A gone node whose heartbeat expired long ago (gem format, body an IP).
      await Deno.mkdir(`${root}/servers`, { recursive: true });
      const old = `${root}/servers/20140516092731-gone-server-1`;
      await Deno.writeTextFile(old, "192.168.50.100");
      await Deno.utime(old, new Date(Date.now() - 3600_000), new Date(Date.now() - 3600_000));

      const leader = await cluster.leader();
      const r = await runCli(["-r", `file://${root}`, "status", "--json"], {
        env: { CONSUL_HTTP_ADDR: cluster.clients[0].httpAddr },
      });
      assert.equal(r.code, 0, r.stderr);
      const out = JSON.parse(r.stdout);
      assert.equal(out.agent.reachable, true);
      assert.equal(out.agent.leader, leader.node);
      type Row = {
        node: string;
        role: string;
        address?: string;
        registry: string;
        serf?: string;
        voter?: boolean;
        leader?: boolean;
      };
      const rows = new Map<string, Row>(out.members.map((m: Row) => [m.node, m]));
      for (const s of cluster.servers) {
        const row = rows.get(s.node)!;
        assert.ok(row, s.node);
        assert.deepEqual(
          [row.role, row.address, row.registry, row.serf, row.voter, row.leader],
          ["server", s.ip, "live", "alive", true, s.node === leader.node],
          s.node,
        );
      }
      const c = rows.get(cluster.clients[0].node)!;
      assert.deepEqual([c.role, c.address, c.registry, c.serf, c.voter, c.leader], [
        "client",
        cluster.clients[0].ip,
        "live",
        "alive",
        false,
        false,
      ]);
      const gone = rows.get("gone-server-1")!;
      assert.deepEqual([gone.role, gone.address, gone.registry, gone.serf], [
        "server",
        "192.168.50.100",
        "expired",
        undefined,
      ]);
      assert.equal(out.members.filter((m: Row) => m.leader).length, 1, "exactly one leader");

      // The table for people.
      const t = await runCli(["-r", `file://${root}`, "status"], {
        env: { CONSUL_HTTP_ADDR: leader.httpAddr },
      });
      assert.equal(t.code, 0, t.stderr);
      const lines = t.stdout.trimEnd().split("\n");
      assert.match(lines[0], /^NODE\s+ROLE\s+ADDRESS\s+AGE\s+REGISTRY\s+SERF\s+VOTER\s+LEADER$/);
      assert.equal(lines.length, 1 + 5);
      assert.ok(lines.some((l) => l.startsWith(leader.node) && /\byes\s+yes$/.test(l)), t.stdout);
    });
    // With no agent answering: the registry view only, said so.
    const r = await runCli(["-r", `file://${root}`, "status"], {
      env: { CONSUL_HTTP_ADDR: "127.0.0.1:1" },
    });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /local consul agent not reachable: registry view only/);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
