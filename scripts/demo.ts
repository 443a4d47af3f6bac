/**
 * The local demo: a 5-node cluster (3 servers, 2 clients), each node an `auto-consul run` on
 * its own loopback address, sharing a folder registry. Prints the status table as the
 * cluster forms, and cleans up on Ctrl-C or after --duration seconds.
 *
 *   deno run -A scripts/demo.ts [--duration S] [--until-formed] [--consul-bin PATH]
 *
 * --until-formed stops the demo as soon as the cluster formed (with --duration as its bound):
 * the test waits on that state instead of a fixed time. Exits 0 when the cluster formed (3 servers, 2 clients, one leader, all alive), 1 if not.
 */
import { parseArgs } from "node:util";
import type { StatusRow } from "../src/cluster/status_view.ts";
import { runCli } from "../tests/harness/cli.ts";
import { consulBin } from "../tests/harness/consul.ts";
import { Node } from "../tests/harness/nodes.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    duration: { type: "string", default: "0" },
    "until-formed": { type: "boolean", default: false },
    "consul-bin": { type: "string" },
    help: { type: "boolean", short: "h" },
  },
});
if (values.help) {
  console.log(
    "Usage: deno run -A scripts/demo.ts [--duration S] [--until-formed] [--consul-bin PATH]",
  );
  Deno.exit(0);
}
const duration = Number(values.duration);
if (!Number.isFinite(duration) || duration < 0) {
  console.error(
    `demo: invalid --duration "${values.duration}": expected seconds (0: until Ctrl-C)`,
  );
  Deno.exit(2);
}
const work = await Deno.makeTempDir({ prefix: "auto-consul-demo-" });
const registry = `file://${work}/registry`;
const net = 100 + Math.floor(Math.random() * 100);
const stop = new AbortController();
for (const s of ["SIGINT", "SIGTERM"] as const) Deno.addSignalListener(s, () => stop.abort());

// One gossip key for the demo's cluster, as in production (see README, Security).
const gossipKey = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(32))));
console.log(`demo: 5 nodes on 127.${net}.0.1-5, registry ${registry}`);
const nodes = Array.from({ length: 5 }, (_, i) => {
  const name = `demo-${i + 1}`;
  return new Node({
    name,
    ip: `127.${net}.0.${i + 1}`,
    dataDir: `${work}/${name}`,
    spec: {
      registry,
      servers: 3,
      ticks: 5,
      expiry: 30,
      consulBin: values["consul-bin"] ?? consulBin(),
      logLevel: "warn",
      logFormat: "text",
      // Node logs go to files, so the table stays readable.
      logFile: `${work}/${name}.log`,
      flags: ["--require-encryption"],
      env: { AUTO_CONSUL_GOSSIP_KEY: gossipKey },
    },
  });
});
for (const n of nodes) n.start();

interface View {
  formed: boolean;
  table: string;
}

async function view(): Promise<View> {
  const out = await runCli([
    ...["-r", registry, "-e", "30", "--http-addr", `${nodes[0].ip}:8500`],
    ...["status", "--json"],
  ]);
  let rows: StatusRow[];
  try {
    rows = JSON.parse(out.stdout).members;
  } catch {
    return { formed: false, table: "(no status yet)" };
  }
  const servers = rows.filter((r) =>
    r.role === "server" && r.registry === "live" && r.serf === "alive" && r.voter
  );
  const clients = rows.filter((r) =>
    r.role === "client" && r.registry === "live" && r.serf === "alive"
  );
  const leaders = rows.filter((r) => r.leader);
  const table = rows.map((r) =>
    `  ${r.node.padEnd(8)} ${r.role.padEnd(7)} ${(r.address ?? "-").padEnd(14)} ${
      r.registry.padEnd(8)
    } ` +
    `serf=${(r.serf ?? "-").padEnd(6)} voter=${r.voter ? "yes" : "no "} ${r.leader ? "LEADER" : ""}`
  ).join("\n");
  return { formed: servers.length === 3 && clients.length === 2 && leaders.length === 1, table };
}

const started = Date.now();
let formed = false;
let formedAfter = 0;
try {
  while (!stop.signal.aborted) {
    const v = await view();
    const t = ((Date.now() - started) / 1000).toFixed(1);
    console.log(
      `\n[${t}s] ${v.formed ? "cluster formed: 3 servers, 2 clients, one leader" : "forming..."}`,
    );
    console.log(v.table);
    if (v.formed && !formed) {
      formed = true;
      formedAfter = Number(t);
    }
    if (formed && values["until-formed"]) break;
    if (duration > 0 && Date.now() - started >= duration * 1000) break;
    await new Promise((r) => setTimeout(r, 2000));
  }
} finally {
  console.log("\ndemo: stopping the 5 nodes");
  await Promise.allSettled(nodes.map((n) => n.stop("SIGTERM", 20_000)));
  await Deno.remove(work, { recursive: true }).catch(() => {});
}
console.log(
  formed ? `demo: the cluster formed in ${formedAfter}s` : "demo: the cluster did not form",
);
Deno.exit(formed ? 0 : 1);
