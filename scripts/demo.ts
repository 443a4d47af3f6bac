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
import { REPO } from "../tests/harness/proc.ts";
import { parseArgs } from "node:util";

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
const consulBin = values["consul-bin"] ??
  [`${REPO}/.tools/consul/usr/bin/consul`].find((p) => exists(p)) ?? "consul";

function exists(p: string): boolean {
  try {
    Deno.statSync(p);
    return true;
  } catch {
    return false;
  }
}

const work = await Deno.makeTempDir({ prefix: "auto-consul-demo-" });
const registry = `file://${work}/registry`;
const net = 100 + Math.floor(Math.random() * 100);
const nodes = Array.from(
  { length: 5 },
  (_, i) => ({ name: `demo-${i + 1}`, ip: `127.${net}.0.${i + 1}` }),
);
const stop = new AbortController();
for (const s of ["SIGINT", "SIGTERM"] as const) Deno.addSignalListener(s, () => stop.abort());

// One gossip key for the demo's cluster, as in production (see README, Security).
const gossipKey = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(32))));
console.log(`demo: 5 nodes on 127.${net}.0.1-5, registry ${registry}`);
const children = nodes.map((n) =>
  new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--quiet",
      `${REPO}/main.ts`,
      "-r",
      registry,
      "-a",
      n.ip,
      "--client",
      n.ip,
      "-n",
      n.name,
      "-d",
      `${work}/${n.name}`,
      "-s",
      "3",
      "-t",
      "5",
      "-e",
      "30",
      "--consul-bin",
      consulBin,
      "--log-level",
      "warn",
      "--require-encryption",
      "run",
      "--",
      "-dns-port=-1",
      "-grpc-port=-1",
      "-hcl",
      "performance { raft_multiplier = 1 }",
    ],
    env: { AUTO_CONSUL_GOSSIP_KEY: gossipKey },
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn()
);
// Node logs go to files, so the table stays readable.
await Promise.all(children.map(async (c, i) => {
  const f = await Deno.open(`${work}/${nodes[i].name}.log`, { write: true, create: true });
  c.stderr.pipeTo(f.writable).catch(() => {});
}));

interface View {
  formed: boolean;
  table: string;
}

async function view(): Promise<View> {
  const status = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--quiet",
      `${REPO}/main.ts`,
      "-r",
      registry,
      "-e",
      "30",
      "--http-addr",
      `${nodes[0].ip}:8500`,
      "status",
      "--json",
    ],
    stdout: "piped",
    stderr: "null",
  });
  const out = await status.output();
  let data;
  try {
    data = JSON.parse(new TextDecoder().decode(out.stdout));
  } catch {
    return { formed: false, table: "(no status yet)" };
  }
  type Row = {
    node: string;
    role: string;
    address?: string;
    registry: string;
    serf?: string;
    voter?: boolean;
    leader?: boolean;
  };
  const rows: Row[] = data.members;
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
  for (const c of children) {
    try {
      c.kill("SIGTERM");
    } catch { /* gone */ }
  }
  const timer = setTimeout(() =>
    children.forEach((c) => {
      try {
        c.kill("SIGKILL");
      } catch { /* gone */ }
    }), 20_000);
  await Promise.all(children.map((c) => c.status));
  clearTimeout(timer);
  await Deno.remove(work, { recursive: true }).catch(() => {});
}
console.log(
  formed ? `demo: the cluster formed in ${formedAfter}s` : "demo: the cluster did not form",
);
Deno.exit(formed ? 0 : 1);
