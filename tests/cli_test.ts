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
