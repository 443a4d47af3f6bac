/**
 * A registry that stays clean without `run` (issue 11, acceptance 6): the pure parts of the
 * one-shot heartbeat's purge (when, what, the memo), then a cron-only fleet with real consul
 * agents and the real CLI: nodes that stop keep no heartbeat after a bounded number of the
 * other nodes' heartbeat calls.
 */
import assert from "node:assert/strict";
import {
  MAX_PURGE_PER_CALL,
  nodeHash,
  parseMemo,
  PURGE_AFTER_EXPIRIES,
  PURGE_EVERY,
  purgeCandidates,
  purgeTurn,
} from "../../src/cluster/purge.ts";
import { parseListing } from "../../src/registry/heartbeats.ts";
import { formatStamp, HEARTBEAT_DIRS } from "../../src/registry/layout.ts";
import { runCli } from "../harness/cli.ts";
import { withCluster } from "../harness/consul.ts";

Deno.test("purgeTurn: exactly one call in PURGE_EVERY per node, spread across nodes", () => {
  const never = () => assert.fail("random is not used when there is a memo");
  for (const node of ["web-1", "web-2", "db-17", "a"]) {
    const turns = Array.from({ length: 5 * PURGE_EVERY }, (_, i) => purgeTurn(node, i + 1, never));
    assert.equal(turns.filter(Boolean).length, 5, node);
    const first = turns.indexOf(true);
    assert.ok(first < PURGE_EVERY, `${node}: a purge within the first ${PURGE_EVERY} calls`);
  }
  const offsets = new Set(
    Array.from({ length: 50 }, (_, i) => nodeHash(`node-${i}`) % PURGE_EVERY),
  );
  assert.ok(offsets.size >= 5, `nodes purge on different calls (${[...offsets]})`);
  // without a memo: a coin with probability 1/PURGE_EVERY
  assert.equal(purgeTurn("n", undefined, () => 0.05), true);
  assert.equal(purgeTurn("n", undefined, () => 0.5), false);
});

Deno.test("purgeCandidates: long-expired only, oldest first, bounded (table)", () => {
  const now = new Date("2026-06-01T12:00:00Z");
  const E = 60;
  const long = PURGE_AFTER_EXPIRIES * E;
  const ago = (s: number) => new Date(now.getTime() - s * 1000);
  const rows: [string, number, boolean][] = [
    ["live", 10, false],
    ["just expired (may still come back)", E + 5, false],
    ["expired for less than the grace", long - 1, false],
    ["long-expired", long + 1, true],
    ["ancient", 86400 * 30, true],
  ];
  const objects = rows.map(([node, age]) => ({
    key: `agents/${formatStamp(ago(age))}-${node.replaceAll(/[^a-z]/g, "")}`,
    lastModified: ago(age),
  }));
  const beats = parseListing("agents", objects, now, () => {});
  const got = purgeCandidates(beats, E).map((b) => b.node);
  assert.deepEqual(got, ["ancient", "longexpired"]);
  // bounded per call
  const many = Array.from({ length: 3 * MAX_PURGE_PER_CALL }, (_, i) => ({
    key: `agents/${formatStamp(ago(long + 10 + i))}-n${i}`,
    lastModified: ago(long + 10 + i),
  }));
  const bounded = purgeCandidates(parseListing("agents", many, now, () => {}), E);
  assert.equal(bounded.length, MAX_PURGE_PER_CALL);
  assert.equal(bounded[0].node, `n${3 * MAX_PURGE_PER_CALL - 1}`, "oldest first");
});

Deno.test("the memo: only this node's own heartbeat keys, never anyone else's", () => {
  const k = (dir: string, node: string) => `${dir}/20260601120000-${node}`;
  const text = JSON.stringify({
    node: "me",
    keys: [k("agents", "me"), k("servers", "me"), k("agents", "other"), "slots/0/0000000001", 7],
    count: 4,
  });
  assert.deepEqual(parseMemo(text, "me", HEARTBEAT_DIRS), {
    node: "me",
    keys: [k("agents", "me"), k("servers", "me")],
    count: 4,
  });
  assert.equal(parseMemo(text, "other", HEARTBEAT_DIRS), undefined, "another node's memo");
  for (const bad of [undefined, "", "{", "null", '{"node":"me","keys":"x","count":1}']) {
    assert.equal(parseMemo(bad, "me", HEARTBEAT_DIRS), undefined, String(bad));
  }
  assert.equal(parseMemo('{"node":"me","keys":[],"count":-1}', "me", HEARTBEAT_DIRS), undefined);
});

Deno.test("cron-only fleet: stopped nodes' heartbeats are gone after a bounded number of calls", async () => {
  const root = await Deno.makeTempDir({ prefix: "auto-consul-cron-" });
  const registry = `${root}/registry`;
  await Deno.mkdir(registry); // a folder registry must exist (it is never created by a command)
  const expiry = 1; // long-expired after PURGE_AFTER_EXPIRIES seconds
  try {
    await withCluster({ servers: 1, clients: 2 }, async (cluster) => {
      const agents = [...cluster.servers, ...cluster.clients];
      const beat = (i: number) =>
        runCli([
          "-r",
          `file://${registry}`,
          "-e",
          String(expiry),
          "-d",
          `${root}/d${i}`,
          "heartbeat",
        ], {
          env: { CONSUL_HTTP_ADDR: agents[i].httpAddr },
        });
      const keysOf = async (node: string) => {
        const out: string[] = [];
        for (const dir of HEARTBEAT_DIRS) {
          try {
            for await (const e of Deno.readDir(`${registry}/${dir}`)) {
              if (e.name.endsWith(`-${node}`)) out.push(`${dir}/${e.name}`);
            }
          } catch (err) {
            if (!(err instanceof Deno.errors.NotFound)) throw err;
          }
        }
        return out;
      };
      // Every node beats twice (cron); each keeps exactly its latest key (the memo), read right
      // after its own beat (another node's call may purge it once it is long expired: at load
      // 34 a round of CLI runs outlasted that).
      const written = new Map<string, number>(); // the stopped nodes' keys → their mtime
      for (let round = 0; round < 2; round++) {
        for (let i = 0; i < agents.length; i++) {
          const r = await beat(i);
          assert.equal(r.code, 0, r.stderr);
          if (round === 0) continue;
          const keys = await keysOf(agents[i].node);
          assert.equal(
            keys.length,
            i === 0 ? 2 : 1,
            i === 0 ? "the server: servers/ and agents/" : `client ${i}: agents/`,
          );
          if (i === 2) continue;
          for (const k of keys) {
            written.set(k, (await Deno.stat(`${registry}/${k}`)).mtime!.getTime());
          }
        }
      }
      // Nodes 0 (the server) and 1 stop beating; node 2 keeps its cron.
      const gone = [agents[0].node, agents[1].node];
      // Node 2 keeps beating (cron). Their heartbeats stay while they are not long-expired,
      // and are gone within PURGE_EVERY of node 2's calls once they are.
      const longMs = PURGE_AFTER_EXPIRIES * expiry * 1000;
      assert.equal(written.size, 3);
      const allLongExpiredAt = Math.max(...written.values()) + longMs + 1000;
      let callsAfter = 0; // node 2's calls started once all were surely long-expired
      let left = [...written.keys()];
      for (let i = 0; left.length > 0; i++) {
        assert.ok(i < 300 && callsAfter < PURGE_EVERY, `still there after ${callsAfter} calls`);
        const startedAt = Date.now();
        const r = await beat(2);
        assert.equal(r.code, 0, r.stderr);
        if (startedAt > allLongExpiredAt) callsAfter++;
        const now = (await Promise.all(gone.map(keysOf))).flat();
        for (const k of left.filter((k) => !now.includes(k))) {
          assert.ok(
            Date.now() - written.get(k)! > longMs,
            `${k} purged before it was long-expired`,
          );
        }
        left = now;
      }
      assert.ok(callsAfter <= PURGE_EVERY, `${callsAfter} calls`);
      console.log(`stopped nodes' heartbeats purged within ${callsAfter} calls of another node`);
      assert.equal((await keysOf(agents[2].node)).length, 1, "the live node keeps its one key");
    });
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
