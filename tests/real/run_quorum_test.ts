/**
 * Issue 10 with real `auto-consul run` processes and real consul agents (folder registry and
 * S3), `-s 3 -t 1 -e 3` (so the recovery wait W is 5 expiry windows = 15 s), 100 KV keys
 * written before each fault and checked after, raft voters asserted.
 *
 * Acceptance 3 (I4): two of three servers destroyed (kill -9, data deleted), two replacement
 *   nodes started at once → the survivor rebuilds raft from its own data after W
 *   (raft/peers.json), the replacements take the dead servers' places once a leader exists,
 *   3 voters, 100/100 keys.
 * Acceptance 1 (I2): a whole-site outage longer than every wait (all nodes down for 2 W),
 *   clients back first → they stay clients; servers back on the same addresses → leader, 3
 *   voters, 100/100, no place taken, no recovery plan.
 * Acceptance 2: the same outage, servers back on new addresses → leader (time printed), 3
 *   voters at the new addresses, no place taken, 100/100 (folder and S3, one test per rep).
 *
 * Repetitions: AUTO_CONSUL_REPS (default 1 in the suite; the issue's 5 by hand). The suite runs
 * acceptance 3 and 1 on the folder (about 2 minutes); AUTO_CONSUL_RECOVERY_FULL=1 adds
 * acceptance 2 and 4 and the S3 runs (about 2.5 minutes per acceptance 2 run; acceptance 4 on
 * S3 runs both policies per rep). Only acceptance 2, 5 reps each registry:
 * AUTO_CONSUL_REPS=5 AUTO_CONSUL_RECOVERY_FULL=1 deno test -A tests/real/run_quorum_test.ts
 * --filter "every server back on a new address"
 */
import assert from "node:assert/strict";
import { randomLoopbackIp } from "../harness/consul.ts";
import { inspectRegistry, readSlots } from "../harness/registry_view.ts";
import { Node, type NodeSpec, withNodes } from "../harness/nodes.ts";
import { waitForCluster } from "../harness/cluster_view.ts";
import { runCli } from "../harness/cli.ts";
import { type S3Server, withS3Server } from "../harness/s3.ts";
import { sleep, waitFor } from "../harness/wait.ts";

const REPS = (() => {
  const raw = Deno.env.get("AUTO_CONSUL_REPS") ?? "1";
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > 100) {
    throw new RangeError(`invalid AUTO_CONSUL_REPS "${raw}": expected a whole number 1..100`);
  }
  return n;
})();

const FULL = Deno.env.get("AUTO_CONSUL_RECOVERY_FULL") === "1";
const TICKS_S = 1;
const EXPIRY_S = 3;
const WAIT_S = 5 * EXPIRY_S;
const KEYS = 100;

async function writeKeys(server: Node): Promise<void> {
  for (let i = 0; i < KEYS; i++) {
    assert.ok(await server.client.kvPut(`outage/k${i}`, `v${i}`), `write outage/k${i}`);
  }
}

/** Keys under outage/ that `node` has applied (a stale read: no leader needed). */
async function keysOn(node: Node, stale: boolean): Promise<number> {
  const res = await fetch(
    `http://${node.ip}:8500/v1/kv/outage/?recurse${stale ? "&stale" : ""}`,
    { signal: AbortSignal.timeout(3000) },
  );
  if (res.status === 404) {
    await res.body?.cancel();
    return 0;
  }
  if (!res.ok) throw new Error(`${node.name}: KV read answered ${res.status}`);
  const list = await res.json() as { Key: string; Value: string }[];
  return list.filter((e) => atob(e.Value) === `v${e.Key.slice("outage/k".length)}`).length;
}

async function checkKeys(nodes: Node[]): Promise<void> {
  const leaderSide = nodes[0];
  await waitFor(async () => (await keysOn(leaderSide, false)) === KEYS, {
    what: `${KEYS}/${KEYS} keys readable through ${leaderSide.name}`,
    timeoutMs: 15_000,
  });
}

function spec(registry: string, env: Record<string, string>): NodeSpec {
  return { registry, env, servers: 3, ticks: TICKS_S, expiry: EXPIRY_S };
}

async function quorumLost(registry: string, env: Record<string, string>): Promise<void> {
  await withNodes(async (nodes) => {
    const s = spec(registry, env);
    try {
      const servers = nodes.start(3, { ...s, prefix: "srv" });
      const view = await waitForCluster(servers, { servers: 3, clients: 0 });
      await writeKeys(view.servers[0]);
      const [survivor, ...doomed] = view.servers;
      await waitFor(async () => (await keysOn(survivor, true)) === KEYS, {
        what: "the survivor has applied every key",
        timeoutMs: 15_000,
      });

      const t0 = Date.now();
      for (const d of doomed) {
        await d.kill9();
        await Deno.remove(d.dataDir, { recursive: true });
      }
      const replacements = nodes.start(2, { ...s, prefix: "new" });
      const group = [survivor, ...replacements];
      const again = await waitForCluster(group, {
        servers: 3,
        clients: 0,
        timeoutMs: (WAIT_S + 90) * 1000,
      });
      const healed = (Date.now() - t0) / 1000;
      const leaderAt = survivor.logs().find((l) => /carrying out quorum recovery plan/.test(l.msg));
      assert.ok(leaderAt, "the survivor carried out a recovery plan");
      assert.ok(
        leaderAt.ts - t0 >= (WAIT_S - 1) * 1000,
        `no recovery before W (${leaderAt.ts - t0} ms)`,
      );
      assert.equal(again.voters.filter((v) => v.voter).length, 3, "3 voters");
      await checkKeys([survivor]);
      const reg = await inspectRegistry(registry, env);
      try {
        const slots = await readSlots(reg);
        const holders = [...slots.values()].map((c) => c.at(-1)!.node).sort();
        assert.deepEqual(holders, group.map((n) => n.name).sort(), "places follow the servers");
      } finally {
        reg.close();
      }
      console.log(
        `quorum lost: healed (leader, 3 voters, ${KEYS}/${KEYS}) ${healed.toFixed(1)} s after ` +
          `the kill; recovery carried out at ${((leaderAt.ts - t0) / 1000).toFixed(1)} s`,
      );
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${nodes.tails()}`, { cause: err });
    }
  });
}

async function wholeSite(registry: string, env: Record<string, string>): Promise<void> {
  await withNodes(async (nodes) => {
    const s = spec(registry, env);
    try {
      const group = nodes.start(5, s);
      const view = await waitForCluster(group, { servers: 3, clients: 2 });
      await writeKeys(view.servers[0]);
      const reg = await inspectRegistry(registry, env);
      try {
        const slotsBefore = await readSlots(reg);
        await Promise.all(group.map((n) => n.kill9()));
        // Longer than every wait: W and the client patience (2 expiry windows).
        await sleep(2 * WAIT_S * 1000);
        for (const c of view.clients) c.start();
        const said = await Promise.all(view.clients.map((c) =>
          waitFor(
            () => c.logs(c.proc).find((l) => /waiting for a server/.test(l.msg)),
            { what: `${c.name} says what it waits for`, timeoutMs: 30_000 },
          )
        ));
        for (const l of said) assert.equal(l.mode ?? "agent", "agent");
        // The clients keep waiting a while: still nothing taken.
        await sleep(3 * EXPIRY_S * 1000);
        assert.deepEqual(await readSlots(reg), slotsBefore, "no place taken while no leader");
        for (const srv of view.servers) srv.start();
        const t0 = Date.now();
        const again = await waitForCluster(group, { servers: 3, clients: 2, timeoutMs: 90_000 });
        assert.deepEqual(
          again.servers.map((n) => n.name).sort(),
          view.servers.map((n) => n.name).sort(),
          "the old servers are the servers again, with their data",
        );
        await checkKeys(again.servers);
        assert.deepEqual(await readSlots(reg), slotsBefore, "no place taken");
        assert.deepEqual((await reg.list("recovery/")).objects, [], "no recovery plan");
        console.log(
          `whole-site outage: leader and 5 members ${
            (Date.now() - t0) / 1000
          } s after the servers were started`,
        );
      } finally {
        reg.close();
      }
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${nodes.tails()}`, { cause: err });
    }
  });
}

/**
 * Acceptance 4 (I5): every server destroyed (kill -9; data dirs kept aside), new nodes started.
 * `policy` "wait" (the default): no cluster, the new nodes say what they wait for, nothing is
 * taken; then `recover --new-cluster --yes` → a new cluster at once. "new-cluster": a new
 * cluster forms by itself, not before W. Either way the old servers, started again afterwards,
 * run as clients, keep their data dirs and say why at error level.
 */
async function allLost(
  registry: string,
  env: Record<string, string>,
  policy: "wait" | "new-cluster",
): Promise<void> {
  await withNodes(async (nodes) => {
    const s = spec(registry, env);
    try {
      const old = nodes.start(3, { ...s, prefix: "old" });
      const view = await waitForCluster(old, { servers: 3, clients: 0 });
      await writeKeys(view.servers[0]);
      await Promise.all(old.map((n) => n.kill9()));
      const t0 = Date.now();
      const flags = policy === "new-cluster" ? ["--servers-lost", "new-cluster"] : [];
      const fresh = nodes.start(3, { ...s, prefix: "new", flags });
      if (policy === "wait") {
        await Promise.all(
          fresh.map((n) =>
            waitFor(
              () =>
                n.logs().find((l) => /waiting for a server with the cluster's data/.test(l.msg)),
              {
                what: `${n.name} says it waits for a server with the data`,
                timeoutMs: 30_000,
              },
            )
          ),
        );
        // Longer than W: still no cluster, nothing taken.
        await sleep((WAIT_S + EXPIRY_S) * 1000);
        const reg = await inspectRegistry(registry, env);
        try {
          const slots = await readSlots(reg);
          for (const claims of slots.values()) assert.equal(claims.length, 1, "no place taken");
        } finally {
          reg.close();
        }
        const r = await runCli([
          "-r",
          registry,
          "-s",
          "3",
          "-e",
          String(EXPIRY_S),
          "-n",
          "operator",
          "--http-addr",
          `${fresh[0].ip}:8500`,
          "recover",
          "--new-cluster",
          "--yes",
        ], { env });
        assert.equal(r.code, 0, r.stdout + r.stderr);
        assert.match(r.stdout, /NEW CLUSTER/);
        assert.match(r.stdout, /published recovery plan 1/);
      }
      const formed = await waitForCluster(fresh, { servers: 3, clients: 0, timeoutMs: 120_000 });
      const took = (Date.now() - t0) / 1000;
      if (policy === "new-cluster") {
        assert.ok(took >= WAIT_S, `not before W: ${took} s`);
      }
      assert.equal(await keysOn(formed.servers[0], false), 0, "a new, empty cluster");
      // The old servers come back: clients, data kept, the conflict said at error level.
      for (const n of old) n.start();
      await waitForCluster([...fresh, ...old], { servers: 3, clients: 3, timeoutMs: 90_000 });
      for (const n of old) {
        const said = n.logs(n.proc).find((l) => /was taken by/.test(l.msg));
        assert.ok(said, `${n.name} says its place was taken`);
        assert.ok((await Deno.stat(`${n.dataDir}/server/raft`)).isDirectory, "data dir kept");
      }
      console.log(`all servers lost (${policy}): new cluster ${took.toFixed(1)} s after the kill`);
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${nodes.tails()}`, { cause: err });
    }
  });
}

/**
 * Acceptance 2: the whole-site outage of acceptance 1 (every node down longer than every wait,
 * clients back first), but the servers come back on NEW addresses with their names and data →
 * raft still names the old addresses; the servers rewrite them (peers.json with every place
 * holder at its new address) → a leader (the time is printed: the issue asks for 15 s), 3
 * voters all at the new addresses, every server in its own place, 100/100.
 */
async function newAddresses(registry: string, env: Record<string, string>): Promise<void> {
  await withNodes(async (nodes) => {
    const s = spec(registry, env);
    try {
      const group = nodes.start(5, s);
      const view = await waitForCluster(group, { servers: 3, clients: 2 });
      await writeKeys(view.servers[0]);
      const reg = await inspectRegistry(registry, env);
      try {
        const slotsBefore = await readSlots(reg);
        await Promise.all(group.map((n) => n.kill9()));
        // Longer than every wait: W and the client patience (2 expiry windows).
        await sleep(2 * WAIT_S * 1000);
        for (const c of view.clients) c.start();
        await Promise.all(view.clients.map((c) =>
          waitFor(
            () => c.logs(c.proc).find((l) => /waiting for a server/.test(l.msg)),
            { what: `${c.name} says what it waits for`, timeoutMs: 30_000 },
          )
        ));
        const moved = view.servers.map((old) => {
          const n = new Node({
            name: old.name,
            ip: randomLoopbackIp(),
            dataDir: old.dataDir,
            spec: s,
          });
          nodes.all.push(n);
          return n;
        });
        const t0 = Date.now();
        for (const n of moved) n.start();
        const addrs = moved.map((n) => n.rpcAddr);
        await waitFor(async () => {
          const leaders = await Promise.all(
            moved.map((n) => n.client.leader().catch(() => undefined)),
          );
          return leaders.every((l) => l !== undefined && l === leaders[0] && addrs.includes(l));
        }, { what: "a leader among the moved servers", timeoutMs: 90_000, intervalMs: 100 });
        const leaderS = (Date.now() - t0) / 1000;
        // Generous: consul fixes a leader's own stale address only at its 60 s reconcile, and
        // autopilot promotes a re-added server 10-20 s after that (docs/recovery.md).
        const again = await waitForCluster([...moved, ...view.clients], {
          servers: 3,
          clients: 2,
          timeoutMs: 180_000,
        });
        const healthyS = (Date.now() - t0) / 1000;
        assert.deepEqual(
          again.servers.map((n) => n.name).sort(),
          moved.map((n) => n.name).sort(),
          "the old servers are the servers again, with their data",
        );
        assert.deepEqual(
          again.voters.filter((v) => v.voter).map((v) => v.address).sort(),
          [...addrs].sort(),
          "3 voters, each at its new address",
        );
        await checkKeys(again.servers);
        assert.deepEqual(await readSlots(reg), slotsBefore, "no place taken");
        const at = (re: RegExp) =>
          moved.flatMap((n) =>
            n.logged(re).map((l) => `${n.name} ${((l.ts - t0) / 1000).toFixed(1)}`)
          );
        console.log(
          `servers on new addresses (whole site, clients first): leader ${
            leaderS.toFixed(1)
          } s after they started, 3 voters at the new addresses and 5 members ${
            healthyS.toFixed(1)
          } s; plans published [${at(/published quorum recovery plan/)}], ` +
            `carried out [${at(/carrying out quorum recovery plan/)}]; load ${await loadAvg()}`,
        );
      } finally {
        reg.close();
      }
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${nodes.tails()}`, { cause: err });
    }
  });
}

/** The 1-minute load average (timings are noisy on a shared machine: printed with them). */
async function loadAvg(): Promise<string> {
  return (await Deno.readTextFile("/proc/loadavg").catch(() => "?")).split(" ")[0];
}

/**
 * Acceptance 2, second half: one server restarted at once on a new address (same name and
 * data) while the others run → a voter at its new address. Measures the time; consul refuses a
 * known name at a new address until 30 s after it marked the old one failed (memberlist's
 * DeadNodeReclaimTime), so this is not bounded by 15 s today.
 */
async function movedOne(registry: string, env: Record<string, string>): Promise<void> {
  await withNodes(async (nodes) => {
    const s = spec(registry, env);
    try {
      const group = nodes.start(4, s);
      const view = await waitForCluster(group, { servers: 3, clients: 1 });
      await writeKeys(view.servers[0]);
      const leaderAddr = view.leader;
      const old = view.servers.find((n) => n.rpcAddr !== leaderAddr)!;
      const oldId = (await old.client.self()).nodeId;
      await old.kill9();
      const moved = new Node({
        name: old.name,
        ip: randomLoopbackIp(),
        dataDir: old.dataDir,
        spec: s,
      });
      nodes.all.push(moved);
      const t0 = Date.now();
      moved.start();
      const others = view.servers.filter((n) => n !== old);
      await waitFor(async () => {
        const cfg = await others[0].client.raftConfiguration();
        return cfg.servers.some((v) => v.id === oldId && v.address === moved.rpcAddr && v.voter);
      }, { what: `${old.name} a voter at its new address`, timeoutMs: 120_000, intervalMs: 250 });
      const voterS = (Date.now() - t0) / 1000;
      const again = await waitForCluster([...others, moved, ...view.clients], {
        servers: 3,
        clients: 1,
        timeoutMs: 90_000,
      });
      await checkKeys(again.servers);
      const conflicts = others.flatMap((n) => n.logged(/Conflicting address for/)).length;
      console.log(
        `one server on a new address: a voter there ${voterS.toFixed(1)} s after it started ` +
          `(${conflicts} "Conflicting address" lines on the others)`,
      );
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${nodes.tails()}`, { cause: err });
    }
  });
}

async function folder(fn: (url: string, env: Record<string, string>) => Promise<void>) {
  const root = await Deno.makeTempDir({ prefix: "auto-consul-quorum-" });
  try {
    await fn(`file://${root}`, {});
  } finally {
    await Deno.remove(root, { recursive: true }).catch(() => {});
  }
}

function s3Env(s3: S3Server): Record<string, string> {
  return { ...s3.env, AWS_ENDPOINT_URL_S3: s3.endpoint };
}

for (let rep = 1; rep <= REPS; rep++) {
  Deno.test({
    name: `acceptance 2 (folder, rep ${rep}): every server back on a new address → leader, 100/100`,
    ignore: !FULL,
    fn: () => folder(newAddresses),
  });
  Deno.test({
    name: `acceptance 2 (folder, rep ${rep}): one server back on a new address → a voter there`,
    ignore: !FULL,
    fn: () => folder(movedOne),
  });
  Deno.test({
    name:
      `acceptance 4 (folder, rep ${rep}): all servers lost, policy wait, then recover --new-cluster`,
    ignore: !FULL,
    fn: () => folder((url, env) => allLost(url, env, "wait")),
  });
  Deno.test({
    name: `acceptance 4 (folder, rep ${rep}): all servers lost, policy new-cluster`,
    ignore: !FULL,
    fn: () => folder((url, env) => allLost(url, env, "new-cluster")),
  });
  Deno.test(`acceptance 3 (folder, rep ${rep}): two of three servers destroyed → rebuilt from the survivor`, async () => {
    await folder(quorumLost);
  });
  Deno.test(`acceptance 1 (folder, rep ${rep}): whole-site outage, clients back first → servers back with their data`, async () => {
    await folder(wholeSite);
  });
}

for (let rep = 1; rep <= REPS; rep++) {
  Deno.test({
    name: `acceptance 2 on S3 (rep ${rep}): every server back on a new address → leader, 100/100`,
    ignore: !FULL,
    fn: () =>
      withS3Server((s3) =>
        newAddresses(`s3://${s3.bucket}/moved/${crypto.randomUUID().slice(0, 8)}`, s3Env(s3))
      ),
  });
}

Deno.test({
  name: `acceptance 4 on S3 (${REPS} rep(s) of each policy): all servers lost`,
  ignore: !FULL,
  fn: async () => {
    await withS3Server(async (s3) => {
      for (let rep = 1; rep <= REPS; rep++) {
        const prefix = () => `s3://${s3.bucket}/lost/${crypto.randomUUID().slice(0, 8)}`;
        await allLost(prefix(), s3Env(s3), "wait");
        await allLost(prefix(), s3Env(s3), "new-cluster");
      }
    });
  },
});

Deno.test({
  name: `acceptance 3 and 1 on S3 (${REPS} rep(s) each)`,
  ignore: !FULL,
  fn: async () => {
    await withS3Server(async (s3) => {
      for (let rep = 1; rep <= REPS; rep++) {
        const prefix = () => `s3://${s3.bucket}/quorum/${crypto.randomUUID().slice(0, 8)}`;
        await quorumLost(prefix(), s3Env(s3));
        await wholeSite(prefix(), s3Env(s3));
      }
    });
  },
});
