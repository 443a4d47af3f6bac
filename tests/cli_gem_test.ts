/**
 * The gem's command line, as a process (issue 11, acceptance 5): unique prefixes of long flags,
 * an ambiguous prefix (exit 2 naming the candidates), `-- COMMAND`, extra words after the
 * command (a warning, not an error). The gem parsed its argv with Ruby's OptionParser.
 */
import assert from "node:assert/strict";
import { runCli } from "./harness/cli.ts";

async function withDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix: "auto-consul-cli-gem-" });
  try {
    return await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const modeOf = (dir: string) => Deno.readTextFile(`${dir}/mode`).catch(() => undefined);

Deno.test("unique prefixes of long flags work as the gem's did", () =>
  withDir(async (dir) => {
    const r = await runCli(["--dat", `${dir}/a`, "--nod", "web-1", "set_server"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(await modeOf(`${dir}/a`), "server", "the gem's bytes");
    // --reg=URL and --data=PATH, attached values, flags after the command
    await Deno.mkdir(`${dir}/registry`); // set_mode needs the registry to exist
    const s = await runCli([
      `--reg=file://${dir}/registry`,
      "set_mode",
      `--data=${dir}/b`,
      "--serv",
      "1",
    ]);
    assert.equal(s.code, 0, s.stderr);
    assert.equal(s.stdout.trim(), "server");
    assert.equal(await modeOf(`${dir}/b`), "server");
  }));

Deno.test("an ambiguous prefix: exit 2, one line naming the candidates, nothing done", () =>
  withDir(async (dir) => {
    const r = await runCli(["--a", "10.0.0.1", "-d", dir, "set_server"]);
    assert.equal(r.code, 2);
    assert.equal(r.stdout, "");
    assert.equal(
      r.stderr.trim(),
      'auto-consul: ambiguous flag "--a": it could be --address or --advertise; give more of its name',
    );
    assert.equal(await modeOf(dir), undefined, "nothing written");
    const l = await runCli(["-r", `file://${dir}/r`, "--lo", "x", "run"]);
    assert.equal(l.code, 2);
    assert.match(l.stderr, /ambiguous flag "--lo": it could be --log-level or --log-format/);
  }));

Deno.test("`auto-consul [flags] -- COMMAND` runs COMMAND", () =>
  withDir(async (dir) => {
    const r = await runCli(["-d", dir, "--", "set_agent"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(await modeOf(dir), "agent");
    assert.doesNotMatch(r.stderr, /warn/, "nothing to warn about");
  }));

Deno.test("extra words after the command: a warning, and the command runs", () =>
  withDir(async (dir) => {
    const r = await runCli(["-d", dir, "--log-format", "json", "set_server", "now", "please"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(await modeOf(dir), "server");
    const warns = r.stderr.trim().split("\n").map((l) => JSON.parse(l))
      .filter((l) => l.level === "warn" && /^ignoring/.test(l.msg));
    assert.equal(warns.length, 1, r.stderr);
    assert.equal(
      warns[0].msg,
      `ignoring 2 extra words after set_server: "now" "please" (consul's flags go after --)`,
    );
    // the gem's form with extra words after `-- COMMAND`, which are never parsed as flags
    const g = await runCli(["-d", `${dir}/g`, "--", "set_agent", "-x", "--frob"]);
    assert.equal(g.code, 0, g.stderr);
    assert.equal(await modeOf(`${dir}/g`), "agent");
    assert.match(g.stderr, /ignoring 2 extra words after set_agent: "-x" "--frob"/);
  }));
