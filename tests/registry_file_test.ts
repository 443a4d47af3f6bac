/**
 * What only the folder backend has to get right: temp files, symlinks leading out of the
 * folder, FIFOs and folders where objects are expected, mtimes as LastModified.
 */
import assert from "node:assert/strict";
import { RegistryError } from "../src/errors.ts";
import { FileRegistry, TEMP_PREFIX } from "../src/registry/file.ts";
import { captureLog } from "./registry/fixtures.ts";

const enc = (s: string) => new TextEncoder().encode(s);

async function withRoot(fn: (root: string, reg: FileRegistry) => Promise<void>): Promise<void> {
  const root = await Deno.makeTempDir({ prefix: "auto-consul-file-" });
  try {
    await fn(root, new FileRegistry({ root, log: captureLog().log }));
  } finally {
    await Deno.remove(root, { recursive: true });
  }
}

Deno.test("file registry: relative roots are refused", () => {
  assert.throws(() => new FileRegistry({ root: "relative/dir" }), TypeError);
  assert.throws(() => new FileRegistry({ root: "" }), /expected an absolute path/);
});

Deno.test("file registry: a missing root lists empty; writes create it", async () => {
  await withRoot(async (base) => {
    const reg = new FileRegistry({ root: `${base}/not/yet` });
    assert.deepEqual((await reg.list("servers/")).objects, []);
    assert.equal(await reg.get("servers/a", 10), undefined);
    await reg.delete("servers/a");
    await reg.put("servers/a", enc("x"));
    assert.equal(new TextDecoder().decode(await Deno.readFile(`${base}/not/yet/servers/a`)), "x");
  });
});

Deno.test("file registry: a root that is a file → RegistryError", async () => {
  await withRoot(async (base) => {
    await Deno.writeFile(`${base}/file`, enc("x"));
    const reg = new FileRegistry({ root: `${base}/file` });
    await assert.rejects(reg.put("servers/a", enc("x")), RegistryError);
  });
});

Deno.test("file registry: lastModified is the file's mtime; size is its size", async () => {
  await withRoot(async (root, reg) => {
    await reg.put("servers/a", enc("10.0.0.1"));
    const when = new Date("2020-01-02T03:04:05Z");
    await Deno.utime(`${root}/servers/a`, when, when);
    const { objects } = await reg.list("servers/");
    assert.deepEqual(objects, [{ key: "servers/a", lastModified: when, size: 8 }]);
  });
});

Deno.test("file registry: temp files are never listed and never left behind", async () => {
  await withRoot(async (root, reg) => {
    await Deno.mkdir(`${root}/servers`);
    await Deno.writeFile(`${root}/servers/${TEMP_PREFIX}crashed`, enc("half"));
    await reg.put("servers/a", enc("x"));
    await reg.createIfAbsent("servers/b", enc("y"));
    await reg.createIfAbsent("servers/b", enc("z"));
    assert.deepEqual((await reg.list("")).objects.map((o) => o.key), ["servers/a", "servers/b"]);
    const names = [];
    for await (const e of Deno.readDir(`${root}/servers`)) names.push(e.name);
    assert.deepEqual(names.sort(), [`${TEMP_PREFIX}crashed`, "a", "b"]);
    await assert.rejects(reg.put(`servers/${TEMP_PREFIX}x`, enc("x")), TypeError);
  });
});

Deno.test("file registry: symlinks out of the folder are neither read nor written through", async () => {
  await withRoot(async (root) => {
    const outside = await Deno.makeTempDir({ prefix: "auto-consul-outside-" });
    try {
      await Deno.writeFile(`${outside}/secret`, enc("10.6.6.6"));
      await Deno.mkdir(`${root}/servers`);
      await Deno.symlink(`${outside}/secret`, `${root}/servers/20140516092731-evil`);
      await Deno.symlink(outside, `${root}/agents`); // a whole folder leading out
      await Deno.writeFile(`${root}/servers/real`, enc("10.0.0.1"));
      await Deno.symlink(`${root}/servers/real`, `${root}/servers/inside-link`);
      const { log, lines } = captureLog();
      const reg = new FileRegistry({ root, log });

      assert.deepEqual((await reg.list("servers/")).objects.map((o) => o.key), [
        "servers/inside-link",
        "servers/real",
      ]);
      assert.ok(lines.some((l) => l.key === "servers/20140516092731-evil"), "warned");
      await assert.rejects(reg.get("servers/20140516092731-evil", 100), (err: unknown) => {
        assert.ok(err instanceof RegistryError);
        assert.equal(err.reason, "unsafe-path");
        return true;
      });
      await assert.rejects(reg.put("agents/x", enc("x")), /outside the registry folder/);
      await assert.rejects(reg.createIfAbsent("agents/y", enc("x")), RegistryError);
      await assert.rejects(reg.delete("agents/secret"), RegistryError);
      const left = [];
      for await (const e of Deno.readDir(outside)) left.push(e.name);
      assert.deepEqual(left, ["secret"], "nothing written or deleted outside");
    } finally {
      await Deno.remove(outside, { recursive: true });
    }
  });
});

Deno.test("file registry: a FIFO or a folder where an object is expected", async () => {
  await withRoot(async (root, reg) => {
    await Deno.mkdir(`${root}/servers/folder`, { recursive: true });
    const mk = await new Deno.Command("mkfifo", { args: [`${root}/servers/fifo`] }).output();
    assert.ok(mk.success);
    assert.equal(await reg.get("servers/fifo", 10), undefined, "a FIFO is not opened");
    assert.equal(await reg.get("servers/folder", 10), undefined);
    await reg.delete("servers/folder");
    assert.ok((await Deno.stat(`${root}/servers/folder`)).isDirectory, "folder kept");
    assert.deepEqual((await reg.list("servers/")).objects, []);
  });
});

Deno.test("file registry: ?ignore-conditions overwrites and says created", async () => {
  await withRoot(async (root) => {
    const reg = new FileRegistry({ root, ignoreConditions: true });
    assert.equal(await reg.createIfAbsent("slots/0/1", enc("a")), "created");
    assert.equal(await reg.createIfAbsent("slots/0/1", enc("b")), "created");
    assert.equal(new TextDecoder().decode(await reg.get("slots/0/1", 10)), "b");
    assert.equal(reg.url, `file://${root}?ignore-conditions=1`);
  });
});
