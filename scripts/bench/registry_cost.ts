/**
 * Registry cost: S3 requests by kind per node-hour in steady state, for one server and one
 * client `auto-consul run`, counted at the S3 server: each node talks to moto through its
 * own counting proxy (s3_counter.ts), so every request is attributed to the node that sent
 * it. Counts are per heartbeat (beats = the node's PUTs under agents/), then scaled to the
 * product's default tick (-t 60), and priced at S3 Standard rates; beside them, the gem's
 * algorithm written out from its source (ethanrowe/auto-consul, providers/s3.rb).
 *
 *   deno run -A scripts/bench/registry_cost.ts [--ticks 2] [--window-s 60] ...
 */
import { randomS3Ip, startS3Server } from "../../tests/harness/s3.ts";
import { runNodes, startFleet, stopFleet } from "./fleet.ts";
import { waitFormed } from "./formed.ts";
import { benchFlags, benchStart, sleep, table, writeSection } from "./lib.ts";
import { type Counts, KINDS, startS3Counter } from "./s3_counter.ts";

const NAME = "registry_cost";
const flags = benchFlags(NAME, {
  ticks: 2,
  expiry: 10,
  "window-s": 60,
  "warmup-ticks": 3,
  "price-ticks": 60,
  "price-expiry": 120,
  fleet: 1000,
}, "steady-state S3 requests of one server and one client, counted by a proxy in front of moto");

/** S3 Standard request prices, dollars per 1,000 requests (DELETE is free). */
const PRICE = { PUT: 0.005, LIST: 0.005, GET: 0.0004, DELETE: 0 };
const HOURS_PER_MONTH = 720;

interface PerBeat {
  PUT: number;
  LIST: number;
  GET: number;
  DELETE: number;
}

/** Requests per beat, from a window's counts: beats = PUTs under agents/ (one per beat). */
function perBeat(c: Counts): { beats: number; per: PerBeat } {
  const beats = c.byFolder["PUT agents"] ?? 0;
  const d = Math.max(1, beats);
  return {
    beats,
    per: {
      PUT: c.total.PUT / d,
      LIST: c.total.LIST / d,
      GET: c.total.GET / d,
      DELETE: c.total.DELETE / d,
    },
  };
}

/** Dollars per 1,000 nodes per month at one beat every `tickS` seconds. */
function dollars(per: PerBeat, tickS: number): number {
  const beatsPerMonth = (3600 / tickS) * HOURS_PER_MONTH;
  const perNode = (per.PUT * PRICE.PUT + per.LIST * PRICE.LIST + per.GET * PRICE.GET) / 1000;
  return perNode * beatsPerMonth * 1000;
}

/**
 * The gem, from its source: each heartbeat PUTs its key and then purges the directory: a
 * LIST of the whole directory (one request per 1,000 keys) and one multi-object DELETE of the
 * expired keys. Old keys stay until they expire, so a directory holds about expiry/tick + 1
 * keys per node. Servers heartbeat servers/ and agents/. (Reads at start, not counted here:
 * a LIST of the directory and one GET.)
 */
function gemPerBeat(server: boolean, fleet: number, servers: number): PerBeat {
  const keysPerNode = flags["price-expiry"] / flags["price-ticks"] + 1;
  const pages = (nodes: number) => Math.max(1, Math.ceil((nodes * keysPerNode) / 1000));
  const agents = { PUT: 1, LIST: pages(fleet), GET: 0, DELETE: 1 };
  if (!server) return agents;
  return {
    PUT: 2,
    LIST: agents.LIST + pages(servers),
    GET: 0,
    DELETE: 2,
  };
}

const { root, provenance } = await benchStart(NAME);
const s3 = await startS3Server();
const proxies = [
  startS3Counter(s3.endpoint, randomS3Ip()),
  startS3Counter(s3.endpoint, randomS3Ip()),
];
const spec = (proxy: string) => ({
  registry: `s3://${s3.bucket}/cost`,
  servers: 1,
  ticks: flags.ticks,
  expiry: flags.expiry,
  env: { ...s3.env, AWS_ENDPOINT_URL_S3: proxy },
});
// -s 1: the first node takes the one server place; the second, started once it is up, is a client
const server = runNodes(1, root, spec(proxies[0].endpoint), "server")[0];
const client = runNodes(1, root, spec(proxies[1].endpoint), "client")[0];
let measured: { server: Counts; client: Counts };
try {
  startFleet([server]);
  const t0 = performance.now();
  if (await waitFormed([server], { members: 1, servers: 1 }, t0, 60_000) === undefined) {
    throw new Error("the server did not come up within 60 s");
  }
  startFleet([client]);
  const t1 = performance.now();
  if (await waitFormed([server, client], { members: 2, servers: 1 }, t1, 60_000) === undefined) {
    throw new Error("the client did not join within 60 s");
  }
  await sleep(flags["warmup-ticks"] * flags.ticks * 1000);
  for (const p of proxies) p.reset();
  console.error(`counting for ${flags["window-s"]} s at -t ${flags.ticks}`);
  await sleep(flags["window-s"] * 1000);
  measured = { server: proxies[0].snapshot(), client: proxies[1].snapshot() };
} finally {
  await stopFleet([server, client]);
  for (const p of proxies) await p.stop();
  await s3.stop();
}

const priceTick = flags["price-ticks"];
const fleet = flags.fleet.toLocaleString("en-US");
const perHour = (x: number) => (x * 3600 / priceTick).toFixed(0);
const rows: string[][] = [];
const fmt = (x: number) => Number.isInteger(x) ? String(x) : x.toFixed(2);
for (const [who, c] of [["server", measured.server], ["client", measured.client]] as const) {
  const { beats, per } = perBeat(c);
  const folders = Object.entries(c.byFolder).sort().map(([k, v]) => `${k} ${v}`).join(", ");
  rows.push([
    `auto-consul ${who} (measured)`,
    String(beats),
    `${fmt(per.PUT)} / ${fmt(per.LIST)} / ${fmt(per.GET)} / ${fmt(per.DELETE)}`,
    `${perHour(per.PUT)} / ${perHour(per.LIST)} / ${perHour(per.GET)} / ${perHour(per.DELETE)}`,
    `$${dollars(per, priceTick).toFixed(0)}`,
    folders,
  ]);
}
for (const server of [true, false]) {
  const per = gemPerBeat(server, flags.fleet, 5);
  rows.push([
    `gem ${server ? "server" : "client"} (from its design, ${fleet}-node fleet)`,
    "—",
    `${fmt(per.PUT)} / ${fmt(per.LIST)} / ${fmt(per.GET)} / ${fmt(per.DELETE)}`,
    `${perHour(per.PUT)} / ${perHour(per.LIST)} / ${perHour(per.GET)} / ${perHour(per.DELETE)}`,
    `$${dollars(per, priceTick).toFixed(0)}`,
    server
      ? "PUT servers, PUT agents; LIST of each whole folder; a multi-object DELETE of the expired"
      : "PUT agents; LIST of the whole agents/ folder; a multi-object DELETE of the expired",
  ]);
}
const perClientBeat = perBeat(measured.client).per;
const targetMet = perClientBeat.PUT <= 1 && perClientBeat.LIST === 0;
const otherKinds = KINDS.filter((k) => !["PUT", "LIST", "GET", "DELETE"].includes(k))
  .map((k) => `${k} ${measured.server.total[k] + measured.client.total[k]}`).join(", ");

const body = `## Registry cost

Steady-state S3 requests of one server and one client \`auto-consul run\` (\`-s 1\`), each
talking to moto through its own counting proxy: what the store received, by kind (LIST = GET
with \`list-type=2\`). Measured over a ${flags["window-s"]} s window with a short tick
(\`-t ${flags.ticks} -e ${flags.expiry}\`, after ${flags["warmup-ticks"]} ticks of warm-up) and
normalised per heartbeat (beats = the node's PUTs under \`agents/\`); the loop does the same
work per beat whatever the tick, so the per-hour and price columns scale the per-beat counts to
the default \`-t ${priceTick}\` (${3600 / priceTick} beats per node-hour). Prices: S3 Standard,
$0.005 per 1,000 PUT or LIST, $0.0004 per 1,000 GET, DELETE free; a month is ${HOURS_PER_MONTH}
hours.

- auto-consul: a client PUTs its new key and DELETEs its previous one (remembered, never
  listed); a server does the same in \`servers/\` and \`agents/\`, and every 10 beats purges
  expired heartbeats with a LIST of each folder. Those LISTs cover the whole folder, one request
  per 1,000 keys: in a ${fleet}-node fleet (one key per node) about
  ${Math.ceil(flags.fleet / 1000)} request(s) each, so a server's LISTs grow with the fleet, by a
  tenth of that per beat.
- The gem, written out from its source (ethanrowe/auto-consul \`providers/s3.rb\`:
  \`heartbeat!\` = PUT, then \`purge!\` = a LIST of the whole folder and a multi-object DELETE
  of the expired keys; servers heartbeat both folders) for a ${fleet}-node fleet with
  \`-e ${flags["price-expiry"]}\` and a ${priceTick} s cron heartbeat: old keys stay until they
  expire, so its \`agents/\` folder holds about ${flags["price-expiry"] / priceTick + 1} keys
  per node and one LIST of it is ${gemPerBeat(false, flags.fleet, 5).LIST} requests. Its reads
  (a LIST and a GET at start) are not part of the steady state.

${provenance()}

${
  table([
    "node",
    "beats counted",
    "per beat: PUT / LIST / GET / DELETE",
    `per node-hour at -t ${priceTick}: PUT / LIST / GET / DELETE`,
    "$ per 1,000 nodes per month",
    "requests in the window, by kind and folder",
  ], rows)
}

Target "a client heartbeat costs at most 1 PUT and no LIST": **${
  targetMet ? "met" : "missed"
}** (measured ${fmt(perClientBeat.PUT)} PUT and ${fmt(perClientBeat.LIST)} LIST per client beat).
Other requests seen: ${otherKinds}.
`;
await writeSection(NAME, body);
console.log(body);
