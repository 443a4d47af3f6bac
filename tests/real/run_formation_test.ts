/**
 * Acceptance 1, 2, 3 of `run` (issue 3): race-free formation with real `auto-consul run`
 * processes and real consul agents, each node on its own loopback address.
 *
 * 1. 5 nodes started at the same moment with `-s 3` → exactly 3 servers and 2 clients, one
 *    leader, 5 alive members, raft voters = those 3 servers; each place claimed exactly once.
 *    Repeated with fresh registries, on the folder registry and on the S3 server.
 * 2. 3 nodes started at the same moment with `-s 1` → exactly one server and one cluster:
 *    every agent names the same leader and the same single raft peer. Both registries.
 * 3. Clients started first, servers a while later → the clients join once servers appear,
 *    without restarts (same run process, same consul pid, no "restarting consul").
 *
 * Repetitions: AUTO_CONSUL_REPS (default 3 in the suite, which must stay near 12 minutes on 2
 * cores; AUTO_CONSUL_REPS=10 runs the issue's count, about 3 minutes more).
 */
import assert from "node:assert/strict";
import { runCli } from "../harness/cli.ts";
import { clusterView, waitForCluster } from "../harness/cluster_view.ts";
import { inspectRegistry, readSlots } from "../harness/registry_view.ts";
import { type Node, type Nodes, withNodes } from "../harness/nodes.ts";
import { type S3Server, withS3Server } from "../harness/s3.ts";

const REPS = (() => {
  const raw = Deno.env.get("AUTO_CONSUL_REPS") ?? "3";
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > 100) {
    throw new RangeError(`invalid AUTO_CONSUL_REPS "${raw}": expected a whole number 1..100`);
  }
  return n;
})();

/** A fresh, empty registry per repetition: a new folder, or a new prefix in the bucket. */
interface Fresh {
  url: string;
  env: Record<string, string>;
}

async function freshFolder(nodes: Nodes, rep: number): Promise<Fresh> {
  return { url: `file://${await nodes.dir(`registry-rep-${rep}`)}`, env: {} };
}

function freshPrefix(s3: S3Server, rep: number): Fresh {
  return {
    url: `s3://${s3.bucket}/formation/rep-${rep}-${crypto.randomUUID().slice(0, 6)}`,
    env: { ...s3.env, AWS_ENDPOINT_URL_S3: s3.endpoint },
  };
}

/** How each node's mode was decided (from its log), to show the race was really run. */
function decisions(nodes: Node[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const n of nodes) {
    const line = n.logs().find((l) => l.component === "run" && typeof l.mode === "string");
    const msg = line?.msg ?? "(none)";
    const why = /^claimed/.test(msg)
      ? "claimed a place"
      : /^lost the race/.test(msg)
      ? "lost the race"
      : /server places are held/.test(msg)
      ? "found all places held"
      : msg;
    out[why] = (out[why] ?? 0) + 1;
  }
  return out;
}

/**
 * Starts `count` nodes at once with `-s servers` on a fresh registry and checks the outcome:
 * the cluster (every agent agrees), the mode files, the place claims (one epoch per place,
 * held by the servers), and that no consul was restarted. Stops the nodes at the end.
 */
async function formOnce(
  nodes: Nodes,
  fresh: Fresh,
  count: number,
  servers: number,
): Promise<{ ms: number; how: Record<string, number> }> {
  const started = Date.now();
  const group = nodes.start(count, { registry: fresh.url, servers, env: fresh.env });
  try {
    const view = await waitForCluster(group, { servers, clients: count - servers });
    const ms = Date.now() - started;

    const serverNames = view.servers.map((n) => n.name).sort();
    for (const n of group) {
      const mode = await n.mode();
      assert.equal(mode, view.servers.includes(n) ? "server" : "agent", `${n.name} mode file`);
    }
    const registry = await inspectRegistry(fresh.url, fresh.env);
    try {
      const slots = await readSlots(registry);
      assert.deepEqual([...slots.keys()].sort(), Array.from({ length: servers }, (_, k) => k));
      for (const [place, claims] of slots) {
        assert.equal(claims.length, 1, `place ${place} claimed once: ${JSON.stringify(claims)}`);
        assert.equal(claims[0].epoch, 1);
      }
      assert.deepEqual([...slots.values()].map((c) => c[0].node).sort(), serverNames);
    } finally {
      registry.close();
    }
    for (const n of group) {
      assert.ok(n.running, `run of ${n.name} is still running`);
      assert.equal(n.logged("restarting consul").length, 0, `${n.name}: consul never restarted`);
    }
    // Still one cluster a moment later (a second leader would show up here).
    await clusterView(group, { servers, clients: count - servers });
    return { ms, how: decisions(group) };
  } catch (err) {
    throw new Error(`${(err as Error).message}\n${nodes.tails(group)}`, { cause: err });
  } finally {
    await Promise.allSettled(group.map((n) => n.dispose(1_000))); // no need to wait for leaves
  }
}

/** Runs `reps` formations and reports the timings; every one must pass. */
async function repeat(
  label: string,
  nodes: Nodes,
  fresh: (rep: number) => Promise<Fresh> | Fresh,
  count: number,
  servers: number,
): Promise<void> {
  const times: number[] = [];
  const how: Record<string, number> = {};
  for (let rep = 1; rep <= REPS; rep++) {
    const r = await formOnce(nodes, await fresh(rep), count, servers).catch((err) => {
      throw new Error(`${label}: repetition ${rep}/${REPS} failed: ${(err as Error).message}`, {
        cause: err,
      });
    });
    times.push(r.ms);
    for (const [k, v] of Object.entries(r.how)) how[k] = (how[k] ?? 0) + v;
  }
  const max = Math.max(...times);
  const mean = Math.round(times.reduce((a, b) => a + b, 0) / times.length);
  console.log(
    `${label}: ${REPS}/${REPS} ok; formed in mean ${mean} ms, max ${max} ms; decisions ${
      JSON.stringify(how)
    }`,
  );
}

Deno.test("acceptance 1: 5 nodes at once with -s 3 → 3 servers, 2 clients, one leader, on both registries", async (t) => {
  await withNodes(async (nodes) => {
    await t.step(`folder registry, ${REPS} repetitions`, async () => {
      await repeat("5 nodes -s 3 (folder)", nodes, (rep) => freshFolder(nodes, rep), 5, 3);
    });
    await t.step(`S3 registry, ${REPS} repetitions`, async () => {
      await withS3Server(async (s3) => {
        await repeat("5 nodes -s 3 (S3)", nodes, (rep) => freshPrefix(s3, rep), 5, 3);
      });
    });
  });
});

Deno.test("acceptance 2: 3 nodes at once with -s 1 → exactly one server and one cluster, on both registries", async (t) => {
  await withNodes(async (nodes) => {
    await t.step(`folder registry, ${REPS} repetitions`, async () => {
      await repeat("3 nodes -s 1 (folder)", nodes, (rep) => freshFolder(nodes, rep), 3, 1);
    });
    await t.step(`S3 registry, ${REPS} repetitions`, async () => {
      await withS3Server(async (s3) => {
        await repeat("3 nodes -s 1 (S3)", nodes, (rep) => freshPrefix(s3, rep), 3, 1);
      });
    });
  });
});

Deno.test("acceptance 3: clients started first join the servers started later, without restarts", async () => {
  await withNodes(async (nodes) => {
    const registry = `file://${await nodes.dir("registry")}`;
    try {
      // Clients: the mode set by hand (set_agent), so that they run as clients although
      // every server place is still free.
      const clients = [0, 1].map(() => nodes.create({ registry, servers: 3, prefix: "client" }));
      for (const c of clients) {
        const r = await runCli(["-d", c.dataDir, "set_agent"]);
        assert.equal(r.code, 0, r.stderr);
      }
      for (const c of clients) c.start();
      const runPids = clients.map((c) => c.proc.pid);
      const consulPids = await Promise.all(clients.map((c) => c.waitConsulPid()));

      // A while (3 ticks) with no server anywhere: the clients wait, nothing restarts.
      await new Promise((r) => setTimeout(r, 6_000));
      for (const c of clients) {
        assert.ok(c.running, `${c.name} still running\n${c.tail()}`);
        assert.equal(await c.client.leader().catch(() => undefined), undefined, "no leader yet");
      }

      const servers = nodes.start(3, { registry, servers: 3, prefix: "server" });
      const view = await waitForCluster([...clients, ...servers], { servers: 3, clients: 2 });
      assert.deepEqual(view.servers.map((n) => n.name).sort(), servers.map((n) => n.name).sort());

      for (const [i, c] of clients.entries()) {
        const why = `${c.name}\n${c.tail()}`;
        assert.equal(c.runs.length, 1, why);
        assert.ok(c.running, why);
        assert.equal(c.proc.pid, runPids[i], why);
        assert.equal(await c.consulPid(), consulPids[i], `${c.name}: same consul pid`);
        assert.equal(c.logged("consul started").length, 1, why);
        assert.equal(c.logged("restarting consul").length, 0, why);
        assert.equal(c.logged("consul exited unexpectedly").length, 0, why);
        assert.ok(c.logged("joined").length >= 1, `${c.name} joined through its join loop`);
        assert.equal(await c.mode(), "agent");
      }
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${nodes.tails()}`, { cause: err });
    }
  });
});
