/**
 * Issue 10, acceptance 7, with real `auto-consul run` processes and real consul (folder
 * registry, `-s 3 -t 1 -e 3`):
 *
 * 1. A `-c` config dir that makes servers leave on signals (`leave_on_terminate = true`,
 *    `skip_leave_on_interrupt = false`) is overridden: a server stopped with SIGINT does not
 *    leave (serf marks it failed, not left; it stays a raft voter), `run` names the file and
 *    the setting, and the server comes back into its own place.
 * 2. A server whose data dir was wiped (same name and address, new consul node ID): its stale
 *    catalog entry is removed once a leader exists, the catalog names it under its new ID, and
 *    it is a voter again.
 */
import assert from "node:assert/strict";
import { inspectRegistry, readSlots } from "../harness/registry_view.ts";
import { withNodes } from "../harness/nodes.ts";
import { waitForCluster } from "../harness/cluster_view.ts";
import { waitFor } from "../harness/wait.ts";

Deno.test("acceptance 7: -c leave settings are overridden on SIGINT; a wiped server's stale catalog entry is removed", async () => {
  await withNodes(async (nodes) => {
    const registry = `file://${await nodes.dir("registry")}`;
    const config = await nodes.dir("config");
    await Deno.writeTextFile(
      `${config}/leave.hcl`,
      "leave_on_terminate = true\nskip_leave_on_interrupt = false\n",
    );
    const spec = { registry, servers: 3, ticks: 1, expiry: 3, flags: ["-c", config] };
    const reg = await inspectRegistry(registry);
    const watching = new AbortController();
    try {
      const servers = nodes.start(3, { ...spec, prefix: "srv" });
      const view = await waitForCluster(servers, { servers: 3, clients: 0 });
      const slotsBefore = await readSlots(reg);
      const [a, b, c] = view.servers;
      for (const s of view.servers) {
        assert.ok(
          s.logged(
            /leave\.hcl sets leave_on_terminate = true and skip_leave_on_interrupt = false: overridden/,
          ).length > 0,
          `${s.name} names the overridden file and settings`,
        );
      }

      // 1. SIGINT: the server must not leave.
      await a.stop("SIGINT", 30_000);
      assert.equal(a.logged("stopping consul")[0]?.signal, "SIGINT", `${a.name}: SIGINT forwarded`);
      const gone = await waitFor(async () => {
        const m = (await b.client.members()).find((x) => x.name === a.name);
        return m && m.status !== "alive" ? m : undefined;
      }, { what: `${b.name} sees ${a.name} no longer alive`, timeoutMs: 30_000, intervalMs: 200 });
      assert.equal(gone.status, "failed", `${a.name} did not leave (serf status ${gone.status})`);
      const raft = await b.client.raftConfiguration();
      assert.ok(
        raft.servers.some((s) => s.address === a.rpcAddr && s.voter),
        `${a.name} is still a raft voter: ${JSON.stringify(raft.servers)}`,
      );
      a.start();
      await waitForCluster(servers, { servers: 3, clients: 0 });
      assert.deepEqual(await readSlots(reg), slotsBefore, "no place taken, none claimed");

      // 2. A wiped data dir: same name and address, a new consul node ID.
      const oldId = (await c.client.self()).nodeId;
      // Consul renames by itself when the old entry's serf check is critical: a restart slow
      // enough for the others to mark the node failed (a loaded machine). Watch for it.
      let sawFailed = false;
      const watcher = (async () => {
        for (let i = 0; i < 1_000 && !watching.signal.aborted; i++) {
          for (const s of [a, b]) {
            const m = await s.client.members().catch(() => []);
            if (m.some((x) => x.name === c.name && x.status === "failed")) sawFailed = true;
          }
          await new Promise((r) => setTimeout(r, 200));
        }
      })();
      await c.kill9();
      await Deno.remove(c.dataDir, { recursive: true });
      await Deno.mkdir(c.dataDir);
      c.start();
      const newId = await waitFor(async () => {
        const id = (await c.client.self()).nodeId;
        return id && id !== oldId ? id : undefined;
      }, { what: `${c.name} answers with a new node ID`, timeoutMs: 30_000, intervalMs: 200 });
      const t0 = Date.now();
      await waitFor(async () => (await b.client.catalogNode(c.name))?.id === newId, {
        what: `the catalog names ${c.name} under its new node ID ${newId} (old ${oldId})`,
        timeoutMs: 90_000,
        intervalMs: 250,
      });
      const cleaned = (Date.now() - t0) / 1000;
      watching.abort();
      await watcher;
      const removed = c.logged(/removed the stale catalog entry of/).length > 0;
      if (sawFailed && !removed) {
        console.log(`${c.name} was marked failed meanwhile: consul renamed it by itself`);
      } else {
        assert.ok(removed, `${c.name} says it removed its stale entry`);
      }
      const again = await waitForCluster(servers, { servers: 3, clients: 0, timeoutMs: 90_000 });
      const mine = again.voters.find((v) => v.address === c.rpcAddr);
      assert.equal(mine?.id, newId, `${c.name} is a voter under its new ID`);
      assert.deepEqual(await readSlots(reg), slotsBefore, "still no place taken");
      console.log(
        `wiped data dir: catalog under the new ID ${cleaned.toFixed(1)} s after consul answered`,
      );
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${nodes.tails()}`, { cause: err });
    } finally {
      watching.abort();
      reg.close();
    }
  });
});
