/**
 * Recovery, for a 3-server + 2-client cluster, auto-consul run against plain consul agents
 * with a static -retry-join list (-retry-interval 1s, the same consul flags):
 * 1. all servers restart at once (SIGTERM, then started again with the same address, name
 *    and data): seconds from the relaunch until a leader is back and every member is alive;
 * 2. all servers replaced on new addresses (the old ones SIGKILLed, new machines with fresh
 *    data dirs): seconds from the replacements' launch until the surviving clients are
 *    joined to them (every client names a leader; every member alive). Replacements keep the
 *    old node names (they hold their places at once), or get new names and are started once
 *    the old heartbeats have expired (-e), since a live holder's place is never taken.
 *    Consul alone cannot re-discover: its clients only know the old addresses.
 *
 *   deno run -A scripts/bench/recovery.ts [--reps 5] [--ticks 5] [--expiry 15] [--window-s 60]
 */
import { startS3Server } from "../../tests/harness/s3.ts";
import {
  ConsulNode,
  consulNodes,
  type FleetNode,
  RunNode,
  runNodes,
  type RunNodeSpec,
  startFleet,
  stopFleet,
} from "./fleet.ts";
import { waitFormed } from "./formed.ts";
import {
  benchFlags,
  benchStart,
  fmtStats,
  loadAvg,
  randomLoopbackIp,
  sleep,
  stats,
  table,
  workDir,
  writeSection,
} from "./lib.ts";

const NAME = "recovery";
const flags = benchFlags(NAME, {
  reps: 5,
  "baseline-replace-reps": 1,
  servers: 3,
  clients: 2,
  ticks: 5,
  expiry: 15,
  "window-s": 75,
  registry: "file",
}, "leader back after all servers restart; clients re-joined after all servers are replaced");

const S = flags.servers;
const C = flags.clients;
const WINDOW_MS = flags["window-s"] * 1000;
const want = { members: S + C, servers: S };

type Scenario = "restart" | "replace-same-names" | "replace-new-names";
type System = "auto-consul" | "consul";
const s3 = flags.registry === "s3" ? await startS3Server() : undefined;

function runSpec(root: string): RunNodeSpec {
  return {
    registry: s3
      ? `s3://${s3.bucket}/recovery-${crypto.randomUUID().slice(0, 8)}`
      : `file://${root}/registry`,
    servers: S,
    ticks: flags.ticks,
    expiry: flags.expiry,
    env: s3 ? { ...s3.env, AWS_ENDPOINT_URL_S3: s3.endpoint } : undefined,
  };
}

/** Starts a cluster and sorts it into servers and clients; undefined if it did not form. */
async function formCluster(system: System, root: string) {
  const nodes: FleetNode[] = system === "auto-consul"
    ? runNodes(S + C, root, runSpec(root))
    : consulNodes(S, C, root, "1s");
  startFleet(nodes);
  if (await waitFormed(nodes, want, performance.now(), 60_000) === undefined) {
    return { nodes, formed: false as const };
  }
  const servers: FleetNode[] = [];
  const clients: FleetNode[] = [];
  for (const n of nodes) ((await n.client.self()).isServer ? servers : clients).push(n);
  return { nodes, formed: true as const, servers, clients };
}

/** New machines for the servers: new addresses and data dirs; same or new names. */
function replacements(system: System, old: FleetNode[], root: string, sameNames: boolean) {
  const ips = old.map(() => randomLoopbackIp());
  return old.map((o, i) => {
    const name = sameNames ? o.name : `${o.name}-new`;
    const dir = `${root}/${name}-r`;
    return system === "auto-consul"
      ? new RunNode(name, ips[i], dir, (o as RunNode).spec)
      : new ConsulNode(name, ips[i], dir, {
        server: true,
        bootstrapExpect: S,
        join: ips,
        retryInterval: "1s",
      });
  });
}

/** ms from the (re)launch and from the servers' stop or loss to recovered (undefined: never). */
interface Sample {
  fromLaunch?: number;
  fromLoss?: number;
  /** A client's consul logged serf's "Name conflict" (same name, new address). */
  nameConflict?: boolean;
}

async function once(system: System, scenario: Scenario): Promise<Sample> {
  const root = await workDir(`${NAME}-${system}`);
  const started: FleetNode[] = [];
  try {
    const c = await formCluster(system, root);
    started.push(...c.nodes);
    if (!c.formed) throw new Error(`${system}: the ${S}+${C} cluster did not form in 60 s`);
    await sleep(2 * flags.ticks * 1000); // steady state: heartbeats written, joins settled
    const tLoss = performance.now();
    const done = (ms: number | undefined, t0: number): Sample =>
      ms === undefined ? {} : { fromLaunch: ms, fromLoss: ms + t0 - tLoss };
    if (scenario === "restart") {
      await Promise.all(c.servers.map((n) => n.stop()));
      const t0 = performance.now();
      startFleet(c.servers);
      return done(await waitFormed(c.nodes, want, t0, WINDOW_MS), t0);
    }
    await Promise.all(c.servers.map((n) => n.kill9()));
    const fresh = replacements(system, c.servers, root, scenario === "replace-same-names");
    started.push(...fresh);
    if (scenario === "replace-new-names" && system === "auto-consul") {
      await sleep((flags.expiry + 1) * 1000); // the old heartbeats and claims are stale now
    }
    const t0 = performance.now();
    startFleet(fresh);
    const sample = done(await waitFormed([...fresh, ...c.clients], want, t0, WINDOW_MS), t0);
    const logs = await Promise.all(c.clients.map((n) => n.logText()));
    return { ...sample, nameConflict: logs.some((l) => l.includes("Name conflict")) };
  } finally {
    await stopFleet(started);
    await Deno.remove(root, { recursive: true }).catch(() => {});
  }
}

const { provenance } = await benchStart(NAME);
const plan: [System, Scenario, number][] = [
  ["auto-consul", "restart", flags.reps],
  ["consul", "restart", flags.reps],
  ["auto-consul", "replace-same-names", flags.reps],
  ["auto-consul", "replace-new-names", flags.reps],
  ["consul", "replace-same-names", flags["baseline-replace-reps"]],
];
const results = new Map<string, Sample[]>();
try {
  for (let rep = 1; rep <= flags.reps; rep++) {
    for (const [system, scenario, reps] of plan) {
      if (rep > reps) continue;
      const sample = await once(system, scenario);
      const key = `${system}:${scenario}`;
      results.set(key, [...(results.get(key) ?? []), sample]);
      const ms = sample.fromLaunch;
      console.error(
        `rep ${rep} ${system} ${scenario}: ${
          ms === undefined ? `not within ${flags["window-s"]} s` : `${(ms / 1000).toFixed(2)} s`
        } [load ${loadAvg()}]`,
      );
    }
  }
} finally {
  await s3?.stop();
}

const LABEL: Record<Scenario, string> = {
  "restart": "all servers restart at once → leader back, all members alive",
  "replace-same-names": "all servers replaced on new addresses (same names) → clients joined",
  "replace-new-names":
    `all servers replaced on new addresses (new names, started after -e ${flags.expiry} s) → clients joined`,
};
const rows: string[][] = [];
for (const [system, scenario] of plan) {
  const xs = results.get(`${system}:${scenario}`) ?? [];
  const seconds = (f: (x: Sample) => number | undefined) => {
    const ok = xs.flatMap((x) => f(x) ?? []);
    const never = xs.length - ok.length;
    if (ok.length === 0) return `never within the ${flags["window-s"]} s window`;
    return fmtStats(stats(ok.map((x) => x / 1000)), 2) +
      (never ? `; ${never} of ${xs.length} never within ${flags["window-s"]} s` : "");
  };
  const what = system === "consul"
    ? "consul, static -retry-join (1 s)" +
      (scenario === "replace-same-names" ? " of the old addresses" : "")
    : `auto-consul run (${s3 ? "S3" : "folder"} registry)`;
  const conflicts = xs.filter((x) => x.nameConflict).length;
  rows.push([
    LABEL[scenario] +
    (conflicts ? ` (serf "Name conflict" in ${conflicts} of ${xs.length} runs)` : ""),
    what,
    String(xs.length),
    seconds((x) => x.fromLaunch),
    seconds((x) => x.fromLoss),
  ]);
}

const body = `## Recovery

A ${S}-server + ${C}-client cluster (auto-consul \`run\` with \`-s ${S} -t ${flags.ticks} -e ${flags.expiry}\`
on the ${s3 ? "S3" : "folder"} registry, or plain consul agents with a static \`-retry-join\` list
of the servers and \`-retry-interval 1s\`; the same consul flags), formed and left for two ticks,
then: (1) every server stopped (SIGTERM: servers do not leave) and started again with the same
address, name and data, timed from the relaunch until a leader is back and every member is
alive; (2) every server SIGKILLed and replaced by a new machine on a new address with an empty
data dir, timed from the replacements' launch until every surviving client names a leader and
every member is alive. A replacement with the old name holds its old place at once; with a new
name it can only take a place once the old holder's heartbeat and claim are older than \`-e\`
(a live holder's place is never taken), so those are started after waiting \`-e\` + 1 s. The
join watch re-joins a client after more than two ticks (${2 * flags.ticks} s) without a leader.
Consul alone has no way to learn the new addresses: its clients keep retrying the old ones.
Replacements that keep the old names are slowed by consul itself, not by discovery: the
clients still hold the dead members under those names with the old addresses, and serf refuses
the new address ("Name conflict for 'x' both A and B are claiming" in the clients' consul log)
until memberlist may reclaim a dead node's name, 30 s after it was declared dead (consul sets
\`DeadNodeReclaimTime\` to 30 s); the registry had the new addresses within a tick.
Seconds, median (min–max), from the (re)launch; the window is ${flags["window-s"]} s.

${provenance()}

${
  table([
    "scenario",
    "system",
    "runs",
    "from the (re)launch, s",
    "from the servers' stop or loss, s",
  ], rows)
}
`;
await writeSection(NAME, body);
console.log(body);
