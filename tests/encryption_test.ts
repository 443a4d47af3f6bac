/**
 * Gossip encryption at start (issue 16): where the key in force comes from, the warning when
 * there is none, --require-encryption, and recognising a join refused at the handshake.
 */
import assert from "node:assert/strict";
import { parseConfig } from "../src/cli/config.ts";
import {
  checkEncryption,
  configSetsEncrypt,
  consulEnvironment,
  gossipKeySource,
  handshakeRefusal,
  NO_KEY_WARNING,
} from "../src/consul/encryption.ts";
import { spawnConsul } from "../src/consul/process.ts";
import { UsageError } from "../src/errors.ts";
import { Logger } from "../src/log.ts";

const KEY = "pUqJrVyVRj5jsiYEkM/tFQYfWyJIv4s3XkvDwy7Cu5s=";

async function withDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix: "auto-consul-enc-" });
  try {
    return await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function capture(): { log: Logger; lines: string[] } {
  const lines: string[] = [];
  return { log: new Logger({ sink: (l) => lines.push(l), level: "debug" }), lines };
}

Deno.test("configSetsEncrypt: JSON and HCL, not comments or encrypt_verify_*", () => {
  const table: [string, string, boolean][] = [
    ["a.json", `{"encrypt": "${KEY}"}`, true],
    ["a.json", `{"encrypt": ""}`, false],
    ["a.json", `{"encrypt_verify_incoming": true}`, false],
    ["a.json", `{"acl": {"encrypt": "x"}}`, false],
    ["a.json", `{not json`, false],
    ["a.hcl", `encrypt = "${KEY}"`, true],
    ["a.hcl", `  encrypt="${KEY}"\nserver = true`, true],
    ["a.hcl", `# encrypt = "${KEY}"`, false],
    ["a.hcl", `encrypt_verify_outgoing = false`, false],
    ["a.hcl", `datacenter = "encrypt"`, false],
  ];
  for (const [name, text, want] of table) {
    assert.equal(configSetsEncrypt(name, text), want, `${name}: ${text}`);
  }
});

Deno.test("gossipKeySource: key, -c dir, consul args, keyring, none", async () => {
  await withDir(async (dir) => {
    const data = `${dir}/data`;
    const base = { consulArgs: [], dataDir: data };
    assert.equal(await gossipKeySource(base), undefined);
    assert.deepEqual(await gossipKeySource({ ...base, gossipKey: KEY }), {
      kind: "gossip-key",
      from: "AUTO_CONSUL_GOSSIP_KEY",
    });
    assert.deepEqual(
      await gossipKeySource({ ...base, gossipKey: KEY, gossipKeyFile: "/etc/k" }),
      { kind: "gossip-key", from: "--gossip-key-file /etc/k" },
    );

    // -c dir: a file without encrypt does not count, one with it does
    const conf = `${dir}/consul.d`;
    await Deno.mkdir(conf);
    await Deno.writeTextFile(`${conf}/10-base.hcl`, `datacenter = "dc1"\n`);
    assert.equal(await gossipKeySource({ ...base, configDir: conf }), undefined);
    await Deno.writeTextFile(`${conf}/20-gossip.json`, JSON.stringify({ encrypt: KEY }));
    assert.deepEqual(await gossipKeySource({ ...base, configDir: conf }), {
      kind: "config",
      path: `${conf}/20-gossip.json`,
    });
    // a missing -c dir is consul's problem, not a key
    assert.equal(await gossipKeySource({ ...base, configDir: `${dir}/nope` }), undefined);

    // consul's own arguments after --
    for (const args of [["-encrypt", KEY], [`-encrypt=${KEY}`], ["-hcl", `encrypt = "${KEY}"`]]) {
      assert.equal((await gossipKeySource({ ...base, consulArgs: args }))?.kind, "consul-args");
    }
    assert.deepEqual(
      await gossipKeySource({ ...base, consulArgs: ["-dns-port=-1", `-config-dir=${conf}`] }),
      { kind: "config", path: `${conf}/20-gossip.json` },
    );
    assert.deepEqual(
      await gossipKeySource({ ...base, consulArgs: ["-config-file", `${conf}/20-gossip.json`] }),
      { kind: "config", path: `${conf}/20-gossip.json` },
    );
    assert.equal(
      await gossipKeySource({ ...base, consulArgs: ["-hcl", "encrypt_verify_incoming = false"] }),
      undefined,
    );

    // consul keeps the key in its data dir once it ran with one, and uses it from then on
    await Deno.mkdir(`${data}/client/serf`, { recursive: true });
    await Deno.writeTextFile(`${data}/client/serf/local.keyring`, `["${KEY}"]`);
    assert.deepEqual(await gossipKeySource(base), {
      kind: "keyring",
      path: `${data}/client/serf/local.keyring`,
    });
    await Deno.remove(`${data}/client`, { recursive: true });
    assert.equal(await gossipKeySource(base), undefined);
    await Deno.mkdir(`${data}/agent/serf`, { recursive: true });
    await Deno.writeTextFile(`${data}/agent/serf/local.keyring`, `["${KEY}"]`);
    assert.deepEqual(await gossipKeySource(base), {
      kind: "keyring",
      path: `${data}/agent/serf/local.keyring`,
    });
  });
});

Deno.test("checkEncryption: warns once without a key, refuses with --require-encryption", async () => {
  await withDir(async (dir) => {
    const input = { consulArgs: [], dataDir: dir, require: false };
    const a = capture();
    assert.equal(await checkEncryption(input, a.log), undefined);
    assert.equal(a.lines.length, 1);
    assert.match(a.lines[0], /WARN/);
    assert.ok(a.lines[0].includes(NO_KEY_WARNING), a.lines[0]);
    assert.match(a.lines[0], /--gossip-key-file/);

    const b = capture();
    await assert.rejects(
      () => checkEncryption({ ...input, require: true }, b.log),
      (err: Error) =>
        err instanceof UsageError && /--require-encryption: no gossip key is in force/.test(
          err.message,
        ) && !err.message.includes("\n"),
    );
    assert.equal(b.lines.length, 0);

    const c = capture();
    const got = await checkEncryption({ ...input, gossipKey: KEY, require: true }, c.log);
    assert.equal(got?.kind, "gossip-key");
    assert.equal(c.lines.length, 1);
    assert.doesNotMatch(c.lines[0], /WARN/);
    assert.ok(!c.lines[0].includes(KEY), "the key itself is never logged");
  });
});

Deno.test("--require-encryption: flag and AUTO_CONSUL_REQUIRE_ENCRYPTION, run commands only", () => {
  const parse = (argv: string[], env: Record<string, string> = {}) => {
    const p = parseConfig({ argv, env, hostname: "h1" });
    if (p.kind !== "command") throw new Error(p.kind);
    return p.config;
  };
  assert.equal(parse(["-r", "file:///tmp/r", "run"]).requireEncryption, false);
  assert.equal(
    parse(["-r", "file:///tmp/r", "--require-encryption", "run"]).requireEncryption,
    true,
  );
  assert.equal(parse(["direct_run", "--require-encryption"]).requireEncryption, true);
  assert.equal(
    parse(["-r", "file:///tmp/r", "run"], { AUTO_CONSUL_REQUIRE_ENCRYPTION: "1" })
      .requireEncryption,
    true,
  );
  assert.throws(
    () => parse(["-r", "file:///tmp/r", "run"], { AUTO_CONSUL_REQUIRE_ENCRYPTION: "maybe" }),
    /invalid AUTO_CONSUL_REQUIRE_ENCRYPTION "maybe": expected true or false/,
  );
  assert.throws(
    () => parse(["-r", "file:///tmp/r", "--require-encryption", "status"]),
    /flag --require-encryption does not apply to command status/,
  );
});

Deno.test("handshakeRefusal: consul's three key-mismatch errors, nothing else", () => {
  const table: [string, RegExp | undefined][] = [
    [
      "1 error occurred:\n\t* Failed to join 127.1.2.3: Encryption is configured but remote state is not encrypted",
      /has no gossip key/,
    ],
    [
      "Failed to join 127.1.2.3: Remote state is encrypted and encryption is not configured",
      /this agent has none/,
    ],
    ["Failed to join 10.0.0.1: No installed keys could decrypt the message", /differs/],
    ["Failed to join 10.0.0.1: dial tcp 10.0.0.1:8301: connect: connection refused", undefined],
    ["i/o timeout", undefined],
  ];
  for (const [msg, want] of table) {
    const got = handshakeRefusal(msg);
    if (want) assert.match(got ?? "", want, msg);
    else assert.equal(got, undefined, msg);
  }
});

Deno.test("consul's environment: everything but the gossip key", async () => {
  assert.deepEqual(
    consulEnvironment({ PATH: "/bin", AUTO_CONSUL_GOSSIP_KEY: KEY, CONSUL_HTTP_TOKEN: "t" }),
    { PATH: "/bin", CONSUL_HTTP_TOKEN: "t" },
  );
  // The real spawn path: a stand-in "consul" that prints its environment.
  Deno.env.set("AUTO_CONSUL_GOSSIP_KEY", KEY);
  Deno.env.set("AUTO_CONSUL_TEST_MARKER", "seen");
  try {
    const lines: string[] = [];
    const p = await spawnConsul({
      bin: "env",
      args: [],
      onLine: (_s, l) => lines.push(l),
      deathSignal: null,
      newSession: false,
    });
    assert.equal((await p.status).code, 0);
    assert.ok(lines.includes("AUTO_CONSUL_TEST_MARKER=seen"), lines.join("\n"));
    assert.ok(!lines.some((l) => l.includes(KEY)), "the key is not in consul's environment");
  } finally {
    Deno.env.delete("AUTO_CONSUL_GOSSIP_KEY");
    Deno.env.delete("AUTO_CONSUL_TEST_MARKER");
  }
});
