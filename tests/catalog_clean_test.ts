/**
 * The stale catalog entry of a node back with a wiped data dir (src/cluster/catalog_clean.ts):
 * the pure decider's table, and the loop against a scripted agent (it removes only a stale
 * entry, only once a leader exists, and never another live agent's).
 */
import assert from "node:assert/strict";
import {
  type CatalogVerdict,
  cleanCatalog,
  staleCatalogEntry,
} from "../src/cluster/catalog_clean.ts";
import type { AgentSelf, CatalogNode, SerfMember } from "../src/consul/types.ts";
import { Logger } from "../src/log.ts";

const NEW = "11111111-1111-1111-1111-111111111111";
const OLD = "22222222-2222-2222-2222-222222222222";
const OTHER = "33333333-3333-3333-3333-333333333333";

function member(
  name: string,
  id: string | undefined,
  status: SerfMember["status"] = "alive",
): SerfMember {
  return {
    name,
    addr: "127.0.0.9",
    port: 8301,
    status,
    statusCode: status === "alive" ? 1 : 4,
    isServer: true,
    tags: id ? { id, role: "consul" } : { role: "consul" },
  };
}
const entry = (id: string): CatalogNode => ({ id, node: "s1", address: "127.0.0.9" });

Deno.test("staleCatalogEntry: removes only a former incarnation of this node", () => {
  const cases: {
    name: string;
    members: SerfMember[];
    entry: CatalogNode | undefined;
    want: CatalogVerdict["kind"];
  }[] = [
    { name: "no entry yet", members: [member("s1", NEW)], entry: undefined, want: "clean" },
    {
      name: "the entry is this agent's",
      members: [member("s1", NEW)],
      entry: entry(NEW),
      want: "clean",
    },
    { name: "an entry without ID", members: [member("s1", NEW)], entry: entry(""), want: "clean" },
    {
      name: "wiped data dir: old ID, serf has the name as this agent",
      members: [member("s1", NEW), member("s2", OTHER)],
      entry: entry(OLD),
      want: "stale",
    },
    {
      name: "serf does not list this name yet",
      members: [member("s2", OTHER)],
      entry: entry(OLD),
      want: "wait",
    },
    {
      name: "serf has the name under the old ID (another machine holds it)",
      members: [member("s1", OLD)],
      entry: entry(OLD),
      want: "wait",
    },
    {
      name: "serf shows this name failed",
      members: [member("s1", NEW, "failed")],
      entry: entry(OLD),
      want: "wait",
    },
    {
      name: "the entry's ID is a live member under another name (renamed machine)",
      members: [member("s1", NEW), member("s9", OLD)],
      entry: entry(OLD),
      want: "foreign",
    },
    {
      name: "the entry's ID is a failed member: still another agent's",
      members: [member("s1", NEW), member("s9", OLD, "failed")],
      entry: entry(OLD),
      want: "foreign",
    },
  ];
  for (const c of cases) {
    const v = staleCatalogEntry({ node: "s1", nodeId: NEW, members: c.members, entry: c.entry });
    assert.equal(v.kind, c.want, c.name);
  }
});

/** A scripted agent: `leaders` answers in turn (then the last), a catalog entry, serf members. */
function agent(
  init: { leaders: (string | undefined)[]; entry?: CatalogNode; members: SerfMember[] },
) {
  const calls = { deregister: [] as string[], catalogReads: 0 };
  let turn = 0;
  let current = init.entry;
  const consul = {
    leader: () => Promise.resolve(init.leaders[Math.min(turn++, init.leaders.length - 1)]),
    self: () => Promise.resolve({ node: "s1", nodeId: NEW, raw: {} } as unknown as AgentSelf),
    members: () => Promise.resolve(init.members),
    catalogNode: () => {
      calls.catalogReads++;
      return Promise.resolve(current);
    },
    catalogDeregister: (node: string) => {
      calls.deregister.push(node);
      current = undefined;
      return Promise.resolve();
    },
  };
  return { consul, calls };
}

const quiet = () => new Logger({ level: "error", sink: () => {} });

Deno.test("cleanCatalog: waits for a leader, then removes the stale entry once", async () => {
  const { consul, calls } = agent({
    leaders: [undefined, undefined, "127.0.0.2:8300"],
    entry: entry(OLD),
    members: [member("s1", NEW)],
  });
  let slept = 0;
  const lines: string[] = [];
  const log = new Logger({ level: "warn", sink: (l) => lines.push(l) });
  const v = await cleanCatalog({ node: "s1", ticksMs: 1000 }, {
    consul,
    sleep: () => Promise.resolve(void slept++),
    log,
  }, new AbortController().signal);
  assert.equal(v?.kind, "stale");
  assert.equal(slept, 2, "two ticks without a leader");
  assert.equal(calls.catalogReads, 1, "no catalog read before a leader");
  assert.deepEqual(calls.deregister, ["s1"]);
  assert.match(lines.join("\n"), /removed the stale catalog entry of s1 \(node ID 2222/);
});

Deno.test("cleanCatalog: never removes another live agent's entry; a clean catalog ends at once", async () => {
  const foreign = agent({
    leaders: ["127.0.0.2:8300"],
    entry: entry(OLD),
    members: [member("s1", NEW), member("s9", OLD)],
  });
  const deps = { sleep: () => Promise.resolve(), log: quiet() };
  const signal = new AbortController().signal;
  assert.equal(
    (await cleanCatalog({ node: "s1", ticksMs: 1 }, { ...deps, consul: foreign.consul }, signal))
      ?.kind,
    "foreign",
  );
  assert.deepEqual(foreign.calls.deregister, []);

  const clean = agent({ leaders: ["x:8300"], entry: entry(NEW), members: [member("s1", NEW)] });
  assert.equal(
    (await cleanCatalog({ node: "s1", ticksMs: 1 }, { ...deps, consul: clean.consul }, signal))
      ?.kind,
    "clean",
  );
  assert.equal(clean.calls.catalogReads, 1);
});

Deno.test("cleanCatalog: an undecidable entry is looked at maxChecks times, then left alone", async () => {
  const { consul, calls } = agent({
    leaders: ["x:8300"],
    entry: entry(OLD),
    members: [member("s1", OLD)],
  });
  const v = await cleanCatalog({ node: "s1", ticksMs: 1, maxChecks: 5 }, {
    consul,
    sleep: () => Promise.resolve(),
    log: quiet(),
  }, new AbortController().signal);
  assert.equal(v, undefined);
  assert.equal(calls.catalogReads, 5);
  assert.deepEqual(calls.deregister, []);
});
