/**
 * Real consul agents for tests. Each agent is a `consul agent` process on its own loopback
 * address 127.x.y.z (x in 20..250), with consul's default ports (server RPC 8300, serf LAN
 * 8301, serf WAN 8302, HTTP 8500), DNS and gRPC off, its own temporary directory, and
 * `raft_multiplier = 1` for fast elections. Several test files (and other engineers' runs)
 * can start agents at the same time: addresses are random and never reused in one process.
 *
 * Typical use — always through a wrapper that tears everything down:
 *
 *   await withCluster({ servers: 3, clients: 1 }, async (c) => {
 *     const leader = await c.servers[0].client.leader();
 *   });
 *
 *   await withAgent({ server: true }, async (a) => { await a.client.self(); });
 *
 * `startAgent` / `startCluster` return objects with `dispose()` (also `await using`) for
 * tests that manage lifetimes themselves; then call `dispose()` in a `finally`.
 * Agent output (stdout + stderr, last 200 lines) is in `agent.output()` and in every startup
 * error; set AUTO_CONSUL_TEST_VERBOSE=1 to stream it to stderr as well.
 */
import { cleanEnv, LineTail, Proc, REPO } from "./proc.ts";
import type { ConsulClient } from "../../src/consul/client.ts";
import { TestConsulClient } from "./test_consul_client.ts";
import { waitFor } from "./wait.ts";

/** Consul's default ports, the same on every agent since every agent has its own IP. */
export const PORTS = { serverRpc: 8300, serfLan: 8301, serfWan: 8302, http: 8500 } as const;

const OUTPUT_LINES = 200;
// Bounds, not waits: a loaded 2-core CI machine (load ~30) can take tens of seconds.
const DEFAULT_START_TIMEOUT_MS = 60_000;
const DEFAULT_GRACE_MS = 10_000;
const DEFAULT_TEARDOWN_GRACE_MS = 1_000;

/** The consul binary: $AUTO_CONSUL_TOOLS (default <repo>/.tools)/consul/usr/bin/consul, else PATH. */
export function consulBin(): string {
  const tools = Deno.env.get("AUTO_CONSUL_TOOLS") || `${REPO}/.tools`;
  const bin = `${tools}/consul/usr/bin/consul`;
  try {
    if (Deno.statSync(bin).isFile) return bin;
  } catch {
    // not installed there: fall back to PATH
  }
  return "consul";
}

// ---- loopback addresses ------------------------------------------------------------------

const usedIps = new Set<string>();

/** A fresh random 127.x.y.z (x in 20..250, z in 1..254), never returned twice in a process. */
export function randomLoopbackIp(): string {
  while (true) {
    const x = 20 + Math.floor(Math.random() * 231);
    const y = Math.floor(Math.random() * 256);
    const z = 1 + Math.floor(Math.random() * 254);
    const ip = `127.${x}.${y}.${z}`;
    if (!usedIps.has(ip)) {
      usedIps.add(ip);
      return ip;
    }
  }
}

// ---- one agent ---------------------------------------------------------------------------

export interface AgentOptions {
  server: boolean;
  /** Servers only; default 1 (a single server bootstraps itself). */
  bootstrapExpect?: number;
  /** Default: a fresh random loopback address. */
  ip?: string;
  /** Default: "server-<ip>" / "client-<ip>" with dots as dashes. */
  node?: string;
  /** Addresses given as -retry-join (every 1 s until joined). */
  join?: string[];
  /** More `consul agent` flags, appended last. */
  extraArgs?: string[];
  /** HCL fragments given with -hcl, applied after the harness's own config file. */
  hcl?: string[];
  /**
   * Consul data directory. Default: inside the agent's temporary directory (removed on
   * dispose). A directory given here is never removed by the harness.
   */
  dataDir?: string;
  /** Bound on waiting for the HTTP API (default 15 s). */
  startTimeoutMs?: number;
  /** ACL token for `agent.client`. */
  token?: string;
  /** `agent.client`, which readiness is checked with (default: plain HTTP on ip:8500). */
  client?: (ip: string) => ConsulClient;
}

/** Harness config for every agent: fast raft, no calls home. */
const BASE_CONFIG = `
performance { raft_multiplier = 1 }
disable_update_check = true
disable_anonymous_signature = true
`;

/** A running (or stopped) consul agent started by the harness. */
export class Agent {
  readonly ip: string;
  readonly node: string;
  readonly server: boolean;
  /** "ip:8500" */
  readonly httpAddr: string;
  /** "http://ip:8500" */
  readonly baseUrl: string;
  /** "ip:8301": what `join` and -retry-join take. */
  readonly serfLanAddr: string;
  /** "ip:8300" for servers: what raft peers and `leader()` report. */
  readonly rpcAddr: string;
  readonly client: TestConsulClient;
  readonly dataDir: string;
  /** The agent's temporary directory (config file; data dir unless one was given). */
  readonly tempDir: string;
  readonly args: readonly string[];
  #proc: Proc | undefined;
  /** The output of every run. */
  readonly #tail = new LineTail(OUTPUT_LINES);
  #disposed = false;

  /** Use `startAgent`. */
  constructor(init: {
    ip: string;
    node: string;
    server: boolean;
    dataDir: string;
    tempDir: string;
    args: string[];
    token?: string;
    client?: ConsulClient;
  }) {
    this.ip = init.ip;
    this.node = init.node;
    this.server = init.server;
    this.httpAddr = `${init.ip}:${PORTS.http}`;
    this.baseUrl = `http://${this.httpAddr}`;
    this.serfLanAddr = `${init.ip}:${PORTS.serfLan}`;
    this.rpcAddr = `${init.ip}:${PORTS.serverRpc}`;
    this.client = init.client
      ? TestConsulClient.of(init.client)
      : new TestConsulClient({ baseUrl: this.baseUrl, token: init.token, timeoutMs: 5_000 });
    this.dataDir = init.dataDir;
    this.tempDir = init.tempDir;
    this.args = init.args;
  }

  /** The current `consul agent` process. */
  get process(): Deno.ChildProcess {
    return this.#started().child;
  }

  /** Resolves with the exit status of the current process (its output read to the end). */
  get exited(): Promise<Deno.CommandStatus> {
    return this.#started().done;
  }

  /** True while the current process has not exited. */
  get running(): boolean {
    return this.#proc?.running ?? false;
  }

  /** The last lines of the agent's output (stdout and stderr, all runs). */
  output(): string {
    return this.#tail.last().join("\n");
  }

  #started(): Proc {
    if (!this.#proc) throw new Error(`agent ${this.node} was never started`);
    return this.#proc;
  }

  /** Starts the process (again, with the same address, node, data dir and flags). */
  spawn(): void {
    if (this.#disposed) throw new Error(`agent ${this.node} was disposed`);
    if (this.running) throw new Error(`agent ${this.node} is already running`);
    const verbose = Deno.env.get("AUTO_CONSUL_TEST_VERBOSE") === "1";
    this.#proc = new Proc(consulBin(), ["agent", ...this.args], {
      env: cleanEnv(),
      clearEnv: true,
      keepLines: 0,
      tail: this.#tail,
      onLine: verbose ? (line) => console.error(`[consul ${this.node}] ${line}`) : undefined,
    });
  }

  /** Waits (bounded) until the HTTP API answers; throws with the output tail otherwise. */
  async waitReady(timeoutMs = DEFAULT_START_TIMEOUT_MS): Promise<void> {
    const exited = this.exited;
    const gone = new AbortController();
    exited.then(() => gone.abort(new Error("the agent exited")));
    try {
      await waitFor(async () => {
        const self = await this.client.self({ timeoutMs: 1_000, signal: gone.signal });
        // another process's agent on the same address would answer with another name
        if (self.node !== this.node) throw new Error(`${this.httpAddr} is agent ${self.node}`);
        return true;
      }, {
        what: `the HTTP API of agent ${this.node} at ${this.httpAddr}`,
        timeoutMs,
        intervalMs: 50,
        signal: gone.signal,
      });
    } catch (err) {
      const why = gone.signal.aborted
        ? `exited with code ${(await exited).code} before its HTTP API answered`
        : (err as Error).message;
      throw new Error(
        `consul agent ${this.node} (${this.ip}) did not start: ${why}\n--- output ---\n${this.output()}`,
      );
    }
  }

  /**
   * Sends `signal` (default SIGTERM: servers exit without leaving, clients leave first) and
   * waits for the exit; SIGKILL after `graceMs` (default 10 s). Harmless when not running.
   */
  async stop(
    signal: Deno.Signal = "SIGTERM",
    graceMs = DEFAULT_GRACE_MS,
  ): Promise<Deno.CommandStatus | undefined> {
    return await this.#proc?.stop(signal, graceMs);
  }

  /** SIGKILL: the abrupt death of a machine (no leave, no clean shutdown). */
  kill9(): Promise<Deno.CommandStatus | undefined> {
    return this.stop("SIGKILL", 0);
  }

  /** Stops the process (if running) and starts it again with the same data dir. */
  async restart(timeoutMs = DEFAULT_START_TIMEOUT_MS): Promise<void> {
    await this.stop();
    this.spawn();
    await this.waitReady(timeoutMs);
  }

  /**
   * Teardown: SIGTERM, SIGKILL after `graceMs` (default 1 s: a client's graceful leave is not
   * waited for), then removes the temporary directory. Idempotent.
   */
  async dispose(graceMs = DEFAULT_TEARDOWN_GRACE_MS): Promise<void> {
    if (this.#disposed) return;
    try {
      await this.stop("SIGTERM", graceMs);
    } finally {
      this.#disposed = true;
      await Deno.remove(this.tempDir, { recursive: true }).catch(() => {});
    }
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.dispose();
  }
}

/**
 * The flags that place an agent (after `agent`): its name, its address for bind, advertise and
 * client, its data dir, server with `-bootstrap-expect`, and one `-retry-join` per address.
 * The harness's agents and the benchmarks' baseline agents are built on them.
 */
export function agentCoreArgs(opts: {
  node: string;
  ip: string;
  dataDir: string;
  server: boolean;
  bootstrapExpect?: number;
  join?: string[];
}): string[] {
  const args = [
    `-node=${opts.node}`,
    `-bind=${opts.ip}`,
    `-advertise=${opts.ip}`,
    `-client=${opts.ip}`,
    `-data-dir=${opts.dataDir}`,
  ];
  if (opts.server) args.push("-server", `-bootstrap-expect=${opts.bootstrapExpect ?? 1}`);
  for (const addr of opts.join ?? []) args.push(`-retry-join=${addr}`);
  return args;
}

/** The `consul agent` flags the harness uses (after `agent`). */
export function agentArgs(
  opts: AgentOptions & { ip: string; node: string; dataDir: string; configFile: string },
): string[] {
  return [
    ...agentCoreArgs(opts),
    `-config-file=${opts.configFile}`,
    "-dns-port=-1",
    "-grpc-port=-1",
    "-log-level=warn",
    "-retry-interval=1s",
    ...(opts.hcl ?? []).map((hcl) => `-hcl=${hcl}`),
    ...(opts.extraArgs ?? []),
  ];
}

/** Starts one agent and waits until its HTTP API answers. Dispose it (or use `withAgent`). */
export async function startAgent(opts: AgentOptions): Promise<Agent> {
  const attempts = opts.ip ? 1 : 3;
  for (let attempt = 1;; attempt++) {
    const ip = opts.ip ?? randomLoopbackIp();
    usedIps.add(ip);
    const node = opts.node ?? `${opts.server ? "server" : "client"}-${ip.replaceAll(".", "-")}`;
    const tempDir = await Deno.makeTempDir({ prefix: `auto-consul-${node}-` });
    const dataDir = opts.dataDir ?? `${tempDir}/data`;
    const configFile = `${tempDir}/harness.hcl`;
    await Deno.writeTextFile(configFile, BASE_CONFIG);
    const agent = new Agent({
      ip,
      node,
      server: opts.server,
      dataDir,
      tempDir,
      args: agentArgs({ ...opts, ip, node, dataDir, configFile }),
      token: opts.token,
      client: opts.client?.(ip),
    });
    try {
      agent.spawn();
      await agent.waitReady(opts.startTimeoutMs);
      return agent;
    } catch (err) {
      await agent.dispose();
      // another process may own this address: try another one
      if (attempt < attempts && /address already in use/i.test(agent.output())) continue;
      throw err;
    }
  }
}

/** Runs `fn` with a started agent; always stops it and removes its files afterwards. */
export async function withAgent<T>(
  opts: AgentOptions,
  fn: (agent: Agent) => Promise<T>,
): Promise<T> {
  const agent = await startAgent(opts);
  try {
    return await fn(agent);
  } finally {
    await agent.dispose();
  }
}

// ---- a cluster ---------------------------------------------------------------------------

export interface ClusterOptions {
  /** Number of servers (bootstrap-expect is this number). */
  servers: number;
  clients?: number;
  /** Extra flags / HCL for servers and clients. */
  serverArgs?: string[];
  clientArgs?: string[];
  hcl?: string[];
  /** Bound on the whole start: agents up, leader elected, all members alive (default 30 s). */
  timeoutMs?: number;
}

export class Cluster {
  readonly servers: Agent[];
  readonly clients: Agent[];

  constructor(servers: Agent[], clients: Agent[]) {
    this.servers = servers;
    this.clients = clients;
  }

  /**
   * Starts one more agent joined to the servers (retry-join) and owned by the cluster
   * (stopped by `stopAll`). A server gets bootstrap-expect = the number of servers so far.
   */
  async add(opts: AgentOptions): Promise<Agent> {
    const agent = await startAgent({
      bootstrapExpect: opts.server ? this.servers.length : undefined,
      join: this.servers.map((s) => s.ip),
      ...opts,
    });
    (agent.server ? this.servers : this.clients).push(agent);
    return agent;
  }

  /** Servers then clients. */
  get agents(): Agent[] {
    return [...this.servers, ...this.clients];
  }

  /** The server that is the raft leader now (bounded wait: 60 s). */
  async leader(timeoutMs = 60_000): Promise<Agent> {
    return await waitFor(async () => {
      const addr = await firstAnswer(
        this.servers.filter((s) => s.running),
        (s) => s.client.leader(),
      );
      return this.servers.find((s) => s.rpcAddr === addr);
    }, { what: "a raft leader", timeoutMs });
  }

  /** Waits until every running agent knows the leader and sees all running agents alive. */
  async waitHealthy(timeoutMs = 60_000): Promise<void> {
    const running = this.agents.filter((a) => a.running);
    await waitFor(async () => {
      for (const a of running) {
        if (!(await a.client.leader({ timeoutMs: 2_000 }))) return false;
        const alive = new Set(
          (await a.client.members({ timeoutMs: 2_000 }))
            .filter((m) => m.status === "alive").map((m) => m.name),
        );
        if (!running.every((b) => alive.has(b.node))) return false;
      }
      return true;
    }, {
      what: `a leader and ${running.length} alive members seen by every agent`,
      timeoutMs,
      intervalMs: 200,
    });
  }

  /** Stops every agent at once (SIGTERM, SIGKILL after 1 s) and removes their files. */
  async stopAll(): Promise<void> {
    await Promise.allSettled(this.agents.map((a) => a.dispose()));
  }

  dispose(): Promise<void> {
    return this.stopAll();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.stopAll();
  }
}

/**
 * Starts `servers` servers (bootstrap-expect = servers, each retry-joining the others) and
 * `clients` clients (retry-joining the servers), then waits until there is a leader and every
 * agent sees all members alive. On failure everything started is stopped before the throw.
 */
export async function startCluster(opts: ClusterOptions): Promise<Cluster> {
  if (!(opts.servers >= 1)) throw new RangeError(`servers must be at least 1, got ${opts.servers}`);
  const serverIps = Array.from({ length: opts.servers }, () => randomLoopbackIp());
  const clientIps = Array.from({ length: opts.clients ?? 0 }, () => randomLoopbackIp());
  const started: Agent[] = [];
  const start = async (o: AgentOptions) => {
    const agent = await startAgent(o);
    started.push(agent);
    return agent;
  };
  try {
    const servers = await all(serverIps.map((ip) =>
      start({
        server: true,
        ip,
        bootstrapExpect: opts.servers,
        join: serverIps.filter((other) => other !== ip),
        extraArgs: opts.serverArgs,
        hcl: opts.hcl,
      })
    ));
    const clients = await all(
      clientIps.map((ip) =>
        start({ server: false, ip, join: serverIps, extraArgs: opts.clientArgs, hcl: opts.hcl })
      ),
    );
    const cluster = new Cluster(servers, clients);
    await cluster.waitHealthy(opts.timeoutMs ?? 30_000);
    return cluster;
  } catch (err) {
    await Promise.allSettled(started.map((a) => a.dispose()));
    throw err;
  }
}

/** Runs `fn` with a started cluster; always stops every agent and removes its files. */
export async function withCluster<T>(
  opts: ClusterOptions,
  fn: (cluster: Cluster) => Promise<T>,
): Promise<T> {
  const cluster = await startCluster(opts);
  try {
    return await fn(cluster);
  } finally {
    await cluster.stopAll();
  }
}

/** Like Promise.all, but waits for every promise to settle before rejecting. */
async function all<T>(promises: Promise<T>[]): Promise<T[]> {
  const settled = await Promise.allSettled(promises);
  const failed = settled.find((s) => s.status === "rejected");
  if (failed) throw (failed as PromiseRejectedResult).reason;
  return settled.map((s) => (s as PromiseFulfilledResult<T>).value);
}

/** The first truthy answer of `ask` over `agents`, errors ignored. */
async function firstAnswer<T>(
  agents: Agent[],
  ask: (a: Agent) => Promise<T | undefined>,
): Promise<T | undefined> {
  for (const a of agents) {
    try {
      const v = await ask(a);
      if (v) return v;
    } catch {
      // that agent is down or has no leader: ask the next one
    }
  }
  return undefined;
}
