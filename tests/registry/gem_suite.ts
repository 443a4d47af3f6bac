/**
 * Acceptance: the Ruby gem's registry format. A prefix holding exactly the objects the gem
 * writes is read correctly, and what writeHeartbeat writes is that format, byte for byte.
 */
import assert from "node:assert/strict";
import { liveMembers, writeHeartbeat } from "../../src/registry/heartbeats.ts";
import { type Backend, captureLog } from "./fixtures.ts";
import { withFixture } from "./contract.ts";

const enc = (s: string) => new TextEncoder().encode(s);

/** Objects as the gem leaves them: key `<dir>/<UTC stamp>-<node>`, body the bare IP. */
const GEM_OBJECTS: [string, string][] = [
  ["servers/20140516092731-server1", "192.168.50.100"],
  ["agents/20140516092731-server1", "192.168.50.100"],
  ["servers/20140516092745-web-1-a", "192.168.50.101"],
  ["agents/20140516092745-web-1-a", "192.168.50.101"],
  ["agents/20140516092802-db-2", "10.20.30.40"],
];

export async function gemSuite(t: Deno.TestContext, backend: Backend): Promise<void> {
  await t.step(
    "gem format: a prefix written by the gem is read correctly",
    () =>
      withFixture(backend, async (fx) => {
        const { log, lines } = captureLog();
        for (const [key, body] of GEM_OBJECTS) await fx.plant(key, enc(body)); // fresh mtime
        const servers = await liveMembers(fx.registry, "servers", 120, log);
        assert.deepEqual(
          servers.map((m) => [m.node, m.address, m.stamp.toISOString()]).sort(),
          [
            ["server1", "192.168.50.100", "2014-05-16T09:27:31.000Z"],
            ["web-1-a", "192.168.50.101", "2014-05-16T09:27:45.000Z"],
          ],
        );
        const agents = await liveMembers(fx.registry, "agents", 120, log);
        assert.deepEqual(agents.map((m) => [m.node, m.address]).sort(), [
          ["db-2", "10.20.30.40"],
          ["server1", "192.168.50.100"],
          ["web-1-a", "192.168.50.101"],
        ]);
        assert.deepEqual(lines.filter((l) => l.level === "warn"), []);
      }),
  );

  await t.step(
    "gem format: writeHeartbeat writes the gem's keys and bodies, byte for byte",
    () =>
      withFixture(backend, async (fx) => {
        const { log } = captureLog();
        await writeHeartbeat(
          fx.registry,
          {
            node: "web-1-a",
            address: "192.168.50.101",
            dirs: ["servers", "agents"],
            now: new Date(Date.UTC(2014, 4, 16, 9, 27, 45)),
          },
          log,
        );
        assert.deepEqual(await fx.rawKeys(), [
          fx.rawKey("agents/20140516092745-web-1-a"),
          fx.rawKey("servers/20140516092745-web-1-a"),
        ]);
        for (const key of ["servers/20140516092745-web-1-a", "agents/20140516092745-web-1-a"]) {
          assert.deepEqual(
            await fx.readRaw(key),
            new Uint8Array([...enc("192.168.50.101")]),
            `body of ${key}`,
          );
        }
      }),
  );
}
