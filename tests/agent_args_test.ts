import assert from "node:assert/strict";
import {
  agentCommand,
  type AgentOptions,
  leaveSettingsIn,
  retryJoinArg,
  SERVER_LEAVE_OVERRIDE,
  serverJoinsOnly,
} from "../src/consul/agent_args.ts";
import { writeAgentConfig } from "../src/consul/agent_config.ts";
import {
  type ConsulVersion,
  consulVersion,
  parseConsulVersion,
  versionAtLeast,
} from "../src/consul/version.ts";
import { UsageError } from "../src/errors.ts";

const V187: ConsulVersion = { major: 1, minor: 8, patch: 7 };
const KEY = "pUqJrVyVRj5jsiYEkM/tFQYfWyJIv4s3XkvDwy7Cu5s=";
const TOKEN = "3f0e3c52-7d1b-4c4e-9a47-5b8f1e3d2c10";
const CONSUL_BIN = `${new URL("../", import.meta.url).pathname}.tools/consul/usr/bin/consul`;

const base: AgentOptions = {
  mode: "server",
  servers: 3,
  version: V187,
  bind: "10.0.0.5",
  client: "127.0.0.1",
  node: "web-1",
  dataDir: "/var/lib/auto-consul",
};

interface Case {
  name: string;
  opts: Partial<AgentOptions>;
  args: string[];
  json: Record<string, unknown>;
}

/** Every generated file: no calls home to HashiCorp's update check. */
const NO_PHONE_HOME = { disable_update_check: true, disable_anonymous_signature: true };
const SERVER_JSON = {
  ...NO_PHONE_HOME,
  leave_on_terminate: false,
  skip_leave_on_interrupt: true,
  autopilot: { cleanup_dead_servers: true, min_quorum: 3 },
};
const CLIENT_JSON = { ...NO_PHONE_HOME, leave_on_terminate: true, skip_leave_on_interrupt: false };

const CASES: Case[] = [
  {
    name: "server: -server -bootstrap-expect N, no-leave config, autopilot floor",
    opts: {},
    args: [
      "agent",
      "-server",
      "-bootstrap-expect=3",
      "-node=web-1",
      "-bind=10.0.0.5",
      "-client=127.0.0.1",
      "-data-dir=/var/lib/auto-consul/server",
      "-config-file=/var/lib/auto-consul/server-auto-consul.json",
    ],
    json: SERVER_JSON,
  },
  {
    name: "client: no -server, leaves on terminate and interrupt",
    opts: { mode: "client" },
    args: [
      "agent",
      "-node=web-1",
      "-bind=10.0.0.5",
      "-client=127.0.0.1",
      "-data-dir=/var/lib/auto-consul/agent",
      "-config-file=/var/lib/auto-consul/client-auto-consul.json",
    ],
    json: CLIENT_JSON,
  },
  {
    name: "no --client: no -client (a client_addr in the user's -config-dir decides)",
    opts: { mode: "client", client: undefined, configDir: "/etc/consul.d" },
    args: [
      "agent",
      "-node=web-1",
      "-bind=10.0.0.5",
      "-data-dir=/var/lib/auto-consul/agent",
      "-config-file=/var/lib/auto-consul/client-auto-consul.json",
      "-config-dir=/etc/consul.d",
    ],
    json: CLIENT_JSON,
  },
  {
    name: "every option, extra args appended unchanged and last",
    opts: {
      servers: 1,
      advertise: "10.0.0.6",
      dataDir: "/data/",
      configDir: "/etc/consul.d",
      datacenter: "eu-west_1",
      retryJoin: ["10.0.0.7", "fd00::1", "[fd00::2]:8301", "10.0.0.8:8301"],
      retryIntervalSeconds: 5,
      logLevel: "debug",
      extraArgs: ["-ui", "-dns-port", "-1", "--", "a b", "$(rm -rf /)", "-bootstrap-expect=9"],
    },
    args: [
      "agent",
      "-server",
      "-bootstrap-expect=1",
      "-node=web-1",
      "-bind=10.0.0.5",
      "-advertise=10.0.0.6",
      "-client=127.0.0.1",
      "-data-dir=/data/server",
      "-datacenter=eu-west_1",
      "-retry-join=10.0.0.7",
      "-retry-join=[fd00::1]",
      "-retry-join=[fd00::2]:8301",
      "-retry-join=10.0.0.8:8301",
      "-retry-interval=5s",
      "-log-level=debug",
      "-config-file=/data/server-auto-consul.json",
      "-config-dir=/etc/consul.d",
      "-hcl=leave_on_terminate = false",
      "-hcl=skip_leave_on_interrupt = true",
      "-ui",
      "-dns-port",
      "-1",
      "--",
      "a b",
      "$(rm -rf /)",
      "-bootstrap-expect=9",
    ],
    json: { ...SERVER_JSON, autopilot: { cleanup_dead_servers: true, min_quorum: 1 } },
  },
  {
    name: "IPv6 bind and client, sub-second retry interval",
    opts: { mode: "client", bind: "::", client: "::1", retryIntervalSeconds: 0.5 },
    args: [
      "agent",
      "-node=web-1",
      "-bind=::",
      "-client=::1",
      "-data-dir=/var/lib/auto-consul/agent",
      "-retry-interval=500ms",
      "-config-file=/var/lib/auto-consul/client-auto-consul.json",
    ],
    json: CLIENT_JSON,
  },
  {
    name: "secrets go to the config file: gossip key as encrypt, token as acl.tokens.agent",
    opts: { gossipKey: KEY, token: TOKEN },
    args: [
      "agent",
      "-server",
      "-bootstrap-expect=3",
      "-node=web-1",
      "-bind=10.0.0.5",
      "-client=127.0.0.1",
      "-data-dir=/var/lib/auto-consul/server",
      "-config-file=/var/lib/auto-consul/server-auto-consul.json",
    ],
    json: { ...SERVER_JSON, encrypt: KEY, acl: { tokens: { agent: TOKEN } } },
  },
  {
    name: "consul before 1.4: acl_agent_token, no min_quorum",
    opts: { mode: "server", version: { major: 1, minor: 3, patch: 1 }, token: TOKEN },
    args: [
      "agent",
      "-server",
      "-bootstrap-expect=3",
      "-node=web-1",
      "-bind=10.0.0.5",
      "-client=127.0.0.1",
      "-data-dir=/var/lib/auto-consul/server",
      "-config-file=/var/lib/auto-consul/server-auto-consul.json",
    ],
    json: {
      ...NO_PHONE_HOME,
      leave_on_terminate: false,
      skip_leave_on_interrupt: true,
      autopilot: { cleanup_dead_servers: true },
      acl_agent_token: TOKEN,
    },
  },
];

for (const c of CASES) {
  Deno.test(`agentCommand: ${c.name}`, () => {
    const got = agentCommand({ ...base, ...c.opts });
    assert.deepEqual(got.args, c.args);
    assert.deepEqual(got.configFile.json, c.json);
  });
}

Deno.test("agentCommand: min_quorum from consul 1.6.2 on", () => {
  const table: [ConsulVersion, boolean][] = [
    [{ major: 1, minor: 6, patch: 1 }, false],
    [{ major: 1, minor: 6, patch: 2 }, true],
    [V187, true],
    [{ major: 1, minor: 20, patch: 0 }, true],
    [{ major: 2, minor: 0, patch: 0 }, true],
    [{ major: 0, minor: 9, patch: 4 }, false],
  ];
  for (const [version, has] of table) {
    const json = agentCommand({ ...base, version }).configFile.json;
    const autopilot = json.autopilot as Record<string, unknown>;
    assert.equal("min_quorum" in autopilot, has, JSON.stringify(version));
    if (has) assert.equal(autopilot.min_quorum, 3);
  }
});

/** Every combination of the options that shape the generated part of the argv. */
function everyCombination(): AgentOptions[] {
  const out: AgentOptions[] = [];
  for (const mode of ["server", "client"] as const) {
    for (const servers of [1, 3, 5]) {
      for (const version of [V187, { major: 1, minor: 2, patch: 0 }]) {
        for (
          const secrets of [{}, { gossipKey: KEY }, { token: TOKEN }, {
            gossipKey: KEY,
            token: TOKEN,
          }]
        ) {
          for (const join of [[], ["10.0.0.9", "fd00::9"]]) {
            out.push({ ...base, mode, servers, version, retryJoin: join, ...secrets });
          }
        }
      }
    }
  }
  return out;
}

Deno.test("agentCommand: never -bootstrap, -server only for servers", () => {
  for (const o of everyCombination()) {
    const { args } = agentCommand(o);
    assert.ok(!args.some((a) => /^-+bootstrap(=|$)/.test(a)), args.join(" "));
    assert.equal(args.includes("-server"), o.mode === "server");
    assert.equal(args.includes(`-bootstrap-expect=${o.servers}`), o.mode === "server");
  }
});

Deno.test("a server joins without bootstrapping only when -s 1 and another server is live", () => {
  const table: [number, number, boolean][] = [
    // servers wanted, other live servers, join only
    [1, 0, false], // the first server of a -s 1 cluster bootstraps
    [1, 1, true], // a gem server (or a pinned one) is live: -bootstrap-expect=1 would split
    [1, 3, true],
    [3, 0, false],
    [3, 1, false], // consul asks the others for raft peers before bootstrapping
    [5, 4, false],
  ];
  for (const [servers, others, want] of table) {
    assert.equal(serverJoinsOnly(servers, others), want, `-s ${servers}, ${others} live`);
  }
  const { args } = agentCommand({ ...base, servers: 1, joinOnly: true });
  assert.ok(args.includes("-server"));
  assert.ok(!args.some((a) => a.startsWith("-bootstrap")), args.join(" "));
  const client = agentCommand({ ...base, mode: "client", joinOnly: true }).args;
  assert.ok(!client.includes("-server"), "joinOnly means nothing for a client");
});

Deno.test("agentCommand: secrets never in argv, always in the config file", () => {
  for (const o of everyCombination()) {
    const { args, configFile } = agentCommand(o);
    const argv = args.join("\0");
    assert.ok(!argv.includes(KEY) && !argv.includes(TOKEN), argv);
    assert.ok(!argv.includes("-encrypt") && !argv.includes("token"), argv);
    const text = JSON.stringify(configFile.json);
    assert.equal(text.includes(KEY), o.gossipKey !== undefined);
    assert.equal(text.includes(TOKEN), o.token !== undefined);
  }
});

Deno.test("agentCommand: extra args are the unchanged tail of the argv", () => {
  const extra = ["-hcl", "ports { dns = -1 }", "--", "", " -x ", "-config-file=/etc/evil.json"];
  for (const o of everyCombination()) {
    const { args } = agentCommand({ ...o, extraArgs: extra });
    assert.deepEqual(args.slice(-extra.length), extra);
    assert.deepEqual(agentCommand(o).args, args.slice(0, -extra.length));
  }
});

Deno.test("agentCommand: bad input is rejected with the value named", () => {
  const bad: [Partial<AgentOptions>, RegExp][] = [
    [{ servers: 0 }, /invalid number of servers 0/],
    [{ servers: 2.5 }, /invalid number of servers 2.5/],
    [{ mode: "leader" as "server" }, /invalid agent mode "leader"/],
    [{ bind: "example.com" }, /invalid bind address "example.com"/],
    [{ advertise: "-bootstrap" }, /invalid advertise address "-bootstrap"/],
    [{ client: "1.2.3" }, /invalid client address "1.2.3"/],
    [{ node: "-bootstrap" }, /invalid node name "-bootstrap"/],
    [{ node: "a b" }, /invalid node name "a b"/],
    [{ dataDir: "" }, /invalid data dir ""/],
    [{ datacenter: "dc 1" }, /invalid datacenter "dc 1"/],
    [{ retryIntervalSeconds: 0 }, /invalid retry interval 0/],
    [{ logLevel: "info -bootstrap" }, /invalid consul log level/],
    [{ retryJoin: ["10.0.0.1", "-bootstrap"] }, /invalid join address "-bootstrap"/],
  ];
  for (const [opts, re] of bad) {
    assert.throws(() => agentCommand({ ...base, ...opts }), re, JSON.stringify(opts));
  }
});

Deno.test("retryJoinArg: IPv4 as is, IPv6 bracketed, ports kept, the rest rejected", () => {
  const ok: [string, string][] = [
    ["10.1.2.3", "10.1.2.3"],
    [" 10.1.2.3 ", "10.1.2.3"],
    ["::1", "[::1]"],
    ["fe80::1:2", "[fe80::1:2]"],
    ["[::1]", "[::1]"],
    ["[fd00::1]:8301", "[fd00::1]:8301"],
    ["10.1.2.3:8301", "10.1.2.3:8301"],
  ];
  for (const [input, want] of ok) assert.equal(retryJoinArg(input), want, input);
  for (
    const input of [
      "",
      "consul.example",
      "10.1.2",
      "[10.1.2.3]x",
      "fe80::1%eth0",
      "1.2.3.4:0",
      "1.2.3.4:99999",
      "provider=aws",
    ]
  ) {
    assert.throws(() => retryJoinArg(input), /invalid join address/, input);
  }
});

Deno.test("parseConsulVersion and versionAtLeast", () => {
  assert.deepEqual(
    parseConsulVersion("Consul v1.8.7\nProtocol 2 spoken by default\n"),
    V187,
  );
  assert.deepEqual(parseConsulVersion("Consul v1.17.0-rc1\nRevision abc\n"), {
    major: 1,
    minor: 17,
    patch: 0,
  });
  assert.deepEqual(parseConsulVersion("Consul v1.10.3+ent\n"), { major: 1, minor: 10, patch: 3 });
  assert.throws(() => parseConsulVersion("Nomad v1.8.7"), /expected "Consul vX.Y.Z"/);
  assert.ok(versionAtLeast(V187, { major: 1, minor: 8, patch: 7 }));
  assert.ok(versionAtLeast(V187, { major: 1, minor: 6, patch: 2 }));
  assert.ok(!versionAtLeast(V187, { major: 1, minor: 10, patch: 0 }));
  assert.ok(!versionAtLeast(V187, { major: 2, minor: 0, patch: 0 }));
});

Deno.test("consulVersion: the real binary, and a clear error for a missing one", async () => {
  assert.deepEqual(await consulVersion(CONSUL_BIN), V187);
  await assert.rejects(
    consulVersion("/nonexistent/consul"),
    (err: unknown) =>
      err instanceof UsageError &&
      err.message ===
        'consul binary "/nonexistent/consul" not found: install consul or give --consul-bin',
  );
});

Deno.test("writeAgentConfig: 0600 file the real consul accepts", async () => {
  const dir = await Deno.makeTempDir({ prefix: "auto-consul-args-" });
  try {
    const cmd = agentCommand({
      ...base,
      dataDir: `${dir}/data`,
      gossipKey: KEY,
      token: TOKEN,
    });
    await writeAgentConfig(cmd.configFile);
    await writeAgentConfig(cmd.configFile); // rewriting over an existing file works too
    const info = await Deno.stat(cmd.configFile.path);
    assert.equal(info.mode! & 0o777, 0o600);
    assert.deepEqual(JSON.parse(await Deno.readTextFile(cmd.configFile.path)), cmd.configFile.json);
    assert.deepEqual([...Deno.readDirSync(`${dir}/data`)].map((e) => e.name), [
      "server-auto-consul.json",
    ]);
    // consul 1.8.7 knows every key we write (min_quorum, acl.tokens.agent, encrypt); the
    // flags' part of the config comes from a second file, as validate reads no flags.
    const flags = `${dir}/flags.json`;
    await Deno.writeTextFile(
      flags,
      JSON.stringify({ server: true, bootstrap_expect: 3, data_dir: `${dir}/data/server` }),
    );
    const out = await new Deno.Command(CONSUL_BIN, {
      args: ["validate", "-quiet", flags, cmd.configFile.path],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a -c file that makes servers leave on signals is named (issue 10); servers override it", () => {
  const table: [string, string[]][] = [
    [`{"leave_on_terminate": true}`, ["leave_on_terminate = true"]],
    [`{ "skip_leave_on_interrupt" : false, "server": true }`, ["skip_leave_on_interrupt = false"]],
    [`leave_on_terminate = true\nskip_leave_on_interrupt = false\n`, [
      "leave_on_terminate = true",
      "skip_leave_on_interrupt = false",
    ]],
    [`{"leave_on_terminate": false, "skip_leave_on_interrupt": true}`, []],
    [`{"leave_on_terminate_x": true}`, []],
    [`{"datacenter": "dc1"}`, []],
  ];
  for (const [text, want] of table) assert.deepEqual(leaveSettingsIn(text), want, text);
  const server = agentCommand({ ...base, mode: "server", configDir: "/etc/consul.d" }).args;
  const i = server.indexOf("-config-dir=/etc/consul.d");
  assert.deepEqual(server.slice(i + 1, i + 3), [...SERVER_LEAVE_OVERRIDE], "after -config-dir");
  const client = agentCommand({ ...base, mode: "client", configDir: "/etc/consul.d" }).args;
  assert.ok(!client.some((a) => a.startsWith("-hcl=")), "clients may leave");
});
