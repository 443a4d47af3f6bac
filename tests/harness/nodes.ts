/**
 * Real auto-consul nodes for acceptance tests. A node is one `auto-consul run` process (the CLI
 * as users start it, see `cli.ts`), the consul agent it supervises, a data dir and its own
 * random loopback address 127.x.y.z (from the consul harness, so addresses never collide with
 * other tests). Its agent's HTTP API is at http://IP:8500.
 *
 *   await withNodes(async (nodes) => {
 *     const registry = `file://${await nodes.dir("registry")}`;
 *     const five = nodes.start(5, { registry, servers: 3 });
 *     const view = await waitForCluster(five, { servers: 3, clients: 2 });
 *   });
 *
 * Cluster checks are in `cluster_view.ts`, registry inspection in `registry_view.ts`, the
 * process library (output, stop with a grace, /proc) in `proc.ts`.
 *
 * Every node started through a `Nodes` set is stopped when the set is disposed (SIGTERM, then
 * SIGKILL of the run process and of its consul; any consul still holding a data dir of the set
 * is SIGKILLed; the temporary dirs are removed), also when the test failed; if the test process
 * itself is killed, each run process gets SIGTERM (parent-death signal). Logs are JSON lines
 * (`--log-format json`), parsed by `Node.logs()`; AUTO_CONSUL_TEST_VERBOSE=1 streams them.
 */
import { setprivWithPdeathsig } from "../../src/consul/process.ts";
import { type CliProcess, spawnCli } from "./cli.ts";
import { consulBin, randomLoopbackIp } from "./consul.ts";
import {
  consulsOnDataDir,
  killQuietly,
  liveConsulPid,
  TEST_CONSUL_ARGS,
  waitGone,
} from "./proc.ts";
import { TestConsulClient } from "./test_consul_client.ts";
import { waitFor } from "./wait.ts";

/**
 * Run processes get SIGTERM when the test process dies, however it dies (a killed test run
 * must not leave nodes behind: they would stop their consul and exit). Linux with setpriv.
 */
const SETPRIV = await setprivWithPdeathsig();
const WRAP = SETPRIV ? [SETPRIV, "--pdeathsig", "SIGTERM", "--"] : [];

export interface NodeSpec {
  /** Registry URL: `file:///path` or `s3://bucket/prefix`. */
  registry: string;
  /** `-s`: desired number of servers. */
  servers: number;
  /** `-t` in seconds (default 2). */
  ticks?: number;
  /** `-e` in seconds (default 10). */
  expiry?: number;
  /** More auto-consul flags, before the command (e.g. `--advisory`). */
  flags?: string[];
  /** More consul flags, after TEST_CONSUL_ARGS. */
  consulArgs?: string[];
  /** Environment of the run process (e.g. the S3 server's). */
  env?: Record<string, string>;
  /** Default "run". */
  command?: "run" | "direct_run";
  /** Default "debug" (heartbeats are logged at debug). */
  logLevel?: "debug" | "info" | "warn";
  /** Default "json" (what `Node.logs()` parses). */
  logFormat?: "json" | "text";
  /** The run's output is also appended to this file as it comes. */
  logFile?: string;
  /** Default: the harness's (`consulBin()`). */
  consulBin?: string;
  /**
   * Give no `--client` (consul's client address then comes from a `-c` config dir or its
   * default); run talks to the agent through `--http-addr IP:8500`.
   */
  noClientFlag?: boolean;
}

/** One parsed log line of a run process. */
export interface LogLine {
  ts: number;
  level: string;
  component: string;
  msg: string;
  [field: string]: unknown;
}

/** One auto-consul node: name, address, data dir, and the run processes started for it. */
export class Node {
  readonly name: string;
  readonly ip: string;
  readonly dataDir: string;
  readonly spec: NodeSpec;
  /** The agent's HTTP API (short timeout: a dead agent must not stall a wait). */
  readonly client: TestConsulClient;
  /** Every run process started for this node, oldest first. */
  readonly runs: CliProcess[] = [];
  /** "IP:8300": how raft and `leader()` name this node when it is a server. */
  readonly rpcAddr: string;

  constructor(init: { name: string; ip: string; dataDir: string; spec: NodeSpec }) {
    this.name = init.name;
    this.ip = init.ip;
    this.dataDir = init.dataDir;
    this.spec = init.spec;
    this.rpcAddr = `${init.ip}:8300`;
    this.client = new TestConsulClient({ baseUrl: `http://${init.ip}:8500`, timeoutMs: 3_000 });
  }

  /** The auto-consul argv of this node. */
  argv(): string[] {
    const s = this.spec;
    return [
      "-r",
      s.registry,
      "-a",
      this.ip,
      ...(s.noClientFlag ? ["--http-addr", `${this.ip}:8500`] : ["--client", this.ip]),
      "-n",
      this.name,
      "-d",
      this.dataDir,
      "-s",
      String(s.servers),
      "-t",
      String(s.ticks ?? 2),
      "-e",
      String(s.expiry ?? 10),
      "--consul-bin",
      s.consulBin ?? consulBin(),
      "--log-format",
      s.logFormat ?? "json",
      "--log-level",
      s.logLevel ?? "debug",
      ...(s.flags ?? []),
      s.command ?? "run",
      "--",
      ...TEST_CONSUL_ARGS,
      ...(s.consulArgs ?? []),
    ];
  }

  /** Starts a run process (the node must not be running). */
  start(): CliProcess {
    if (this.running) throw new Error(`node ${this.name} is already running`);
    const verbose = Deno.env.get("AUTO_CONSUL_TEST_VERBOSE") === "1";
    const proc = spawnCli(this.argv(), {
      env: this.spec.env,
      wrap: WRAP,
      logFile: this.spec.logFile,
      onLine: verbose ? (l) => console.error(`[${this.name}] ${l}`) : undefined,
    });
    this.runs.push(proc);
    return proc;
  }

  /** The current (latest) run process. */
  get proc(): CliProcess {
    const p = this.runs.at(-1);
    if (!p) throw new Error(`node ${this.name} was never started`);
    return p;
  }

  /** True while the latest run process has not exited. */
  get running(): boolean {
    return this.runs.at(-1)?.running ?? false;
  }

  /** The pid of the live consul named by `<data-dir>/consul.pid`, or undefined. */
  consulPid(): Promise<number | undefined> {
    return liveConsulPid(this.dataDir);
  }

  /** Waits (bounded) for a live consul in the pidfile, other than `not`. */
  async waitConsulPid(opts: { not?: number; timeoutMs?: number } = {}): Promise<number> {
    return await waitFor(async () => {
      const pid = await this.consulPid();
      return pid !== undefined && pid !== opts.not ? pid : undefined;
    }, {
      what: `a consul pid of node ${this.name}${opts.not ? ` other than ${opts.not}` : ""}`,
      timeoutMs: opts.timeoutMs ?? 30_000,
      intervalMs: 100,
    });
  }

  /** kill -9 of the consul under run (run itself lives on). Returns the pid killed. */
  async kill9Consul(): Promise<number> {
    const pid = await this.consulPid();
    if (pid === undefined) throw new Error(`node ${this.name} has no live consul to kill`);
    Deno.kill(pid, "SIGKILL");
    await waitGone(pid, `consul ${pid} of node ${this.name}`);
    return pid;
  }

  /**
   * kill -9 of the whole node, like a machine losing power: the run process is frozen
   * (SIGSTOP, so it cannot react), its consul is SIGKILLed, then run. Waits until both are gone.
   */
  async kill9(): Promise<void> {
    if (!this.running) return;
    const run = this.proc;
    run.signal("SIGSTOP");
    const pid = await this.consulPid();
    if (pid !== undefined) killQuietly(pid, "SIGKILL");
    run.signal("SIGKILL");
    await run.status;
    if (pid !== undefined) await waitGone(pid, `consul ${pid} of node ${this.name}`);
  }

  /**
   * Sends `signal` to the run process and waits up to `graceMs` for it to exit; then SIGKILL
   * of run and of its consul. Resolves with the exit status of the latest run.
   */
  async stop(signal: Deno.Signal = "SIGTERM", graceMs = 15_000): Promise<Deno.CommandStatus> {
    const run = this.proc;
    const consul = await this.consulPid();
    const status = await run.stop(signal, graceMs);
    await this.#killConsul(consul);
    return status;
  }

  /** Teardown: SIGTERM, SIGKILL after `graceMs`, and no consul left on this data dir. */
  async dispose(graceMs = 3_000): Promise<void> {
    if (this.running) await this.stop("SIGTERM", graceMs).catch(() => {});
    await this.#killConsul(await this.consulPid());
    for (const pid of consulsOnDataDir(this.dataDir)) killQuietly(pid, "SIGKILL");
  }

  async #killConsul(pid: number | undefined): Promise<void> {
    if (pid === undefined) return;
    killQuietly(pid, "SIGKILL");
    await waitGone(pid, `consul ${pid} of node ${this.name}`).catch(() => {});
  }

  /** Output lines of every run of this node (`Proc` keeps the first 20,000 per run). */
  lines(): string[] {
    return this.runs.flatMap((r) => r.lines);
  }

  /** The JSON log lines of every run (other output, e.g. a crash trace, is skipped). */
  logs(run?: CliProcess): LogLine[] {
    const out: LogLine[] = [];
    for (const line of run ? run.lines : this.lines()) {
      if (!line.startsWith("{")) continue;
      try {
        const v = JSON.parse(line);
        out.push({ ...v, ts: Date.parse(v.ts) });
      } catch { /* not a log line */ }
    }
    return out;
  }

  /** Log lines whose message matches. */
  logged(msg: string | RegExp, run?: CliProcess): LogLine[] {
    return this.logs(run).filter((l) => typeof msg === "string" ? l.msg === msg : msg.test(l.msg));
  }

  /** The last lines of output of the latest run, for failure messages. */
  tail(n = 30): string {
    return `--- ${this.name} (${this.ip}) ---\n${this.runs.at(-1)?.tail(n) ?? "(never started)"}`;
  }

  /** The recorded mode (`<data-dir>/mode`), or undefined. */
  async mode(): Promise<string | undefined> {
    try {
      return (await Deno.readTextFile(`${this.dataDir}/mode`)).trim();
    } catch {
      return undefined;
    }
  }
}

export interface StartOptions extends NodeSpec {
  /** Node name prefix (default "node"); names are `<prefix>-<n>-<random>`. */
  prefix?: string;
}

/** A set of nodes that are all stopped, and their files removed, by `dispose()`. */
export class Nodes {
  readonly all: Node[] = [];
  readonly #root: string;
  #seq = 0;

  constructor(root: string) {
    this.#root = root;
  }

  /**
   * A new empty folder inside the set's temporary root (e.g. a folder registry); removed with
   * the set, after every node has stopped (a running node would write into it again).
   */
  async dir(name: string): Promise<string> {
    const path = `${this.#root}/${name}-${crypto.randomUUID().slice(0, 6)}`;
    await Deno.mkdir(path);
    return path;
  }

  /** A new node (not started): fresh name, loopback address and data dir. */
  create(spec: StartOptions): Node {
    const n = ++this.#seq;
    const tag = crypto.randomUUID().slice(0, 6);
    const name = `${spec.prefix ?? "node"}-${n}-${tag}`;
    const node = new Node({
      name,
      ip: randomLoopbackIp(),
      dataDir: `${this.#root}/${name}`,
      spec,
    });
    this.all.push(node);
    return node;
  }

  /** Creates `n` nodes and starts them at the same moment (spawned back to back). */
  start(n: number, spec: StartOptions): Node[] {
    const nodes = Array.from({ length: n }, () => this.create(spec));
    for (const node of nodes) node.start();
    return nodes;
  }

  /** Output tails of the given nodes (default all), for failure messages. */
  tails(nodes: Node[] = this.all, n = 30): string {
    return nodes.map((x) => x.tail(n)).join("\n");
  }

  /** Stops every node of the set (concurrently) and removes the temporary root. */
  async dispose(): Promise<void> {
    await Promise.allSettled(this.all.map((n) => n.dispose()));
    for (const n of this.all) {
      for (const pid of consulsOnDataDir(n.dataDir)) killQuietly(pid, "SIGKILL");
    }
    await Deno.remove(this.#root, { recursive: true }).catch(() => {});
  }
}

/**
 * Live `Nodes` sets: if the test process exits early, their consuls are SIGKILLed (the run
 * processes are, by `proc.ts`).
 */
const liveSets = new Set<Nodes>();
globalThis.addEventListener("unload", () => {
  for (const set of liveSets) {
    for (const n of set.all) {
      for (const pid of consulsOnDataDir(n.dataDir)) killQuietly(pid, "SIGKILL");
    }
  }
});

/** Runs `fn` with a fresh node set; always stops every node and removes its files. */
export async function withNodes<T>(fn: (nodes: Nodes) => Promise<T>): Promise<T> {
  const root = await Deno.makeTempDir({ prefix: "auto-consul-nodes-" });
  const nodes = new Nodes(root);
  liveSets.add(nodes);
  try {
    return await fn(nodes);
  } finally {
    await nodes.dispose();
    liveSets.delete(nodes);
  }
}
