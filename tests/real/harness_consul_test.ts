/**
 * The consul test harness itself: restart keeps the data dir, kill9 is abrupt, dispose removes
 * every file, a cluster grows with `add`, and a failing start reports the agent's output.
 */
import assert from "node:assert/strict";
import {
  consulBin,
  randomLoopbackIp,
  startAgent,
  withAgent,
  withCluster,
} from "../harness/consul.ts";
import { waitFor } from "../harness/wait.ts";

async function exists(path: string): Promise<boolean> {
  return await Deno.stat(path).then(() => true, () => false);
}

Deno.test("harness: an agent restarts on its data dir, dies on kill9, leaves no files", async () => {
  const agent = await startAgent({ server: true });
  try {
    assert.match(agent.ip, /^127\.(\d+)\.\d+\.\d+$/);
    assert.ok(Number(agent.ip.split(".")[1]) >= 20);
    assert.equal(agent.httpAddr, `${agent.ip}:8500`);
    await waitFor(() => agent.client.leader(), {
      what: "the single server to lead",
      timeoutMs: 60_000,
    });
    assert.equal(await agent.client.kvPut("harness/kept", "yes"), true);

    await agent.restart();
    assert.ok(agent.running);
    await waitFor(() => agent.client.leader(), {
      what: "the restarted server to lead",
      timeoutMs: 60_000,
    });
    // A restarted single server is leader before it replayed its raft log into the KV store
    // (the log is applied once the new leader commits its first entry), so a read right after
    // /v1/status/leader answers can miss the key: wait (bounded) until it is there. A data dir
    // that was not kept never brings it back, and this times out.
    const kept = await waitFor(async () => (await agent.client.kvGet("harness/kept")).value, {
      what: "the key written before the restart (data dir kept)",
      timeoutMs: 60_000,
    });
    assert.equal(kept, "yes", "data dir kept");

    const status = await agent.kill9();
    assert.equal(status?.signal, "SIGKILL");
    assert.equal(agent.running, false);
    assert.ok(await exists(agent.dataDir));
  } finally {
    await agent.dispose();
  }
  assert.equal(await exists(agent.tempDir), false, "dispose removes the temp dir");
  assert.equal(await agent.stop(), await agent.exited, "stop after exit is harmless");
});

Deno.test("harness: a cluster grows with add() and withCluster stops everything", async () => {
  let agents: { running: boolean }[] = [];
  await withCluster({ servers: 1 }, async (cluster) => {
    const extra = await cluster.add({ server: false });
    assert.deepEqual(cluster.clients, [extra]);
    await cluster.waitHealthy(60_000);
    assert.equal((await extra.client.members()).length, 2);
    agents = cluster.agents;
  });
  assert.equal(agents.length, 2);
  assert.ok(agents.every((a) => !a.running));
});

Deno.test("harness: a failing start reports the agent's output and cleans up", async () => {
  await assert.rejects(
    startAgent({ server: false, extraArgs: ["-no-such-flag"], startTimeoutMs: 60_000 }),
    (err: unknown) => {
      assert.ok(err instanceof Error);
      assert.match(err.message, /did not start: exited with code 1/);
      assert.match(err.message, /no-such-flag/);
      return true;
    },
  );
  await withAgent({ server: false, ip: randomLoopbackIp() }, async (a) => {
    assert.equal((await a.client.self()).isServer, false);
  });
  assert.ok(consulBin().endsWith("consul"));
});
