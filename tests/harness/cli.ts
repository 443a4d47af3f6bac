/**
 * Runs the auto-consul CLI as a process, the way users do. By default from source
 * (`deno run -A main.ts`); with AUTO_CONSUL_CLI=bundle from the bundle `dist/auto-consul.js`
 * (CI runs the suite's CLI tests through it as well), with AUTO_CONSUL_CLI=/path/to/binary
 * from a compiled binary.
 */
import { cleanEnv, Proc, REPO } from "./proc.ts";

/** A CLI process started by `spawnCli`. */
export type CliProcess = Proc;

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
  opts: {
    env?: Record<string, string>;
    onLine?: (line: string) => void;
    logFile?: string;
    wrap?: string[];
  } = {},
): CliProcess {
  const [cmd, ...pre] = [...(opts.wrap ?? []), ...cliCommand()];
  return new Proc(cmd, [...pre, ...args], {
    env: cliEnv(opts.env),
    clearEnv: true,
    onLine: opts.onLine,
    logFile: opts.logFile,
  });
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
    env: cliEnv(env),
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

/** Environment for a CLI run: the test's own vars (`cleanEnv`) and a temporary data dir. */
function cliEnv(extra: Record<string, string> = {}): Record<string, string> {
  return cleanEnv({ AUTO_CONSUL_DATA_DIR: testDataDir(), ...extra });
}
