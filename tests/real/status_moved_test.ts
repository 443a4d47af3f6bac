/**
 * A server that moved: a 3-server cluster stops, and one server comes back on a new address
 * with its data (node ID and raft state kept) while the other two stay down. Its raft
 * configuration still lists its old address (consul names such an entry "(unknown)": serf has
 * nobody there), and with 1 of 3 voters nothing can change that. `status` must match raft to
 * serf by node ID; `doctor` must say what happened. (When a quorum comes back, consul 1.8
 * re-elects through node IDs and rewrites the addresses itself: that state does not last.)
 */
import assert from "node:assert/strict";
import { parseLatestConfiguration } from "../../src/cluster/observe.ts";
import { Logger } from "../../src/log.ts";
import { FileRegistry } from "../../src/registry/file.ts";
import { type Agent, randomLoopbackIp, startAgent } from "../harness/consul.ts";
import { doctorInProcess, findingsOf, ids, register } from "../harness/doctor.ts";
import { statusInProcess } from "../harness/status.ts";
import { waitFor } from "../harness/wait.ts";

Deno.test("status and doctor: a server back on a new address, raft still at the old one", async () => {
  const root = await Deno.makeTempDir();
  const url = `file://${root}`;
  const data = await Promise.all([0, 1, 2].map(() => Deno.makeTempDir()));
  const names = ["moved-a", "moved-b", "moved-c"];
  const started: Agent[] = [];
  try {
    const ips = names.map(() => randomLoopbackIp());
    const before = await Promise.all(ips.map((ip, i) =>
      startAgent({
        server: true,
        ip,
        node: names[i],
        dataDir: data[i],
        bootstrapExpect: 3,
        join: ips.filter((o) => o !== ip),
      })
    ));
    started.push(...before);
    await waitFor(async () => {
      const r = await before[0].client.raftConfiguration();
      return r.servers.length === 3 && r.servers.some((s) => s.leader);
    }, { what: "a leader and 3 raft voters", timeoutMs: 30_000, intervalMs: 200 });
    await Promise.all(before.map((a) => a.stop())); // SIGTERM: servers do not leave

    const moved = await startAgent({
      server: true,
      ip: randomLoopbackIp(),
      node: names[0],
      dataDir: data[0],
      bootstrapExpect: 3,
    });
    started.push(moved);
    // consul 1.8 does not serve the raft API (even ?stale) on a server that has not heard from a
    // leader since it started: its own copy is in its stats
    const stats = (await moved.client.self()).raw.Stats as { raft: Record<string, string> };
    const raft = parseLatestConfiguration(stats.raft.latest_configuration)!;
    assert.ok(raft, stats.raft.latest_configuration);
    const entry = raft.servers.find((s) => s.address === before[0].rpcAddr)!;
    assert.ok(entry, `raft keeps the old address: ${JSON.stringify(raft.servers)}`);
    await register(new FileRegistry({ root, log: new Logger({ level: "error" }) }), [moved]);

    const text = await statusInProcess(url, moved.httpAddr, false);
    assert.match(text.out, /^Leader: NO LEADER: /m, text.out);
    assert.match(text.out, /raft read from this server's own copy/);
    console.log(`status on a server the raft API refuses: ${Math.round(text.ms)} ms`);
    assert.ok(text.ms <= 2_000, `status took ${text.ms} ms`);
    assert.ok(
      text.out.includes(`(raft has ${moved.node} at ${before[0].rpcAddr}, serf at ${moved.ip})`),
      text.out,
    );
    const out = JSON.parse((await statusInProcess(url, moved.httpAddr, true)).out);
    const row = out.members.find((m: { node: string }) => m.node === moved.node);
    assert.deepEqual(
      [row.role, row.address, row.voter, row.leader, row.raftAddress],
      ["server", moved.ip, true, false, before[0].rpcAddr],
    );
    assert.equal(out.leader.state, "none");
    assert.equal(out.members.filter((m: { node: string }) => m.node === "(unknown)").length, 0);

    const doc = await doctorInProcess({ registry: url, httpAddr: moved.httpAddr, servers: 3 });
    const [f] = findingsOf(doc, "raft-address-mismatch");
    assert.ok(f, JSON.stringify(ids(doc)));
    assert.equal(
      f.title,
      `server ${moved.node} moved: raft has it at ${before[0].rpcAddr}, serf at ${moved.ip}:8300`,
    );
    assert.match(f.next, /without a leader|peers\.json/);
    assert.match(findingsOf(doc, "no-leader")[0].next, /quorum is lost/);
    assert.equal(doc.code, 6);
  } finally {
    await Promise.allSettled(started.map((a) => a.dispose()));
    await Promise.allSettled([root, ...data].map((p) => Deno.remove(p, { recursive: true })));
  }
});
