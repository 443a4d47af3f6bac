/**
 * The quorum watch (src/cluster/quorum.ts) on servers restarted into an outage: consul 1.8
 * serves no raft read (not even `?stale`) on a server that has not heard from a leader since it
 * started, so the watch takes the raft configuration from the agent's own stats. Here every
 * server came back on a new address: the raft API fails, the stats name the old addresses, the
 * holder records the new ones → the watch publishes the address-rewrite plan and carries it out.
 */
import assert from "node:assert/strict";
import { writeRecord } from "../src/cluster/holder.ts";
import { watchQuorum } from "../src/cluster/quorum.ts";
import type { AgentSelf } from "../src/consul/types.ts";
import { ConsulError } from "../src/errors.ts";
import { Logger } from "../src/log.ts";
import { MemoryRegistry } from "./fakes/memory_registry.ts";

const id = (n: number) => `0000000${n}-aaaa-bbbb-cccc-000000000000`;

Deno.test("watchQuorum: servers all back on new addresses → plan from the agent's stats, carried out", async () => {
  let now = 0;
  const registry = new MemoryRegistry(() => now);
  const dataDir = await Deno.makeTempDir({ prefix: "auto-consul-quorum-watch-" });
  try {
    const config = [1, 2, 3].map((n) => `{Suffrage:Voter ID:${id(n)} Address:127.0.0.${n}:8300}`)
      .join(" ");
    let raftApiCalls = 0;
    const consul = {
      leader: () => Promise.resolve(undefined),
      self: () =>
        Promise.resolve({
          node: "s1",
          nodeId: id(1),
          raw: {
            Stats: {
              raft: {
                state: "Follower",
                last_log_index: "42",
                last_log_term: "9",
                latest_configuration: `[${config}]`,
              },
            },
          },
        } as unknown as AgentSelf),
      raftConfiguration: () => {
        raftApiCalls++;
        return Promise.reject(new ConsulError("No cluster leader", 500, "No cluster leader"));
      },
    };
    const writeAll = async () => {
      for (const n of [2, 3]) {
        await writeRecord(registry, {
          node: `s${n}`,
          nodeId: id(n),
          address: `127.0.1.${n}`,
          place: n - 1,
          epoch: 1,
          raft: { state: "Follower", lastIndex: 40, lastTerm: 8, leader: false, leaderFor: 0 },
        });
      }
    };
    const ticksMs = 1000;
    const stop = new AbortController();
    const result = await watchQuorum({
      node: "s1",
      address: "127.0.1.1",
      ticksMs,
      expirySeconds: 3,
      waitSeconds: 15,
      autoRecover: true,
      dataDir,
    }, {
      registry,
      consul,
      sleep: async () => {
        now += ticksMs;
        await writeAll();
        if (now > 60_000) stop.abort();
      },
      now: () => now,
      log: new Logger({ level: "error", sink: () => {} }),
    }, stop.signal);
    assert.ok(result, "a plan to carry out");
    assert.equal(result.plan.kind, "peers");
    assert.deepEqual(
      result.plan.survivors.map((s) => s.address).sort(),
      ["127.0.1.1", "127.0.1.2", "127.0.1.3"],
    );
    assert.match(result.peers, /127\.0\.1\.2:8300/);
    assert.ok(now <= 6_000, `decided after ${now} ms (3 ticks without a leader, then publish)`);
    assert.equal(raftApiCalls, 0, "the stats were enough: no raft API call");
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});
