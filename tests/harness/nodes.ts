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
 * Every node started through a `Nodes` set is stopped when the set is disposed (SIGTERM, then
 * SIGKILL of the run process and of its consul; any consul still holding a data dir of the set
 * is SIGKILLed; the temporary dirs are removed), also when the test failed; if the test process
 * itself is killed, each run process gets SIGTERM (parent-death signal). Logs are JSON lines
 * (`--log-format json`), parsed by `Node.logs()`; AUTO_CONSUL_TEST_VERBOSE=1 streams them.
 */
import { ConsulClient } from "../../src/consul/client.ts";
import type { Member, RaftServer } from "../../src/consul/types.ts";
import { pidFilePath, procStartTime, readPidFile } from "../../src/consul/pidfile.ts";
import { setprivWithPdeathsig } from "../../src/consul/process.ts";
import { openRegistry } from "../../src/registry/open.ts";
import type { Registry } from "../../src/registry/registry.ts";
import { type CliProcess, spawnCli } from "./cli.ts";
import { consulBin, randomLoopbackIp } from "./consul.ts";
import { TEST_CONSUL_ARGS } from "./proc.ts";
import { sleep, waitFor } from "./wait.ts";

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
  logLevel?: "debug" | "info";
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
  readonly client: ConsulClient;
  /** Every run process started for this node, oldest first. */
  readonly runs: CliProcess[] = [];
  /** "IP:8300": how raft and `leader()` name this node when it is a server. */
  readonly rpcAddr: string;
  readonly #exited = new Set<CliProcess>();

  constructor(init: { name: string; ip: string; dataDir: string; spec: NodeSpec }) {
    this.name = init.name;
    this.ip = init.ip;
    this.dataDir = init.dataDir;
    this.spec = init.spec;
    this.rpcAddr = `${init.ip}:8300`;
    this.client = new ConsulClient({ baseUrl: `http://${init.ip}:8500`, timeoutMs: 3_000 });
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
      consulBin(),
      "--log-format",
      "json",
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
      onLine: verbose ? (l) => console.error(`[${this.name}] ${l}`) : undefined,
    });
    this.runs.push(proc);
    proc.status.then(() => this.#exited.add(proc));
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
    const p = this.runs.at(-1);
    return p !== undefined && !this.#exited.has(p);
  }

  /** The pid of the live consul named by `<data-dir>/consul.pid`, or undefined. */
  async consulPid(): Promise<number | undefined> {
    const rec = await readPidFile(pidFilePath(this.dataDir)).catch(() => undefined);
    if (!rec) return undefined;
    const start = procStartTime(rec.pid);
    if (start === undefined || (rec.start !== undefined && start !== rec.start)) return undefined;
    return rec.pid;
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
    if (pid === undefined || procStartTime(pid) === undefined) return;
    killQuietly(pid, "SIGKILL");
    await waitGone(pid, `consul ${pid} of node ${this.name}`).catch(() => {});
  }

  /** Output lines of every run of this node (`CliProcess` keeps the first 20,000 per run). */
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

/** Live `Nodes` sets: their processes are SIGKILLed if the test process exits early. */
const liveSets = new Set<Nodes>();
globalThis.addEventListener("unload", () => {
  for (const set of liveSets) {
    for (const n of set.all) {
      for (const r of n.runs) r.signal("SIGKILL");
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

// ---- cluster checks ----------------------------------------------------------------------

/** What every agent agreed on when `waitForCluster` returned. */
export interface ClusterView {
  servers: Node[];
  clients: Node[];
  /** The leader's "ip:8300". */
  leader: string;
  voters: RaftServer[];
}

/**
 * One look at the cluster: every node's agent answers, says whether it is a server, sees
 * exactly `nodes` as alive members, names the same leader (one of the servers), and reports
 * raft peers and raft voters = the servers. Returns the view, or throws saying what is not so
 * yet.
 */
export async function clusterView(
  nodes: Node[],
  want: { servers: number; clients: number },
): Promise<ClusterView> {
  const names = nodes.map((n) => n.name).sort();
  const answers = await Promise.all(nodes.map(async (n) => {
    const [self, members, leader, peers, raft] = await Promise.all([
      n.client.self(),
      n.client.members(),
      n.client.leader(),
      n.client.peers(),
      n.client.raftConfiguration(),
    ]);
    return { node: n, self, members, leader, peers, raft };
  }));
  const servers = answers.filter((a) => a.self.isServer).map((a) => a.node);
  const clients = answers.filter((a) => !a.self.isServer).map((a) => a.node);
  if (servers.length !== want.servers || clients.length !== want.clients) {
    throw new Error(
      `${servers.length} servers and ${clients.length} clients: expected ${want.servers} and ${want.clients}`,
    );
  }
  const serverAddrs = servers.map((s) => s.rpcAddr).sort();
  const leaders = new Set(answers.map((a) => a.leader ?? "(none)"));
  if (leaders.size !== 1) throw new Error(`agents name different leaders: ${[...leaders]}`);
  const leader = answers[0].leader;
  if (leader === undefined || !serverAddrs.includes(leader)) {
    throw new Error(`leader ${leader} is not one of the servers ${serverAddrs}`);
  }
  for (const a of answers) {
    const alive = aliveNames(a.members);
    if (alive.join(",") !== names.join(",")) {
      throw new Error(`${a.node.name} sees alive members ${alive}: expected ${names}`);
    }
    if ([...a.peers].sort().join(",") !== serverAddrs.join(",")) {
      throw new Error(`${a.node.name} reports raft peers ${a.peers}: expected ${serverAddrs}`);
    }
    const voters = a.raft.servers.filter((s) => s.voter).map((s) => s.address).sort();
    const all = a.raft.servers.map((s) => s.address).sort();
    if (voters.join(",") !== serverAddrs.join(",") || all.length !== voters.length) {
      throw new Error(
        `${a.node.name} reports raft servers ${all} (voters ${voters}): expected voters ${serverAddrs}`,
      );
    }
  }
  const voters = answers[0].raft.servers;
  return { servers, clients, leader, voters };
}

/**
 * Waits (bounded) until `clusterView` holds: exactly `servers` servers and `clients` clients
 * among `nodes`, one leader, all alive, raft voters = the servers.
 */
export async function waitForCluster(
  nodes: Node[],
  want: { servers: number; clients: number; timeoutMs?: number },
): Promise<ClusterView> {
  try {
    return await waitFor(() => clusterView(nodes, want), {
      what: `${want.servers} servers, ${want.clients} clients, one leader, ${nodes.length} alive`,
      timeoutMs: want.timeoutMs ?? 60_000,
      intervalMs: 250,
    });
  } catch (err) {
    const dead = nodes.filter((n) => !n.running).map((n) => n.name);
    throw new Error(
      `${(err as Error).message}${dead.length ? `\nrun exited on: ${dead}` : ""}\n` +
        nodes.map((n) => n.tail(15)).join("\n"),
      { cause: err },
    );
  }
}

function aliveNames(members: Member[]): string[] {
  return members.filter((m) => m.status === "alive").map((m) => m.name).sort();
}

// ---- registry ----------------------------------------------------------------------------

/** Opens a registry for inspection (the S3 endpoint from the node env, if any). */
export function inspectRegistry(url: string, env: Record<string, string> = {}): Promise<Registry> {
  return openRegistry(url, { endpoint: env.AWS_ENDPOINT_URL_S3, maxAttempts: 1 });
}

/** Claims per place: place → [{epoch, node}] in epoch order. */
export async function readSlots(
  registry: Registry,
): Promise<Map<number, { epoch: number; node: string }[]>> {
  const out = new Map<number, { epoch: number; node: string }[]>();
  const listing = await registry.list("slots/");
  for (const o of listing.objects) {
    const m = /^slots\/(\d+)\/(\d{10})$/.exec(o.key);
    if (!m) throw new Error(`unexpected key in slots/: ${o.key}`);
    const body = await registry.get(o.key, 256);
    const node = new TextDecoder().decode(body ?? new Uint8Array()).trim();
    const place = Number(m[1]);
    const claims = out.get(place) ?? [];
    claims.push({ epoch: Number(m[2]), node });
    claims.sort((a, b) => a.epoch - b.epoch);
    out.set(place, claims);
  }
  return out;
}

/** Heartbeat keys of `node` in `dir` ("servers" or "agents"), with their store time. */
export async function heartbeatsOf(
  registry: Registry,
  dir: "servers" | "agents",
  node: string,
): Promise<{ key: string; lastModified: Date }[]> {
  const listing = await registry.list(`${dir}/`);
  return listing.objects.filter((o) => o.key.endsWith(`-${node}`));
}

// ---- processes ---------------------------------------------------------------------------

function killQuietly(pid: number, sig: Deno.Signal): void {
  try {
    Deno.kill(pid, sig);
  } catch { /* gone */ }
}

/** Waits (bounded) until `pid` is gone (or a zombie). */
async function waitGone(pid: number, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (procStartTime(pid) !== undefined) {
    if (Date.now() > deadline) throw new Error(`${what} still alive after ${timeoutMs} ms`);
    await sleep(50);
  }
}

/** Pids of consul processes whose `-data-dir` lies in `dataDir` (a leftover safety net). */
export function consulsOnDataDir(dataDir: string): number[] {
  const pids: number[] = [];
  let entries: Iterable<Deno.DirEntry>;
  try {
    entries = Deno.readDirSync("/proc");
  } catch {
    return pids;
  }
  for (const e of entries) {
    if (!/^\d+$/.test(e.name)) continue;
    let argv: string[];
    try {
      argv = Deno.readTextFileSync(`/proc/${e.name}/cmdline`).split("\0");
    } catch {
      continue;
    }
    if (
      argv.some((a) => /(^|\/)consul$/.test(a)) &&
      argv.some((a) => a.startsWith(`-data-dir=${dataDir}/`))
    ) {
      pids.push(Number(e.name));
    }
  }
  return pids;
}
