/**
 * The release artifacts end to end. `deno task bundle` builds dist/auto-consul.js offline and
 * the CLI runs from it with exactly the compile task's permissions (read from deno.json, never
 * `-A`): --version, heartbeat, status, set_mode, set_server, run and elect against real consul,
 * and a `kill -9` of `run` with setpriv hidden from PATH (no parent-death signal): the next `run`
 * stops the orphaned consul and runs one consul, without a crash loop. The compiled binary
 * (`deno task compile`) needs denort: it is built and run when DENORT_BIN is set, and the test
 * reports itself as ignored otherwise.
 */
import assert from "node:assert/strict";
import { consulsOnDataDir, liveConsulPid, Proc, REPO, TEST_CONSUL_ARGS } from "../harness/proc.ts";
import { procStartTime } from "../../src/consul/pidfile.ts";
import { consulBin, randomLoopbackIp, withCluster } from "../harness/consul.ts";
import { waitFor } from "../harness/wait.ts";
import { withS3Server } from "../harness/s3.ts";
import { ConsulClient } from "../../src/consul/client.ts";

const dec = new TextDecoder();

/** The permission flags of `deno task compile`: what the shipped binary may do. */
export const COMPILE_PERMISSIONS: string[] = (() => {
  const tasks = JSON.parse(Deno.readTextFileSync(`${REPO}/deno.json`)).tasks;
  const perms = String(tasks.compile).split(/\s+/).filter((a) => a.startsWith("--allow-"));
  if (perms.length === 0 || perms.includes("--allow-all")) {
    throw new Error(`deno.json's compile task has no narrow permission set: ${tasks.compile}`);
  }
  return perms;
})();

async function task(name: string, env: Record<string, string> = {}): Promise<void> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["task", "--quiet", name],
    cwd: REPO,
    env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 0, `deno task ${name}: ${dec.decode(out.stderr)}`);
}

type Run = { code: number; stdout: string; stderr: string };

function runner(argv0: string[]): (args: string[], env?: Record<string, string>) => Promise<Run> {
  return async (args, env = {}) => {
    const out = await new Deno.Command(argv0[0], {
      args: [...argv0.slice(1), ...args],
      env: { NO_COLOR: "1", ...env },
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(60_000),
    }).output();
    return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
  };
}

/** run, heartbeat, status and elect through one artifact. */
async function endToEnd(argv0: string[], build: string): Promise<void> {
  const cli = runner(argv0);
  const v = await cli(["--version"]);
  assert.equal(v.code, 0, v.stderr);
  assert.match(v.stdout, new RegExp(`\\(${build} build`));

  const root = await Deno.makeTempDir();
  await Deno.mkdir(`${root}/reg`); // status and heartbeat need the registry folder to exist
  try {
    // heartbeat, status and elect against a real cluster.
    await withCluster({ servers: 1, clients: 1 }, async (cluster) => {
      const [server] = cluster.servers;
      const [client] = cluster.clients;
      const setServer = await cli(["-d", `${root}/by-hand`, "set_server"]);
      assert.equal(setServer.code, 0, setServer.stderr);
      assert.equal(await Deno.readTextFile(`${root}/by-hand/mode`), "server");
      const setMode = await cli(["-r", `file://${root}/reg`, "-d", `${root}/decided`, "set_mode"]);
      assert.equal(setMode.code, 0, setMode.stderr);
      assert.equal(setMode.stdout.trim(), "server");
      const hb = await cli(["-r", `file://${root}/reg`, "heartbeat"], {
        CONSUL_HTTP_ADDR: server.httpAddr,
      });
      assert.equal(hb.code, 0, hb.stderr);
      const st = await cli(["-r", `file://${root}/reg`, "status", "--json"], {
        CONSUL_HTTP_ADDR: server.httpAddr,
      });
      assert.equal(st.code, 0, st.stderr);
      const rows = JSON.parse(st.stdout).members as {
        node: string;
        role: string;
        leader?: boolean;
      }[];
      assert.ok(
        rows.some((r) => r.node === server.node && r.role === "server" && r.leader),
        st.stdout,
      );

      // The S3 registry through the real SDK, with the same permissions.
      await withS3Server(async (s3) => {
        const env = {
          ...s3.env,
          AWS_ENDPOINT_URL_S3: s3.endpoint,
          CONSUL_HTTP_ADDR: server.httpAddr,
        };
        const reg = `s3://${s3.bucket}/bundled`;
        const h = await cli(["-r", reg, "heartbeat"], env);
        assert.equal(h.code, 0, h.stderr);
        const s = await cli(["-r", reg, "status", "--json"], env);
        assert.equal(s.code, 0, s.stderr);
        assert.ok(
          JSON.parse(s.stdout).members.some((r: { node: string; registry: string }) =>
            r.node === server.node && r.registry === "live"
          ),
          s.stdout,
        );
      });

      await client.client.serviceRegister({ Name: "redis", ID: "redis", Port: 6379, Tags: ["x"] });
      const el = await cli(
        [
          "-d",
          `${root}/elect`,
          "elect",
          "-consul-service-name",
          "redis",
          "-consul-query-name",
          "redis-master",
        ],
        { CONSUL_HTTP_ADDR: client.httpAddr },
      );
      assert.equal(el.code, 0, el.stderr);
      const svc = await client.client.agentService("redis");
      assert.ok(svc?.Tags?.includes("master"), JSON.stringify(svc));
    });

    // run: a one-node cluster from the artifact, stopped with SIGTERM.
    const ip = randomLoopbackIp();
    const child = new Deno.Command(argv0[0], {
      args: [
        ...argv0.slice(1),
        ...[
          "-r",
          `file://${root}/reg2`,
          "-a",
          ip,
          "--client",
          ip,
          "-n",
          "bundled",
          "-d",
          `${root}/node`,
        ],
        ...["-s", "1", "-t", "2", "-e", "10", "--consul-bin", consulBin(), "run"],
        ...["--", "-dns-port=-1", "-grpc-port=-1", "-hcl", "performance { raft_multiplier = 1 }"],
      ],
      env: { NO_COLOR: "1" },
      stdout: "null",
      stderr: "null",
    }).spawn();
    try {
      const api = new ConsulClient({ baseUrl: `http://${ip}:8500`, timeoutMs: 2000 });
      await waitFor(() => api.leader(), {
        what: "a leader from the bundled run",
        timeoutMs: 90_000,
        intervalMs: 250,
      });
      await waitFor(async () => {
        for await (const e of Deno.readDir(`${root}/reg2/servers`)) {
          if (e.name.endsWith("-bundled")) return true;
        }
        return false;
      }, { what: "the bundled run's heartbeat", timeoutMs: 60_000 });
    } finally {
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
      await child.status;
      clearTimeout(timer);
    }
  } finally {
    await Deno.remove(root, { recursive: true });
  }
}

Deno.test("the bundle (deno task bundle) runs run, heartbeat, status and elect end to end", async () => {
  await task("bundle");
  const argv0 = [
    Deno.execPath(),
    "run",
    ...COMPILE_PERMISSIONS,
    "--quiet",
    `${REPO}/dist/auto-consul.js`,
  ];
  await endToEnd(argv0, "bundle");
  await orphanAfterKill9(argv0);
});

Deno.test({
  name: "the compiled binary (deno task compile, needs DENORT_BIN) runs end to end",
  ignore: !Deno.env.get("DENORT_BIN"),
  fn: async () => {
    await task("compile", { DENORT_BIN: Deno.env.get("DENORT_BIN")! });
    await endToEnd([`${REPO}/dist/auto-consul`], "compiled");
    await orphanAfterKill9([`${REPO}/dist/auto-consul`]);
  },
});

/** A folder holding only the helpers run uses besides consul (cat, setsid): no setpriv. */
async function binWithoutSetpriv(dir: string): Promise<string> {
  await Deno.mkdir(dir);
  for (const tool of ["cat", "setsid"]) {
    for (const d of (Deno.env.get("PATH") ?? "").split(":")) {
      try {
        if (Deno.statSync(`${d}/${tool}`).isFile) {
          await Deno.symlink(`${d}/${tool}`, `${dir}/${tool}`);
          break;
        }
      } catch { /* not there */ }
    }
  }
  return dir;
}

/**
 * kill -9 of `run` with setpriv hidden: its consul is orphaned (nothing signals it). The next
 * `run` on the data dir stops it first, then runs one consul of its own, which does not crash
 * loop; heartbeats come from that consul.
 */
async function orphanAfterKill9(argv0: string[]): Promise<void> {
  const root = await Deno.makeTempDir();
  const ip = randomLoopbackIp();
  const dataDir = `${root}/node`;
  const runs: Proc[] = [];
  const start = () => {
    const p = new Proc(argv0[0], [
      ...argv0.slice(1),
      ...["-r", `file://${root}/reg`, "-a", ip, "--client", ip, "--http-addr", `${ip}:8500`],
      ...["-n", "orphan", "-d", dataDir, "-s", "1", "-t", "2", "-e", "10"],
      ...["--consul-bin", consulBin(), "run"],
      ...["--", ...TEST_CONSUL_ARGS],
    ], { env: { NO_COLOR: "1", PATH: path }, clearEnv: true });
    runs.push(p);
    return p;
  };
  const path = await binWithoutSetpriv(`${root}/bin`);
  const api = new ConsulClient({ baseUrl: `http://${ip}:8500`, timeoutMs: 2000 });
  try {
    const first = start();
    await waitFor(() => api.leader(), { what: "a leader from the first run", timeoutMs: 60_000 });
    const orphan = await waitFor(() => liveConsulPid(dataDir), { what: "the first consul's pid" });
    assert.match(
      first.lines.join("\n"),
      /consul is guarded by a pidfile checked at the next start \(\/proc read through cat\); setpriv with --pdeathsig was not found/,
      "the start says which protection is in force",
    );
    first.signal("SIGKILL");
    await first.status;
    assert.ok(procStartTime(orphan) !== undefined, "without setpriv the consul outlives run");

    const second = start();
    const fresh = await waitFor(async () => {
      const pid = await liveConsulPid(dataDir);
      return pid !== undefined && pid !== orphan ? pid : undefined;
    }, { what: "a new consul", timeoutMs: 60_000 });
    assert.equal(procStartTime(orphan), undefined, "the orphan was stopped");
    await waitFor(() => api.leader(), { what: "a leader from the second run", timeoutMs: 60_000 });
    const since = Date.now();
    // Two heartbeat ticks with the new consul: written by its run, no crash loop meanwhile.
    await waitFor(async () => {
      for await (const e of Deno.readDir(`${root}/reg/servers`)) {
        const st = await Deno.stat(`${root}/reg/servers/${e.name}`);
        if (e.name.endsWith("-orphan") && st.mtime!.getTime() > since + 2000) return true;
      }
      return false;
    }, { what: "a heartbeat two seconds after the second run's leader", timeoutMs: 60_000 })
      .catch((err) => {
        throw new Error(`${(err as Error).message}\n${second.lines.slice(-40).join("\n")}`);
      });
    const log = second.lines.join("\n");
    assert.match(log, /stopped a consul left over from an earlier run/);
    assert.doesNotMatch(log, /consul exited unexpectedly|restarting consul/, "no crash loop");
    assert.deepEqual(consulsOnDataDir(dataDir), [fresh], "one consul on the data dir");
  } finally {
    for (const r of runs) await r.stop("SIGTERM", 20_000);
    for (const pid of consulsOnDataDir(dataDir)) {
      try {
        Deno.kill(pid, "SIGKILL");
      } catch { /* gone */ }
    }
    await Deno.remove(root, { recursive: true });
  }
}
