/**
 * Acceptance: a registry full of garbage (generated keys and bodies) never crashes the
 * reader; only the valid members come back, and every bad object gets one warning naming it.
 */
import assert from "node:assert/strict";
import { liveMembers } from "../../src/registry/heartbeats.ts";
import { TEMP_PREFIX } from "../../src/registry/file.ts";
import { type Backend, captureLog, type Fixture } from "./fixtures.ts";
import { withFixture } from "./contract.ts";
import { generateGarbage, goodStamp } from "./garbage.ts";

const enc = (s: string) => new TextEncoder().encode(s);

export async function garbageSuite(t: Deno.TestContext, backend: Backend): Promise<void> {
  await t.step("garbage: 200+ bad keys and bodies → only valid members, one warning each", () => {
    const { log, lines } = captureLog();
    return withFixture(backend, async (fx) => {
      const stamp = goodStamp();
      const { valid, bad } = generateGarbage(stamp);
      const planted = bad.filter((o) => fx.canPlant(o.key));
      for (let i = 0; i < planted.length; i += 25) {
        await Promise.all(planted.slice(i, i + 25).map((o) => fx.plant(o.key, o.body)));
      }
      for (const v of valid) await fx.plant(`${v.dir}/${stamp}-${v.node}`, enc(v.body));
      const special = fx.root ? await plantSpecialFiles(fx, stamp) : [];
      assert.ok(planted.length + special.length >= 200, `only ${planted.length} planted`);

      for (const dir of ["servers", "agents"] as const) {
        const members = await liveMembers(fx.registry, dir, 120, log);
        assert.deepEqual(
          members.map((m) => [m.node, m.address]).sort(),
          valid.filter((v) => v.dir === dir).map((v) => [v.node, v.address]).sort(),
          `live members of ${dir}/`,
        );
      }
      const warned = new Set(
        lines.filter((l) => l.level === "warn").map((l) => String(l.key)),
      );
      const silent = [...planted.map((o) => o.key), ...special].filter((k) => !warned.has(k));
      assert.deepEqual(silent, [], "every bad object is warned about");
      for (const w of warned) assert.ok(!w.includes(TEMP_PREFIX), `temp file listed: ${w}`);
    }, { log });
  });
}

/** Folder-only garbage: symlinks out of the folder, a FIFO, a dangling link, a temp file. */
async function plantSpecialFiles(fx: Fixture, stamp: string): Promise<string[]> {
  const root = fx.root!;
  const keys = [
    `servers/${stamp}-evil`,
    `servers/${stamp}-escape-dir`,
    `servers/${stamp}-dangling`,
    `servers/${stamp}-fifo`,
    `agents/${stamp}-evil`,
  ];
  await Deno.symlink("/etc/hostname", `${root}/${keys[0]}`);
  await Deno.symlink("/etc", `${root}/${keys[1]}`);
  await Deno.symlink(`${root}/does-not-exist`, `${root}/${keys[2]}`);
  const mk = await new Deno.Command("mkfifo", { args: [`${root}/${keys[3]}`] }).output();
  assert.ok(mk.success, "mkfifo");
  await Deno.symlink("../../../../../../../../etc/passwd", `${root}/${keys[4]}`);
  // a write in flight (or left by a crash): never listed, no warning
  await Deno.writeFile(`${root}/servers/${TEMP_PREFIX}leftover`, enc("10.0.0.99"));
  return keys;
}
