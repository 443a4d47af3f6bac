/**
 * The seeded chaos soak (issue 15, build 4): 3 servers + 3 clients under `auto-consul run`
 * (`-s 3`, short ticks) on one registry, and a seeded random schedule of faults, one at a
 * time, each undone after a seeded duration:
 *   run-kill9       kill -9 of a node's `run` (its consul goes with it: parent-death signal),
 *                   restarted after 1-3 s as systemd's Restart= would;
 *   consul-kill9    kill -9 of a node's consul (run restarts it);
 *   consul-stop     SIGSTOP of a node's consul for 2-12 s, then SIGCONT (run restarts a consul
 *                   silent for more than --hang-timeout 6 s, so the longer ones are restarts);
 *   server-move     a server stopped and started again with its data on a new address;
 *   partition       one node isolated from every other node for 3-10 s (nftables);
 *   registry-outage (S3 only) every node's path to the S3 server cut for 5-15 s;
 *   all-servers     all servers stopped (SIGTERM) and started again at once.
 * Meanwhile a workload writes KV keys with check-and-set (`cas=0`: create only) through a live
 * agent and records every acknowledged write. Checked all the time (InvariantMonitor): never
 * more raft voters than 3, never two leaders in one term, no place claimed away from a holder
 * that no fault took down. After each fault: the time until one healthy cluster (3 servers,
 * 3 clients, one leader, all alive, voters = servers), bounded by HEALTHY_BOUND_MS (a miss is
 * a violation). At the end: every acknowledged write readable with its value, every node's run
 * process alive. Same seed, same schedule (the schedule is drawn before anything runs).
 */
import { inspectRegistry } from "./registry_view.ts";
import { Node, type Nodes, type NodeSpec, withNodes } from "./nodes.ts";
import { waitForCluster } from "./cluster_view.ts";
import { randomLoopbackIp } from "./consul.ts";
import { InvariantMonitor, type Violation } from "./invariants.ts";
import { type Partitions, startForwarder, withPartitions } from "./partition.ts";
import { randomS3Ip, type S3Server, withS3Server } from "./s3.ts";
import { sleep } from "./wait.ts";

export const FAULT_KINDS = [
  "run-kill9",
  "consul-kill9",
  "consul-stop",
  "server-move",
  "partition",
  "registry-outage",
  "all-servers",
] as const;
export type FaultKind = typeof FAULT_KINDS[number];

export interface SoakOptions {
  seed: number;
  minutes: number;
  registry: "folder" | "s3";
  /** Stop after this many faults even when time is left. */
  maxFaults?: number;
  /** Go on past the minutes until this many faults were injected (default 0). */
  minFaults?: number;
  /** Progress lines (default: none). */
  log?: (line: string) => void;
  /** Each node's whole output is also appended to `<logDir>/soak<i>.log` (default: kept in memory only). */
  logDir?: string;
}

export interface Fault {
  kind: FaultKind;
  /** Index into the node list chosen by the schedule (meaning depends on the kind). */
  target: number;
  /** How long the fault lasts before it is undone, ms. */
  durationMs: number;
  /** Pause after the cluster is healthy again, before the next fault, ms. */
  pauseMs: number;
}

export interface SoakReport {
  seed: number;
  registry: "folder" | "s3";
  minutes: number;
  wallMs: number;
  faults: Record<string, number>;
  /** kind → time to healthy after each fault of that kind, ms. */
  healthyMs: Record<string, number[]>;
  violations: Violation[];
  acknowledged: number;
  lost: string[];
  /** Nodes whose run process was not alive at the end. */
  dead: string[];
  samples: number;
}

/** mulberry32: a small seeded PRNG (same seed, same sequence). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6D2B79F5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * The fault schedule of a seed: long enough for any soak (the soak stops drawing when its time
 * is up). Kinds cycle through a seeded shuffle so that every kind comes up early and evenly.
 */
export function schedule(seed: number, registry: "folder" | "s3", count = 500): Fault[] {
  const rand = prng(seed);
  const kinds = FAULT_KINDS.filter((k) => registry === "s3" || k !== "registry-outage");
  const out: Fault[] = [];
  while (out.length < count) {
    const round = [...kinds];
    for (let i = round.length - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      [round[i], round[j]] = [round[j], round[i]];
    }
    for (const kind of round) {
      const [lo, hi] = DURATIONS[kind];
      out.push({
        kind,
        target: Math.floor(rand() * 1000),
        durationMs: Math.round(lo + rand() * (hi - lo)),
        pauseMs: Math.round(rand() * 3000),
      });
    }
  }
  return out.slice(0, count);
}

const DURATIONS: Record<FaultKind, [number, number]> = {
  "run-kill9": [1_000, 3_000],
  "consul-kill9": [0, 0],
  "consul-stop": [2_000, 12_000],
  "server-move": [1_000, 3_000],
  "partition": [3_000, 10_000],
  "registry-outage": [5_000, 15_000],
  "all-servers": [1_000, 5_000],
};

const TICKS_S = 1;
const HANG_TIMEOUT_S = 6;
const EXPIRY_S = 4;
const SERVERS = 3;
const CLIENTS = 3;
/** A fault not healed within this bound is a violation ("no healthy cluster"). */
export const HEALTHY_BOUND_MS = 300_000;

interface Ctx {
  nodes: Nodes;
  group: Node[];
  net: Partitions;
  spec: (i: number) => NodeSpec;
  forwarders: { ip: string }[];
  /** node name → when a fault last took it down (for place takeovers). */
  downAt: Map<string, number>;
}

/** Runs the soak and returns its report. Every process, rule and file is removed at the end. */
export async function runSoak(opts: SoakOptions): Promise<SoakReport> {
  if (opts.registry === "s3") {
    return await withS3Server(async (s3) => await soakWith(opts, s3));
  }
  return await soakWith(opts, undefined);
}

async function soakWith(opts: SoakOptions, s3: S3Server | undefined): Promise<SoakReport> {
  const log = opts.log ?? (() => {});
  const forwarders = s3
    ? Array.from({ length: SERVERS + CLIENTS }, () => {
      const ip = randomS3Ip();
      return { ip, ...startForwarder(ip, { hostname: s3.host, port: s3.port }) };
    })
    : [];
  try {
    return await withPartitions((net) =>
      withNodes(async (nodes) => {
        const registry = s3 ? `s3://${s3.bucket}/soak` : `file://${await nodes.dir("registry")}`;
        const spec = (i: number): NodeSpec => ({
          registry,
          servers: SERVERS,
          ticks: TICKS_S,
          expiry: EXPIRY_S,
          logLevel: "info",
          // A consul frozen longer than this is restarted by run (the longer SIGSTOPs do it).
          flags: ["--hang-timeout", String(HANG_TIMEOUT_S)],
          logFile: opts.logDir ? `${opts.logDir}/soak${i}.log` : undefined,
          env: s3
            ? {
              ...s3.env,
              AWS_ENDPOINT_URL_S3: `http://${forwarders[i].ip}:${forwarders[i].port}`,
            }
            : {},
        });
        const group = Array.from({ length: SERVERS + CLIENTS }, (_, i) => {
          const n = nodes.create({ ...spec(i), prefix: `soak${i}` });
          n.start();
          return n;
        });
        const ctx: Ctx = { nodes, group, net, spec, forwarders, downAt: new Map() };
        return await soakLoop(opts, ctx, registry, s3, log);
      })
    );
  } finally {
    forwarders.forEach((f) => f.close());
  }
}

async function soakLoop(
  opts: SoakOptions,
  ctx: Ctx,
  registry: string,
  s3: S3Server | undefined,
  log: (line: string) => void,
): Promise<SoakReport> {
  const started = Date.now();
  const faults: Record<string, number> = {};
  const healthyMs: Record<string, number[]> = {};
  const inspect = await inspectRegistry(
    registry,
    s3 ? { ...s3.env, AWS_ENDPOINT_URL_S3: s3.endpoint } : {},
  );
  const takeoverWindowMs = 10 * EXPIRY_S * 1000;
  const monitor = new InvariantMonitor({
    servers: SERVERS,
    nodes: () => ctx.group,
    registry: inspect,
    allowedTakeover: (_place, from) => {
      const at = ctx.downAt.get(from);
      return at !== undefined && Date.now() - at < takeoverWindowMs;
    },
  });
  const workload = new Workload(() => ctx.group);
  try {
    await waitForCluster(ctx.group, { servers: SERVERS, clients: CLIENTS, timeoutMs: 120_000 });
    log(`soak: cluster formed in ${Date.now() - started} ms (seed ${opts.seed}, ${opts.registry})`);
    monitor.start();
    workload.start();
    const endAt = started + opts.minutes * 60_000;
    for (const [i, fault] of schedule(opts.seed, opts.registry).entries()) {
      const timeUp = Date.now() >= endAt && i >= (opts.minFaults ?? 0);
      if (timeUp || i >= (opts.maxFaults ?? Infinity)) break;
      const t0 = Date.now();
      const what = await inject(ctx, fault);
      faults[fault.kind] = (faults[fault.kind] ?? 0) + 1;
      const undone = Date.now();
      try {
        await waitForCluster(ctx.group, {
          servers: SERVERS,
          clients: CLIENTS,
          timeoutMs: HEALTHY_BOUND_MS,
        });
        const ms = Date.now() - undone;
        (healthyMs[fault.kind] ??= []).push(ms);
        log(`soak: ${what} (${Date.now() - t0} ms in all): healthy ${ms} ms after it was undone`);
      } catch (err) {
        monitor.violate(
          "unhealthy",
          `no healthy cluster ${HEALTHY_BOUND_MS} ms after ${what}: ${
            (err as Error).message.split("\n")[0]
          }`,
        );
        log(`soak: ${what}: NOT healthy within ${HEALTHY_BOUND_MS} ms`);
        log(ctx.nodes.tails(ctx.group, 60));
        break;
      }
      await sleep(fault.pauseMs);
    }
    await workload.stop();
    const violations = await monitor.stop();
    const lost = await workload.verify(ctx.group);
    const dead = ctx.group.filter((n) => !n.running).map((n) => n.name);
    return {
      seed: opts.seed,
      registry: opts.registry,
      minutes: opts.minutes,
      wallMs: Date.now() - started,
      faults,
      healthyMs,
      violations,
      acknowledged: workload.acked.size,
      lost,
      dead,
      samples: monitor.samples,
    };
  } catch (err) {
    await workload.stop();
    await monitor.stop();
    throw new Error(`${(err as Error).message}\n${ctx.nodes.tails(ctx.group, 20)}`, {
      cause: err,
    });
  } finally {
    inspect.close();
  }
}

/** Applies one fault, waits its duration, undoes it. Returns a description. */
async function inject(ctx: Ctx, fault: Fault): Promise<string> {
  const { group } = ctx;
  const servers = await serversOf(group);
  const pick = <T>(xs: T[]): T => xs[fault.target % xs.length];
  switch (fault.kind) {
    case "run-kill9": {
      const n = pick(group);
      ctx.downAt.set(n.name, Date.now());
      n.proc.signal("SIGKILL");
      await n.proc.status;
      await sleep(fault.durationMs);
      n.start();
      return `kill -9 of run on ${n.name}, restarted after ${fault.durationMs} ms`;
    }
    case "consul-kill9": {
      const n = pick(group);
      const pid = await n.waitConsulPid({ timeoutMs: 60_000 });
      ctx.downAt.set(n.name, Date.now());
      Deno.kill(pid, "SIGKILL");
      await n.waitConsulPid({ not: pid, timeoutMs: 60_000 });
      return `kill -9 of consul ${pid} on ${n.name}`;
    }
    case "consul-stop": {
      const n = pick(group);
      const pid = await n.waitConsulPid({ timeoutMs: 60_000 });
      Deno.kill(pid, "SIGSTOP");
      try {
        await sleep(fault.durationMs);
      } finally {
        try {
          Deno.kill(pid, "SIGCONT");
        } catch { /* restarted by run's hang watchdog meanwhile */ }
      }
      return `SIGSTOP of consul on ${n.name} for ${fault.durationMs} ms`;
    }
    case "server-move": {
      const old = pick(servers);
      ctx.downAt.set(old.name, Date.now());
      await old.stop("SIGTERM");
      await sleep(fault.durationMs);
      const moved = new Node({
        name: old.name,
        ip: randomLoopbackIp(),
        dataDir: old.dataDir,
        spec: old.spec,
      });
      ctx.nodes.all.push(moved);
      group[group.indexOf(old)] = moved;
      moved.start();
      return `server ${old.name} moved ${old.ip} -> ${moved.ip}`;
    }
    case "partition": {
      const n = pick(group);
      const cut = await ctx.net.isolate(n.ip, group.map((x) => x.ip));
      try {
        await sleep(fault.durationMs);
      } finally {
        await ctx.net.heal(cut);
      }
      return `${n.name} isolated for ${fault.durationMs} ms`;
    }
    case "registry-outage": {
      const cuts = [];
      for (const f of ctx.forwarders) cuts.push(await ctx.net.blackhole(f.ip));
      try {
        await sleep(fault.durationMs);
      } finally {
        for (const c of cuts) await ctx.net.heal(c);
      }
      return `registry cut from every node for ${fault.durationMs} ms`;
    }
    case "all-servers": {
      const now = Date.now();
      servers.forEach((s) => ctx.downAt.set(s.name, now));
      await Promise.all(servers.map((s) => s.stop("SIGTERM")));
      await sleep(fault.durationMs);
      servers.forEach((s) => s.start());
      return `all servers stopped and started again after ${fault.durationMs} ms`;
    }
  }
}

/** The nodes whose agent says it is a server (nodes that do not answer are left out). */
async function serversOf(group: Node[]): Promise<Node[]> {
  const answers = await Promise.all(group.map(async (n) => {
    try {
      return (await n.client.self()).isServer ? n : undefined;
    } catch {
      return undefined;
    }
  }));
  const servers = answers.filter((n): n is Node => n !== undefined);
  if (servers.length === 0) throw new Error("no agent answers as a server");
  return servers;
}

/**
 * Writes `soak/<n>` with cas=0 (create only) through a random live agent, one at a time, and
 * remembers every write consul acknowledged (HTTP 200 and `true`). A failed or unanswered
 * write is not acknowledged (its outcome is unknown, so it is not checked).
 */
class Workload {
  readonly acked = new Map<string, string>();
  readonly #group: () => Node[];
  #seq = 0;
  #stop = false;
  #loop: Promise<void> | undefined;

  constructor(group: () => Node[]) {
    this.#group = group;
  }

  start(): void {
    this.#loop = (async () => {
      while (!this.#stop) {
        const group = this.#group();
        const n = group[this.#seq % group.length];
        const key = `soak/${String(this.#seq).padStart(6, "0")}`;
        const value = `v${this.#seq}-${n.name}`;
        this.#seq++;
        try {
          if (await n.client.kvPut(key, value, { cas: 0 })) this.acked.set(key, value);
        } catch { /* unknown outcome: not acknowledged */ }
        await sleep(100);
      }
    })();
  }

  async stop(): Promise<void> {
    this.#stop = true;
    await this.#loop;
  }

  /** Keys acknowledged but missing or different now (read through a server, consistent). */
  async verify(group: Node[]): Promise<string[]> {
    const servers = await serversOf(group);
    const entries = await servers[0].client.kvList("soak/");
    const now = new Map(entries.map((e) => [e.key, e.value]));
    const lost: string[] = [];
    for (const [k, v] of this.acked) {
      if (now.get(k) !== v) lost.push(`${k} (${now.get(k) ?? "missing"}, expected ${v})`);
    }
    return lost;
  }
}

/** The report as a RELIABILITY.md section. */
export function reportMarkdown(r: SoakReport, command: string, machine: string): string {
  const median = (xs: number[]) => {
    const s = [...xs].sort((a, b) => a - b);
    return s.length ? s[Math.floor((s.length - 1) / 2)] : 0;
  };
  const rows = FAULT_KINDS.filter((k) => r.faults[k]).map((k) => {
    const t = r.healthyMs[k] ?? [];
    return `| ${k} | ${r.faults[k]} | ${(median(t) / 1000).toFixed(1)} | ${
      (Math.max(0, ...t) / 1000).toFixed(1)
    } |`;
  });
  return [
    `### Soak: seed ${r.seed}, ${r.registry} registry, ${r.minutes} min`,
    "",
    `${new Date().toISOString().slice(0, 10)} · ${machine} · \`${command}\``,
    "",
    "| fault | injected | healthy after, median s | max s |",
    "|---|---|---|---|",
    ...rows,
    "",
    `Invariant violations: **${r.violations.length}**${
      r.violations.length
        ? ` (${
          r.violations.map((v) => `${v.kind}: ${v.detail} (×${v.count}, first ${v.at})`).join("; ")
        })`
        : ""
    }. Acknowledged writes: ${r.acknowledged}, lost: **${r.lost.length}**. ` +
    `Run processes dead at the end: ${r.dead.length}. Monitor samples: ${r.samples}. ` +
    `Wall time ${(r.wallMs / 60_000).toFixed(1)} min.`,
    "",
  ].join("\n");
}
