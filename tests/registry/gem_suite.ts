/**
 * Acceptance: the Ruby gem's registry format. A prefix holding exactly the objects the gem
 * writes is read correctly, and what writeHeartbeat writes is that format, byte for byte.
 */
import assert from "node:assert/strict";
import { liveMembers, writeHeartbeat } from "../../src/registry/heartbeats.ts";
import { formatStamp } from "../../src/registry/layout.ts";
import { type Backend, captureLog } from "./fixtures.ts";
import { withFixture } from "./contract.ts";

const enc = (s: string) => new TextEncoder().encode(s);

/**
 * Objects as the gem leaves them: key `<dir>/<UTC stamp>-<node>`, body the bare IP. The
 * stamps are the writers' clocks a few seconds ago (a stamp from long ago is expired).
 */
function gemObjects(now: Date): [string, string][] {
  const s = (ago: number) => formatStamp(new Date(now.getTime() - ago * 1000));
  return [
    [`servers/${s(30)}-server1`, "192.168.50.100"],
    [`agents/${s(30)}-server1`, "192.168.50.100"],
    [`servers/${s(16)}-web-1-a`, "192.168.50.101"],
    [`agents/${s(16)}-web-1-a`, "192.168.50.101"],
    [`agents/${s(1)}-db-2`, "10.20.30.40"],
  ];
}

export async function gemSuite(t: Deno.TestContext, backend: Backend): Promise<void> {
  await t.step(
    "gem format: a prefix written by the gem is read correctly",
    () =>
      withFixture(backend, async (fx) => {
        const { log, lines } = captureLog();
        const now = new Date(Math.floor(Date.now() / 1000) * 1000);
        for (const [key, body] of gemObjects(now)) await fx.plant(key, enc(body)); // fresh mtime
        const servers = await liveMembers(fx.registry, "servers", 120, log);
        const ago = (s: number) => new Date(now.getTime() - s * 1000).toISOString();
        assert.deepEqual(
          servers.map((m) => [m.node, m.address, m.stamp.toISOString()]).sort(),
          [
            ["server1", "192.168.50.100", ago(30)],
            ["web-1-a", "192.168.50.101", ago(16)],
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
