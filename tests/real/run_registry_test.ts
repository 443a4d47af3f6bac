/**
 * Acceptance 7, 8 of `run` (issue 3): the registry misbehaving, with real `auto-consul run`
 * processes and real consul agents on loopback addresses.
 *
 * 7. A store that ignores the create-if-absent condition (`file:///path?ignore-conditions=1`
 *    simulates one) → `run` refuses with the documented message (exit 3, naming --advisory)
 *    and starts no consul; with `--advisory` it runs (the gem's placement).
 * 8. The S3 registry unreachable for 60 s while running (moto stopped, then started again on
 *    the same address and port, with the bucket created again: moto keeps nothing) → consul
 *    untouched (same pid, still an alive member, a leader throughout), the failures logged with
 *    backoff (a bounded number of warnings, spaced out), heartbeats resume afterwards, and `run`
 *    never exits because of it.
 */
import assert from "node:assert/strict";
import { ListObjectsV2Command } from "@aws-sdk/client-s3";
import { conditionsIgnoredMessage } from "../../src/cluster/mode.ts";
import { runCli } from "../harness/cli.ts";
import { consulsOnDataDir } from "../harness/proc.ts";
import { type LogLine, withNodes } from "../harness/nodes.ts";
import { waitForCluster } from "../harness/cluster_view.ts";
import { startS3Server } from "../harness/s3.ts";
import { waitFor } from "../harness/wait.ts";

const OUTAGE_MS = 60_000;

Deno.test("acceptance 7: a store that ignores conditional writes → run refuses and starts no consul; --advisory runs", async () => {
  await withNodes(async (nodes) => {
    const root = await nodes.dir("registry");
    const registry = `file://${root}?ignore-conditions=1`;
    try {
      const refused = nodes.create({ registry, servers: 1 });
      const r = await runCli(refused.argv(), { timeoutMs: 30_000 });
      assert.equal(r.code, 3, `exit code\n${r.stderr}`);
      assert.equal(r.stdout, "");
      const message = conditionsIgnoredMessage(`file://${root}?ignore-conditions=1`);
      assert.ok(r.stderr.includes(message), `the documented message:\n${r.stderr}`);
      assert.match(r.stderr, /pass --advisory for the gem's advisory placement/);
      assert.doesNotMatch(r.stderr, /consul started/);
      assert.equal(await refused.consulPid(), undefined, "no consul pidfile");
      assert.deepEqual(consulsOnDataDir(refused.dataDir), [], "no consul process");
      await assert.rejects(refused.client.self(), "no agent answers on its address");
      assert.equal(await refused.mode(), undefined, "no mode recorded");

      const advisory = nodes.create({ registry, servers: 1, flags: ["--advisory"] });
      advisory.start();
      await waitForCluster([advisory], { servers: 1, clients: 0, timeoutMs: 90_000 });
      assert.equal(await advisory.mode(), "server");
      assert.equal(
        advisory.logged(/ignores conditional writes: advisory placement/).length,
        1,
        advisory.tail(),
      );
      await waitFor(
        () =>
          [...Deno.readDirSync(`${root}/servers`)].some((e) =>
            e.name.endsWith(`-${advisory.name}`)
          ),
        { what: "a server heartbeat of the advisory node" },
      );
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${nodes.tails()}`, { cause: err });
    }
  });
});

/** Keys under `prefix/` in the bucket (empty when the server does not answer). */
async function listKeys(
  s3: { client: { send: (c: ListObjectsV2Command) => Promise<{ Contents?: { Key?: string }[] }> } },
  bucket: string,
  prefix: string,
): Promise<string[]> {
  const out = await s3.client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }));
  return (out.Contents ?? []).map((o) => o.Key!).sort();
}

Deno.test("acceptance 8: S3 unreachable for 60 s → consul untouched, backoff, heartbeats resume, run lives on", async () => {
  let s3 = await startS3Server();
  const { host, port, bucket } = s3;
  try {
    await withNodes(async (nodes) => {
      const spec = {
        registry: `s3://${bucket}/outage`,
        servers: 1,
        ticks: 5,
        expiry: 20,
        env: { ...s3.env, AWS_ENDPOINT_URL_S3: s3.endpoint },
      };
      try {
        const group = nodes.start(2, spec);
        const view = await waitForCluster(group, { servers: 1, clients: 1 });
        const pids = await Promise.all(group.map((n) => n.waitConsulPid()));
        const runPids = group.map((n) => n.proc.pid);
        await waitFor(async () => (await listKeys(s3, bucket, "outage/agents/")).length === 2, {
          what: "the heartbeats of both nodes",
          timeoutMs: 60_000,
        });

        // The outage: moto stops; 60 s later it is back at the same address, empty.
        await s3.stop();
        const down = Date.now();
        while (Date.now() - down < OUTAGE_MS) {
          await new Promise((r) => setTimeout(r, 5_000));
          await waitForCluster(group, { servers: 1, clients: 1, timeoutMs: 30_000 });
          for (const [i, n] of group.entries()) {
            assert.ok(n.running, `${n.name}: run lives on during the outage`);
            assert.equal(await n.consulPid(), pids[i], `${n.name}: consul untouched`);
          }
        }
        // moto keeps nothing: between its first answer and the bucket's creation a heartbeat
        // can meet "bucket does not exist" (a wider window on a loaded machine).
        const restarting = Date.now();
        s3 = await startS3Server({ host, port, bucket });
        const up = Date.now();

        // Heartbeats resume: both nodes' keys come back to the (empty) bucket.
        await waitFor(async () => {
          const keys = await listKeys(s3, bucket, "outage/");
          return group.every((n) =>
            keys.some((k) => k.startsWith("outage/agents/") && k.endsWith(`-${n.name}`))
          ) &&
            keys.some((k) =>
              k.startsWith("outage/servers/") && k.endsWith(`-${view.servers[0].name}`)
            );
        }, { what: "heartbeats after the outage", timeoutMs: 90_000, intervalMs: 250 });
        const resumedMs = Date.now() - up;
        await waitForCluster(group, { servers: 1, clients: 1 });
        // The keys are in the bucket before the log line that follows the write has come
        // through the pipe to this process: wait (bounded) for the line, then count.
        for (const n of group) {
          await waitFor(() => n.logged("heartbeats resumed").length >= 1, {
            what: `${n.name}: "heartbeats resumed" logged`,
            timeoutMs: 30_000,
          });
        }

        for (const [i, n] of group.entries()) {
          const why = n.tail();
          assert.ok(n.running, why);
          assert.equal(n.runs.length, 1);
          assert.equal(n.proc.pid, runPids[i]);
          assert.equal(await n.consulPid(), pids[i], `${n.name}: same consul`);
          assert.equal(n.logged("consul started").length, 1, why);
          assert.equal(n.logged("restarting consul").length, 0, why);
          assert.equal(n.logged("heartbeats resumed").length, 1, why);

          // Backoff: the warnings during the outage are few and spaced out (delays grow from
          // about 1 s to the tick of 5 s), not one per retry of a busy loop.
          const warnings = n.logged("heartbeat failed; retrying").filter((l) => l.ts >= down);
          const gaps = warnings.slice(1).map((w, j) => w.ts - warnings[j].ts);
          const report = `${n.name}: ${warnings.length} warnings, gaps ${gaps.join(" ")} ms`;
          console.log(report);
          assert.ok(warnings.length >= 5, `failures are logged: ${report}`);
          // 26 for the 60 s outage; moto's restart under load can make it last longer
          const outageMs = up - down;
          assert.ok(warnings.length <= Math.ceil(outageMs / 2_500) + 2, `bounded: ${report}`);
          assert.ok(gaps.every((g) => g >= 450), `spaced out: ${report}`);
          assert.ok(median(gaps) >= 2_000, `backing off: ${report}`);
          for (const w of warnings) {
            const why = w.ts >= restarting ? /unreachable|bucket .* does not exist/ : /unreachable/;
            assert.match(String(w.error), why, errorOf(w));
          }
        }
        console.log(`heartbeats resumed ${resumedMs} ms after the registry came back`);
        // Resumed within two ticks, in the node's own terms rather than by the wall clock of a
        // loaded machine: no retry delay is longer than the tick (5 s), and once the store is
        // back the next attempt writes (at most one attempt already under way fails).
        for (const n of group) {
          const failed = n.logged("heartbeat failed; retrying");
          const after = failed.filter((l) => l.ts >= up);
          assert.ok(
            after.length <= 1,
            `${n.name}: resumed within two ticks: ${after.length} failures after the store was back\n${n.tail()}`,
          );
          for (const w of failed) {
            assert.ok(
              Number(w.retryInMs) <= 5_000,
              `${n.name}: a retry waits at most a tick: ${errorOf(w)}`,
            );
          }
        }
      } catch (err) {
        throw new Error(`${(err as Error).message}\n${nodes.tails()}`, { cause: err });
      }
    });
  } finally {
    await s3.stop();
  }
});

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? 0 : s[Math.floor(s.length / 2)];
}

function errorOf(l: LogLine): string {
  return JSON.stringify(l);
}
