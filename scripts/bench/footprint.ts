/**
 * Footprint: the resident memory (VmRSS) and CPU seconds (utime + stime) of the `run`
 * supervisor — the deno process, consul excluded — over a window (default 10 minutes) in
 * steady state, on the folder registry and on the S3 server, beside its own consul and an
 * idle deno process as references; then the wall time of a one-shot `heartbeat` on both
 * registries next to `consul members`, the floor for "a process that asks consul one thing".
 *
 *   deno run -A scripts/bench/footprint.ts [--duration-s 600] [--reps 10] [--ticks 60]
 */
import { startS3Server } from "../../tests/harness/s3.ts";
import { cleanEnv, type RunNode, runNodes, startFleet, stopFleet } from "./fleet.ts";
import { waitFormed } from "./formed.ts";
import {
  benchFlags,
  benchStart,
  cpuSeconds,
  fmtStats,
  MAIN,
  Proc,
  rssMiB,
  sleep,
  stats,
  table,
  timeCommand,
  writeSection,
} from "./lib.ts";

const NAME = "footprint";
const flags = benchFlags(NAME, {
  "duration-s": 600,
  "sample-s": 5,
  reps: 10,
  ticks: 60,
  expiry: 120,
}, "RSS and CPU of the run supervisor over a window; wall time of one-shot heartbeats");

interface Watched {
  label: string;
  pid: number;
  rss: number[];
  cpu0: number;
  cpu1?: number;
}

function watch(label: string, pid: number | undefined): Watched {
  if (pid === undefined) throw new Error(`${label}: no live process to watch`);
  return { label, pid, rss: [], cpu0: cpuSeconds(pid) ?? NaN };
}

const { bin, root, provenance } = await benchStart(NAME);
const s3 = await startS3Server();
const idleScript = `${root}/idle.ts`;
await Deno.writeTextFile(idleScript, "setInterval(() => {}, 60_000);\n");
const spec = { servers: 1, ticks: flags.ticks, expiry: flags.expiry };
const [fileNode] = runNodes(1, root, { ...spec, registry: `file://${root}/registry` }, "file");
const [s3Node] = runNodes(1, root, {
  ...spec,
  registry: `s3://${s3.bucket}/footprint`,
  env: { ...s3.env, AWS_ENDPOINT_URL_S3: s3.endpoint },
}, "s3");
const nodes: RunNode[] = [fileNode, s3Node];
const idle = new Proc(Deno.execPath(), ["run", "-A", idleScript], { output: "null" });
let watched: Watched[] = [];
const oneShot: { label: string; ms: number[]; codes: Set<number> }[] = [];
try {
  startFleet(nodes);
  for (const n of nodes) {
    if (
      await waitFormed([n], { members: 1, servers: 1 }, performance.now(), 60_000) === undefined
    ) {
      throw new Error(`${n.name} did not come up within 60 s:\n${await n.logText()}`);
    }
  }
  await sleep(2_000); // past the first heartbeat
  watched = [
    watch("auto-consul run, folder registry (deno)", (await fileNode.pids()).autoConsul),
    watch("auto-consul run, S3 registry (deno)", (await s3Node.pids()).autoConsul),
    watch("its consul agent (server), for reference", (await fileNode.pids()).consul),
    watch("an idle deno process (setInterval), the runtime's floor", idle.pid),
  ];
  console.error(`watching for ${flags["duration-s"]} s`);
  const samples = Math.max(1, Math.round(flags["duration-s"] / flags["sample-s"]));
  for (let i = 0; i < samples; i++) {
    for (const w of watched) {
      const r = rssMiB(w.pid);
      if (r !== undefined) w.rss.push(r);
    }
    await sleep(flags["sample-s"] * 1000);
  }
  for (const w of watched) w.cpu1 = cpuSeconds(w.pid);

  const env = cleanEnv({ ...s3.env, AWS_ENDPOINT_URL_S3: s3.endpoint });
  const heartbeat = (n: RunNode) => [
    ...["run", "-A", "--quiet", MAIN, "-r", n.spec.registry, "--http-addr", `${n.ip}:8500`],
    ...["-n", `oneshot-${n.name}`, "heartbeat"],
  ];
  const commands: [string, string, string[]][] = [
    ["`auto-consul heartbeat`, folder registry", Deno.execPath(), heartbeat(fileNode)],
    ["`auto-consul heartbeat`, S3 registry", Deno.execPath(), heartbeat(s3Node)],
    ["`consul members` (the floor)", bin, ["members", `-http-addr=${fileNode.ip}:8500`]],
  ];
  for (const [label] of commands) oneShot.push({ label, ms: [], codes: new Set() });
  for (let rep = 0; rep < flags.reps; rep++) {
    for (const [i, [, cmd, args]] of commands.entries()) {
      const r = await timeCommand(cmd, args, { env });
      oneShot[i].ms.push(r.ms);
      oneShot[i].codes.add(r.code);
    }
  }
} finally {
  await stopFleet(nodes);
  await idle.stop("SIGKILL");
  await s3.stop();
}

const window = flags["duration-s"];
const rows = watched.map((w) => {
  const cpu = (w.cpu1 ?? NaN) - w.cpu0;
  const rss = stats(w.rss);
  return [
    w.label,
    `${w.rss[0]?.toFixed(1)} / ${rss.max.toFixed(1)} / ${w.rss.at(-1)?.toFixed(1)}`,
    cpu.toFixed(2),
    `${(cpu / window * 100).toFixed(2)} %`,
    (cpu / window * 3600).toFixed(1),
  ];
});
const floor = stats(oneShot[2].ms).median;
const shotRows = oneShot.map((o) => {
  const s = stats(o.ms);
  return [
    o.label,
    fmtStats(stats(o.ms.map((x) => x / 1000)), 3),
    (s.median / floor).toFixed(1),
    [...o.codes].join(", "),
  ];
});

const body = `## Footprint

One \`auto-consul run\` server (\`-s 1 -t ${flags.ticks} -e ${flags.expiry}\`) on each registry,
watched for ${window} s in steady state (from 2 s after its agent answered): VmRSS of the deno
process sampled every ${flags["sample-s"]} s (/proc/<pid>/status) and its CPU seconds over the
window (utime + stime from /proc/<pid>/stat; consul is a separate process and not included).
Its consul agent and an idle deno process are shown for reference. Then ${flags.reps} one-shot
runs each, interleaved: \`auto-consul heartbeat\` (a server agent: writes \`servers/\` and
\`agents/\`, lists them for the node's older keys, deletes them) from source with
\`deno run\`, and \`consul members\` against the same agent. Wall seconds as median (min–max).

${provenance()}

${
  table([
    "process",
    "RSS MiB: first / max / last",
    `CPU s over ${window} s`,
    "CPU, % of one core",
    "CPU s per hour",
  ], rows)
}

${table(["one-shot command", "wall time, s", "× consul members", "exit codes"], shotRows)}
`;
await writeSection(NAME, body);
console.log(body);
