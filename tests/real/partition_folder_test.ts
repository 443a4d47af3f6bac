/** Partitions on the folder registry: see tests/harness/partition_suite.ts. */
import { withNodes } from "../harness/nodes.ts";
import { partitionSuite } from "../harness/partition_suite.ts";

Deno.test("partitions on the folder registry: invariants held, one healthy cluster after each heal", async () => {
  await withNodes(async (scratch) => {
    const root = await scratch.dir("registry");
    await partitionSuite("folder", `file://${root}`, () => ({}), {}, []);
  });
});
