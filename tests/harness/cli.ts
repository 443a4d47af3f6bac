/**
 * Runs the auto-consul CLI as a process, the way users do. By default from source
 * (`deno run -A main.ts`); with AUTO_CONSUL_CLI=bundle from the bundle `dist/auto-consul.js`
 * (CI runs the suite's CLI tests through it as well), with AUTO_CONSUL_CLI=/path/to/binary
 * from a compiled binary.
 */
import { REPO } from "./proc.ts";

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** The argv prefix that starts the CLI. */
export function cliCommand(): string[] {
  const how = Deno.env.get("AUTO_CONSUL_CLI") ?? "source";
  if (how === "source") return [Deno.execPath(), "run", "-A", "--quiet", `${REPO}/main.ts`];
  if (how === "bundle") {
    return [Deno.execPath(), "run", "-A", "--quiet", `${REPO}/dist/auto-consul.js`];
  }
  return [how];
}

/**
 * The data dir a CLI run gets when the test gives none (`-d` or AUTO_CONSUL_DATA_DIR win): one
 * temporary folder per test process, removed at exit, so no test writes /var/lib/auto-consul.
 */
let defaultDataDir: string | undefined;
function testDataDir(): string {
  if (defaultDataDir === undefined) {
    const dir = Deno.makeTempDirSync({ prefix: "auto-consul-cli-data-" });
    globalThis.addEventListener("unload", () => {
      try {
        Deno.removeSync(dir, { recursive: true });
      } catch { /* already gone */ }
    });
    defaultDataDir = dir;
  }
  return defaultDataDir;
}

/** Environment for a CLI run: the test's own vars, never the developer's AUTO_CONSUL_* or CONSUL_*. */
function cleanEnv(extra: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(Deno.env.toObject())) {
    if (k.startsWith("AUTO_CONSUL_") && k !== "AUTO_CONSUL_TOOLS") continue;
    if (k.startsWith("CONSUL_") || k.startsWith("AWS_")) continue;
    env[k] = v;
  }
  return { ...env, NO_COLOR: "1", AUTO_CONSUL_DATA_DIR: testDataDir(), ...extra };
}

/** Runs the CLI to completion (bounded by `timeoutMs`, killed after). */
export async function runCli(
  args: string[],
  opts: { env?: Record<string, string>; timeoutMs?: number; stdin?: string; wrap?: string[] } = {},
): Promise<CliResult> {
  const child = spawnChild(args, opts.env, opts.wrap);
  const timer = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch { /* already gone */ }
  }, opts.timeoutMs ?? 30_000);
  try {
    const out = await child.output();
    const dec = new TextDecoder();
    return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Starts the CLI in the background; the caller must `stop()` it (tests do so in finally).
 * `wrap` is an argv that execs the rest (e.g. `setpriv --pdeathsig SIGTERM --`): same pid.
 */
export function spawnCli(
  args: string[],
  opts: { env?: Record<string, string>; onLine?: (line: string) => void; wrap?: string[] } = {},
): CliProcess {
  return new CliProcess(spawnChild(args, opts.env, opts.wrap), opts.onLine);
}

/** The CLI as a child process with piped output and a clean environment. */
function spawnChild(
  args: string[],
  env: Record<string, string> = {},
  wrap: string[] = [],
): Deno.ChildProcess {
  const [cmd, ...pre] = [...wrap, ...cliCommand()];
  return new Deno.Command(cmd, {
    args: [...pre, ...args],
    env: cleanEnv(env),
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

export class CliProcess {
  readonly child: Deno.ChildProcess;
  readonly lines: string[] = [];
  readonly status: Promise<Deno.CommandStatus>;
  #done: Promise<void>;

  constructor(child: Deno.ChildProcess, onLine?: (line: string) => void) {
    this.child = child;
    const collect = async (s: ReadableStream<Uint8Array>) => {
      let buf = "";
      for await (const chunk of s.pipeThrough(new TextDecoderStream())) {
        buf += chunk;
        let i;
        while ((i = buf.indexOf("\n")) >= 0) {
          const line = buf.slice(0, i);
          buf = buf.slice(i + 1);
          if (this.lines.length < 20_000) this.lines.push(line);
          onLine?.(line);
        }
      }
      if (buf) this.lines.push(buf);
    };
    this.#done = Promise.all([collect(child.stdout), collect(child.stderr)]).then(() => {});
    this.status = child.status;
  }

  get pid(): number {
    return this.child.pid;
  }

  /** Last lines of output, for failure messages. */
  tail(n = 40): string {
    return this.lines.slice(-n).join("\n");
  }

  signal(sig: Deno.Signal): void {
    try {
      this.child.kill(sig);
    } catch { /* already exited */ }
  }

  /** Sends `sig`, waits up to `graceMs`, then SIGKILL. Resolves with the exit status. */
  async stop(sig: Deno.Signal = "SIGTERM", graceMs = 15_000): Promise<Deno.CommandStatus> {
    this.signal(sig);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<"timeout">((r) => timer = setTimeout(() => r("timeout"), graceMs));
    const first = await Promise.race([this.status, timeout]);
    clearTimeout(timer);
    if (first === "timeout") this.signal("SIGKILL");
    const st = await this.status;
    await this.#done;
    return st;
  }
}
