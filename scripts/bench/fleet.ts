/**
 * Fleets of nodes for the benchmarks, each node on its own random loopback address with its
 * agent's HTTP API at http://IP:8500:
 * - `RunNode`: an `auto-consul run` process (deno) supervising its consul, as users start it;
 * - `ConsulNode`: a plain `consul agent` with a static `-retry-join` list (the baselines).
 * Both get the same consul flags (`CONSUL_FLAGS`). `stopFleet` stops every process and any
 * consul a run node left behind (named by its pidfile), SIGKILL after a grace period.
 */
import { ConsulClient } from "../../src/consul/client.ts";
import { pidFilePath, procStartTime, readPidFile } from "../../src/consul/pidfile.ts";
import {
  CONSUL_FLAGS,
  consulBin,
  killPid,
  MAIN,
  onExit,
  Proc,
  randomLoopbackIp,
  stopAll,
} from "./lib.ts";

export interface FleetNode {
  readonly name: string;
  readonly ip: string;
  readonly dataDir: string;
  /** The agent's HTTP API. */
  readonly client: ConsulClient;
  /** The current process (after `start()`). */
  proc?: Proc;
  start(): void;
  /** The live processes of the node: auto-consul's (deno) and consul's. */
  pids(): Promise<{ autoConsul?: number; consul?: number }>;
  /** Everything the node logged so far (consul's lines included). */
  logText(): Promise<string>;
  /** Stops the node (SIGTERM, SIGKILL after `graceMs`) and any consul it left behind. */
  stop(graceMs?: number): Promise<void>;
  /** The abrupt loss of the machine: every process of the node SIGKILLed, nothing said. */
  kill9(): Promise<void>;
}

/** The environment of a benchmarked process: never the caller's auto-consul, consul or AWS settings. */
export function cleanEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(Deno.env.toObject())) {
    if (/^(AUTO_CONSUL_|CONSUL_|AWS_)/.test(k)) continue;
    env[k] = v;
  }
  return { ...env, NO_COLOR: "1", ...extra };
}

export interface RunNodeSpec {
  /** `file:///...` or `s3://bucket/prefix`. */
  registry: string;
  /** `-s` */
  servers: number;
  /** `-t` and `-e` in seconds. */
  ticks: number;
  expiry: number;
  /** Environment (the S3 server's endpoint and credentials). */
  env?: Record<string, string>;
  logLevel?: string;
}

/** One `auto-consul run` node; its log (JSON lines) goes to `<dataDir>.log`. */
export class RunNode implements FleetNode {
  readonly client: ConsulClient;
  proc?: Proc;
  #stopConsulAtExit?: () => void;

  constructor(
    readonly name: string,
    readonly ip: string,
    readonly dataDir: string,
    readonly spec: RunNodeSpec,
  ) {
    this.client = new ConsulClient({ baseUrl: `http://${ip}:8500`, timeoutMs: 2_000 });
  }

  get logFile(): string {
    return `${this.dataDir}.log`;
  }

  argv(): string[] {
    const s = this.spec;
    return [
      "run",
      "-A",
      "--quiet",
      MAIN,
      ...["-r", s.registry, "-a", this.ip, "--client", this.ip, "-n", this.name],
      ...["-d", this.dataDir, "-s", String(s.servers)],
      ...["-t", String(s.ticks), "-e", String(s.expiry), "--consul-bin", consulBin()],
      ...["--log-format", "json", "--log-level", s.logLevel ?? "info"],
      "run",
      "--",
      ...CONSUL_FLAGS,
    ];
  }

  start(): void {
    this.proc = new Proc(this.name, Deno.execPath(), this.argv(), {
      env: cleanEnv(this.spec.env),
      logFile: this.logFile,
    });
    this.#stopConsulAtExit ??= onExit(() => {
      const pid = this.#consulPidSync();
      if (pid !== undefined) killPid(pid);
    });
  }

  async pids(): Promise<{ autoConsul?: number; consul?: number }> {
    return {
      autoConsul: this.proc?.running ? this.proc.pid : undefined,
      consul: await this.consulPid(),
    };
  }

  logText(): Promise<string> {
    return Deno.readTextFile(this.logFile).catch(() => "");
  }

  /** The pid of the consul this node's pidfile names, when it still runs. */
  async consulPid(): Promise<number | undefined> {
    const rec = await readPidFile(pidFilePath(this.dataDir)).catch(() => undefined);
    if (!rec) return undefined;
    const start = procStartTime(rec.pid);
    if (start === undefined || (rec.start !== undefined && start !== rec.start)) return undefined;
    return rec.pid;
  }

  #consulPidSync(): number | undefined {
    try {
      const rec = JSON.parse(Deno.readTextFileSync(pidFilePath(this.dataDir)));
      return procStartTime(rec.pid) === rec.start ? rec.pid : undefined;
    } catch {
      return undefined;
    }
  }

  async stop(graceMs = 10_000): Promise<void> {
    const consul = await this.consulPid();
    await this.proc?.stop("SIGTERM", graceMs);
    const left = consul ?? await this.consulPid();
    if (left !== undefined && procStartTime(left) !== undefined) {
      killPid(left);
      for (let i = 0; i < 50 && procStartTime(left) !== undefined; i++) {
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }

  async kill9(): Promise<void> {
    const run = this.proc;
    run?.signal("SIGSTOP"); // frozen: it cannot react to its consul's death
    const consul = await this.consulPid();
    if (consul !== undefined) killPid(consul);
    run?.signal("SIGKILL");
    await run?.status;
  }

  /** Parsed JSON log lines of this node (other output is skipped). */
  async logs(): Promise<{ ts: number; msg: string; [k: string]: unknown }[]> {
    const text = await Deno.readTextFile(this.logFile).catch(() => "");
    const out = [];
    for (const line of text.split("\n")) {
      if (!line.startsWith("{")) continue;
      try {
        const v = JSON.parse(line);
        out.push({ ...v, ts: Date.parse(v.ts) });
      } catch {
        // not a log line
      }
    }
    return out;
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
    const args = [
      "agent",
      `-node=${this.name}`,
      `-bind=${this.ip}`,
      `-advertise=${this.ip}`,
      `-client=${this.ip}`,
      `-data-dir=${this.dataDir}`,
    ];
    if (s.server) args.push("-server", `-bootstrap-expect=${s.bootstrapExpect}`);
    for (const ip of s.join) if (ip !== this.ip) args.push(`-retry-join=${ip}`);
    if (s.retryInterval) args.push(`-retry-interval=${s.retryInterval}`);
    return [...args, ...CONSUL_FLAGS];
  }

  pids(): Promise<{ autoConsul?: number; consul?: number }> {
    return Promise.resolve({ consul: this.proc?.running ? this.proc.pid : undefined });
  }

  logText(): Promise<string> {
    return Deno.readTextFile(`${this.dataDir}.log`).catch(() => "");
  }

  start(): void {
    this.proc = new Proc(this.name, consulBin(), this.argv(), {
      env: cleanEnv(),
      logFile: `${this.dataDir}.log`,
    });
  }

  async stop(graceMs = 10_000): Promise<void> {
    await this.proc?.stop("SIGTERM", graceMs);
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

/** Stops every node at once. */
export async function stopFleet(nodes: FleetNode[], graceMs = 5_000): Promise<void> {
  await Promise.allSettled(nodes.map((n) => n.stop(graceMs)));
  await stopAll(nodes.flatMap((n) => n.proc ? [n.proc] : []), 1_000);
}
