/** `status` against a real 3-server cluster: registry rows merged with serf and raft. */
import assert from "node:assert/strict";
import type { StatusRow } from "../../src/cluster/status_view.ts";
import { runCli } from "../harness/cli.ts";
import { withCluster } from "../harness/consul.ts";
import { statusInProcess as statusAt } from "../harness/status.ts";
import { waitFor } from "../harness/wait.ts";

const statusInProcess = (root: string, httpAddr: string, json: boolean) =>
  statusAt(`file://${root}`, httpAddr, json);

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
      // servers write both directories: an expired server is still shown as a server
      await Deno.mkdir(`${root}/agents`, { recursive: true });
      const oldAgent = `${root}/agents/20140516092731-gone-server-1`;
      await Deno.writeTextFile(oldAgent, "192.168.50.100");
      await Deno.utime(oldAgent, new Date(Date.now() - 3600_000), new Date(Date.now() - 3600_000));

      const leader = await cluster.leader();
      const r = await runCli(["-r", `file://${root}`, "status", "--json"], {
        env: { CONSUL_HTTP_ADDR: cluster.clients[0].httpAddr },
      });
      assert.equal(r.code, 0, r.stderr);
      const out = JSON.parse(r.stdout);
      assert.equal(out.agent.reachable, true);
      assert.equal(out.agent.leader, leader.node);
      const rows = new Map<string, StatusRow>(out.members.map((m: StatusRow) => [m.node, m]));
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
      assert.equal(out.members.filter((m: StatusRow) => m.leader).length, 1, "exactly one leader");

      // The table for people.
      const t = await runCli(["-r", `file://${root}`, "status"], {
        env: { CONSUL_HTTP_ADDR: leader.httpAddr },
      });
      assert.equal(t.code, 0, t.stderr);
      const lines = t.stdout.trimEnd().split("\n");
      assert.match(
        lines[0],
        /^NODE\s+ROLE\s+ADDRESS\s+AGE\s+REGISTRY\s+SERF\s+VOTER\s+LEADER\s+PLACE$/,
      );
      assert.equal(lines.indexOf(""), 1 + 5, t.stdout);
      assert.ok(
        lines.some((l) => l.startsWith(leader.node) && /\byes\s+yes\s+-$/.test(l)),
        t.stdout,
      );
      assert.ok(lines.includes(`Leader: ${leader.node} (${leader.rpcAddr})`), t.stdout);

      // No leader: two of three servers die. status asks the survivor, which still has the
      // raft configuration (stale read) but no leader: bounded, addresses kept, said plainly.
      const survivor = cluster.servers.find((s) => s !== leader)!;
      await Promise.all(cluster.servers.filter((s) => s !== survivor).map((s) => s.kill9()));
      await waitFor(async () => (await survivor.client.leader()) === undefined, {
        what: `${survivor.node} to lose its leader`,
        timeoutMs: 30_000,
        intervalMs: 250,
      });
      const text = await statusInProcess(root, survivor.httpAddr, false);
      assert.equal(text.code, 0);
      assert.match(text.out, /^Leader: NO LEADER: /m, text.out);
      const js = await statusInProcess(root, survivor.httpAddr, true);
      console.log(
        `status with no leader: ${Math.round(text.ms)} ms (text), ${Math.round(js.ms)} ms (json)`,
      );
      assert.ok(text.ms <= 2_000 && js.ms <= 2_000, `status took ${text.ms} / ${js.ms} ms`);
      const noLeader = JSON.parse(js.out);
      assert.equal(noLeader.leader.state, "none");
      assert.equal(noLeader.agent.raft, "read");
      const byNode = new Map<string, StatusRow>(
        noLeader.members.map((m: StatusRow) => [m.node, m]),
      );
      for (const s of cluster.servers) {
        const row = byNode.get(s.node)!;
        assert.deepEqual([row.role, row.address, row.voter, row.leader], [
          "server",
          s.ip,
          true,
          false,
        ]);
      }
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
