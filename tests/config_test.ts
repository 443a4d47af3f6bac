import assert from "node:assert/strict";
import { type Config, parseConfig } from "../src/cli/config.ts";
import { UsageError } from "../src/errors.ts";

const HOST = "web-3.example.internal";
function cfg(argv: string[], env: Record<string, string> = {}): Config {
  const p = parseConfig({ argv, env, hostname: HOST });
  if (p.kind !== "command") throw new Error(`expected a command, got ${p.kind}`);
  return p.config;
}

Deno.test("gem flags, short and long, map onto the config", () => {
  const table: [string[], Partial<Config>][] = [
    [["-r", "file:///tmp/r", "heartbeat"], {
      registry: "file:///tmp/r",
      bind: "0.0.0.0",
      node: "web-3",
    }],
    [["--registry=s3://bkt/p", "-a", "10.1.2.3", "heartbeat"], {
      bind: "10.1.2.3",
      advertise: "10.1.2.3",
    }],
    [["-r", "s3://bkt", "-b", "10.0.0.1", "--advertise", "10.0.0.2", "heartbeat"], {
      bind: "10.0.0.1",
      advertise: "10.0.0.2",
    }],
    [["-r", "s3://bkt", "-n", "db-1-a", "-d", "/srv/ac", "-c", "/etc/consul.d", "run"], {
      node: "db-1-a",
      nodeExplicit: true,
      dataDir: "/srv/ac",
      configDir: "/etc/consul.d",
    }],
    [["-r", "s3://bkt", "-e", "300", "-t", "30", "-s", "3", "run"], {
      expiry: 300,
      ticks: 30,
      servers: 3,
    }],
    [["-r", "s3://bkt", "run"], { expiry: 120, ticks: 60, servers: 1 }],
    [["set_server"], { command: "set_server", dataDir: "/var/lib/auto-consul" }],
  ];
  for (const [argv, want] of table) {
    const got = cfg(argv);
    for (const [k, v] of Object.entries(want)) {
      assert.deepEqual(got[k as keyof Config], v, `${argv.join(" ")}: ${k}`);
    }
  }
});

Deno.test("environment fallbacks: AUTO_CONSUL_*, CONSUL_HTTP_ADDR, AWS_*", () => {
  const c = cfg(["status"], {
    AUTO_CONSUL_REGISTRY: "s3://bucket/pre",
    AUTO_CONSUL_SERVERS: "5",
    AUTO_CONSUL_NODE: "n1",
    CONSUL_HTTP_ADDR: "http://127.0.0.9:8500",
    AWS_ENDPOINT_URL: "http://127.0.0.1:9000",
    AWS_REGION: "eu-west-1",
  });
  assert.equal(c.registry, "s3://bucket/pre");
  assert.equal(c.servers, 5);
  assert.equal(c.node, "n1");
  assert.equal(c.httpAddr, "http://127.0.0.9:8500");
  assert.equal(c.s3Endpoint, "http://127.0.0.1:9000");
  assert.equal(c.region, "eu-west-1");
  // The flag wins over the environment; the S3-specific endpoint over the generic one.
  const d = cfg(["-s", "3", "status"], {
    AUTO_CONSUL_REGISTRY: "s3://bkt",
    AUTO_CONSUL_SERVERS: "5",
    AWS_ENDPOINT_URL_S3: "http://127.0.0.2:9000",
    AWS_ENDPOINT_URL: "http://127.0.0.1:9000",
  });
  assert.equal(d.servers, 3);
  assert.equal(d.s3Endpoint, "http://127.0.0.2:9000");
});

Deno.test("run talks to its agent on --client", () => {
  assert.equal(cfg(["-r", "s3://bkt", "--client", "127.0.0.5", "run"]).httpAddr, "127.0.0.5:8500");
  assert.equal(cfg(["-r", "s3://bkt", "run"]).httpAddr, "127.0.0.1:8500");
  assert.equal(cfg(["-r", "s3://bkt", "run"]).client, undefined, "no -client unless given");
  assert.equal(
    cfg(["-r", "s3://bkt", "run"], { AUTO_CONSUL_CLIENT: "127.0.0.7" }).client,
    "127.0.0.7",
  );
  assert.equal(cfg(["-r", "s3://bkt", "--client", "0.0.0.0", "run"]).httpAddr, "127.0.0.1:8500");
  assert.equal(
    cfg(["-r", "s3://bkt", "--client", "127.0.0.5", "run"], { CONSUL_HTTP_ADDR: "127.0.0.6:8500" })
      .httpAddr,
    "127.0.0.6:8500",
  );
});

Deno.test("everything after -- goes to consul unchanged", () => {
  const c = cfg(["-r", "s3://bkt", "run", "--", "-ui", "-node-meta", "a:b", "--", "x"]);
  assert.deepEqual(c.consulArgs, ["-ui", "-node-meta", "a:b", "--", "x"]);
});

Deno.test("the tagger's flags with one or two dashes", () => {
  for (
    const argv of [
      ["elect", "-consul-service-name", "redis", "-consul-query-name", "sensu-redis-master"],
      ["elect", "--consul-service-name", "redis", "--consul-query-name=sensu-redis-master"],
      ["elect", "-consul-service-name=redis", "--query-name", "sensu-redis-master"],
    ]
  ) {
    const e = cfg([...argv, "-consul-query-tag", "sensu", "--consul-query-tag", "x"]).elect!;
    assert.equal(e.service, "redis", argv.join(" "));
    assert.equal(e.queryName, "sensu-redis-master");
    assert.deepEqual(e.queryTags, ["sensu", "x"]);
    assert.equal(e.lockKey, "auto-consul/elect/redis/leader");
    assert.equal(e.masterTag, "master");
  }
});

Deno.test("help and version", () => {
  assert.deepEqual(parseConfig({ argv: [], env: {}, hostname: HOST }), {
    kind: "help",
    command: undefined,
    missingCommand: true,
  });
  assert.deepEqual(parseConfig({ argv: ["run", "--help"], env: {}, hostname: HOST }), {
    kind: "help",
    command: "run",
  });
  assert.deepEqual(parseConfig({ argv: ["help", "elect"], env: {}, hostname: HOST }), {
    kind: "help",
    command: "elect",
  });
  assert.deepEqual(parseConfig({ argv: ["-v"], env: {}, hostname: HOST }), { kind: "version" });
});

Deno.test("bad values throw one-line UsageErrors naming the value and what was expected", () => {
  const table: [string[], Record<string, string>, RegExp][] = [
    [
      ["-r", "s3://bkt", "-t", "soon", "run"],
      {},
      /invalid --ticks "soon": expected a number of seconds/,
    ],
    [["-r", "s3://bkt", "-e", "-5", "run"], {}, /invalid --expiry "-5": expected/],
    [
      ["-r", "s3://bkt", "-s", "0", "run"],
      {},
      /invalid --servers "0": expected a whole number from 1 to 9/,
    ],
    [["-r", "s3://bkt", "-s", "2.5", "run"], {}, /invalid --servers "2.5"/],
    [
      ["-r", "s3://bkt", "-a", "10.0.0.256", "run"],
      {},
      /invalid --address "10.0.0.256": expected an IPv4/,
    ],
    [
      ["-r", "s3://bkt", "--advertise", "0.0.0.0", "run"],
      {},
      /invalid advertise address "0.0.0.0"/,
    ],
    [["frobnicate"], {}, /unknown command "frobnicate": expected one of run, heartbeat/],
    [["--frob", "run"], {}, /unknown flag "--frob"/],
    // the tagger's Go flags: -bogus is an unknown flag, not -b ogus (issue 12)
    [
      ["elect", "-bogus", "-consul-service-name", "r"],
      {},
      /unknown flag "-bogus": see auto-consul help elect/,
    ],
    [["elect", "--service", "r", "--check-id", "a b"], {}, /invalid --check-id "a b"/],
    [["-r"], {}, /flag "--registry" needs a value/],
    [["run"], {}, /command run needs a registry/],
    [["-r", "s3://bkt", "--json", "run"], {}, /flag --json does not apply to command run/],
    [
      ["status"],
      { AUTO_CONSUL_REGISTRY: "s3://bkt", AUTO_CONSUL_TICKS: "x" },
      /invalid AUTO_CONSUL_TICKS "x"/,
    ],
    [["-r", "s3://bkt", "-e", "30", "-t", "60", "run"], {}, /ticks 60s is longer than expiry 30s/],
    [["-r", "s3://bkt", "-n", "bad name", "run"], {}, /invalid --node "bad name"/],
    [
      ["-r", "s3://bkt", "--log-format", "xml", "run"],
      {},
      /invalid --log-format "xml": expected text or json/,
    ],
    [
      ["-r", "s3://bkt", "--s3-endpoint", "ftp://x", "run"],
      {},
      /expected an http:\/\/ or https:\/\/ URL/,
    ],
    [["elect"], {}, /elect needs the service ID/],
    [["elect", "--service", "r", "--once", "--watch"], {}, /--once and --watch exclude each other/],
    [["elect", "--service", "r", "--master-tag", "x", "--slave-tag", "x"], {}, /both "x"/],
    [
      ["--a", "10.0.0.1", "run"],
      {},
      /ambiguous flag "--a": it could be --address, --advertise or --advisory/,
    ],
    [
      ["-r", "s3://bkt", "--lo", "info", "run"],
      {},
      /ambiguous flag "--lo": it could be --log-level or --log-format/,
    ],
    [["--frob=1", "run"], {}, /unknown flag "--frob"/],
    [["-r", "s3://bkt", "--", "frob"], {}, /unknown command "frob"/],
    [
      ["status", "--", "-x"],
      { AUTO_CONSUL_REGISTRY: "s3://bkt" },
      /only run and direct_run take them/,
    ],
  ];
  for (const [argv, env, re] of table) {
    assert.throws(
      () => parseConfig({ argv, env, hostname: HOST }),
      (err: unknown) => {
        assert.ok(err instanceof UsageError, `${argv.join(" ")}: ${err}`);
        assert.match(err.message, re, argv.join(" "));
        assert.ok(!err.message.includes("\n"), "one line");
        return true;
      },
    );
  }
});

Deno.test("a hostname that is not a node name asks for --node", () => {
  assert.throws(
    () => parseConfig({ argv: ["set_server"], env: {}, hostname: "_weird" }),
    /hostname "_weird" is not a usable node name .*: set --node/,
  );
});

Deno.test("registry URLs are checked when parsing flags", () => {
  const table: [string, RegExp][] = [
    ["ftp://bucket/x", /scheme "ftp:" in "ftp:\/\/bucket\/x": expected one of s3:\/\/, file:\/\//],
    ["s3://", /bucket/],
    ["s3:///prefix", /bucket/],
    ["file://relative/path", /file/],
  ];
  for (const [url, re] of table) {
    assert.throws(
      () => parseConfig({ argv: ["-r", url, "status"], env: {}, hostname: HOST }),
      (err: unknown) =>
        err instanceof UsageError && re.test(err.message) && !err.message.includes("\n"),
      url,
    );
  }
});

Deno.test("the gem's OptionParser conventions: unique long-flag prefixes (table)", () => {
  const table: [string[], Partial<Config>][] = [
    [["--reg", "file:///tmp/r", "--data", "/d", "set_mode"], {
      registry: "file:///tmp/r",
      dataDir: "/d",
    }],
    [["--reg=file:///tmp/r", "--dat=/d", "--ser", "3", "--exp", "60", "--tick", "5", "run"], {
      registry: "file:///tmp/r",
      dataDir: "/d",
      servers: 3,
      expiry: 60,
      ticks: 5,
    }],
    // a prefix unique among the gem's flags means the gem's flag, as it did with the gem
    [["-r", "s3://bkt", "--d", "/x", "--n", "web-1", "--con", "/etc/c", "run"], {
      dataDir: "/x",
      node: "web-1",
      configDir: "/etc/c",
    }],
    [["-r", "s3://bkt", "--b", "10.0.0.9", "--adv", "10.0.0.8", "heartbeat"], {
      bind: "10.0.0.9",
      advertise: "10.0.0.8",
    }],
    // ours too, when unique for the command
    [["-r", "s3://bkt", "--http", "127.0.0.9:8500", "--log-l", "debug", "run"], {
      httpAddr: "127.0.0.9:8500",
      logLevel: "debug",
    }],
    // a flag's value is never expanded
    [["-r", "s3://bkt", "-n", "web-2", "-d", "--reg", "heartbeat"], { dataDir: "--reg" }],
    // exact names win over longer ones
    [["-r", "s3://bkt", "--node", "n1", "heartbeat"], { node: "n1" }],
  ];
  for (const [argv, want] of table) {
    const got = cfg(argv);
    for (const [k, v] of Object.entries(want)) {
      assert.deepEqual(got[k as keyof Config], v, `${argv.join(" ")}: ${k}`);
    }
  }
});

Deno.test("`-- COMMAND` and extra words after the command (warned, not errors)", () => {
  const parse = (argv: string[]) => {
    const p = parseConfig({ argv, env: {}, hostname: HOST });
    if (p.kind !== "command") throw new Error(`expected a command, got ${p.kind}`);
    return p;
  };
  let p = parse(["-r", "file:///r", "-d", "/d", "--", "heartbeat"]);
  assert.equal(p.config.command, "heartbeat");
  assert.deepEqual(p.warnings, []);
  p = parse(["-r", "file:///r", "--", "run", "-ui", "x"]);
  assert.equal(p.config.command, "run");
  assert.deepEqual(p.config.consulArgs, [], "words after -- COMMAND are not consul's");
  assert.deepEqual(p.warnings, [
    'ignoring 2 extra words after run: "-ui" "x" (consul\'s flags go after --)',
  ]);
  p = parse(["-r", "file:///r", "--", "run", "--", "-ui"]);
  assert.deepEqual(p.config.consulArgs, ["-ui"], "a second -- starts consul's arguments");
  assert.deepEqual(p.warnings, []);
  p = parse(["-r", "file:///r", "heartbeat", "extra"]);
  assert.equal(p.config.command, "heartbeat");
  assert.deepEqual(p.warnings, [
    'ignoring an extra word after heartbeat: "extra" (consul\'s flags go after --)',
  ]);
  p = parse(["-r", "file:///r", "run", "a", "-s", "2", "b", "--", "-ui"]);
  assert.equal(p.config.servers, 2, "flags after the command still count");
  assert.deepEqual(p.config.consulArgs, ["-ui"]);
  assert.match(p.warnings[0], /2 extra words after run: "a" "b"/);
});
