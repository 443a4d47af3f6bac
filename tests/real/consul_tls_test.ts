/**
 * Consul's client environment (issue 12 build 4): every command reaches an HTTPS-only agent
 * (verify_incoming_https, a CA made by the test with `consul tls ca create`) through the
 * environment variables alone; the same over the agent's unix socket. The server certificate
 * is made WITHOUT the agent's random IP among its names, so a run that reaches it by IP works
 * only when CONSUL_TLS_SERVER_NAME (or CONSUL_HTTP_SSL_VERIFY=false) is honoured.
 * `run`, `direct_run`, `set_agent`, `set_server` and `set_mode` with the same variables: run starts
 * a consul serving HTTPS only (client certificates required) and writes heartbeats, which it
 * does only once it has reached that agent's API (beat.ts).
 * Parsing without an agent: basic auth, namespace, bad values.
 */
import assert from "node:assert/strict";
import {
  clientFor,
  connectConsul,
  type ConsulConnection,
  consulConnection,
} from "../../src/consul/connect.ts";
import { Logger } from "../../src/log.ts";
import { type CliProcess, runCli, spawnCli } from "../harness/cli.ts";
import { waitFor } from "../harness/wait.ts";
import { consulBin, randomLoopbackIp, startAgent } from "../harness/consul.ts";

async function consul(args: string[], cwd: string): Promise<void> {
  const out = await new Deno.Command(consulBin(), { args, cwd, stdout: "piped", stderr: "piped" })
    .output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
}

const SERVICE = "web";

Deno.test("every command against an HTTPS-only agent through consul's environment variables", async () => {
  const dir = await Deno.makeTempDir({ prefix: "consul-tls-" });
  try {
    await consul(["tls", "ca", "create"], dir);
    await consul(["tls", "cert", "create", "-server"], dir); // names: server.dc1.consul, localhost
    await consul(["tls", "cert", "create", "-client"], dir);
    await Deno.mkdir(`${dir}/cas`);
    await Deno.copyFile(`${dir}/consul-agent-ca.pem`, `${dir}/cas/ca.pem`);
    const sock = `${dir}/consul.sock`;
    const tlsEnv = {
      CONSUL_CACERT: `${dir}/consul-agent-ca.pem`,
      CONSUL_CLIENT_CERT: `${dir}/dc1-client-consul-0.pem`,
      CONSUL_CLIENT_KEY: `${dir}/dc1-client-consul-0-key.pem`,
      CONSUL_TLS_SERVER_NAME: "server.dc1.consul",
    };
    const ip = randomLoopbackIp();
    const env: Record<string, string> = { ...tlsEnv, CONSUL_HTTP_ADDR: `https://${ip}:8501` };
    const agent = await startAgent({
      server: true,
      ip,
      hcl: [
        `ports { http = -1, https = 8501 }`,
        `addresses { https = "${ip} unix://${sock}" }`,
        `ca_file = "${dir}/consul-agent-ca.pem"`,
        `cert_file = "${dir}/dc1-server-consul-0.pem"`,
        `key_file = "${dir}/dc1-server-consul-0-key.pem"`,
        `verify_incoming_https = true`,
      ],
      client: () => connectConsul(env.CONSUL_HTTP_ADDR, env, { timeoutMs: 3_000 }),
    });
    try {
      await agent.client.serviceRegister({ ID: SERVICE, Name: SERVICE, Port: 80 });
      const reg = `${dir}/registry`;
      await Deno.mkdir(reg);

      const cli = (args: string[], extra: Record<string, string> = {}) =>
        runCli(args, { env: { ...env, ...extra }, timeoutMs: 60_000 });

      const elect = await cli(["elect", "--service", SERVICE, "-d", `${dir}/d1`, "--json"]);
      assert.equal(elect.code, 0, elect.stderr);
      assert.equal(JSON.parse(elect.stdout).role, "master");
      const hb = await cli(["-r", `file://${reg}`, "-d", `${dir}/d1`, "heartbeat"]);
      assert.equal(hb.code, 0, hb.stderr);
      const st = await cli(["-r", `file://${reg}`, "status", "--json"]);
      assert.equal(st.code, 0, st.stderr);
      assert.match(st.stdout, new RegExp(agent.node));

      // CONSUL_CAPATH instead of CONSUL_CACERT
      const byPath = await cli(["elect", "--service", SERVICE, "-d", `${dir}/d1`], {
        CONSUL_CACERT: "",
        CONSUL_CAPATH: `${dir}/cas`,
      });
      assert.equal(byPath.code, 0, byPath.stderr);
      // the agent's unix socket: Consul 1.8.7 serves plain http on a socket even when it is
      // listed under addresses.https (checked here: TLS on it fails "wrong version number")
      const unix = await cli(["elect", "--service", SERVICE, "-d", `${dir}/d1`, "--json"], {
        CONSUL_HTTP_ADDR: `unix://${sock}`,
      });
      assert.equal(unix.code, 0, unix.stderr);
      assert.equal(JSON.parse(unix.stdout).role, "master");
      // CONSUL_HTTP_SSL=true turns a scheme-less address into https
      const ssl = await cli(["elect", "--service", SERVICE, "-d", `${dir}/d1`], {
        CONSUL_HTTP_ADDR: `${agent.ip}:8501`,
        CONSUL_HTTP_SSL: "true",
      });
      assert.equal(ssl.code, 0, ssl.stderr);
      // not verifying the certificate: no CA and no server name needed
      const noVerify = await cli(["elect", "--service", SERVICE, "-d", `${dir}/d1`], {
        CONSUL_CACERT: "",
        CONSUL_TLS_SERVER_NAME: "",
        CONSUL_HTTP_SSL_VERIFY: "false",
      });
      assert.equal(noVerify.code, 0, noVerify.stderr);

      // each variable matters: one clear line and the command's error code without it
      const failures: [string, Record<string, string>, RegExp][] = [
        ["no CA", { CONSUL_CACERT: "" }, /unreachable.*(certificate|issuer)/i],
        ["no server name", { CONSUL_TLS_SERVER_NAME: "" }, /unreachable.*(altnames|match)/i],
        ["no client certificate", { CONSUL_CLIENT_CERT: "", CONSUL_CLIENT_KEY: "" }, /unreachable/],
        ["plain http", { CONSUL_HTTP_ADDR: `http://${agent.ip}:8501` }, /unreachable|failed/],
      ];
      for (const [what, extra, re] of failures) {
        const r = await cli(["elect", "--service", SERVICE, "-d", `${dir}/d1`], extra);
        assert.equal(r.code, 2, `${what}: ${r.stderr}`);
        const lines = r.stderr.trim().split("\n");
        assert.equal(lines.length, 1, `${what}: ${r.stderr}`);
        assert.match(lines[0], re, what);
      }
      const hbNoCa = await cli(["-r", `file://${reg}`, "-d", `${dir}/d1`, "heartbeat"], {
        CONSUL_CACERT: "",
      });
      assert.notEqual(hbNoCa.code, 0, "heartbeat without the CA fails");
      // a missing CA file is a usage error naming the variable and the path
      const missing = await cli(["elect", "--service", SERVICE, "-d", `${dir}/d1`], {
        CONSUL_CACERT: `${dir}/nope.pem`,
      });
      assert.equal(missing.code, 2);
      assert.match(missing.stderr, /cannot read CONSUL_CACERT ".*nope\.pem"/);
      // a namespace reaches consul: OSS 1.8 refuses it with its own clear message
      const ns = await cli(["elect", "--service", SERVICE, "-d", `${dir}/d1`], {
        CONSUL_NAMESPACE: "team-a",
      });
      assert.equal(ns.code, 2);
      assert.match(ns.stderr, /Namespaces are a Consul Enterprise feature/);
    } finally {
      await agent.dispose();
    }
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});

/** A CA and a server certificate (names server.dc1.consul, localhost) made by consul 1.8. */
async function makeCa(dir: string): Promise<{ tlsEnv: Record<string, string>; hcl: string[] }> {
  await consul(["tls", "ca", "create"], dir);
  await consul(["tls", "cert", "create", "-server"], dir);
  await consul(["tls", "cert", "create", "-client"], dir);
  return {
    tlsEnv: {
      CONSUL_CACERT: `${dir}/consul-agent-ca.pem`,
      CONSUL_CLIENT_CERT: `${dir}/dc1-client-consul-0.pem`,
      CONSUL_CLIENT_KEY: `${dir}/dc1-client-consul-0-key.pem`,
      CONSUL_TLS_SERVER_NAME: "server.dc1.consul",
    },
    hcl: [
      `ca_file = "${dir}/consul-agent-ca.pem"`,
      `cert_file = "${dir}/dc1-server-consul-0.pem"`,
      `key_file = "${dir}/dc1-server-consul-0-key.pem"`,
      `verify_incoming_https = true`,
    ],
  };
}

/** The newest heartbeat of `node` in `dir` (its file name), when there is one. */
async function beatOf(dir: string, node: string): Promise<string | undefined> {
  const names: string[] = [];
  try {
    for await (const e of Deno.readDir(dir)) if (e.name.endsWith(`-${node}`)) names.push(e.name);
  } catch { /* not yet */ }
  return names.sort().at(-1);
}

Deno.test("run, direct_run and the mode commands against an HTTPS-only consul, through the environment variables alone", async () => {
  const dir = await Deno.makeTempDir({ prefix: "consul-tls-run-" });
  const procs: CliProcess[] = [];
  try {
    const { tlsEnv, hcl } = await makeCa(dir);
    const ip = randomLoopbackIp();
    const node = "tls-node";
    const env = { ...tlsEnv, CONSUL_HTTP_ADDR: `https://${ip}:8501` };
    const common = ["-r", `file://${dir}/reg`, "-n", node, "-d", `${dir}/data`, "-a", ip];
    // the consul run starts serves its API over HTTPS only, client certificates required
    const consulArgs = [
      "--",
      "-dns-port=-1",
      "-grpc-port=-1",
      ...["-hcl", "performance { raft_multiplier = 1 }"],
      ...["-hcl", "ports { http = -1, https = 8501 }"],
      ...hcl.flatMap((h) => ["-hcl", h]),
    ];
    const flags = ["--client", ip, "-s", "1", "-t", "2", "-e", "10", "--consul-bin", consulBin()];
    const api = connectConsul(env.CONSUL_HTTP_ADDR, env, { timeoutMs: 2_000 });
    const cli = (args: string[]) => runCli(args, { env, timeoutMs: 60_000 });
    /** Runs `command` until its consul has a leader and it wrote a heartbeat newer than `after`. */
    const runUntilBeat = async (command: string, after?: string) => {
      const p = spawnCli([...common, ...flags, command, ...consulArgs], { env });
      procs.push(p);
      try {
        await waitFor(() => api.leader().catch(() => undefined), {
          what: `a leader under ${command}`,
          timeoutMs: 90_000,
          intervalMs: 250,
        });
        // a heartbeat is written only once run has reached its agent's HTTP API (beat.ts)
        const beat = await waitFor(async () => {
          const b = await beatOf(`${dir}/reg/servers`, node);
          return b !== undefined && (after === undefined || b > after) ? b : undefined;
        }, { what: `a heartbeat from ${command}`, timeoutMs: 60_000, intervalMs: 250 });
        // up to now (not while consul stops below), the agent always answered over HTTPS
        const upToNow = p.lines.join("\n");
        assert.doesNotMatch(upToNow, /heartbeat failed|unreachable/i, p.tail());
        return beat;
      } catch (err) {
        throw new Error(`${err}\n${p.tail()}`);
      } finally {
        await p.stop("SIGTERM", 30_000);
      }
    };

    const first = await runUntilBeat("run");
    // the mode commands with the same environment (they read the registry and the data dir)
    const setAgent = await cli([...common, "set_agent"]);
    assert.equal(setAgent.code, 0, setAgent.stderr);
    assert.equal(await Deno.readTextFile(`${dir}/data/mode`), "agent");
    const setServer = await cli([...common, "set_server"]);
    assert.equal(setServer.code, 0, setServer.stderr);
    assert.equal(await Deno.readTextFile(`${dir}/data/mode`), "server");
    const setMode = await cli([...common, "-s", "1", "set_mode"]);
    assert.equal(setMode.code, 0, setMode.stderr);
    assert.equal(setMode.stdout.trim(), "server");
    // direct_run: the recorded mode, the same HTTPS-only agent
    await runUntilBeat("direct_run", first);
  } finally {
    await Promise.allSettled(procs.map((p) => p.stop("SIGKILL", 5_000)));
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});

Deno.test("consulConnection: consul's variables, one clear line for bad values", () => {
  const files = {
    readText: (p: string) => {
      if (p.endsWith("ca.pem") || p.endsWith("cert.pem")) return "-----BEGIN CERTIFICATE-----\n";
      if (p.endsWith("key.pem")) return "-----BEGIN EC PRIVATE KEY-----\n";
      if (p.endsWith("junk.txt")) return "hello";
      throw new Deno.errors.NotFound("No such file or directory (os error 2)");
    },
    listFiles: (d: string) => d === "/cas" ? ["/cas/a-ca.pem", "/cas/b-ca.pem"] : ["/bad/junk.txt"],
  };
  const c = (addr: string, env: Record<string, string>): ConsulConnection =>
    consulConnection(addr, env, files);
  assert.deepEqual(c("127.0.0.1:8500", {}), {
    label: "127.0.0.1:8500",
    baseUrl: "http://127.0.0.1:8500",
  });
  // TLS material only for https
  assert.equal(c("127.0.0.1:8500", { CONSUL_CACERT: "/x/ca.pem" }).tls, undefined);
  assert.deepEqual(c("127.0.0.1:8501", { CONSUL_HTTP_SSL: "1", CONSUL_CACERT: "/x/ca.pem" }), {
    label: "127.0.0.1:8501",
    baseUrl: "https://127.0.0.1:8501",
    tls: { verify: true, ca: ["-----BEGIN CERTIFICATE-----\n"] },
  });
  // CONSUL_CACERT wins over CONSUL_CAPATH, as in consul's library
  assert.equal(c("https://h:8501", { CONSUL_CAPATH: "/cas" }).tls?.ca?.length, 2);
  assert.equal(
    c("https://h:8501", { CONSUL_CAPATH: "/cas", CONSUL_CACERT: "/x/ca.pem" }).tls?.ca?.length,
    1,
  );
  const full = c("https://h:8501", {
    CONSUL_CLIENT_CERT: "/x/cert.pem",
    CONSUL_CLIENT_KEY: "/x/key.pem",
    CONSUL_TLS_SERVER_NAME: "server.dc1.consul",
    CONSUL_HTTP_SSL_VERIFY: "false",
  });
  assert.equal(full.tls?.serverName, "server.dc1.consul");
  assert.equal(full.tls?.verify, false);
  assert.ok(full.tls?.cert && full.tls.key);
  // unix sockets: http unless CONSUL_HTTP_SSL
  assert.deepEqual(c("unix:///run/consul/http.sock", {}), {
    label: "unix:///run/consul/http.sock",
    baseUrl: "http://localhost",
    unixPath: "/run/consul/http.sock",
  });
  assert.equal(c("unix:///s", { CONSUL_HTTP_SSL: "true" }).baseUrl, "https://localhost");
  assert.equal(c("h:1", { CONSUL_HTTP_AUTH: "ops:s3cret" }).basicAuth, "ops:s3cret");
  assert.equal(c("h:1", { CONSUL_NAMESPACE: "team-a" }).namespace, "team-a");

  const bad: [string, Record<string, string>, RegExp][] = [
    ["unix://relative", {}, /expected unix:\/\/\/absolute/],
    ["ftp://h", {}, /unknown scheme "ftp"/],
    [
      "h:1",
      { CONSUL_HTTP_SSL: "maybe" },
      /invalid CONSUL_HTTP_SSL "maybe": expected true or false/,
    ],
    ["https://h", { CONSUL_HTTP_SSL_VERIFY: "no" }, /invalid CONSUL_HTTP_SSL_VERIFY "no"/],
    ["https://h", { CONSUL_CACERT: "/x/none.pem" }, /cannot read CONSUL_CACERT "\/x\/none.pem"/],
    ["https://h", { CONSUL_CAPATH: "/bad" }, /CONSUL_CAPATH file "\/bad\/junk.txt" is not a PEM/],
    ["https://h", { CONSUL_CLIENT_CERT: "/x/cert.pem" }, /CONSUL_CLIENT_CERT is set without/],
    ["https://h", { CONSUL_CLIENT_KEY: "/x/key.pem" }, /CONSUL_CLIENT_KEY is set without/],
    ["https://h", { CONSUL_TLS_SERVER_NAME: "a b" }, /invalid CONSUL_TLS_SERVER_NAME "a b"/],
    ["h:1", { CONSUL_NAMESPACE: "a/b" }, /invalid CONSUL_NAMESPACE "a\/b"/],
  ];
  for (const [addr, env, re] of bad) {
    assert.throws(() => c(addr, env), re, `${addr} ${JSON.stringify(env)}`);
  }
});

Deno.test("basic auth and namespace are on every request; the password is never logged", async () => {
  const seen: Request[] = [];
  const fake: typeof fetch = (input, init) => {
    seen.push(new Request(input, init));
    return Promise.resolve(new Response(JSON.stringify({ Config: { NodeName: "n1" } })));
  };
  const env = { CONSUL_HTTP_AUTH: "ops:s3cret-pw", CONSUL_NAMESPACE: "team-a" };
  // the real client, with only the transport swapped
  const client = clientFor(consulConnection("127.0.0.1:8500", env), { fetch: fake });
  assert.equal(client.address, "127.0.0.1:8500");
  assert.equal((await client.self()).node, "n1");
  await client.kvGet("a/b", {}).catch(() => {});
  assert.equal(seen.length, 2);
  for (const r of seen) {
    assert.equal(r.headers.get("authorization"), `Basic ${btoa("ops:s3cret-pw")}`);
    assert.equal(new URL(r.url).searchParams.get("ns"), "team-a");
  }
  const lines: string[] = [];
  new Logger({ sink: (l) => lines.push(l) }).error("proxy said no to ops:s3cret-pw (s3cret-pw)");
  assert.doesNotMatch(lines.join("\n"), /s3cret/);
});
