/**
 * Start time (issue 6, fast start): the wall time of `--help`, `--version`, a one-shot
 * `heartbeat` on a folder registry and `status` on S3, each against `deno run` of an empty
 * script (the floor), interleaved; whether each loaded the AWS SDK (deno's debug log names
 * every npm package folder it resolves); and how long one `run` node alone takes from launch
 * to its mode decision, to its consul started and to a leader (its own, `-s 1`).
 *
 *   deno run -A scripts/bench/startup.ts [--reps 10]
 */
import { startAgent } from "../../tests/harness/consul.ts";
import { startS3Server } from "../../tests/harness/s3.ts";
import { cleanEnv, runNodes, stopFleet } from "./fleet.ts";
import { waitFormed } from "./formed.ts";
import {
  benchFlags,
  benchStart,
  fmtStats,
  MAIN,
  stats,
  table,
  timeCommand,
  writeSection,
} from "./lib.ts";

const NAME = "startup";
const flags = benchFlags(NAME, { reps: 10, "run-reps": 5 }, "start time of CLI commands");

const SDK_MARK = "Resolved package folder of @aws-sdk/client-s3";

/** True when a run of the command resolved the AWS SDK's package (deno's debug log). */
async function loadsSdk(args: string[], env: Record<string, string>): Promise<boolean> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--log-level=debug", ...args],
    env,
    clearEnv: true,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  return text.includes(SDK_MARK);
}

const { root, provenance } = await benchStart(NAME);
const s3 = await startS3Server();
const agent = await startAgent({ server: true });
const env = cleanEnv({ ...s3.env, AWS_ENDPOINT_URL_S3: s3.endpoint });
const empty = `${root}/empty.ts`;
await Deno.writeTextFile(empty, "");
// the one-file bundle (`deno task bundle`), built offline into the work dir
const bundle = `${root}/auto-consul.js`;
const built = await new Deno.Command(Deno.execPath(), {
  args: ["bundle", "--quiet", "--platform", "deno", "-o", bundle, MAIN],
  stdout: "null",
  stderr: "piped",
}).output();
if (!built.success) {
  throw new Error(`deno bundle failed: ${new TextDecoder().decode(built.stderr)}`);
}
const http = ["--http-addr", agent.httpAddr];
// heartbeat needs its registry folder to exist (only run creates one)
await Deno.mkdir(`${root}/registry`, { recursive: true });
/** What follows `deno run -A --quiet`. */
const commands: [string, string[]][] = [
  ["`deno run` of an empty script (the floor)", [empty]],
  ["`auto-consul --help`", [MAIN, "--help"]],
  ["`auto-consul --version`", [MAIN, "--version"]],
  ["`auto-consul heartbeat`, folder registry, a real agent", [
    ...[MAIN, "-r", `file://${root}/registry`, ...http, "heartbeat"],
  ]],
  ["`auto-consul status`, S3 registry (moto), a real agent", [
    ...[MAIN, "-r", `s3://${s3.bucket}/startup`, ...http, "status"],
  ]],
  ["`auto-consul --version`, from the bundle", [bundle, "--version"]],
  ["`auto-consul heartbeat`, folder registry, from the bundle", [
    ...[bundle, "-r", `file://${root}/registry`, ...http, "heartbeat"],
  ]],
];
/** Rows run from the bundle: the SDK is inlined there, so deno never resolves its package. */
const fromBundle = (args: string[]) => args[0] === bundle;
const times = commands.map(() => [] as number[]);
const codes = commands.map(() => new Set<number>());
const sdk: boolean[] = [];
const runPhases: { mode: number; consul: number; leader: number }[] = [];
try {
  for (const [, args] of commands) {
    sdk.push(await loadsSdk(args.filter((a) => a !== "--quiet"), env));
  }
  for (let rep = 0; rep < flags.reps; rep++) {
    for (const [i, [, args]] of commands.entries()) {
      const r = await timeCommand(Deno.execPath(), ["run", "-A", "--quiet", ...args], { env });
      times[i].push(r.ms / 1000);
      codes[i].add(r.code);
    }
  }
  for (let rep = 1; rep <= flags["run-reps"]; rep++) {
    for (const registry of ["file", "s3"] as const) {
      const [node] = runNodes(1, root, {
        registry: registry === "file"
          ? `file://${root}/run-registry-${rep}`
          : `s3://${s3.bucket}/startup-run-${rep}`,
        servers: 1,
        ticks: 60,
        expiry: 120,
        env: registry === "s3" ? { ...s3.env, AWS_ENDPOINT_URL_S3: s3.endpoint } : undefined,
      }, `${registry}-${rep}`);
      const t0Wall = Date.now();
      const t0 = performance.now();
      node.start();
      try {
        const leader = await waitFormed([node], { members: 1, servers: 1 }, t0, 60_000, 20);
        const logs = await node.logs();
        const at = (pick: (l: { msg: string; mode?: unknown }) => boolean) =>
          (logs.find(pick)?.ts ?? NaN) - t0Wall;
        runPhases.push({
          mode: at((l) => l.mode !== undefined),
          consul: at((l) => l.msg === "consul started"),
          leader: leader ?? NaN,
        });
        console.error(`run alone, ${registry}: ${JSON.stringify(runPhases.at(-1))}`);
      } finally {
        await stopFleet([node]);
      }
    }
  }
} finally {
  await agent.dispose();
  await s3.stop();
}

const floor = stats(times[0]).median;
const rows = commands.map(([label], i) => [
  label,
  fmtStats(stats(times[i]), 3),
  (stats(times[i]).median - floor).toFixed(3),
  i === 0 ? "—" : fromBundle(commands[i][1]) ? "inlined in the bundle" : sdk[i] ? "yes" : "no",
  [...codes[i]].join(", "),
]);
const phase = (registry: number, f: (p: (typeof runPhases)[0]) => number) =>
  fmtStats(stats(runPhases.filter((_, i) => i % 2 === registry).map((p) => f(p) / 1000)), 3);
const runRows = ["folder registry", "S3 registry (moto)"].map((label, r) => [
  label,
  phase(r, (p) => p.mode),
  phase(r, (p) => p.consul),
  phase(r, (p) => p.leader),
]);

const body = `## Start time

Wall time of each command from spawn to exit, ${flags.reps} runs each, interleaved, from
source (\`deno run -A main.ts\`, deno's module cache warm), seconds as median (min–max), and
the same for \`deno run\` of an empty script, the floor of any deno program. "AWS SDK loaded":
whether a run with \`--log-level=debug\` contains "${SDK_MARK}" (\`tests/lazy_sdk_test.ts\`
checks the same). \`heartbeat\` and \`status\` talk to a real consul agent; \`status\` reads the
registry from moto. The bundle rows run \`deno bundle\`'s one-file build
(\`deno task bundle\`, built by this script): the AWS SDK is inlined in it, so every command
parses it.

${provenance()}

${table(["command", "wall time, s", "over the floor, s", "AWS SDK loaded", "exit codes"], rows)}

One \`auto-consul run\` node alone (\`-s 1\`, nothing else running), ${flags["run-reps"]} runs per
registry: seconds from launch to its mode decision, to its consul started, and to its agent
naming itself leader (HTTP API polled every 20 ms). This is the per-node start cost that the
time-to-cluster runs pay up to 15 times over on ${navigator.hardwareConcurrency} cores.

${table(["registry", "mode decided, s", "consul started, s", "leader, s"], runRows)}
`;
await writeSection(NAME, body);
console.log(body);
