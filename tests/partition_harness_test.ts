/**
 * The partition harness itself (tests/harness/partition.ts), with real nftables rules on
 * loopback addresses this test owns: a cut really blocks a TCP connect between two listeners,
 * `heal` restores it, `isolate` keeps port 8500 open, and the table is gone after
 * `withPartitions`, also when the test body throws.
 */
import assert from "node:assert/strict";
import { randomLoopbackIp } from "./harness/consul.ts";
import { tableExists, withPartitions } from "./harness/partition.ts";

/** A TCP connect from the default source address (127.0.0.1 for a loopback destination). */
async function canConnect(to: string, port: number): Promise<boolean> {
  try {
    const conn = await Deno.connect({ hostname: to, port, signal: AbortSignal.timeout(1_500) });
    conn.close();
    return true;
  } catch {
    return false;
  }
}

/** A TCP connect from `from` (bound with a socket of Deno's node:net) to `to:port`. */
async function connectFrom(from: string, to: string, port: number): Promise<boolean> {
  const net = await import("node:net");
  return await new Promise((resolve) => {
    const sock = net.connect({ host: to, port, localAddress: from, timeout: 1_500 });
    sock.once("connect", () => {
      sock.destroy();
      resolve(true);
    });
    sock.once("timeout", () => {
      sock.destroy();
      resolve(false);
    });
    sock.once("error", () => resolve(false));
  });
}

Deno.test("partition harness: cut blocks, heal restores, isolate keeps 8500, table removed even on failure", async () => {
  const a = randomLoopbackIp();
  const b = randomLoopbackIp();
  const listeners = [
    Deno.listen({ hostname: b, port: 8300 }),
    Deno.listen({ hostname: b, port: 8500 }),
  ];
  const accepting = listeners.map(async (l) => {
    for await (const c of l) c.close();
  });
  let table = "";
  try {
    assert.ok(await connectFrom(a, b, 8300), "connect before any cut");
    await withPartitions(async (net) => {
      table = net.table;
      assert.ok(await tableExists(table));
      const cut = await net.cut([a], [b]);
      assert.equal(await net.ruleCount(), 2);
      assert.equal(await connectFrom(a, b, 8300), false, "a cut blocks the connect");
      await net.heal(cut);
      assert.equal(await net.ruleCount(), 0);
      assert.ok(await connectFrom(a, b, 8300), "heal restores it");

      await net.isolate(b, [a, b]);
      assert.equal(await connectFrom(a, b, 8300), false, "isolate blocks the consul port");
      assert.ok(await connectFrom(a, b, 8500), "isolate keeps the HTTP API port");
      assert.equal(await canConnect(b, 8300), false, "and 127.0.0.1 to consul ports");
    });
    assert.equal(await tableExists(table), false, "the table is deleted");
    assert.ok(await connectFrom(a, b, 8300), "nothing left behind");

    await assert.rejects(
      withPartitions(async (net) => {
        table = net.table;
        await net.cut([a], [b]);
        throw new Error("test body failed");
      }),
      /test body failed/,
    );
    assert.equal(await tableExists(table), false, "deleted when the body throws");
    assert.ok(await connectFrom(a, b, 8300), "no rule survives a failed test");
    await assert.rejects(
      withPartitions((net) => net.cut(["10.0.0.1"], [b])),
      /expected a 127\.x\.y\.z address/,
      "only loopback addresses are ever named",
    );
  } finally {
    listeners.forEach((l) => l.close());
    await Promise.allSettled(accepting);
  }
});
