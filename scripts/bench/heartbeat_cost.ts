/**
 * Heartbeat cost (issue 11): S3 requests per one-shot `auto-consul heartbeat` (cron use, no
 * `run`), counted by a proxy in front of moto (s3_counter.ts), for a client and a server agent,
 * in a registry pre-filled with a fleet's live client heartbeats and some long-expired ones;
 * beside the gem's figure from its source (`providers/s3.rb`: PUT, then a LIST of the whole
 * folder and a multi-object DELETE of the expired, on every call).
 *
 *   deno run -A scripts/bench/heartbeat_cost.ts [--calls 30] [--fleet 1000] [--dead 50]
 */
import { startAgent } from "../../tests/harness/consul.ts";
import { randomS3Ip, startS3Server } from "../../tests/harness/s3.ts";
import { heartbeatKey } from "../../src/registry/layout.ts";
import { openRegistry } from "../../src/registry/open.ts";
import { mapLimit } from "../../src/util/pool.ts";
import { cleanEnv } from "./fleet.ts";
import { benchFlags, benchStart, MAIN, table, writeSection } from "./lib.ts";
import { type Counts, startS3Counter } from "./s3_counter.ts";

const NAME = "heartbeat_cost";
const flags = benchFlags(NAME, {
  calls: 30,
  fleet: 1000,
  dead: 50,
  expiry: 120,
  "cron-s": 60,
}, "S3 requests per one-shot heartbeat (cron use), counted by a proxy in front of moto");

const enc = (s: string) => new TextEncoder().encode(s);
const { root, provenance } = await benchStart(NAME);
const s3 = await startS3Server();
const proxy = startS3Counter(s3.endpoint, randomS3Ip());
const url = `s3://${s3.bucket}/cron`;

interface Row {
  who: string;
  calls: number;
  per: Record<"PUT" | "LIST" | "GET" | "DELETE", number>;
  folders: string;
}

/** Runs `calls` one-shot heartbeats of one node against `httpAddr`; counts per call. */
async function measure(
  who: string,
  node: string,
  httpAddr: string,
  opts: { memo: boolean },
): Promise<Row> {
  // No memo: a data dir that cannot be created (a path under a regular file).
  const dataDir = opts.memo ? `${root}/${node}` : `${root}/not-a-dir/${node}`;
  if (!opts.memo) await Deno.writeTextFile(`${root}/not-a-dir`, "");
  const env = cleanEnv({ ...s3.env, AWS_ENDPOINT_URL_S3: proxy.endpoint });
  const run = async () => {
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        ...["run", "-A", "--quiet", MAIN, "-r", url, "--http-addr", httpAddr],
        ...["-n", node, "-d", dataDir, "-e", String(flags.expiry), "heartbeat"],
      ],
      env,
      clearEnv: true,
      stdout: "null",
      stderr: "piped",
    }).output();
    if (!out.success) throw new Error(`${who}: ${new TextDecoder().decode(out.stderr)}`);
  };
  await run(); // the first call lists for older keys (no memo yet): not steady state
  await plantDead(); // keep long-expired keys around for the purges to find
  proxy.reset();
  for (let i = 0; i < flags.calls; i++) await run();
  const c: Counts = proxy.snapshot();
  const n = flags.calls;
  return {
    who,
    calls: n,
    per: {
      PUT: c.total.PUT / n,
      LIST: c.total.LIST / n,
      GET: c.total.GET / n,
      DELETE: c.total.DELETE / n,
    },
    folders: Object.entries(c.byFolder).sort().map(([k, v]) => `${k} ${v}`).join(", "),
  };
}

const registry = await openRegistry(url, { endpoint: s3.endpoint });
/** Long-expired heartbeats of stopped nodes (a stamp a day old: dead by the key's stamp). */
async function plantDead(): Promise<void> {
  const dayAgo = new Date(Date.now() - 86_400_000);
  await mapLimit(Array.from({ length: flags.dead }, (_, i) => i), 16, async (i) => {
    await registry.put(heartbeatKey("agents", dayAgo, `stopped-${i}`), enc("10.9.0.1"));
  });
}

const rows: Row[] = [];
try {
  console.error(`pre-filling ${flags.fleet} live client heartbeats`);
  const now = new Date();
  await mapLimit(Array.from({ length: flags.fleet }, (_, i) => i), 16, async (i) => {
    await registry.put(
      heartbeatKey("agents", now, `client-${i}`),
      enc(`10.8.${i >> 8}.${i & 255}`),
    );
  });
  const client = await startAgent({ server: false });
  const server = await startAgent({ server: true });
  try {
    rows.push(await measure("auto-consul client", "cron-client", client.httpAddr, { memo: true }));
    rows.push(await measure("auto-consul server", "cron-server", server.httpAddr, { memo: true }));
    rows.push(
      await measure(
        "auto-consul client, no memo (data dir not writable)",
        "cron-nomemo",
        client.httpAddr,
        {
          memo: false,
        },
      ),
    );
  } finally {
    await client.dispose();
    await server.dispose();
  }
} finally {
  registry.close();
  await proxy.stop();
  await s3.stop();
}

// The gem, from its source, in the same fleet: each call PUTs and purges its folder (a LIST
// of the whole folder, 1 request per 1,000 keys, and one multi-object DELETE of the expired);
// its folder holds about expiry/cron + 1 keys per node.
const keysPerNode = flags.expiry / flags["cron-s"] + 1;
const pages = (n: number) => Math.max(1, Math.ceil((n * keysPerNode) / 1000));
const gem = [
  {
    who: "gem client (from its source)",
    per: { PUT: 1, LIST: pages(flags.fleet), GET: 0, DELETE: 1 },
  },
  {
    who: "gem server (from its source)",
    per: { PUT: 2, LIST: pages(flags.fleet) + 1, GET: 0, DELETE: 2 },
  },
];
const fmt = (x: number) => Number.isInteger(x) ? String(x) : x.toFixed(2);
const line = (p: Row["per"]) => `${fmt(p.PUT)} / ${fmt(p.LIST)} / ${fmt(p.GET)} / ${fmt(p.DELETE)}`;
const fleet = flags.fleet.toLocaleString("en-US");

const body = `## Heartbeat cost (cron, no \`run\`)

S3 requests per one-shot \`auto-consul heartbeat\` (a cron job, no \`run\`), counted by a proxy in
front of moto (LIST = GET with \`list-type=2\`), in a registry holding ${fleet} live client
heartbeats and ${flags.dead} long-expired ones of stopped nodes (re-planted before each series);
${flags.calls} calls per row after one warm-up call, \`-e ${flags.expiry}\`. A call PUTs its key(s)
and DELETEs its previous one(s), remembered in \`<data-dir>/heartbeat.json\` (no LIST); every 10th
call of a node (counted in that file, offset by the node name) also purges long-expired heartbeats
(dead for 10 expiry windows, at most 100 per call) with a LIST of \`servers/\` and \`agents/\`
(one request per 1,000 keys). Without a writable data dir it lists for its previous key on every
call and purges on a random tenth of the calls. DELETE is free on S3; PUT and LIST cost $0.005 per
1,000.

The gem, from its source (ethanrowe/auto-consul \`providers/s3.rb\`): every call PUTs, then
\`purge!\` LISTs the whole folder and sends one multi-object DELETE of the expired keys; with a
${flags["cron-s"]} s cron and \`-e ${flags.expiry}\` its folder holds about ${keysPerNode} keys per
node, so in this ${fleet}-node fleet one LIST is ${pages(flags.fleet)} request(s).

Of a row's DELETEs, one per call (two for a server) is the node's previous key (free on S3); the
rest are the re-planted long-expired keys, removed by the series' first purge. So a client's steady
cost is 1 PUT and ${
  fmt(rows[0]?.per.LIST ?? 0)
} LIST per call in this fleet (the LISTs of a purge, every 10th call), against
the gem's 1 PUT and 3 LIST on every call.

${provenance()}

${
  table(
    [
      "heartbeat",
      "calls counted",
      "per call: PUT / LIST / GET / DELETE",
      "requests, by kind and folder",
    ],
    [
      ...rows.map((r) => [r.who, String(r.calls), line(r.per), r.folders]),
      ...gem.map((
        g,
      ) => [
        g.who,
        "—",
        line(g.per),
        "PUT; LIST of the whole folder; DELETE of the expired, every call",
      ]),
    ],
  )
}
`;
await writeSection(NAME, body);
console.log(body);
