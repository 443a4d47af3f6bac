/**
 * The Registry contract: what every backend must do, run against each of them by
 * `registry_contract_test.ts`.
 */
import assert from "node:assert/strict";
import { probeConditionalWrites } from "../../src/registry/probe.ts";
import type { Backend, Fixture } from "./fixtures.ts";

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array | undefined) =>
  b === undefined ? undefined : new TextDecoder().decode(b);

export async function withFixture(
  backend: Backend,
  fn: (fx: Fixture) => Promise<void>,
  opts?: Parameters<Backend["fresh"]>[0],
): Promise<void> {
  const fx = await backend.fresh(opts);
  try {
    await fn(fx);
  } finally {
    fx.registry.close();
  }
}

export async function contractSuite(t: Deno.TestContext, backend: Backend): Promise<void> {
  await t.step(
    "empty registry lists nothing, with the store's clock",
    () =>
      withFixture(backend, async ({ registry }) => {
        const before = Date.now();
        const listing = await registry.list("servers/");
        assert.deepEqual(listing.objects, []);
        assert.ok(Math.abs(listing.storeNow.getTime() - before) < 60_000, "storeNow near now");
        assert.equal(await registry.get("servers/none", 256), undefined);
      }),
  );

  await t.step(
    "put, get, overwrite, list by folder and by prefix",
    () =>
      withFixture(backend, async ({ registry }) => {
        await registry.put("servers/a", enc("one"));
        await registry.put("servers/b", enc("two"));
        await registry.put("agents/a", enc("three"));
        await registry.put("servers/a", enc("uno"));
        assert.equal(dec(await registry.get("servers/a", 256)), "uno");
        const servers = await registry.list("servers/");
        assert.deepEqual(servers.objects.map((o) => [o.key, o.size]), [["servers/a", 3], [
          "servers/b",
          3,
        ]]);
        for (const o of servers.objects) {
          const skew = Math.abs(o.lastModified.getTime() - servers.storeNow.getTime());
          assert.ok(skew < 60_000, `lastModified of ${o.key} near storeNow`);
        }
        assert.deepEqual((await registry.list("serv")).objects.map((o) => o.key), [
          "servers/a",
          "servers/b",
        ]);
        assert.deepEqual((await registry.list("")).objects.map((o) => o.key), [
          "agents/a",
          "servers/a",
          "servers/b",
        ]);
      }),
  );

  await t.step(
    "keys with spaces, '+', '%' and non-ASCII round-trip exactly",
    () =>
      withFixture(backend, async ({ registry }) => {
        const key = "odd/héllo wörld+plus%41 $(x) 'q' \"d\" 节点";
        await registry.put(key, enc("x"));
        assert.deepEqual((await registry.list("odd/")).objects.map((o) => o.key), [key]);
        assert.equal(dec(await registry.get(key, 10)), "x");
      }),
  );

  await t.step(
    "empty bodies and bodies of exactly maxBytes",
    () =>
      withFixture(backend, async ({ registry }) => {
        await registry.put("e/empty", new Uint8Array());
        assert.deepEqual(await registry.get("e/empty", 256), new Uint8Array());
        await registry.put("e/ten", enc("0123456789"));
        assert.equal(dec(await registry.get("e/ten", 10)), "0123456789");
        await assert.rejects(registry.get("e/ten", 9), RangeError);
      }),
  );

  await t.step(
    "oversized get throws RangeError naming key and size",
    () =>
      withFixture(backend, async ({ registry }) => {
        await registry.put("big/one", new Uint8Array(1024 * 1024).fill(0x31));
        await assert.rejects(registry.get("big/one", 256), (err: unknown) => {
          assert.ok(err instanceof RangeError);
          assert.match(err.message, /"big\/one" is 1048576 bytes: expected at most 256 bytes/);
          return true;
        });
      }),
  );

  await t.step(
    "delete removes; deleting a missing key is fine",
    () =>
      withFixture(backend, async ({ registry }) => {
        await registry.put("servers/a", enc("x"));
        await registry.delete("servers/a");
        assert.equal(await registry.get("servers/a", 10), undefined);
        assert.deepEqual((await registry.list("servers/")).objects, []);
        await registry.delete("servers/a");
        await registry.delete("never/was");
      }),
  );

  await t.step(
    "createIfAbsent: created, then exists (body unchanged)",
    () =>
      withFixture(backend, async ({ registry }) => {
        assert.equal(await registry.createIfAbsent("slots/0/1", enc("first")), "created");
        assert.equal(await registry.createIfAbsent("slots/0/1", enc("second")), "exists");
        assert.equal(dec(await registry.get("slots/0/1", 64)), "first");
        await registry.put("slots/0/2", enc("put"));
        assert.equal(await registry.createIfAbsent("slots/0/2", enc("late")), "exists");
      }),
  );

  await t.step(
    "race: 20 concurrent createIfAbsent of one key → exactly one created",
    () =>
      withFixture(backend, async (fx) => {
        // AUTO_CONSUL_RACE_ROUNDS raises the count for a stress run (default 3).
        const rounds = Number(Deno.env.get("AUTO_CONSUL_RACE_ROUNDS") ?? 3);
        for (let round = 0; round < rounds; round++) {
          const key = `slots/race/${round}`;
          const outcomes = await Promise.all(
            Array.from({ length: 20 }, (_, i) => fx.registry.createIfAbsent(key, enc(`n${i}`))),
          );
          const winners = outcomes.flatMap((o, i) => o === "created" ? [i] : []);
          assert.equal(winners.length, 1, `round ${round}: ${outcomes.join(",")}`);
          assert.equal(dec(await fx.registry.get(key, 64)), `n${winners[0]}`);
        }
        // nothing but the objects themselves is left behind (no temp files)
        assert.deepEqual(
          await fx.rawKeys(),
          Array.from({ length: rounds }, (_, r) => fx.rawKey(`slots/race/${r}`)).sort(),
        );
      }),
  );

  await t.step(
    "path tricks and bad characters in keys are refused with TypeError",
    () =>
      withFixture(backend, async ({ registry }) => {
        const bad = ["../x", "a/../../x", "/etc/passwd", "a\\b", "a\0b", "a//b", "a/", "", "./a"];
        for (const key of bad) {
          await assert.rejects(registry.put(key, enc("x")), TypeError, JSON.stringify(key));
          await assert.rejects(registry.get(key, 10), TypeError, JSON.stringify(key));
          await assert.rejects(registry.createIfAbsent(key, enc("x")), TypeError);
          await assert.rejects(registry.delete(key), TypeError);
        }
        await assert.rejects(registry.list("../"), TypeError);
      }),
  );

  await t.step(
    "probe: conditional writes are honoured; the probe key is deleted",
    () =>
      withFixture(backend, async ({ registry }) => {
        assert.deepEqual(await probeConditionalWrites(registry), { honoured: true });
        assert.deepEqual((await registry.list("probe/")).objects, []);
      }),
  );
}
