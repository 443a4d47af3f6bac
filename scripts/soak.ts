/**
 * The seeded chaos soak (issue 15): `deno task soak [--minutes N] [--seed S] [--registry
 * folder|s3] [--report] [--logs DIR]`. Runs tests/harness/soak.ts and prints its report; with `--report`
 * the report is also appended to RELIABILITY.md as a section (date, machine, seed, command);
 * with `--logs DIR` each node's whole output is kept in DIR/soak<i>.log.
 * Exit 0 when no invariant was violated, no acknowledged write was lost and every run process
 * is alive at the end; 1 otherwise.
 */
import { parseArgs } from "node:util";
import { reportMarkdown, runSoak } from "../tests/harness/soak.ts";

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      minutes: { type: "string", default: "30" },
      seed: { type: "string", default: "20261202" },
      registry: { type: "string", default: "s3" },
      report: { type: "boolean", default: false },
      logs: { type: "string" },
    },
  });
  const minutes = Number(values.minutes);
  const seed = Number(values.seed);
  const registry = values.registry;
  if (!(minutes > 0) || !Number.isInteger(seed) || (registry !== "folder" && registry !== "s3")) {
    console.error(
      `bad arguments ${
        JSON.stringify(values)
      }: expected --minutes > 0, an integer --seed, --registry folder|s3`,
    );
    Deno.exit(2);
  }
  if (values.logs) await Deno.mkdir(values.logs, { recursive: true });
  const report = await runSoak({
    seed,
    minutes,
    registry,
    logDir: values.logs,
    log: (l) => console.error(`${new Date().toISOString()} ${l}`),
  });
  const cpu = Deno.osRelease();
  const load = Deno.loadavg().map((x) => x.toFixed(2)).join(" ");
  const machine = `${navigator.hardwareConcurrency} cores, Linux ${cpu}, load ${load} at the end`;
  const command = `deno task soak --minutes ${minutes} --seed ${seed} --registry ${registry}`;
  const md = reportMarkdown(report, command, machine);
  console.log(md);
  if (values.report) {
    const path = new URL("../RELIABILITY.md", import.meta.url);
    let existing = "";
    try {
      existing = await Deno.readTextFile(path);
    } catch {
      existing =
        "# Reliability\n\nResults of the chaos soak (`scripts/soak.ts`) and stress runs.\n\n";
    }
    await Deno.writeTextFile(path, `${existing.trimEnd()}\n\n${md}`);
  }
  const ok = report.violations.length === 0 && report.lost.length === 0 && report.dead.length === 0;
  Deno.exit(ok ? 0 : 1);
}
