import assert from "node:assert/strict";
import { readMode, readPlace, writeMode, writePlace } from "../src/cluster/state.ts";

Deno.test("mode file: the gem's format, trailing newline tolerated, atomic writes", async () => {
  const dir = await Deno.makeTempDir();
  try {
    assert.equal(await readMode(dir), undefined);
    await writeMode(dir, "server");
    assert.equal(await Deno.readTextFile(`${dir}/mode`), "server\n");
    assert.equal(await readMode(dir), "server");
    await Deno.writeTextFile(`${dir}/mode`, "agent"); // written by the gem, no newline
    assert.equal(await readMode(dir), "agent");
    await Deno.writeTextFile(`${dir}/mode`, "bootstrap\n");
    await assert.rejects(readMode(dir), /holds "bootstrap": expected "server" or "agent"/);
    // no temp files left behind
    await writeMode(dir, "agent");
    const names = [];
    for await (const e of Deno.readDir(dir)) names.push(e.name);
    assert.deepEqual(names.sort(), ["mode"]);
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
