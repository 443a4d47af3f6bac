/**
 * A whole-site outage longer than the expiry: every node is down, every server place is
 * stale. A node that ran as a client and comes back first must not replace the servers (they
 * hold the data): it stays a client, and the old servers take their places back.
 */
import assert from "node:assert/strict";
import { inspectRegistry, readSlots } from "../harness/registry_view.ts";
import { waitForCluster } from "../harness/cluster_view.ts";
import { withNodes } from "../harness/nodes.ts";
import { waitFor } from "../harness/wait.ts";

const EXPIRY_S = 10;

Deno.test("outage: a former client comes back first and does not take the dead servers' places", async () => {
  await withNodes(async (nodes) => {
    const registry = `file://${await nodes.dir("registry")}`;
    const spec = { registry, servers: 3, ticks: 2, expiry: EXPIRY_S };
    const reg = await inspectRegistry(registry);
    try {
      const group = nodes.start(4, spec);
      const view = await waitForCluster(group, { servers: 3, clients: 1 });
      const [client] = view.clients;
      // retried (bounded) on a transient error: a loaded machine can hold a PUT past 3 s
      await waitFor(() => view.servers[0].client.kvPut("outage/key", "kept"), {
        what: "the write of outage/key to be acknowledged",
        timeoutMs: 60_000,
        intervalMs: 250,
      });
      const slotsBefore = await readSlots(reg);

      await Promise.all(group.map((n) => n.stop("SIGTERM", 30_000)));
      // Down longer than the expiry: every place is stale on the store's clock — by the server
      // heartbeats and by the holder records (a stopping server may write its record after its
      // last heartbeat: a fresh one makes the holder possibly alive, and the client says so).
      await waitFor(async () => {
        const [beats, records] = await Promise.all([reg.list("servers/"), reg.list("holders/")]);
        const newest = Math.max(
          0,
          ...[...beats.objects, ...records.objects].map((o) => o.lastModified.getTime()),
        );
        return beats.storeNow.getTime() - newest > EXPIRY_S * 1000 + 500;
      }, {
        what: "every server heartbeat and holder record expired",
        timeoutMs: 90_000,
        intervalMs: 250,
      });

      const back = client.start();
      const decided = await waitFor(
        () => client.logs(back).find((l) => l.mode !== undefined),
        { what: "the former client's mode decision", timeoutMs: 90_000 },
      );
      assert.equal(decided.mode, "agent", decided.msg);
      assert.match(decided.msg, /waiting for a server with the cluster's data to return/);
      assert.deepEqual(await readSlots(reg), slotsBefore, "no place was claimed");

      for (const s of view.servers) s.start();
      const again = await waitForCluster(group, { servers: 3, clients: 1 });
      assert.deepEqual(
        again.servers.map((n) => n.name).sort(),
        view.servers.map((n) => n.name).sort(),
        "the old servers are the servers again",
      );
      // A restarted server leads before it replayed its raft log into the KV store: wait
      // (bounded) for the key; a lost key never comes back and this times out.
      const kept = await waitFor(
        async () => (await again.servers[0].client.kvGet("outage/key")).value,
        { what: "outage/key written before the outage", timeoutMs: 60_000, intervalMs: 250 },
      );
      assert.equal(kept, "kept");
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${nodes.tails()}`, { cause: err });
    } finally {
      reg.close();
    }
  });
});
