import assert from "node:assert/strict";
import {
  modeIsExplicit,
  modeIsKept,
  readMode,
  readPlace,
  writeMode,
  writePlace,
} from "../src/cluster/state.ts";

/** The gem's own mode file code (ethanrowe/auto-consul lib/auto-consul/local.rb), in TS. */
const GEM_VALID_MODES: Record<string, string> = { agent: "agent", server: "server" };
function gemDetermineMode(bytes: Uint8Array): string | undefined {
  return GEM_VALID_MODES[new TextDecoder().decode(bytes)]; // File.read, exact match
}

Deno.test("mode file: the gem's bytes exactly (no newline), read back by the gem's rule", async () => {
  const dir = await Deno.makeTempDir();
  try {
    for (const [mode, pinned] of [["server", false], ["agent", false], ["server", true]] as const) {
      await writeMode(dir, mode, pinned);
      const bytes = await Deno.readFile(`${dir}/mode`);
      assert.deepEqual(bytes, new TextEncoder().encode(mode), `${mode}: exactly the gem's bytes`);
      assert.equal(gemDetermineMode(bytes), mode, "the gem accepts it (its direct_run works)");
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("recorded modes: what run keeps and what it decides again (table)", () => {
  const rows: [string, string, { decided: boolean; legacyExplicit: boolean }, boolean][] = [
    [
      "gem's set_server / set_mode bytes",
      "server",
      { decided: false, legacyExplicit: false },
      true,
    ],
    ["gem's set_agent bytes", "agent", { decided: false, legacyExplicit: false }, true],
    ["ours, decided by run", "agent", { decided: true, legacyExplicit: false }, false],
    ["earlier auto-consul's decision (newline)", "agent\n", {
      decided: false,
      legacyExplicit: false,
    }, false],
    ["earlier auto-consul's set_server (newline + mark)", "server\n", {
      decided: false,
      legacyExplicit: true,
    }, true],
  ];
  for (const [what, text, markers, kept] of rows) {
    assert.equal(modeIsKept(text, markers), kept, what);
  }
});

Deno.test("recorded modes on disk: gem-written kept, ours decided again, set_* pinned", async () => {
  const dir = await Deno.makeTempDir();
  try {
    assert.equal(await modeIsExplicit(dir), false, "no mode file");
    await Deno.writeTextFile(`${dir}/mode`, "server"); // the gem's set_server
    assert.equal(await modeIsExplicit(dir), true, "gem-written");
    await writeMode(dir, "agent"); // run decided
    assert.equal(await modeIsExplicit(dir), false, "decided by auto-consul");
    await writeMode(dir, "server", true); // set_server
    assert.equal(await modeIsExplicit(dir), true, "pinned by set_server");
    await writeMode(dir, "agent"); // run decided again (e.g. after set_mode)
    assert.equal(await modeIsExplicit(dir), false);
    await Deno.writeTextFile(`${dir}/mode`, "agent"); // then the gem's set_agent, on a rollback
    await Deno.remove(`${dir}/mode.decided`).catch(() => {}); // the gem knows no marker...
    assert.equal(await modeIsExplicit(dir), true);
    // earlier auto-consul layouts
    await Deno.writeTextFile(`${dir}/mode`, "agent\n");
    assert.equal(await modeIsExplicit(dir), false, "earlier version's decision");
    await Deno.writeTextFile(`${dir}/mode.explicit`, "set by hand\n");
    assert.equal(await modeIsExplicit(dir), true, "earlier version's set_agent");
    await Deno.writeTextFile(`${dir}/mode`, "garbage");
    assert.equal(await modeIsExplicit(dir), false, "garbage is never kept");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("mode file: trailing newline tolerated when read, atomic writes", async () => {
  const dir = await Deno.makeTempDir();
  try {
    assert.equal(await readMode(dir), undefined);
    await writeMode(dir, "server");
    assert.equal(await Deno.readTextFile(`${dir}/mode`), "server");
    assert.equal(await readMode(dir), "server");
    await Deno.writeTextFile(`${dir}/mode`, "agent\n"); // an earlier auto-consul's
    assert.equal(await readMode(dir), "agent");
    await Deno.writeTextFile(`${dir}/mode`, "agent"); // written by the gem, no newline
    assert.equal(await readMode(dir), "agent");
    await Deno.writeTextFile(`${dir}/mode`, "bootstrap\n");
    await assert.rejects(readMode(dir), /holds "bootstrap": expected "server" or "agent"/);
    // no temp files left behind
    await writeMode(dir, "agent");
    const names = [];
    for await (const e of Deno.readDir(dir)) names.push(e.name);
    assert.deepEqual(names.sort(), ["mode", "mode.decided"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("place file round-trips and rejects garbage", async () => {
  const dir = await Deno.makeTempDir();
  try {
    assert.equal(await readPlace(dir), undefined);
    await writePlace(dir, { place: 2, epoch: 5 });
    assert.deepEqual(await readPlace(dir), { place: 2, epoch: 5 });
    await writePlace(dir, undefined);
    assert.equal(await readPlace(dir), undefined);
    await Deno.writeTextFile(`${dir}/place.json`, '{"place":-1,"epoch":1}');
    await assert.rejects(readPlace(dir), /is not \{"place": K, "epoch": E\}/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
