/**
 * `doctor` on one machine's own state, with real consul: a server's leave settings and gossip
 * encryption, raft/peers.json in its data dir, server raft data under a client, an agent or a
 * registry that does not answer, and servers started with different bootstrap_expect.
 */
import assert from "node:assert/strict";
import { Logger } from "../../src/log.ts";
import { FileRegistry } from "../../src/registry/file.ts";
import { runCli } from "../harness/cli.ts";
import { randomLoopbackIp, startAgent, withAgent } from "../harness/consul.ts";
import { doctorInProcess, findingsOf, ids, register } from "../harness/doctor.ts";
import { waitFor } from "../harness/wait.ts";

const log = new Logger({ level: "error" });

Deno.test("doctor on this machine: leave settings, encryption, peers.json, server data under a client, nothing answering", async (t) => {
  const root = await Deno.makeTempDir();
  const url = `file://${root}`;
  const d = await Deno.makeTempDir(); // auto-consul's -d: consul's server data in <d>/server
  try {
    await withAgent({
      server: true,
      dataDir: `${d}/server`,
      hcl: ["leave_on_terminate = true"],
    }, async (server) => {
      await waitFor(() => server.client.leader(), { what: "a leader", timeoutMs: 20_000 });
      await register(new FileRegistry({ root, log }), [server]);

      await t.step("leave-on-signal and no-gossip-encryption on a server", async () => {
        const j = await doctorInProcess({ registry: url, httpAddr: server.httpAddr, servers: 1 });
        assert.deepEqual(ids(j).sort(), [
          "warning:leave-on-signal",
          "warning:no-gossip-encryption",
        ]);
        assert.equal(j.code, 5);
        const [leave] = findingsOf(j, "leave-on-signal");
        assert.deepEqual(leave.evidence, [
          "DebugConfig: leave_on_terminate = true (leaves on SIGTERM)",
        ]);
        assert.match(leave.next, /config dir given with -c/);
        const [enc] = findingsOf(j, "no-gossip-encryption");
        assert.match(enc.evidence[0], /Stats\.serf_lan\.encrypted = false/);
        assert.match(enc.next, /consul keygen.*--gossip-key-file/);
      });

      await t.step("peer-set-degenerate: raft/peers.json holding null", async () => {
        const peers = `${d}/server/raft/peers.json`;
        await Deno.writeTextFile(peers, "null\n");
        try {
          const j = await doctorInProcess({ registry: url, httpAddr: server.httpAddr, servers: 1 });
          const [f] = findingsOf(j, "peer-set-degenerate");
          assert.ok(f, JSON.stringify(ids(j)));
          assert.equal(f.severity, "critical");
          assert.equal(f.evidence[0], `${d}/server/raft/peers.json: null`);
          assert.match(f.next, /write every live server into it/);
          assert.equal(j.code, 6);
        } finally {
          await Deno.remove(peers);
        }
      });

      await t.step(
        "peers-json-pending: a complete peers.json waiting for the restart",
        async () => {
          const peers = `${d}/server/raft/peers.json`;
          const id = (await Deno.readTextFile(`${d}/server/node-id`)).trim();
          await Deno.writeTextFile(
            peers,
            JSON.stringify([{ id, address: server.rpcAddr, non_voter: false }]),
          );
          try {
            const j = await doctorInProcess({
              registry: url,
              httpAddr: server.httpAddr,
              servers: 1,
            });
            const [f] = findingsOf(j, "peers-json-pending");
            assert.ok(f, JSON.stringify(ids(j)));
            assert.equal(f.severity, "info");
            assert.ok(f.evidence[0].includes(id));
            assert.equal(j.code, 5, "info alone does not change the exit code (the warnings do)");
          } finally {
            await Deno.remove(peers);
          }
        },
      );
    });

    await t.step("client-with-server-data: a client over a former server's raft data", async () => {
      // the server above is stopped; its raft data stays in <d>/server
      await withAgent({ server: false }, async (client) => {
        const j = await doctorInProcess({
          registry: url,
          httpAddr: client.httpAddr,
          servers: 1,
          dataDir: d,
        });
        const [f] = findingsOf(j, "client-with-server-data");
        assert.ok(f, JSON.stringify(ids(j)));
        assert.match(
          f.evidence[0],
          new RegExp(`^${d}/server/raft/raft\\.db exists \\(node-id \\S+\\)$`),
        );
        assert.match(f.evidence[1], new RegExp(`the local agent ${client.node} runs as a client`));
        assert.match(f.next, /set_server/);
      });
    });

    await t.step("agent-unreachable: nothing listens at --http-addr (CLI: exit 6)", async () => {
      const r = await runCli(["-r", url, "-d", d, "doctor"], {
        env: { CONSUL_HTTP_ADDR: `${randomLoopbackIp()}:8500` },
      });
      assert.equal(r.code, 6, r.stdout + r.stderr);
      assert.match(r.stdout, /^CRITICAL agent-unreachable: /m);
      assert.match(r.stdout, /next: .*--http-addr/);
      // the data dir was still read: the stopped server's data under a recorded client mode
    });

    await t.step(
      "registry-unreadable: an S3 endpoint that refuses connections (--json)",
      async () => {
        const r = await runCli(
          [
            "-r",
            "s3://no-bucket/prefix",
            "--s3-endpoint",
            `http://${randomLoopbackIp()}:9`,
            "doctor",
            "--json",
          ],
          {
            env: {
              CONSUL_HTTP_ADDR: `${randomLoopbackIp()}:8500`,
              AWS_ACCESS_KEY_ID: "test",
              AWS_SECRET_ACCESS_KEY: "test",
            },
            timeoutMs: 60_000,
          },
        );
        assert.equal(r.code, 6, r.stderr);
        const out = JSON.parse(r.stdout);
        assert.equal(out.registry.readable, false);
        const f = out.findings.find((x: { id: string }) => x.id === "registry-unreadable");
        assert.ok(f, r.stdout);
        assert.match(f.next, /-r URL/);
      },
    );
  } finally {
    await Deno.remove(root, { recursive: true });
    await Deno.remove(d, { recursive: true });
  }
});

Deno.test("doctor: servers started with different bootstrap_expect never elect; doctor says why", async () => {
  const root = await Deno.makeTempDir();
  const [ipA, ipB] = [randomLoopbackIp(), randomLoopbackIp()];
  const a = await startAgent({ server: true, ip: ipA, bootstrapExpect: 2, join: [ipB] });
  try {
    const b = await startAgent({ server: true, ip: ipB, bootstrapExpect: 3, join: [ipA] });
    try {
      await waitFor(async () => {
        const alive = (await a.client.members()).filter((m) => m.isServer && m.status === "alive");
        return alive.length === 2;
      }, { what: "both servers in serf", timeoutMs: 20_000 });
      await register(new FileRegistry({ root, log }), [a, b]);
      const j = await doctorInProcess({
        registry: `file://${root}`,
        httpAddr: a.httpAddr,
        servers: 2,
      });
      const [f] = findingsOf(j, "bootstrap-expect-differs");
      assert.ok(f, JSON.stringify(ids(j)));
      assert.deepEqual(f.evidence.sort(), [`expect=2: ${a.node}`, `expect=3: ${b.node}`]);
      assert.match(f.next, /same -s/);
      assert.ok(findingsOf(j, "no-leader").length === 1, JSON.stringify(ids(j)));
      // neither bootstrapped: the raft peer set is empty (read from the server's own copy)
      const [empty] = findingsOf(j, "peer-set-degenerate");
      assert.ok(empty, JSON.stringify(ids(j)));
      assert.match(empty.evidence[0], /: \[\]$/);
      assert.equal(j.code, 6);
    } finally {
      await b.dispose();
    }
  } finally {
    await a.dispose();
    await Deno.remove(root, { recursive: true });
  }
});
