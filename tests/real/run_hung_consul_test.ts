/**
 * Issue 15, build 2: a hung consul is restarted. `kill -STOP` of a server's and of a client's
 * consul (the process lives, its HTTP API stops answering): `run` logs it after
 * `--hang-timeout` (short here; at least 30 s by default), kills it and starts it again through
 * the supervisor, and the cluster is whole again. On the folder and the S3 registry.
 */
import assert from "node:assert/strict";
import { procStartTime } from "../../src/consul/pidfile.ts";
import { consulsOnDataDir } from "../harness/proc.ts";
import { type Node, withNodes } from "../harness/nodes.ts";
import { waitForCluster } from "../harness/cluster_view.ts";
import { withS3Server } from "../harness/s3.ts";
import { waitFor } from "../harness/wait.ts";

const HANG_S = 5;

async function hangAndRecover(node: Node, all: Node[]): Promise<void> {
  const hung = await node.waitConsulPid();
  Deno.kill(hung, "SIGSTOP");
  try {
    await node.waitConsulPid({ not: hung, timeoutMs: 90_000 });
    assert.equal(procStartTime(hung), undefined, "the hung consul was killed");
    const said = node.logged(/consul is alive but its HTTP API has not answered/);
    assert.equal(said.length, 1, node.tail());
    assert.equal(said[0].pid, hung);
    assert.ok(Number(said[0].silentSeconds) >= HANG_S, `silent ${said[0].silentSeconds} s`);
    // one consul on the data dir, the pidfile's: never two at any sample (the fresh one may
    // itself have been restarted by the time it is looked for — seen once at load 22)
    await waitFor(async () => {
      const pids = consulsOnDataDir(node.dataDir);
      assert.ok(pids.length <= 1, `two consuls on one data dir: ${pids}\n${node.tail()}`);
      const current = await node.consulPid();
      return pids.length === 1 && pids[0] === current;
    }, { what: `one consul on ${node.dataDir}, the one in its pidfile`, timeoutMs: 30_000 });
    assert.ok(node.running, "run lives on");
  } finally {
    try {
      Deno.kill(hung, "SIGCONT");
    } catch { /* killed */ }
  }
  await waitForCluster(all, { servers: 1, clients: 1, timeoutMs: 90_000 });
}

async function scenario(registry: string, env: Record<string, string> = {}): Promise<void> {
  await withNodes(async (nodes) => {
    const spec = {
      registry,
      servers: 1,
      env,
      flags: ["--hang-timeout", String(HANG_S)],
    };
    const server = nodes.create({ ...spec, prefix: "hs" });
    server.start();
    await waitForCluster([server], { servers: 1, clients: 0, timeoutMs: 60_000 });
    const client = nodes.create({ ...spec, prefix: "hc" });
    client.start();
    const all = [server, client];
    try {
      await waitForCluster(all, { servers: 1, clients: 1, timeoutMs: 60_000 });
      await hangAndRecover(server, all);
      await hangAndRecover(client, all);
      await waitFor(() => server.running && client.running, { what: "both runs alive" });
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${nodes.tails()}`, { cause: err });
    }
  });
}

Deno.test("SIGSTOP of a server's and a client's consul: restarted after --hang-timeout (folder registry)", async () => {
  await withNodes(async (nodes) => {
    const reg = await nodes.dir("registry");
    await scenario(`file://${reg}`);
  });
});

Deno.test("SIGSTOP of a server's and a client's consul: restarted after --hang-timeout (S3 registry)", async () => {
  await withS3Server(async (s3) => {
    await scenario(`s3://${s3.bucket}/hung`, { ...s3.env, AWS_ENDPOINT_URL_S3: s3.endpoint });
  });
});
