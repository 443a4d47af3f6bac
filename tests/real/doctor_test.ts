/**
 * `doctor` against real consul: a healthy 3+2 cluster has no finding; then the cluster is
 * broken step by step (a gem server, a dead server holding a place, a lost quorum, a voter serf
 * forgot) and each step's findings, evidence and advice are checked.
 */
import assert from "node:assert/strict";
import { Logger } from "../../src/log.ts";
import { FileRegistry } from "../../src/registry/file.ts";
import { writeHeartbeat } from "../../src/registry/heartbeats.ts";
import { runCli } from "../harness/cli.ts";
import { startAgent, withCluster } from "../harness/consul.ts";
import { doctorInProcess, findingsOf, gossipKey, ids, register } from "../harness/doctor.ts";
import { waitFor } from "../harness/wait.ts";

const log = new Logger({ level: "error" });

Deno.test("doctor on real consul: healthy 3+2 → exit 0 and no finding; each broken state → its finding", async (t) => {
  const root = await Deno.makeTempDir();
  const url = `file://${root}`;
  const registry = new FileRegistry({ root, log });
  const key = gossipKey();
  try {
    await withCluster(
      {
        servers: 3,
        clients: 2,
        // autopilot would remove a dead server from raft and serf within seconds: keep it, to
        // look at the state an operator sees before that (or with cleanup off).
        hcl: [`encrypt = "${key}"`, "autopilot { cleanup_dead_servers = false }"],
      },
      async (cluster) => {
        await register(registry, cluster.agents);
        const leader = await cluster.leader();
        const [s1, s2, s3] = [leader, ...cluster.servers.filter((s) => s !== leader)];

        await t.step("healthy 3+2: exit 0, no finding (CLI, text and --json)", async () => {
          const r = await runCli(["-r", url, "-s", "3", "doctor"], {
            env: { CONSUL_HTTP_ADDR: s1.httpAddr },
          });
          assert.equal(r.code, 0, r.stdout + r.stderr);
          assert.match(r.stdout, /no findings/);
          assert.match(
            r.stdout,
            new RegExp(
              `^doctor: checked agent ${s1.node} \\(server, consul 1\\.8\\.7, raft read\\); registry: 5 nodes, 3 places; data dir \\S+; -s 3$`,
              "m",
            ),
          );
          for (const a of [s2, cluster.clients[0]]) {
            const j = await doctorInProcess({ registry: url, httpAddr: a.httpAddr, servers: 3 });
            assert.deepEqual(ids(j), [], `${a.node}: ${JSON.stringify(j.findings, null, 1)}`);
            assert.equal(j.code, 0);
            assert.equal(j.json.healthy, true);
          }
        });

        await t.step("too-many-voters: 3 voters with -s 2", async () => {
          const j = await doctorInProcess({ registry: url, httpAddr: s1.httpAddr, servers: 2 });
          const [f] = findingsOf(j, "too-many-voters");
          assert.ok(f, JSON.stringify(ids(j)));
          assert.equal(f.severity, "warning");
          assert.equal(j.code, 5);
          assert.match(f.evidence.join("\n"), new RegExp(`voters: .*${s3.node}`));
          assert.match(f.next, /set_agent/);
        });

        await t.step("server-without-place: a live gem server heartbeat", async () => {
          const w = await writeHeartbeat(registry, {
            node: "gem-server",
            address: "192.0.2.10",
            dirs: ["servers", "agents"],
            now: new Date(),
          }, log);
          try {
            const j = await doctorInProcess({ registry: url, httpAddr: s1.httpAddr, servers: 3 });
            const [f] = findingsOf(j, "server-without-place");
            assert.ok(f, JSON.stringify(ids(j)));
            assert.match(f.title, /^gem-server heartbeats as a server but holds no server place/);
            assert.match(f.evidence[0], /-gem-server \(\d+ s old\), address 192\.0\.2\.10/);
            assert.match(f.next, /set_agent/);
            assert.equal(j.code, 5);
          } finally {
            await Promise.all(w.keys.map((k) => registry.delete(k)));
          }
        });

        await t.step(
          "name-conflict and catalog-reserved: a second machine with a client's name",
          async () => {
            const c1 = cluster.clients[1];
            const dup = await startAgent({
              server: false,
              node: c1.node,
              join: [s1.ip],
              hcl: [`encrypt = "${key}"`],
            });
            try {
              // seen from the duplicate: the catalog has its name for another machine, and its
              // registration loops ("Node name … is reserved by node …")
              const j = await waitFor(async () => {
                const r = await doctorInProcess({
                  registry: url,
                  httpAddr: dup.httpAddr,
                  servers: 3,
                });
                return findingsOf(r, "name-conflict").length &&
                    findingsOf(r, "catalog-reserved").length
                  ? r
                  : undefined;
              }, {
                what: "doctor on the duplicate to see the conflict",
                timeoutMs: 20_000,
                intervalMs: 250,
              });
              const [conflict] = findingsOf(j, "name-conflict");
              assert.equal(conflict.severity, "critical");
              assert.match(conflict.title, new RegExp(`belongs to another machine \\(${c1.ip}\\)`));
              assert.match(conflict.next, /-n NAME/);
              const [reserved] = findingsOf(j, "catalog-reserved");
              assert.match(
                reserved.evidence.join("\n"),
                new RegExp(`serf: ${c1.node} id \\S+ at ${dup.ip}`),
              );
              assert.match(reserved.next, /v1\/catalog\/deregister/);
              // seen from a server: the name heartbeats from the duplicate's address
              await writeHeartbeat(registry, {
                node: c1.node,
                address: dup.ip,
                dirs: ["agents"],
                now: new Date(Date.now() + 1000),
              }, log);
              const s = await doctorInProcess({ registry: url, httpAddr: s1.httpAddr, servers: 3 });
              const [seen] = findingsOf(s, "name-conflict");
              assert.ok(seen, JSON.stringify(ids(s)));
              assert.equal(seen.severity, "warning");
              assert.match(
                seen.title,
                new RegExp(`heartbeats from ${dup.ip}, but serf has ${c1.node} alive at ${c1.ip}`),
              );
            } finally {
              await dup.kill9(); // no leave: a leave in this name would take the real node with it
              await dup.dispose();
              await register(registry, [c1]);
            }
          },
        );

        // A server dies (no leave): serf calls it failed, raft still counts it.
        await s3.kill9();
        await waitFor(async () => {
          const m = (await s1.client.members()).find((x) => x.name === s3.node);
          return m?.status === "failed";
        }, { what: `serf to call ${s3.node} failed`, timeoutMs: 30_000, intervalMs: 250 });

        await t.step(
          "raft-voter-failed, place-holder-dead, too-few-live-servers: a dead server",
          async () => {
            const j = await waitFor(async () => {
              const r = await doctorInProcess({ registry: url, httpAddr: s1.httpAddr, servers: 3 });
              // autopilot may remove the dead voter at any time; read while it is still there
              return findingsOf(r, "raft-voter-failed").length &&
                  findingsOf(r, "autopilot-unhealthy").length
                ? r
                : undefined;
            }, { what: "doctor to see the failed voter", timeoutMs: 20_000, intervalMs: 200 });
            const [failed] = findingsOf(j, "raft-voter-failed");
            assert.match(
              failed.evidence.join("\n"),
              new RegExp(`serf: ${s3.node} ${s3.ip} failed`),
            );
            assert.match(failed.next, new RegExp(`consul force-leave ${s3.node}`));
            const [place] = findingsOf(j, "place-holder-dead");
            assert.ok(place, JSON.stringify(ids(j)));
            const k = cluster.servers.indexOf(s3);
            assert.match(place.evidence.join("\n"), new RegExp(`slots/${k} epoch 1: ${s3.node}`));
            assert.match(place.next, new RegExp(`start ${s3.node} again`));
            const [few] = findingsOf(j, "too-few-live-servers");
            assert.equal(few.severity, "warning", "2 of 3 alive is still a quorum");
            const [ap] = findingsOf(j, "autopilot-unhealthy");
            assert.match(
              ap.evidence.join("\n"),
              new RegExp(`${s3.node} ${s3.ip}:8300: serf \\w+, last contact`),
            );
            assert.match(few.evidence.join("\n"), new RegExp(`server ${s3.node} ${s3.ip}: failed`));
            assert.equal(j.code, 6);
          },
        );

        // Quorum lost: a second server dies; ask the survivor.
        await s2.kill9();
        await waitFor(async () => {
          const m = (await s1.client.members()).find((x) => x.name === s2.node);
          return m?.status === "failed" && (await s1.client.leader()) === undefined;
        }, {
          what: `${s1.node} to lose its leader and see ${s2.node} failed`,
          timeoutMs: 30_000,
          intervalMs: 250,
        });

        await t.step("no-leader: since when, and the recovery advice", async () => {
          const j = await doctorInProcess({ registry: url, httpAddr: s1.httpAddr, servers: 3 });
          const [f] = findingsOf(j, "no-leader");
          assert.ok(f, JSON.stringify(ids(j)));
          assert.equal(f.severity, "critical");
          const ev = f.evidence.join("\n");
          assert.match(ev, /answered "" \(no leader\)/);
          assert.match(ev, /raft state: (Candidate|Follower), last contact with a leader: \S+/);
          assert.match(
            ev,
            /raft voters: 3 \(1 alive in serf at their raft address\); a quorum needs 2/,
          );
          assert.match(
            f.next,
            /quorum is lost: on a surviving server run `auto-consul recover --dry-run`.*`auto-consul recover --yes`.*peers\.json/,
          );
          // the server's data dir: its serf snapshot's end state
          const snap = f.evidence.find((e) => e.startsWith("serf snapshot: "));
          assert.ok(snap, ev);
          assert.match(snap, new RegExp(`not alive [^;(]*${s3.node}`));
          assert.equal(j.code, 6);
          // from a client too, bounded although nothing can answer raft questions
          const c = await doctorInProcess({
            registry: url,
            httpAddr: cluster.clients[0].httpAddr,
            servers: 3,
          });
          assert.match(findingsOf(c, "no-leader")[0].evidence.join("\n"), /unknown from a client/);
        });

        await t.step(
          "raft-voter-not-in-serf: serf forgot a dead server (force-leave -prune)",
          async () => {
            // serf waits for the broadcast to go out, to nobody alive here: give it time
            await s1.client.forceLeave(s2.node, { prune: true, timeoutMs: 30_000 });
            const j = await waitFor(async () => {
              const r = await doctorInProcess({ registry: url, httpAddr: s1.httpAddr, servers: 3 });
              return findingsOf(r, "raft-voter-not-in-serf").length ? r : undefined;
            }, { what: `serf to forget ${s2.node}`, timeoutMs: 20_000, intervalMs: 250 });
            const [f] = findingsOf(j, "raft-voter-not-in-serf");
            assert.match(f.evidence[0], new RegExp(`\\(.*${s2.ip.replaceAll(".", "\\.")}:8300\\)`));
            assert.match(f.next, /force-leave cannot remove it without a leader/);
          },
        );
      },
    );
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
