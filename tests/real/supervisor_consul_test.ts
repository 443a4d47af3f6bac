/**
 * The supervisor and the process adapter against real consul agents (1.8.7), each on its own
 * random 127.x.y.z: restart after kill -9, stop by signal, and no orphan consul when the
 * supervising process is SIGKILLed (parent-death signal), nor after a restart with the same
 * data dir (pidfile). Every process started here is SIGKILLed in a `finally` if still alive.
 */
import { consulBin, randomLoopbackIp } from "../harness/consul.ts";
import { REPO } from "../harness/proc.ts";
import { waitFor } from "../harness/wait.ts";
import assert from "node:assert/strict";
import { type AgentCommand, agentCommand } from "../../src/consul/agent_args.ts";
import { writeAgentConfig } from "../../src/consul/agent_config.ts";
import {
  pidFilePath,
  processAlive,
  procStartTime,
  readPidFile,
  stopLeftover,
  writePidFile,
} from "../../src/consul/pidfile.ts";
import { resolveBin, setprivWithPdeathsig, spawnConsul } from "../../src/consul/process.ts";
import { superviseConsul, type SupervisorResult } from "../../src/consul/supervisor.ts";
import { UsageError } from "../../src/errors.ts";
import { Logger } from "../../src/log.ts";

const CONSUL = resolveBin(consulBin());
const FIXTURE = `${REPO}/tests/fixtures/supervise_consul.ts`;
const KEY = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(32))));
const TOKEN = crypto.randomUUID();

/** Polls `cond` until it is true; throws naming `what` after `timeoutMs`. */
async function until(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 60_000) {
  await waitFor(cond, { what, timeoutMs });
}

/** True when consul's HTTP API answers /v1/agent/self with 200. */
async function agentUp(ip: string): Promise<boolean> {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), 1000);
  try {
    const res = await fetch(`http://${ip}:8500/v1/agent/self`, { signal: ac.signal });
    await res.body?.cancel();
    return res.ok;
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
  }
}

function killIfAlive(pid: number): void {
  if (!processAlive(pid)) return;
  try {
    Deno.kill(pid, "SIGKILL");
  } catch { /* gone meanwhile */ }
}

function cmdline(pid: number): string {
  return Deno.readTextFileSync(`/proc/${pid}/cmdline`).split("\0").join(" ");
}

async function serverCommand(ip: string, dataDir: string): Promise<AgentCommand> {
  const cmd = agentCommand({
    mode: "server",
    servers: 1,
    version: { major: 1, minor: 8, patch: 7 },
    bind: ip,
    client: ip,
    node: `sup-${ip.replaceAll(".", "-")}`,
    dataDir,
    gossipKey: KEY,
    token: TOKEN,
    extraArgs: ["-dns-port=-1"],
  });
  await writeAgentConfig(cmd.configFile);
  return cmd;
}

Deno.test("setpriv with --pdeathsig is available here (the no-orphan tests rely on it)", async () => {
  assert.ok(await setprivWithPdeathsig(), "util-linux setpriv with --pdeathsig not found");
});

Deno.test("spawnConsul: output line by line, tail, exit code; missing binary", async () => {
  const lines: string[] = [];
  const p = await spawnConsul({
    bin: CONSUL,
    args: ["agent", "-no-such-flag"],
    onLine: (stream, line) => lines.push(`${stream}: ${line}`),
    tailLines: 3,
  });
  const status = await p.status;
  assert.equal(status.code, 1);
  assert.ok(
    lines.some((l) => l.includes("flag provided but not defined: -no-such-flag")),
    lines.join("\n"),
  );
  assert.equal(p.tail().length, 3);
  assert.deepEqual(p.tail(), lines.slice(-3).map((l) => l.replace(/^std(out|err): /, "")));
  p.kill("SIGTERM"); // after the exit: a no-op, no throw

  await assert.rejects(
    spawnConsul({ bin: "/nonexistent/consul", args: ["agent"] }),
    (err) =>
      err instanceof UsageError &&
      /consul binary "\/nonexistent\/consul" not found/.test(err.message),
  );
  await assert.rejects(
    spawnConsul({ bin: "no-such-consul-binary", args: ["agent"] }),
    /consul binary "no-such-consul-binary" not found: install consul or give --consul-bin/,
  );
});

Deno.test("supervisor + real consul: kill -9 → restarted; SIGTERM → stopped with its exit code", async () => {
  const ip = randomLoopbackIp();
  const dir = await Deno.makeTempDir({ prefix: "auto-consul-sup-" });
  const started: number[] = [];
  const logs: string[] = [];
  const ac = new AbortController();
  let run: Promise<SupervisorResult> | undefined;
  const t0 = Date.now();
  try {
    const cmd = await serverCommand(ip, dir);
    run = superviseConsul({
      spawn: (onLine) =>
        spawnConsul({ bin: CONSUL, args: cmd.args, onLine, pidFile: pidFilePath(dir) }),
      log: new Logger({ level: "debug", sink: (l) => logs.push(l), node: "t" }),
      signal: ac.signal,
      restartBackoff: { initialMs: 200, maxMs: 1000 },
      stopTimeoutMs: 15_000,
      onStart: (pid) => started.push(pid),
    });
    await until("consul's HTTP API", async () => started.length === 1 && await agentUp(ip));
    const first = started[0];
    const t1 = Date.now();

    // The process is consul itself (setpriv exec'd it), and no secret is in its argv.
    const argv = cmdline(first);
    assert.match(argv, /consul agent -server -bootstrap-expect=1 /);
    assert.ok(!argv.includes(KEY) && !argv.includes(TOKEN), argv);
    assert.equal((await readPidFile(pidFilePath(dir)))?.pid, first);

    Deno.kill(first, "SIGKILL");
    await until(
      "a restarted consul",
      async () => started.length === 2 && await agentUp(ip),
      20_000,
    );
    const second = started[1];
    assert.notEqual(second, first);
    assert.ok(!processAlive(first));
    assert.equal((await readPidFile(pidFilePath(dir)))?.pid, second);
    assert.ok(
      logs.some((l) => /consul exited unexpectedly .*pid=\d+ code=137 signal=SIGKILL/.test(l)),
    );
    const t2 = Date.now();

    ac.abort("SIGTERM");
    const res = await run;
    const t3 = Date.now();
    assert.equal(typeof res.code, "number");
    assert.equal(res.signal, null); // consul exited by itself after SIGTERM
    assert.equal(res.restarts, 1);
    assert.ok(!processAlive(second));
    assert.equal(await readPidFile(pidFilePath(dir)), undefined); // removed on exit
    assert.ok(
      logs.some((l) => /\[consul t\] .*Caught.*signal.*terminated/i.test(l)),
      logs.join("\n"),
    );
    const all = logs.join("\n");
    assert.ok(!all.includes(KEY) && !all.includes(TOKEN), "a secret reached the log");
    console.log(
      `  timings: up ${t1 - t0} ms, restart ${t2 - t1} ms, stop ${
        t3 - t2
      } ms, exit code ${res.code}`,
    );
  } finally {
    ac.abort("SIGTERM");
    for (const pid of started) killIfAlive(pid);
    await run?.catch(() => {});
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});

/** Starts the fixture supervisor process; resolves with it and the first consul pid. */
async function startFixture(ip: string, dataDir: string, pdeathsig: boolean) {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--quiet",
      FIXTURE,
      JSON.stringify({ bin: CONSUL, ip, dataDir, pdeathsig }),
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  const timer = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch { /* gone */ }
  }, 90_000);
  try {
    for (;;) {
      const m = /STARTED (\d+)\n/.exec(buf);
      if (m) return { child, consulPid: Number(m[1]), rest: drain(reader) };
      const { value, done } = await reader.read();
      if (done) throw new Error(`fixture exited before starting consul: ${buf}`);
      buf += value;
    }
  } catch (err) {
    try {
      child.kill("SIGKILL");
    } catch { /* gone */ }
    await child.status;
    throw err;
  } finally {
    clearTimeout(timer);
  }
}

async function drain(reader: ReadableStreamDefaultReader<string>): Promise<void> {
  while (!(await reader.read()).done) { /* discard */ }
}

Deno.test("no orphan: SIGKILL of the supervising process stops consul (pdeathsig)", async () => {
  const ip = randomLoopbackIp();
  const dir = await Deno.makeTempDir({ prefix: "auto-consul-orphan-" });
  let fixture: Awaited<ReturnType<typeof startFixture>> | undefined;
  try {
    fixture = await startFixture(ip, dir, true);
    await until("consul's HTTP API", () => agentUp(ip));
    assert.match(cmdline(fixture.consulPid), /consul agent -server/);
    const t0 = Date.now();
    fixture.child.kill("SIGKILL");
    await fixture.child.status;
    await until(
      "consul to exit after its parent died",
      () => !processAlive(fixture!.consulPid),
      5000,
    );
    console.log(`  consul gone ${Date.now() - t0} ms after the supervisor was SIGKILLed`);
  } finally {
    if (fixture) {
      killIfAlive(fixture.consulPid);
      try {
        fixture.child.kill("SIGKILL");
      } catch { /* gone */ }
      await fixture.child.status;
      await fixture.rest;
    }
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});

Deno.test("no orphan: without pdeathsig the leftover survives, and the next start stops it (pidfile)", async () => {
  const ip = randomLoopbackIp();
  const dir = await Deno.makeTempDir({ prefix: "auto-consul-pidfile-" });
  let fixture: Awaited<ReturnType<typeof startFixture>> | undefined;
  let next: Awaited<ReturnType<typeof spawnConsul>> | undefined;
  try {
    fixture = await startFixture(ip, dir, false);
    await until("consul's HTTP API", () => agentUp(ip));
    const leftover = fixture.consulPid;
    fixture.child.kill("SIGKILL");
    await fixture.child.status;
    await new Promise((r) => setTimeout(r, 500));
    assert.ok(processAlive(leftover), "the unguarded consul should have outlived its parent");
    assert.ok(await agentUp(ip));

    const t0 = Date.now();
    const cmd = await serverCommand(ip, dir);
    next = await spawnConsul({ bin: CONSUL, args: cmd.args, pidFile: pidFilePath(dir) });
    assert.deepEqual(next.leftover, { kind: "stopped", pid: leftover, signal: "SIGTERM" });
    assert.ok(!processAlive(leftover));
    await until("the new consul's HTTP API", () => agentUp(ip));
    assert.equal((await readPidFile(pidFilePath(dir)))?.pid, next.pid);
    console.log(`  leftover stopped and new consul up in ${Date.now() - t0} ms`);

    next.kill("SIGTERM");
    const status = await next.status;
    assert.equal(typeof status.code, "number");
    assert.equal(await readPidFile(pidFilePath(dir)), undefined);
  } finally {
    if (fixture) {
      killIfAlive(fixture.consulPid);
      try {
        fixture.child.kill("SIGKILL");
      } catch { /* gone */ }
      await fixture.child.status;
      await fixture.rest;
    }
    if (next) {
      next.kill("SIGKILL");
      await next.status;
    }
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});

Deno.test("pidfile: a gone pid or a recycled pid is never signalled", async () => {
  const dir = await Deno.makeTempDir({ prefix: "auto-consul-stale-" });
  const sleeper = new Deno.Command("sleep", { args: ["30"], stdin: "null" }).spawn();
  try {
    const path = pidFilePath(dir);
    assert.deepEqual(await stopLeftover(path), { kind: "none" });

    // A live process whose start time differs from the record: the pid was reused.
    await Deno.writeTextFile(
      path,
      JSON.stringify({ pid: sleeper.pid, start: procStartTime(sleeper.pid)! - 1 }),
    );
    assert.deepEqual(await stopLeftover(path), { kind: "stale", pid: sleeper.pid });
    assert.ok(processAlive(sleeper.pid), "a recycled pid was signalled");
    assert.equal(await readPidFile(path), undefined);

    // A process that is gone.
    const gone = new Deno.Command("true").spawn();
    await gone.status;
    await writePidFile(path, gone.pid);
    assert.deepEqual(await stopLeftover(path), { kind: "stale", pid: gone.pid });

    // Garbage in the file.
    await Deno.writeTextFile(path, "not a pidfile");
    assert.deepEqual(await stopLeftover(path), { kind: "none" });

    // The real thing, with a process that is ours: stopped with SIGTERM.
    await writePidFile(path, sleeper.pid);
    const res = await stopLeftover(path, { termTimeoutMs: 5000 });
    assert.deepEqual(res, { kind: "stopped", pid: sleeper.pid, signal: "SIGTERM" });
    assert.equal((await sleeper.status).signal, "SIGTERM");
  } finally {
    killIfAlive(sleeper.pid);
    await sleeper.status;
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});
