/**
 * Where the S3 supervisor's memory goes (issue 17, footprint): the resident set of a deno
 * process that (a) only waits, (b) imports the S3 registry (the AWS SDK) and waits, (c) also
 * makes the registry's five calls 5 times against moto, (d) imports the folder registry and
 * makes the same calls; each sampled 3 s after its last call (VmRSS of /proc/self/status), with
 * the V8 heap in use. The SDK's own share is (b) − (a).
 *
 *   deno run -A scripts/bench/sdk_rss.ts [--reps 3]
 */
import { startS3Server } from "../../tests/harness/s3.ts";
import { benchFlags, benchStart, fmtStats, stats, table, writeSection } from "./lib.ts";

const NAME = "sdk_rss";
const CHILD = new URL("./sdk_rss_child.ts", import.meta.url).pathname;

const flags = benchFlags(NAME, { reps: 3 }, "RSS of a deno process with and without the AWS SDK");
const VARIANTS: [string, string][] = [
  ["idle", "deno, waiting (the runtime's floor)"],
  ["import", "the S3 registry imported (AWS SDK loaded), no call"],
  ["calls", "the S3 registry, its five calls made 5 times against moto"],
  ["folder", "the folder registry, the same calls"],
];
const { root, provenance } = await benchStart(NAME);
const s3 = await startS3Server();
const out = new Map<string, { rss: number; heap: number }[]>();
try {
  for (let rep = 0; rep < flags.reps; rep++) {
    for (const [v] of VARIANTS) {
      const res = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", "--quiet", CHILD, v],
        env: { ...s3.env, BUCKET: s3.bucket, ENDPOINT: s3.endpoint, ROOT: `${root}/r${rep}` },
        stdout: "piped",
        stderr: "inherit",
      }).output();
      const line = new TextDecoder().decode(res.stdout).trim().split("\n").at(-1)!;
      out.set(v, [...(out.get(v) ?? []), JSON.parse(line)]);
      console.error(`${v}: ${line}`);
    }
  }
} finally {
  await s3.stop();
}
const med = (v: string, k: "rss" | "heap") => stats(out.get(v)!.map((x) => x[k])).median;
const rows = VARIANTS.map(([v, label]) => [
  label,
  fmtStats(stats(out.get(v)!.map((x) => x.rss)), 1),
  fmtStats(stats(out.get(v)!.map((x) => x.heap)), 1),
  (med(v, "rss") - med("idle", "rss")).toFixed(1),
]);
const body = `## Where the S3 supervisor's memory goes

The resident set of one deno process, 3 s after its last call (VmRSS), and the V8 heap in use,
${flags.reps} runs each, MiB as median (min–max): waiting only; with the S3 registry (the AWS SDK)
imported; with its five calls made; the folder registry with the same calls. The SDK's share of
a supervisor's footprint is the second row over the first.

${provenance()}

${table(["process", "RSS, MiB", "V8 heap used, MiB", "over the floor, MiB"], rows)}
`;
await writeSection(NAME, body);
console.log(body);
