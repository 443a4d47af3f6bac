/**
 * Scale: a registry pre-filled with N client heartbeats and 5 servers (a real 5-server
 * consul cluster, its heartbeats and its 5 held places), then a new `auto-consul run` node:
 * the time from launch to its mode decision and to its first join, and the S3 requests it
 * made until then (counted by a proxy in front of moto), for N = 0, 1,000, 10,000. The
 * target: flat in N. Also the gem-compatible one-shot `heartbeat` against the same registry,
 * which is not flat (it lists agents/ to find the node's older keys).
 *
 *   deno run -A scripts/bench/scale.ts [--clients 0,1000,10000] [--reps 5] [--backends s3,file]
 */
import { slotKey } from "../../src/registry/layout.ts";
import { mapLimit } from "../../src/util/pool.ts";
import { heartbeatKey } from "../../src/registry/layout.ts";
import { openRegistry } from "../../src/registry/open.ts";
import type { Registry } from "../../src/registry/registry.ts";
import { type Cluster, startCluster } from "../../tests/harness/consul.ts";
import { randomS3Ip, startS3Server } from "../../tests/harness/s3.ts";
import { cleanEnv, RunNode } from "./fleet.ts";
import { waitFormed } from "./formed.ts";
import {
  benchFlags,
  benchStart,
  fmtStats,
  MAIN,
  randomLoopbackIp,
  sleep,
  stats,
  table,
  timeCommand,
  writeSection,
} from "./lib.ts";
import { type Counts, type S3Counter, startS3Counter } from "./s3_counter.ts";

const NAME = "scale";
const flags = benchFlags(NAME, {
  clients: "0,1000,10000",
  reps: 5,
  backends: "s3,file",
  "timeout-s": 60,
  concurrency: 32,
}, "a new node's mode decision and first join against a registry holding N client heartbeats");

const SERVERS = 5;
const EXPIRY_S = 3600; // the pre-filled heartbeats stay live for the whole run
const counts = flags.clients.split(",").map(Number);
const backends = flags.backends.split(",") as ("s3" | "file")[];

/** Writes the servers' heartbeats and places and `n` client heartbeats; returns the seconds. */
async function prefill(registry: Registry, cluster: Cluster, n: number): Promise<number> {
  const t0 = performance.now();
  const now = new Date();
  const enc = (s: string) => new TextEncoder().encode(s);
  await mapLimit(cluster.servers, SERVERS, async (s, k) => {
    await registry.put(heartbeatKey("servers", now, s.node), enc(s.ip));
    await registry.put(heartbeatKey("agents", now, s.node), enc(s.ip));
    await registry.createIfAbsent(slotKey(k, 1), enc(s.node));
  });
  const clients = Array.from({ length: n }, (_, i) => i);
  await mapLimit(clients, flags.concurrency, async (i) => {
    const ip = `127.250.${Math.floor(i / 250)}.${1 + (i % 250)}`; // data only: never contacted
    await registry.put(heartbeatKey("agents", now, `client-${i}`), enc(ip));
  });
  return (performance.now() - t0) / 1000;
}

type S3Server = Awaited<ReturnType<typeof startS3Server>>;
/** moto and two counting proxies: one for the new node, one for the one-shot heartbeat. */
interface S3 {
  server: S3Server;
  counter: S3Counter;
  oneShot: S3Counter;
}

interface Sample {
  modeS?: number;
  joinS?: number;
  untilJoin?: Counts;
  heartbeatS: number;
  heartbeat?: Counts;
}

async function once(
  url: string,
  n: number,
  rep: number,
  root: string,
  s3: S3 | undefined,
): Promise<Sample> {
  const name = `new-${s3 ? "s3" : "file"}-${n}-${rep}`;
  const env = s3 ? { ...s3.server.env, AWS_ENDPOINT_URL_S3: s3.counter.endpoint } : undefined;
  const oneShotEnv = s3 && { ...s3.server.env, AWS_ENDPOINT_URL_S3: s3.oneShot.endpoint };
  const node = new RunNode(name, randomLoopbackIp(), `${root}/${name}`, {
    registry: url,
    servers: SERVERS,
    ticks: 60,
    expiry: EXPIRY_S,
    env,
  });
  s3?.counter.reset();
  const t0Wall = Date.now();
  const t0 = performance.now();
  node.start();
  try {
    // joined: its agent names a leader and lists the servers and itself alive (consul's own
    // -retry-join with the registry's servers usually does it before the join loop looks)
    const joinMs = await waitFormed(
      [node],
      { members: SERVERS + 1, servers: SERVERS },
      t0,
      flags["timeout-s"] * 1000,
      50,
    );
    // ... and its first heartbeat written (it races with the join; waited for, bounded)
    for (let i = 0; i < 100 && s3 && !s3.counter.snapshot().byFolder["PUT agents"]; i++) {
      await sleep(50);
    }
    const untilJoin = s3?.counter.snapshot();
    const mode = (await node.logs()).find((l) => l.mode !== undefined);
    // the one-shot heartbeat, counted by its own proxy, under its own name
    s3?.oneShot.reset();
    const hb = await timeCommand(Deno.execPath(), [
      ...["run", "-A", "--quiet", MAIN, "-r", url, "--http-addr", `${node.ip}:8500`],
      ...["-n", `oneshot-${name}`, "-e", String(EXPIRY_S), "heartbeat"],
    ], { env: cleanEnv(oneShotEnv) });
    if (hb.code !== 0) console.error(`${name}: heartbeat exited ${hb.code}`);
    return {
      modeS: mode ? (mode.ts - t0Wall) / 1000 : undefined,
      joinS: joinMs === undefined ? undefined : joinMs / 1000,
      untilJoin,
      heartbeatS: hb.ms / 1000,
      heartbeat: s3?.oneShot.snapshot(),
    };
  } finally {
    await node.stop();
  }
}

const kinds = (c?: Counts) =>
  c ? `${c.total.PUT} / ${c.total.LIST} / ${c.total.GET} / ${c.total.DELETE}` : "—";
/** The renderings of the counts over the reps, most frequent first, with how often. */
function patterns(samples: Sample[], f: (s: Sample) => Counts | undefined): [string, number][] {
  const seen = new Map<string, number>();
  for (const s of samples) {
    const k = kinds(f(s));
    seen.set(k, (seen.get(k) ?? 0) + 1);
  }
  return [...seen.entries()].sort((a, b) => b[1] - a[1]);
}

function typical(samples: Sample[], f: (s: Sample) => Counts | undefined): string {
  const all = patterns(samples, f);
  return all.map(([k, c]) => (all.length > 1 ? `${k} (${c}×)` : k)).join("; ");
}

const { root, provenance } = await benchStart(NAME);
const cluster = await startCluster({ servers: SERVERS });
let s3: S3 | undefined;
const results: { backend: string; n: number; prefillS: number; samples: Sample[] }[] = [];
try {
  if (backends.includes("s3")) {
    const server = await startS3Server();
    s3 = {
      server,
      counter: startS3Counter(server.endpoint, randomS3Ip()),
      oneShot: startS3Counter(server.endpoint, randomS3Ip()),
    };
  }
  for (const backend of backends) {
    for (const n of counts) {
      const url = backend === "s3"
        ? `s3://${s3!.server.bucket}/scale-${n}`
        : `file://${root}/reg-${n}`;
      const registry = await openRegistry(url, { endpoint: s3?.server.endpoint });
      let prefillS: number;
      try {
        prefillS = await prefill(registry, cluster, n);
      } finally {
        registry.close();
      }
      console.error(`${backend}: ${n} client heartbeats written in ${prefillS.toFixed(1)} s`);
      const samples: Sample[] = [];
      for (let rep = 1; rep <= flags.reps; rep++) {
        const s = await once(url, n, rep, root, backend === "s3" ? s3 : undefined);
        samples.push(s);
        console.error(
          `${backend} n=${n} rep ${rep}: mode ${s.modeS?.toFixed(2)} s, joined ${
            s.joinS?.toFixed(2)
          } s, requests ${kinds(s.untilJoin)}; heartbeat ${s.heartbeatS.toFixed(2)} s ${
            kinds(s.heartbeat)
          }`,
        );
      }
      results.push({ backend, n, prefillS, samples });
    }
  }
} finally {
  await s3?.counter.stop();
  await s3?.oneShot.stop();
  await s3?.server.stop();
  await cluster.stopAll();
}

const rows = results.map((r) => [
  r.backend === "s3" ? "S3 (moto)" : "folder",
  r.n.toLocaleString("en-US"),
  fmtStats(stats(r.samples.flatMap((s) => s.modeS ?? [])), 2),
  fmtStats(stats(r.samples.flatMap((s) => s.joinS ?? [])), 2),
  r.backend === "s3" ? typical(r.samples, (s) => s.untilJoin) : "—",
  fmtStats(stats(r.samples.map((s) => s.heartbeatS)), 2),
  r.backend === "s3" ? typical(r.samples, (s) => s.heartbeat) : "—",
]);

/** Flat: the same requests at every N, and the median join time within 25 % (+0.1 s) of N=0's. */
function verdict(backend: string): string {
  const rs = results.filter((r) => r.backend === backend);
  if (rs.length < 2) return "not measured";
  const base = rs[0];
  const med = (r: typeof base) => stats(r.samples.flatMap((s) => s.joinS ?? [])).median;
  const usual = (r: typeof base) => patterns(r.samples, (s) => s.untilJoin)[0][0];
  const sameRequests = backend !== "s3" || rs.every((r) => usual(r) === usual(base));
  const flatTime = rs.every((r) => med(r) <= med(base) * 1.25 + 0.1);
  const worst = rs.at(-1)!;
  return `${sameRequests && flatTime ? "**met**" : "**missed**"}: first join ${
    med(worst).toFixed(2)
  } s at ${worst.n.toLocaleString("en-US")} clients against ${med(base).toFixed(2)} s at ${
    base.n.toLocaleString("en-US")
  }${backend === "s3" ? (sameRequests ? ", the same requests" : ", different requests") : ""}`;
}

const body = `## Scale

A registry pre-filled with N client heartbeats (\`agents/\`) and ${SERVERS} servers (a real
${SERVERS}-server consul cluster: its heartbeats in \`servers/\` and \`agents/\`, and its
${SERVERS} held places), then a new \`auto-consul run\` node (\`-s ${SERVERS}\`): seconds from
launch to its mode decision (all places held: client) and to its first join (its agent names a
leader and lists the ${SERVERS} servers and itself alive; HTTP API polled every 50 ms), and the S3
requests it made until it had joined and written its first heartbeat, counted by a proxy in
front of moto (PUT / LIST / GET / DELETE: the conditional-write probe, the place claims, the
servers for \`-retry-join\`, the join loop's read when it comes before the join, the first
heartbeat). ${flags.reps} new nodes per N, one after the other; seconds as median (min–max).
Beside it, the gem-compatible one-shot \`heartbeat\` (cron use) against the same registry and
agent, under another node name and counted by a second proxy: it lists \`agents/\` to find the
node's older keys (one LIST per 1,000 keys), so it grows with the fleet; \`run\` remembers its
keys and never lists \`agents/\`.

${provenance()}

${
  table([
    "registry",
    "client heartbeats",
    "mode decided, s",
    "first join, s",
    "requests until joined: PUT / LIST / GET / DELETE",
    "one-shot heartbeat, s",
    "one-shot heartbeat requests",
  ], rows)
}

Target "flat in the number of clients": ${
  backends.map((b) => `${b === "s3" ? "S3" : "folder"} ${verdict(b)}`).join("; ")
}.
Pre-fill times: ${results.map((r) => `${r.backend} ${r.n}: ${r.prefillS.toFixed(1)} s`).join(", ")}.
`;
await writeSection(NAME, body);
console.log(body);
