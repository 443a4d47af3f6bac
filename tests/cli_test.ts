/** The CLI as a process: help, version, and every bad value → one line on stderr, exit 2. */
import assert from "node:assert/strict";
import { runCli } from "./harness/cli.ts";

Deno.test("--help lists every command and exits 0", async () => {
  const r = await runCli(["--help"]);
  assert.equal(r.code, 0, r.stderr);
  for (
    const c of [
      "run",
      "heartbeat",
      "direct_run",
      "set_mode",
      "set_server",
      "set_agent",
      "status",
      "elect",
    ]
  ) {
    assert.match(r.stdout, new RegExp(`^  ${c} `, "m"), c);
  }
  const sub = await runCli(["heartbeat", "--help"]);
  assert.equal(sub.code, 0);
  assert.match(sub.stdout, /Usage: auto-consul \[options\] heartbeat/);
  assert.doesNotMatch(sub.stdout, /--master-tag/, "elect's flags are not heartbeat's");
});

Deno.test("no command: usage on stderr, exit 2, nothing on stdout", async () => {
  for (const argv of [[], ["-r", "file:///tmp/x"]]) {
    const r = await runCli(argv);
    assert.equal(r.code, 2, r.stderr);
    assert.equal(r.stdout, "");
    assert.match(r.stderr, /^Usage: auto-consul/m);
    assert.match(r.stderr, /^auto-consul: no command given/m);
  }
});

Deno.test("--version names the version and the build", async () => {
  const r = await runCli(["--version"]);
  assert.equal(r.code, 0);
  assert.match(r.stdout, /^auto-consul \d+\.\d+\.\d+ \((source|bundle|compiled) build, deno /);
});

Deno.test("every bad value: one line naming it, exit 2, nothing on stdout", async () => {
  const table: [string[], RegExp][] = [
    [
      ["-r", "file:///tmp/x", "-t", "soon", "run"],
      /invalid --ticks "soon": expected a number of seconds/,
    ],
    [
      ["-r", "file:///tmp/x", "-e", "-5", "run"],
      /invalid --expiry "-5": expected a number of seconds/,
    ],
    [
      ["-r", "file:///tmp/x", "-s", "0", "run"],
      /invalid --servers "0": expected a whole number from 1 to 9/,
    ],
    [
      ["-r", "gopher://x/y", "heartbeat"],
      /unsupported registry URL scheme "gopher:".*expected one of s3:\/\/, file:\/\//,
    ],
    [["-r", "s3:///prefix", "heartbeat"], /missing bucket name/],
    [
      ["-r", "file:///tmp/x", "-a", "300.1.2.3", "run"],
      /invalid --address "300.1.2.3": expected an IPv4 or IPv6 address/,
    ],
    [["-r", "file:///tmp/x", "-b", "localhost", "run"], /invalid --bind "localhost"/],
    [["frobnicate"], /unknown command "frobnicate": expected one of run, heartbeat/],
    [["--frob"], /unknown flag "--frob"/],
    [["heartbeat"], /command heartbeat needs a registry/],
    [
      ["-r", "file:///tmp/x", "--http-addr", "ftp://x:1", "heartbeat"],
      /invalid consul address "ftp:\/\/x:1"/,
    ],
  ];
  for (const [argv, re] of table) {
    const r = await runCli(argv);
    assert.equal(r.code, 2, `${argv.join(" ")}: exit ${r.code}, stderr ${r.stderr}`);
    assert.equal(r.stdout, "", argv.join(" "));
    const lines = r.stderr.trimEnd().split("\n");
    assert.equal(lines.length, 1, `${argv.join(" ")}: one line, got ${r.stderr}`);
    assert.match(lines[0], /^auto-consul: /);
    assert.match(lines[0], re, argv.join(" "));
  }
});

Deno.test("a bad environment variable is named in the error", async () => {
  const r = await runCli(["status"], {
    env: { AUTO_CONSUL_REGISTRY: "file:///tmp/x", AUTO_CONSUL_EXPIRY: "forever" },
  });
  assert.equal(r.code, 2);
  assert.match(r.stderr, /invalid AUTO_CONSUL_EXPIRY "forever"/);
});

Deno.test("a secret file readable by others is warned about (0644), a 0600 one is not", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.mkdir(`${dir}/reg`);
    for (const [mode, warned] of [[0o644, true], [0o600, false]] as const) {
      const token = `${dir}/token-${mode.toString(8)}`;
      await Deno.writeTextFile(token, "s3cr3t-token-value\n");
      await Deno.chmod(token, mode);
      const r = await runCli([
        ...["-r", `file://${dir}/reg`, "--token-file", token, "--http-addr", "127.0.0.1:1"],
        "status",
      ]);
      assert.equal(r.code, 0, r.stderr);
      const line = `ACL token file ${token} is readable by others (mode 0644): chmod 600 it`;
      assert.equal(r.stderr.includes(line), warned, r.stderr);
      assert.ok(!r.stderr.includes("s3cr3t-token-value"), "the secret is never printed");
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("status --client IP is accepted like AUTO_CONSUL_CLIENT (the agent's address)", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.mkdir(`${dir}/reg`);
    const viaFlag = await runCli(["-r", `file://${dir}/reg`, "--client", "127.0.0.1", "status"]);
    const viaEnv = await runCli(["-r", `file://${dir}/reg`, "status"], {
      env: { AUTO_CONSUL_CLIENT: "127.0.0.1" },
    });
    assert.equal(viaFlag.code, 0, viaFlag.stderr);
    assert.equal(viaEnv.code, 0, viaEnv.stderr);
    assert.doesNotMatch(viaFlag.stderr, /does not apply/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
