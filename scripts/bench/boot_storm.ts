/**
 * Boot storm (issue 17): N nodes deciding their mode at once against one prefix, through the
 * latency proxy (25 ms ± 5 ms per request) in front of moto — the mode decision and the first
 * heartbeat only, no consul: many registry clients across a few processes
 * (`storm_worker.ts`). With `-s 5`: how many places were taken (exactly 5, every time),
 * requests per node, time until all decided, retries; then the same with a share of requests
 * answered `503 SlowDown`. The request rates are compared with S3's per-prefix limits.
 *
 *   deno run -A scripts/bench/boot_storm.ts [--nodes 10,100,1000] [--slowdown 0,0.05]
 *   [--reps 3] [--procs 4] [--servers 5] [--delay 25] [--jitter 5]
 */
import { readClaims } from "../../src/cluster/decision_view.ts";
import { Logger } from "../../src/log.ts";
import { parseSlotKey } from "../../src/registry/layout.ts";
import { S3Registry } from "../../src/registry/s3.ts";
import { S3_TEST_ENV, startS3Server } from "../../tests/harness/s3.ts";
import { benchFlags, benchStart, fmtStats, onExit, stats, table, writeSection } from "./lib.ts";
import { KINDS, nowMs, type RequestRecord, startS3Counter } from "./s3_counter.ts";
import type { WorkerResult, WorkerSpec } from "./storm_worker.ts";

const NAME = "boot_storm";
const flags = benchFlags(NAME, {
  nodes: "10,100,1000",
  slowdown: "0,0.05",
  reps: 3,
  procs: 4,
  servers: 5,
  delay: 25,
  jitter: 5,
  expiry: 120,
  store: "moto",
}, "N nodes deciding their mode at once through the latency proxy");

const WORKER = new URL("./storm_worker.ts", import.meta.url).pathname;
/** S3's documented request rates per partitioned prefix, per second. */
const S3_WRITE_LIMIT = 3500; // PUT/COPY/POST/DELETE
const S3_READ_LIMIT = 5500; // GET/HEAD (a LIST is a GET on the bucket)
const isWrite = (r: RequestRecord) => r.method === "PUT" || r.method === "DELETE";

interface Run {
  nodes: number;
  slowdown: number;
  rep: number;
  results: WorkerResult[];
  records: RequestRecord[];
  go: number;
  /** Distinct places with a claim, and claims, found in slots/ afterwards. */
  places: number;
  claims: number;
  /** Distinct nodes named by the places' current claims. */
  holders: number;
  /** Nodes that decided "server" and hold a current claim. */
  holdingServers: number;
}

async function readLine(
  reader: ReadableStreamDefaultReader<string>,
  buf: { text: string },
): Promise<string | undefined> {
  for (;;) {
    const nl = buf.text.indexOf("\n");
    if (nl >= 0) {
      const line = buf.text.slice(0, nl);
      buf.text = buf.text.slice(nl + 1);
      return line;
    }
    const { value, done } = await reader.read();
    if (done) return undefined;
    buf.text += value;
  }
}

async function storm(
  s3: S3,
  root: string,
  nodes: number,
  slowdown: number,
  rep: number,
): Promise<Run> {
  const proxy = startS3Counter(flags.store === "memory" ? "memory" : s3.endpoint, "127.18.0.2", {
    delayMs: flags.delay,
    jitterMs: flags.jitter,
    slowDown: slowdown,
    // a connection per request: a thousand clients' kept sockets exceed the descriptor limit
    keepAlive: false,
  });
  const prefix = `storm-${nodes}-${slowdown}-${rep}`;
  const procs = Math.min(flags.procs, nodes);
  const per = Math.ceil(nodes / procs);
  const workers = [];
  try {
    for (let p = 0; p < procs; p++) {
      const first = p * per;
      const count = Math.min(per, nodes - first);
      if (count <= 0) break;
      const spec: WorkerSpec = {
        endpoint: proxy.endpoint,
        bucket: s3.bucket,
        prefix,
        first,
        count,
        servers: flags.servers,
        expiry: flags.expiry,
        dataRoot: `${root}/${prefix}`,
      };
      const child = new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", "--quiet", WORKER, JSON.stringify(spec)],
        env: { ...s3.env, NO_COLOR: "1" },
        stdin: "piped",
        stdout: "piped",
        stderr: "inherit",
      }).spawn();
      const forget = onExit(() => {
        try {
          child.kill("SIGKILL");
        } catch { /* gone */ }
      });
      const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
      workers.push({ child, reader, buf: { text: "" }, forget });
    }
    for (const w of workers) {
      const line = await readLine(w.reader, w.buf);
      if (line !== "ready") throw new Error(`storm worker did not start: ${line}`);
    }
    proxy.reset();
    const go = nowMs();
    await Promise.all(workers.map(async (w) => {
      const writer = w.child.stdin.getWriter();
      await writer.write(new TextEncoder().encode("go\n"));
      await writer.close();
    }));
    const results: WorkerResult[] = [];
    await Promise.all(workers.map(async (w) => {
      for (let line; (line = await readLine(w.reader, w.buf)) !== undefined;) {
        if (line.startsWith("{")) results.push(JSON.parse(line));
      }
      await w.child.status;
      w.forget();
    }));
    const records = proxy.records();
    const direct = new S3Registry({
      bucket: s3.bucket,
      prefix,
      endpoint: flags.store === "memory" ? proxy.endpoint : s3.endpoint,
    });
    const listing = await direct.list("slots/");
    const quiet = new Logger({ level: "error", sink: () => {} });
    const current = await readClaims(direct, flags.servers, quiet);
    direct.close();
    const holders = new Set(current.map((c) => c.node).filter((n) => n !== undefined));
    const errorSample = results.find((x) => x.error)?.error;
    if (errorSample) console.error(`a failed node's error: ${errorSample}`);
    const claims = listing.objects.map((o) => parseSlotKey(o.key)).filter((p) => p !== undefined);
    return {
      nodes,
      slowdown,
      rep,
      results,
      records,
      go,
      places: new Set(claims.map((c) => c!.place)).size,
      claims: claims.length,
      holders: holders.size,
      holdingServers: results.filter((x) => x.mode === "server" && holders.has(x.node)).length,
    };
  } finally {
    for (const w of workers) {
      try {
        w.child.kill("SIGKILL");
      } catch { /* exited */ }
    }
    await proxy.stop();
  }
}

/** Highest number of requests matching `pick` that started within any 1 s window. */
function peakPerSecond(records: RequestRecord[], pick: (r: RequestRecord) => boolean): number {
  const t = records.filter(pick).map((r) => r.start).sort((a, b) => a - b);
  let best = 0;
  for (let i = 0, j = 0; i < t.length; i++) {
    while (t[i] - t[j] >= 1000) j++;
    best = Math.max(best, i - j + 1);
  }
  return best;
}

/** Requests started per 100 ms after `go`, as a one-line bar chart with the scale. */
function curve(records: RequestRecord[], go: number): string {
  const starts = records.map((r) => Math.floor((r.start - go) / 100)).filter((b) => b >= 0);
  const buckets = Array.from({ length: Math.max(0, ...starts) + 1 }, () => 0);
  for (const b of starts) buckets[b]++;
  const max = Math.max(1, ...buckets);
  const bars = " ▁▂▃▄▅▆▇█";
  return buckets.map((n) => bars[Math.ceil((n / max) * 8)]).join("") +
    ` (${buckets.length / 10} s, per 100 ms, max ${max})`;
}

/** Median time a request spent at the proxy (added delay + the store's answer), ms. */
function medianMs(records: RequestRecord[]): number {
  return stats(records.filter((r) => !r.injected).map((r) => r.end - r.start)).median;
}

const { root, provenance } = await benchStart(NAME);
if (flags.store === "memory") {
  for (const [k, v] of Object.entries(S3_TEST_ENV)) Deno.env.set(k, v);
}
type S3 = Pick<Awaited<ReturnType<typeof startS3Server>>, "endpoint" | "bucket" | "env" | "stop">;
const s3: S3 = flags.store === "memory"
  ? { endpoint: "memory", bucket: "storm", env: S3_TEST_ENV, stop: () => Promise.resolve() }
  : await startS3Server();
const runs: Run[] = [];
const sizes = flags.nodes.split(",").map(Number);
const faults = flags.slowdown.split(",").map(Number);
try {
  for (let rep = 1; rep <= flags.reps; rep++) {
    for (const slowdown of faults) {
      for (const nodes of sizes) {
        const r = await storm(s3, root, nodes, slowdown, rep);
        runs.push(r);
        const servers = r.results.filter((x) => x.mode === "server").length;
        const errors = r.results.filter((x) => x.error).length;
        console.error(
          `${nodes} nodes, ${slowdown * 100}% 503, rep ${rep}: ${servers} servers, ${r.places} ` +
            `places / ${r.claims} claims, ${r.records.length} requests ` +
            `(${(r.records.length / nodes).toFixed(1)}/node), ${errors} errors, all decided ${
              ((Math.max(...r.results.map((x) => x.decided ?? NaN)) - r.go) / 1000).toFixed(2)
            } s`,
        );
      }
    }
  }
} finally {
  await s3.stop();
}

const rows: string[][] = [];
const limits: string[] = [];
const curves: string[] = [];
for (const slowdown of faults) {
  for (const nodes of sizes) {
    const rs = runs.filter((r) => r.nodes === nodes && r.slowdown === slowdown);
    const servers = rs.map((r) => r.results.filter((x) => x.mode === "server").length);
    const all = rs.flatMap((r) => r.records);
    const perNode = rs.map((r) => r.records.length / nodes);
    const kinds = KINDS.filter((k) => k !== "HEAD" && k !== "other").map((k) =>
      (all.filter((x) => x.kind === k).length / (nodes * rs.length)).toFixed(1)
    ).join(" / ");
    const maxCalls = Math.max(...rs.flatMap((r) => r.results.map((x) => x.calls)));
    const injected = all.filter((x) => x.injected).length;
    const retries = rs.reduce((s, r) => s + r.results.reduce((t, x) => t + x.retries, 0), 0);
    const errors = rs.reduce((s, r) => s + r.results.filter((x) => x.error).length, 0);
    const last = (xs: (number | undefined)[], go: number) =>
      (Math.max(...xs.filter((x) => x !== undefined)) - go) / 1000;
    const decided = rs.map((r) => last(r.results.map((x) => x.decided), r.go));
    const beat = rs.map((r) => last(r.results.map((x) => x.beat), r.go));
    const peakW = Math.max(...rs.map((r) => peakPerSecond(r.records, isWrite)));
    const peakR = Math.max(...rs.map((r) => peakPerSecond(r.records, (x) => !isWrite(x))));
    rows.push([
      String(nodes),
      `${slowdown * 100} %`,
      `${rs.length}`,
      [...new Set(servers)].join(", "),
      rs.map((r) => `${r.places}/${r.claims}/${r.holders}/${r.holdingServers}`).join(", ") +
      (rs.every((r) =>
          r.places === flags.servers && r.holders === flags.servers &&
          r.holdingServers === flags.servers
        )
        ? " (exactly)"
        : " **not exactly**"),
      fmtStats(stats(perNode), 1),
      kinds,
      String(maxCalls),
      `${injected} / ${retries} / ${errors}`,
      fmtStats(stats(decided), 2),
      fmtStats(stats(beat), 2),
      `${peakW} / ${peakR}`,
      medianMs(all).toFixed(0),
    ]);
    if (nodes === Math.max(...sizes)) {
      const wPerNode = all.filter(isWrite).length / (nodes * rs.length);
      const rPerNode = all.filter((x) => !isWrite(x)).length / (nodes * rs.length);
      limits.push(
        `- ${slowdown * 100} % 503: ${wPerNode.toFixed(1)} writes (PUT/DELETE) and ${
          rPerNode.toFixed(1)
        } reads (GET/LIST) per node; peak ${peakW} writes/s and ${peakR} reads/s at ${nodes} ` +
          `nodes. Nodes that start within the same second reach S3's ${S3_WRITE_LIMIT} writes/s ` +
          `at about ${Math.floor(S3_WRITE_LIMIT / wPerNode).toLocaleString("en")} nodes and its ` +
          `${S3_READ_LIMIT} reads/s at about ${
            Math.floor(S3_READ_LIMIT / rPerNode).toLocaleString("en")
          }; at the rate measured here (the storm spread over its own decision time) at about ${
            Math.floor(S3_WRITE_LIMIT / peakW * nodes).toLocaleString("en")
          } and ${Math.floor(S3_READ_LIMIT / Math.max(1, peakR) * nodes).toLocaleString("en")}.`,
      );
      curves.push(
        `${nodes} nodes, ${slowdown * 100} % 503 (rep 1): ${curve(rs[0].records, rs[0].go)}`,
      );
    }
  }
}

const body = `## Boot storm

N nodes decide their mode at once against one fresh prefix (\`-s ${flags.servers} -e ${flags.expiry}\`),
every request through the latency proxy (${flags.delay} ms ± ${flags.jitter} ms added to each,
\`scripts/bench/s3_counter.ts\`) in front of ${
  flags.store === "memory"
    ? "an in-memory S3 (\`scripts/bench/memory_s3.ts\`: moto, one python process on the same 2 cores, " +
      "answers a few dozen requests a second, and a storm against it measures moto)"
    : "moto"
}: the mode decision and the first heartbeat only,
as \`run\` makes them (\`decideMode\`, then \`writeHeartbeat\`; a failed call retried with run's
backoff, 1 s doubling), no consul; ${flags.procs} processes (\`scripts/bench/storm_worker.ts\`),
each with one S3 client per node (its own connections, closed after each answer by the proxy:
a thousand clients' kept sockets would exceed the 20,000 open files allowed here; the SDK's
standard retry, 3 attempts).
With a share of requests answered \`503 SlowDown\` by the proxy (never reaching moto), the SDK
backs off and retries. "Places/claims": distinct places and claim objects in \`slots/\` after
the storm, the distinct nodes the places' current claims name, and how many of the nodes that
decided "server" hold one (${flags.servers}/${flags.servers}/${flags.servers}/${flags.servers} is right; a
node that decided "server" but whose place was taken again later had no heartbeat within \`-e\`,
which only happens when the storm outlasts the expiry). Times of the nodes that decided
(failed nodes are counted in "failed": a node out of tries, 8 whole decisions, each call with
the SDK's 3 attempts). Requests per node: HTTP requests the
proxy saw (retries included) over the nodes, median (min–max) of the runs; by kind: PUT / LIST /
GET / DELETE per node; "max calls": the most registry calls one node made. Times from the start
signal until every node had decided, and had written its first heartbeat (s). Peak: the most
requests that started within any one second (writes = PUT/DELETE, reads = GET/LIST). Median
request: the time a request spent at the proxy (the added delay plus moto's answer): where it
is far above the added delay, moto (one python process on the same 2 cores) is the queue, and
the storm's duration measures moto, not the nodes.

${provenance()}

${
  table([
    "nodes",
    "503 SlowDown",
    "runs",
    "decided server",
    "places/claims/holders/holding servers",
    "requests per node",
    "per node by kind",
    "max calls",
    "503s / whole retries / failed",
    "all decided, s",
    "all first heartbeats, s",
    "peak writes/s / reads/s",
    "median request, ms",
  ], rows)
}

Requests started per 100 ms from the start signal:

\`\`\`
${curves.join("\n")}
\`\`\`

Against S3's documented per-prefix rates (${S3_WRITE_LIMIT} PUT/COPY/POST/DELETE and ${S3_READ_LIMIT}
GET/HEAD per second per partitioned prefix):

${limits.join("\n")}
`;
await writeSection(NAME, body);
console.log(body);
