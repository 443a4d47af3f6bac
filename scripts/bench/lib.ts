/**
 * Shared helpers of the benchmarks: flags, statistics, the machine description, the
 * BENCHMARKS.md section writer, and child processes that are always stopped.
 *
 * Every benchmark script parses its flags with `benchFlags`, measures, and ends with
 * `writeSection(name, markdown)`, which replaces its own section of BENCHMARKS.md (between
 * `<!-- bench:NAME:start -->` and `<!-- bench:NAME:end -->`) and leaves the others alone.
 */
import { parseArgs } from "node:util";

export const MAIN = `${REPO}/main.ts`;
export const BENCHMARKS_MD = `${REPO}/BENCHMARKS.md`;
import { consulBin } from "../../tests/harness/consul.ts";
export { consulBin };
export { randomLoopbackIp } from "../../tests/harness/consul.ts";
export { sleep, waitFor } from "../../tests/harness/wait.ts";
import {
  findProcesses,
  killAllProcs,
  Proc,
  REPO,
  TEST_CONSUL_ARGS,
} from "../../tests/harness/proc.ts";
export { Proc, REPO };

/** The consul flags every benchmarked agent gets, auto-consul's and the baselines' alike: the tests' own. */
export const CONSUL_FLAGS: readonly string[] = TEST_CONSUL_ARGS;

// ---- flags -------------------------------------------------------------------------------

type FlagValue = number | string | boolean;

/**
 * Parses `--name value` flags; each default's type is the flag's type. `--help` prints
 * `usage` and the defaults and exits 0; a bad flag or number exits 2 with one line.
 */
export function benchFlags<T extends Record<string, FlagValue>>(
  script: string,
  defaults: T,
  usage: string,
): T {
  const options: Record<string, { type: "string" | "boolean" }> = { help: { type: "boolean" } };
  for (const [k, v] of Object.entries(defaults)) {
    options[k] = { type: typeof v === "boolean" ? "boolean" : "string" };
  }
  let values: Record<string, string | boolean | undefined>;
  try {
    values = parseArgs({ args: Deno.args, options, strict: true }).values as typeof values;
  } catch (err) {
    console.error(`${script}: ${(err as Error).message}`);
    Deno.exit(2);
  }
  if (values.help) {
    const list = Object.entries(defaults).map(([k, v]) => `  --${k} ${v}`).join("\n");
    console.log(`Usage: deno run -A scripts/bench/${script}.ts [flags]\n${usage}\n\n${list}`);
    Deno.exit(0);
  }
  const out: Record<string, FlagValue> = { ...defaults };
  for (const [k, v] of Object.entries(defaults)) {
    const given = values[k];
    if (given === undefined) continue;
    if (typeof v === "number") {
      const n = Number(given);
      if (!Number.isFinite(n) || n < 0) {
        console.error(`${script}: invalid --${k} "${given}": expected a number >= 0`);
        Deno.exit(2);
      }
      out[k] = n;
    } else {
      out[k] = given;
    }
  }
  return out as T;
}

/** The exact command that produced a table (for BENCHMARKS.md). */
export function commandLine(script: string): string {
  const args = Deno.args.map((a) => /^[\w@%+=:,./-]+$/.test(a) ? a : `'${a}'`);
  return ["deno run -A", `scripts/bench/${script}.ts`, ...args].join(" ");
}

// ---- statistics --------------------------------------------------------------------------

export interface Stats {
  n: number;
  median: number;
  min: number;
  max: number;
}

export function stats(xs: number[]): Stats {
  if (xs.length === 0) return { n: 0, median: NaN, min: NaN, max: NaN };
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  const median = s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
  return { n: s.length, median, min: s[0], max: s[s.length - 1] };
}

/** "3.2 (2.9–3.8)", or "—" without samples. */
export function fmtStats(s: Stats, digits = 1): string {
  if (s.n === 0) return "—";
  return `${s.median.toFixed(digits)} (${s.min.toFixed(digits)}–${s.max.toFixed(digits)})`;
}

/** A markdown table. */
export function table(head: string[], rows: (string | number)[][]): string {
  const line = (cells: (string | number)[]) => `| ${cells.join(" | ")} |`;
  return [line(head), line(head.map(() => "---")), ...rows.map(line)].join("\n");
}

// ---- the machine -------------------------------------------------------------------------

export interface Machine {
  date: string;
  cores: number;
  memGiB: number;
  cpu: string;
  consul: string;
  deno: string;
  load: string;
}

/** Load averages (1, 5, 15 min) as in `uptime`. */
export function loadAvg(): string {
  try {
    return Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(" ");
  } catch {
    return "unknown";
  }
}

export async function machine(consul: string): Promise<Machine> {
  const meminfo = await Deno.readTextFile("/proc/meminfo").catch(() => "");
  const kb = Number(/MemTotal:\s+(\d+)/.exec(meminfo)?.[1] ?? NaN);
  const cpuinfo = await Deno.readTextFile("/proc/cpuinfo").catch(() => "");
  const cpu = /model name\s*:\s*(.+)/.exec(cpuinfo)?.[1]?.trim() ?? "unknown";
  const out = await new Deno.Command(consul, { args: ["version"], stdout: "piped" }).output()
    .catch(() => undefined);
  const version = out ? /Consul (v\S+)/.exec(new TextDecoder().decode(out.stdout))?.[1] : undefined;
  return {
    date: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
    cores: navigator.hardwareConcurrency,
    memGiB: Math.round(kb / 1024 / 1024 * 10) / 10,
    cpu,
    consul: version ?? "unknown",
    deno: Deno.version.deno,
    load: loadAvg(),
  };
}

/** What every benchmark starts with. */
export interface BenchStart {
  /** The consul binary. */
  bin: string;
  /** The machine, described before the benchmark loads it. */
  m: Machine;
  /** A fresh work dir, removed at exit. */
  root: string;
  /** The lines under the section title (`provenance` with this run's command line). */
  provenance: () => string;
}

export async function benchStart(name: string): Promise<BenchStart> {
  const bin = consulBin();
  const m = await machine(bin);
  const root = await workDir(name);
  return { bin, m, root, provenance: () => provenance(m, commandLine(name)) };
}

/** The lines under a section title: date, machine, versions, load, command. */
export function provenance(m: Machine, command: string): string {
  return [
    `- date: ${m.date}; machine: ${m.cores} cores (${m.cpu}), ${m.memGiB} GiB; ` +
    `consul ${m.consul}; deno ${m.deno}`,
    `- load average (1/5/15 min) at start: ${m.load}; at end: ${loadAvg()}`,
    `- command: \`${command}\``,
  ].join("\n");
}

// ---- BENCHMARKS.md -----------------------------------------------------------------------

const PREAMBLE = `# Benchmarks

Every table below is written by a script in \`scripts/bench/\` (the section markers are
theirs: a rerun replaces its own section). \`bash scripts/bench/run.sh\` reruns them all from
a fresh clone. Times are medians with the min–max in brackets; ratios are against baselines
measured in the same run, on the same machine, with the same consul flags.
`;

/**
 * Replaces (or appends) the section `name` of BENCHMARKS.md with `body`. BENCH_OUT names
 * another file (trial runs that must not touch the committed numbers).
 */
export async function writeSection(
  name: string,
  body: string,
  path = Deno.env.get("BENCH_OUT") || BENCHMARKS_MD,
) {
  const start = `<!-- bench:${name}:start -->`;
  const end = `<!-- bench:${name}:end -->`;
  const block = `${start}\n${body.trim()}\n${end}`;
  let text = await Deno.readTextFile(path).catch(() => PREAMBLE);
  const i = text.indexOf(start);
  const j = text.indexOf(end);
  if (i >= 0 && j > i) text = text.slice(0, i) + block + text.slice(j + end.length);
  else text = `${text.trimEnd()}\n\n${block}\n`;
  await Deno.writeTextFile(path, text);
  // the repository's format check covers markdown too (table columns get aligned)
  const fmt = await new Deno.Command(Deno.execPath(), { args: ["fmt", "--quiet", path] }).output();
  if (!fmt.success) console.error(`${name}: deno fmt ${path} failed`);
  console.error(`${name}: section written to ${path}`);
}

// ---- processes ---------------------------------------------------------------------------

/** Extra cleanups (e.g. consul agents named by pidfiles) run at exit and on SIGINT/SIGTERM. */
const cleanups = new Set<() => void>();

export function onExit(fn: () => void): () => void {
  cleanups.add(fn);
  return () => cleanups.delete(fn);
}

function killAll(): void {
  killAllProcs();
  for (const fn of cleanups) {
    try {
      fn();
    } catch {
      // best effort at exit
    }
  }
}
globalThis.addEventListener("unload", killAll);
for (const sig of ["SIGINT", "SIGTERM"] as const) {
  Deno.addSignalListener(sig, () => {
    killAll();
    Deno.exit(130);
  });
}

/** Stops every process at once (SIGTERM, SIGKILL after `graceMs`). */
export async function stopAll(procs: Proc[], graceMs = 10_000): Promise<void> {
  await Promise.allSettled(procs.map((p) => p.stop("SIGTERM", graceMs)));
}

const CLK_TCK = (() => {
  try {
    const out = new Deno.Command("getconf", { args: ["CLK_TCK"], stdout: "piped" }).outputSync();
    return Number(new TextDecoder().decode(out.stdout).trim()) || 100;
  } catch {
    return 100;
  }
})();

/**
 * CPU seconds (user + system) a live process has used, from /proc/<pid>/stat; with
 * `children`, also those of its children that have exited and were waited for.
 */
export function cpuSeconds(pid: number, children = false): number | undefined {
  let stat: string;
  try {
    stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  } catch {
    return undefined;
  }
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ").map(Number);
  // fields 14-17 of stat (utime, stime, cutime, cstime) are 11-14 after "pid (comm)"
  const ticks = f[11] + f[12] + (children ? f[13] + f[14] : 0);
  return ticks / CLK_TCK;
}

/** Resident set size of a live process in MiB (VmRSS of /proc/<pid>/status). */
export function rssMiB(pid: number): number | undefined {
  try {
    const kb = /VmRSS:\s+(\d+) kB/.exec(Deno.readTextFileSync(`/proc/${pid}/status`))?.[1];
    return kb === undefined ? undefined : Number(kb) / 1024;
  } catch {
    return undefined;
  }
}

/** Pids of live processes whose argv contains every one of `parts`. */
export function findPids(...parts: string[]): number[] {
  return findProcesses((argv) => parts.every((p) => argv.some((a) => a.includes(p))));
}

/** Runs a command to completion; returns the wall time in ms and the exit code. */
export async function timeCommand(
  cmd: string,
  args: string[],
  opts: { env?: Record<string, string>; timeoutMs?: number } = {},
): Promise<{ ms: number; code: number }> {
  const t0 = performance.now();
  const p = new Proc(cmd, args, { env: opts.env, output: "null" });
  const timer = setTimeout(() => p.signal("SIGKILL"), opts.timeoutMs ?? 60_000);
  try {
    const st = await p.status;
    return { ms: performance.now() - t0, code: st.code };
  } finally {
    clearTimeout(timer);
  }
}

/** A fresh temporary directory, removed at exit unless `keep`. */
export async function workDir(prefix: string, keep = false): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: `auto-consul-bench-${prefix}-` });
  if (!keep) onExit(() => Deno.removeSync(dir, { recursive: true }));
  return dir;
}
