/** The critical path of a start (scripts/bench/critical_path.ts): pure, table-tested. */
import assert from "node:assert/strict";
import { criticalPath, formatCriticalPath } from "../scripts/bench/critical_path.ts";

const r = (start: number, end: number, kind = "GET", folder = "servers") => ({
  start,
  end,
  kind,
  folder,
  status: 200,
});

Deno.test("critical path: requests in parallel count once, one after the other add up", () => {
  const cases: { name: string; records: ReturnType<typeof r>[]; depth: number }[] = [
    { name: "nothing", records: [], depth: 0 },
    { name: "one", records: [r(0, 25)], depth: 1 },
    { name: "three at once", records: [r(0, 25), r(1, 26), r(2, 27)], depth: 1 },
    { name: "three in a row", records: [r(0, 25), r(25, 50), r(51, 76)], depth: 3 },
    {
      name: "probe beside the listings, then the reads",
      records: [r(0, 25, "PUT"), r(0, 25, "LIST"), r(1, 26, "LIST"), r(25, 50, "PUT"), r(27, 52)],
      depth: 2,
    },
    {
      name: "a long one beside two short ones",
      records: [r(0, 100), r(0, 25), r(30, 60)],
      depth: 2,
    },
    // input order does not matter
    { name: "unsorted", records: [r(51, 76), r(0, 25), r(25, 50)], depth: 3 },
  ];
  for (const c of cases) assert.deepEqual(criticalPath(c.records).depth, c.depth, c.name);
});

Deno.test("critical path: only requests inside the window count", () => {
  const records = [r(0, 25), r(30, 55), r(60, 85), r(90, 115)];
  assert.deepEqual(criticalPath(records, { from: 30, until: 85 }).depth, 2);
  assert.deepEqual(criticalPath(records, { until: 84 }).depth, 2);
  const cp = criticalPath(records, { from: 0, until: 200 });
  assert.deepEqual(cp.chain.map((x) => x.start), [0, 30, 60, 90]);
  assert.deepEqual(cp.requestMs, 100);
});

Deno.test("critical path: the printout names each step and what went beside it", () => {
  const text = formatCriticalPath(
    [r(10, 35, "PUT", "probe"), r(11, 36, "LIST", "slots"), r(40, 65, "PUT", "slots")],
    0,
    80,
  );
  assert.ok(text.includes("critical path: 2 requests one after the other"), text);
  assert.ok(text.includes("beside it: LIST slots"), text);
  assert.ok(text.includes("PUT slots, 25 ms"), text);
  assert.ok(text.includes("then local work 15 ms until consul started"), text);
});
