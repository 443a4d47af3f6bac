/**
 * removeReplacedVoter (src/cluster/replace.ts, I1): the old holder of a stale place taken is
 * removed from raft by its node-id (by name without a record), never when it leads, retried
 * while the configuration cannot be read, and given up after its tries with a warning.
 */
import assert from "node:assert/strict";
import { removeReplacedVoter } from "../src/cluster/replace.ts";
import type { RaftConfiguration } from "../src/consul/types.ts";
import { ConsulError, ConsulUnreachableError } from "../src/errors.ts";
import { Logger } from "../src/log.ts";

const ID = "22222222-2222-4222-8222-222222222222";

function fake(
  opts: { leader?: boolean; failReads?: number; present?: boolean; denied?: boolean } = {},
) {
  let failReads = opts.failReads ?? 0;
  const removed: string[] = [];
  const sleeps: number[] = [];
  const lines: string[] = [];
  const servers = [
    { id: "11111111-1111-4111-8111-111111111111", node: "s0", address: "10.0.0.1:8300" },
    ...(opts.present === false ? [] : [{ id: ID, node: "s2", address: "10.0.0.3:8300" }]),
  ];
  const consul = {
    raftConfiguration: (): Promise<RaftConfiguration> => {
      if (failReads-- > 0) return Promise.reject(new ConsulUnreachableError("no leader (test)"));
      return Promise.resolve({
        servers: servers.map((s) => ({
          ...s,
          leader: s.node === "s2" ? opts.leader ?? false : !opts.leader,
          voter: true,
          protocolVersion: "3",
        })),
        index: 7,
      });
    },
    raftRemovePeer: (id: string): Promise<void> => {
      if (opts.denied) {
        return Promise.reject(
          new ConsulError("consul DELETE /v1/operator/raft/peer was refused by ACLs: 403", 403, ""),
        );
      }
      removed.push(id);
      return Promise.resolve();
    },
  };
  const log = new Logger({ level: "debug", format: "json", sink: (l) => lines.push(l) });
  const sleep = (ms: number) => {
    sleeps.push(ms);
    return Promise.resolve();
  };
  return { deps: { consul, sleep, log }, removed, sleeps, lines };
}

const TRIES = { attempts: 3, intervalMs: 1000 };
const signal = new AbortController().signal;

Deno.test("removeReplacedVoter: by node-id, by name without one, never the leader, absent is fine", async () => {
  const cases: [string, Parameters<typeof fake>[0], { node: string; nodeId?: string }, string][] = [
    ["by node-id (any case)", {}, { node: "other-name", nodeId: ID.toUpperCase() }, "removed"],
    ["by name without a record", {}, { node: "s2" }, "removed"],
    ["not in the configuration", { present: false }, { node: "s2", nodeId: ID }, "absent"],
    ["the leader is alive: kept", { leader: true }, { node: "s2", nodeId: ID }, "refused"],
  ];
  for (const [what, world, replaced, outcome] of cases) {
    const f = fake(world);
    assert.equal(await removeReplacedVoter(replaced, f.deps, TRIES, signal), outcome, what);
    assert.deepEqual(f.removed, outcome === "removed" ? [ID] : [], what);
  }
});

Deno.test("removeReplacedVoter: retried while the configuration cannot be read, then given up", async () => {
  const later = fake({ failReads: 2 });
  assert.equal(
    await removeReplacedVoter({ node: "s2", nodeId: ID }, later.deps, TRIES, signal),
    "removed",
  );
  assert.deepEqual(later.sleeps, [1000, 1000]);
  assert.deepEqual(later.removed, [ID]);

  const never = fake({ failReads: 99 });
  assert.equal(
    await removeReplacedVoter({ node: "s2", nodeId: ID }, never.deps, TRIES, signal),
    "failed",
  );
  assert.deepEqual(never.sleeps, [1000, 1000], "3 tries, 2 pauses");
  assert.deepEqual(never.removed, []);
  const warn = never.lines.map((l) => JSON.parse(l)).filter((l) => l.level === "warn");
  assert.equal(warn.length, 1);
  assert.match(warn[0].msg, /could not remove the raft voter of s2/);
  assert.match(warn[0].error, /no leader \(test\)/);
});

Deno.test("removeReplacedVoter: refused by ACLs → given up at once (asking again changes nothing)", async () => {
  const denied = fake({ denied: true });
  assert.equal(
    await removeReplacedVoter({ node: "s2", nodeId: ID }, denied.deps, TRIES, signal),
    "failed",
  );
  assert.deepEqual(denied.sleeps, [], "no second try");
  assert.match(denied.lines.map((l) => JSON.parse(l).msg).join("\n"), /could not remove/);
});
