/**
 * The heartbeats module on top of each backend: writeHeartbeat, removal of a node's older
 * heartbeats, purgeExpired, liveMembers (freshest first).
 */
import assert from "node:assert/strict";
import {
  liveMembers,
  purgeExpired,
  readHeartbeats,
  writeHeartbeat,
} from "../../src/registry/heartbeats.ts";
import { type Backend, captureLog } from "./fixtures.ts";
import { withFixture } from "./contract.ts";

const at = (s: string) => new Date(s);

export async function heartbeatsSuite(t: Deno.TestContext, backend: Backend): Promise<void> {
  await t.step(
    "writeHeartbeat: servers write servers/ and agents/, agents only agents/",
    () =>
      withFixture(backend, async ({ registry }) => {
        const { log } = captureLog();
        const now = at("2024-02-29T23:59:58Z");
        const s = await writeHeartbeat(
          registry,
          { node: "srv-1", address: "10.0.0.1", dirs: ["servers", "agents"], now },
          log,
        );
        assert.deepEqual(s.keys, ["servers/20240229235958-srv-1", "agents/20240229235958-srv-1"]);
        const a = await writeHeartbeat(
          registry,
          { node: "web-1-a", address: "10.0.0.2", dirs: ["agents"], now },
          log,
        );
        assert.deepEqual(a.keys, ["agents/20240229235958-web-1-a"]);
        assert.deepEqual((await registry.list("")).objects.map((o) => o.key), [
          "agents/20240229235958-srv-1",
          "agents/20240229235958-web-1-a",
          "servers/20240229235958-srv-1",
        ]);
      }),
  );

  await t.step(
    "writeHeartbeat removes the node's own older heartbeats only",
    () =>
      withFixture(backend, async ({ registry }) => {
        const { log } = captureLog();
        const dirs = ["servers", "agents"] as const;
        const write = (node: string, now: Date, previous?: string[]) =>
          writeHeartbeat(
            registry,
            { node, address: "10.0.0.1", dirs: [...dirs], now, previous },
            log,
          );
        await write("other", at("2024-01-01T00:00:00Z"));
        const first = await write("me", at("2024-01-01T00:00:00Z"));
        const second = await write("me", at("2024-01-01T00:01:00Z")); // lists to find the old ones
        assert.deepEqual(second.removed.sort(), [...first.keys].sort());
        const third = await write("me", at("2024-01-01T00:02:00Z"), second.keys); // no LIST
        assert.deepEqual(third.removed, second.keys);
        assert.deepEqual((await registry.list("servers/")).objects.map((o) => o.key), [
          "servers/20240101000000-other",
          "servers/20240101000200-me",
        ]);
        // a node whose name starts with ours is someone else
        await write("me-too", at("2024-01-01T00:03:00Z"));
        await write("me", at("2024-01-01T00:04:00Z"));
        const nodes = (await readHeartbeats(registry, "agents", log)).map((h) => h.node).sort();
        assert.deepEqual(nodes, ["me", "me-too", "other"]);
      }),
  );

  await t.step(
    "liveMembers freshest first; purgeExpired removes only expired",
    () =>
      withFixture(backend, async (fx) => {
        const { log, lines } = captureLog();
        const beat = (node: string, address: string) =>
          writeHeartbeat(
            fx.registry,
            { node, address, dirs: ["servers", "agents"], now: new Date(), previous: [] },
            log,
          );
        const old = await beat("old-1", "10.0.0.1");
        const older = await beat("old-2", "2001:DB8::2");
        // 8 s old against an expiry of 5 s: the fresh key (stamped to the second) keeps 4 s of
        // slack for a loaded machine (with 2 s against 1 s it expired under load 34)
        await fx.makeOlder([...old.keys, ...older.keys], 8);
        const fresh = await beat("new-1", "10.0.0.3");

        const all = await liveMembers(fx.registry, "servers", 120, log);
        assert.equal(all[0].node, "new-1", "freshest first");
        assert.deepEqual(all.map((m) => m.node).sort(), ["new-1", "old-1", "old-2"]);
        assert.equal(all.find((m) => m.node === "old-2")?.address, "2001:db8::2");
        const live = await liveMembers(fx.registry, "servers", 5, log);
        assert.deepEqual(live.map((m) => [m.node, m.address]), [["new-1", "10.0.0.3"]]);

        const purged = await purgeExpired(fx.registry, "servers", 5, log);
        assert.deepEqual(purged.sort(), [old.keys[0], older.keys[0]].sort());
        assert.deepEqual(
          (await fx.registry.list("servers/")).objects.map((o) => o.key),
          [fresh.keys[0]],
        );
        assert.equal((await fx.registry.list("agents/")).objects.length, 3, "agents/ untouched");
        assert.deepEqual(lines.filter((l) => l.level === "warn"), []);
      }),
  );
}
