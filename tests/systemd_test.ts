/**
 * The shipped systemd unit (issue 16): `systemd-analyze verify` is clean, `systemd-analyze
 * security` scores it at most 3.0 (the README records the score), and the settings in
 * /etc/default/auto-consul are what `run` uses (nothing in ExecStart overrides them).
 * systemd-analyze comes with Debian's `systemd` package (scripts/install-deps.sh installs it
 * when missing); these tests fail rather than skip without it.
 */
import assert from "node:assert/strict";
import { parseConfig } from "../src/cli/config.ts";
import { REPO } from "./harness/proc.ts";

const UNIT = `${REPO}/scripts/systemd/auto-consul.service`;
const EXE = "/usr/local/bin/auto-consul";
const MAX_EXPOSURE = 3.0;

async function analyze(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let o: Deno.CommandOutput;
  try {
    o = await new Deno.Command("systemd-analyze", { args, stdout: "piped", stderr: "piped" })
      .output();
  } catch (err) {
    throw new Error(
      `systemd-analyze cannot run (${(err as Error).message}): install Debian's systemd ` +
        "package (bash scripts/install-deps.sh does)",
    );
  }
  const d = new TextDecoder();
  return { code: o.code, out: d.decode(o.stdout), err: d.decode(o.stderr) };
}

/** The unit with ExecStart pointing at an executable stub (verify checks it exists). */
async function withUnit<T>(fn: (path: string) => Promise<T>): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix: "auto-consul-unit-" });
  try {
    const exe = `${dir}/auto-consul`;
    await Deno.writeTextFile(exe, "#!/bin/sh\nexit 0\n", { mode: 0o755 });
    const unit = (await Deno.readTextFile(UNIT)).replaceAll(EXE, exe);
    await Deno.writeTextFile(`${dir}/auto-consul.service`, unit);
    return await fn(`${dir}/auto-consul.service`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** `Key=value` lines of the unit (comments and sections skipped); repeated keys kept in order. */
function directives(text: string): [string, string][] {
  return text.split("\n")
    .filter((l) => /^[A-Za-z]+=/.test(l))
    .map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]);
}

Deno.test("systemd unit: systemd-analyze verify is clean", async () => {
  await withUnit(async (path) => {
    const r = await analyze(["verify", path]);
    assert.equal(r.code, 0, r.err);
    assert.doesNotMatch(r.err, /auto-consul\.service/, r.err);
  });
});

Deno.test(`systemd unit: systemd-analyze security exposure <= ${MAX_EXPOSURE}, as the README says`, async () => {
  await withUnit(async (path) => {
    const r = await analyze(["security", "--offline=true", "--no-pager", path]);
    const m = /Overall exposure level for auto-consul\.service: (\d+(?:\.\d+)?)/.exec(r.out);
    assert.ok(m, `no exposure level in:\n${r.out}\n${r.err}`);
    const score = Number(m[1]);
    assert.ok(score <= MAX_EXPOSURE, `exposure ${score} > ${MAX_EXPOSURE}:\n${r.out}`);
    // The README and the unit's header record the measured score.
    const recorded = /`systemd-analyze security`[^0-9]{0,20}(\d+\.\d+)/;
    for (const file of [`${REPO}/README.md`, UNIT]) {
      const r = recorded.exec(await Deno.readTextFile(file));
      assert.equal(r?.[1], String(score), `${file} records the measured score ${score}`);
    }
  });
});

Deno.test("systemd unit: a dedicated user, sandbox, restarts with a start limit", async () => {
  const d = directives(await Deno.readTextFile(UNIT));
  const get = (k: string) => d.filter(([key]) => key === k).map(([, v]) => v);
  const want: [string, string][] = [
    ["User", "auto-consul"],
    ["StateDirectory", "auto-consul"],
    ["ProtectSystem", "strict"],
    ["ProtectHome", "yes"],
    ["PrivateTmp", "yes"],
    ["NoNewPrivileges", "yes"],
    ["CapabilityBoundingSet", ""],
    ["Restart", "always"],
    ["RestartPreventExitStatus", "2"],
  ];
  for (const [k, v] of want) assert.deepEqual(get(k), [v], k);
  assert.ok(Number(get("StartLimitBurst")[0]) > 0, "StartLimitBurst");
  assert.ok(Number(get("StartLimitIntervalSec")[0]) > 0, "StartLimitIntervalSec");
  // A gossip key is part of the unit, and required.
  assert.deepEqual(get("LoadCredential"), ["gossip-key:/etc/auto-consul/gossip.key"]);
  assert.ok(get("Environment").includes("AUTO_CONSUL_GOSSIP_KEY_FILE=%d/gossip-key"));
  assert.ok(get("Environment").includes("AUTO_CONSUL_REQUIRE_ENCRYPTION=true"));
});

Deno.test("systemd unit: settings in /etc/default/auto-consul are what run uses", async () => {
  const d = directives(await Deno.readTextFile(UNIT));
  const exec = d.find(([k]) => k === "ExecStart")![1].split(/\s+/);
  assert.equal(exec[0], EXE);
  // What systemd gives the process: Environment= lines, then the EnvironmentFile overriding.
  const env: Record<string, string> = {};
  for (const [k, v] of d) {
    if (k === "Environment") env[v.slice(0, v.indexOf("="))] = v.slice(v.indexOf("=") + 1);
  }
  const file = {
    AUTO_CONSUL_REGISTRY: "s3://acme-consul/prod",
    AUTO_CONSUL_SERVERS: "3",
    AUTO_CONSUL_DATA_DIR: "/srv/auto-consul",
    AUTO_CONSUL_CONFIG_DIR: "/etc/consul.d",
    AUTO_CONSUL_GOSSIP_KEY_FILE: "/run/keys/gossip",
    AUTO_CONSUL_REQUIRE_ENCRYPTION: "false",
    AUTO_CONSUL_TICKS: "30",
  };
  const p = parseConfig({ argv: exec.slice(1), env: { ...env, ...file }, hostname: "web-1" });
  assert.equal(p.kind, "command");
  if (p.kind !== "command") return;
  assert.equal(p.config.command, "run");
  assert.equal(p.config.registry, file.AUTO_CONSUL_REGISTRY);
  assert.equal(p.config.servers, 3);
  assert.equal(p.config.dataDir, file.AUTO_CONSUL_DATA_DIR);
  assert.equal(p.config.configDir, file.AUTO_CONSUL_CONFIG_DIR);
  assert.equal(p.config.gossipKeyFile, file.AUTO_CONSUL_GOSSIP_KEY_FILE);
  assert.equal(p.config.requireEncryption, false);
  assert.equal(p.config.ticks, 30);
  // Without an env file: the unit's own defaults.
  const q = parseConfig({
    argv: exec.slice(1),
    env: { ...env, AUTO_CONSUL_REGISTRY: "s3://acme-consul/prod" },
    hostname: "web-1",
  });
  if (q.kind !== "command") throw new Error(q.kind);
  assert.equal(q.config.dataDir, "/var/lib/auto-consul");
  assert.equal(q.config.gossipKeyFile, "%d/gossip-key"); // systemd expands %d
  assert.equal(q.config.requireEncryption, true);
});
