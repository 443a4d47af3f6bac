/**
 * Fleets of nodes for the benchmarks, each node on its own random loopback address with its
 * agent's HTTP API at http://IP:8500:
 * - `RunNode`: the tests' auto-consul node (`tests/harness/nodes.ts`: an `auto-consul run`
 *   process supervising its consul, as users start it), logging at info to `<dataDir>.log`;
 * - `ConsulNode`: a plain `consul agent` with a static `-retry-join` list (the baselines).
 * Both get the same consul flags (`CONSUL_FLAGS`). `stopFleet` stops every process and any
 * consul a run node left behind, SIGKILL after a grace period.
 */
import { ConsulClient } from "../../src/consul/client.ts";
import { agentCoreArgs } from "../../tests/harness/consul.ts";
import { Node, type NodeSpec } from "../../tests/harness/nodes.ts";
import { cleanEnv } from "../../tests/harness/proc.ts";
import { CONSUL_FLAGS, consulBin, Proc, randomLoopbackIp } from "./lib.ts";

export { cleanEnv };

export interface FleetNode {
  readonly name: string;
  readonly ip: string;
  readonly dataDir: string;
  /** The agent's HTTP API. */
  readonly client: ConsulClient;
  start(): void;
  /** The live processes of the node: auto-consul's (deno) and consul's. */
  pids(): Promise<{ autoConsul?: number; consul?: number }>;
  /** Everything the node logged so far (consul's lines included). */
  logText(): Promise<string>;
  /** Stops the node (`signal`, SIGKILL after `graceMs`) and any consul it left behind. */
  stop(signal?: Deno.Signal, graceMs?: number): Promise<unknown>;
  /** The abrupt loss of the machine: every process of the node SIGKILLed, nothing said. */
  kill9(): Promise<void>;
}

/** A run node's spec: the tests' (`-r`, `-s`, `-t`, `-e`, environment, log level: default info). */
export type RunNodeSpec = NodeSpec;

/** One `auto-consul run` node; its log (JSON lines) also goes to `<dataDir>.log`. */
export class RunNode extends Node implements FleetNode {
  constructor(name: string, ip: string, dataDir: string, spec: RunNodeSpec) {
    super({ name, ip, dataDir, spec: { logLevel: "info", ...spec, logFile: `${dataDir}.log` } });
  }

  async pids(): Promise<{ autoConsul?: number; consul?: number }> {
    return {
      autoConsul: this.running ? this.proc.pid : undefined,
      consul: await this.consulPid(),
    };
  }

  logText(): Promise<string> {
    return Promise.resolve(this.lines().join("\n"));
  }
}

export interface ConsulNodeSpec {
  server: boolean;
  /** Servers: `-bootstrap-expect`. */
  bootstrapExpect: number;
  /** The static `-retry-join` list. */
  join: string[];
  /** `-retry-interval`; undefined: consul's default (30 s). */
  retryInterval?: string;
}

/** One plain `consul agent` (a baseline node); its output goes to `<dataDir>.log`. */
export class ConsulNode implements FleetNode {
  readonly client: ConsulClient;
  proc?: Proc;

  constructor(
    readonly name: string,
    readonly ip: string,
    readonly dataDir: string,
    public spec: ConsulNodeSpec,
  ) {
    this.client = new ConsulClient({ baseUrl: `http://${ip}:8500`, timeoutMs: 2_000 });
  }

  argv(): string[] {
    const s = this.spec;
    const args = agentCoreArgs({
      node: this.name,
      ip: this.ip,
      dataDir: this.dataDir,
      server: s.server,
      bootstrapExpect: s.bootstrapExpect,
      join: s.join.filter((ip) => ip !== this.ip),
    });
    if (s.retryInterval) args.push(`-retry-interval=${s.retryInterval}`);
    return ["agent", ...args, ...CONSUL_FLAGS];
  }

  pids(): Promise<{ autoConsul?: number; consul?: number }> {
    return Promise.resolve({ consul: this.proc?.running ? this.proc.pid : undefined });
  }

  logText(): Promise<string> {
    return Deno.readTextFile(`${this.dataDir}.log`).catch(() => "");
  }

  start(): void {
    this.proc = new Proc(consulBin(), this.argv(), {
      env: cleanEnv(),
      clearEnv: true,
      keepLines: 0,
      logFile: `${this.dataDir}.log`,
    });
  }

  async stop(signal: Deno.Signal = "SIGTERM", graceMs = 10_000): Promise<void> {
    await this.proc?.stop(signal, graceMs);
  }

  async kill9(): Promise<void> {
    await this.proc?.stop("SIGKILL", 0);
  }
}

/** `n` auto-consul run nodes (not started) under `root`. */
export function runNodes(n: number, root: string, spec: RunNodeSpec, prefix = "ac"): RunNode[] {
  return Array.from({ length: n }, (_, i) => {
    const name = `${prefix}-${i + 1}`;
    return new RunNode(name, randomLoopbackIp(), `${root}/${name}`, spec);
  });
}

/**
 * A baseline cluster (not started): `servers` servers with `-bootstrap-expect servers`, every
 * node with the servers' addresses as its static `-retry-join` list.
 */
export function consulNodes(
  servers: number,
  clients: number,
  root: string,
  retryInterval: string | undefined,
  prefix = "c",
): ConsulNode[] {
  const serverIps = Array.from({ length: servers }, () => randomLoopbackIp());
  const clientIps = Array.from({ length: clients }, () => randomLoopbackIp());
  const spec = (server: boolean): ConsulNodeSpec => ({
    server,
    bootstrapExpect: servers,
    join: serverIps,
    retryInterval,
  });
  return [
    ...serverIps.map((ip, i) =>
      new ConsulNode(`${prefix}s-${i + 1}`, ip, `${root}/${prefix}s-${i + 1}`, spec(true))
    ),
    ...clientIps.map((ip, i) =>
      new ConsulNode(`${prefix}c-${i + 1}`, ip, `${root}/${prefix}c-${i + 1}`, spec(false))
    ),
  ];
}

/** Starts every node back to back (the same moment, as far as one process can). */
export function startFleet(nodes: FleetNode[]): void {
  for (const n of nodes) n.start();
}

/** Stops every node at once (SIGTERM, SIGKILL after `graceMs`). */
export async function stopFleet(nodes: FleetNode[], graceMs = 5_000): Promise<void> {
  await Promise.allSettled(nodes.map((n) => n.stop("SIGTERM", graceMs)));
}
