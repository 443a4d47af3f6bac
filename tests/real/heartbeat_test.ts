/**
 * `heartbeat` against real consul agents (a server and a client) on the folder registry and
 * on the S3 server through the SDK; consul stopped → exit 1 and nothing written.
 */
import assert from "node:assert/strict";
import { runCli } from "../harness/cli.ts";
import { randomLoopbackIp, withCluster } from "../harness/consul.ts";
import { withS3Server } from "../harness/s3.ts";
import { ListObjectsV2Command } from "@aws-sdk/client-s3";

async function listTree(root: string, dir = ""): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  try {
    for await (const e of Deno.readDir(`${root}/${dir}`)) {
      const rel = dir ? `${dir}/${e.name}` : e.name;
      if (e.isDirectory) { for (const [k, v] of await listTree(root, rel)) out.set(k, v); }
      else out.set(rel, await Deno.readTextFile(`${root}/${rel}`));
    }
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  return out;
}

const KEY_RE = /^(servers|agents)\/(\d{14})-(.+)$/;

Deno.test("heartbeat: server writes servers/ and agents/, client agents/ only, older ones removed", async () => {
  const root = await Deno.makeTempDir();
  try {
    await withCluster({ servers: 1, clients: 1 }, async (cluster) => {
      const [server] = cluster.servers;
      const [client] = cluster.clients;
      const hb = (httpAddr: string) =>
        runCli(["-r", `file://${root}`, "heartbeat"], { env: { CONSUL_HTTP_ADDR: httpAddr } });

      let r = await hb(server.httpAddr);
      assert.equal(r.code, 0, r.stderr);
      r = await hb(client.httpAddr);
      assert.equal(r.code, 0, r.stderr);
      let tree = await listTree(root);
      const keys = [...tree.keys()].sort();
      assert.equal(keys.length, 3, keys.join(" "));
      const byDir = (d: string, node: string) =>
        keys.filter((k) => k.startsWith(`${d}/`) && k.endsWith(`-${node}`));
      assert.equal(byDir("servers", server.node).length, 1);
      assert.equal(byDir("agents", server.node).length, 1);
      assert.equal(byDir("agents", client.node).length, 1);
      assert.equal(byDir("servers", client.node).length, 0, "a client never writes servers/");
      // Bodies: the address consul reports (bind is 0.0.0.0 by default), as plain text.
      assert.equal(tree.get(byDir("servers", server.node)[0]), server.ip);
      assert.equal(tree.get(byDir("agents", client.node)[0]), client.ip);
      for (const k of keys) {
        const m = KEY_RE.exec(k);
        assert.ok(m, k);
        const stamp = m[2];
        const now = new Date();
        const t = Date.UTC(
          +stamp.slice(0, 4),
          +stamp.slice(4, 6) - 1,
          +stamp.slice(6, 8),
          +stamp.slice(8, 10),
          +stamp.slice(10, 12),
          +stamp.slice(12, 14),
        );
        assert.ok(Math.abs(now.getTime() - t) < 60_000, `stamp ${stamp} is UTC now`);
      }

      // A second heartbeat a second later replaces the first (own older heartbeats removed).
      await new Promise((r) => setTimeout(r, 1100));
      r = await hb(server.httpAddr);
      assert.equal(r.code, 0, r.stderr);
      tree = await listTree(root);
      const after = [...tree.keys()].sort();
      assert.equal(after.filter((k) => k.endsWith(`-${server.node}`)).length, 2, after.join(" "));
      assert.ok(!after.includes(byDir("servers", server.node)[0]), "the older server key is gone");
      assert.ok(after.includes(byDir("agents", client.node)[0]), "other nodes' keys untouched");

      // --advertise wins over what consul reports.
      r = await runCli([
        "-r",
        `file://${root}`,
        "--advertise",
        "10.9.8.7",
        "-n",
        "explicit-node",
        "heartbeat",
      ], {
        env: { CONSUL_HTTP_ADDR: client.httpAddr },
      });
      assert.equal(r.code, 0, r.stderr);
      tree = await listTree(root);
      const mine = [...tree.entries()].filter(([k]) => k.endsWith("-explicit-node"));
      assert.deepEqual(mine.map(([k, v]) => [k.split("/")[0], v]), [["agents", "10.9.8.7"]]);
    });
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("heartbeat with consul not running: exit 1, nothing written", async () => {
  const root = await Deno.makeTempDir();
  try {
    const r = await runCli(["-r", `file://${root}`, "heartbeat"], {
      env: { CONSUL_HTTP_ADDR: `${randomLoopbackIp()}:8500` },
    });
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /consul is not running/);
    assert.equal((await listTree(root)).size, 0);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("heartbeat on S3 through the SDK; registry failures exit 3 with a clear message", async () => {
  await withS3Server(async (s3) => {
    await withCluster({ servers: 1 }, async (cluster) => {
      const [server] = cluster.servers;
      const env = {
        ...s3.env,
        AWS_ENDPOINT_URL_S3: s3.endpoint,
        CONSUL_HTTP_ADDR: server.httpAddr,
      };
      const r = await runCli(["-r", `s3://${s3.bucket}/team/prod`, "heartbeat"], { env });
      assert.equal(r.code, 0, r.stderr);
      const listed = await s3.client.send(
        new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: "team/prod/" }),
      );
      const keys = (listed.Contents ?? []).map((o) => o.Key!).sort();
      assert.equal(keys.length, 2, keys.join(" "));
      assert.match(keys[0], new RegExp(`^team/prod/agents/\\d{14}-${server.node}$`));
      assert.match(keys[1], new RegExp(`^team/prod/servers/\\d{14}-${server.node}$`));

      const missing = await runCli(["-r", "s3://no-such-bucket-here/x", "heartbeat"], { env });
      assert.equal(missing.code, 3, missing.stderr);
      assert.match(missing.stderr, /no-such-bucket-here/);
      assert.match(missing.stderr, /does not exist|no such bucket/i);
    });
  });
});
