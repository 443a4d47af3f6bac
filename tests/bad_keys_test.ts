/** One warning per bad registry key per process, and one count line per listing. */
import assert from "node:assert/strict";
import { BadKeyReport } from "../src/registry/bad_keys.ts";
import { readHeartbeats } from "../src/registry/heartbeats.ts";
import { FileRegistry } from "../src/registry/file.ts";
import { captureLog } from "./registry/fixtures.ts";
import { runCli } from "./harness/cli.ts";

Deno.test("a bad key is warned about once per process; each listing that skipped any counts them", () => {
  const { log, lines } = captureLog();
  const scope = `file:///test/${crypto.randomUUID()}`;
  for (let listing = 0; listing < 3; listing++) {
    const r = new BadKeyReport(log, scope, "servers/");
    r.skip("servers/junk-1", { expected: "x" });
    r.skip("servers/junk-2", { expected: "x" });
    if (listing === 2) r.skip("servers/junk-3", { expected: "x" });
    r.done();
  }
  const warns = lines.filter((l) => l.level === "warn");
  assert.deepEqual(warns.map((l) => [l.msg, l.key ?? l.skipped]), [
    ["skipping registry key", "servers/junk-1"],
    ["skipping registry key", "servers/junk-2"],
    ["skipped bad registry keys", 2],
    ["skipping registry key", "servers/junk-3"],
    ["skipped bad registry keys", 3],
  ]);
  const counted = lines.filter((l) => String(l.msg).startsWith("skipped bad registry keys"));
  assert.deepEqual(counted.map((l) => [l.level, l.skipped, l.new]), [
    ["warn", 2, 2],
    ["debug", 2, 0],
    ["warn", 3, 1],
  ]);
  // Another registry's keys of the same name are its own.
  const other = new BadKeyReport(log, `${scope}-other`, "servers/");
  other.skip("servers/junk-1");
  other.done();
  assert.equal(lines.filter((l) => l.key === "servers/junk-1").length, 2);
});

Deno.test("2,000 junk files: a second listing in the same process logs one line", async () => {
  const root = await Deno.makeTempDir();
  try {
    await Deno.mkdir(`${root}/servers`);
    for (let i = 0; i < 2_000; i++) await Deno.writeTextFile(`${root}/servers/junk${i}`, "");
    const registry = new FileRegistry({ root });
    const { log, lines } = captureLog();
    await readHeartbeats(registry, "servers", log);
    assert.equal(
      lines.filter((l) => l.level === "warn").length,
      2_001,
      "each once, plus the count",
    );
    const before = lines.length;
    await readHeartbeats(registry, "servers", log);
    assert.deepEqual(lines.slice(before).map((l) => [l.level, l.skipped]), [["debug", 2_000]]);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("status (CLI, text logs): a junk key with control characters is warned about once, escaped, plus a count", async () => {
  const root = await Deno.makeTempDir();
  try {
    await Deno.mkdir(`${root}/servers`);
    await Deno.writeTextFile(`${root}/servers/junk\u001b[2J\u0007`, "");
    const r = await runCli(["-r", `file://${root}`, "--http-addr", "127.0.0.1:1", "status"]);
    assert.equal(r.code, 0, r.stderr);
    const raw = [...r.stderr].find((c) => c.charCodeAt(0) < 0x20 && c !== "\n");
    assert.equal(raw, undefined, "no raw control character");
    const warns = r.stderr.split("\n").filter((l) => / WARN /.test(l));
    assert.equal(warns.filter((l) => l.includes("skipping registry key")).length, 1, r.stderr);
    assert.ok(warns.some((l) => l.includes('key="servers/junk\\u001b[2J\\u0007"')), r.stderr);
    assert.ok(
      warns.some((l) => /skipped bad registry keys in=servers\/ skipped=1/.test(l)),
      r.stderr,
    );
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
