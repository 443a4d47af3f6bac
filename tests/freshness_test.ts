/**
 * Freshness that no clock can fool (issue 11, acceptance 7): a heartbeat is live only when the
 * store's time says it was written within the expiry AND its key's stamp is within the expiry
 * plus the skew allowance of the store's clock. Table tests of the pure rule and of a parsed
 * listing, then the folder registry with a future mtime and an old stamp.
 */
import assert from "node:assert/strict";
import {
  expired,
  freshestPerNode,
  heartbeatAge,
  liveMembers,
  MAX_CLOCK_SKEW_SECONDS,
  parseListing,
  readHeartbeats,
} from "../src/registry/heartbeats.ts";
import { formatStamp } from "../src/registry/layout.ts";
import { openRegistry } from "../src/registry/open.ts";
import { captureLog } from "./registry/fixtures.ts";

const E = 120;
const S = MAX_CLOCK_SKEW_SECONDS;
const NOW = new Date("2026-06-01T12:00:00Z");
const ago = (s: number) => new Date(NOW.getTime() - s * 1000);

Deno.test("the skew allowance is bounded (30 s)", () => {
  assert.equal(S, 30);
});

Deno.test("heartbeatAge: live only when store time AND key stamp say so (table)", () => {
  const rows: [string, number, number, boolean][] = [
    // what, store age s, stamp age s, live at -e 120
    ["both fresh", 5, 5, true],
    ["both at the expiry", E, E, true],
    ["store time one second past the expiry", E + 1, 0, false],
    ["stamp late by the skew allowance (writer's clock behind)", 1, E + S, true],
    ["stamp past expiry + skew", 1, E + S + 1, false],
    ["a key stamped in 2020, touched now", 0, 6 * 365 * 86400, false],
    ["store time 2099 (touch -d 2099-01-01), old stamp", -73 * 365 * 86400, 6 * 365 * 86400, false],
    ["store time 2099, fresh stamp", -73 * 365 * 86400, 0, false],
    ["store time in the future within the allowance", -S, 0, true],
    ["store time in the future beyond the allowance", -S - 1, 0, false],
    ["stamp in the future within the allowance (writer's clock ahead)", 0, -S, true],
    ["stamp in the future beyond the allowance", 0, -S - 1, false],
    ["stamp in 2099, store fresh", 0, -73 * 365 * 86400, false],
    ["not a number", NaN, 0, false],
  ];
  for (const [what, store, stamp, live] of rows) {
    const age = heartbeatAge(store, stamp);
    assert.equal(age <= E, live, `${what}: age ${age}`);
    assert.ok(age >= 0, `${what}: an age is never negative (${age})`);
  }
  // The age is the larger of the two clocks' verdicts.
  assert.equal(heartbeatAge(10, 50), 20);
  assert.equal(heartbeatAge(50, 10), 50);
  assert.equal(heartbeatAge(-5, -5), 0);
  assert.equal(heartbeatAge(0, 100, 0), 100, "skew 0: the stamp alone decides");
});

Deno.test("parseListing → freshestPerNode/expired apply both clocks (table)", () => {
  type Row = { node: string; stamp: Date; lastModified: Date; live: boolean };
  const rows: Row[] = [
    { node: "fresh", stamp: ago(3), lastModified: ago(3), live: true },
    {
      node: "old-stamp",
      stamp: new Date("2020-01-01T00:00:00Z"),
      lastModified: ago(1),
      live: false,
    },
    {
      node: "future-mtime",
      stamp: ago(500),
      lastModified: new Date("2099-01-01T00:00:00Z"),
      live: false,
    },
    { node: "clock-behind", stamp: ago(E + 20), lastModified: ago(2), live: true },
    {
      node: "clock-ahead",
      stamp: new Date(NOW.getTime() + 20_000),
      lastModified: ago(2),
      live: true,
    },
    {
      node: "clock-far-ahead",
      stamp: new Date(NOW.getTime() + 3600_000),
      lastModified: ago(2),
      live: false,
    },
    { node: "store-old", stamp: ago(1), lastModified: ago(E + 1), live: false },
  ];
  const objects = rows.map((r) => ({
    key: `servers/${formatStamp(r.stamp)}-${r.node}`,
    lastModified: r.lastModified,
  }));
  const beats = parseListing("servers", objects, NOW, (k) => assert.fail(`warned about ${k}`));
  const live = freshestPerNode(beats, E).map((b) => b.node).sort();
  assert.deepEqual(live, rows.filter((r) => r.live).map((r) => r.node).sort());
  const dead = expired(beats, E).map((b) => b.node).sort();
  assert.deepEqual(dead, rows.filter((r) => !r.live).map((r) => r.node).sort());
});

Deno.test("freshestPerNode: per node the lowest age wins, not the latest store time", () => {
  const objects = [
    // a stale copy whose file was touched into the future: not believed
    { key: `agents/${formatStamp(ago(400))}-n1`, lastModified: new Date("2099-01-01T00:00:00Z") },
    { key: `agents/${formatStamp(ago(10))}-n1`, lastModified: ago(10) },
    { key: `agents/${formatStamp(ago(2))}-n2`, lastModified: ago(2) },
  ];
  const beats = parseListing("agents", objects, NOW, () => {});
  const fresh = freshestPerNode(beats, E);
  assert.deepEqual(fresh.map((b) => [b.node, b.ageSeconds]), [["n2", 2], ["n1", 10]]);
});

Deno.test("folder registry: a future mtime with an old stamp is not live, and is purgeable", async () => {
  const dir = await Deno.makeTempDir({ prefix: "auto-consul-freshness-" });
  const { log } = captureLog();
  const registry = await openRegistry(`file://${dir}`, { log });
  try {
    const body = new TextEncoder().encode("10.1.2.3");
    const now = new Date();
    const oldKey = `servers/20200101000000-touched`;
    const futureKey = `servers/${formatStamp(now)}-future`;
    const goodKey = `servers/${formatStamp(now)}-good`;
    for (const k of [oldKey, futureKey, goodKey]) await registry.put(k, body);
    const future = new Date("2099-01-01T00:00:00Z");
    // `touch -d 2099-01-01`: the old-stamped one and a fresh-stamped one
    await Deno.utime(`${dir}/${oldKey}`, future, future);
    await Deno.utime(`${dir}/${futureKey}`, future, future);

    const listed = await readHeartbeats(registry, "servers", log);
    assert.equal(listed.length, 3, "all three are listed");
    const byNode = new Map(listed.map((h) => [h.node, h]));
    assert.equal(byNode.get("touched")!.lastModified.getUTCFullYear(), 2099, "mtime is 2099");
    const live = await liveMembers(registry, "servers", E, log);
    assert.deepEqual(live.map((m) => m.node), ["good"]);
    assert.deepEqual(
      expired(listed, E).map((h) => h.key).sort(),
      [oldKey, futureKey].sort(),
      "both untrusted heartbeats are purge candidates",
    );
  } finally {
    registry.close();
    await Deno.remove(dir, { recursive: true });
  }
});
