/**
 * `deno task release` (issue 16, build 5): SHA256SUMS in sha256sum's format, the README's
 * verification command on the bundle (a good file passes, a changed byte fails), and, where
 * `deno compile` cannot get its runtime, a failure in one line naming DENORT_BIN.
 */
import assert from "node:assert/strict";
import { REPO } from "./harness/proc.ts";
import { denortFor, sha256File, sumsText } from "../scripts/release.ts";

const dec = new TextDecoder();
const HEX = "a".repeat(64);

async function sh(cmd: string, args: string[], opts: Deno.CommandOptions = {}) {
  const o = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped", ...opts })
    .output();
  return { code: o.code, stdout: dec.decode(o.stdout), stderr: dec.decode(o.stderr) };
}

/** The verification command the README's Install section gives. */
async function readmeVerify(): Promise<string[]> {
  const readme = await Deno.readTextFile(`${REPO}/README.md`);
  const install = readme.split("\n## Install\n")[1]?.split("\n## ")[0] ?? "";
  const line = install.split("\n").find((l) => l.startsWith("sha256sum "));
  assert.ok(line, "README's Install section has a sha256sum command");
  return line.split("#")[0].trim().split(/\s+/);
}

Deno.test("sumsText: sha256sum's format, sorted, names without paths", () => {
  const text = sumsText([
    { name: "auto-consul.js", sha256: HEX },
    { name: "auto-consul-linux-aarch64", sha256: "b".repeat(64) },
  ]);
  assert.equal(text, `${"b".repeat(64)}  auto-consul-linux-aarch64\n${HEX}  auto-consul.js\n`);
  assert.throws(() => sumsText([{ name: "x", sha256: "ABC" }]), /bad SHA-256/);
  assert.throws(() => sumsText([{ name: "../x", sha256: HEX }]), /bad release file name/);
});

Deno.test("denortFor: per-target variables, DENORT_BIN only for this machine's arch", () => {
  assert.deepEqual(denortFor("x86_64", {}, "x86_64"), { use: true });
  assert.deepEqual(denortFor("x86_64", { DENORT_BIN: "/d" }, "x86_64"), {
    use: true,
    denort: "/d",
  });
  assert.deepEqual(denortFor("aarch64", { DENORT_BIN: "/d" }, "x86_64"), { use: false });
  assert.deepEqual(
    denortFor("aarch64", { DENORT_BIN: "/d", DENORT_BIN_AARCH64: "/a" }, "x86_64"),
    { use: true, denort: "/a" },
  );
});

Deno.test("release --bundle-only: SHA256SUMS checks with the README's command; a changed byte fails", async () => {
  const out = await Deno.makeTempDir({ prefix: "auto-consul-release-" });
  try {
    const r = await sh(Deno.execPath(), [
      "task",
      "--quiet",
      "release",
      "--bundle-only",
      "--out",
      out,
    ], {
      cwd: REPO,
    });
    assert.equal(r.code, 0, r.stderr);
    const sums = await Deno.readTextFile(`${out}/SHA256SUMS`);
    assert.match(sums, /^([0-9a-f]{64} {2}[A-Za-z0-9._-]+\n)+$/);
    assert.equal(sums, `${await sha256File(`${out}/auto-consul.js`)}  auto-consul.js\n`);
    // The bundle is the program.
    const v = await sh(Deno.execPath(), ["run", "-A", `${out}/auto-consul.js`, "--version"]);
    assert.equal(v.code, 0, v.stderr);

    const [cmd, ...args] = await readmeVerify();
    const ok = await sh(cmd, args, { cwd: out });
    assert.equal(ok.code, 0, ok.stdout + ok.stderr);
    assert.equal(ok.stdout, "auto-consul.js: OK\n");

    const bytes = await Deno.readFile(`${out}/auto-consul.js`);
    bytes[bytes.length - 2] ^= 1;
    await Deno.writeFile(`${out}/auto-consul.js`, bytes);
    const bad = await sh(cmd, args, { cwd: out });
    assert.notEqual(bad.code, 0);
    assert.match(bad.stdout, /^auto-consul\.js: FAILED$/m);
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("release without a reachable denort: fails in one line naming DENORT_BIN, writes no SHA256SUMS", async () => {
  const out = await Deno.makeTempDir({ prefix: "auto-consul-release-" });
  try {
    const r = await sh(Deno.execPath(), ["task", "--quiet", "release", "--out", out], {
      cwd: REPO,
      clearEnv: true,
      // No DENORT_BIN, and every download goes to a proxy that refuses (closed port): the
      // outcome is the same with or without internet access.
      env: {
        PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
        HOME: Deno.env.get("HOME") ?? "/root",
        HTTPS_PROXY: "http://127.0.0.1:9",
        HTTP_PROXY: "http://127.0.0.1:9",
        NO_COLOR: "1",
      },
    });
    assert.equal(r.code, 1, r.stdout + r.stderr);
    const lines = r.stderr.trim().split("\n");
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0], /^release: .*DENORT_BIN=\/path\/to\/denort/);
    assert.match(lines[0], /x86_64-unknown-linux-gnu/);
    await assert.rejects(() => Deno.stat(`${out}/SHA256SUMS`), Deno.errors.NotFound);
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});
