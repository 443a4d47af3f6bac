/**
 * The one process library of tests, benchmarks and the demo: the repository root, the consul
 * flags every test or benchmark agent gets, the clean environment of a child, `Proc` (a child
 * whose output is pumped into lines with a tail, stopped with a grace then SIGKILL, killed if
 * this process exits first) and the /proc readers that find and stop consul processes.
 */
import { pidFilePath, procStartTime, readPidFile } from "../../src/consul/pidfile.ts";

/** The repository root (no trailing slash). */
export const REPO = new URL("../../", import.meta.url).pathname.replace(/\/$/, "");

/** Consul flags every test and benchmark agent gets (after `--` of run): no DNS or gRPC port, fast raft. */
export const TEST_CONSUL_ARGS: readonly string[] = [
  "-dns-port=-1",
  "-grpc-port=-1",
  "-hcl",
  "performance { raft_multiplier = 1 }",
  "-hcl",
  "disable_update_check = true",
];

/**
 * The environment of a child: this process's, without the developer's AUTO_CONSUL_* (but
 * AUTO_CONSUL_TOOLS), CONSUL_* or AWS_* settings, with NO_COLOR=1, then `extra`.
 */
export function cleanEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(Deno.env.toObject())) {
    if (k.startsWith("AUTO_CONSUL_") && k !== "AUTO_CONSUL_TOOLS") continue;
    if (k.startsWith("CONSUL_") || k.startsWith("AWS_")) continue;
    env[k] = v;
  }
  return { ...env, NO_COLOR: "1", ...extra };
}

// ---- a child process ---------------------------------------------------------------------

/** The last `max` lines of output (of one process, or of several runs sharing it). */
export class LineTail {
  readonly #lines: string[] = [];
  constructor(readonly max = 200) {}

  push(line: string): void {
    this.#lines.push(line);
    if (this.#lines.length > this.max) this.#lines.shift();
  }

  /** The last `n` lines. */
  last(n = this.max): string[] {
    return this.#lines.slice(-n);
  }
}

export interface ProcOptions {
  /** The child's whole environment (with `clearEnv`) or additions to this process's. */
  env?: Record<string, string>;
  clearEnv?: boolean;
  /** "null": the output is discarded, not read (default "piped"). */
  output?: "piped" | "null";
  /** How many of the first lines `lines` keeps (default 20,000). */
  keepLines?: number;
  /** Where the last lines go (default: a tail of 200 lines of its own). */
  tail?: LineTail;
  /** Called with each line of stdout and stderr. */
  onLine?: (line: string) => void;
  /** Each line of stdout and stderr is appended to this file as it comes. */
  logFile?: string;
}

/**
 * A child process with stdin closed, whose stdout and stderr are read line by line (kept,
 * tailed, passed on, written to a file). `stop()` signals, waits a grace, then SIGKILLs. A
 * child still running when this process exits is SIGKILLed (`killAllProcs`).
 */
export class Proc {
  readonly child: Deno.ChildProcess;
  /** The first `keepLines` lines of output (stdout and stderr as they came). */
  readonly lines: string[] = [];
  /** The exit status. */
  readonly status: Promise<Deno.CommandStatus>;
  /** The exit status, once the output is read to its end too. */
  readonly done: Promise<Deno.CommandStatus>;
  readonly #tail: LineTail;
  #exited = false;

  constructor(cmd: string, args: readonly string[], opts: ProcOptions = {}) {
    const piped = (opts.output ?? "piped") === "piped";
    this.child = new Deno.Command(cmd, {
      args: [...args],
      env: opts.env,
      clearEnv: opts.clearEnv,
      stdin: "null",
      stdout: piped ? "piped" : "null",
      stderr: piped ? "piped" : "null",
    }).spawn();
    this.#tail = opts.tail ?? new LineTail();
    const keep = opts.keepLines ?? 20_000;
    const file = opts.logFile
      ? Deno.openSync(opts.logFile, { write: true, create: true, append: true })
      : undefined;
    const encoder = new TextEncoder();
    const take = (line: string) => {
      if (this.lines.length < keep) this.lines.push(line);
      this.#tail.push(line);
      if (file) writeAll(file, encoder.encode(`${line}\n`));
      opts.onLine?.(line);
    };
    const pumps = piped
      ? [pumpLines(this.child.stdout, take), pumpLines(this.child.stderr, take)]
      : [];
    this.status = this.child.status.then((s) => {
      this.#exited = true;
      live.delete(this);
      return s;
    });
    this.done = Promise.all(pumps).then(() => {
      file?.close();
      return this.status;
    });
    live.add(this);
  }

  get pid(): number {
    return this.child.pid;
  }

  /** True until the child has exited. */
  get running(): boolean {
    return !this.#exited;
  }

  /** The last `n` lines of output, for failure messages. */
  tail(n = 40): string {
    return this.#tail.last(n).join("\n");
  }

  /** Sends `sig` unless the child has exited. */
  signal(sig: Deno.Signal): void {
    if (this.#exited) return;
    try {
      this.child.kill(sig);
    } catch {
      // exited between the check and the kill
    }
  }

  /** Sends `sig`, SIGKILL after `graceMs`; resolves with the exit status once the output is read. */
  async stop(sig: Deno.Signal = "SIGTERM", graceMs = 15_000): Promise<Deno.CommandStatus> {
    this.signal(sig);
    const timer = setTimeout(() => this.signal("SIGKILL"), graceMs);
    try {
      return await this.done;
    } finally {
      clearTimeout(timer);
    }
  }
}

/** Calls `onLine` with each line of `stream` (the last one also without its newline). */
export async function pumpLines(
  stream: ReadableStream<Uint8Array>,
  onLine: (line: string) => void,
): Promise<void> {
  let partial = "";
  try {
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      const parts = (partial + chunk).split("\n");
      partial = parts.pop() ?? "";
      parts.forEach(onLine);
    }
  } catch {
    // the process went away: its output ends here
  }
  if (partial) onLine(partial);
}

function writeAll(file: Deno.FsFile, bytes: Uint8Array): void {
  for (let off = 0; off < bytes.length;) off += file.writeSync(bytes.subarray(off));
}

const live = new Set<Proc>();

/** SIGKILL of every `Proc` still running (at exit; benchmarks also on SIGINT/SIGTERM). */
export function killAllProcs(): void {
  for (const p of live) p.signal("SIGKILL");
}
globalThis.addEventListener("unload", killAllProcs);

// ---- other processes, by pid -------------------------------------------------------------

/** Sends `sig` to `pid` if it still runs. */
export function killQuietly(pid: number, sig: Deno.Signal = "SIGKILL"): void {
  try {
    Deno.kill(pid, sig);
  } catch { /* gone */ }
}

/** Waits (bounded) until `pid` is gone (or a zombie). */
export async function waitGone(pid: number, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (procStartTime(pid) !== undefined) {
    if (Date.now() > deadline) throw new Error(`${what} still alive after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The pid of the live consul named by `<dataDir>/consul.pid` (same start time), or undefined. */
export async function liveConsulPid(dataDir: string): Promise<number | undefined> {
  const rec = await readPidFile(pidFilePath(dataDir)).catch(() => undefined);
  if (!rec) return undefined;
  const start = procStartTime(rec.pid);
  if (start === undefined || (rec.start !== undefined && start !== rec.start)) return undefined;
  return rec.pid;
}

/** Pids of live processes whose argv passes `match`. */
export function findProcesses(match: (argv: string[]) => boolean): number[] {
  const pids: number[] = [];
  let entries: Iterable<Deno.DirEntry>;
  try {
    entries = Deno.readDirSync("/proc");
  } catch {
    return pids;
  }
  for (const e of entries) {
    if (!/^\d+$/.test(e.name)) continue;
    let argv: string[];
    try {
      argv = Deno.readTextFileSync(`/proc/${e.name}/cmdline`).split("\0");
    } catch {
      continue;
    }
    if (match(argv)) pids.push(Number(e.name));
  }
  return pids;
}

/** Pids of consul processes whose `-data-dir` lies in `dataDir` (a leftover safety net). */
export function consulsOnDataDir(dataDir: string): number[] {
  return findProcesses((argv) =>
    argv.some((a) => /(^|\/)consul$/.test(a)) &&
    argv.some((a) => a.startsWith(`-data-dir=${dataDir}/`))
  );
}
