/**
 * The start path at a real region's latency (issue 17): one `auto-consul run` node alone,
 * its S3 requests going through the latency proxy (`s3_counter.ts`, default 25 ms ± 5 ms per
 * request) in front of moto: seconds from launch to its consul started, and the critical path
 * (the longest chain of requests that waited for each other) in that time. Three nodes:
 * - a new node on an empty registry, which claims a server place;
 * - a new node on a registry whose places are all held by live servers: a client;
 * - the first node started again with its data dir (it holds its place): a restart.
 * Each also at 0 ms added (the local cost alone). Runs interleaved; seconds as median (min–max).
 *
 *   deno run -A scripts/bench/start_path.ts [--reps 5] [--delays 0,25] [--jitter 5] [--servers 3]
 *   [--label before] [--print-path true]
 */
import { slotKey } from "../../src/registry/layout.ts";
import { heartbeatKey } from "../../src/registry/layout.ts";
import { S3Registry } from "../../src/registry/s3.ts";
import { startS3Server } from "../../tests/harness/s3.ts";
import { RunNode } from "./fleet.ts";
import { criticalPath, formatCriticalPath } from "./critical_path.ts";
import {
  benchFlags,
  benchStart,
  cpuSeconds,
  fmtStats,
  randomLoopbackIp,
  stats,
  table,
  waitFor,
  writeSection,
} from "./lib.ts";
import { nowMs, type RequestRecord, startS3Counter } from "./s3_counter.ts";

const NAME = "start_path";
const flags = benchFlags(NAME, {
  reps: 5,
  delays: "0,25",
  jitter: 5,
  servers: 3,
  label: "",
  "print-path": true,
}, "one node's start at S3 latency: time to consul started and the critical path");

const delays = flags.delays.split(",").map(Number);
type Scenario = "claim" | "client" | "restart";
const SCENARIOS: Scenario[] = ["claim", "client", "restart"];
const SCENARIO_LABEL: Record<Scenario, string> = {
  claim: "new node, empty registry: claims a server place",
  client: "new node, every place held by a live server: client",
  restart: "the claiming node started again (holds its place)",
};

interface Sample {
  scenario: Scenario;
  delay: number;
  mode: string;
  /** ms from launch */
  decided: number;
  consul: number;
  depth: number;
  /** CPU seconds the run process had used when its consul started. */
  cpu: number;
  kinds: Record<string, number>;
  path: string;
}

const { root, provenance } = await benchStart(NAME);
const s3 = await startS3Server();
const direct = new S3Registry({ bucket: s3.bucket, prefix: "", endpoint: s3.endpoint });
const samples: Sample[] = [];
const enc = (s: string) => new TextEncoder().encode(s);

/** Every place of `prefix` held by a live server (heartbeats now, bodies: addresses). */
async function fillHeld(prefix: string): Promise<void> {
  const now = new Date();
  await Promise.all(Array.from({ length: flags.servers }, async (_, k) => {
    const node = `held-${k}`;
    const ip = randomLoopbackIp();
    await direct.put(`${prefix}/${heartbeatKey("servers", now, node)}`, enc(ip));
    await direct.put(`${prefix}/${heartbeatKey("agents", now, node)}`, enc(ip));
    await direct.createIfAbsent(`${prefix}/${slotKey(k, 1)}`, enc(node));
  }));
}

/** Launches `node`, waits for "consul started", stops it; one sample. */
async function once(
  node: RunNode,
  scenario: Scenario,
  delay: number,
  proxy: ReturnType<typeof startS3Counter>,
): Promise<Sample> {
  proxy.reset();
  const launch = nowMs();
  node.start();
  try {
    let started: number | undefined;
    await waitFor(() => {
      const l = node.logs(node.proc).find((l) => l.msg === "consul started");
      started = l?.ts;
      return started !== undefined;
    }, { timeoutMs: 60_000, intervalMs: 20, what: "consul started" });
    const cpu = cpuSeconds(node.proc.pid) ?? NaN;
    const logs = node.logs(node.proc);
    const decided = logs.find((l) => l.mode !== undefined);
    // log stamps have ms resolution: the window ends at the end of consul's ms
    const until = started! + 1;
    const records: RequestRecord[] = proxy.records();
    const before = records.filter((r) => r.end <= until);
    const kinds: Record<string, number> = {};
    for (const r of before) kinds[r.kind] = (kinds[r.kind] ?? 0) + 1;
    const cp = criticalPath(records, { from: launch, until });
    return {
      scenario,
      delay,
      mode: String(decided?.mode ?? "?"),
      decided: (decided?.ts ?? NaN) - launch,
      consul: until - launch,
      depth: cp.depth,
      cpu,
      kinds,
      path: formatCriticalPath(records, launch, until),
    };
  } finally {
    await node.stop("SIGTERM", 5_000);
  }
}

try {
  for (let rep = 1; rep <= flags.reps; rep++) {
    for (const delay of delays) {
      const proxy = startS3Counter(s3.endpoint, "127.18.0.1", {
        delayMs: delay,
        jitterMs: delay > 0 ? flags.jitter : 0,
      });
      try {
        const env = { ...s3.env, AWS_ENDPOINT_URL_S3: proxy.endpoint };
        const spec = (prefix: string) => ({
          registry: `s3://${s3.bucket}/${prefix}`,
          servers: flags.servers,
          ticks: 60,
          expiry: 120,
          env,
        });
        const claimPrefix = `sp-${rep}-${delay}-claim`;
        const claimer = new RunNode(
          `claim-${rep}-${delay}`,
          randomLoopbackIp(),
          `${root}/claim-${rep}-${delay}`,
          spec(claimPrefix),
        );
        const clientPrefix = `sp-${rep}-${delay}-client`;
        await fillHeld(clientPrefix);
        const client = new RunNode(
          `client-${rep}-${delay}`,
          randomLoopbackIp(),
          `${root}/client-${rep}-${delay}`,
          spec(clientPrefix),
        );
        for (const scenario of SCENARIOS) {
          const node = scenario === "client" ? client : claimer;
          const s = await once(node, scenario, delay, proxy);
          samples.push(s);
          console.error(
            `rep ${rep}, ${delay} ms, ${scenario}: ${s.mode}, consul started ${
              s.consul.toFixed(0)
            } ms, depth ${s.depth}, ${JSON.stringify(s.kinds)}`,
          );
          if (rep === 1 && flags["print-path"]) console.error(s.path);
        }
      } finally {
        await proxy.stop();
      }
    }
  }
} finally {
  direct.close();
  await s3.stop();
}

const kindsText = (k: Record<string, number>) =>
  ["PUT", "LIST", "GET", "DELETE"].map((x) => k[x] ?? 0).join(" / ");
const rows: string[][] = [];
const paths: string[] = [];
for (const scenario of SCENARIOS) {
  for (const delay of delays) {
    const ss = samples.filter((s) => s.scenario === scenario && s.delay === delay);
    const depths = [...new Set(ss.map((s) => s.depth))].sort().join(", ");
    const kinds = [...new Set(ss.map((s) => kindsText(s.kinds)))].join("; ");
    rows.push([
      SCENARIO_LABEL[scenario],
      [...new Set(ss.map((s) => s.mode))].join(", "),
      `${delay}`,
      fmtStats(stats(ss.map((s) => s.decided / 1000)), 3),
      fmtStats(stats(ss.map((s) => s.consul / 1000)), 3),
      depths,
      fmtStats(stats(ss.map((s) => s.cpu)), 2),
      kinds,
    ]);
    if (delay === Math.max(...delays)) {
      const sorted = [...ss].sort((a, b) => a.consul - b.consul);
      const med = sorted[Math.floor(sorted.length / 2)];
      if (med) paths.push(`${SCENARIO_LABEL[scenario]} (its median run):\n${med.path}`);
    }
  }
}

const title = flags.label
  ? `## Start path at S3 latency (${flags.label})`
  : "## Start path at S3 latency";
const body = `${title}

One \`auto-consul run\` node alone (\`-s ${flags.servers} -t 60 -e 120\`), its S3 requests
through the latency proxy (\`scripts/bench/s3_counter.ts\`: each request waits the added delay
± ${flags.jitter} ms before it reaches moto): seconds from launch to its mode decision and to
"consul started" (its log), and the critical path in that time: the longest chain of requests
each of which began after the previous one ended (\`scripts/bench/critical_path.ts\`). Requests
until consul started: PUT / LIST / GET / DELETE. ${flags.reps} runs per row, interleaved.
Targets at 25 ms: consul started ≤ 0.20 s (client) and ≤ 0.25 s (a node that claims a place);
critical path ≤ 3 requests (client) and ≤ 4 (new server). On 2 cores shared by a busy session
the wall times measure the queue for the CPU, not the node. "CPU s": user + system time of the
run process (all its threads: V8 compiles and collects on helper threads, so it can exceed the
wall time of a start on an idle machine) when its consul started. Under heavy load requests sent
together can leave more than the added delay apart and then count as one after the other: the
critical path here is an upper bound (\`tests/real/start_path_depth_test.ts\` counts it at 300 ms).

${provenance()}

${
  table([
    "node",
    "mode",
    "added delay, ms",
    "mode decided, s",
    "consul started, s",
    "critical path, requests",
    "CPU s of run until consul started",
    "requests until consul started",
  ], rows)
}

\`\`\`
${paths.join("\n\n")}
\`\`\`
`;
await writeSection(flags.label ? `${NAME}_${flags.label}` : NAME, body);
console.log(body);
