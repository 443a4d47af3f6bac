/**
 * A client of `run` takes a server place that needs a holder: one of 3 servers dies for good,
 * its place goes stale, and the running client (its agent sees too few live servers) claims
 * it and restarts its consul as a server — no operator, no new node needed.
 */
import assert from "node:assert/strict";
import { inspectRegistry, readSlots } from "../harness/registry_view.ts";
import { waitForCluster } from "../harness/cluster_view.ts";
import { withNodes } from "../harness/nodes.ts";
import { waitFor } from "../harness/wait.ts";

Deno.test("promotion: a running client replaces a dead server by itself", async () => {
  await withNodes(async (nodes) => {
    const registry = `file://${await nodes.dir("registry")}`;
    const spec = { registry, servers: 3, ticks: 2, expiry: 6 };
    const reg = await inspectRegistry(registry);
    try {
      const group = nodes.start(4, spec);
      const view = await waitForCluster(group, { servers: 3, clients: 1 });
      const [client] = view.clients;
      const [dead, ...survivors] = view.servers;
      await dead.kill9();

      const promoted = await waitFor(
        () => client.logged(/restarting consul as a server/)[0],
        { what: "the client's promotion", timeoutMs: 60_000, intervalMs: 250 },
      );
      assert.match(promoted.msg, /claimed stale server place/);
      assert.equal(client.runs.length, 1, "the same run process, not a restart of auto-consul");
      assert.equal(await client.mode(), "server");

      await waitFor(async () => (await client.client.self()).isServer, {
        what: "the client's consul running as a server",
        timeoutMs: 30_000,
        intervalMs: 250,
      });
      const after = await waitForCluster([...survivors, client], { servers: 3, clients: 0 });
      assert.ok(after.leader, "a leader");
      const slots = await readSlots(reg);
      const claims = [...slots.values()].flat();
      assert.ok(
        claims.some((c) => c.node === client.name && c.epoch === 2),
        JSON.stringify([...slots]),
      );
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${nodes.tails()}`, { cause: err });
    } finally {
      reg.close();
    }
  });
});
