/**
 * The start path's sequential depth must not grow back (issue 17): real `auto-consul run`
 * nodes on S3 (moto) behind the latency proxy of the benchmarks (`scripts/bench/s3_counter.ts`,
 * which records every request's start and end), each alone; of the requests made from launch
 * until "consul started", the longest chain in which each began after the previous ended
 * (`scripts/bench/critical_path.ts`). Counted, not timed: every request waits DELAY_MS at the
 * proxy, so requests sent together overlap and requests that waited for each other do not,
 * whatever the machine's load (two siblings would have to leave more than DELAY_MS apart: at
 * load 20 the SDK took 864 ms to send the second of two requests made together, so 2 s).
 *
 * What it measures, for whoever changes the start path: a new node that claims a place may
 * make 3 rounds of requests before its consul starts (the probe's two creates beside the
 * listings and reads; the claim), a new client 3 (its decision needs 2 rounds — listings, then
 * the servers' addresses — but the probe's two creates and the deletion of its key, which
 * nothing waits for, usually end before consul starts), a node starting again with its probe
 * answer remembered 2 and no probe at all. The issue's targets are 4 (new server) and 3
 * (client).
 */
import assert from "node:assert/strict";
import { heartbeatKey, slotKey } from "../../src/registry/layout.ts";
import { S3Registry } from "../../src/registry/s3.ts";
import { criticalPath, formatCriticalPath } from "../../scripts/bench/critical_path.ts";
import { nowMs, startS3Counter } from "../../scripts/bench/s3_counter.ts";
import { randomLoopbackIp } from "../harness/consul.ts";
import { type Node, withNodes } from "../harness/nodes.ts";
import { randomS3Ip, withS3Server } from "../harness/s3.ts";
import { waitFor } from "../harness/wait.ts";

const DELAY_MS = 2_000;
const SERVERS = 3;
/** The most rounds of requests before consul starts. */
const MAX_DEPTH = { claim: 3, client: 3, restart: 2 };

Deno.test("start path: sequential S3 requests before consul starts (counted through the proxy)", async (t) => {
  await withS3Server(async (s3) => {
    const proxy = startS3Counter(s3.endpoint, randomS3Ip(), { delayMs: DELAY_MS });
    const direct = new S3Registry({ bucket: s3.bucket, prefix: "held", endpoint: s3.endpoint });
    try {
      await withNodes(async (nodes) => {
        const env = { ...s3.env, AWS_ENDPOINT_URL_S3: proxy.endpoint };
        /** Starts `node`, waits for its consul, stops it: the requests until then. */
        const startPath = async (node: Node) => {
          proxy.reset();
          const launch = nowMs();
          const run = node.start();
          const started = await waitFor(
            () => node.logs(run).find((l) => l.msg === "consul started"),
            { timeoutMs: 90_000, what: `${node.name}: consul started`, intervalMs: 50 },
          );
          const until = started.ts + 1; // log stamps have ms resolution
          await node.stop();
          const records = proxy.records().filter((r) => r.start >= launch && r.end <= until);
          const path = formatCriticalPath(records, launch, until);
          // never a vacuous pass: every start reads the registry before its consul starts
          assert.ok(records.some((r) => r.kind === "LIST"), `no request counted:\n${path}`);
          return { records, path, depth: criticalPath(records).depth, mode: await node.mode() };
        };

        const claimer = nodes.create({
          registry: `s3://${s3.bucket}/fresh`,
          servers: SERVERS,
          env,
        });
        await t.step("a new node on an empty registry claims a place", async () => {
          const r = await startPath(claimer);
          assert.equal(r.mode, "server", r.path);
          assert.ok(r.depth <= MAX_DEPTH.claim, r.path);
          assert.equal(r.records.filter((x) => x.folder === "probe").length >= 2, true, r.path);
        });

        await t.step("the same node started again: probe remembered, place kept", async () => {
          const r = await startPath(claimer);
          assert.equal(r.mode, "server", r.path);
          assert.ok(r.depth <= MAX_DEPTH.restart, r.path);
          assert.deepEqual(r.records.filter((x) => x.folder === "probe"), [], r.path);
        });

        await t.step("a new node finds every place held by a live server: client", async () => {
          const now = new Date();
          for (let k = 0; k < SERVERS; k++) {
            const ip = new TextEncoder().encode(randomLoopbackIp());
            await direct.put(heartbeatKey("servers", now, `held-${k}`), ip);
            await direct.createIfAbsent(slotKey(k, 1), new TextEncoder().encode(`held-${k}`));
          }
          const client = nodes.create({
            registry: `s3://${s3.bucket}/held`,
            servers: SERVERS,
            env,
          });
          const r = await startPath(client);
          assert.equal(r.mode, "agent", r.path);
          assert.ok(r.depth <= MAX_DEPTH.client, r.path);
          // the servers' addresses were read once, for the decision and -retry-join alike, and
          // the places' fresh claims were not read: they could not change a newcomer's mode
          assert.equal(
            r.records.filter((x) => x.kind === "LIST" && x.folder === "servers").length,
            1,
            r.path,
          );
        });
      });
    } finally {
      direct.close();
      await proxy.stop();
    }
  });
});
